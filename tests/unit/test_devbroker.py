"""worker.dev.devbroker without java or network: config rendering, ports, jar cache, CLI wiring."""

from __future__ import annotations

import socket
import stat
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from worker.dev import devbroker
from worker.dev.devbroker import Ports, SecurityInfo, render_server_properties

REPO = Path(__file__).resolve().parents[2]


def _props(text: str) -> dict[str, str]:
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_server_properties_single_node_kraft(tmp_path: Path) -> None:
    props = _props(render_server_properties(Ports(broker=19092, controller=19093), tmp_path))
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["listener.security.protocol.map"] == "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    assert props["log.dirs"] == str(tmp_path)
    for key in ("offsets.topic.replication.factor", "offsets.topic.num.partitions",
                "transaction.state.log.replication.factor", "transaction.state.log.min.isr",
                "transaction.state.log.num.partitions",
                "share.coordinator.state.topic.replication.factor",
                "share.coordinator.state.topic.min.isr"):
        assert props[key] == "1", key
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert int(props["log.cleaner.dedupe.buffer.size"]) < 16 * 1024 * 1024
    assert props["auto.create.topics.enable"] == "true"
    assert not any(k.startswith(("ssl.", "sasl.", "listener.name.")) for k in props)


def test_server_properties_security_listeners(tmp_path: Path) -> None:
    ports = Ports(broker=1, controller=2, sasl_ssl=3, ssl=4)
    props = _props(render_server_properties(ports, tmp_path / "kraft", tmp_path / "tls"))
    assert props["listeners"].split(",") == [
        "PLAINTEXT://127.0.0.1:1", "CONTROLLER://127.0.0.1:2",
        "SASL_SSL://127.0.0.1:3", "SSL://127.0.0.1:4"]
    assert "CONTROLLER" not in props["advertised.listeners"]
    assert "SASL_SSL:SASL_SSL" in props["listener.security.protocol.map"]
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert "ScramLoginModule" in props["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"]
    assert props["ssl.keystore.type"] == props["ssl.truststore.type"] == "PEM"
    assert props["ssl.truststore.location"] == str(tmp_path / "tls" / "ca.pem")
    assert props["listener.name.ssl.ssl.client.auth"] == "required"
    assert "ssl.client.auth" not in props  # SASL_SSL does not need a client certificate


def test_security_needs_ports(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ports"):
        render_server_properties(Ports(broker=1, controller=2), tmp_path, tmp_path)


def test_pom_and_log4j_config() -> None:
    pom = ET.fromstring(devbroker.render_pom("4.1.1"))
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    deps = {(d.findtext("m:artifactId", namespaces=ns), d.findtext("m:version", namespaces=ns))
            for d in pom.iterfind("m:dependencies/m:dependency", ns)}
    assert ("kafka_2.13", "4.1.1") in deps
    assert any(artifact == "log4j-slf4j-impl" for artifact, _ in deps)
    log4j = devbroker.render_log4j2("ERROR")
    assert "rootLogger.level = ERROR" in log4j and "Console" in log4j
    assert devbroker.KAFKA_VERSION.startswith("4.")


def test_free_ports_distinct_and_bindable() -> None:
    ports = devbroker.free_ports(4, avoid=[1])
    assert len(set(ports)) == 4 and 1 not in ports
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_cluster_id_shape() -> None:
    ids = {devbroker.cluster_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(len(i) == 22 and not i.startswith("-") and "=" not in i for i in ids)


def test_local_kafka_picks_ports_without_starting(tmp_path: Path) -> None:
    kafka = devbroker.LocalKafka(port=29092, security=True, data_dir=tmp_path / "d")
    try:
        p = kafka.ports
        assert p.broker == 29092 and len({p.broker, p.controller, p.sasl_ssl, p.ssl}) == 4
        assert kafka.bootstrap == "127.0.0.1:29092" and not kafka.is_running()
        info = kafka.security_info
        assert info.sasl_ssl_config()["sasl.mechanism"] == "SCRAM-SHA-512"
        assert info.sasl_ssl_config("wrong")["sasl.password"] == "wrong"
        assert info.mtls_config()["ssl.key.location"].endswith("client.key")
    finally:
        kafka.close()
    owned = devbroker.LocalKafka()
    assert owned.data_dir.is_dir()
    with pytest.raises(RuntimeError, match="security=True"):
        _ = owned.security_info
    owned.close()  # never started: close() just removes the temp dir it made
    assert not owned.data_dir.exists()


def test_scram_credentials_are_validated() -> None:
    with pytest.raises(ValueError, match="SCRAM"):
        devbroker.LocalKafka(security=True, scram_password="a,b")


def test_security_info_is_plain_data(tmp_path: Path) -> None:
    info = SecurityInfo("h:1", "h:2", tmp_path / "ca", tmp_path / "c", tmp_path / "k", "u", "p")
    assert info.mtls_config()["bootstrap.servers"] == "h:2"


def test_cache_dir_default_is_outside_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(devbroker.CACHE_ENV, raising=False)
    default = devbroker.cache_dir("4.1.1")
    assert default == Path("~/.cache/enrollment-classifier/kafka-4.1.1").expanduser().resolve()
    assert not default.is_relative_to(REPO)


@pytest.fixture
def fake_mvn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``mvn`` on PATH that logs each call and 'downloads' two jars (or fails on demand)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "mvn"
    script.write_text(
        "#!/bin/sh\n"
        f'echo call >> "{tmp_path}/calls"\n'
        f'[ -e "{tmp_path}/fail" ] && {{ echo "boom from mvn"; exit 1; }}\n'
        'for a in "$@"; do case "$a" in -DoutputDirectory=*) out="${a#*=}";; esac; done\n'
        'mkdir -p "$out" && touch "$out/kafka_2.13-4.1.1.jar" "$out/kafka-clients-4.1.1.jar"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv(devbroker.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path


def _calls(root: Path) -> int:
    path = root / "calls"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_ensure_jars_fetches_once(fake_mvn: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lib = devbroker.ensure_jars("4.1.1")
    assert lib == fake_mvn / "cache" / "kafka-4.1.1" / "lib"
    assert (lib / "kafka_2.13-4.1.1.jar").is_file()
    assert "fetching Kafka 4.1.1 jars" in capsys.readouterr().err
    assert devbroker.ensure_jars("4.1.1") == lib
    assert _calls(fake_mvn) == 1
    assert capsys.readouterr().err == ""


def test_ensure_jars_redoes_interrupted_download(fake_mvn: Path) -> None:
    (fake_mvn / "fail").touch()
    with pytest.raises(devbroker.DevBrokerError, match="boom from mvn"):
        devbroker.ensure_jars("4.1.1")
    home = fake_mvn / "cache" / "kafka-4.1.1"
    assert not (home / ".complete").exists()
    (fake_mvn / "fail").unlink()
    (home / "lib").mkdir(exist_ok=True)
    (home / "lib" / "partial.jar").touch()  # leftovers of an interrupted run
    lib = devbroker.ensure_jars("4.1.1")
    assert not (lib / "partial.jar").exists() and (home / ".complete").is_file()
    assert _calls(fake_mvn) == 2


def test_cli_fetch_only(fake_mvn: Path) -> None:
    assert devbroker.main(["--fetch-only"]) == 0
    assert devbroker.main(["--fetch-only"]) == 0
    assert _calls(fake_mvn) == 1
