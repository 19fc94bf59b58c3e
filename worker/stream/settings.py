"""Worker configuration: the only place that reads flags and environment variables.

Every setting has a flag and an environment variable (flag wins); ``KAFKA_BOOTSTRAP_SERVERS``
keeps its conventional name and ``FRESH_EVENT_MAX_AGE_SECONDS`` the one the metric contract
gives it, the others are ``CLASSIFIER_<NAME>``. Any librdkafka property
passes through as ``RDKAFKA_<PROPERTY>`` (dots become underscores: ``RDKAFKA_SASL_MECHANISMS``)
or ``--kafka-config property=value``. A ``_FILE`` suffix on any variable reads the value
from that file (a mounted Kubernetes Secret), so secrets never need to be on a command line;
secret properties given as flags are refused.

The result is a frozen :class:`Settings` whose ``str()`` masks secrets.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from worker.classify.core import CoreOptions

ENV_PREFIX = "CLASSIFIER_"
RDKAFKA_PREFIX = "RDKAFKA_"
_SECRET_WORDS = ("password", "secret", "key.pem", "token", "connection")
_ENV_NAMES = {"bootstrap_servers": "KAFKA_BOOTSTRAP_SERVERS",
              "fresh_event_max_age": "FRESH_EVENT_MAX_AGE_SECONDS"}
_RESERVED_RDKAFKA = ("bootstrap.servers", "group.id", "transactional.id", "enable.auto.commit",
                     "isolation.level")


class ConfigError(Exception):
    """Configuration is invalid; the message says which setting and why."""


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    bootstrap_servers: str = Field(
        "127.0.0.1:9092", min_length=1, description="Kafka bootstrap servers (host:port,...)")
    input_topic: str = Field("intune-enrollment-raw", min_length=1,
                             description="topic with raw enrollment events")
    output_topic: str = Field("intune-enrollment-classified", min_length=1,
                              description="topic for classified events")
    dead_letter_topic: str = Field("intune-enrollment-dead-letter", min_length=1,
                                   description="topic for unreadable input")
    group_id: str = Field("enrollment-classifier", min_length=1, description="consumer group")
    guarantee: Literal["exactly-once", "at-least-once"] = Field(
        "exactly-once", description="exactly-once (Kafka transactions) or at-least-once")
    transactional_id: str = Field(
        default_factory=lambda: f"enrollment-classifier-{socket.gethostname()}", min_length=1,
        description="unique per running process, stable across its restarts (default: "
        "enrollment-classifier-<hostname>, i.e. the pod name)")
    metrics_port: int = Field(9108, ge=0, le=65535, description="HTTP port for /metrics, "
                              "/healthz, /readyz (0 picks a free port)")
    metrics_address: str = Field("0.0.0.0", description="address the HTTP port binds to")
    batch_size: int = Field(500, ge=1, le=100_000, description="messages per consume() batch")
    batch_timeout_ms: int = Field(100, ge=1, le=60_000,
                                  description="longest wait to fill a batch, in ms")
    max_message_bytes: int = Field(2 * 1024 * 1024, ge=1024,
                                   description="larger input messages are dead-lettered")
    max_records_per_message: int = Field(
        5000, ge=1, description="an envelope or page with more records is dead-lettered whole")
    max_output_bytes_per_message: int = Field(
        16 * 1024 * 1024, ge=64 * 1024, description="a message whose outputs would exceed this "
        "many bytes is dead-lettered whole")
    shutdown_budget_ms: int = Field(
        25_000, ge=1000, le=600_000, description="from SIGTERM to exit, in ms, whatever the "
        "broker does (keep it below the pod's terminationGracePeriodSeconds)")
    max_dead_letter_payload: int = Field(
        512 * 1024, ge=0, description="dead letters keep at most this many original bytes")
    pseudonymize_key: SecretStr | None = Field(
        None, description="HMAC key: replace user/device ids and e-mails with keyed hashes")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO")
    fresh_event_max_age: int = Field(
        3600, ge=1, description="seconds: a failure whose own event time is older than this "
        "when it is processed counts as late, not fresh (spike alerts read fresh ones)")
    stats_interval_ms: int = Field(5000, ge=0, description="librdkafka statistics (consumer "
                                   "lag) interval; 0 turns them off")
    kafka_config: dict[str, str | SecretStr] = Field(
        default_factory=dict, description="librdkafka properties passed to every client")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("kafka_config")
    @classmethod
    def _no_reserved(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if key in _RESERVED_RDKAFKA:
                raise ValueError(f"{key} is set by the worker itself; use its own setting")
        return value

    def rdkafka(self) -> dict[str, str]:
        """The pass-through librdkafka properties with secrets revealed (for clients only)."""
        return {k: v.get_secret_value() if isinstance(v, SecretStr) else v
                for k, v in self.kafka_config.items()}

    def __str__(self) -> str:
        shown = self.model_dump(exclude={"kafka_config", "pseudonymize_key"})
        shown["kafka_config"] = {k: "**********" if isinstance(v, SecretStr) else v
                                 for k, v in self.kafka_config.items()}
        shown["pseudonymize_key"] = "**********" if self.pseudonymize_key else None
        return " ".join(f"{k}={v}" for k, v in shown.items())

    __repr__ = __str__


def core_options(settings: Settings) -> CoreOptions:
    """The classifier core's limits and pseudonymisation key, as every command applies them."""
    key = settings.pseudonymize_key
    return CoreOptions(max_message_bytes=settings.max_message_bytes,
                       max_dead_letter_payload=settings.max_dead_letter_payload,
                       max_records=settings.max_records_per_message,
                       max_output_bytes=settings.max_output_bytes_per_message,
                       pseudonymize_key=key.get_secret_value().encode() if key else None)


def env_name(field: str) -> str:
    return _ENV_NAMES.get(field) or ENV_PREFIX + field.upper()


def is_secret(rdkafka_key: str) -> bool:
    return any(word in rdkafka_key for word in _SECRET_WORDS)


def add_run_arguments(parser: argparse.ArgumentParser,
                      only: Collection[str] | None = None) -> None:
    """One flag per Settings field (or per field in ``only``), help text from the field, env
    name in the help."""
    add_model_arguments(parser, Settings, env_name,
                        skip=("kafka_config", "pseudonymize_key"), only=only)
    parser.add_argument("--kafka-config", action="append", default=[], metavar="KEY=VALUE",
                        help="librdkafka property for all clients, repeatable [env "
                        "RDKAFKA_<KEY>]; secrets only via environment or *_FILE")
    parser.add_argument("--print-config", action="store_true",
                        help="print the effective configuration (secrets masked) and exit")


def add_model_arguments(parser: argparse.ArgumentParser, model: type[BaseModel],
                        env_of: Callable[[str], str], *, skip: Collection[str] = (),
                        only: Collection[str] | None = None) -> None:
    """A flag per field of ``model`` (``--field-name``), its environment variable in the help.
    Fields in ``skip`` (secrets, structured values) get no flag."""
    for name, field in model.model_fields.items():
        if name in skip or (only is not None and name not in only):
            continue
        parser.add_argument("--" + name.replace("_", "-"), dest=name, default=None,
                            metavar=name.split("_")[-1].upper(),
                            help=f"{field.description or name} [env {env_of(name)}]")


def load_settings(args: argparse.Namespace | None, environ: Mapping[str, str]) -> Settings:
    """Merge defaults < environment < flags and validate. Raises ConfigError."""
    kafka_config = _rdkafka_config(environ, getattr(args, "kafka_config", None) or [])
    return load_model(Settings, args, environ, env_name, fixed={"kafka_config": kafka_config})


M = TypeVar("M", bound=BaseModel)


def load_model(model: type[M], args: argparse.Namespace | None, environ: Mapping[str, str],
               env_of: Callable[[str], str], *, fixed: Mapping[str, Any] | None = None) -> M:
    """Any settings model the same way: defaults < environment (``_FILE`` read from files) <
    flags, then validation; ``fixed`` values are set as given. Raises ConfigError naming each
    bad field with its flag and variable."""
    values: dict[str, Any] = {}
    for name in model.model_fields:
        if fixed and name in fixed:
            continue
        env_value = _env(environ, env_of(name))
        if env_value is not None:
            values[name] = env_value
        flag = getattr(args, name, None) if args is not None else None
        if flag is not None:
            values[name] = flag
    try:
        return model(**values, **(fixed or {}))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            where = f"--{field.replace('_', '-')} / {env_of(field)}"
            problems.append(f"  {field} ({where}): {err['msg']}")
        raise ConfigError("invalid configuration:\n" + "\n".join(problems)) from None


def _env(environ: Mapping[str, str], name: str) -> str | None:
    path = environ.get(name + "_FILE")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{name}_FILE: cannot read {path}: {exc.strerror}") from None
    value = environ.get(name)
    return value if value else None


def _rdkafka_config(environ: Mapping[str, str], flags: list[str]) -> dict[str, SecretStr | str]:
    config: dict[str, SecretStr | str] = {}
    for name in sorted(environ):
        if not name.startswith(RDKAFKA_PREFIX):
            continue
        base = name.removesuffix("_FILE")
        key = base[len(RDKAFKA_PREFIX):].lower().replace("_", ".")
        value = _env(environ, base)
        if key and value is not None:
            config[key] = SecretStr(value) if is_secret(key) else value
    for item in flags:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--kafka-config expects KEY=VALUE, got {item!r}")
        if is_secret(key):
            raise ConfigError(f"--kafka-config {key}=...: secrets are not accepted on the "
                              f"command line; set {RDKAFKA_PREFIX}{key.upper().replace('.', '_')}"
                              "_FILE (or the variable itself) instead")
        config[key] = value
    return config


S = TypeVar("S")


def for_command(args: argparse.Namespace,
                load: Callable[[argparse.Namespace, Mapping[str, str]], S]) -> S | int:
    """A command's settings, or the exit code to return: 2 after printing what is wrong with
    the configuration, 0 after ``--print-config`` printed it (secrets masked)."""
    try:
        settings = load(args, environment())
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if getattr(args, "print_config", False):
        print(settings)
        return 0
    return settings


def environment() -> Mapping[str, str]:
    """The process environment; the only call site that touches os.environ."""
    return os.environ
