"""Registry I/O against a real Distribution registry (with and without auth)
and against loopback servers that misbehave on purpose."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import socket
import threading
import time

import pytest

from shim import auth, registries_conf
from shim.errors import DigestMismatch, RegistryError
from shim.reference import parse
from shim.registry import RegistryClient
from shim.resolve import registry_is_insecure
from tests.support import oci
from tests.support.registry import LocalRegistry

BUILDS = [
    {"name": "x86_64", "platform": {"architecture": "amd64", "os": "linux"},
     "annotations": {"org.supercontainers.hardware.cpu.target.microarch": "x86_64"}},
    {"name": "haswell", "platform": {"architecture": "amd64", "os": "linux", "variant": "v3"},
     "annotations": {"org.supercontainers.hardware.cpu.target.microarch": "haswell"}},
]  # fmt: skip


@pytest.fixture(scope="module")
def pushed(registry, tmp_path_factory):
    return oci.build_and_push(
        registry.host, "io/app", "1", BUILDS, layout_dir=tmp_path_factory.mktemp("io")
    )


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory):
    reg = LocalRegistry(tmp_path_factory.mktemp("authreg"), auth=("carol", "s3cret"))
    try:
        pushed = oci.build_and_push(
            reg.host, "priv/app", "1", BUILDS, layout_dir=tmp_path_factory.mktemp("authlayout"),
            creds="carol:s3cret",
        )  # fmt: skip
        yield reg, pushed
    finally:
        reg.stop()


def test_index_by_tag_and_by_digest_is_verified(registry, pushed):
    client = RegistryClient(registry.host, insecure=True, timeout=5)
    by_tag = client.get_manifest("io/app", "1")
    assert by_tag.body == pushed.index_bytes
    assert by_tag.digest == pushed.index_digest
    assert by_tag.media_type == "application/vnd.oci.image.index.v1+json"
    by_digest = client.get_manifest("io/app", pushed.manifests["haswell"])
    assert by_digest.digest == pushed.manifests["haswell"]
    assert (
        client.requests_made == 3
    )  # https tried once (fails on a plain-HTTP registry), then http only


def test_not_found_is_one_line(registry, pushed):
    with pytest.raises(RegistryError, match=r"not found \(HTTP 404\)$"):
        RegistryClient(registry.host, insecure=True).get_manifest("io/app", "nope")


def test_secure_registry_is_not_downgraded_to_http(registry):
    # plain-HTTP registry, not marked insecure: https fails, no silent fallback to http
    with pytest.raises(RegistryError, match="the registry speaks plain HTTP"):
        RegistryClient(registry.host, insecure=False, timeout=3).get_manifest("io/app", "1")


def test_connection_refused_is_fast_and_one_line():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    start = time.monotonic()
    with pytest.raises(RegistryError, match="cannot reach registry") as info:
        RegistryClient(f"127.0.0.1:{port}", insecure=True).get_manifest("a/b", "1")
    assert time.monotonic() - start < 2
    assert "\n" not in str(info.value)


def test_registry_that_never_answers_times_out():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)  # accepts (kernel backlog) and never answers
    try:
        host = f"127.0.0.1:{server.getsockname()[1]}"
        start = time.monotonic()
        with pytest.raises(RegistryError, match="timed out"):
            RegistryClient(host, insecure=True, timeout=1.0).get_manifest("a/b", "1")
        assert time.monotonic() - start < 4  # https attempt + http attempt share one deadline
    finally:
        server.close()


class _Liar(http.server.BaseHTTPRequestHandler):
    body = b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []}'
    announce: str | None = None
    size: int | None = None

    def do_GET(self):  # noqa: N802
        body = self.body if self.size is None else b"x" * self.size
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.oci.image.index.v1+json")
        if self.announce:
            self.send_header("Docker-Content-Digest", self.announce)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def liar():
    handler = type("Handler", (_Liar,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_content_that_does_not_hash_to_the_digest_asked_for_is_refused(liar):
    host, _ = liar
    wanted = "sha256:" + "0" * 64
    with pytest.raises(DigestMismatch, match="not the digest asked for"):
        RegistryClient(host, insecure=True).get_manifest("a/b", wanted)


def test_content_that_does_not_hash_to_the_announced_digest_is_refused(liar):
    host, handler = liar
    handler.announce = "sha256:" + "1" * 64
    with pytest.raises(DigestMismatch, match="registry announced"):
        RegistryClient(host, insecure=True).get_manifest("a/b", "1")
    handler.announce = "sha256:" + hashlib.sha256(handler.body).hexdigest()
    assert RegistryClient(host, insecure=True).get_manifest("a/b", "1").body == handler.body


def test_oversized_manifest_is_refused(liar):
    host, handler = liar
    handler.size = 4 * 1024 * 1024 + 1
    with pytest.raises(RegistryError, match="larger than"):
        RegistryClient(host, insecure=True).get_manifest("a/b", "1")


def test_basic_auth_with_podman_auth_json(auth_registry, tmp_path):
    reg, pushed = auth_registry
    with pytest.raises(RegistryError, match="access denied"):
        RegistryClient(reg.host, insecure=True).get_manifest("priv/app", "1")
    authfile = tmp_path / "auth.json"
    token = base64.b64encode(b"carol:s3cret").decode()
    authfile.write_text(json.dumps({"auths": {reg.host: {"auth": token}}}))
    env = {"REGISTRY_AUTH_FILE": str(authfile), "HOME": str(tmp_path)}
    creds = auth.credentials(reg.host, "priv/app", env)
    assert creds == ("carol", "s3cret")
    got = RegistryClient(reg.host, insecure=True, credentials=creds).get_manifest("priv/app", "1")
    assert got.digest == pushed.index_digest


def test_credentials_order_and_most_specific_key(tmp_path):
    def b64(text):
        return base64.b64encode(text.encode()).decode()

    runtime = tmp_path / "run" / "containers"
    runtime.mkdir(parents=True)
    (runtime / "auth.json").write_text(json.dumps({"auths": {
        "quay.io": {"auth": b64("host:1")}, "quay.io/org": {"auth": b64("org:2")}}}))  # fmt: skip
    docker = tmp_path / ".docker"
    docker.mkdir()
    (docker / "config.json").write_text(json.dumps({"auths": {
        "https://index.docker.io/v1/": {"auth": b64("hub:3")}, "quay.io": {"auth": b64("docker:4")}}}))  # fmt: skip
    env = {"HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path / "run")}
    assert auth.credentials("quay.io", "org/app", env) == ("org", "2")
    assert auth.credentials("quay.io", "other/app", env) == ("host", "1")
    assert auth.credentials("docker.io", "library/ubuntu", env) == ("hub", "3")
    assert auth.credentials("ghcr.io", "x/y", env) is None
    explicit = tmp_path / "explicit.json"
    explicit.write_text(json.dumps({"auths": {"quay.io": {"auth": b64("flag:5")}}}))
    assert auth.credentials("quay.io", "org/app", env, authfile=str(explicit)) == ("flag", "5")


def test_insecure_exactly_where_podman_would(tmp_path):
    conf = tmp_path / "registries.conf"
    conf.write_text('[[registry]]\nlocation = "127.0.0.1:5001"\ninsecure = true\n'
                    '[[registry]]\nprefix = "127.0.0.1:5001/secure"\nlocation = "127.0.0.1:5001"\n')  # fmt: skip
    env = {"CONTAINERS_REGISTRIES_CONF": str(conf), "HOME": str(tmp_path)}
    assert registries_conf.insecure("127.0.0.1:5001/app", env)
    assert not registries_conf.insecure("127.0.0.1:5001/secure/app", env)  # longest prefix wins
    assert not registries_conf.insecure("quay.io/app", env)
    ref = parse("quay.io/app:1")
    assert registry_is_insecure(ref, env, (), tls_verify=False)  # --tls-verify=false
    assert registry_is_insecure(ref, env, ("quay.io",), tls_verify=None)  # imagefit config
    assert not registry_is_insecure(
        parse("127.0.0.1:5001/app:1"), env, (), tls_verify=True
    )  # flag wins
    assert registry_is_insecure(parse("127.0.0.1:5001/app:1"), env, (), tls_verify=None)
