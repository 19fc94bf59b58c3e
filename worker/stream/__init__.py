"""The stream shell: everything between Kafka and the pure core.

``loop`` consumes, classifies (through :func:`worker.classify.core.classify_message`),
produces and commits; ``commit`` alone says how offsets are committed (transactions or acked
commits, the commit policy); ``clients`` builds the Kafka clients and classifies every Kafka
error in one place (retriable, abortable, fatal); ``metrics`` declares every metric on a
registry passed in; ``probes`` serves /metrics, /healthz and /readyz; ``settings`` is the only
reader of flags and environment; ``logs`` writes JSON lines. Batch jobs and sources reuse these
modules instead of copying them. Nothing here may import :mod:`worker.dev`.
"""
