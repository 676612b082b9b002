"""Registry faults through the installed shim: what the user sees.

Default (fail-open): exit as the runtime would (the dry run prints the
original argv), one warning line on stderr, never a traceback, never a hang
past the registry timeout. ``IMAGEFIT_ON_ERROR=refuse``: exit 125 and one line.
A loopback server misbehaves on purpose; the real registry serves a broken
NFD artifact. The table in docs/faults.md is this module's cases."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import socket
import subprocess
import threading
import time

import pytest

from tests.conftest import world_readable_tmp
from tests.support import oci

INDEX = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "1" * 64, "size": 1,
     "platform": {"architecture": "amd64", "os": "linux"},
     "annotations": {"org.supercontainers.hardware.cpu.target.microarch": "x86_64"}}]}).encode()  # fmt: skip


class Misbehaving(http.server.BaseHTTPRequestHandler):
    mode = "ok"
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, status, body=b"", headers=None, length=None):
        self.send_response(status)
        for k, v in {
            "Content-Type": "application/vnd.oci.image.index.v1+json",
            **(headers or {}),
        }.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    #: requests answered, per handler class (each test module's server has its own)
    requests = 0

    def do_GET(self):  # noqa: N802
        type(self).requests += 1
        mode = self.mode
        if self.path == "/v2/":
            return self._send(200, b"{}")
        if mode.startswith("status-"):
            code = int(mode.split("-")[1])
            headers = {"WWW-Authenticate": 'Basic realm="x"'} if code == 401 else {}
            return self._send(code, b'{"errors":[{"code":"X","message":"no"}]}', headers)
        if mode == "truncated":
            self._send(200, INDEX[: len(INDEX) // 2], length=len(INDEX))
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return None
        if mode == "lying-digest":
            return self._send(200, INDEX, {"Docker-Content-Digest": "sha256:" + "0" * 64})
        if mode == "oversize":
            return self._send(200, b" " * (4 * 1024 * 1024 + 10))
        if mode == "invalid-json":
            return self._send(200, b'{"schemaVersion": 2, "manifests": [')
        if mode == "schema-invalid":
            return self._send(200, b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", '
                                   b'"manifests": [{"digest": "sha256:nothex", "size": -1}]}')  # fmt: skip
        if mode == "slow-drip":
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.oci.image.index.v1+json")
            self.send_header("Content-Length", str(len(INDEX)))
            self.end_headers()
            for byte in INDEX:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.2)
            return None
        return self._send(
            200, INDEX, {"Docker-Content-Digest": "sha256:" + hashlib.sha256(INDEX).hexdigest()}
        )

    do_HEAD = do_GET


@pytest.fixture(scope="module")
def server():
    handler = type("Handler", (Misbehaving,), {})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{srv.server_address[1]}", handler
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def facts_file(cpuinfo_dir, imagefit_cmd):
    out = world_readable_tmp("imagefit-fault-facts-")
    path = out / "zen4.json"
    done = subprocess.run([*imagefit_cmd, "facts", "--json", "--cpuinfo", str(cpuinfo_dir / "linux-rocky8.5-zen4")],
                          check=True, capture_output=True, text=True)  # fmt: skip
    path.write_text(done.stdout)
    return str(path)


def run_shim(shim_bin, facts_file, tmp_path, ref, *, refuse=False, timeout_s="2"):
    site = tmp_path / "site.toml"
    site.write_text("decision_cache_ttl = 0\n")
    site.chmod(0o644)
    env = {**os.environ, "HOME": str(tmp_path), "IMAGEFIT_DRY_RUN": "1", "IMAGEFIT_FACTS": facts_file,
           "IMAGEFIT_SITE_CONFIG": str(site), "IMAGEFIT_REGISTRY_TIMEOUT": timeout_s,
           "PATH": f"{shim_bin}:{os.environ['PATH']}"}  # fmt: skip
    if refuse:
        env["IMAGEFIT_ON_ERROR"] = "refuse"
    args = ["run", "--rm", "--tls-verify=false", ref, "id"]
    start = time.monotonic()
    done = subprocess.run(
        [str(shim_bin / "podman"), *args], env=env, capture_output=True, text=True, timeout=60
    )
    return done, time.monotonic() - start, args


FAULTS = [
    ("status-401", "access denied (HTTP 401)"),
    ("status-403", "access denied (HTTP 403)"),
    ("status-404", "not found (HTTP 404)"),
    ("status-429", "rate limited by the registry (HTTP 429)"),
    ("status-500", "registry answered HTTP 500"),
    ("truncated", "reading the manifest failed"),
    ("lying-digest", "registry announced"),
    ("oversize", "manifest larger than 4194304 bytes"),
    ("invalid-json", "registry sent invalid JSON"),
    ("schema-invalid", "invalid image index"),
    ("slow-drip", "timed out after 2 s"),
]


@pytest.mark.parametrize(("mode", "says"), FAULTS, ids=[m for m, _ in FAULTS])
def test_fault_fails_open_with_one_line_and_refuses_on_request(
    server, shim_bin, facts_file, tmp_path, mode, says
):
    host, handler = server
    handler.mode = mode
    ref = f"{host}/fault/app:1"
    done, took, args = run_shim(shim_bin, facts_file, tmp_path, ref)
    assert done.returncode == 0
    assert json.loads(done.stdout)[1:] == args  # the original command, unchanged
    lines = done.stderr.strip().splitlines()
    assert (
        len(lines) == 1
        and lines[0].startswith(f"imagefit: cannot resolve {ref} (")
        and says in lines[0]
    ), lines
    assert lines[0].endswith("; running the command unchanged")
    assert took < 6
    asked = handler.requests
    refused, took, _ = run_shim(shim_bin, facts_file, tmp_path, ref, refuse=True)
    assert refused.returncode == 125 and refused.stdout == ""
    lines = refused.stderr.strip().splitlines()
    if mode == "slow-drip":
        # the first run's timeout is remembered on this node: no second wait
        assert re.search(
            rf"registry {host} timed out \d+ s ago; not asking it again for \d+ s", refused.stderr
        )
        says = f"registry {host} timed out "
        assert handler.requests == asked  # not asked again (a wall-clock bound would measure load)
    assert (
        len(lines) == 1
        and lines[0].startswith(f"imagefit: cannot resolve {ref}: ")
        and says in lines[0]
    ), lines
    assert "Traceback" not in done.stderr + refused.stderr


def test_connection_refused(shim_bin, facts_file, tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    done, took, _ = run_shim(shim_bin, facts_file, tmp_path, f"127.0.0.1:{port}/fault/app:1")
    assert (
        done.returncode == 0
        and "connection refused" in done.stderr
        and done.stderr.count("\n") == 1
    )
    assert took < 6


def test_dns_failure(shim_bin, facts_file, tmp_path):
    done, took, _ = run_shim(
        shim_bin, facts_file, tmp_path, "registry.imagefit-test.invalid/fault/app:1"
    )
    assert (
        done.returncode == 0 and "DNS lookup failed" in done.stderr and done.stderr.count("\n") == 1
    )
    assert took < 8


def test_a_registry_that_never_answers_is_bounded_by_the_timeout(shim_bin, facts_file, tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)  # accepts (in the kernel) and never answers
    try:
        done, took, _ = run_shim(
            shim_bin, facts_file, tmp_path, f"127.0.0.1:{listener.getsockname()[1]}/f/a:1"
        )
    finally:
        listener.close()
    assert (
        done.returncode == 0
        and "timed out after 2 s" in done.stderr
        and done.stderr.count("\n") == 1
    )
    assert took < 6


def test_a_broken_nfd_artifact(registry, shim_bin, facts_file, tmp_path):
    builds = [{"name": "x86_64", "platform": {"architecture": "amd64", "os": "linux"},
               "annotations": {"org.supercontainers.hardware.cpu.target.microarch": "x86_64"}}]  # fmt: skip
    pushed = oci.build_and_push(registry.host, "fault/nfd", "1", builds, layout_dir=tmp_path / "l")
    oci.push_artifact(registry.host, "fault/nfd", oci.subject_descriptor(pushed, "x86_64"),
                      b"version: v1alpha1\ncompatibilities: [\n  - {rules: [oops\n", created="2026-01-01T00:00:00Z")  # fmt: skip
    done, _, args = run_shim(shim_bin, facts_file, tmp_path, pushed.ref)
    assert done.returncode == 0 and json.loads(done.stdout)[1:] == args
    assert (
        done.stderr.count("\n") == 1
        and "NFD artifact" in done.stderr
        and "Traceback" not in done.stderr
    )
