"""enrollment-classifier: triage Microsoft Intune device-enrollment failures from Kafka.

The public surface is deliberately small: classify a raw message with
:func:`classify_message`, and the Graph failure enum :class:`FailureCategory`.
Everything else (the Kafka loop, metrics, probes) is the worker's private shell.
"""

__version__ = "0.1.0"

from worker.core import classify_message
from worker.taxonomy import FailureCategory

__all__ = ["FailureCategory", "__version__", "classify_message"]
