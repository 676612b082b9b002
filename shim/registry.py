"""Registry I/O through oras-py: fetch manifests and indexes, verified.

oras-py (oras-project/oras-py) gives the auth backends (bearer-token
negotiation, basic auth: ``oras.auth``) on a requests session. Its
``Registry.do_request`` retries for about two minutes and its requests carry
no timeout, neither acceptable in front of ``podman run``; and importing
``oras.provider`` (which pulls in jsonschema) costs ~30 ms more than
``oras.auth``. So this adapter makes each request itself on the session, with
a deadline, chooses oras's token or basic backend from the registry's
``WWW-Authenticate`` challenge, and retries once after authenticating
(distribution-spec "Pulling manifests"; the token authentication spec).

Every body is capped (4 MiB, the limit Distribution applies to manifests) and
its sha256 checked against the digest asked for and against the
``Docker-Content-Digest`` the registry announces.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from shim.errors import DigestMismatch, RegistryError

MAX_MANIFEST_BYTES = 4 * 1024 * 1024

ACCEPT = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)

#: Registry host names whose API lives elsewhere (docker.io's does).
API_HOSTS = {"docker.io": "registry-1.docker.io"}


@dataclass(frozen=True)
class Manifest:
    """A fetched manifest or index: its exact bytes, media type and verified digest."""

    media_type: str
    body: bytes
    digest: str


class RegistryClient:
    """One registry, one session, one deadline.

    Args:
        domain: registry host[:port] as in the reference (``docker.io`` is
            reached at ``registry-1.docker.io``).
        insecure: plain HTTP allowed and TLS not verified (registries.conf
            ``insecure``, imagefit's ``insecure_registries`` or
            ``--tls-verify=false``): HTTPS is tried first, then HTTP, as
            containers/image does.
        credentials: (username, password) or None for anonymous access.
        timeout: total seconds for all requests made through this client.
    """

    def __init__(
        self,
        domain: str,
        *,
        insecure: bool = False,
        credentials: tuple[str, str] | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.domain = domain
        self.api_host = API_HOSTS.get(domain, domain)
        self.insecure = insecure
        self.credentials = credentials
        self.deadline = time.monotonic() + timeout
        self.timeout = timeout
        self.requests_made = 0
        self._scheme: str | None = None
        self._session = None
        self._token_auth = None
        self._auth_header: dict[str, str] = {}

    # -- plumbing -----------------------------------------------------------
    def _remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise RegistryError(f"registry {self.domain} timed out after {self.timeout:g} s")
        return left

    def _http(self):
        """The requests session: cookies ignored (as oras does), every request
        bounded by the client's deadline."""
        if self._session is None:
            from http.cookiejar import DefaultCookiePolicy

            import requests

            session = requests.Session()
            session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
            adapter = _deadline_adapter(self)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            self._session = session
        return self._session

    def _backend(self, name: str):
        import oras.auth

        return oras.auth.get_auth_backend(name, self._http(), tls_verify=not self.insecure)

    def _send(self, url: str, headers: dict[str, str]):
        import requests

        session = self._http()
        left = self._remaining()
        self.requests_made += 1
        try:
            return session.get(
                url,
                headers=headers,
                stream=True,
                verify=not self.insecure,
                timeout=(min(left, 3.0), left),
                allow_redirects=True,
            )
        except requests.exceptions.SSLError as exc:
            raise RegistryError(f"TLS error talking to {self.domain}: {_cause(exc)}") from None
        except requests.exceptions.Timeout:
            raise RegistryError(
                f"registry {self.domain} timed out after {self.timeout:g} s"
            ) from None
        except requests.exceptions.ConnectionError as exc:
            raise RegistryError(f"cannot reach registry {self.domain}: {_cause(exc)}") from None
        except requests.exceptions.RequestException as exc:
            raise RegistryError(f"request to {self.domain} failed: {_short(exc)}") from None

    def _authenticate(self, response) -> bool:
        """Answer a 401 challenge with oras's token or basic backend."""
        challenge = response.headers.get("WWW-Authenticate", "")
        scheme = challenge.split(" ", 1)[0].lower()
        if scheme == "basic":
            if not self.credentials:
                return False
            backend = self._backend("basic")
            backend.set_basic_auth(*self.credentials)
            self._auth_header = backend.get_auth_header()
            return True
        if scheme == "bearer":
            if self._token_auth is None:
                self._token_auth = self._backend("token")
            auth = self._token_auth
            if self.credentials:
                auth.set_basic_auth(*self.credentials)
            try:
                headers, changed = auth.authenticate_request(response, {})
            except Exception as exc:  # oras raises bare exceptions from token requests
                raise RegistryError(
                    f"token request to {self.domain} failed: {_short(exc)}"
                ) from None
            if changed and isinstance(headers.get("Authorization"), str):
                self._auth_header = {"Authorization": headers["Authorization"]}
                return True
        return False

    def _get(self, path: str, accept: str):
        headers = {"Accept": accept}
        schemes = (
            [self._scheme] if self._scheme else (["https", "http"] if self.insecure else ["https"])
        )
        last_error: RegistryError | None = None
        for scheme in schemes:
            url = f"{scheme}://{self.api_host}{path}"
            try:
                response = self._send(url, {**headers, **self._auth_header})
            except RegistryError as exc:
                last_error = exc
                continue
            self._scheme = scheme
            if response.status_code == 401 and self._authenticate(response):
                response.close()
                response = self._send(url, {**headers, **self._auth_header})
            return response
        assert last_error is not None
        raise last_error

    # -- API ----------------------------------------------------------------
    def get_manifest(self, repository: str, reference: str) -> Manifest:
        """GET /v2/<repository>/manifests/<reference> (distribution-spec).

        Args:
            repository: repository path, e.g. ``library/ubuntu``.
            reference: a tag or a ``sha256:`` digest.

        Returns:
            The verified Manifest.

        Raises:
            RegistryError: unreachable, timeout, HTTP error status, body over
                4 MiB, missing media type.
            DigestMismatch: the body does not hash to `reference` (when a
                digest) or to the announced ``Docker-Content-Digest``.
        """
        response = self._get(f"/v2/{repository}/manifests/{reference}", ", ".join(ACCEPT))
        where = (
            f"{self.domain}/{repository}:{reference}"
            if ":" not in reference
            else (f"{self.domain}/{repository}@{reference}")
        )
        with response:
            status = response.status_code
            if status != 200:
                raise RegistryError(_status_message(status, where))
            body = bytearray()
            try:
                for chunk in response.iter_content(65536):
                    body += chunk
                    if len(body) > MAX_MANIFEST_BYTES:
                        raise RegistryError(
                            f"{where}: manifest larger than {MAX_MANIFEST_BYTES} bytes"
                        )
                    self._remaining()
            except RegistryError:
                raise
            except Exception as exc:  # requests/urllib3 errors while streaming
                raise RegistryError(
                    f"{where}: reading the manifest failed: {_short(exc)}"
                ) from None
            announced = response.headers.get("Docker-Content-Digest")
            media_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip()
        data = bytes(body)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if reference.startswith("sha256:") and reference != digest:
            raise DigestMismatch(f"{where}: content hashes to {digest}, not the digest asked for")
        if announced and announced.startswith("sha256:") and announced != digest:
            raise DigestMismatch(
                f"{where}: content hashes to {digest}, registry announced {announced}"
            )
        if not media_type:
            raise RegistryError(f"{where}: registry sent no Content-Type")
        return Manifest(media_type=media_type, body=data, digest=digest)


def _deadline_adapter(client: RegistryClient):
    """An HTTPAdapter that gives every request (oras's token requests too)
    the client's remaining time as its timeout."""
    from requests.adapters import HTTPAdapter

    class DeadlineAdapter(HTTPAdapter):
        def send(self, request, timeout=None, **kwargs):  # noqa: D102
            if timeout is None:
                left = client._remaining()
                timeout = (min(left, 3.0), left)
            return super().send(request, timeout=timeout, **kwargs)

    return DeadlineAdapter(max_retries=0)


def _status_message(status: int, where: str) -> str:
    if status in (401, 403):
        return f"{where}: access denied (HTTP {status}); log in with the runtime first"
    if status == 404:
        return f"{where}: not found (HTTP 404)"
    if status == 429:
        return f"{where}: rate limited by the registry (HTTP 429)"
    return f"{where}: registry answered HTTP {status}"


def _cause(exc: BaseException) -> str:
    """A short human cause for a requests connection/TLS error (urllib3's own
    text nests several exceptions and repeats the URL)."""
    chain, seen = [], exc
    while seen is not None and len(chain) < 8:
        chain.append(seen)
        seen = (
            seen.__context__
            or seen.__cause__
            or (seen.args[0] if seen.args and isinstance(seen.args[0], BaseException) else None)
        )
    text = " ".join(f"{type(e).__name__} {e}" for e in chain)
    for needle, cause in (
        (
            "WRONG_VERSION_NUMBER",
            "the registry speaks plain HTTP (use --tls-verify=false or mark it insecure in registries.conf)",
        ),
        ("CERTIFICATE_VERIFY_FAILED", "certificate not trusted"),
        ("NameResolutionError", "DNS lookup failed"),
        ("Name or service not known", "DNS lookup failed"),
        ("Temporary failure in name resolution", "DNS lookup failed"),
        ("Connection refused", "connection refused"),
        ("No route to host", "no route to host"),
        ("Network is unreachable", "network unreachable"),
        ("Connection reset", "connection reset"),
        ("RemoteDisconnected", "the registry closed the connection"),
    ):
        if needle in text:
            return cause
    return _short(exc)


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
