"""A second user on the node (alice, uid 1234) attacking root through what
they share: the site's cache directory, the audit log, lock files, the XDG
directories of a root run with her environment (``sudo -E``) and facts
files (issue 11, items 4 and 5). Every attack runs through the installed
shim against a real registry on loopback: none changes root's choice,
blocks it (each run bounded by a subprocess timeout and asserted well under
it), or makes root write where it should not.

Cases a-k of the attack review: a (an absent site directory), b (renamed
entries), c (a planted ``.lock`` link), d (the chmod race), e (FIFOs at
predicted names), f (the audit log), g (XDG under sudo -E), h (facts
files), i (entries dated ahead), j (a full disk), k (lock files).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shim import audit, decisions
from tests.conftest import world_readable_tmp
from tests.support import oci

ALICE = 1234
TARGET = "org.supercontainers.hardware.cpu.target.microarch"
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
#: what one shimmed run may take here under attack (the subprocess timeout is 60 s)
QUICK = 10.0

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="root attacked by another user")


@pytest.fixture(scope="module")
def app(registry, tmp_path_factory):
    builds = [{"name": n, "platform": {"architecture": "amd64", "os": "linux"}, "annotations": {TARGET: n}}
              for n in ("x86_64", "haswell", "zen4")]  # fmt: skip
    return oci.build_and_push(registry.host, "hostile/app", "1", builds,
                              layout_dir=tmp_path_factory.mktemp("hostile-app"))  # fmt: skip


def _facts(imagefit_cmd, cpuinfo_dir, name: str) -> Path:
    out = world_readable_tmp("imagefit-hostile-facts-")
    done = subprocess.run([*imagefit_cmd, "facts", "--json", "--cpuinfo", str(cpuinfo_dir / name)],
                          check=True, capture_output=True, text=True)  # fmt: skip
    path = out / "facts.json"
    path.write_text(done.stdout)
    path.chmod(0o644)
    return path


@pytest.fixture(scope="module")
def zen4_facts(cpuinfo_dir, imagefit_cmd) -> str:
    return str(_facts(imagefit_cmd, cpuinfo_dir, "linux-rocky8.5-zen4"))


@pytest.fixture(scope="module")
def haswell_facts(cpuinfo_dir, imagefit_cmd) -> Path:
    return _facts(imagefit_cmd, cpuinfo_dir, "linux-rhel7-haswell")


@pytest.fixture
def shared() -> Path:
    """The site directory as docs/admin.md asks: root's, sticky, world-writable."""
    path = world_readable_tmp("imagefit-hostile-shared-")
    path.chmod(0o1777)
    return path


def _as(uid: int, *paths: Path) -> None:
    for path in paths:
        os.chown(path, uid, uid, follow_symlinks=False)


def _site(text: str) -> Path:
    path = world_readable_tmp("imagefit-hostile-site-") / "config.toml"
    path.write_text(text)
    path.chmod(0o644)
    return path


def _alice_home() -> Path:
    home = world_readable_tmp("imagefit-hostile-alice-")
    _as(ALICE, home)
    return home


def _env(shim_bin, site: Path, home: Path, facts: str | None, **extra) -> dict:
    env = {"PATH": f"{shim_bin}:{SYSTEM_PATH}", "IMAGEFIT_DRY_RUN": "1", "HOME": str(home),
           "IMAGEFIT_SITE_CONFIG": str(site), **extra}  # fmt: skip
    if facts:
        env["IMAGEFIT_FACTS"] = facts
    return env


def _shim(shim_bin, env, ref, user=None, verb="run", wrap=()):
    """Run the installed shim (as `user`, else root); (CompletedProcess, seconds)."""
    argv = [str(shim_bin / "podman"), verb, "--tls-verify=false", ref]
    if verb == "run":
        argv += ["id"]
    if user:
        argv = ["runuser", "-u", user, "--", "env", *[f"{k}={v}" for k, v in env.items()], *argv]
    argv = [*wrap, *argv]
    start = time.monotonic()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    return done, time.monotonic() - start


def _ran(done) -> str:
    """The image operand of the argv the shim would exec (dry run)."""
    assert "Traceback" not in done.stderr, done.stderr
    return json.loads(done.stdout.splitlines()[-1])[-2]


def _alice(code: str) -> subprocess.CompletedProcess:
    """Python `code` run as alice (uid and gid 1234)."""
    prelude = f"import os, sys; os.setgroups([]); os.setgid({ALICE}); os.setuid({ALICE})\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + code], capture_output=True, text=True, timeout=30
    )


def _root_names(shim_bin, app, facts: str) -> dict:
    """The names root's run creates in a shared directory (run once in a
    scratch one): what alice can predict (the keys do not depend on the
    directory)."""
    scratch = world_readable_tmp("imagefit-hostile-learn-")
    scratch.chmod(0o1777)
    done, _ = _shim(shim_bin, _env(shim_bin, _site(f'decision_cache_dir = "{scratch}"\n'),
                                   world_readable_tmp("imagefit-hostile-root-"), facts), app.ref)  # fmt: skip
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in scratch.iterdir())
    (entry,) = [n for n in names if n.endswith(".0.entry")]
    (ref,) = [n for n in names if n.endswith(".0.ref")]
    blobs = [n for n in names if n.endswith(".blob")]
    key, refkey = entry.split(".")[0], ref.split(".")[0]
    shutil.rmtree(scratch)
    return {
        "entry": entry, "ref": ref, "blobs": blobs, "locks": [f"{key}.lock", f"ref-{refkey}.lock"],
        "key": key,
    }  # fmt: skip


# -- a: an absent site directory --------------------------------------------------------------


def test_a_site_directory_that_does_not_exist_is_created_by_nobody_and_a_users_is_refused(
    app, shim_bin, zen4_facts
):
    parent = world_readable_tmp("imagefit-hostile-lustre-")
    parent.chmod(0o1777)  # like /tmp or a scratch file system
    site_dir = parent / "imagefit" / "decisions"
    site = _site(f'decision_cache_dir = "{site_dir}"\n')
    home = _alice_home()
    done, took = _shim(shim_bin, _env(shim_bin, site, home, zen4_facts), app.ref, user="alice")
    assert done.returncode == 0 and took < QUICK, done.stderr
    assert not (parent / "imagefit").exists()  # alice's shim did not make the site's directory
    assert list((home / ".cache" / "imagefit" / "decisions").glob(f"*.{ALICE}.entry"))
    # she makes it herself, as her private cache (XDG_CACHE_HOME pointing at the site's path)
    done, _ = _shim(shim_bin, _env(shim_bin, site, home, zen4_facts, XDG_CACHE_HOME=str(parent)),
                    app.ref, user="alice")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert site_dir.stat().st_uid == ALICE
    root_home = world_readable_tmp("imagefit-hostile-root-")
    done, took = _shim(shim_bin, _env(shim_bin, site, root_home, zen4_facts), app.ref)
    assert done.returncode == 0 and took < QUICK
    assert _ran(done) == app.digest_ref("zen4")
    assert done.stderr.splitlines() == [
        f"imagefit: shared cache directory {site_dir}: owned by uid {ALICE}, not root; using the per-user cache"
    ]
    assert not [p for p in parent.rglob("*") if p.lstat().st_uid == 0]  # root wrote nothing there
    # a root-owned, sticky directory under a directory of hers: she could rename it away
    shutil.rmtree(parent / "imagefit")
    (parent / "imagefit").mkdir(mode=0o755)
    site_dir.mkdir(mode=0o755)
    site_dir.chmod(0o1777)
    _as(ALICE, parent / "imagefit")
    done, _ = _shim(shim_bin, _env(shim_bin, site, root_home, zen4_facts), app.ref)
    assert _ran(done) == app.digest_ref("zen4")
    assert "a directory above it is another user's" in done.stderr and not list(site_dir.iterdir())


# -- b: renaming and copying entries ----------------------------------------------------------


def test_b_renamed_linked_or_forged_entries_do_not_steer_root(app, shim_bin, zen4_facts, shared):
    names = _root_names(shim_bin, app, zen4_facts)
    log = world_readable_tmp("imagefit-hostile-log-") / "audit.jsonl"
    site = _site(f'decision_cache_dir = "{shared}"\naudit_log = "{log}"\n')
    env = _env(shim_bin, site, world_readable_tmp("imagefit-hostile-root-"), zen4_facts)
    done, _ = _shim(shim_bin, env, app.ref)
    assert _ran(done) == app.digest_ref("zen4")
    other = "f" * 64
    attack = f"""
import os
d = {str(shared)!r}
results = []
for name in os.listdir(d):
    if ".0." not in name:
        continue
    for act in (os.rename, os.link):
        try:
            act(os.path.join(d, name), os.path.join(d, name.replace({names["key"]!r}, {other!r}) + "x"))
            results.append((act.__name__, name, "done"))
        except OSError as exc:
            results.append((act.__name__, name, exc.errno))
    if name.endswith(".entry"):  # her own entry for root's key, naming another build
        text = open(os.path.join(d, name)).read().replace({app.manifests["zen4"]!r}, {app.manifests["x86_64"]!r})
        with open(os.path.join(d, name.replace(".0.", ".{ALICE}.")), "w") as fh:
            fh.write(text)
print(results)
"""
    done = _alice(attack)
    assert done.returncode == 0, done.stderr
    assert "done" not in done.stdout  # sticky directory and protected hard links: EPERM
    assert (shared / names["entry"]).stat().st_uid == 0
    done, took = _shim(shim_bin, env, app.ref)
    assert _ran(done) == app.digest_ref("zen4") and took < QUICK
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["cache"] for line in lines] == ["miss", "hit"]  # root's own entry, used as is
    assert all(line["chosen"] == app.manifests["zen4"] for line in lines)


# -- c, e, k: names planted where root will create its files ----------------------------------


@pytest.mark.parametrize("kind", ["symlink", "fifo", "directory", "fresh-file"])
def test_c_e_k_planted_names_are_never_followed_never_block_and_never_written_through(
    app, shim_bin, zen4_facts, shared, tmp_path, kind
):
    names = _root_names(shim_bin, app, zen4_facts)
    private = tmp_path / "root-only"
    private.mkdir(mode=0o700)
    secret = private / "secret"
    secret.write_text("root's\n")
    secret.chmod(0o600)
    for name in [names["entry"], names["ref"], *names["blobs"], *names["locks"]]:
        path = shared / name
        if kind == "symlink":  # dangling into a root-only directory, or to a root-only file
            path.symlink_to(private / f"made-{name}" if name.endswith(".lock") else secret)
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "directory":
            path.mkdir()
        else:
            path.write_text(f"{os.uname().nodename} 1 {time.time()}\n")
        _as(ALICE, path)
    site = _site(f'decision_cache_dir = "{shared}"\n')
    env = _env(shim_bin, site, world_readable_tmp("imagefit-hostile-root-"), zen4_facts)
    for _ in range(2):
        done, took = _shim(shim_bin, env, app.ref)
        assert done.returncode == 0, done.stderr
        assert _ran(done) == app.digest_ref("zen4")
        assert took < QUICK, took  # nothing waited for: no FIFO opened blocking, no planted lock
    assert sorted(p.name for p in private.iterdir()) == ["secret"]  # nothing created through a link
    assert secret.read_text() == "root's\n" and stat.S_IMODE(secret.stat().st_mode) == 0o600
    for path in shared.iterdir():  # what root wrote is its own regular file, 0644, no lock left
        st = path.lstat()
        if st.st_uid == 0:
            assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o644, path
            assert not path.name.endswith(".lock") and not path.name.startswith(".tmp"), path


# -- d: the chmod race ------------------------------------------------------------------------


def test_d_a_file_swapped_before_its_mode_is_set_never_changes_another_files_mode(
    shared, tmp_path, monkeypatch
):
    """alice wins the race at the worst moment: between the write and the mode
    change, the temporary name is a link to a root-only file (simulated where
    she would need luck). The mode is set on the descriptor: the root-only file
    keeps its mode, and the link that is renamed into place is not an entry."""
    secret = tmp_path / "shadow"
    secret.write_text("root only\n")
    secret.chmod(0o600)
    real_fsync = os.fsync

    def swap(fd):
        real_fsync(fd)
        for name in os.listdir(shared):
            if name.startswith(".tmp-"):
                os.unlink(shared / name)
                os.symlink(secret, shared / name)

    monkeypatch.setattr(decisions.os, "fsync", swap)
    entry = decisions.Entry("r.example/x:1", "sha256:" + "a" * 64, "selected", "sha256:" + "b" * 64)
    decisions.store(str(shared), "1" * 64, entry, shared=True)
    monkeypatch.undo()
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600 and secret.read_text() == "root only\n"
    assert decisions.load(str(shared), "1" * 64) is None  # a link at the entry's name is no entry


# -- f: the audit log -------------------------------------------------------------------------


def _syslog_socket(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    path.chmod(0o666)  # every user may log, as /dev/log
    sock.settimeout(5)
    return sock


def _messages(sock: socket.socket) -> list[str]:
    """imagefit's messages on the socket (runuser's PAM session lines are not)."""
    out = []
    sock.settimeout(0.5)
    try:
        while True:
            out.append(sock.recv(65536).decode())
    except TimeoutError:
        return [m for m in out if " imagefit[" in m.split(": ", 1)[0]]


def _json_of(message: str) -> dict:
    return json.loads(message.split(": ", 1)[1])


# the tmpfs, the devices and the socket set up in a private mount namespace: /dev/log
# there is the test's socket, nowhere else
_DEVLOG = """set -e
T=$1; shift
mkdir -p "$T/olddev"; mount --rbind /dev "$T/olddev"; mount -t tmpfs devlog /dev
for n in null zero full random urandom tty pts shm ptmx; do ln -s "$T/olddev/$n" /dev/$n; done
ln -s /proc/self/fd /dev/fd; ln -s "$T/log.sock" /dev/log
exec "$@"
"""


def _with_devlog(tmp: Path) -> list[str]:
    script = tmp / "devlog.sh"
    script.write_text(_DEVLOG)
    return ["unshare", "-m", "--propagation", "private", "sh", str(script), str(tmp)]


@pytest.mark.parametrize("kind", ["fifo", "symlink", "alices-file"])
def test_f_a_fifo_or_link_at_the_audit_log_path_neither_blocks_nor_redirects_root(
    app, shim_bin, zen4_facts, tmp_path, kind
):
    logs = world_readable_tmp("imagefit-hostile-logs-")
    logs.chmod(0o1777)  # a badly chosen place: alice can create names in it
    log = logs / "audit.jsonl"
    target = tmp_path / "passwd-like"
    target.write_text("root:x:0:0\n")
    target.chmod(0o644)
    if kind == "fifo":
        os.mkfifo(log, 0o666)
    elif kind == "symlink":
        log.symlink_to(target)
    else:
        log.write_text("")
        log.chmod(0o644)
    _as(ALICE, log)
    run = world_readable_tmp("imagefit-hostile-ns-")
    sock = _syslog_socket(run / "log.sock")
    site = _site(f'audit_log = "{log}"\n')
    env = _env(shim_bin, site, world_readable_tmp("imagefit-hostile-root-"), zen4_facts)
    done, took = _shim(shim_bin, env, app.ref, wrap=_with_devlog(run))
    assert done.returncode == 0 and took < QUICK, done.stderr
    assert _ran(done) == app.digest_ref("zen4")
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"imagefit: cannot append to the audit log {log} (") and line.endswith(
        "logging to syslog"
    )
    assert target.read_text() == "root:x:0:0\n"
    if kind == "alices-file":
        assert log.read_text() == ""
    (message,) = _messages(sock)
    assert message.startswith("<86>") and _json_of(message)["chosen"] == app.manifests["zen4"]


def test_f_the_audit_log_is_roots_a_user_logs_to_syslog_and_cannot_forge_or_truncate_it(
    app, shim_bin, zen4_facts, tmp_path
):
    logs = world_readable_tmp("imagefit-hostile-logs-")
    log = logs / "audit.jsonl"
    run = world_readable_tmp("imagefit-hostile-ns-")
    sock = _syslog_socket(run / "log.sock")
    site = _site(f'audit_log = "{log}"\n')
    done, _ = _shim(shim_bin, _env(shim_bin, site, world_readable_tmp("imagefit-hostile-root-"), zen4_facts),
                    app.ref, wrap=_with_devlog(run))  # fmt: skip
    assert done.returncode == 0 and done.stderr == "", done.stderr
    st = log.stat()
    assert (
        st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o600
    )  # created root-only, on the descriptor
    assert _messages(sock) == []
    home = _alice_home()
    done, _ = _shim(
        shim_bin,
        _env(shim_bin, site, home, zen4_facts),
        app.ref,
        user="alice",
        wrap=_with_devlog(run),
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr  # quietly to syslog
    (message,) = _messages(sock)
    assert _json_of(message)["uid"] == ALICE and message.startswith("<86>")
    assert len(log.read_text().splitlines()) == 1  # root's line only
    forge = _alice(f"open({str(log)!r}, 'a').write('{{\"forged\": 1}}\\n')")
    assert "PermissionError" in forge.stderr


def test_f_syslog_through_a_configured_socket_and_facility_every_outcome_with_its_cause(
    app, shim_bin, zen4_facts, tmp_path
):
    run = world_readable_tmp("imagefit-hostile-syslog-")
    sock = _syslog_socket(run / "log.sock")
    sock_path = run / "log.sock"
    site = _site(f'audit_log = "syslog:{sock_path}"\naudit_facility = "local3"\n')
    env = _env(shim_bin, site, world_readable_tmp("imagefit-hostile-root-"), zen4_facts)
    for _ in range(2):
        done, _ = _shim(shim_bin, env, app.ref)
        assert done.returncode == 0 and done.stderr == "", done.stderr
    done, _ = _shim(
        shim_bin, _env(shim_bin, site, _alice_home(), zen4_facts), app.ref, user="alice"
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    missing = app.ref.rsplit(":", 1)[0] + ":absent"
    failed, _ = _shim(shim_bin, {**env, "IMAGEFIT_ON_ERROR": "refuse"}, missing)
    assert failed.returncode == 125
    opened, _ = _shim(shim_bin, env, missing)
    assert opened.returncode == 0 and _ran(opened) == missing
    messages = _messages(sock)
    assert all(
        m.startswith(f"<{(16 + 3) * 8 + 6}>") and " imagefit[" in m for m in messages
    )  # local3.info
    got = [(d["uid"], d["outcome"], d["cache"]) for d in map(_json_of, messages)]
    assert got == [(0, "selected", "miss"), (0, "selected", "hit"), (ALICE, "selected", "miss"),
                   (0, "refused", "miss"), (0, "error", "miss")]  # fmt: skip
    refused, error = map(_json_of, messages[-2:])
    assert "not found" in refused["reason"] and "on_error = refuse" in refused["reason"]
    assert "not found" in error["reason"] and "ran unchanged" in error["reason"]


def test_f_the_audit_message_is_json_as_the_json_module_writes_it():
    samples = {"a": "plain", "b": 'q"\\\n\t\x1b[31m\x00', "c": "é€😀\u2028", "d": None, "e": 1.5,
               "f": 12, "g": True, "h": "", "y": "\x7f\x85", "z": "\udc80"}  # fmt: skip
    assert audit.encode(samples) == json.dumps(samples, sort_keys=True)
    message = audit.syslog_message(audit.encode({"x": 1}), 10, now=0)
    assert message.startswith(b"<86>") and message.endswith(b']: {"x": 1}')


def test_f_a_stream_syslog_socket_gets_one_nul_terminated_record_and_a_dead_one_one_line(
    tmp_path, capsys
):
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(tmp_path / "stream.sock"))
    server.listen(1)
    audit.send_syslog(str(tmp_path / "stream.sock"), b"<86>x imagefit[1]: {}")
    conn, _ = server.accept()
    assert conn.recv(1024) == b"<86>x imagefit[1]: {}\0"
    audit.record(f"syslog:{tmp_path / 'absent.sock'}", outcome="selected")  # never raises
    (line,) = capsys.readouterr().err.splitlines()
    assert (
        line
        == f"imagefit: cannot write the audit log {tmp_path / 'absent.sock'}: No such file or directory"
    )


# -- g: XDG directories of a root run with alice's environment --------------------------------


def test_g_root_under_sudo_e_follows_no_link_in_alices_directories(
    app, shim_bin, zen4_facts, shared, tmp_path
):
    home = _alice_home()
    private = tmp_path / "root-only"
    private.mkdir(mode=0o700)
    cache, config = home / ".cache", home / ".config" / "imagefit"
    cache.mkdir()
    config.mkdir(parents=True)
    (cache / "imagefit").symlink_to(private)  # facts cache, identities, decisions, parse cache
    (config / "config.toml").write_text('[[policy]]\nimage = "*"\npin = "x86_64"\n')
    for path in (cache, cache / "imagefit", home / ".config", config, config / "config.toml"):
        _as(ALICE, path)
    site = _site(f'decision_cache_dir = "{shared}"\n')
    # sudo -E: HOME and XDG_* are alice's; live facts so the facts cache is looked for too
    env = _env(
        shim_bin, site, home, None, XDG_CACHE_HOME=str(cache), XDG_CONFIG_HOME=str(home / ".config")
    )
    env["IMAGEFIT_FACTS"] = zen4_facts
    for facts in (zen4_facts, None):
        if facts is None:
            env.pop("IMAGEFIT_FACTS")
        done, took = _shim(shim_bin, env, app.ref)
        assert done.returncode == 0 and took < 30, done.stderr
        if facts:
            assert _ran(done) == app.digest_ref("zen4")  # her config's pin is not root's
    assert list(private.iterdir()) == []  # nothing created through her link
    assert not [
        p for p in home.rglob("*") if p.lstat().st_uid == 0
    ]  # nothing of root's in her home


# -- h: facts files another user wrote --------------------------------------------------------


def test_h_a_facts_file_another_user_wrote_is_refused_in_one_line(
    app, shim_bin, haswell_facts, zen4_facts
):
    hers = _alice_home() / "facts.json"
    shutil.copy(haswell_facts, hers)
    hers.chmod(0o644)
    _as(ALICE, hers)
    site = _site("")
    root_home = world_readable_tmp("imagefit-hostile-root-")
    done, took = _shim(shim_bin, _env(shim_bin, site, root_home, str(hers)), app.ref)
    assert done.returncode == 0 and took < QUICK
    assert _ran(done) == app.ref  # not her build: the command as given
    assert done.stderr.splitlines() == [
        f"imagefit: cannot resolve {app.ref} (facts file {hers}: owned by uid {ALICE}, not root: not used); "
        "running the command unchanged"
    ]
    # root's own file, but writable by others: the same
    loose = world_readable_tmp("imagefit-hostile-loose-") / "facts.json"
    shutil.copy(haswell_facts, loose)
    loose.chmod(0o666)
    done, _ = _shim(shim_bin, _env(shim_bin, site, root_home, str(loose)), app.ref)
    assert _ran(done) == app.ref and "writable by group or others: not used" in done.stderr
    # her own file, in her own run: hers to use
    done, _ = _shim(shim_bin, _env(shim_bin, site, hers.parent, str(hers)), app.ref, user="alice")
    assert done.returncode == 0 and _ran(done) == app.digest_ref("haswell"), done.stderr
    # a [node_classes] facts file of hers: the class pull is one line, exit 125
    site = _site(f'[node_classes.evil]\nfacts = "{hers}"\nhosts = ["nomatch"]\n')
    done, _ = _shim(
        shim_bin,
        _env(shim_bin, site, root_home, None, IMAGEFIT_NODE_CLASS="evil"),
        app.ref,
        verb="pull",
    )
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1, done.stderr
    assert f"owned by uid {ALICE}, not root: not used" in done.stderr


# -- i: dated ahead ---------------------------------------------------------------------------


def test_i_an_entry_record_or_lock_dated_ten_years_ahead_is_none(app, shim_bin, zen4_facts, shared):
    site = _site(f'decision_cache_dir = "{shared}"\n')
    env = _env(shim_bin, site, world_readable_tmp("imagefit-hostile-root-"), zen4_facts)
    done, _ = _shim(shim_bin, env, app.ref)
    assert _ran(done) == app.digest_ref("zen4")
    ahead = time.time() + 10 * 365 * 86400
    (entry,) = shared.glob("*.0.entry")
    text = entry.read_text().replace(app.manifests["zen4"], app.manifests["x86_64"])
    lines = [
        f"decided_at\t{ahead!r}" if line.startswith("decided_at\t") else line
        for line in text.splitlines()
    ]
    entry.write_text("\n".join(lines) + "\n")  # root's own file (a clock gone wrong, a restore)
    (record,) = shared.glob("*.0.ref")
    doc = json.loads(record.read_text())
    record.write_text(json.dumps({**doc, "fetched_at": ahead}))
    lock = shared / (entry.name.split(".")[0] + ".lock")
    lock.write_text("elsewhere 1 0\n")
    os.utime(lock, (ahead, ahead))
    done, took = _shim(shim_bin, env, app.ref)
    assert done.returncode == 0 and took < QUICK, done.stderr
    assert _ran(done) == app.digest_ref("zen4")  # decided again, not the entry from the future
    assert decisions.Entry.loads(entry.read_text()).decided_at < time.time() + 1


# -- j: a full disk ---------------------------------------------------------------------------


@pytest.fixture
def full_tmpfs(tmp_path):
    """A 64 KiB tmpfs holding ``shared`` (root's, 1777) and ``home``, then
    filled to the last byte."""
    mount = tmp_path / "full"
    mount.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=1777", "tmpfs", str(mount)], check=True
    )
    try:
        (mount / "shared").mkdir()
        (mount / "shared").chmod(0o1777)
        (mount / "home").mkdir()
        with open(mount / "filler", "wb", buffering=0) as fh:
            try:
                while True:
                    fh.write(b"x" * 1024)
                    fh.flush()
            except OSError:
                pass
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_j_a_full_disk_leaves_no_temporary_or_lock_file_behind(
    app, shim_bin, zen4_facts, full_tmpfs
):
    with pytest.raises(OSError):  # full indeed
        (full_tmpfs / "probe").write_bytes(b"x" * 8192)
    (full_tmpfs / "probe").unlink(missing_ok=True)
    shared = full_tmpfs / "shared"
    site = _site(f'decision_cache_dir = "{shared}"\n')
    for facts in (zen4_facts, None):  # live facts: the facts cache and identity record too
        done, took = _shim(shim_bin, _env(shim_bin, site, full_tmpfs / "home", facts), app.ref)
        assert done.returncode == 0 and took < 30, done.stderr
        if facts:
            assert _ran(done) == app.digest_ref("zen4")
    left = sorted(p.name for p in full_tmpfs.rglob("*") if p.is_file() and p.name != "filler")
    assert all(not n.endswith((".tmp", ".lock")) and ".tmp-" not in n and not n.startswith(".facts-")
               for n in left), left  # fmt: skip


# -- the doctor: a root PATH with user-writable directories -----------------------------------


def test_doctor_warns_of_path_directories_another_user_can_write(tmp_path):
    from shim import doctor

    hers = tmp_path / "alice-bin"
    hers.mkdir(mode=0o755)
    _as(ALICE, hers)
    open_dir = tmp_path / "open-bin"
    open_dir.mkdir()
    open_dir.chmod(0o1777)  # sticky does not help: anyone can create `podman` in it
    below = hers / "sub"
    below.mkdir(mode=0o755)  # root's, under hers: she can rename it away
    good = tmp_path / "good-bin"
    good.mkdir(mode=0o755)
    report = doctor._Report()
    found = doctor._path_warnings({"PATH": f"{good}:{hers}:.:{open_dir}:{below}:/usr/bin"}, report)
    assert found == [str(hers), ".", str(open_dir), str(below)]
    assert len(report.problems) == 4 and all("plant a runtime" in w for w in report.problems)


# -- g (continued): the runtime's own config files in her directories -------------------------

CONTAINER_FILES = {
    "registries.conf": ".config/containers/registries.conf",
    "registries.conf.d": ".config/containers/registries.conf.d/x.conf",
    "auth.json": ".config/containers/auth.json",
    "docker config.json": ".docker/config.json",
}


@pytest.mark.parametrize("plant", ["fifo", "dev-zero"])
@pytest.mark.parametrize("which", list(CONTAINER_FILES), ids=list(CONTAINER_FILES))
def test_g_a_fifo_or_device_as_her_registries_conf_or_auth_file_never_holds_root(
    app, shim_bin, zen4_facts, which, plant
):
    """podman reads registries.conf and credentials from $HOME/$XDG_CONFIG_HOME, so
    the shim does too, under sudo -E from her directories: a FIFO there (which
    would block a plain open() forever) or a link to /dev/zero (an endless read)
    is not a regular file: skipped (credentials) or a registries.conf error
    (one line, the command unchanged), never a hang."""
    home = _alice_home()
    path = home / CONTAINER_FILES[which]
    _alice(
        f"import os; p = {str(path)!r}; os.makedirs(os.path.dirname(p), exist_ok=True)\n"
        + ("os.mkfifo(p)" if plant == "fifo" else "os.symlink('/dev/zero', p)")
    ).check_returncode()
    env = _env(shim_bin, _site(""), home, zen4_facts, XDG_CONFIG_HOME=str(home / ".config"))
    done, took = _shim(shim_bin, env, app.ref)
    assert done.returncode == 0 and took < QUICK, (took, done.stderr)
    assert "Traceback" not in done.stderr
    if which.startswith("registries"):  # podman too refuses an unreadable registries.conf
        (line,) = done.stderr.splitlines()
        assert str(path) in line and "not a regular file" in line, line
        assert _ran(done) == app.ref  # unchanged
    else:
        assert done.stderr == "" and _ran(done) == app.digest_ref("zen4")
