"""Batch jobs that run to an end and stop: replaying dead letters, reclassifying a time range of
the input topic. They reuse the stream shell's settings, clients, commit code, metrics and logs,
and the pure core for classifying; they never commit offsets for the live worker's group.
Nothing here may import :mod:`worker.dev`.
"""
