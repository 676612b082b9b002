"""The decision cache on the real path: the installed shim (dry run) against
the real registry, counting requests from the registry's own access log."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from shim import decisions
from tests.conftest import world_readable_tmp
from tests.support import oci
from tests.test_hot_path import imported, launcher_argv

TARGET = "org.supercontainers.hardware.cpu.target.microarch"
HEAVY = ("requests", "urllib3", "pydantic", "structlog", "archspec", "pynvml", "yaml", "scoring", "shim.resolve",
         "shim.registry", "hostfacts.api", "hostfacts.model", "urllib3", "re", "fnmatch", "json", "socket",
         "tempfile", "collections", "tomllib", "site", "sitecustomize", "dataclasses")  # fmt: skip


def _builds(names):
    return [
        {
            "name": n,
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {TARGET: n},
        }
        for n in names
    ]


@pytest.fixture(scope="module")
def app(registry, tmp_path_factory):
    return oci.build_and_push(registry.host, "cache/app", "1", _builds(["x86_64", "haswell", "zen4"]),
                              layout_dir=tmp_path_factory.mktemp("cache-app"))  # fmt: skip


@pytest.fixture(scope="module")
def facts_file(cpuinfo_dir, imagefit_cmd):
    out = world_readable_tmp("imagefit-cache-facts-")
    path = out / "zen4.json"
    done = subprocess.run([*imagefit_cmd, "facts", "--json", "--cpuinfo", str(cpuinfo_dir / "linux-rocky8.5-zen4")],
                          check=True, capture_output=True, text=True)  # fmt: skip
    path.write_text(done.stdout)
    path.chmod(0o644)
    return str(path)


@pytest.fixture
def env(tmp_path, facts_file, shim_bin):
    site = tmp_path / "site.toml"
    site.write_text("decision_cache_ttl = 600\n")
    site.chmod(0o644)
    return {
        **os.environ, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"), "IMAGEFIT_DRY_RUN": "1",
        "IMAGEFIT_FACTS": facts_file, "IMAGEFIT_SITE_CONFIG": str(site), "PATH": f"{shim_bin}:{os.environ['PATH']}",
    }  # fmt: skip


def shim(shim_bin, env, *args, importtime=False):
    argv = [str(shim_bin / "podman"), "run", "--rm", "--tls-verify=false", *args, "id"]
    if (
        importtime
    ):  # the launcher's own command line, as the kernel runs it (tests/test_hot_path.py)
        argv = launcher_argv(*argv)
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)


def _pinned(done) -> str:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])[-2]


def _manifest_requests(registry, since):
    return [r for r in registry.requests(since) if "/manifests/" in r[1]]


@pytest.mark.parametrize("site", ["plain", "cluster", "job"])
def test_a_hit_makes_no_request_and_imports_nothing_heavy(
    registry, app, shim_bin, env, facts_file, site
):
    here = os.uname().nodename.split(".")[0]
    if (
        site != "plain"
    ):  # a cluster site: node classes (globs with brackets), a class policy, job mode
        Path(env["IMAGEFIT_SITE_CONFIG"]).write_text(
            f'decision_cache_ttl = 600\nconsistency = "{"job" if site == "job" else "node"}"\n'
            f'[node_classes.zen4]\nfacts = "{facts_file}"\nhosts = ["nid00[0-3]*", "{here}"]\n'
            '[[policy]]\nimage = "*/other/*"\nnode_class = "zen*"\npin = "x86_64"\n'
        )
        env = {**env, "SLURM_JOB_ID": "7", "SLURM_JOB_NODELIST": f"nid00[01-03],{here}"}
    first = shim(shim_bin, env, app.ref)
    assert _pinned(first) == app.digest_ref("zen4")
    assert _pinned(shim(shim_bin, env, app.ref)) == app.digest_ref("zen4")  # a hit gives the same
    mark = registry.log_offset()
    # the real hot path: no dry run (whose JSON printing imports json), exec of a no-op "runtime"
    real_env = {k: v for k, v in env.items() if k != "IMAGEFIT_DRY_RUN"} | {
        "IMAGEFIT_PODMAN": "/bin/true"
    }
    second = shim(shim_bin, real_env, app.ref, importtime=True)
    assert second.returncode == 0, second.stderr
    assert registry.requests(mark) == []
    modules = imported(second)
    assert "shim.decisions" in modules  # the hit was read ...
    heavy = [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert heavy == [], heavy  # ... through the installed launcher, with nothing heavy


def test_a_hit_through_the_launcher_imports_no_hashlib(registry, app, shim_bin, env):
    """The facts fingerprint and the decision key are sha256s; CPython's
    built-in sha256 computes them without importing hashlib."""
    assert _pinned(shim(shim_bin, env, app.ref)) == app.digest_ref("zen4")
    real_env = {k: v for k, v in env.items() if k != "IMAGEFIT_DRY_RUN"} | {
        "IMAGEFIT_PODMAN": "/bin/true"
    }
    hit = shim(shim_bin, real_env, app.ref, importtime=True)
    assert hit.returncode == 0, hit.stderr
    modules = imported(hit)
    assert "shim.decisions" in modules and "hostfacts.fingerprint" in modules
    assert "hashlib" not in modules and "_hashlib" not in modules


def test_after_the_ttl_one_head_revalidates(registry, app, shim_bin, env, tmp_path):
    Path(env["IMAGEFIT_SITE_CONFIG"]).write_text("decision_cache_ttl = 0.5\n")
    assert _pinned(shim(shim_bin, env, app.ref)) == app.digest_ref("zen4")
    time.sleep(0.6)
    mark = registry.log_offset()
    assert _pinned(shim(shim_bin, env, app.ref)) == app.digest_ref("zen4")
    manifests = _manifest_requests(registry, mark)
    assert [(m, s) for m, _, s in manifests] == [("HEAD", 200)], manifests


def test_a_moved_tag_is_resolved_again(registry, shim_bin, env, tmp_path):
    Path(env["IMAGEFIT_SITE_CONFIG"]).write_text("decision_cache_ttl = 0.5\n")
    old = oci.build_and_push(
        registry.host,
        "cache/moving",
        "1",
        _builds(["x86_64", "haswell"]),
        layout_dir=tmp_path / "a",
    )
    assert _pinned(shim(shim_bin, env, old.ref)) == old.digest_ref("x86_64")
    new = oci.build_and_push(
        registry.host, "cache/moving", "1", _builds(["x86_64", "zen4"]), layout_dir=tmp_path / "b"
    )
    time.sleep(0.6)
    assert _pinned(shim(shim_bin, env, new.ref)) == new.digest_ref("zen4")


def test_registry_down_uses_the_stale_decision_with_a_warning(app, shim_bin, env, tmp_path):
    audit_log = tmp_path / "audit.jsonl"
    Path(env["IMAGEFIT_SITE_CONFIG"]).write_text(
        f'decision_cache_ttl = 0.5\naudit_log = "{audit_log}"\n'
    )
    ref = app.ref
    assert _pinned(shim(shim_bin, env, ref)) == app.digest_ref("zen4")
    cache = Path(env["XDG_CACHE_HOME"]) / "imagefit" / "decisions"
    (entry_file,) = cache.glob("*.entry")
    # the same decision, now unreachable: point the entry's key at a dead registry by editing nothing but
    # the clock: simulate an outage with a registry timeout on an address nothing listens on
    time.sleep(0.6)
    env = {**env, "IMAGEFIT_REGISTRY_TIMEOUT": "1", "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
           "NO_PROXY": ""}  # fmt: skip
    # the build is in no local storage (an empty podman store): offline, podman could not pull
    # it either, so the shim says which build this node needs instead of failing later
    storage = tmp_path / "storage"
    runroot = tempfile.mkdtemp(prefix="rr-", dir="/tmp")  # podman: at most 50 characters
    done = shim(shim_bin, env, "--root", str(storage), "--runroot", runroot, ref)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 125, done.stderr
    assert (
        lines[0].startswith(f"imagefit: cannot check {ref}")
        and "using the decision made" in lines[0]
    )
    assert len(lines) == 2 and "needs build zen4" in lines[1] and "not in local storage" in lines[1]
    assert lines[1].endswith(f" --runroot={runroot} pull {ref} on a node like this one"), lines[1]
    # the refusal is audited with its cause
    last = json.loads(audit_log.read_text().splitlines()[-1])
    assert last["outcome"] == "refused" and "not in local storage" in last["reason"], last
    assert entry_file.exists()
    # with the build in local storage the stale decision runs, with the one warning
    subprocess.run(
        ["podman", "--root", str(storage), "--runroot", runroot, "pull", "-q",
         "--tls-verify=false", app.digest_ref("zen4")],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    done = shim(shim_bin, env, "--root", str(storage), "--runroot", runroot, ref)
    assert _pinned(done) == app.digest_ref("zen4")
    warning = done.stderr.strip().splitlines()
    assert len(warning) == 1 and "using the decision made" in warning[0], warning


def test_corrupt_or_untrusted_entries_are_ignored_and_replaced(registry, app, shim_bin, env):
    assert _pinned(shim(shim_bin, env, app.ref)) == app.digest_ref("zen4")
    cache = Path(env["XDG_CACHE_HOME"]) / "imagefit" / "decisions"
    (entry_file,) = cache.glob("*.entry")
    good = entry_file.read_text()
    for bad in (
        good[: len(good) // 2],
        "",
        "{}",
        good.replace("\tselected\n", "\tmaybe\n"),
    ):
        entry_file.write_text(bad)
        mark = registry.log_offset()
        assert _pinned(shim(shim_bin, env, app.ref)) == app.digest_ref("zen4")
        # not used: decided again, from the index store (fresh: no registry request)
        assert _manifest_requests(registry, mark) == []
        assert decisions.Entry.loads(entry_file.read_text()) is not None  # replaced
    entry_file.write_text(
        entry_file.read_text().replace(app.manifests["zen4"], app.manifests["x86_64"])
    )
    entry_file.chmod(0o666)  # writable by others: not trusted
    assert _pinned(shim(shim_bin, env, app.ref)) == app.digest_ref("zen4")


def _writer(directory: str, key: str, n: int) -> None:
    big = {
        "org.supercontainers.container.kind": "login" * 2000
    }  # a large entry: many writes per file
    for i in range(n):
        entry = decisions.Entry(
            "r.io/a:1", "sha256:" + "a" * 64, "selected", "sha256:" + f"{i % 16:x}" * 64, big
        )
        decisions.store(directory, key, entry)


def test_kill_9_while_writing_never_leaves_a_partial_entry(tmp_path):
    directory, key = str(tmp_path / "d"), "k" * 64
    _writer(directory, key, 1)
    ctx = multiprocessing.get_context("fork")
    seen = 0
    for _ in range(25):
        proc = ctx.Process(target=_writer, args=(directory, key, 10_000))
        proc.start()
        deadline = time.monotonic() + 0.05
        while time.monotonic() < deadline:
            entry = decisions.load(directory, key)
            assert (
                entry is not None
                and entry.chosen.startswith("sha256:")
                and entry.reference == "r.io/a:1"
            )
            assert len(entry.annotations["org.supercontainers.container.kind"]) == 10_000
            seen += 1
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        entry = decisions.load(directory, key)
        assert entry is not None and entry.index_digest == "sha256:" + "a" * 64
    assert seen > 100
    leftovers = [p for p in Path(directory).iterdir() if p.name.startswith(".tmp-")]
    assert len(leftovers) <= 25  # killed writers may leave temp files, never a partial entry


def test_a_herd_of_64_shims_makes_one_resolution(registry, tmp_path, shim_bin, env):
    app = oci.build_and_push(registry.host, "cache/herd", "1", _builds(["x86_64", "haswell", "zen4"]),
                             layout_dir=tmp_path / "herd")  # fmt: skip
    shared = world_readable_tmp("imagefit-shared-cache-")
    # registry_timeout sets how long a follower waits for the leader (timeout + 10 s, twice for
    # a decision): 30 s keeps 64 shims starting on 2 loaded CPUs (the leader's decision took
    # 6-10 s in the CI audit) from working alone, without changing what is counted
    Path(env["IMAGEFIT_SITE_CONFIG"]).write_text(
        f'decision_cache_dir = "{shared}"\nregistry_timeout = 30\n'
    )
    mark = registry.log_offset()
    procs = [
        subprocess.Popen(
            [str(shim_bin / "podman"), "run", "--rm", "--tls-verify=false", app.ref, "id"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(64)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outputs if e]
    chosen = {json.loads(out.splitlines()[-1])[-2] for out, _ in outputs}
    assert chosen == {app.digest_ref("zen4")}
    index_gets = [
        r for r in registry.requests(mark) if r[0] == "GET" and r[1].endswith("/manifests/1")
    ]
    assert len(index_gets) == 1, index_gets


def test_audit_log_one_line_per_decision_same_fields_on_miss_and_hit(app, shim_bin, env, tmp_path):
    log = tmp_path / "audit.jsonl"
    Path(env["IMAGEFIT_SITE_CONFIG"]).write_text(f'audit_log = "{log}"\n')
    shim(shim_bin, env, app.ref)
    shim(shim_bin, env, app.ref)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["cache"] for line in lines] == ["miss", "hit"]
    assert lines[0].keys() == lines[1].keys()
    assert {"event", "time", "user", "uid", "host", "runtime", "reference", "index_digest", "chosen", "build",
            "outcome", "reason", "cache", "duration_ms"} == set(lines[0])  # fmt: skip
    assert all(
        line["chosen"] == app.manifests["zen4"] and line["build"] == "zen4"
        and line["runtime"] == "podman" for line in lines
    )  # fmt: skip
    assert "password" not in log.read_text().lower()
