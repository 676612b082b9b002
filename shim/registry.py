"""Registry I/O: fetch manifests and indexes, verified, within one deadline.

Each request is made on a requests session of this module's own (oras-py's
``Registry.do_request`` retries for about two minutes, its requests carry no
timeout, and its token backend logs to stderr and reads unbounded answers:
none acceptable in front of ``podman run``). The client answers the
registry's ``WWW-Authenticate`` challenge itself (Basic, or a bearer token
from the realm: the distribution token authentication spec) and retries
once (distribution-spec "Pulling manifests").

One deadline (``timeout`` seconds, or a ``deadline`` instant shared by the
mirrors and the registry of one resolution) covers everything: name lookup,
connect, TLS handshake, status line, headers, body, every redirect hop (at
most :data:`MAX_REDIRECTS`, followed here: :meth:`RegistryClient._send`) and
token requests; :mod:`shim.deadline` explains how (a watchdog that shuts the
client's sockets at the deadline) and why. Missing it raises
:class:`RegistryTimeout`.

Bodies: ``Accept-Encoding: gzip`` is sent and a gzip body decoded, as
containers/image does through Go's transport; decoded size capped. Every JSON
document from a registry is parsed by :func:`shim.untrusted.loads_json`
(bounded depth and number length).

Every body is capped (4 MiB, the limit Distribution applies to manifests;
1 MiB by default for blobs) and its digest checked against the digest asked
for and against the ``Docker-Content-Digest`` the registry announces.

Referrers (distribution-spec v1.1, "Listing Referrers" and "Backwards
Compatibility / Unavailable Referrers API"): :meth:`RegistryClient.referrers`
asks ``GET /v2/<name>/referrers/<digest>`` first and falls back to the
referrers tag schema (``sha256-<hex>``) when the registry answers 404, as the
spec requires; a client remembers that a registry lacks the API. The CNCF
Distribution 2.8 registry (Debian's ``docker-registry``) has no such route:
it answers ``404`` with ``text/plain`` "404 page not found" for every
referrers request, accepts a manifest with a ``subject`` (201) without the
``OCI-Subject`` header, and so relies on clients maintaining the tag.

Pushing (the author commands, :mod:`shim.author`; never the shim):
:meth:`RegistryClient.blob_exists`, :meth:`~RegistryClient.mount_blob`
(distribution-spec "Mounting a blob from another repository": Distribution
2.8 answers 201 when the source repository has the blob, else 202 with an
upload session), :meth:`~RegistryClient.put_blob` (monolithic POST + PUT,
streamed from a file), :meth:`~RegistryClient.download_blob` (streamed,
verified) and :meth:`~RegistryClient.put_manifest` (the announced
``Docker-Content-Digest`` must be the body's; ``OCI-Subject`` is returned:
Distribution 2.8 never sends it).

Threads: one client may be used from several threads (the NFD artifact
fetch does). Each thread gets a requests session of its own (requests
documents no thread-safety contract for ``Session``: psf/requests#2766);
authentication state, the request counter and the referrers memo are shared
under a lock; all sessions share the client's watchdog.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlencode, urljoin, urlsplit

from shim.deadline import Watchdog
from shim.errors import DigestMismatch, RegistryError
from shim.untrusted import loads_json, terminal_safe

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
#: Default cap for :meth:`RegistryClient.get_blob` (NFD specs are a few KiB).
MAX_BLOB_BYTES = 1024 * 1024
#: Referrers API pages followed through ``Link: <...>; rel="next"`` at most.
MAX_REFERRER_PAGES = 8
#: Descriptors kept from one referrers listing at most (after filtering).
MAX_REFERRERS = 1024
#: Redirects followed per request at most (requests' default is 30).
MAX_REDIRECTS = 5
#: Largest token-endpoint answer read (a token is a few KiB).
MAX_TOKEN_BYTES = 1024 * 1024

MEDIA_TYPE_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_TYPE_MANIFEST = "application/vnd.oci.image.manifest.v1+json"

#: Digests this client can verify (image-spec descriptor.md, registered algorithms).
_DIGEST_RE = re.compile(r"^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")
_TAG_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]")

ACCEPT = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)

#: Registry host names whose API lives elsewhere (docker.io's does).
API_HOSTS = {"docker.io": "registry-1.docker.io"}


class RegistryTimeout(RegistryError):
    """The registry did not finish answering within the client's deadline."""


@dataclass(frozen=True)
class Manifest:
    """A fetched manifest or index: its exact bytes, media type and verified digest."""

    media_type: str
    body: bytes
    digest: str


@dataclass(frozen=True)
class PushedManifest:
    """A manifest the registry accepted: its digest and the ``OCI-Subject``
    header it answered (None: it did not process a ``subject``)."""

    digest: str
    subject: str | None


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
        deadline: a ``time.monotonic()`` instant to stop at instead of
            `timeout` from now (one deadline shared by several clients:
            the mirrors and the registry of one resolution); `timeout` is
            then only quoted in messages.
    """

    def __init__(
        self,
        domain: str,
        *,
        insecure: bool = False,
        credentials: tuple[str, str] | None = None,
        timeout: float = 5.0,
        deadline: float | None = None,
    ) -> None:
        self.domain = domain
        self.api_host = API_HOSTS.get(domain, domain)
        self.insecure = insecure
        self.credentials = credentials
        self.deadline = time.monotonic() + timeout if deadline is None else deadline
        self.timeout = timeout
        self.requests_made = 0
        self.watchdog = Watchdog(self.deadline)
        self._scheme: str | None = None
        self._local = threading.local()  # .session: this thread's requests session
        self._lock = threading.RLock()  # counter, auth state
        self._auth_header: dict[str, str] = {}
        #: None: not known yet; False: the registry lacks the referrers API.
        self.referrers_api: bool | None = None
        self._referrers_probe = threading.Lock()

    # -- plumbing -----------------------------------------------------------
    def _timed_out(self) -> RegistryTimeout:
        return RegistryTimeout(f"registry {self.domain} timed out after {self.timeout:g} s")

    def _remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0 or self.watchdog.expired:
            raise self._timed_out()
        return left

    def _new_session(self):
        """A requests session: cookies ignored (as oras does), no credentials
        from ``~/.netrc`` (podman reads none; requests would add them to a
        redirect's new host: ``Session.rebuild_auth``), ``Accept-Encoding:
        gzip`` only (as Go's transport asks, which containers/image uses:
        ``pkg/tlsclientconfig`` ``NewTransport`` leaves ``DisableCompression``
        unset; :meth:`_chunks` decodes it), every socket under the client's
        watchdog (:mod:`shim.deadline`)."""
        from http.cookiejar import DefaultCookiePolicy

        import requests

        session = requests.Session()
        session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        session.auth = _no_auth  # an auth set: requests looks up no netrc entry
        session.headers["Accept-Encoding"] = "gzip"
        if self.insecure:
            # verification off was asked for (--tls-verify=false, ch-image
            # --tls-no-verify, an insecure registry): no urllib3 warning per
            # request on the user's terminal, as the runtimes print none
            import urllib3

            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        adapter = _deadline_adapter(self)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def _http(self):
        """This thread's requests session."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = self._new_session()
        return session

    def _send(self, url: str, headers: dict[str, str], method: str = "GET", data=None):
        """One request and its redirects (at most :data:`MAX_REDIRECTS`), all
        within the client's deadline.

        Redirects are followed here, not by requests (whose
        ``resolve_redirects`` reads each redirect's whole body and follows 30
        hops): a redirect's body is never read; ``Authorization`` is dropped
        when requests' ``Session.should_strip_auth`` says so (another host;
        another port or scheme except http->https on the default ports) and
        stays dropped for later hops; 303 (and 301/302 after a POST) turn
        the request into a GET without a body, as requests and Go do; 307/308
        keep the method and send the (rewound) body again.

        Raises:
            RegistryTimeout: the deadline passed (the watchdog shut the
                connection, or no time was left).
            RegistryError: unreachable, TLS failure, too many redirects.
        """
        import requests
        from requests.utils import requote_uri

        session = self._http()
        headers = dict(headers)
        for hop in range(MAX_REDIRECTS + 1):
            self._remaining()
            with self._lock:
                self.requests_made += 1
            try:
                response = session.request(
                    method,
                    url,
                    headers=headers,
                    data=data,
                    stream=True,
                    verify=not self.insecure,
                    allow_redirects=False,
                )
            except requests.exceptions.RequestException as exc:
                raise self._transport_error(exc) from None
            except ValueError:  # requests parses a redirect's Location even when not following it
                raise RegistryError(
                    f"registry {self.domain} redirected to an invalid location"
                ) from None
            location = session.get_redirect_target(response)
            if location is None:
                return response
            response.close()  # the body of a redirect is never read
            if hop == MAX_REDIRECTS:
                raise RegistryError(
                    f"registry {self.domain} redirected more than {MAX_REDIRECTS} times"
                )
            try:
                target = urljoin(url, requote_uri(location))
                urlsplit(target).port  # noqa: B018  (validates the host and port)
            except ValueError:  # a control character, a bad IPv6 literal or port
                raise RegistryError(
                    f"registry {self.domain} redirected to an invalid location"
                ) from None
            if session.should_strip_auth(url, target):
                headers.pop("Authorization", None)
            status = response.status_code
            if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
                method, data = "GET", None
                headers.pop("Content-Type", None)
            else:
                _rewind(data)
            url = target
        raise AssertionError("unreachable")  # pragma: no cover

    def _transport_error(self, exc: BaseException) -> RegistryError:
        """One line for a requests exception; a timeout whenever the deadline
        passed (the watchdog's shutdown surfaces as a connection error)."""
        import requests

        if self.watchdog.passed() or isinstance(exc, requests.exceptions.Timeout):
            return self._timed_out()
        if isinstance(exc, requests.exceptions.SSLError):
            return RegistryError(f"TLS error talking to {self.domain}: {_cause(exc)}")
        if isinstance(exc, requests.exceptions.ConnectionError):
            return RegistryError(f"cannot reach registry {self.domain}: {_cause(exc)}")
        return RegistryError(f"request to {self.domain} failed: {_short(exc)}")

    def _authenticate(self, response) -> bool:
        """Answer a 401 challenge (basic, or a bearer token)."""
        with self._lock:
            return self._authenticate_locked(response)

    def _authenticate_locked(self, response) -> bool:
        challenge = response.headers.get("WWW-Authenticate", "")
        scheme = challenge.split(" ", 1)[0].lower()
        if scheme == "basic":
            if not self.credentials:
                return False
            self._auth_header = {"Authorization": _basic(self.credentials)}
            return True
        if scheme == "bearer":
            token = self._token(_challenge_params(challenge))
            self._auth_header = {"Authorization": f"Bearer {token}"}
            return True
        return False

    def _token(self, params: dict[str, str]) -> str:
        """A bearer token from the challenge's realm (distribution "Token
        Authentication Specification": ``GET realm?service=&scope=``, Basic
        credentials when the client has some; the answer's ``token`` or
        ``access_token``), through this client's session and deadline, the
        answer at most :data:`MAX_TOKEN_BYTES` and bounded JSON. Written here
        rather than through oras's ``TokenAuth`` (``oras/auth/token.py``),
        which logs to stderr, reads the whole answer (``response.json()``)
        and raises bare exceptions.

        Raises:
            RegistryError: no http(s) realm, the endpoint unreachable, timed
                out, answered an error status, or no usable token.
        """
        realm = params.get("realm", "")
        if not realm.startswith(("https://", "http://")):
            raise RegistryError(f"registry {self.domain} named no http(s) token realm")
        try:
            parts = urlsplit(realm)
            parts.port  # noqa: B018  (validates the host and port)
        except ValueError:  # a control character, a bad IPv6 literal or port
            raise RegistryError(f"registry {self.domain} named an invalid token realm") from None
        host = terminal_safe(parts.netloc, 80)
        where = f"token request to {host} for {self.domain}"
        if self.credentials and parts.scheme == "http" and self._scheme == "https":
            # a registry reached over TLS naming a plain-HTTP realm: the Basic
            # credentials would cross the network in clear text (a downgrade)
            raise RegistryError(
                f"registry {self.domain} (HTTPS) named a plain-HTTP token realm on {host}: "
                "credentials not sent"
            )
        query = urlencode({k: params[k] for k in ("service", "scope") if params.get(k)})
        url = realm + (("&" if "?" in realm else "?") + query if query else "")
        headers = {"Accept": "application/json"}
        if self.credentials:
            headers["Authorization"] = _basic(self.credentials)
        try:
            response = self._send(url, headers)
        except RegistryTimeout:
            raise
        except RegistryError as exc:
            raise RegistryError(f"{where} failed: {exc}") from None
        with response:
            if response.status_code != 200:
                raise RegistryError(f"{where} failed: HTTP {response.status_code}")
            body = self._read_body(response, where, MAX_TOKEN_BYTES, "token answer")
        try:
            data = loads_json(body, "token answer")
        except ValueError:
            raise RegistryError(f"{where}: the answer is not JSON") from None
        token = (data.get("token") or data.get("access_token")) if isinstance(data, dict) else None
        if not isinstance(token, str) or not token or not _TOKEN_RE.match(token):
            raise RegistryError(f"{where}: the answer holds no usable token")
        return token

    def _get(self, path: str, accept: str, method: str = "GET"):
        headers = {"Accept": accept}
        schemes = (
            [self._scheme] if self._scheme else (["https", "http"] if self.insecure else ["https"])
        )
        last_error: RegistryError | None = None
        for scheme in schemes:
            url = f"{scheme}://{self.api_host}{path}"
            try:
                response = self._send(url, {**headers, **self._auth_header}, method)
            except RegistryError as exc:
                last_error = exc
                continue
            self._scheme = scheme
            if response.status_code == 401 and self._authenticate(response):
                response.close()
                response = self._send(url, {**headers, **self._auth_header}, method)
            return response
        assert last_error is not None
        raise last_error

    # -- API ----------------------------------------------------------------
    def head_digest(self, repository: str, reference: str) -> str | None:
        """HEAD /v2/<repository>/manifests/<reference>: the digest the registry
        announces (``Docker-Content-Digest``) for a tag, or None when it
        announces none (the caller then fetches and hashes the content).

        Raises:
            RegistryError: unreachable, timeout, or an error status.
        """
        response = self._get(
            f"/v2/{repository}/manifests/{reference}", ", ".join(ACCEPT), method="HEAD"
        )
        with response:
            if response.status_code != 200:
                raise RegistryError(
                    _status_message(response.status_code, f"{self.domain}/{repository}:{reference}")
                )
            announced = response.headers.get("Docker-Content-Digest", "")
        return announced if announced.startswith("sha256:") else None

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
            data = self._read_body(response, where, MAX_MANIFEST_BYTES, "manifest")
            announced = response.headers.get("Docker-Content-Digest")
            media_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip()
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

    def get_blob(self, repository: str, digest: str, max_bytes: int = MAX_BLOB_BYTES) -> bytes:
        """GET /v2/<repository>/blobs/<digest> (distribution-spec "Pulling blobs").

        Redirects (to a CDN or object store) are followed; requests drops the
        ``Authorization`` header when a redirect leaves the registry's host.

        Args:
            repository: repository path.
            digest: ``sha256:`` (or ``sha512:``) digest of the blob.
            max_bytes: refuse bodies larger than this (1 MiB by default).

        Returns:
            The blob's bytes, verified.

        Raises:
            RegistryError: invalid digest, unreachable, timeout, HTTP error
                status, body over `max_bytes`.
            DigestMismatch: the body does not hash to `digest`, or the
                registry announced another ``Docker-Content-Digest``.
        """
        where = f"{self.domain}/{repository}@{digest}"
        _check_digest(digest, where)
        response = self._get(f"/v2/{repository}/blobs/{digest}", "*/*")
        with response:
            status = response.status_code
            if status != 200:
                raise RegistryError(_status_message(status, where))
            data = self._read_body(response, where, max_bytes, "blob")
            announced = response.headers.get("Docker-Content-Digest")
        actual = _digest_of(data, digest)
        if actual != digest:
            raise DigestMismatch(f"{where}: content hashes to {actual}, not the digest asked for")
        if announced and _DIGEST_RE.match(announced) and announced != digest:
            raise DigestMismatch(
                f"{where}: content hashes to {actual}, registry announced {announced}"
            )
        return data

    def referrers(
        self, repository: str, subject_digest: str, artifact_type: str | None = None
    ) -> list[dict]:
        """The manifests whose ``subject`` is `subject_digest`, filtered by
        `artifact_type` (distribution-spec v1.1, "Listing Referrers").

        1. ``GET /v2/<name>/referrers/<digest>?artifactType=<type>``: an image
           index, paged with ``Link: <url>; rel="next"`` (at most
           :data:`MAX_REFERRER_PAGES` pages, same origin only). A registry that
           applied the filter says so in ``OCI-Filters-Applied``; the
           artifactType filter is applied here in every case (it is
           idempotent, and guards against a registry filtering loosely).
        2. The registry answered 404: "If the referrers API returns a 404,
           the client MUST fallback to pulling the referrers tag schema"
           (a registry with the API "MUST NOT return a 404 Not Found", so a
           404 means no API: an empty result is a 200 with no manifests).
           The client remembers it (:attr:`referrers_api` False) and asks
           later subjects the tag directly. One 404 is not taken as proof:
           a JSON ``NAME_UNKNOWN`` error (the repository is unknown, which
           the spec allows a supporting registry to answer) falls back for
           this subject only.
        3. Tag schema ("Referrers Tag Schema"): ``GET
           /v2/<name>/manifests/<alg>-<hex>``; a 404, or anything that is not
           a valid image index, means no referrers ("the client SHOULD assume
           there are no referrers to the manifest").

        Returns:
            Descriptors in listing order, duplicates dropped, each
            ``{"mediaType", "digest", "size", "artifactType", "annotations"}``
            (``artifactType`` None when the listing has none; ``annotations``
            a dict, possibly empty).

        Raises:
            RegistryError: invalid digest, unreachable, timeout, denied,
                a referrers API answer that is not an image index, a
                malformed descriptor of the requested artifact type.
            DigestMismatch: the fallback index does not hash to the
                ``Docker-Content-Digest`` announced.
        """
        where = f"{self.domain}/{repository}@{subject_digest}"
        _check_digest(subject_digest, where)
        asked = False
        if self.referrers_api is None:
            # One caller at a time probes the API, so concurrent callers do not
            # all pay the failed request; they wait and then go the right way.
            with self._referrers_probe:
                if self.referrers_api is None:
                    asked = True
                    found = self._referrers_api_list(repository, subject_digest, artifact_type)
        if not asked and self.referrers_api:
            found = self._referrers_api_list(repository, subject_digest, artifact_type)
        elif not asked:
            found = None
        if found is not None:
            return found
        return self._referrers_tag_list(repository, subject_digest, artifact_type)

    # -- pushing (imagefit index create, imagefit attach) --------------------
    def _call(self, method: str, target: str, headers: dict[str, str] | None = None, data=None):
        """One request with an optional body (bytes or a seekable binary file).

        `target` is a path (``/v2/...``) or an absolute URL on this registry's
        API host (an upload ``Location``); authentication as in :meth:`_get`,
        the body rewound before a retry."""
        headers = dict(headers or {})
        if "://" in target:
            parts = urlsplit(target)
            if parts.netloc != self.api_host:
                raise RegistryError(
                    f"registry {self.domain} sent an upload location on another host ({parts.netloc})"
                )
            urls = [target]
        else:
            schemes = (
                [self._scheme]
                if self._scheme
                else (["https", "http"] if self.insecure else ["https"])
            )
            urls = [f"{scheme}://{self.api_host}{target}" for scheme in schemes]
        last_error: RegistryError | None = None
        for url in urls:
            _rewind(data)
            try:
                response = self._send(url, {**headers, **self._auth_header}, method, data)
            except RegistryError as exc:
                last_error = exc
                continue
            if "://" not in target:
                self._scheme = urlsplit(url).scheme
            if response.status_code == 401 and self._authenticate(response):
                response.close()
                _rewind(data)
                response = self._send(url, {**headers, **self._auth_header}, method, data)
            return response
        assert last_error is not None
        raise last_error

    def _location(self, response, where: str) -> str:
        """The absolute upload URL a POST/PATCH answer names (``Location``,
        possibly relative: distribution-spec allows both)."""
        location = response.headers.get("Location")
        if not location:
            raise RegistryError(f"{where}: registry sent no upload Location")
        return urljoin(response.url, location)

    def blob_exists(self, repository: str, digest: str) -> bool:
        """HEAD /v2/<repository>/blobs/<digest>: True (200) or False (404).

        Raises:
            RegistryError: invalid digest, unreachable, denied, another status.
        """
        where = f"{self.domain}/{repository}@{digest}"
        _check_digest(digest, where)
        response = self._call("HEAD", f"/v2/{repository}/blobs/{digest}")
        with response:
            if response.status_code == 200:
                return True
            if response.status_code == 404:
                return False
            raise RegistryError(_status_message(response.status_code, where))

    def mount_blob(self, repository: str, digest: str, source: str) -> str | None:
        """Cross-repository blob mount (distribution-spec "Mounting a blob from
        another repository"): ``POST /v2/<repository>/blobs/uploads/?mount=
        <digest>&from=<source>``.

        Returns:
            None when the registry mounted the blob (201), else the upload
            location of the session it opened instead (202: it cannot mount,
            e.g. the blob is not in `source` or the caller may not read it);
            the caller may upload the blob there with :meth:`put_blob`.

        Raises:
            RegistryError: unreachable, denied, another status.
            DigestMismatch: a 201 announcing another digest.
        """
        where = f"{self.domain}/{repository}@{digest} (mount from {source})"
        _check_digest(digest, where)
        query = urlencode({"mount": digest, "from": source})
        response = self._call("POST", f"/v2/{repository}/blobs/uploads/?{query}", data=b"")
        with response:
            status = response.status_code
            if status == 201:
                announced = response.headers.get("Docker-Content-Digest")
                if announced and _DIGEST_RE.match(announced) and announced != digest:
                    raise DigestMismatch(f"{where}: registry mounted {announced}")
                return None
            if status == 202:
                return self._location(response, where)
            raise RegistryError(_push_message(response, where))

    def put_blob(self, repository: str, digest: str, data, *, location: str | None = None) -> None:
        """Upload a blob monolithically (distribution-spec "Pushing a blob
        monolithically": ``POST /v2/<repository>/blobs/uploads/`` unless
        `location` names an open session, then ``PUT <location>?digest=``).

        Args:
            data: the bytes, or a seekable binary file holding them (streamed).
            location: an upload session already opened (see :meth:`mount_blob`).

        Raises:
            RegistryError: unreachable, denied, refused (e.g. the digest does
                not match what was sent: ``DIGEST_INVALID``).
            DigestMismatch: the registry announced another digest.
        """
        where = f"{self.domain}/{repository}@{digest} (upload)"
        _check_digest(digest, where)
        if location is None:
            response = self._call("POST", f"/v2/{repository}/blobs/uploads/", data=b"")
            with response:
                if response.status_code != 202:
                    raise RegistryError(_push_message(response, where))
                location = self._location(response, where)
        parts = urlsplit(location)
        query = parts.query + ("&" if parts.query else "") + urlencode({"digest": digest})
        url = parts._replace(query=query).geturl()
        response = self._call("PUT", url, {"Content-Type": "application/octet-stream"}, data=data)
        with response:
            if response.status_code != 201:
                raise RegistryError(_push_message(response, where))
            announced = response.headers.get("Docker-Content-Digest")
        if announced and _DIGEST_RE.match(announced) and announced != digest:
            raise DigestMismatch(f"{where}: registry stored {announced}")

    def download_blob(self, repository: str, digest: str, fileobj, *, max_bytes: int) -> int:
        """Stream a blob into `fileobj`, verified; the number of bytes.

        Raises:
            RegistryError: as :meth:`get_blob`; a body over `max_bytes`.
            DigestMismatch: the body does not hash to `digest`.
        """
        where = f"{self.domain}/{repository}@{digest}"
        _check_digest(digest, where)
        hasher = hashlib.new(digest.split(":", 1)[0])
        size = 0
        response = self._get(f"/v2/{repository}/blobs/{digest}", "*/*")
        with response:
            if response.status_code != 200:
                raise RegistryError(_status_message(response.status_code, where))
            for chunk in self._chunks(response, where, max_bytes, "blob"):
                size += len(chunk)
                hasher.update(chunk)
                fileobj.write(chunk)
        actual = f"{digest.split(':', 1)[0]}:{hasher.hexdigest()}"
        if actual != digest:
            raise DigestMismatch(f"{where}: content hashes to {actual}, not the digest asked for")
        return size

    def find_manifest(self, repository: str, reference: str) -> Manifest | None:
        """:meth:`get_manifest`, or None when the registry answers 404."""
        response = self._get(
            f"/v2/{repository}/manifests/{reference}", ", ".join(ACCEPT), method="HEAD"
        )
        with response:
            if response.status_code == 404:
                return None
        return self.get_manifest(repository, reference)

    def put_manifest(
        self, repository: str, reference: str, body: bytes, media_type: str
    ) -> PushedManifest:
        """PUT /v2/<repository>/manifests/<reference> (a tag, or the body's digest).

        Returns:
            The digest and the ``OCI-Subject`` the registry answered (set
            when it processed a ``subject``: it has the referrers API).

        Raises:
            RegistryError: unreachable, denied, refused (the body names blobs
                or manifests the repository lacks: ``MANIFEST_BLOB_UNKNOWN``...).
            DigestMismatch: the registry announced another digest than the
                body's, or `reference` is a digest the body does not hash to.
        """
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        where = f"{self.domain}/{repository}:{reference}"
        if reference.startswith("sha256:") and reference != digest:
            raise DigestMismatch(f"{where}: the manifest hashes to {digest}")
        response = self._call(
            "PUT", f"/v2/{repository}/manifests/{reference}", {"Content-Type": media_type}, body
        )
        with response:
            if response.status_code not in (200, 201):
                raise RegistryError(_push_message(response, where))
            announced = response.headers.get("Docker-Content-Digest")
            subject = response.headers.get("OCI-Subject")
        if announced and announced != digest:
            raise DigestMismatch(f"{where}: pushed {digest}, registry announced {announced}")
        return PushedManifest(digest=digest, subject=subject)

    # -- referrers plumbing ----------------------------------------------------
    def _referrers_api_list(
        self, repository: str, subject_digest: str, artifact_type: str | None
    ) -> list[dict] | None:
        """Referrers from the API, or None when the registry answered 404."""
        where = f"{self.domain}/{repository}@{subject_digest} (referrers API)"
        path = f"/v2/{repository}/referrers/{subject_digest}"
        if artifact_type:
            path += "?" + urlencode({"artifactType": artifact_type})
        found: list[dict] = []
        for page in range(MAX_REFERRER_PAGES):
            response = self._get(path, MEDIA_TYPE_INDEX)
            with response:
                status = response.status_code
                if status == 404 and page == 0:
                    body = self._read_body(response, where, 65536, "error body", lenient=True)
                    if "NAME_UNKNOWN" not in _error_codes(body) and self.referrers_api is None:
                        self.referrers_api = False
                    return None
                if status == 400:
                    raise RegistryError(f"{where}: registry refused the request (HTTP 400)")
                if status != 200:
                    raise RegistryError(_status_message(status, where))
                body = self._read_body(response, where, MAX_MANIFEST_BYTES, "referrers list")
                next_url = response.links.get("next", {}).get("url")
                base_url = response.url
            manifests = _index_manifests(body)
            if manifests is None:
                raise RegistryError(f"{where}: the answer is not an image index")
            self.referrers_api = True
            found.extend(_referrer_descriptors(manifests, artifact_type, where))
            if not next_url or len(found) >= MAX_REFERRERS:
                break
            path = self._same_origin_path(urljoin(base_url, next_url), where)
        return _dedupe(found)[:MAX_REFERRERS]

    def _referrers_tag_list(
        self, repository: str, subject_digest: str, artifact_type: str | None
    ) -> list[dict]:
        tag = referrers_tag(subject_digest)
        where = f"{self.domain}/{repository}:{tag} (referrers tag)"
        response = self._get(f"/v2/{repository}/manifests/{tag}", ", ".join(ACCEPT))
        with response:
            status = response.status_code
            if status == 404:
                return []
            if status != 200:
                raise RegistryError(_status_message(status, where))
            body = self._read_body(response, where, MAX_MANIFEST_BYTES, "manifest")
            announced = response.headers.get("Docker-Content-Digest")
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if announced and announced.startswith("sha256:") and announced != digest:
            raise DigestMismatch(
                f"{where}: content hashes to {digest}, registry announced {announced}"
            )
        manifests = _index_manifests(body)
        if manifests is None:
            return []
        return _dedupe(_referrer_descriptors(manifests, artifact_type, where))[:MAX_REFERRERS]

    def _same_origin_path(self, url: str, where: str) -> str:
        """Path and query of a ``Link`` target on this registry's API host."""
        parts = urlsplit(url)
        if parts.netloc and parts.netloc != self.api_host:
            raise RegistryError(f"{where}: next page is on another host ({parts.netloc})")
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def _read_body(
        self, response, where: str, limit: int, what: str, *, lenient: bool = False
    ) -> bytes:
        """The response body (decoded when gzip-encoded), at most `limit`
        bytes, within the deadline.

        With `lenient`, a body over the limit or a read error yields what was
        read so far (for error bodies, read only to classify the error); a
        timeout is raised in any case."""
        body = bytearray()
        try:
            for chunk in self._chunks(response, where, limit, what):
                body += chunk
        except RegistryTimeout:
            raise
        except RegistryError:
            if lenient:
                return bytes(body[:limit])
            raise
        return bytes(body)

    def _chunks(self, response, where: str, limit: int, what: str):
        """Yield the body in pieces as they arrive, decoded, `limit` bytes
        in all at most, checking the deadline after every read.

        ``read1``: whatever one recv brings (at most 64 KiB), so a registry
        that drips a byte at a time still meets the deadline (iter_content
        would block until a whole chunk arrived); the watchdog shuts the
        socket at the deadline in any case. ``Content-Encoding: gzip`` (the
        only encoding asked for) is decoded with ``zlib`` as Go's transport
        does for containers/image, the output capped at `limit` + 1 bytes
        before it is produced (``decompressobj().decompress(max_length)``), so
        a decompression bomb stops at the cap; the digest is then computed
        over the decoded bytes, which is what a manifest digest covers.

        Raises:
            RegistryTimeout: the deadline passed.
            RegistryError: over `limit`, an unsupported encoding, a truncated
                or corrupt gzip stream, a read error.
        """
        import zlib

        encoding = response.headers.get("Content-Encoding", "").strip().lower()
        if encoding in ("gzip", "x-gzip"):
            decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding in ("", "identity"):
            decoder = None
        else:
            raise RegistryError(
                f"{where}: unsupported Content-Encoding {terminal_safe(encoding, 40)!r}"
            )
        size = 0
        try:
            while chunk := response.raw.read1(65536):
                self._remaining()
                if decoder is not None:
                    if decoder.eof:
                        break  # trailing bytes after the gzip member: ignored, as Go does
                    # at most limit + 1 - size bytes out (>= 1: size <= limit here)
                    chunk = decoder.decompress(chunk, limit + 1 - size)
                size += len(chunk)
                if size > limit:
                    raise RegistryError(f"{where}: {what} larger than {limit} bytes")
                yield chunk
        except RegistryError:
            raise
        except Exception as exc:  # requests/urllib3/zlib errors while streaming
            if self.watchdog.passed():
                raise self._timed_out() from None
            raise RegistryError(f"{where}: reading the {what} failed: {_short(exc)}") from None
        if self.watchdog.expired:
            raise self._timed_out()  # the watchdog ended the body: not the registry's end
        if decoder is not None and not decoder.eof:
            raise RegistryError(f"{where}: reading the {what} failed: the gzip stream is truncated")


def referrers_tag(digest: str) -> str:
    """The referrers tag of `digest` (distribution-spec "Referrers Tag Schema"):
    the algorithm truncated to 32 characters, ``-``, the encoded part truncated
    to 64, characters not allowed in a tag replaced with ``-``."""
    algorithm, _, encoded = digest.partition(":")
    return _TAG_UNSAFE.sub("-", f"{algorithm[:32]}-{encoded[:64]}")


def _check_digest(digest: str, where: str) -> None:
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise RegistryError(f"{where}: not a sha256/sha512 digest")


def _digest_of(data: bytes, like: str) -> str:
    algorithm = like.split(":", 1)[0]
    return f"{algorithm}:" + hashlib.new(algorithm, data).hexdigest()


def _error_codes(body: bytes) -> set[str]:
    """The ``errors[].code`` values of a distribution-spec error body."""
    try:
        data = loads_json(body, "error body")
    except ValueError:
        return set()
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, list):
        return set()
    return {e["code"] for e in errors if isinstance(e, dict) and isinstance(e.get("code"), str)}


def _index_manifests(body: bytes) -> list | None:
    """The ``manifests`` of an image index, or None when `body` is not one."""
    try:
        data = loads_json(body, "image index")
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("manifests"), list):
        return None
    if data.get("mediaType", MEDIA_TYPE_INDEX) != MEDIA_TYPE_INDEX:
        return None
    return data["manifests"]


def _referrer_descriptors(manifests: list, artifact_type: str | None, where: str) -> list[dict]:
    """The descriptors of `artifact_type` (all, when None), checked and
    normalised."""
    found = []
    for item in manifests:
        if not isinstance(item, dict):
            raise RegistryError(f"{where}: a referrer entry is not an object")
        kind = item.get("artifactType")
        if artifact_type is not None and kind != artifact_type:
            continue
        digest, media_type, size = item.get("digest"), item.get("mediaType"), item.get("size")
        annotations = item.get("annotations") or {}
        if (
            not isinstance(digest, str)
            or not _DIGEST_RE.match(digest)
            or not isinstance(media_type, str)
            or not media_type
            or not isinstance(size, int)
            or isinstance(size, bool)
            or size < 0
            or not isinstance(annotations, dict)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in annotations.items())
            or (kind is not None and not isinstance(kind, str))
        ):
            raise RegistryError(f"{where}: malformed referrer descriptor {str(digest)[:80]!r}")
        found.append(
            {
                "mediaType": media_type,
                "digest": digest,
                "size": size,
                "artifactType": kind,
                "annotations": dict(annotations),
            }
        )
    return found


def _dedupe(descriptors: list[dict]) -> list[dict]:
    seen: set[str] = set()
    out = []
    for d in descriptors:
        if d["digest"] not in seen:
            seen.add(d["digest"])
            out.append(d)
    return out


def _deadline_adapter(client: RegistryClient):
    """An HTTPAdapter whose connections open their sockets under the client's
    watchdog (:func:`shim.deadline.pool_classes`, in the pool manager and in
    any HTTP(S) proxy manager), and that gives every request (token requests
    too) the client's remaining time as its socket timeout."""
    from requests.adapters import HTTPAdapter
    from urllib3.poolmanager import ProxyManager

    from shim.deadline import pool_classes

    classes = pool_classes(client.watchdog)

    class DeadlineAdapter(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):  # noqa: D102
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = classes

        def proxy_manager_for(self, proxy, **kwargs):  # noqa: D102
            manager = super().proxy_manager_for(proxy, **kwargs)
            if type(manager) is ProxyManager:  # a SOCKS manager keeps its own pools
                manager.pool_classes_by_scheme = classes
            return manager

        def send(self, request, timeout=None, **kwargs):  # noqa: D102
            left = client._remaining()
            return super().send(request, timeout=(min(left, 3.0), left), **kwargs)

    return DeadlineAdapter(max_retries=0)


def _no_auth(request):
    """requests auth that adds nothing (see :meth:`RegistryClient._new_session`)."""
    return request


def _basic(credentials: tuple[str, str]) -> str:
    """An ``Authorization`` value for HTTP Basic (RFC 7617, UTF-8)."""
    import base64

    user, password = credentials
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


#: A bearer token as an Authorization value may carry it (RFC 6750 b64token,
#: JWT dots included), at most 64 KiB.
_TOKEN_RE = re.compile(r"^[A-Za-z0-9\-._~+/=]{1,65536}$")
_PARAM_RE = re.compile(r'([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))')


def _challenge_params(challenge: str) -> dict[str, str]:
    """The auth-params of a ``WWW-Authenticate`` challenge (RFC 7235: quoted
    or token values), names lower-cased, the first of each kept."""
    params: dict[str, str] = {}
    _scheme, _, rest = challenge[:8192].partition(" ")
    for match in _PARAM_RE.finditer(rest):
        name = match.group(1).lower()
        value = match.group(2) if match.group(2) is not None else match.group(3)
        params.setdefault(name, re.sub(r"\\(.)", r"\1", value))
    return params


def _rewind(data) -> None:
    """Seek a file body back to its start (before a request or a retry)."""
    if hasattr(data, "seek"):
        data.seek(0)


def _push_message(response, where: str) -> str:
    """:func:`_status_message` plus the registry's first error (code: message)."""
    try:
        body = response.raw.read(65536) or b""
    except Exception:  # noqa: BLE001 (only to describe the error)
        body = b""
    try:
        errors = loads_json(body, "error body").get("errors") or []
        first = errors[0] if isinstance(errors[0], dict) else {}
    except (ValueError, AttributeError, IndexError, TypeError):
        first = {}
    text = _status_message(response.status_code, where)
    code, message = first.get("code"), first.get("message")
    if isinstance(code, str):
        detail = code + (f": {message}" if isinstance(message, str) and message else "")
        text += " (" + " ".join(detail.split())[:200] + ")"
    return text


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
