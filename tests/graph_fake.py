"""A local fake of the Microsoft Graph and Entra ID contract the Graph source depends on.

Not Microsoft's service: an HTTPS server on 127.0.0.1 that answers the way the documentation
says the real endpoints answer, so the real source (httpx, MSAL, the Kafka side) can run
against it:

* OpenID configuration ``/{tenant}/v2.0/.well-known/openid-configuration`` (MSAL reads it),
  token endpoint ``POST /{tenant}/oauth2/v2.0/token`` (client credentials with a secret or a
  certificate assertion; ``{"token_type": "Bearer", "expires_in", "ext_expires_in",
  "access_token"}``, or ``{"error": "invalid_client", "error_description": "AADSTS..."}``).
* ``GET /beta/deviceManagement/troubleshootingEvents`` and ``.../autopilotEvents``: pages of
  ``{"@odata.context", "value": [...], "@odata.nextLink"}``, a bearer token required
  (401 ``InvalidAuthenticationToken`` otherwise), errors as ``{"error": {"code", "message",
  "innerError"}}``.
* ``POST /beta/deviceManagement/reports/exportJobs`` and ``GET .../exportJobs('{id}')``
  (``deviceManagementExportJob``: notStarted, inProgress, completed without then with ``url``)
  and the pre-signed download: a zip with one CSV (byte-order mark, every field quoted), refused
  if a bearer token comes with it.
* Scripted faults, served in order to matching requests: throttling as 500 (Intune's query
  broker text, no Retry-After) and as 429 with Retry-After, 503 bursts, 401, 403.
* Paging quirks: an event repeated on two consecutive pages; events added while polls run
  (``add``) to play late arrivals.

Every request is logged (time, method, path, status) for tests to assert on.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import ipaddress
import ssl
import threading
import time
import uuid
import zipfile
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jwt
import orjson
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

EXPORT_JOBS = "/beta/deviceManagement/reports/exportJobs"
COLLECTION_PATHS = {"/beta/deviceManagement/troubleshootingEvents": "troubleshootingEvents",
                    "/beta/deviceManagement/autopilotEvents": "autopilotEvents"}
INTUNE_THROTTLE_TEXT = "Rate limit reached because of too many requests to query broker"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass
class Fault:
    """One scripted answer, given to the next request whose path starts with ``path``."""

    status: int
    path: str = "/beta/"
    retry_after: str | None = None
    body: bytes | None = None

    def payload(self) -> bytes:
        if self.body is not None:
            return self.body
        code = {401: "InvalidAuthenticationToken", 403: "Forbidden", 429: "TooManyRequests",
                503: "ServiceUnavailable"}.get(self.status, "InternalServerError")
        message = INTUNE_THROTTLE_TEXT if self.status == 500 else f"fake {self.status}"
        return graph_error(code, message)


@dataclass
class Logged:
    at: float
    method: str
    path: str
    status: int


@dataclass
class FakeState:
    tenant: str
    client_id: str
    client_secret: str | None = None
    certificate_thumbprint: str | None = None  # SHA-1 hex of the app's certificate
    certificate_public_key: Any = None
    page_size: int = 3
    collections: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {n: [] for n in COLLECTION_PATHS.values()})
    repeat_across_pages: set[str] = field(default_factory=set)  # collections with the quirk
    forbidden: set[str] = field(default_factory=set)  # collections answering 403
    delay_s: float = 0.0  # before each collection page: a slow tenant, to kill a poll mid-way
    report_rows: list[dict[str, str]] = field(default_factory=list)  # EnrollmentActivity
    # What successive GETs of an export job say before it is ready with its url: Graph can say
    # "completed" before the url is filled.
    job_progress: tuple[str, ...] = ("inProgress", "completed")
    jobs: dict[str, int] = field(default_factory=dict)  # job id -> GETs so far
    faults: deque[Fault] = field(default_factory=deque)
    log: list[Logged] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for fault in list(self.faults):
                if path.startswith(fault.path):
                    self.faults.remove(fault)
                    return fault
        return None

    def add(self, collection: str, *events: dict[str, Any]) -> None:
        with self.lock:
            # New events appear at the head, as in a feed: pages being read shift by one.
            self.collections[collection][0:0] = list(events)

    def count(self, path_prefix: str = "/beta/") -> int:
        with self.lock:
            return sum(1 for e in self.log if e.path.startswith(path_prefix))

    def statuses(self, path_prefix: str = "/beta/") -> list[int]:
        with self.lock:
            return [e.status for e in self.log if e.path.startswith(path_prefix)]


def graph_error(code: str, message: str) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message, "innerError": {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": str(uuid.uuid4()), "client-request-id": str(uuid.uuid4())}}})


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        state = self.server.state
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, headers, payload = self._route(state, method, url.path, parse_qs(url.query),
                                               body)
        with state.lock:
            state.log.append(Logged(time.monotonic(), method, url.path, status))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _route(self, state: FakeState, method: str, path: str, query: dict[str, list[str]],
               body: bytes) -> tuple[int, dict[str, str], bytes]:
        base = self.server.base_url
        if method == "GET" and path == f"/{state.tenant}/v2.0/.well-known/openid-configuration":
            return 200, {}, orjson.dumps({
                "issuer": f"{base}/{state.tenant}/v2.0",
                "authorization_endpoint": f"{base}/{state.tenant}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/{state.tenant}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post", "private_key_jwt", "client_secret_basic"]})
        if method == "POST" and path == f"/{state.tenant}/oauth2/v2.0/token":
            return self._token(state, parse_qs(body.decode()))
        if method == "GET" and path in COLLECTION_PATHS:
            return self._collection(state, COLLECTION_PATHS[path], path, query)
        if path.startswith(EXPORT_JOBS):
            return self._export_job(state, method, path)
        if method == "GET" and path.startswith("/downloads/"):
            return self._download(state, path)
        return 404, {}, graph_error("BadRequest", f"Resource not found for the segment {path}")

    def _token(self, state: FakeState, form: dict[str, list[str]]
               ) -> tuple[int, dict[str, str], bytes]:
        def one(name: str) -> str:
            return (form.get(name) or [""])[0]

        fault = state.take_fault("/token")
        if fault is not None:
            return fault.status, _retry_after(fault), fault.payload()
        if one("grant_type") != "client_credentials" or one("client_id") != state.client_id:
            return 400, {}, _oauth_error("unauthorized_client", "AADSTS700016: Application "
                                         "not found in the directory.")
        if not one("scope").endswith("/.default"):
            return 400, {}, _oauth_error("invalid_scope", "AADSTS1002012: The provided "
                                         "value for scope is not valid.")
        if not (self._secret_ok(state, one("client_secret"))
                or self._assertion_ok(state, one("client_assertion_type"),
                                      one("client_assertion"))):
            return 401, {}, _oauth_error("invalid_client", "AADSTS7000215: Invalid client "
                                         "secret provided.")
        token = uuid.uuid4().hex
        with state.lock:
            state.tokens.add(token)
        return 200, {}, orjson.dumps({"token_type": "Bearer", "expires_in": 3599,
                                      "ext_expires_in": 3599, "access_token": token})

    @staticmethod
    def _secret_ok(state: FakeState, secret: str) -> bool:
        return state.client_secret is not None and secret == state.client_secret

    @staticmethod
    def _assertion_ok(state: FakeState, kind: str, assertion: str) -> bool:
        if kind != ASSERTION_TYPE or not assertion or state.certificate_public_key is None:
            return False
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(assertion, state.certificate_public_key, algorithms=["RS256", "PS256"],
                                audience=None, options={"verify_aud": False})
        except jwt.PyJWTError:
            return False
        # x5t is the certificate's SHA-1 thumbprint, base64 (padded or base64url) encoded.
        x5t = str(header.get("x5t", "")).replace("-", "+").replace("_", "/").rstrip("=")
        try:
            thumbprint = base64.b64decode(x5t + "=" * (-len(x5t) % 4)).hex()
        except ValueError:
            return False
        return thumbprint == state.certificate_thumbprint and claims.get("iss") == state.client_id

    def _authorized(self, state: FakeState) -> bool:
        auth = self.headers.get("Authorization", "")
        with state.lock:
            return auth.startswith("Bearer ") and auth[7:] in state.tokens

    def _export_job(self, state: FakeState, method: str, path: str
                    ) -> tuple[int, dict[str, str], bytes]:
        if not self._authorized(state):
            return 401, {}, graph_error("InvalidAuthenticationToken",
                                        "Access token validation failure.")
        fault = state.take_fault(EXPORT_JOBS)
        if fault is not None:
            return fault.status, _retry_after(fault), fault.payload()
        if method == "POST" and path == EXPORT_JOBS:
            job_id = f"EnrollmentActivity_{uuid.uuid4()}"
            with state.lock:
                state.jobs[job_id] = 0
            return 201, {}, orjson.dumps(self._job(job_id, "notStarted", None))
        job_id = unquote(path).removeprefix(EXPORT_JOBS).removeprefix("('").removesuffix("')")
        with state.lock:
            if method != "GET" or job_id not in state.jobs:
                return 404, {}, graph_error("ResourceNotFound", "No such export job.")
            seen = state.jobs[job_id] = state.jobs[job_id] + 1
        if seen <= len(state.job_progress):
            return 200, {}, orjson.dumps(self._job(job_id, state.job_progress[seen - 1], None))
        url = f"{self.server.base_url}/downloads/{job_id}.zip?sv=2026-01-01&sig=fake"
        return 200, {}, orjson.dumps(self._job(job_id, "completed", url))

    @staticmethod
    def _job(job_id: str, status: str, url: str | None) -> dict[str, Any]:
        """A deviceManagementExportJob with the documented fields."""
        now = dt.datetime.now(dt.UTC)
        return {"@odata.type": "#microsoft.graph.deviceManagementExportJob", "id": job_id,
                "reportName": "EnrollmentActivity", "filter": "", "select": [],
                "format": "csv", "snapshotId": None,
                "localizationType": "replaceLocalizableValues", "status": status, "url": url,
                "requestDateTime": now.isoformat(),
                "expirationDateTime": (now + dt.timedelta(hours=1)).isoformat()}

    def _download(self, state: FakeState, path: str) -> tuple[int, dict[str, str], bytes]:
        # A pre-signed blob URL: a bearer token sent here would be a leak, so it is refused.
        if "Authorization" in self.headers:
            return 400, {}, b"<Error><Code>InvalidHeaderValue</Code></Error>"
        job_id = path.removeprefix("/downloads/").removesuffix(".zip")
        with state.lock:
            known, rows = job_id in state.jobs, list(state.report_rows)
        if not known:
            return 404, {}, b"<Error><Code>BlobNotFound</Code></Error>"
        return 200, {"Content-Type": "application/zip"}, report_zip(job_id, rows)

    def _collection(self, state: FakeState, name: str, path: str,
                    query: dict[str, list[str]]) -> tuple[int, dict[str, str], bytes]:
        if not self._authorized(state):
            return 401, {}, graph_error("InvalidAuthenticationToken",
                                        "Access token validation failure.")
        fault = state.take_fault(path)
        if fault is not None:
            return fault.status, _retry_after(fault), fault.payload()
        if state.delay_s:
            time.sleep(state.delay_s)
        if name in state.forbidden:
            return 403, {}, graph_error("Forbidden", "Application is not authorized to "
                                        "perform this operation.")
        offset = int((query.get("$skiptoken") or ["0"])[0])
        with state.lock:
            items = state.collections[name]
            page = items[offset:offset + state.page_size]
            end = offset + state.page_size
            # The quirk: the next page starts one item early, so its first event is the
            # last of this page (what a feed that grew between two page reads looks like).
            following = end - 1 if name in state.repeat_across_pages and offset == 0 else end
            more = end < len(items)
        doc: dict[str, Any] = {
            "@odata.context": f"{self.server.base_url}/beta/$metadata#deviceManagement/{name}",
            "value": page}
        if more:
            doc["@odata.nextLink"] = f"{self.server.base_url}{path}?$skiptoken={following}"
        return 200, {}, orjson.dumps(doc)


def report_zip(job_id: str, rows: list[dict[str, str]]) -> bytes:
    """The export's zip: one CSV, UTF-8 with a byte-order mark, every field quoted."""
    text = io.StringIO(newline="")
    columns = list(rows[0]) if rows else ["EnrollmentActivityId"]
    writer = csv.DictWriter(text, fieldnames=columns, quoting=csv.QUOTE_ALL)
    writer.writeheader()
    writer.writerows(rows)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{job_id}.csv", "\ufeff" + text.getvalue())
    return out.getvalue()


def _retry_after(fault: Fault) -> dict[str, str]:
    return {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}


def _oauth_error(error: str, description: str) -> bytes:
    return orjson.dumps({"error": error, "error_description": description,
                         "error_codes": [int(description[6:description.index(":")])],
                         "timestamp": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
                         "trace_id": str(uuid.uuid4()), "correlation_id": str(uuid.uuid4())})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: FakeState
    base_url: str


@dataclass
class TlsFiles:
    cert: Path  # the server's certificate, also the CA the source must trust
    key: Path


def self_signed(directory: Path, name: str = "graph-fake") -> TlsFiles:
    """A self-signed certificate for 127.0.0.1, made now (nothing is checked in)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    files = TlsFiles(directory / f"{name}.crt", directory / f"{name}.key")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    return files


class FakeGraph:
    """``with FakeGraph(state, tls) as fake:`` serves on https://127.0.0.1:<port>."""

    def __init__(self, state: FakeState, tls: TlsFiles) -> None:
        self.state, self.tls = state, tls
        self.server = _Server(("127.0.0.1", 0), _Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls.cert, tls.key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        self.server.state, self.server.base_url = state, self.url
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeGraph:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
