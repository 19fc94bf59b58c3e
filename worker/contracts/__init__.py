"""The output contract: pydantic models of what the worker publishes, the JSON Schemas made
from them (``schemas/``), and schema examples produced by the real core.

Pure like :mod:`worker.classify`, which it may import (examples run the real core), and held
to the same import rules. It is a package of its own rather than part of the core because
mypyc compiles the core and gains nothing on pydantic classes, which are built by a metaclass
at import time; the hot path never touches these models (it encodes plain dicts with orjson).
"""
