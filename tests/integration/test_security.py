"""The worker against a secured broker (a private ``LocalKafka(security=True)``).

* It processes events through the SASL_SSL (SCRAM-SHA-512) listener and through the mTLS
  listener with credentials given only through the environment: ``RDKAFKA_*`` variables, the
  password in a file named by ``RDKAFKA_SASL_PASSWORD_FILE``.
* A wrong password, a client certificate from a CA the broker does not trust, and a broker
  certificate the worker does not trust each end the worker with exit code 3 (fatal) within a
  bounded time and a log line that names the failure; no endless "not reachable" retries.
* The password appears nowhere: logs (with librdkafka's security debugging on), ``/metrics``,
  the probes, outputs and dead letters (values and headers), ``--print-config``, the worker's
  command line and environment.
* The HTTP port listens on the configured address only (127.0.0.1, not 0.0.0.0 or ::) and
  answers /metrics, /healthz and /readyz, 404 for anything else.

The test process itself uses the broker's PLAINTEXT listener to create topics, feed input and
read results; only the worker is confined to the secured listener it is given.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from tests.integration.support import (
    ROOT,
    Record,
    Topics,
    WorkerProcess,
    produce_samples,
    read_and_check,
    samples,
    wait_for,
)
from worker.dev.devbroker import LocalKafka

pytestmark = pytest.mark.slow

FATAL_EXIT_WITHIN_S = 90.0  # init_transactions times out after 30 s; the rest is slack
WRONG_PASSWORD = "Wr0ng-" + uuid.uuid4().hex  # distinctive, so a leak of it would show too


@dataclass(frozen=True)
class Rogue:
    """A second CA, unknown to the broker, and a client certificate it signed."""

    ca: Path
    cert: Path
    key: Path


@pytest.fixture(scope="module")
def secure_kafka() -> Iterator[LocalKafka]:
    with LocalKafka(security=True) as kafka:
        yield kafka


@pytest.fixture(scope="module")
def rogue(tmp_path_factory: pytest.TempPathFactory) -> Rogue:
    openssl = shutil.which("openssl")
    assert openssl, "openssl is needed to make an untrusted certificate"
    d = tmp_path_factory.mktemp("rogue-ca")
    (d / "x509.cnf").write_text(
        "[req]\ndistinguished_name = dn\n[dn]\n"
        "[ca]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n"
        "[client]\nbasicConstraints = CA:FALSE\n"
        "keyUsage = critical,digitalSignature,keyEncipherment\nextendedKeyUsage = clientAuth\n")
    key = ["-config", "x509.cnf", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
    for args in (
            ["req", "-x509", *key, "-extensions", "ca", "-keyout", "ca.key", "-out", "ca.pem",
             "-subj", "/CN=rogue CA"],
            # the same subject as the broker's genuine client certificate: only the issuer differs
            ["req", "-new", *key, "-keyout", "client.key", "-out", "client.csr",
             "-subj", "/CN=dev-client"],
            ["x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-days", "2",
             "-set_serial", "4242", "-extfile", "x509.cnf", "-extensions", "client",
             "-out", "client.pem"]):
        res = subprocess.run([openssl, *args], cwd=d, capture_output=True, text=True,
                             timeout=60, check=False)
        assert res.returncode == 0, res.stderr
    return Rogue(d / "ca.pem", d / "client.pem", d / "client.key")


def _password_file(directory: Path, password: str) -> Path:
    path = directory / f"sasl-password-{uuid.uuid4().hex[:6]}"
    path.write_text(password + "\n")
    path.chmod(0o600)
    return path


def _sasl_env(kafka: LocalKafka, password_file: Path) -> dict[str, str]:
    sec = kafka.security_info
    return {"KAFKA_BOOTSTRAP_SERVERS": sec.sasl_ssl_bootstrap,
            "RDKAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "RDKAFKA_SASL_MECHANISMS": sec.scram_mechanism,
            "RDKAFKA_SASL_USERNAME": sec.scram_username,
            "RDKAFKA_SASL_PASSWORD_FILE": str(password_file),
            "RDKAFKA_SSL_CA_LOCATION": str(sec.ca_location)}


def _mtls_env(kafka: LocalKafka, *, ca: Path | None = None, cert: Path | None = None,
              key: Path | None = None) -> dict[str, str]:
    sec = kafka.security_info
    return {"KAFKA_BOOTSTRAP_SERVERS": sec.ssl_bootstrap,
            "RDKAFKA_SECURITY_PROTOCOL": "SSL",
            "RDKAFKA_SSL_CA_LOCATION": str(ca or sec.ca_location),
            "RDKAFKA_SSL_CERTIFICATE_LOCATION": str(cert or sec.client_cert_location),
            "RDKAFKA_SSL_KEY_LOCATION": str(key or sec.client_key_location)}


def _topics(kafka: LocalKafka, partitions: int = 2) -> Topics:
    u = uuid.uuid4().hex[:10]
    t = Topics(f"sec-raw-{u}", f"sec-out-{u}", f"sec-dlq-{u}")
    kafka.create_topics([t.input, t.output], partitions)
    kafka.create_topics([t.dead], 1)
    return t


def _worker(kafka: LocalKafka, topics: Topics, env: dict[str, str], log_dir: Path
            ) -> WorkerProcess:
    # WorkerProcess sets KAFKA_BOOTSTRAP_SERVERS from its first argument; env then points it
    # at the secured listener, so the worker never sees the PLAINTEXT one.
    worker = WorkerProcess(kafka.bootstrap, topics, f"sec-{uuid.uuid4().hex[:10]}",
                           env={"CLASSIFIER_METRICS_ADDRESS": "127.0.0.1", **env},
                           log_dir=log_dir)
    assert worker.env["KAFKA_BOOTSTRAP_SERVERS"] == env["KAFKA_BOOTSTRAP_SERVERS"]
    # No librdkafka setting may come in from the test runner's own environment.
    for name in os.environ:
        if name.startswith("RDKAFKA_") and name not in env:
            worker.env.pop(name, None)
    return worker


def _raw_bytes(records: list[Record]) -> bytes:
    """Everything a consumer of the topic sees: values and header names and values."""
    parts = []
    for r in records:
        parts.append(orjson.dumps(r.value))
        parts += [k.encode() + b"=" + (v or b"") for k, v in r.headers.items()]
    return b"\n".join(parts)


# ------------------------------------------------------------------ the HTTP port
def _listeners(port: int) -> list[tuple[str, int]]:
    """(local address, socket inode) of every listening TCP socket on ``port``."""
    found = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, port_hex = fields[1].split(":")
            if int(port_hex, 16) != port or fields[3] != "0A":  # 0A: LISTEN
                continue
            raw = bytes.fromhex(address)
            # /proc/net/tcp* prints each 32-bit word of the address in host (little-endian) order
            words = [raw[i:i + 4][::-1] for i in range(0, len(raw), 4)]
            ip = b"".join(words)
            text = (".".join(str(b) for b in ip) if width == 8
                    else ":".join(ip[i:i + 2].hex() for i in range(0, 16, 2)))
            found.append((text, int(fields[9])))
    return found


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def _check_http_surface(worker: WorkerProcess) -> None:
    assert worker.proc is not None
    listening = _listeners(worker.port)
    ours = _socket_inodes(worker.proc.pid)
    print(f"SECURITY http listeners on port {worker.port}: {listening}")
    assert listening, f"nothing listens on {worker.port}"
    assert all(inode in ours for _, inode in listening), "the listener is not the worker's"
    assert [addr for addr, _ in listening] == ["127.0.0.1"], listening  # not 0.0.0.0, not ::
    for path in ("/metrics", "/healthz", "/readyz"):
        assert worker.get(path)[0] == 200, path
    # (http.server folds leading slashes, so "//metrics" is /metrics itself: not listed here.)
    for path in ("/", "/metrics/", "/metricsx", "/healthz/x", "/readyz/../metrics", "/debug",
                 "/favicon.ico", "/admin", "/config", "/env", "/.env", "/static/x", "/%2e%2e/"):
        code, body = worker.get(path)
        assert code == 404, (path, code)
        assert b"enrollment" not in body, path  # no metrics or state on other paths


# ------------------------------------------------------------------ tests
@pytest.mark.parametrize("listener", ["sasl_ssl", "mtls"])
def test_worker_processes_events_over_the_secured_listener_with_env_credentials(
        listener: str, secure_kafka: LocalKafka, tmp_path: Path) -> None:
    started = time.monotonic()
    password = secure_kafka.security_info.scram_password
    t = _topics(secure_kafka)
    produced = produce_samples(secure_kafka.bootstrap, t.input,
                               samples(300, seed=31 if listener == "mtls" else 37, bad_ratio=0.05))
    counts = produced.counts()
    assert counts["dead_letter"] > 0
    if listener == "sasl_ssl":
        # Debug logging on both sides: the leak check below covers librdkafka's SASL traces too.
        env = {**_sasl_env(secure_kafka, _password_file(tmp_path, password)),
               "CLASSIFIER_LOG_LEVEL": "DEBUG", "RDKAFKA_DEBUG": "security,broker"}
    else:
        env = _mtls_env(secure_kafka)
    worker = _worker(secure_kafka, t, env, tmp_path)
    try:
        worker.start().wait_ready(timeout=90)
        outputs, dead = read_and_check(secure_kafka.bootstrap, t, produced)
        wait_for(lambda: worker.metric("enrollment_input_messages_total")
                 == len(produced.expected), 30, "metrics to catch up")

        _check_http_surface(worker)
        assert worker.proc is not None
        pid = worker.proc.pid
        proc_cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        proc_environ = Path(f"/proc/{pid}/environ").read_bytes()
        exposed = {
            "/metrics": worker.get("/metrics")[1], "/healthz": worker.get("/healthz")[1],
            "/readyz": worker.get("/readyz")[1], "outputs": _raw_bytes(outputs),
            "dead letters": _raw_bytes(dead), "cmdline": proc_cmdline, "environ": proc_environ}
        code, took = worker.terminate()
        assert code == 0 and took < 30, worker.logs()
        exposed["worker log"] = worker.log_path.read_bytes()
    finally:
        worker.close()

    assert b"Kafka clients ready" in exposed["worker log"]
    if listener == "sasl_ssl":
        assert b"sasl.password" in exposed["worker log"]  # the setting is logged, masked
        assert b"SASL" in exposed["worker log"]  # librdkafka's security traces did run
    for where, blob in exposed.items():
        assert password.encode() not in blob, f"the SCRAM password leaks into {where}"
    print(f"SECURITY {listener}: {len(outputs)} outputs, {len(dead)} dead letters, "
          f"{time.monotonic() - started:.1f}s; password found nowhere")


def test_print_config_masks_the_password(secure_kafka: LocalKafka, tmp_path: Path) -> None:
    password = secure_kafka.security_info.scram_password
    env = {k: v for k, v in os.environ.items() if not k.startswith("RDKAFKA_")}
    env |= _sasl_env(secure_kafka, _password_file(tmp_path, password))
    env["CLASSIFIER_PSEUDONYMIZE_KEY"] = "pseudonym-key-" + uuid.uuid4().hex
    res = subprocess.run([sys.executable, "-m", "worker", "run", "--print-config"], cwd=ROOT,
                         env=env, capture_output=True, timeout=60, check=False)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert b"sasl.password" in out and b"**********" in out
    assert password.encode() not in out
    assert env["CLASSIFIER_PSEUDONYMIZE_KEY"].encode() not in out
    # A secret on the command line is refused, and the refusal does not echo it either.
    res = subprocess.run([sys.executable, "-m", "worker", "run", "--print-config",
                          "--kafka-config", f"sasl.password={password}"], cwd=ROOT, env=env,
                         capture_output=True, timeout=60, check=False)
    assert res.returncode == 2, res.stdout + res.stderr
    assert password.encode() not in res.stdout + res.stderr


def test_refused_credentials_end_the_worker_with_a_clear_fatal_error(
        secure_kafka: LocalKafka, rogue: Rogue, tmp_path: Path) -> None:
    t = _topics(secure_kafka)
    cases = {
        # (environment, what the fatal log line must name)
        "wrong password": (_sasl_env(secure_kafka, _password_file(tmp_path, WRONG_PASSWORD)),
                           ("authentication failed", "invalid credentials")),
        "client certificate from an untrusted CA": (
            _mtls_env(secure_kafka, cert=rogue.cert, key=rogue.key), ("bad certificate",)),
        "broker certificate not trusted": (
            _mtls_env(secure_kafka, ca=rogue.ca), ("certificate verify failed",)),
        # at-least-once has no transactions to initialise: the consumer meets the error first
        "wrong password, at-least-once": (
            {**_sasl_env(secure_kafka, _password_file(tmp_path, WRONG_PASSWORD)),
             "CLASSIFIER_GUARANTEE": "at-least-once"},
            ("authentication failed", "invalid credentials")),
        "client certificate from an untrusted CA, at-least-once": (
            {**_mtls_env(secure_kafka, cert=rogue.cert, key=rogue.key),
             "CLASSIFIER_GUARANTEE": "at-least-once"}, ("bad certificate",)),
    }
    workers = {name: _worker(secure_kafka, t, env, tmp_path) for name, (env, _) in cases.items()}
    try:
        started = time.monotonic()
        for w in workers.values():  # concurrently: exactly-once needs its 30 s init timeout
            w.start()
        exits: dict[str, tuple[int | None, float]] = {}
        deadline = started + FATAL_EXIT_WITHIN_S
        while len(exits) < len(workers) and time.monotonic() < deadline:
            for name, w in workers.items():
                if name not in exits and w.proc is not None and w.proc.poll() is not None:
                    exits[name] = (w.proc.returncode, time.monotonic() - started)
            time.sleep(0.2)
        print(f"SECURITY refused: {({n: (c, round(s, 1)) for n, (c, s) in exits.items()})}")
        for name, (_, needles) in cases.items():
            w = workers[name]
            assert name in exits, (f"{name}: still running after {FATAL_EXIT_WITHIN_S:.0f}s "
                                   f"(retrying forever?)\n{w.logs()}")
            code, _ = exits[name]
            assert code == 3, f"{name}: exit {code}\n{w.logs()}"
            lines = [orjson.loads(line) for line in w.log_path.read_bytes().splitlines()
                     if line.startswith(b"{")]
            fatal = [e for e in lines if e.get("level") == "error"
                     and str(e.get("msg", "")).startswith("fatal Kafka error")]
            assert len(fatal) == 1, f"{name}: {fatal or w.logs()}"
            text = str(fatal[0].get("error", "")).lower()
            assert any(n in text for n in needles), f"{name}: {fatal[0]}"
            assert "credentials or tls certificates" in str(fatal[0].get("hint", "")).lower()
            if "at-least-once" not in name:  # at-least-once starts without talking to Kafka
                assert b"Kafka clients ready" not in w.log_path.read_bytes()
            log = w.log_path.read_bytes()
            assert WRONG_PASSWORD.encode() not in log, f"{name}: the wrong password is logged"
            assert secure_kafka.security_info.scram_password.encode() not in log
    finally:
        for w in workers.values():
            w.close()
