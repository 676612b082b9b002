"""A malicious registry of our own on loopback: one behaviour per repository.

``HostileRegistry`` is a small HTTP/1.1 server (``http.server``, threads) that
speaks just enough of the distribution-spec (``/v2/``, manifests, blobs,
referrers) for the shim to resolve against it, and misbehaves on purpose in
the way each repository is configured to: content behaviours (documents it
serves, possibly lying about their digests) and transport behaviours (status
line, headers or body dripped; redirect loops; token endpoints that hang).

Usage::

    with HostileRegistry() as reg:
        reg.documents("deep/app", {"1": (body, INDEX)})       # serve these
        reg.behaviour("drip/app", drip_headers(delay=1.0))      # misbehave
        ref = f"{reg.host}/deep/app:1"

A behaviour is ``fn(handler, route) -> None`` where `route` is a
:class:`Route` (method, repository, kind: "manifests" | "blobs" |
"referrers" | "other", reference, path, query) and `handler` the
``BaseHTTPRequestHandler`` whose ``wfile`` it writes raw bytes to (use
:func:`send` for a well-formed answer). Requests are counted per repository
(:meth:`HostileRegistry.hits`). Nothing here listens beyond 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlsplit

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CPU_TARGET = "org.supercontainers.hardware.cpu.target.microarch"


@dataclass(frozen=True)
class Route:
    """One request as the registry routes it."""

    method: str
    repository: str
    kind: str  # manifests | blobs | referrers | other
    reference: str
    path: str
    query: str


def digest(data: bytes) -> str:
    """``sha256:<hex>`` of `data`."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def send(handler, status: int, body: bytes = b"", headers: dict | None = None) -> None:
    """A well-formed answer: status, headers (Content-Length added), body
    (not for HEAD)."""
    handler.send_response(status)
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)
    handler.wfile.flush()


def descriptor(
    name: str, *, arch: str = "amd64", annotations: dict | None = None, platform: dict | None = None
) -> dict:
    """An index entry for a (fictional) manifest named `name`: its digest is
    that of `name`, so distinct names give distinct digests."""
    entry = {
        "mediaType": MANIFEST,
        "digest": digest(name.encode()),
        "size": 527,
        "platform": platform or {"architecture": arch, "os": "linux"},
    }
    if annotations is not None:
        entry["annotations"] = annotations
    return entry


def index(manifests: list[dict], **extra) -> bytes:
    """An OCI image index document (bytes) of `manifests`."""
    return json.dumps(
        {"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests, **extra}
    ).encode()


def plain_index() -> bytes:
    """A small valid index: two builds (x86_64, x86_64_v3) with CPU targets."""
    return index(
        [
            descriptor("x86_64", annotations={CPU_TARGET: "x86_64"}),
            descriptor("x86_64_v3", annotations={CPU_TARGET: "x86_64_v3"}),
        ]
    )


def serve_documents(documents: dict[str, tuple[bytes, str]], *, announce: str | None = None):
    """A behaviour serving `documents` ({tag or digest: (body, media type)})
    for manifests and blobs, and 404 for anything else (referrers included:
    no referrers API, as Distribution 2.8). Each document is also served by
    its own digest. `announce`: a ``Docker-Content-Digest`` to send instead of
    the true one (a lie)."""
    table = dict(documents)
    for body, media_type in list(documents.values()):
        table.setdefault(digest(body), (body, media_type))

    def behave(handler, route: Route) -> None:
        found = table.get(route.reference) if route.kind in ("manifests", "blobs") else None
        if found is None:
            send(handler, 404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"no"}]}',
                 {"Content-Type": "application/json"})  # fmt: skip
            return
        body, media_type = found
        send(handler, 200, body,
             {"Content-Type": media_type, "Docker-Content-Digest": announce or digest(body)})  # fmt: skip

    return behave


def drip(data: bytes, handler, delay: float) -> None:
    """Write `data` one byte at a time, `delay` seconds apart; stop quietly
    when the client hangs up."""
    try:
        for byte in data:
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            time.sleep(delay)
    except OSError:
        pass


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    registry: HostileRegistry  # set on the subclass

    def log_message(self, *args):
        pass

    def _route(self) -> Route:
        parts = urlsplit(self.path)
        path = parts.path
        repository = kind = reference = ""
        if path.startswith("/v2/") and path != "/v2/":
            rest = path[4:]
            for name in ("manifests", "blobs", "referrers"):
                marker = f"/{name}/"
                if marker in rest:
                    repository, _, reference = rest.rpartition(marker)
                    kind = name
                    break
        return Route(self.command, repository, kind or "other", reference, path, parts.query)

    def _dispatch(self):
        route = self._route()
        reg = self.registry
        with reg.lock:
            reg.counts[route.repository or route.path] += 1
            reg.log.append(route)
        if route.path == "/v2/":
            return send(self, 200, b"{}", {"Content-Type": "application/json"})
        behave = reg.behaviours.get(route.repository) or reg.behaviours.get(route.path)
        if behave is None:
            return send(self, 404, b'{"errors":[{"code":"NAME_UNKNOWN","message":"no"}]}',
                        {"Content-Type": "application/json"})  # fmt: skip
        try:
            behave(self, route)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return None

    do_GET = do_HEAD = do_POST = do_PUT = _dispatch


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # a client hanging up mid-answer is what these tests do


class HostileRegistry:
    """A misbehaving registry on ``127.0.0.1:<free port>``.

    Attributes:
        host: ``127.0.0.1:PORT`` (a reference's domain).
        behaviours: repository (or absolute path such as ``/token``) -> behaviour.
        counts: requests per repository (or path).
        log: every :class:`Route` served, in order.
    """

    def __init__(self) -> None:
        self.behaviours: dict = {}
        self.counts: Counter = Counter()
        self.log: list[Route] = []
        self.lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"registry": self})
        self._server = _Server(("127.0.0.1", 0), handler)
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> HostileRegistry:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> HostileRegistry:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def behaviour(self, repository: str, behave) -> str:
        """Install `behave` for `repository`; returns ``HOST/REPOSITORY``."""
        self.behaviours[repository] = behave
        return f"{self.host}/{repository}"

    def documents(self, repository: str, documents: dict, **kw) -> str:
        """:func:`serve_documents` for `repository`; returns ``HOST/REPOSITORY``."""
        return self.behaviour(repository, serve_documents(documents, **kw))

    def hits(self, repository: str) -> int:
        """Requests made for `repository` so far."""
        with self.lock:
            return self.counts[repository]


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on (right now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- NFD artifacts by the referrers tag schema (appended for tests/test_hostile_content.py)

NFD_ARTIFACT_TYPE = "application/vnd.nfd.image-compatibility.v1alpha1"
NFD_SPEC_YAML = "application/vnd.nfd.image-compatibility.spec.v1alpha1+yaml"
NFD_SPEC_JSON = "application/vnd.nfd.image-compatibility.spec.v1alpha1+json"
CREATED = "org.opencontainers.image.created"


def referrers_tag_of(body: bytes) -> str:
    """The referrers tag (``sha256-<hex>``) of the document `body`."""
    return "sha256-" + digest(body).split(":", 1)[1]


def nfd_attachment(
    subject: bytes,
    spec: bytes,
    *,
    media_type: str = NFD_SPEC_YAML,
    manifest: bytes | None = None,
    listing: bytes | None = None,
) -> dict[str, tuple[bytes, str]]:
    """Documents (for :func:`serve_documents`) attaching an NFD artifact whose
    spec layer is `spec` to the index `subject`, found by the referrers tag
    fallback (``serve_documents`` answers the referrers API with 404, as
    Distribution 2.8): the tag's referrers index (`listing`, or one that
    names the artifact), the artifact manifest (`manifest`, or a valid one)
    and the spec layer. A hostile `manifest` or `listing` is served as given
    (its digest is the one listed)."""
    if manifest is None:
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": MANIFEST, "artifactType": NFD_ARTIFACT_TYPE,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest(b"{}"), "size": 2},
            "layers": [{"mediaType": media_type, "digest": digest(spec), "size": len(spec)}],
            "subject": {"mediaType": INDEX, "digest": digest(subject), "size": len(subject)},
            "annotations": {CREATED: "2026-01-01T00:00:00Z"},
        }).encode()  # fmt: skip
    if listing is None:
        listing = index([{"mediaType": MANIFEST, "artifactType": NFD_ARTIFACT_TYPE,
                          "digest": digest(manifest), "size": len(manifest),
                          "annotations": {CREATED: "2026-01-01T00:00:00Z"}}])  # fmt: skip
    return {
        referrers_tag_of(subject): (listing, INDEX),
        digest(manifest): (manifest, MANIFEST),
        digest(spec): (spec, "application/octet-stream"),
        digest(b"{}"): (b"{}", "application/vnd.oci.empty.v1+json"),
    }
