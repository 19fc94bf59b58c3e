"""The exit codes every command shares: the platform (Kubernetes, a CronJob, a script) acts
on them, so one number means one thing whichever command returns it.

4 is "stopped short of the end": each command names its own way of getting there.
"""

from typing import Final

EXIT_OK: Final = 0
EXIT_CHECK_FAILED: Final = 1  # the input was read, and some of it was bad (classify, export)
EXIT_USAGE: Final = 2  # bad arguments, settings or input: fix them, a restart will not help
EXIT_FATAL: Final = 3  # the broker or an API refused us for good: restart cleanly
EXIT_SHUTDOWN_OVERRUN: Final = 4  # run: the shutdown budget ran out before a clean stop
EXIT_STOPPED: Final = 4  # replay / reclassify: stopped by a signal before the range's end
EXIT_POLL_FAILED: Final = 4  # pull-graph --once: the poll did not complete
