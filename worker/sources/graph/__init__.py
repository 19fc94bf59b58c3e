"""Graph source: pull Intune's troubleshooting and Autopilot events from Microsoft Graph into
the input topic, exactly once (``python -m worker pull-graph``).

Pure parts (no I/O, time passed in): :mod:`.endpoints` (what is read, with which
permission), :mod:`.errors` (the one classification of HTTP outcomes), :mod:`.backoff`
(retry delays and the request budget), :mod:`.paging`, :mod:`.events` (id, time and key of an
event) and :mod:`.checkpoint` (what is new, and what to remember). The shell:
:mod:`.client` (httpx and MSAL), :mod:`.publish` (Kafka transactions), :mod:`.command`.
"""
