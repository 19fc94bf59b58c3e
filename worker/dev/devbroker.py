"""A real single-node Apache Kafka (KRaft) broker for development, tests, demos and benchmarks.

``ensure_jars`` fetches the broker classpath from Maven Central once, into a cache outside the repo;
``LocalKafka`` runs ``kafka.Kafka`` under java on 127.0.0.1 and always tears it down again.
CLI: ``python -m worker.dev.devbroker [--port N] [--fetch-only] [--topics a,b --partitions N]``.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import fcntl
import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

KAFKA_VERSION = "4.1.1"
# Kafka 4.1's POM has log4j-api/-core 2.24.3 and slf4j-api 1.7 but no binding between them;
# without this jar every broker log line goes to slf4j's NOP logger.
LOG4J_SLF4J_BINDING = ("org.apache.logging.log4j", "log4j-slf4j-impl", "2.24.3")
CACHE_ENV = "CLASSIFIER_KAFKA_CACHE"
HOST = "127.0.0.1"
SCRAM_MECHANISM = "SCRAM-SHA-512"
_LIVE: set[LocalKafka] = set()
# Single node: internal topics RF 1 / min ISR 1 / 1 partition, no rebalance delay; a short broker
# session, since a restart after kill waits for the old registration to expire (default 9 s).
_FIXED_PROPS = """process.roles=broker,controller node.id=1 inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER num.partitions=1 auto.create.topics.enable=true
offsets.topic.replication.factor=1 offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1 transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1 share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1 group.initial.rebalance.delay.ms=0
log.cleaner.dedupe.buffer.size=2097152 broker.heartbeat.interval.ms=500
broker.session.timeout.ms=3000"""
_X509_CNF = """[req]\ndistinguished_name = dn\n[dn]\n[ca]\nbasicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash
[broker]\nbasicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth\nsubjectAltName = IP:127.0.0.1,DNS:localhost
[client]\nbasicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth\n"""


class DevBrokerError(RuntimeError):
    """Jars, certificates or the broker could not be provided; says why (with the log tail)."""


@dataclass(frozen=True)
class Ports:
    broker: int
    controller: int
    sasl_ssl: int | None = None
    ssl: int | None = None


@dataclass(frozen=True)
class SecurityInfo:
    """What a client needs for the secured listeners; files are PEM, keys unencrypted."""

    sasl_ssl_bootstrap: str
    ssl_bootstrap: str
    ca_location: Path
    client_cert_location: Path
    client_key_location: Path
    scram_username: str
    scram_password: str
    scram_mechanism: str = SCRAM_MECHANISM

    def sasl_ssl_config(self, password: str | None = None) -> dict[str, str]:
        """librdkafka settings for SASL_SSL + SCRAM; ``password`` overrides (e.g. a wrong one)."""
        return {"bootstrap.servers": self.sasl_ssl_bootstrap, "security.protocol": "SASL_SSL",
                "sasl.mechanism": self.scram_mechanism, "sasl.username": self.scram_username,
                "sasl.password": self.scram_password if password is None else password,
                "ssl.ca.location": str(self.ca_location)}

    def mtls_config(self) -> dict[str, str]:
        """librdkafka settings for the SSL listener, which requires a client certificate."""
        return {"bootstrap.servers": self.ssl_bootstrap, "security.protocol": "SSL",
                "ssl.ca.location": str(self.ca_location),
                "ssl.certificate.location": str(self.client_cert_location),
                "ssl.key.location": str(self.client_key_location)}


def cache_dir(version: str = KAFKA_VERSION) -> Path:
    """``$CLASSIFIER_KAFKA_CACHE/kafka-<v>``, default ~/.cache/enrollment-classifier/kafka-<v>."""
    root = os.environ.get(CACHE_ENV) or "~/.cache/enrollment-classifier"
    return Path(root).expanduser().resolve() / f"kafka-{version}"


def render_pom(version: str = KAFKA_VERSION) -> str:
    coords = [("org.apache.kafka", "kafka_2.13", version), LOG4J_SLF4J_BINDING]
    deps = "".join(f"<dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}"
                   "</version></dependency>" for g, a, v in coords)
    return ('<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
            "<groupId>local</groupId><artifactId>kafka-dev-broker</artifactId><version>0</version>"
            f"<packaging>pom</packaging><dependencies>{deps}</dependencies></project>\n")


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def ensure_jars(version: str = KAFKA_VERSION, *, timeout: float = 900.0) -> Path:
    """Return the ``lib`` dir holding the broker's runtime classpath; runs Maven only once.

    A marker (the POM's digest) is written last, so an interrupted download is redone; a file
    lock keeps parallel processes from downloading into the same dir.
    """
    home = cache_dir(version)
    lib, marker, pom = home / "lib", home / ".complete", render_pom(version)
    digest = hashlib.sha256(pom.encode()).hexdigest()
    if marker.is_file() and marker.read_text() == digest:
        return lib
    home.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    with (home / ".lock").open("w") as lock:
        while True:
            with contextlib.suppress(BlockingIOError):
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            if time.monotonic() > deadline:
                raise DevBrokerError(f"{home}/.lock still held after {timeout:.0f}s")
            time.sleep(0.5)
        if marker.is_file() and marker.read_text() == digest:  # another process just did it
            return lib
        if (mvn := shutil.which("mvn")) is None:
            raise DevBrokerError("mvn not found on PATH (Debian: apt-get install maven)")
        marker.unlink(missing_ok=True)
        shutil.rmtree(lib, ignore_errors=True)
        (home / "pom.xml").write_text(pom)
        print(f"fetching Kafka {version} jars from Maven Central (one time, ~45 MB)...",
              file=sys.stderr, flush=True)
        started = time.monotonic()
        cmd = [mvn, "-q", "-B", "-f", str(home / "pom.xml"), "dependency:copy-dependencies",
               "-DincludeScope=runtime", f"-DoutputDirectory={lib}"]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise DevBrokerError(f"mvn timed out after {timeout:.0f}s") from exc
        if res.returncode != 0 or not any(lib.glob("kafka_2.13-*.jar")):
            raise DevBrokerError(f"mvn exit ({res.returncode}):\n{_tail(res.stdout + res.stderr)}")
        marker.write_text(digest)
        print(f"Kafka {version} jars ready in {time.monotonic() - started:.1f}s: {lib}",
              file=sys.stderr, flush=True)
    return lib


def free_ports(count: int, *, avoid: Iterable[int] = ()) -> list[int]:
    """``count`` distinct ports free on 127.0.0.1 now (all sockets are held while choosing)."""
    avoided, chosen = set(avoid), []
    with contextlib.ExitStack() as stack:
        for _ in range(count + len(avoided) + 8):
            sock = stack.enter_context(socket.socket())
            sock.bind((HOST, 0))
            if (port := int(sock.getsockname()[1])) not in avoided:
                chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise OSError("could not find enough free ports")


def cluster_id() -> str:
    """A random KRaft cluster id: base64url UUID not starting with '-' (as Kafka's are)."""
    ids = (base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=") for _ in range(99))
    return next(cid for cid in ids if not cid.startswith("-"))


def render_server_properties(ports: Ports, log_dir: Path, tls_dir: Path | None = None) -> str:
    """server.properties for combined broker+controller mode; ``tls_dir`` adds SASL_SSL + SSL."""
    listeners = {"PLAINTEXT": ports.broker, "CONTROLLER": ports.controller}
    if tls_dir is not None:
        if ports.sasl_ssl is None or ports.ssl is None:
            raise ValueError("security listeners need sasl_ssl and ssl ports")
        listeners |= {"SASL_SSL": ports.sasl_ssl, "SSL": ports.ssl}
    props = dict(kv.split("=", 1) for kv in _FIXED_PROPS.split())
    props |= {
        "controller.quorum.voters": f"1@{HOST}:{ports.controller}",
        "listeners": ",".join(f"{n}://{HOST}:{p}" for n, p in listeners.items()),
        "advertised.listeners": ",".join(
            f"{n}://{HOST}:{p}" for n, p in listeners.items() if n != "CONTROLLER"),
        "listener.security.protocol.map": ",".join(
            f"{n}:{'PLAINTEXT' if n == 'CONTROLLER' else n}" for n in listeners),
        "log.dirs": str(log_dir),
    }
    if tls_dir is not None:
        props |= {
            "sasl.enabled.mechanisms": SCRAM_MECHANISM,
            f"listener.name.sasl_ssl.{SCRAM_MECHANISM.lower()}.sasl.jaas.config":
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(tls_dir / "broker-keystore.pem"),
            "ssl.truststore.type": "PEM", "ssl.truststore.location": str(tls_dir / "ca.pem"),
            "listener.name.ssl.ssl.client.auth": "required",
        }
    return "".join(f"{k}={v.replace(chr(92), chr(92) * 2)}\n" for k, v in props.items())


def render_log4j2(level: str = "WARN") -> str:
    """Console-only log4j2 config (the console is the broker log file); keeps the 'started' line."""
    return ("status = error\nappender.out.type = Console\nappender.out.name = OUT\n"
            "appender.out.layout.type = PatternLayout\n"
            "appender.out.layout.pattern = [%d] %p %m (%c)%n\n"
            f"rootLogger.level = {level}\nrootLogger.appenderRef.out.ref = OUT\n"
            "logger.up.name = kafka.server.KafkaRaftServer\nlogger.up.level = INFO\n")


def make_tls_material(tls_dir: Path, days: int = 30) -> None:
    """Throwaway CA, broker cert (SAN 127.0.0.1, localhost) and client cert via ``openssl``."""
    if (openssl := shutil.which("openssl")) is None:
        raise DevBrokerError("openssl not found on PATH (Debian: apt-get install openssl)")
    tls_dir.mkdir(parents=True, exist_ok=True)
    (tls_dir / "x509.cnf").write_text(_X509_CNF)
    new_key = ["-config", "x509.cnf", "-newkey", "rsa:2048", "-nodes", "-days", str(days)]

    def run(*args: str) -> None:
        res = subprocess.run([openssl, *args], cwd=tls_dir, capture_output=True, text=True,
                             timeout=60, check=False)
        if res.returncode != 0:
            raise DevBrokerError(f"openssl {args[0]} failed:\n{_tail(res.stderr)}")

    run("req", "-x509", *new_key, "-extensions", "ca", "-keyout", "ca.key", "-out", "ca.pem",
        "-subj", "/CN=enrollment-classifier dev CA")
    for name, cn in (("broker", "localhost"), ("client", "dev-client")):
        run("req", "-new", *new_key, "-keyout", f"{name}.key", "-out", f"{name}.csr",
            "-subj", f"/CN={cn}")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-days",
            str(days), "-set_serial", str(secrets.randbits(63)), "-extfile", "x509.cnf",
            "-extensions", name, "-out", f"{name}.pem")
    keystore = (tls_dir / "broker.key").read_text() + (tls_dir / "broker.pem").read_text()
    (tls_dir / "broker-keystore.pem").write_text(keystore)


def _java_command() -> list[str]:
    """java (JAVA_HOME first), wrapped so the kernel kills it if this main thread dies hard."""
    home = Path(os.environ.get("JAVA_HOME", "/nonexistent"), "bin", "java")
    if (java := str(home) if home.is_file() else shutil.which("java")) is None:
        raise DevBrokerError("java not found (JDK 17+; Debian: openjdk-17-jre-headless)")
    setpriv = shutil.which("setpriv")
    if setpriv is None or threading.current_thread() is not threading.main_thread():
        return [java]
    return [setpriv, "--pdeathsig", "KILL", java]


def create_topics(bootstrap: str, names: Sequence[str], partitions: int = 1,
                  timeout: float = 30.0) -> None:
    """Create topics (existing ones are fine) and wait until every partition has a leader."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names]
    for fut in admin.create_topics(new, operation_timeout=timeout).values():
        try:
            fut.result(timeout)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    deadline = time.monotonic() + timeout
    while True:
        topics = admin.list_topics(timeout=max(1.0, deadline - time.monotonic())).topics
        if all(n in topics and topics[n].error is None and topics[n].partitions
               and all(p.leader >= 0 for p in topics[n].partitions.values()) for n in names):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics {list(names)} not ready after {timeout:.0f}s")
        time.sleep(0.1)


class LocalKafka:
    """A single-node KRaft broker on 127.0.0.1; a context manager that always cleans up.

    ``stop()``/``kill()`` keep data dir and ports, so ``start()`` restarts the same broker;
    ``close()`` also deletes the data dir (only one this object created itself).
    """

    def __init__(self, *, port: int = 0, security: bool = False,
                 data_dir: str | Path | None = None, version: str = KAFKA_VERSION,
                 startup_timeout: float = 90.0, heap: str = "512m", log_level: str = "WARN",
                 scram_username: str = "classifier", scram_password: str | None = None) -> None:
        self.version, self.security, self.startup_timeout = version, security, startup_timeout
        self.heap, self.log_level, self.scram_username = heap, log_level, scram_username
        self.scram_password = scram_password or secrets.token_urlsafe(18)
        if any(c in scram_username + self.scram_password for c in ',[]="=\''):
            raise ValueError("SCRAM username/password must not contain , [ ] = or quotes")
        picked = free_ports((1 if port else 2) + 2 * security, avoid=[port] if port else [])
        self.ports = Ports(broker=port or picked.pop(), controller=picked.pop(),
                           sasl_ssl=picked.pop() if security else None,
                           ssl=picked.pop() if security else None)
        self._owns_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="kafka-dev-"))
        self.log_path = self.data_dir / "broker.log"
        self._proc: subprocess.Popen[bytes] | None = None
        _LIVE.add(self)

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.ports.broker}"

    @property
    def security_info(self) -> SecurityInfo:
        if not self.security:
            raise RuntimeError("security_info needs LocalKafka(security=True)")
        tls = self.data_dir / "tls"
        return SecurityInfo(f"{HOST}:{self.ports.sasl_ssl}", f"{HOST}:{self.ports.ssl}",
                            tls / "ca.pem", tls / "client.pem", tls / "client.key",
                            self.scram_username, self.scram_password)

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return _tail(self.log_path.read_text(errors="replace"), lines)
        except OSError:
            return "(no broker log)"

    def start(self) -> LocalKafka:
        """Start, or restart on the same data dir and ports; return once the broker answers."""
        if self.is_running():
            return self
        _LIVE.add(self)
        java, classpath = _java_command(), str(ensure_jars(self.version) / "*")
        kraft, tls = self.data_dir / "kraft", self.data_dir / "tls"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.security and not (tls / "broker-keystore.pem").is_file():
            make_tls_material(tls)
        props, log4j = self.data_dir / "server.properties", self.data_dir / "log4j2.properties"
        tls_dir = tls if self.security else None
        props.write_text(render_server_properties(self.ports, kraft, tls_dir))
        log4j.write_text(render_log4j2(self.log_level))
        jvm = [f"-Dlog4j2.configurationFile={log4j}", "-Djava.awt.headless=true", "-cp", classpath]
        if not (kraft / "meta.properties").is_file():
            cmd = [*java, "-Xmx256m", *jvm, "kafka.tools.StorageTool", "format", "-g",
                   "-t", cluster_id(), "-c", str(props)]
            if self.security:
                user = f"name={self.scram_username},password={self.scram_password}"
                cmd += ["--add-scram", f"{SCRAM_MECHANISM}=[{user}]"]
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
            if res.returncode != 0:
                raise DevBrokerError(f"storage format failed:\n{_tail(res.stdout + res.stderr)}")
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [*java, "-Xms128m", f"-Xmx{self.heap}", *jvm, f"-Dkafka.logs.dir={self.data_dir}",
                 "kafka.Kafka", str(props)], stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, cwd=self.data_dir, start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.kill()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        # log_level 0: no "connection refused" noise on stderr while the JVM boots
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
        while True:
            if not self.is_running():
                raise DevBrokerError(f"broker exited during startup; {self.log_path}:\n"
                                     f"{self.log_tail()}")
            with contextlib.suppress(KafkaException):
                if admin.list_topics(timeout=1.0).brokers:
                    return
            if time.monotonic() > deadline:
                raise DevBrokerError(f"broker not ready after {self.startup_timeout:.0f}s; "
                                     f"{self.log_path}:\n{self.log_tail()}")
            time.sleep(0.2)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (controlled shutdown), wait up to ``timeout``, then SIGKILL."""
        if (proc := self._proc) is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self._proc = None

    def kill(self) -> None:
        """SIGKILL now, as a crash would."""
        if (proc := self._proc) is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)
        self._proc = None

    def close(self, timeout: float = 30.0) -> None:
        """Stop the broker and delete the data dir if this object created it."""
        self.stop(timeout)  # if this raises, the atexit hook tries again
        _LIVE.discard(self)
        if self._owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def create_topics(self, names: Sequence[str], partitions: int = 1,
                      timeout: float = 30.0) -> None:
        create_topics(self.bootstrap, names, partitions, timeout)

    def __enter__(self) -> LocalKafka:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


@atexit.register
def _close_all() -> None:
    for kafka in list(_LIVE):
        kafka.close(timeout=10.0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.dev.devbroker",
                                     description="Run a local single-node Kafka until Ctrl-C.")
    parser.add_argument("--port", type=int, default=0, help="broker port (default: a free one)")
    parser.add_argument("--fetch-only", action="store_true", help="only download the jars")
    parser.add_argument("--topics", default="", help="comma-separated topics to create")
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--security", action="store_true", help="add SASL_SSL and mTLS listeners")
    args = parser.parse_args(argv)
    try:
        ensure_jars()
        if args.fetch_only:
            return 0
        for sig in (signal.SIGINT, signal.SIGTERM):  # both unwind like Ctrl-C, so cleanup runs
            signal.signal(sig, signal.default_int_handler)  # (background jobs ignore SIGINT)
        with LocalKafka(port=args.port, security=args.security) as kafka:
            if topics := [t.strip() for t in args.topics.split(",") if t.strip()]:
                kafka.create_topics(topics, args.partitions)
            print(f"KAFKA_BOOTSTRAP_SERVERS={kafka.bootstrap}", flush=True)
            if args.security:
                for key, value in asdict(kafka.security_info).items():
                    print(f"KAFKA_{key.upper()}={value}", flush=True)
            print(f"broker log: {kafka.log_path} (Ctrl-C to stop)", file=sys.stderr, flush=True)
            while kafka.is_running():
                time.sleep(0.5)
            print(f"broker exited:\n{kafka.log_tail()}", file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        return 0
    except (DevBrokerError, TimeoutError, KafkaException) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
