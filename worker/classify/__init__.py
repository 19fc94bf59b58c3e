"""The pure classifier core: raw message bytes in, encoded outcomes out.

Here live Graph's failure enum (``taxonomy``), the one reviewed knowledge table (``catalog``),
decoding of every input shape (``decode``), the rule that decides a reason (``normalize``)
and the entry point the shell calls (``core.classify_message``). Nothing here does I/O, reads
a clock or the environment, or raises on input; nothing here may import Kafka, Prometheus,
sockets, HTTP, or any other ``worker`` package but ``worker._version``. That is what lets
mypyc compile exactly this package (setup.py) and every shell reuse it unchanged; a test
(import-linter contracts in pyproject.toml) holds the rule.
"""
