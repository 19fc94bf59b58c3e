"""Configuration: flags over environment over defaults, clear errors, secrets never shown."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from worker.stream.settings import ConfigError, add_run_arguments, load_settings

ROOT = Path(__file__).resolve().parents[2]


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_run_arguments(parser)
    return parser.parse_args(argv)


def test_defaults() -> None:
    s = load_settings(parse(), {})
    assert s.bootstrap_servers == "127.0.0.1:9092"
    assert s.guarantee == "exactly-once"
    assert s.metrics_port == 9108
    assert s.transactional_id.startswith("enrollment-classifier-")


def test_flag_beats_environment_beats_default() -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": "env:9092", "CLASSIFIER_INPUT_TOPIC": "from-env",
           "CLASSIFIER_BATCH_SIZE": "42"}
    s = load_settings(parse("--input-topic", "from-flag"), env)
    assert (s.bootstrap_servers, s.input_topic, s.batch_size) == ("env:9092", "from-flag", 42)


def test_invalid_values_name_the_flag_and_the_variable() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(parse("--metrics-port", "99999"), {"CLASSIFIER_GUARANTEE": "twice"})
    text = str(err.value)
    assert "metrics_port (--metrics-port / CLASSIFIER_METRICS_PORT)" in text
    assert "guarantee (--guarantee / CLASSIFIER_GUARANTEE)" in text


def test_rdkafka_passthrough_from_env_and_flags_with_secrets_masked(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("Endpoint=sb://x/;SharedAccessKey=topsecret\n")
    env = {"RDKAFKA_SECURITY_PROTOCOL": "SASL_SSL", "RDKAFKA_SASL_MECHANISMS": "PLAIN",
           "RDKAFKA_SASL_USERNAME": "$ConnectionString",
           "RDKAFKA_SASL_PASSWORD_FILE": str(secret),
           "CLASSIFIER_PSEUDONYMIZE_KEY": "pepper"}
    s = load_settings(parse("--kafka-config", "consumer.fetch.max.bytes=1048576"), env)
    assert s.rdkafka() == {"security.protocol": "SASL_SSL", "sasl.mechanisms": "PLAIN",
                           "sasl.username": "$ConnectionString",
                           "sasl.password": "Endpoint=sb://x/;SharedAccessKey=topsecret",
                           "consumer.fetch.max.bytes": "1048576"}
    shown = str(s) + repr(s)
    assert "topsecret" not in shown and "pepper" not in shown
    assert "sasl.mechanisms" in shown and "**********" in shown


def test_secrets_are_refused_on_the_command_line() -> None:
    with pytest.raises(ConfigError, match="not accepted on the command line"):
        load_settings(parse("--kafka-config", "sasl.password=hunter2"), {})
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_settings(parse("--kafka-config", "novalue"), {})


def test_reserved_properties_cannot_be_overridden() -> None:
    with pytest.raises(ConfigError, match=r"enable\.auto\.commit is set by the worker"):
        load_settings(parse(), {"RDKAFKA_ENABLE_AUTO_COMMIT": "true"})


def test_unreadable_secret_file_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cannot read /nonexistent/pw"):
        load_settings(parse(), {"RDKAFKA_SASL_PASSWORD_FILE": "/nonexistent/pw"})


def test_cli_reports_bad_configuration_without_a_traceback() -> None:
    proc = subprocess.run([sys.executable, "-m", "worker", "run", "--metrics-port", "99999"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
    assert proc.returncode == 2
    assert "metrics_port (--metrics-port / CLASSIFIER_METRICS_PORT)" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_print_config_masks_secrets() -> None:
    env = {"RDKAFKA_SASL_PASSWORD": "hunter2", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "worker", "run", "--print-config"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT, env=env,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert "hunter2" not in proc.stdout + proc.stderr
    assert "sasl.password" in proc.stdout


def test_fresh_event_max_age_from_its_variable_and_flag() -> None:
    assert load_settings(parse(), {}).fresh_event_max_age == 3600
    env = {"FRESH_EVENT_MAX_AGE_SECONDS": "21600"}
    assert load_settings(parse(), env).fresh_event_max_age == 21600
    assert load_settings(parse("--fresh-event-max-age", "900"), env).fresh_event_max_age == 900
    with pytest.raises(ConfigError) as err:
        load_settings(parse(), {"FRESH_EVENT_MAX_AGE_SECONDS": "0"})
    assert "fresh_event_max_age (--fresh-event-max-age / FRESH_EVENT_MAX_AGE_SECONDS)" in \
        str(err.value)
