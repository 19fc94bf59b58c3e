"""App-only tokens for Graph: OAuth2 client credentials through MSAL, with a client secret or
a certificate. MSAL caches the token and asks for a new one before it expires.

MSAL reads the authority's OpenID configuration when the application is created, so that is
done on first use, and its failures are verdicts like any other request's. A custom
``--authority-url`` (sovereign clouds; tests) is used as given: instance discovery against
login.microsoftonline.com is off, as MSAL documents for authorities known to the caller.
Secrets never reach a log: only MSAL's error codes and descriptions do.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
import msal
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from msal.exceptions import MsalServiceError

from worker.sources.graph.client import TokenUnavailable
from worker.sources.graph.errors import connection_failed, token_refused


def certificate_credential(pem_path: Path) -> dict[str, str]:
    """MSAL's certificate credential from one PEM file holding the private key and the
    certificate (what ``openssl req -x509 ... -keyout k -out c; cat k c`` gives). Raises
    ValueError naming the problem."""
    try:
        text = pem_path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {pem_path}: {exc}") from None
    if "PRIVATE KEY-----" not in text:
        raise ValueError(f"{pem_path} holds no PEM private key")
    try:
        cert = x509.load_pem_x509_certificate(text.encode("ascii"))
    except ValueError:
        raise ValueError(f"{pem_path} holds no PEM certificate") from None
    # Entra ID identifies the key by the certificate's SHA-1 thumbprint (the x5t header).
    thumbprint = hashlib.sha1(cert.public_bytes(Encoding.DER), usedforsecurity=False).hexdigest()
    return {"private_key": text, "thumbprint": thumbprint,
            "public_certificate": cert.public_bytes(Encoding.PEM).decode("ascii")}


class _MsalHttp:
    """MSAL's HttpClient interface (``get``/``post`` returning status_code, text, headers)
    over the source's httpx client, so tokens use the same TLS settings and timeouts. MSAL was
    written against requests, which sends a bytes form value (the certificate assertion) as
    it is; httpx would send its repr, so values are decoded here."""

    def __init__(self, http: httpx.Client) -> None:
        self._http = http

    def post(self, url: str, params: Any = None, data: Any = None, headers: Any = None,
             **_: Any) -> httpx.Response:
        if isinstance(data, dict):
            form = {k: v.decode() if isinstance(v, bytes) else v for k, v in data.items()}
            return self._http.post(url, params=params, data=form, headers=headers)
        content = data.encode() if isinstance(data, str) else data
        return self._http.post(url, params=params, content=content, headers=headers)

    def get(self, url: str, params: Any = None, headers: Any = None,
            **_: Any) -> httpx.Response:
        return self._http.get(url, params=params, headers=headers)

    def close(self) -> None:
        """The source owns the httpx client and closes it."""


class MsalTokens:
    """Implements client.Tokens."""

    def __init__(self, *, authority_url: str, tenant_id: str, client_id: str,
                 credential: str | dict[str, str], graph_url: str, http: httpx.Client) -> None:
        self._authority = f"{authority_url.rstrip('/')}/{tenant_id}"
        self._client_id, self._credential, self._http = client_id, credential, http
        self._scope = f"{graph_url.rstrip('/')}/.default"
        self._app: msal.ConfidentialClientApplication | None = None

    def token(self) -> str:
        try:
            result: dict[str, Any] = self._application().acquire_token_for_client(
                scopes=[self._scope])
        except (httpx.HTTPStatusError, MsalServiceError) as exc:  # MSAL raises on a 5xx
            raise TokenUnavailable(token_refused("server_error", str(exc))) from None
        except httpx.TransportError as exc:
            raise TokenUnavailable(connection_failed(f"login: {type(exc).__name__}: {exc}")
                                   ) from None
        access = result.get("access_token")
        if isinstance(access, str) and access:
            return access
        raise TokenUnavailable(token_refused(str(result.get("error", "no access_token")),
                                             str(result.get("error_description", ""))))

    def _application(self) -> msal.ConfidentialClientApplication:
        if self._app is None:
            try:
                self._app = msal.ConfidentialClientApplication(
                    self._client_id, client_credential=self._credential,
                    authority=self._authority, http_client=_MsalHttp(self._http),
                    validate_authority=False, instance_discovery=False)
            except ValueError as exc:  # OpenID configuration refused (unknown tenant, 4xx)
                raise TokenUnavailable(token_refused("invalid_authority", str(exc))) from None
        return self._app
