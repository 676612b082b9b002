"""The site's shared directory under attack from another user: the index
store and the decision entries (shim/store.py, shim/decisions.py).

Content (blobs) is shared by all and verified by digest; tag records and
decisions are trusted only from the reader, root or a trusted uid; root
never follows a link, never opens a FIFO blocking, never writes through a
planted file; the shim never creates the shared directory itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shim import decisions, store
from tests.conftest import world_readable_tmp
from tests.support import oci

ALICE = 1234
TARGET = "org.supercontainers.hardware.cpu.target.microarch"
REF = "r.example/app/x:1"
INDEX = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}'
INDEX_DIGEST = "sha256:" + hashlib.sha256(INDEX).hexdigest()


@pytest.fixture
def shared() -> Path:
    """A site directory as docs/admin.md asks: root's, sticky, world-writable."""
    path = world_readable_tmp("imagefit-shared-")
    path.chmod(0o1777)
    return path


def _as(uid: int, path: Path) -> None:
    os.chown(path, uid, uid, follow_symlinks=False)


def _record(fetched_at=None, digest=INDEX_DIGEST) -> store.Record:
    return store.Record(REF, digest, "application/vnd.oci.image.index.v1+json", None,
                        time.time() if fetched_at is None else fetched_at, "r.example")  # fmt: skip


def test_records_and_decisions_of_another_user_are_ignored(shared):
    assert store.write_blob(str(shared), INDEX, shared=True) == INDEX_DIGEST
    assert store.save_record(str(shared), _record(), shared=True)
    (mine,) = shared.glob("*.0.ref")
    alice = mine.with_name(mine.name.replace(".0.ref", f".{ALICE}.ref"))
    alice.write_bytes(mine.read_bytes().replace(INDEX_DIGEST.encode(), b"sha256:" + b"b" * 64))
    _as(ALICE, alice)
    mine.unlink()
    assert store.load_record(str(shared), REF) is None  # root does not take alice's word
    assert (
        store.load_record(str(shared), REF, trusted_uids=(ALICE,)).index_digest
        == "sha256:" + "b" * 64
    )
    key = "k" * 64
    entry = decisions.Entry(REF, INDEX_DIGEST, "selected", "sha256:" + "c" * 64, key=key)
    path = shared / f"{key}.{ALICE}.entry"
    path.write_text(entry.dumps())
    _as(ALICE, path)
    assert decisions.load(str(shared), key) is None
    assert decisions.load(str(shared), key, (ALICE,)).chosen == "sha256:" + "c" * 64
    path.chmod(0o666)  # writable by others: not even a trusted uid's
    assert decisions.load(str(shared), key, (ALICE,)) is None


def test_a_planted_blob_is_a_miss_and_content_is_shared_by_digest(shared):
    blob = shared / (INDEX_DIGEST[7:] + ".blob")
    blob.write_bytes(INDEX + b" ")  # not those bytes
    _as(ALICE, blob)
    assert store.read_blob(str(shared), INDEX_DIGEST) is None
    blob.unlink()
    blob.write_bytes(INDEX)  # the right bytes, whoever wrote them, are the content
    _as(ALICE, blob)
    assert store.read_blob(str(shared), INDEX_DIGEST) == INDEX


def test_fifo_symlink_and_device_names_are_never_followed_or_opened_blocking(shared, tmp_path):
    secret = tmp_path / "root-only"
    secret.write_text("root's\n")
    secret.chmod(0o600)
    key = "f" * 64
    fifo = shared / f"{key}.0.entry"
    os.mkfifo(fifo)
    link = shared / (INDEX_DIGEST[7:] + ".blob")
    link.symlink_to(secret)
    lock = shared / f"{key}.lock"
    lock.symlink_to(tmp_path / "created-through-link")
    code = f"""
import sys; sys.path.insert(0, {str(Path(__file__).parents[1])!r})
from shim import decisions, store
assert decisions.load({str(shared)!r}, {key!r}) is None
assert store.read_blob({str(shared)!r}, {INDEX_DIGEST!r}) is None
assert decisions.read_file({str(shared / "null")!r}, 10) is None
print("ok")
"""
    os.symlink("/dev/zero", shared / "null")
    done = subprocess.run(["python3", "-c", code], capture_output=True, text=True, timeout=20)
    assert done.stdout.strip() == "ok", done.stderr  # no hang on the FIFO, no link followed
    # writing over the planted names replaces them; nothing is written through them
    entry = decisions.Entry(REF, INDEX_DIGEST, "selected", "sha256:" + "d" * 64)
    assert decisions.store(str(shared), key, entry, shared=True)
    assert (
        stat.S_ISREG(os.lstat(fifo).st_mode)
        and decisions.load(str(shared), key).chosen == entry.chosen
    )
    assert store.write_blob(str(shared), INDEX, shared=True) == INDEX_DIGEST
    assert not os.path.islink(link) and link.read_bytes() == INDEX
    assert secret.read_text() == "root's\n" and oct(secret.stat().st_mode & 0o777) == "0o600"
    # a lock name planted as a link: its lease is judged by the link itself; it is
    # removed (unlink never follows) once stale, and nothing is created through it
    old = time.time() - 3600
    os.utime(lock, (old, old), follow_symlinks=False)
    with decisions.single_flight(str(shared), key, 0.5, shared=True, check=lambda: None) as flight:
        assert flight.leader
        assert stat.S_ISREG(os.lstat(lock).st_mode)
    assert not (tmp_path / "created-through-link").exists()
    assert not lock.exists()


def test_files_root_writes_in_a_shared_directory_get_their_mode_on_the_descriptor(shared):
    entry = decisions.Entry(REF, INDEX_DIGEST, "selected", "sha256:" + "e" * 64)
    assert decisions.store(str(shared), "a" * 64, entry, shared=True)
    st = (shared / f"{'a' * 64}.0.entry").stat()
    assert st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o644
    assert not list(shared.glob(".tmp-*"))


def test_records_dated_ahead_or_of_another_reference_are_not_records(shared):
    assert store.save_record(
        str(shared), _record(fetched_at=time.time() + 10 * 365 * 86400), shared=True
    )
    assert store.load_record(str(shared), REF) is None
    (path,) = shared.glob("*.0.ref")
    doc = json.loads(path.read_text())
    doc.update(fetched_at=time.time(), reference="r.example/other:1")
    path.write_text(json.dumps(doc))
    assert store.load_record(str(shared), REF) is None
    entry = decisions.Entry(REF, INDEX_DIGEST, "selected", "sha256:" + "e" * 64,
                            decided_at=time.time() + 10 * 365 * 86400)  # fmt: skip
    assert decisions.Entry.loads(entry.dumps()) is None


def test_the_lock_works_across_processes_and_a_dead_holder_is_not_waited_for(shared):
    lock = decisions.LeaseLock(str(shared), "x.lock", lease=60)
    assert lock.acquire()
    other = decisions.LeaseLock(str(shared), "x.lock", lease=60)
    assert not other.acquire() and other.held_elsewhere()
    lock.release()
    assert not (shared / "x.lock").exists()
    # a holder killed with -9 on this node: its pid is gone, the next taker breaks it at once
    proc = subprocess.Popen(["sleep", "30"])
    (shared / "x.lock").write_text(f"{os.uname().nodename} {proc.pid} {time.time()}\n")
    proc.kill()
    proc.wait()
    assert other.acquire()
    other.release()


@pytest.fixture(scope="module")
def app(registry, tmp_path_factory):
    builds = [{"name": n, "platform": {"architecture": "amd64", "os": "linux"}, "annotations": {TARGET: n}}
              for n in ("x86_64", "haswell", "zen4")]  # fmt: skip
    return oci.build_and_push(registry.host, "store/app", "1", builds,
                              layout_dir=tmp_path_factory.mktemp("store-app"))  # fmt: skip


@pytest.fixture(scope="module")
def zen4_facts(cpuinfo_dir, imagefit_cmd):
    out = world_readable_tmp("imagefit-store-facts-")
    done = subprocess.run([*imagefit_cmd, "facts", "--json", "--cpuinfo", str(cpuinfo_dir / "linux-rocky8.5-zen4")],
                          check=True, capture_output=True, text=True)  # fmt: skip
    (out / "zen4.json").write_text(done.stdout)
    (out / "zen4.json").chmod(0o644)
    return str(out / "zen4.json")


def _shim(shim_bin, env, ref, user=None):
    argv = [str(shim_bin / "podman"), "run", "--rm", "--tls-verify=false", ref, "id"]
    if user:
        argv = ["runuser", "-u", user, "--", "env", *[f"{k}={v}" for k, v in env.items()], *argv]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)


def test_root_ignores_what_a_user_wrote_and_the_user_cannot_steer_root(
    registry, app, shim_bin, zen4_facts, shared
):
    site = world_readable_tmp("imagefit-site-") / "config.toml"
    site.write_text(f'decision_cache_dir = "{shared}"\n')
    site.chmod(0o644)
    home = world_readable_tmp("imagefit-alice-home-")
    _as(ALICE, home)
    base = {"PATH": f"{shim_bin}:/usr/sbin:/usr/bin:/sbin:/bin", "IMAGEFIT_DRY_RUN": "1",
            "IMAGEFIT_FACTS": zen4_facts, "IMAGEFIT_SITE_CONFIG": str(site)}  # fmt: skip
    alice = _shim(shim_bin, {**base, "HOME": str(home)}, app.ref, user="alice")
    assert alice.returncode == 0, alice.stderr
    assert json.loads(alice.stdout.splitlines()[-1])[-2] == app.digest_ref("zen4")
    mine = [p for p in shared.iterdir() if p.name.endswith((f".{ALICE}.entry", f".{ALICE}.ref"))]
    assert len(mine) == 2, sorted(p.name for p in shared.iterdir())
    # alice rewrites her files to point root at another build: root never reads them
    for path in mine:
        text = path.read_text().replace(app.manifests["zen4"], app.manifests["x86_64"])
        path.write_text(text)
    mark = registry.log_offset()
    root_home = world_readable_tmp("imagefit-root-home-")
    done = _shim(shim_bin, {**base, "HOME": str(root_home)}, app.ref)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])[-2] == app.digest_ref("zen4")
    assert any("/manifests/1" in r[1] for r in registry.requests(mark))  # root resolved for itself
    assert sorted(p.name.rsplit(".", 2)[-2] for p in shared.glob("*.entry")) == ["0", str(ALICE)]


def test_an_absent_shared_directory_is_never_created(app, shim_bin, zen4_facts, tmp_path):
    missing = tmp_path / "not-there"
    site = tmp_path / "site.toml"
    site.write_text(f'decision_cache_dir = "{missing}"\n')
    site.chmod(0o644)
    env = {"PATH": f"{shim_bin}:/usr/sbin:/usr/bin:/sbin:/bin", "IMAGEFIT_DRY_RUN": "1", "HOME": str(tmp_path),
           "IMAGEFIT_FACTS": zen4_facts, "IMAGEFIT_SITE_CONFIG": str(site)}  # fmt: skip
    done = _shim(shim_bin, env, app.ref)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])[-2] == app.digest_ref("zen4")
    assert done.stderr.strip().splitlines() == [
        f"imagefit: shared cache directory {missing}: No such file or directory; using the per-user cache"
    ]
    assert not missing.exists()
    assert list((tmp_path / ".cache" / "imagefit" / "decisions").glob("*.entry"))


def test_a_hard_link_or_a_rename_to_another_key_is_not_that_keys_entry(shared):
    """Another user may link (fs.protected_hardlinks=0) or, in a directory she
    owns, rename root's entry for one key to another key's name: the entry
    names its own key, and a file with two names is nobody's."""
    entry = decisions.Entry(REF, INDEX_DIGEST, "selected", "sha256:" + "a" * 64)
    assert decisions.store(str(shared), "1" * 64, entry, shared=True)
    os.link(shared / f"{'1' * 64}.0.entry", shared / f"{'2' * 64}.0.entry")
    assert decisions.load(str(shared), "2" * 64) is None
    assert decisions.load(str(shared), "1" * 64) is None  # two names: neither is trusted
    (shared / f"{'2' * 64}.0.entry").unlink()
    assert decisions.load(str(shared), "1" * 64).chosen == entry.chosen
    os.rename(shared / f"{'1' * 64}.0.entry", shared / f"{'3' * 64}.0.entry")
    assert decisions.load(str(shared), "3" * 64) is None


def test_a_blob_another_user_planted_is_replaced_and_a_record_needs_its_blobs(shared):
    blob = shared / (INDEX_DIGEST[7:] + ".blob")
    blob.write_bytes(
        INDEX
    )  # the right bytes, but hers, and writable by all: she could damage it later
    blob.chmod(0o666)
    _as(ALICE, blob)
    assert store.write_blob(str(shared), INDEX, shared=True) == INDEX_DIGEST
    assert blob.stat().st_uid == 0 and stat.S_IMODE(blob.stat().st_mode) == 0o644


def test_records_with_absurd_times_are_not_records(shared):
    assert store.save_record(str(shared), _record(), shared=True)
    (path,) = shared.glob("*.0.ref")
    for bad in ("-1" + "0" * 400, "1e400", "-5", "true", '"1"'):
        doc = json.loads(path.read_text())
        path.write_text(
            json.dumps(doc).replace(f'"fetched_at": {doc["fetched_at"]}', f'"fetched_at": {bad}')
        )
        assert store.load_record(str(shared), REF) is None, bad
        assert store.save_record(str(shared), _record(), shared=True)


def test_a_lock_dated_ahead_is_broken(shared):
    (shared / "y.lock").write_text("elsewhere 1 0\n")
    ahead = time.time() + 10 * 365 * 86400
    os.utime(shared / "y.lock", (ahead, ahead))
    lock = decisions.LeaseLock(str(shared), "y.lock", lease=60)
    assert not lock.held_elsewhere() and lock.acquire()
    lock.release()


@pytest.mark.parametrize("case", ["link", "foreign", "not-sticky"])
def test_a_shared_directory_the_site_did_not_make_is_not_used(case, tmp_path):
    real = tmp_path / "real"
    real.mkdir(mode=0o755)
    path = tmp_path / "store"
    if case == "link":
        path.symlink_to(real)
        why = "a symbolic link"
    elif case == "foreign":
        path.mkdir(mode=0o755)
        _as(ALICE, path)
        why = f"owned by uid {ALICE}"
    else:
        path.mkdir()
        path.chmod(0o777)
        why = "without the sticky bit"
    env = {"HOME": str(tmp_path / "home")}
    directory, shared, warning = decisions.usable_dir(str(path), env)
    assert not shared and directory == str(tmp_path / "home" / ".cache" / "imagefit" / "decisions")
    assert why in warning and warning.endswith("using the per-user cache")
    if case == "foreign":  # a uid the site trusts may own it
        assert decisions.usable_dir(str(path), env, (ALICE,))[1]


def test_root_with_a_users_home_keeps_no_cache_there(tmp_path):
    home = tmp_path / "alice"
    (home / ".cache").mkdir(parents=True)
    for p in (home, home / ".cache"):
        _as(ALICE, p)
    env = {"HOME": str(home)}
    assert decisions.usable_dir(None, env) == (None, False, None)
    from hostfacts import fingerprint

    fingerprint.record_identity(env, "fp", "class-" + "0" * 32)
    assert not (home / ".cache" / "imagefit").exists()
    # in our own cache: recorded, and bound to its fingerprint
    own = {"HOME": str(tmp_path / "root")}
    fingerprint.record_identity(own, "fp1", "class-" + "1" * 32)
    assert fingerprint.cached_identity(own, "fp1") == "class-" + "1" * 32
    cache = tmp_path / "root" / ".cache" / "imagefit"
    os.rename(cache / "class-fp1", cache / "class-fp2")
    assert fingerprint.cached_identity(own, "fp2") is None


def test_a_second_user_keeps_records_when_the_first_users_blob_holds_the_shared_name(shared):
    """Bob cannot replace alice's blob in a sticky directory: his copy goes to
    his own name, and his record is kept (the store stays his offline fallback)."""
    BOB = 1235
    code = f"""
import os, sys, time; sys.path.insert(0, {str(Path(__file__).parents[1])!r})
os.setgid({BOB}); os.setuid({BOB})
from shim import store
data = {INDEX!r}
assert store.write_blob({str(shared)!r}, data, True) == {INDEX_DIGEST!r}
rec = store.Record({REF!r}, {INDEX_DIGEST!r}, "application/vnd.oci.image.index.v1+json", None, time.time())
assert store.save_record({str(shared)!r}, rec, True)
assert store.read_blob({str(shared)!r}, {INDEX_DIGEST!r}) == data
print("ok")
"""
    blob = shared / (INDEX_DIGEST[7:] + ".blob")
    blob.write_bytes(INDEX)
    blob.chmod(0o666)
    _as(ALICE, blob)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    assert done.stdout.strip() == "ok", done.stderr
    assert (shared / f"{INDEX_DIGEST[7:]}.{BOB}.blob").stat().st_uid == BOB


def test_a_planted_directory_or_foreign_file_at_a_lock_name_is_not_waited_for(shared):
    """Another user squats root's lock names with a directory, or a file she keeps
    touching: neither is a lock root waits for (her result would never be trusted)."""
    (shared / "k1.lock").mkdir()
    _as(ALICE, shared / "k1.lock")
    (shared / "k2.lock").write_text("other 1 0\n")
    _as(ALICE, shared / "k2.lock")
    for key in ("k1", "k2"):
        start = time.monotonic()
        with decisions.single_flight(
            str(shared), key, 30, shared=True, check=lambda: None
        ) as flight:
            assert flight.leader
        assert time.monotonic() - start < 2, key


def test_a_trailing_slash_does_not_let_a_link_stand_for_the_shared_directory(tmp_path):
    real = tmp_path / "rootonly"
    real.mkdir(mode=0o755)
    (tmp_path / "store").symlink_to(real)
    directory, shared, warning = decisions.usable_dir(
        str(tmp_path / "store") + "/", {"HOME": str(tmp_path)}
    )
    assert not shared and "a symbolic link" in warning


def test_root_with_a_users_home_reads_no_facts_or_config_cache_from_it(tmp_path):
    """`sudo -E`: alice links root's predicted facts-cache name to a facts file of
    another class and plants a FIFO at the config parse cache: root reads neither."""
    from hostfacts import cache
    from shim import config

    home = tmp_path / "alice"
    facts_dir = home / ".cache" / "imagefit"
    (facts_dir / "config").mkdir(parents=True)
    for p in (home, home / ".cache", facts_dir, facts_dir / "config"):
        _as(ALICE, p)
    planted = tmp_path / "zen4.json"
    planted.write_text("{}")
    (facts_dir / "facts-k.json").symlink_to(planted)
    assert cache.load(facts_dir, "k") is None
    site = tmp_path / "site.toml"
    site.write_text('login = "never"\n')
    site.chmod(0o644)
    env = {"HOME": str(home), "IMAGEFIT_SITE_CONFIG": str(site)}
    os.mkfifo(config._parse_cache_path(str(site), env))
    code = f"""
import sys; sys.path.insert(0, {str(Path(__file__).parents[1])!r})
from shim import config
print(config.load({env!r}, euid=0).login)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    assert done.stdout.strip() == "never", done.stderr  # no hang on the FIFO
    assert sorted(p.name for p in (facts_dir / "config").iterdir()) == [
        Path(config._parse_cache_path(str(site), env)).name
    ]


def test_an_index_nested_too_deep_fails_open_in_one_line(
    registry, app, shim_bin, zen4_facts, tmp_path
):
    text = oci.layout_index_bytes(app.layout_dir).decode().rstrip()
    body = (text[:-1] + ',"x":' + "[" * 3000 + "]" * 3000 + "}").encode()  # 6 KB, 3000 deep
    oci.push_manifest(
        registry.host,
        "store/app",
        body,
        "application/vnd.oci.image.index.v1+json",
        reference="deep",
    )
    env = {"PATH": f"{shim_bin}:/usr/sbin:/usr/bin:/sbin:/bin", "IMAGEFIT_DRY_RUN": "1", "HOME": str(tmp_path),
           "IMAGEFIT_FACTS": zen4_facts, "IMAGEFIT_SITE_CONFIG": str(tmp_path / "none.toml")}  # fmt: skip
    ref = f"{registry.host}/store/app:deep"
    done = _shim(shim_bin, env, ref)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])[-2] == ref  # unchanged
    (line,) = done.stderr.splitlines()  # the wording of the cause is the registry client's
    assert line.startswith(f"imagefit: cannot resolve {ref} (") and "nested" in line
    assert line.endswith("; running the command unchanged")


@pytest.mark.parametrize("kind", ["fifo", "device", "deep"])
def test_a_hostile_class_facts_file_is_one_line(
    registry, app, shim_bin, zen4_facts, tmp_path, kind
):
    facts = tmp_path / "class.json"
    if kind == "fifo":
        os.mkfifo(facts)
    elif kind == "device":
        facts.symlink_to("/dev/zero")
    else:
        facts.write_text("[" * 5000 + "]" * 5000)
    for ttl in (0, 600):  # with and without the cache (the fingerprint reads it first)
        site = tmp_path / f"site{ttl}.toml"
        site.write_text(
            f'decision_cache_ttl = {ttl}\n[node_classes.evil]\nfacts = "{facts}"\nhosts = ["nomatch"]\n'
        )
        site.chmod(0o644)
        env = {"PATH": f"{shim_bin}:/usr/sbin:/usr/bin:/sbin:/bin", "IMAGEFIT_DRY_RUN": "1", "HOME": str(tmp_path),
               "IMAGEFIT_SITE_CONFIG": str(site), "IMAGEFIT_NODE_CLASS": "evil"}  # fmt: skip
        done = subprocess.run([str(shim_bin / "podman"), "pull", "--tls-verify=false", app.ref], env=env,
                              capture_output=True, text=True, timeout=30)  # fmt: skip
        assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1, (
            ttl,
            done.stderr,
        )
        assert str(facts) in done.stderr, done.stderr


def test_reachability_is_any_pull_source_answering(registry, tmp_path):
    """The offline check refuses only when every pull source refused a TCP
    connection: a dead mirror ahead of a live registry is no reason to refuse."""
    import socket

    from shim import personality
    from shim.choice import Context
    from shim.config import Settings
    from shim.reference import parse

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"  # closed once the block ends: refused
    conf = tmp_path / "registries.conf"
    p = personality.get("podman")

    def reachable(name: str, mirrors: list[str]) -> bool:
        conf.write_text(f'[[registry]]\nlocation = "{name.split("/")[0]}"\n'
                        + "".join(f'[[registry.mirror]]\nlocation = "{m}"\n' for m in mirrors))  # fmt: skip
        env = {"HOME": str(tmp_path), "CONTAINERS_REGISTRIES_CONF": str(conf)}
        ctx = Context(p, p.parse(["pull", name]), Settings(), env, "vm", None, None, False)
        return ctx._reachable(parse(name))

    assert reachable(f"{registry.host}/a/b:1", [dead])
    assert not reachable(f"{dead}/a/b:1", [dead.replace("127.0.0.1", "127.0.0.2")])
    assert reachable(f"{dead}/a/b:1", [registry.host])


def _date_back(directory: Path, seconds: float) -> tuple[int, int]:
    """Date every index record and decision in `directory` back by
    `seconds` (as if that much time had passed); returns (records, decisions)."""
    records = decided = 0
    for path in directory.glob("*.ref"):
        doc = json.loads(path.read_text())
        path.write_text(json.dumps({**doc, "fetched_at": doc["fetched_at"] - seconds}))
        records += 1
    for path in directory.glob("*.entry"):
        entry = decisions.Entry.loads(path.read_text())
        assert entry is not None, path
        entry.decided_at -= seconds
        path.write_text(entry.dumps())
        decided += 1
    return records, decided


def test_after_the_ttl_one_process_rechecks_the_tag_for_the_whole_cluster(
    registry, app, shim_bin, cpuinfo_dir, imagefit_cmd, tmp_path
):
    """12 simulated nodes of 3 classes, each with its own cache, one shared
    directory: cold, one index GET; after the TTL, one HEAD (the record is
    refreshed for all), and every node keeps its class's build.

    The TTL passes by dating every shared record and decision back, not by
    sleeping past a short TTL: with a 2 s TTL a loaded 2-CPU machine took
    longer than the TTL to start 12 shims, and a late node rightly asked
    again (CI, stop 18)."""
    shared = world_readable_tmp("imagefit-herd-")
    shared.chmod(0o1777)
    site = tmp_path / "site.toml"
    site.write_text(f'decision_cache_dir = "{shared}"\ndecision_cache_ttl = 600\n')
    site.chmod(0o644)
    classes = {}
    for name, dump in (
        ("zen4", "linux-rocky8.5-zen4"),
        ("hsw", "linux-rhel7-haswell"),
        ("x", "linux-rhel7-x86_64_v3"),
    ):
        done = subprocess.run([*imagefit_cmd, "facts", "--json", "--cpuinfo", str(cpuinfo_dir / dump)],
                              check=True, capture_output=True, text=True)  # fmt: skip
        (tmp_path / f"{name}.json").write_text(done.stdout)
        classes[name] = str(tmp_path / f"{name}.json")

    def herd() -> dict[str, set[str]]:
        procs = []
        for i in range(12):
            cls = list(classes)[i % 3]
            env = {"PATH": f"{shim_bin}:/usr/bin:/bin", "HOME": str(tmp_path / f"n{i}"), "IMAGEFIT_DRY_RUN": "1",
                   "IMAGEFIT_FACTS": classes[cls], "IMAGEFIT_SITE_CONFIG": str(site)}  # fmt: skip
            procs.append((cls, subprocess.Popen([str(shim_bin / "podman"), "run", "--tls-verify=false", app.ref, "id"],
                                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))  # fmt: skip
        chosen: dict[str, set[str]] = {}
        for cls, proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0 and "imagefit:" not in err, err
            chosen.setdefault(cls, set()).add(json.loads(out.splitlines()[-1])[-2])
        return chosen

    expected = {
        "zen4": {app.digest_ref("zen4")},
        "hsw": {app.digest_ref("haswell")},
        "x": {app.digest_ref("x86_64")},
    }
    mark = registry.log_offset()
    assert herd() == expected
    manifests = [(m, p) for m, p, _ in registry.requests(mark) if "/manifests/1" in p]
    assert manifests == [("GET", "/v2/store/app/manifests/1")], manifests
    aged = _date_back(shared, 601)
    assert aged == (1, 3), aged  # one index record, one decision per class
    mark = registry.log_offset()
    assert herd() == expected
    manifests = [(m, p) for m, p, _ in registry.requests(mark) if "/manifests/" in p]
    assert manifests == [("HEAD", "/v2/store/app/manifests/1")], manifests


def test_explain_on_an_offline_node_explains_from_the_store(imagefit_cmd, zen4_facts, tmp_path):
    from tests.support.registry import LocalRegistry

    own = LocalRegistry(tmp_path / "reg")
    try:
        builds = [{"name": n, "platform": {"architecture": "amd64", "os": "linux"}, "annotations": {TARGET: n}}
                  for n in ("x86_64", "zen4")]  # fmt: skip
        pushed = oci.build_and_push(
            own.host, "off/app", "1", builds, layout_dir=tmp_path / "layout"
        )
        env = {**os.environ, "HOME": str(tmp_path), "IMAGEFIT_SITE_CONFIG": str(tmp_path / "none.toml"),
               "IMAGEFIT_REGISTRY_TIMEOUT": "2"}  # fmt: skip
        argv = [
            *imagefit_cmd,
            "explain",
            pushed.ref,
            "--facts",
            zen4_facts,
            "--tls-verify",
            "false",
            "--json",
        ]
        online = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
        assert online.returncode == 0 and online.stderr == "", online.stderr
    finally:
        own.stop()
    offline = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert offline.returncode == 0, offline.stderr
    assert json.loads(offline.stdout)["chosen"] == json.loads(online.stdout)["chosen"]
    (line,) = offline.stderr.splitlines()
    assert (
        line.startswith(f"imagefit: cannot reach the registry for {pushed.ref} (")
        and " s ago" in line
    )


def test_a_hard_link_to_a_file_of_roots_at_a_lock_name_is_not_waited_for(shared):
    """With fs.protected_hardlinks=0 another user may link any file of root's
    (fresh, regular, root-owned) at a lock name: a lock has one name only."""
    mine = shared / "root-file"
    mine.write_text("x\n")
    os.link(mine, shared / "k3.lock")
    start = time.monotonic()
    with decisions.single_flight(str(shared), "k3", 30, shared=True, check=lambda: None) as flight:
        assert flight.leader
    assert time.monotonic() - start < 2
    assert mine.read_text() == "x\n"


@pytest.mark.parametrize("stale", [True, False], ids=["stale-record", "cold"])
def test_a_process_that_takes_the_lock_after_the_leader_finished_asks_nobody(
    registry, app, tmp_path, monkeypatch, stale
):
    """The race a loaded machine hit (audit after the stop-18 CI failure): a
    process reads the store (a stale record, or none), and before it takes
    the reference's lock the leader saves a fresh record and lets go. The
    late process leads, and must read the store again before asking: no
    second HEAD (or GET) for the cluster. Made deterministic by saving the
    fresh record inside the late process's lock acquisition."""
    from shim import personality
    from shim.choice import Context
    from shim.config import Settings
    from shim.reference import parse

    p = personality.get("podman")
    directory = world_readable_tmp("imagefit-late-")
    directory.chmod(0o1777)
    env = {"HOME": str(tmp_path), "CONTAINERS_REGISTRIES_CONF": str(tmp_path / "none.conf")}

    def context() -> Context:
        inv = p.parse(["pull", "--tls-verify=false", app.ref])
        return Context(
            p, inv, Settings(decision_cache_ttl=600), env, "vm", None, str(directory), True
        )

    leader = context()
    data = leader.index_data(parse(app.ref), lambda: "test")  # the leader's fetch, stored
    record = store.load_record(str(directory), app.ref)
    if stale:  # the record the late process reads first: a TTL old
        store.save_record(str(directory), store.Record(record.reference, record.index_digest,
                          record.media_type, record.artifacts, time.time() - 601, record.source), True)  # fmt: skip
    else:  # nothing stored yet
        for path in directory.glob("*.ref"):
            path.unlink()
    enter = decisions.single_flight.__enter__

    def leader_finishes_first(flight):
        store.save(
            str(directory), data, True, ()
        )  # the leader's fresh record, then its lock is gone
        return enter(flight)

    monkeypatch.setattr(decisions.single_flight, "__enter__", leader_finishes_first)
    mark = registry.log_offset()
    late = context()
    got = late.index_data(parse(app.ref), lambda: "test")
    assert got.digest == data.digest
    asked = [(m, path) for m, path, _ in registry.requests(mark) if "/manifests/" in path]
    assert asked == [], asked
    assert late.reached == set() and late.offline == {}
