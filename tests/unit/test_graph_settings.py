"""Settings of ``python -m worker pull-graph``: the worker's loader, Graph's names, secrets."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from worker.cli import main
from worker.sources.graph.settings import ConfigError, add_arguments, load

BASE = {"GRAPH_TENANT_ID": "contoso", "GRAPH_CLIENT_ID": "app"}


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_secret_from_a_file_and_masked(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("top-secret-value\n")
    settings = load(_args(), {**BASE, "GRAPH_CLIENT_SECRET_FILE": str(secret)})
    assert settings.graph.client_secret is not None
    assert settings.graph.client_secret.get_secret_value() == "top-secret-value"
    assert "top-secret-value" not in str(settings) and "**********" in str(settings)


def test_defaults_and_shared_names() -> None:
    settings = load(_args(), {**BASE, "GRAPH_CLIENT_SECRET": "x",
                              "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",
                              "CLASSIFIER_INPUT_TOPIC": "raw", "CLASSIFIER_GUARANTEE":
                              "at-least-once", "CLASSIFIER_TRANSACTIONAL_ID": "worker-1"})
    graph, kafka = settings.graph, settings.kafka
    assert graph.graph_url == "https://graph.microsoft.com"
    assert graph.authority_url == "https://login.microsoftonline.com"
    assert graph.collection_names() == ["troubleshootingEvents", "autopilotEvents"]
    assert kafka.bootstrap_servers == "kafka:9092" and kafka.input_topic == "raw"
    # Exactly-once always, and a per-tenant id rather than the worker's.
    assert kafka.guarantee == "exactly-once"
    assert kafka.transactional_id == "enrollment-graph-source-contoso"


def test_flags_win_and_sovereign_urls() -> None:
    settings = load(_args("--graph-url", "https://graph.microsoft.us", "--authority-url",
                          "https://login.microsoftonline.us", "--collections", "autopilotEvents",
                          "--transactional-id", "graph-gcch"),
                    {**BASE, "GRAPH_CLIENT_SECRET": "x", "GRAPH_URL": "https://ignored"})
    assert settings.graph.graph_url == "https://graph.microsoft.us"
    assert settings.graph.collection_names() == ["autopilotEvents"]
    assert settings.kafka.transactional_id == "graph-gcch"


@pytest.mark.parametrize(("env", "problem"), [
    ({}, "exactly one credential"),
    ({"GRAPH_CLIENT_SECRET": "x", "GRAPH_CERTIFICATE_FILE": "/c.pem"}, "exactly one credential"),
    ({"GRAPH_CLIENT_SECRET": "x", "GRAPH_URL": "http://graph.example"}, "GRAPH_URL"),
    ({"GRAPH_CLIENT_SECRET": "x", "GRAPH_COLLECTIONS": "auditEvents"}, "unknown collection"),
    ({"GRAPH_CLIENT_SECRET": "x", "GRAPH_REQUESTS_PER_MINUTE": "0"}, "requests_per_minute"),
    ({"GRAPH_CLIENT_SECRET_FILE": "/nonexistent/secret"}, "cannot read"),
])
def test_bad_configuration_is_named(env: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        load(_args(), {**BASE, **env})


def test_cli_exit_code_2_on_bad_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pull-graph", "--tenant-id", "t"]) == 2
    assert "client_id (--client-id / GRAPH_CLIENT_ID)" in capsys.readouterr().err


def test_secret_is_not_a_flag() -> None:
    with pytest.raises(SystemExit):
        _args("--client-secret", "x")
