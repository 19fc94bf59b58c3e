"""Configuration of ``python -m worker pull-graph``.

Kafka, the HTTP port and logging are the stream worker's own settings, read by its loader
under the same names (``KAFKA_BOOTSTRAP_SERVERS``, ``CLASSIFIER_INPUT_TOPIC``,
``CLASSIFIER_METRICS_PORT``, ``RDKAFKA_*``, ...). Graph's are ``GRAPH_<NAME>`` (flag
``--name``); like every variable, ``GRAPH_CLIENT_SECRET_FILE`` reads the secret from a file.
The secret has no flag, and ``str()`` masks it.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from worker.sources.graph.endpoints import COLLECTIONS, DEFAULT_COLLECTIONS
from worker.stream.settings import (
    ConfigError,
    Settings,
    add_model_arguments,
    add_run_arguments,
    load_model,
    load_settings,
)

ENV_PREFIX: Final = "GRAPH_"
# The stream worker's settings that mean the same here; the rest (output topic, group, ...)
# belong to the consumer.
SHARED: Final = ("bootstrap_servers", "input_topic", "metrics_port", "metrics_address",
                 "log_level")


def graph_env_name(field: str) -> str:
    """``GRAPH_TENANT_ID``; ``graph_url`` is ``GRAPH_URL``, not ``GRAPH_GRAPH_URL``."""
    return ENV_PREFIX + field.upper().removeprefix(ENV_PREFIX)


class GraphSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant_id: str = Field(min_length=1, description="Entra tenant id (GUID) or domain")
    client_id: str = Field(min_length=1, description="application (client) id")
    client_secret: SecretStr | None = Field(None, description="client secret")
    certificate_file: Path | None = Field(
        None, description="PEM file with the app's private key and certificate (instead of "
        "a secret)")
    graph_url: str = Field("https://graph.microsoft.com", pattern=r"^https://[^/?#]+/?$",
                           description="Graph endpoint (US Gov: https://graph.microsoft.us, "
                           "China: https://microsoftgraph.chinacloudapi.cn)")
    authority_url: str = Field(
        "https://login.microsoftonline.com", pattern=r"^https://[^/?#]+/?$",
        description="login endpoint (US Gov: https://login.microsoftonline.us, China: "
        "https://login.chinacloudapi.cn)")
    ca_file: Path | None = Field(None, description="trust exactly this CA bundle for Graph "
                                 "and login (a TLS-inspecting proxy)")
    collections: str = Field(",".join(DEFAULT_COLLECTIONS), description="comma-separated: "
                             + ", ".join(COLLECTIONS) + " (the report needs a ReadWrite "
                             "permission, so it is off by default)")
    checkpoint_topic: str = Field("intune-enrollment-graph-checkpoints", min_length=1,
                                  description="compacted topic holding the checkpoints")
    transactional_id: str | None = Field(
        None, description="stable per tenant (default enrollment-graph-source-<tenant-id>), "
        "so a new instance fences the old one")
    poll_interval_s: float = Field(300.0, ge=1.0, description="seconds between polls")
    overlap_s: float = Field(6 * 3600.0, ge=0.0, description="how late an event may appear "
                             "(seconds below the newest event time) and still be published")
    requests_per_minute: int = Field(60, ge=1, le=6000,
                                     description="Graph requests per minute at most")
    backoff_base_s: float = Field(2.0, gt=0.0, description="first retry delay, doubled "
                                  "each retry")
    backoff_cap_s: float = Field(300.0, gt=0.0, description="longest retry delay")
    max_attempts: int = Field(8, ge=1, description="attempts per request before the poll is "
                              "abandoned until the next interval")
    request_timeout_s: float = Field(60.0, gt=0.0, description="HTTP timeout per request")
    export_poll_s: float = Field(10.0, gt=0.0, description="seconds between checks of a "
                                 "report export job")
    export_timeout_s: float = Field(900.0, gt=0.0, description="give up on an export job "
                                    "(and poll again next interval) after this long")

    @field_validator("collections")
    @classmethod
    def _known(cls, value: str) -> str:
        names = [n.strip() for n in value.split(",") if n.strip()]
        unknown = [n for n in names if n not in COLLECTIONS]
        if unknown or not names:
            raise ValueError(f"unknown collection(s) {unknown}; choose from "
                             f"{', '.join(COLLECTIONS)}")
        return ",".join(names)

    @model_validator(mode="after")
    def _one_credential(self) -> GraphSettings:
        if (self.client_secret is None) == (self.certificate_file is None):
            raise ValueError("set exactly one credential: GRAPH_CLIENT_SECRET(_FILE) or "
                             "--certificate-file / GRAPH_CERTIFICATE_FILE")
        return self

    def collection_names(self) -> list[str]:
        return self.collections.split(",")

    def effective_transactional_id(self) -> str:
        return self.transactional_id or f"enrollment-graph-source-{self.tenant_id}"

    def __str__(self) -> str:
        shown = self.model_dump(exclude={"client_secret"})
        shown["client_secret"] = "**********" if self.client_secret else None
        return " ".join(f"{k}={v}" for k, v in shown.items())

    __repr__ = __str__


@dataclass(frozen=True, slots=True)
class SourceSettings:
    graph: GraphSettings
    kafka: Settings  # the stream worker's, with this source's transactional id

    def __str__(self) -> str:
        return f"graph: {self.graph}; kafka: {self.kafka}"  # both mask their secrets


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(parser, only=SHARED)
    add_model_arguments(parser, GraphSettings, graph_env_name, skip=("client_secret",))
    parser.add_argument("--once", action="store_true",
                        help="poll every collection once, then exit (for a CronJob)")


def load(args: argparse.Namespace | None, environ: Mapping[str, str]) -> SourceSettings:
    """Raises ConfigError naming the bad setting."""
    graph = load_model(GraphSettings, args, environ, graph_env_name)
    shared = argparse.Namespace(**{n: getattr(args, n, None) for n in SHARED},
                                kafka_config=getattr(args, "kafka_config", None))
    kafka = load_settings(shared, environ)
    # Exactly-once is the source's only mode: the checkpoint rides in the events' transaction.
    kafka = kafka.model_copy(update={"guarantee": "exactly-once",
                                     "transactional_id": graph.effective_transactional_id()})
    return SourceSettings(graph, kafka)


__all__ = ["ConfigError", "GraphSettings", "SourceSettings", "add_arguments", "load"]
