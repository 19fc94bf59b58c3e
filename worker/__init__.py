"""enrollment-classifier: triage Microsoft Intune device-enrollment failures from Kafka.

The public surface is deliberately small: classify a raw message with
:func:`classify_message`, and the Graph failure enum :class:`FailureCategory`.
Everything else is private. The subpackages show the architecture:

- :mod:`worker.classify`: the pure classifier core (what mypyc compiles);
- :mod:`worker.contracts`: the output contract (pydantic models, JSON Schemas, examples);
- :mod:`worker.stream`: the Kafka shell (loop, commits, clients, metrics, probes, settings, logs);
- :mod:`worker.jobs` and :mod:`worker.sources`: batch jobs and event sources on that shell;
- :mod:`worker.dev`: development tools that production never runs (local broker, samples, demo);
- :mod:`worker.cli`: the one command-line entry point (``python -m worker``).
"""

import types

from worker._version import __version__
from worker.classify.core import classify_message
from worker.classify.taxonomy import FailureCategory

__all__ = ["FailureCategory", "__version__", "classify_message", "core_build"]


def core_build() -> str:
    """Which build of the classifier core is running: the container image compiles it with
    mypyc (setup.py); a source checkout runs it as plain Python. Same behaviour, other speed."""
    return "plain Python" if isinstance(classify_message, types.FunctionType) else "mypyc"
