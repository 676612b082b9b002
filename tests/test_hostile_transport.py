"""A hostile registry's transport, through the installed shim (issue 11, item 1).

One repository of :class:`tests.support.hostile.HostileRegistry` per
behaviour: status line, headers, body or token answer dripped, redirect loops
and chains, a redirect to another host, a TLS handshake that never completes,
gzip (valid and a bomb), deep JSON where the referrers fallback reads it, and
the per-node memory of a registry that timed out (:mod:`shim.backoff`). Each
run must end within the budget (``IMAGEFIT_REGISTRY_TIMEOUT=2``) + 1 s, exit
0 with the command unchanged (or the chosen build), or 125 with
``IMAGEFIT_ON_ERROR=refuse``, with exactly one line on stderr, no traceback
and no control byte. docs/faults.md lists these cases."""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import socket
import subprocess
import time

import pytest

from shim import backoff
from shim.decisions import write_file
from tests.conftest import world_readable_tmp
from tests.support.hostile import (
    INDEX,
    HostileRegistry,
    digest,
    drip,
    plain_index,
    send,
    serve_documents,
)

BUDGET = 2.0
CHOSEN = digest(b"x86_64_v3")  # plain_index()'s best build for a zen4 host


@pytest.fixture(scope="module")
def facts_file(cpuinfo_dir, imagefit_cmd):
    """A zen4 node's facts file (world-readable)."""
    path = world_readable_tmp("imagefit-hostile-facts-") / "zen4.json"
    done = subprocess.run([*imagefit_cmd, "facts", "--json", "--cpuinfo", str(cpuinfo_dir / "linux-rocky8.5-zen4")],
                          check=True, capture_output=True, text=True)  # fmt: skip
    path.write_text(done.stdout)
    return str(path)


@pytest.fixture
def reg():
    with HostileRegistry() as registry:
        yield registry


def shim(shim_bin, facts, tmp_path, ref, *, refuse=False, tls_verify="false", env=None):
    """Run ``podman run --rm --tls-verify=... REF id`` through the installed
    shim (dry run): (CompletedProcess, seconds, args)."""
    site = tmp_path / "site.toml"
    site.write_text("decision_cache_ttl = 0\n")
    site.chmod(0o644)
    environ = {**os.environ, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"),
               "IMAGEFIT_DRY_RUN": "1", "IMAGEFIT_FACTS": facts, "IMAGEFIT_SITE_CONFIG": str(site),
               "IMAGEFIT_REGISTRY_TIMEOUT": f"{BUDGET:g}", "PATH": f"{shim_bin}:{os.environ['PATH']}",
               **(env or {})}  # fmt: skip
    environ.pop("IMAGEFIT_ON_ERROR", None)
    if refuse:
        environ["IMAGEFIT_ON_ERROR"] = "refuse"
    args = ["run", "--rm", f"--tls-verify={tls_verify}", ref, "id"]
    start = time.monotonic()
    done = subprocess.run([str(shim_bin / "podman"), *args], env=environ, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    return done, time.monotonic() - start, args


def startup(shim_bin, facts, tmp_path) -> float:
    """Seconds a shim run takes that fails at once (a closed port refuses the
    connection): start-up and imports on this machine, as loaded as it is
    now. The budget checks add the deadline to it: a loaded machine slows
    start-up, never the registry deadline (CI audit: 2 s budget, 0.3 s
    start-up quiet, 1-2.5 s loaded)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{s.getsockname()[1]}"
    where = tmp_path / "startup"
    where.mkdir(exist_ok=True)
    done, took, _ = shim(shim_bin, facts, where, f"{closed}/startup/app:1")
    assert done.returncode == 0 and "refused" in done.stderr, done.stderr
    return took


def within_budget(took: float, base: float) -> None:
    """`took` seconds is the deadline's worth past start-up (`base`), with a
    wide absolute backstop: a broken deadline still fails the hostile
    server's 8 s hangs and 27 s drips."""
    assert took - base < BUDGET + 0.5 and took < BUDGET + 5, (took, base)


def quiet_one_line(stderr: str) -> str:
    """The one stderr line; no traceback, no control byte."""
    assert "Traceback" not in stderr
    assert all(c == "\n" or (" " <= c != "\x7f" and not 0x80 <= ord(c) < 0xA0) for c in stderr), (
        stderr
    )
    lines = stderr.splitlines()
    assert len(lines) == 1 and stderr.endswith("\n"), lines
    return lines[0]


def fails_open(shim_bin, facts, tmp_path, ref, says, *, refuse=True, **kw):
    """Fail-open (command unchanged, one line naming `says`, within budget +
    1 s), then with on_error=refuse: 125, one line. Returns the first run's
    seconds."""
    base = startup(shim_bin, facts, tmp_path)
    done, took, args = shim(shim_bin, facts, tmp_path, ref, **kw)
    line = quiet_one_line(done.stderr)
    assert done.returncode == 0 and json.loads(done.stdout)[1:] == args
    assert line.startswith(f"imagefit: cannot resolve {ref} (") and says in line, line
    within_budget(took, base)
    if refuse:
        refused, took2, _ = shim(shim_bin, facts, tmp_path, ref, refuse=True, **kw)
        line = quiet_one_line(refused.stderr)
        assert refused.returncode == 125 and refused.stdout == ""
        assert line.startswith(f"imagefit: cannot resolve {ref}: "), line
        within_budget(took2, base)
    return took


def chooses(shim_bin, facts, tmp_path, ref, **kw):
    """The run rewrites the image to the best build, quietly, within the budget."""
    base = startup(shim_bin, facts, tmp_path)
    done, took, args = shim(shim_bin, facts, tmp_path, ref, **kw)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr
    argv = json.loads(done.stdout)[1:]
    name = ref.rsplit(":", 1)[0]
    assert argv[argv.index(f"{name}@{CHOSEN}") - 1] == args[2], argv
    within_budget(took, base)


# -- behaviours ---------------------------------------------------------------

RESPONSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: " + INDEX.encode()


def drip_status(handler, route):
    drip(RESPONSE_HEAD + b"\r\nContent-Length: 2\r\n\r\n{}", handler, 0.3)


def drip_headers(handler, route):
    handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
    drip(b"Content-Type: " + INDEX.encode() + b"\r\nContent-Length: 2\r\n\r\n{}", handler, 0.3)


def drip_body(handler, route):
    body = plain_index()
    handler.wfile.write(RESPONSE_HEAD + f"\r\nContent-Length: {len(body)}\r\n\r\n".encode())
    drip(body, handler, 0.3)


def redirect_loop(handler, route):
    time.sleep(1.5)
    send(handler, 302, headers={"Location": route.path})


def redirect_chain(hops: int):
    """``?hop=N`` redirects to ``?hop=N+1`` until `hops`, then serves the index."""
    documents = serve_documents({"1": (plain_index(), INDEX)})

    def behave(handler, route):
        hop = int(route.query.partition("hop=")[2] or 0)
        if route.kind == "manifests" and route.reference == "1" and hop < hops:
            return send(handler, 302, headers={"Location": f"{route.path}?hop={hop + 1}"})
        return documents(handler, route)

    return behave


def token_challenge(realm_path: str):
    def behave(handler, route):
        realm = f"http://{handler.headers['Host']}{realm_path}"
        send(handler, 401, b'{"errors":[{"code":"UNAUTHORIZED"}]}',
             {"WWW-Authenticate": f'Bearer realm="{realm}",service=x'})  # fmt: skip

    return behave


def token_hangs(handler, route):
    time.sleep(8)


def token_500(handler, route):
    send(handler, 500, b"oops")


def token_garbage(handler, route):
    send(handler, 200, b"\x1b[31mnot json", {"Content-Type": "application/json"})


def token_drip(handler, route):
    body = b'{"token": "abcdefghijklmnopqrstuvwxyz"}'
    handler.wfile.write(b"HTTP/1.1 200 OK\r\n" + f"Content-Length: {len(body)}\r\n\r\n".encode())
    drip(body, handler, 0.3)


def gzipped(body: bytes, announce: bytes):
    def behave(handler, route):
        if route.kind == "manifests" and route.reference == "1":
            return send(handler, 200, body, {"Content-Type": INDEX, "Content-Encoding": "gzip",
                                             "Docker-Content-Digest": digest(announce)})  # fmt: skip
        return send(handler, 404, b"")

    return behave


DEEP = b'{"errors":' + b"[" * 5000 + b"]" * 5000 + b"}"


def deep_referrers(where: str):
    """The index; a referrers 404 with a deep JSON body (where="404") or a
    referrers tag answering a deep JSON "index" (where="tag")."""
    index = plain_index()

    def behave(handler, route):
        if route.kind == "manifests" and route.reference in ("1", digest(index)):
            return send(
                handler, 200, index, {"Content-Type": INDEX, "Docker-Content-Digest": digest(index)}
            )
        if route.kind == "referrers":
            body = DEEP if where == "404" else b"404 page not found"
            return send(handler, 404, body, {"Content-Type": "application/json"})
        if where == "tag" and route.kind == "manifests" and route.reference.startswith("sha256-"):
            deep = (
                b'{"mediaType":"'
                + INDEX.encode()
                + b'","manifests":'
                + b"[" * 5000
                + b"]" * 5000
                + b"}"
            )
            return send(
                handler, 200, deep, {"Content-Type": INDEX, "Docker-Content-Digest": digest(deep)}
            )
        return send(handler, 404, b"")

    return behave


def hangs(handler, route):
    time.sleep(8)


# -- the cases ----------------------------------------------------------------

DRIPS = [("status", drip_status), ("headers", drip_headers), ("body", drip_body)]


@pytest.mark.parametrize(("part", "behave"), DRIPS, ids=[p for p, _ in DRIPS])
def test_a_dripped_answer_ends_at_the_deadline(reg, shim_bin, facts_file, tmp_path, part, behave):
    ref = reg.behaviour(f"drip-{part}/app", behave) + ":1"
    fails_open(shim_bin, facts_file, tmp_path, ref, f"timed out after {BUDGET:g} s")


def test_a_slow_redirect_loop_ends_at_the_deadline(reg, shim_bin, facts_file, tmp_path):
    ref = reg.behaviour("loop/app", redirect_loop) + ":1"
    fails_open(shim_bin, facts_file, tmp_path, ref, f"timed out after {BUDGET:g} s")
    assert reg.hits("loop/app") <= 4  # 2 runs, the second remembered: at most 2 hops each


def test_five_redirects_are_followed_and_six_are_refused(reg, shim_bin, facts_file, tmp_path):
    chooses(shim_bin, facts_file, tmp_path, reg.behaviour("five/app", redirect_chain(5)) + ":1")
    ref = reg.behaviour("six/app", redirect_chain(6)) + ":1"
    fails_open(shim_bin, facts_file, tmp_path, ref, "redirected more than 5 times")


def test_credentials_are_not_sent_to_another_host_on_a_redirect(
    reg, shim_bin, facts_file, tmp_path
):
    seen: dict[str, list] = {"a": [], "b": []}
    documents = serve_documents({"1": (plain_index(), INDEX)})
    with HostileRegistry() as other:
        port = other.host.rsplit(":", 1)[1]

        def first(handler, route):
            seen["a"].append(handler.headers.get("Authorization"))
            if handler.headers.get("Authorization") is None:
                return send(handler, 401, b"", {"WWW-Authenticate": 'Basic realm="x"'})
            if route.kind == "manifests" and route.reference == "1":
                return send(
                    handler, 302, headers={"Location": f"http://localhost:{port}{route.path}"}
                )
            return send(handler, 404, b"")

        def second(handler, route):
            seen["b"].append(handler.headers.get("Authorization"))
            return documents(handler, route)

        ref = reg.behaviour("cred/app", first) + ":1"
        other.behaviour("cred/app", second)
        authfile = tmp_path / "auth.json"
        token = base64.b64encode(b"alice:s3cret").decode()
        authfile.write_text(json.dumps({"auths": {reg.host: {"auth": token}}}))
        chooses(shim_bin, facts_file, tmp_path, ref, env={"REGISTRY_AUTH_FILE": str(authfile)})
    assert f"Basic {token}" in seen["a"]  # the registry got the credentials...
    assert seen["b"] and seen["b"] == [None] * len(seen["b"])  # ...the other host never


def test_a_tls_handshake_that_never_completes_ends_at_the_deadline(shim_bin, facts_file, tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)  # the kernel accepts; nobody answers the ClientHello
    try:
        ref = f"127.0.0.1:{listener.getsockname()[1]}/tls/app:1"
        fails_open(shim_bin, facts_file, tmp_path, ref, f"timed out after {BUDGET:g} s",
                   tls_verify="true")  # fmt: skip
    finally:
        listener.close()


TOKENS = [
    ("hangs", token_hangs, f"timed out after {BUDGET:g} s"),
    ("500", token_500, "failed: HTTP 500"),
    ("garbage", token_garbage, "the answer is not JSON"),
    ("drip", token_drip, f"timed out after {BUDGET:g} s"),
]


@pytest.mark.parametrize(("name", "behave", "says"), TOKENS, ids=[t[0] for t in TOKENS])
def test_a_failing_token_endpoint_is_one_line(
    reg, shim_bin, facts_file, tmp_path, name, behave, says
):
    reg.behaviour(f"/token-{name}", behave)
    ref = reg.behaviour(f"tok-{name}/app", token_challenge(f"/token-{name}")) + ":1"
    fails_open(shim_bin, facts_file, tmp_path, ref, says)
    assert reg.hits(f"/token-{name}") >= 1


def test_a_gzip_encoded_index_is_decoded_and_chosen_from(reg, shim_bin, facts_file, tmp_path):
    index = plain_index()
    chooses(
        shim_bin,
        facts_file,
        tmp_path,
        reg.behaviour("gz/app", gzipped(gzip.compress(index), index)) + ":1",
    )


def test_a_gzip_bomb_stops_at_the_size_cap(reg, shim_bin, facts_file, tmp_path):
    bomb = gzip.compress(b" " * (256 * 1024 * 1024), compresslevel=9)  # 256 MiB in ~250 KiB
    ref = reg.behaviour("bomb/app", gzipped(bomb, b"")) + ":1"
    fails_open(shim_bin, facts_file, tmp_path, ref, "manifest larger than 4194304 bytes")


@pytest.mark.parametrize("where", ["404", "tag"])
def test_deep_json_in_the_referrers_fallback_is_no_referrers(
    reg, shim_bin, facts_file, tmp_path, where
):
    chooses(
        shim_bin,
        facts_file,
        tmp_path,
        reg.behaviour(f"deep-{where}/app", deep_referrers(where)) + ":1",
    )


def test_a_registry_that_timed_out_is_not_asked_again_for_a_while(
    reg, shim_bin, facts_file, tmp_path
):
    ref = reg.behaviour("hang/app", hangs) + ":1"
    fails_open(shim_bin, facts_file, tmp_path, ref, f"timed out after {BUDGET:g} s", refuse=False)
    asked = reg.hits("hang/app")
    base = startup(shim_bin, facts_file, tmp_path)
    done, took, _ = shim(shim_bin, facts_file, tmp_path, ref)
    line = quiet_one_line(done.stderr)
    assert done.returncode == 0 and took - base < 1.0, (
        took,
        base,
    )  # asking would cost the 2 s budget
    assert re.search(
        rf"registry {reg.host} timed out \d+ s ago; not asking it again for \d+ s", line
    ), line
    assert reg.hits("hang/app") == asked  # not asked
    refused, took, _ = shim(shim_bin, facts_file, tmp_path, ref, refuse=True)
    assert refused.returncode == 125 and "not asking it again" in quiet_one_line(refused.stderr)
    # after the window (the marker aged by rewriting its time): asked again
    environ = {"HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    path = backoff.marker_path(reg.host, environ)
    marker = json.loads(open(path, "rb").read())
    marker["at"] -= backoff.BACKOFF_SECONDS + 1
    assert write_file(
        os.path.dirname(path), os.path.basename(path), json.dumps(marker).encode(), False
    )
    fails_open(shim_bin, facts_file, tmp_path, ref, f"timed out after {BUDGET:g} s", refuse=False)
    assert reg.hits("hang/app") > asked


def test_a_mirror_that_timed_out_is_skipped_next_time(reg, shim_bin, facts_file, tmp_path):
    up = reg.documents("hpc/app", {"1": (plain_index(), INDEX)})
    with HostileRegistry() as mirror:
        mirror.behaviour("hpc/app", hangs)
        conf = tmp_path / "registries.conf"
        conf.write_text(f'[[registry]]\nprefix = "{reg.host}/hpc"\nlocation = "{reg.host}/hpc"\ninsecure = true\n'
                        f'[[registry.mirror]]\nlocation = "{mirror.host}/hpc"\ninsecure = true\n')  # fmt: skip
        env = {"CONTAINERS_REGISTRIES_CONF": str(conf)}
        # the mirror takes the whole budget (one deadline for all sources)
        fails_open(
            shim_bin,
            facts_file,
            tmp_path,
            up + ":1",
            f"timed out after {BUDGET:g} s",
            refuse=False,
            env=env,
        )
        assert reg.hits("hpc/app") == 0
        asked = mirror.hits("hpc/app")
        # then the mirror is skipped, the registry asked
        chooses(shim_bin, facts_file, tmp_path, up + ":1", env=env)
        assert mirror.hits("hpc/app") == asked and reg.hits("hpc/app") > 0


def _raw(answer: bytes):
    def behave(handler, route):
        handler.wfile.write(answer)
        handler.wfile.flush()

    return behave


INVALID_URLS = [
    ("redirect", b"HTTP/1.1 302 Found\r\nLocation: http://\x1b]0;pwn\x07@127.0.0.1:1/\r\n"
     b"Content-Length: 0\r\n\r\n", "redirected to an invalid location"),
    ("realm", b'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm="http://[\x1b[31m\x07:1/t"'
     b"\r\nContent-Length: 0\r\n\r\n", "named an invalid token realm"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "answer", "says"), INVALID_URLS, ids=[c[0] for c in INVALID_URLS])
def test_an_invalid_redirect_location_or_token_realm_is_a_registry_error(
    reg, shim_bin, facts_file, tmp_path, name, answer, says
):
    """A control character or a broken IPv6 literal in a URL the registry
    names is the registry's error (one line naming it), not an unexpected one."""
    ref = reg.behaviour(f"bad-url-{name}/app", _raw(answer)) + ":1"
    fails_open(shim_bin, facts_file, tmp_path, ref, says)


def test_podman_creds_are_the_credentials_sent_not_the_auth_file(
    reg, shim_bin, facts_file, tmp_path
):
    """``podman run --creds carol:PW`` authenticates the index request as
    carol, as podman's own pull does, although auth.json holds bob's
    credentials for the registry (which are used without --creds)."""
    seen: list[str] = []
    documents = serve_documents({"1": (plain_index(), INDEX)})

    def basic_only(handler, route):
        given = handler.headers.get("Authorization", "")
        seen.append(given)
        if not given.startswith("Basic "):
            return send(handler, 401, b"{}", {"WWW-Authenticate": 'Basic realm="r"'})
        return documents(handler, route)

    ref = reg.behaviour("creds/app", basic_only) + ":1"
    auth = tmp_path / "auth.json"
    bob = base64.b64encode(b"bob:S3CRET").decode()
    auth.write_text(json.dumps({"auths": {reg.host: {"auth": bob}}}))
    site = tmp_path / "site.toml"
    site.write_text("decision_cache_ttl = 0\n")
    environ = {**os.environ, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"),
               "IMAGEFIT_DRY_RUN": "1", "IMAGEFIT_FACTS": facts_file, "IMAGEFIT_SITE_CONFIG": str(site),
               "IMAGEFIT_REGISTRY_TIMEOUT": f"{BUDGET:g}", "REGISTRY_AUTH_FILE": str(auth)}  # fmt: skip
    for creds, who in ((["--creds", "carol:P4SS"], b"carol:P4SS"), ([], b"bob:S3CRET")):
        seen.clear()
        args = ["run", "--rm", *creds, "--tls-verify=false", ref, "id"]
        done = subprocess.run([str(shim_bin / "podman"), *args], env=environ,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0 and done.stderr == "", done.stderr
        argv = json.loads(done.stdout)[1:]
        assert f"{ref.rsplit(':', 1)[0]}@{CHOSEN}" in argv, argv
        assert "Basic " + base64.b64encode(who).decode() in seen, seen
        assert all("S3CRET" not in s for s in seen) or who == b"bob:S3CRET", seen


def test_credentials_never_go_to_a_plain_http_realm_of_an_https_registry():
    """A registry reached over TLS whose challenge names an ``http://`` realm
    would get the Basic credentials in clear text on the network: one line,
    and no connection to that realm at all (a listener on loopback counts)."""
    from shim.registry import RegistryClient, RegistryError

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0.5)
        realm = f"http://127.0.0.1:{listener.getsockname()[1]}/token"
        client = RegistryClient("registry.example.org", credentials=("user", "s3cret"), timeout=3)
        client._scheme = "https"  # the scheme the challenge came over
        with pytest.raises(RegistryError, match="plain-HTTP token realm .*credentials not sent"):
            client._token({"realm": realm, "service": "registry", "scope": "repository:a:pull"})
        with pytest.raises(TimeoutError):
            listener.accept()
