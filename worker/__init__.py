"""enrollment-classifier: triage Microsoft Intune device-enrollment failures from Kafka.

The public surface is deliberately small: classify a raw message with
:func:`classify_message`, and the Graph failure enum :class:`FailureCategory`.
Everything else (the Kafka loop, metrics, probes) is the worker's private shell.
"""

__version__ = "0.1.0"

import types

from worker.core import classify_message
from worker.taxonomy import FailureCategory

__all__ = ["FailureCategory", "__version__", "classify_message", "core_build"]


def core_build() -> str:
    """Which build of the classifier core is running: the container image compiles it with
    mypyc (setup.py); a source checkout runs it as plain Python. Same behaviour, other speed."""
    return "plain Python" if isinstance(classify_message, types.FunctionType) else "mypyc"
