"""Event sources that put raw Intune events onto the input topic for tenants without a Kafka
feed of their own (Microsoft Graph). They produce through the stream shell's clients, settings,
metrics, probes and logs, and publish events unchanged: classifying stays the worker's job.
Nothing here may import :mod:`worker.dev`.
"""
