"""Development tools that production never runs: the local Kafka broker from Maven jars
(``devbroker``), the deterministic sample generator and test oracle (``samples``) and the
demo (``python -m worker demo``). Tests, benchmarks and the README's first command use them;
the container image leaves this package out, and no other ``worker`` package may import it.
"""
