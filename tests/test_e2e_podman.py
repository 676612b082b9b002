"""End to end: real registry, real OCI index, real podman, the shim in front.

The shim is installed with ``imagefit install --prefix`` and run as
``podman``; host facts come from archspec's real /proc/cpuinfo dumps (through
``imagefit facts --json --cpuinfo``) so the expected build is known, and from
this host's own probe in one test.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess

import archspec.cpu
import pytest

from tests.conftest import world_readable_tmp
from tests.support import oci

TARGET_KEY = "org.supercontainers.hardware.cpu.target.microarch"
ENTRYPOINT_MARK = "ENTRYPOINT-RAN"
CMD_MARK = "CMD-RAN"
#: inside the container: HOME, whether the caller can write it, the PATH directories
#: seen more than once (none), the build found on the image's PATH, the uid
PROBE = (
    'echo "home=$HOME"; touch "$HOME/.imagefit-probe" && echo writable; '
    'echo "dups=$(echo "$PATH" | tr : "\\n" | sort | uniq -d | tr "\\n" " ")"; '
    'echo "path=$PATH"; echo "build=$(whichbuild)"; echo "uid=$(id -u)"'
)


def probe(stdout: str) -> dict[str, str]:
    """The PROBE's lines as a dict ("writable" maps to "")."""
    return dict(line.partition("=")[::2] for line in stdout.splitlines())


def _build(name: str, arch: str = "amd64", variant: str | None = None, **annotations: str) -> dict:
    platform = {"architecture": arch, "os": "linux"}
    if variant:
        platform["variant"] = variant
    return {
        "name": name,
        "platform": platform,
        "annotations": {TARGET_KEY: name, **annotations},
        "entrypoint": ["/bin/echo", ENTRYPOINT_MARK],
        # the image's own command: run through the login shell when the user gives none
        "cmd": ["sh", "-c", f"echo {CMD_MARK}; whichbuild", "sh"],
    }


def _host_build() -> dict:
    host = archspec.cpu.host()
    level = host.generic.name
    variant = level.rsplit("_", 1)[1] if level.startswith("x86_64_v") else None
    return _build(host.name, variant=variant)


BUILDS = [
    _build("x86_64"),
    _build("x86_64_v2", variant="v2"),
    _build("x86_64_v3", variant="v3"),
    _build("x86_64_v4", variant="v4"),
    _build("haswell", variant="v3"),
    _build("skylake_avx512", variant="v4"),
    _build("zen4", variant="v4"),
    _build("neoverse_v2", arch="arm64", variant="v9"),
]


@pytest.fixture(scope="module")
def app(registry, tmp_path_factory):
    """The annotated index, plus the host's own target if not already there."""
    builds = list(BUILDS)
    if not any(b["name"] == archspec.cpu.host().name for b in builds):
        builds.append(_host_build())
    return oci.build_and_push(
        registry.host, "hpc/app", "2024", builds, layout_dir=tmp_path_factory.mktemp("app")
    )


@pytest.fixture(scope="module")
def plain(registry, tmp_path_factory):
    """An index with no compatibility data: amd64 and arm64, nothing else."""
    builds = [
        {"name": "plain-amd64", "platform": {"architecture": "amd64", "os": "linux"}, "annotations": None,
         "entrypoint": ["/bin/echo", ENTRYPOINT_MARK]},
        {"name": "plain-arm64", "platform": {"architecture": "arm64", "os": "linux"}, "annotations": None},
    ]  # fmt: skip
    return oci.build_and_push(
        registry.host, "hpc/plain", "1", builds, layout_dir=tmp_path_factory.mktemp("plain")
    )


@pytest.fixture(scope="module")
def facts_files(imagefit_cmd, cpuinfo_dir):
    """Facts JSON per node class, written by `imagefit facts --json --cpuinfo`."""
    out = world_readable_tmp("imagefit-facts-")
    files = {}
    for dump, machine in [
        ("linux-rocky8.5-zen4", "x86_64"),
        ("linux-rhel7-haswell", "x86_64"),
        ("linux-rhel7-ivybridge", "x86_64"),
        ("linux-rhel8-power9", "ppc64le"),
    ]:
        done = subprocess.run(
            [*imagefit_cmd, "facts", "--json", "--cpuinfo", str(cpuinfo_dir / dump), "--machine", machine],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        path = out / f"{dump}.json"
        path.write_text(done.stdout)
        path.chmod(0o644)
        files[dump.rsplit("-", 1)[1]] = str(path)
    yield files
    shutil.rmtree(out, ignore_errors=True)


def shim_run(shim_bin, podman_env, args, *, facts=None, extra_env=None, timeout=120):
    argv, env = podman_env
    env = {**env, "PATH": f"{shim_bin}:{env['PATH']}"}
    if facts:
        env["IMAGEFIT_FACTS"] = facts
    env.update(extra_env or {})
    return subprocess.run(
        [str(shim_bin / "podman"), *argv[1:], *args],
        env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("node", "expected"), [("zen4", "zen4"), ("haswell", "haswell"), ("ivybridge", "x86_64_v2")]
)
def test_shimmed_podman_run_starts_the_best_build(
    shim_bin, podman_env, app, facts_files, node, expected
):
    ref = app.ref
    done = shim_run(
        shim_bin, podman_env,
        ["run", "--rm", "--network=none", "--tls-verify=false", ref, "sh", "-c", "whichbuild; id -u"],
        facts=facts_files[node],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split()
    assert lines == [expected, "0"], done.stdout
    assert ENTRYPOINT_MARK not in done.stdout


def test_dry_run_argv_and_explain_agree(shim_bin, podman_env, app, facts_files, imagefit_cmd):
    ref = f"{app.repository}:2024"
    args = ["run", "--rm", "-it", "--network=none", "--tls-verify=false", ref, "ls", "-l", ref]
    done = shim_run(
        shim_bin, podman_env, args, facts=facts_files["zen4"],
        extra_env={"IMAGEFIT_DRY_RUN": "1", "HOME": "/root"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    final = json.loads(done.stdout)
    argv, _ = podman_env
    pinned = f"{app.repository}@{app.manifests['zen4']}"
    entrypoint = final[len(argv) + 1]
    assert entrypoint.startswith("--entrypoint=[")
    assert final == [
        shutil.which("podman"), *argv[1:], "run", entrypoint,
        # root's HOME: its home in the image, nothing mounted over it
        "--env=HOME=/root", "--rm", "-it", "--network=none",
        "--tls-verify=false", pinned, "ls", "-l", ref,
    ]  # fmt: skip
    explained = subprocess.run(
        [*imagefit_cmd, "explain", ref, "--json", "--tls-verify", "false", "--facts", facts_files["zen4"]],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    decision = json.loads(explained.stdout)
    assert decision["outcome"] == "selected"
    assert decision["chosen"]["digest"] == app.manifests["zen4"]
    assert decision["chosen"]["rewritten"] == pinned
    assert decision["index_digest"] == app.index_digest


def test_this_hosts_own_facts_pick_its_archspec_target(shim_bin, podman_env, app):
    ref = f"{app.repository}:2024"
    done = shim_run(
        shim_bin,
        podman_env,
        ["run", "--rm", "--network=none", "--tls-verify=false", ref, "whichbuild"],
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == archspec.cpu.host().name


def test_no_fitting_build_is_refused_with_a_line_per_candidate(
    shim_bin, podman_env, app, facts_files
):
    ref = f"{app.repository}:2024"
    done = shim_run(
        shim_bin,
        podman_env,
        ["run", "--rm", "--tls-verify=false", ref, "true"],
        facts=facts_files["power9"],
    )
    assert done.returncode == 125
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith(
        f"imagefit: {ref}: none of the {len(app.manifests)} builds runs on this host"
    )
    assert len(lines) == 1 + len(app.manifests)
    assert "  x86_64: linux/amd64 does not run on a linux/ppc64le host" in lines


def test_index_without_compatibility_data_passes_through_untouched(
    shim_bin, podman_env, plain, facts_files
):
    ref = f"{plain.repository}:1"
    args = ["run", "--rm", "--network=none", "--tls-verify=false", ref]
    dry = shim_run(
        shim_bin, podman_env, args, facts=facts_files["zen4"], extra_env={"IMAGEFIT_DRY_RUN": "1"}
    )
    argv, _ = podman_env
    assert json.loads(dry.stdout) == [shutil.which("podman"), *argv[1:], *args]
    done = shim_run(shim_bin, podman_env, args, facts=facts_files["zen4"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ENTRYPOINT_MARK  # the image's own ENTRYPOINT ran


def test_registry_down_fails_open_with_one_warning(shim_bin, podman_env, facts_files):
    args = ["run", "--rm", "--tls-verify=false", "127.0.0.1:9/hpc/app:1", "true"]
    done = shim_run(
        shim_bin, podman_env, args, facts=facts_files["zen4"], extra_env={"IMAGEFIT_DRY_RUN": "1"}
    )
    assert done.returncode == 0
    argv, _ = podman_env
    assert json.loads(done.stdout) == [shutil.which("podman"), *argv[1:], *args]
    warning = done.stderr.strip().splitlines()
    assert len(warning) == 1 and warning[0].startswith(
        "imagefit: cannot resolve 127.0.0.1:9/hpc/app:1"
    )
    refused = shim_run(
        shim_bin,
        podman_env,
        args,
        facts=facts_files["zen4"],
        extra_env={"IMAGEFIT_ON_ERROR": "refuse"},
    )
    assert refused.returncode == 125
    assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1


def test_disable_and_reentry_marker_pass_through(shim_bin, podman_env, app, facts_files):
    args = ["run", "--rm", "--tls-verify=false", f"{app.repository}:2024", "true"]
    argv, _ = podman_env
    for extra in ({"IMAGEFIT_DISABLE": "1"}, {"IMAGEFIT_ACTIVE": "1"}):
        done = shim_run(
            shim_bin,
            podman_env,
            args,
            facts=facts_files["zen4"],
            extra_env={**extra, "IMAGEFIT_DRY_RUN": "1"},
        )
        assert json.loads(done.stdout) == [shutil.which("podman"), *argv[1:], *args]


def test_pass_through_subcommand_execs_real_podman(shim_bin, podman_env):
    done = shim_run(shim_bin, podman_env, ["version", "--format", "{{.Client.Version}}"])
    assert done.returncode == 0, done.stderr
    real = subprocess.run(["podman", "--version"], capture_output=True, text=True).stdout.split()[
        -1
    ]
    assert done.stdout.strip() == real


def test_pull_fetches_the_chosen_build(shim_bin, podman_env, app, facts_files):
    ref = f"{app.repository}:2024"
    done = shim_run(
        shim_bin,
        podman_env,
        ["pull", "-q", "--tls-verify=false", ref],
        facts=facts_files["haswell"],
    )
    assert done.returncode == 0, done.stderr
    argv, env = podman_env
    listed = subprocess.run(
        [*argv, "images", "--digests", "--format", "{{.Digest}}"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert app.manifests["haswell"] in listed.stdout.split()
    # the shim pulled REPO@DIGEST, then tagged it as the user's REF (a post-step), so
    # `podman images` lists REF, as after a plain pull, and an offline run of REF finds it
    named = subprocess.run(
        [*argv, "images", "--format", "{{.Repository}}:{{.Tag}} {{.Digest}}"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert f"{ref} {app.manifests['haswell']}" in named.stdout.splitlines(), named.stdout


def _rootless_env(user: pwd.struct_passwd, base):
    for name in ("root", "runroot", "run", "tmp"):
        (base / name).mkdir()
        os.chown(base / name, user.pw_uid, user.pw_gid)
    (base / "run").chmod(0o700)
    conf = base / "containers.conf"
    conf.write_text('[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\n'
                    'events_logger = "file"\n')  # fmt: skip
    conf.chmod(0o644)
    return {
        "HOME": user.pw_dir, "USER": user.pw_name, "LOGNAME": user.pw_name, "PATH": os.environ["PATH"],
        "XDG_RUNTIME_DIR": str(base / "run"), "CONTAINERS_CONF": str(conf), "TMPDIR": str(base / "tmp"),
    }  # fmt: skip


def test_rootless_podman_runs_as_the_caller(shim_bin, app, facts_files):
    user_name = os.environ.get("IMAGEFIT_TEST_USER", "alice")
    try:
        user = pwd.getpwnam(user_name)
    except KeyError:
        pytest.fail(f"no user {user_name}: run tests/provision.sh (as root) first")
    shim_target = os.path.realpath(shim_bin / "podman")
    if (
        subprocess.run(["runuser", "-u", user_name, "--", "test", "-x", shim_target]).returncode
        != 0
    ):
        pytest.fail(
            f"{user_name} cannot run {shim_target}: run the tests with /opt/imagefit-venv/bin/python"
        )
    base = world_readable_tmp("imagefit-rootless-")
    try:
        env = _rootless_env(user, base)
        env["PATH"] = f"{shim_bin}:{env['PATH']}"
        env["IMAGEFIT_FACTS"] = facts_files["haswell"]
        cmd = [
            "runuser", "-u", user_name, "--", "env", *(f"{k}={v}" for k, v in env.items()),
            "podman", "--root", str(base / "root"), "--runroot", str(base / "runroot"), "--storage-driver", "vfs",
            "run", "--rm", "--network=none", "--tls-verify=false", f"{app.repository}:2024",
            "sh", "-c", "whichbuild; id -u; echo $HOME",
        ]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd="/")
        assert done.returncode == 0, done.stderr
        assert done.stdout.split()[:2] == ["haswell", str(user.pw_uid)], done.stdout + done.stderr
    finally:
        subprocess.run(["runuser", "-u", user_name, "--", "podman", "--root", str(base / "root"), "--runroot",
                        str(base / "runroot"), "--storage-driver", "vfs", "unshare", "rm", "-rf", str(base / "root")],
                       capture_output=True, env={**os.environ, "XDG_RUNTIME_DIR": str(base / "run")})  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)


def test_insecure_registry_from_imagefit_config_reaches_podman(
    shim_bin, podman_env, app, facts_files, tmp_path
):
    site = tmp_path / "site.toml"
    site.write_text(f'insecure_registries = ["{app.repository.split("/")[0]}"]\n')
    site.chmod(0o644)
    done = shim_run(
        shim_bin, podman_env, ["run", "--rm", "--network=none", app.ref, "whichbuild"],
        facts=facts_files["zen4"], extra_env={"IMAGEFIT_SITE_CONFIG": str(site)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "zen4"


# ---------------------------------------------------------------- login containers (issue 12)


def test_rootful_login_container_home_cmd_and_path(
    shim_bin, podman_env, app, facts_files, registry
):
    """As root: HOME is root's home in the image, nothing mounted over it
    (root may create it: the test image has no /root); PATH holds each
    directory once, the image's first; with no command and no TTY the
    image's Cmd runs through the login shell (its PATH finds whichbuild),
    not its ENTRYPOINT."""
    ref = f"{app.repository}:2024"
    base = ["run", "--rm", "--network=none", "--tls-verify=false", ref]
    env = {"HOME": "/root"}
    script = 'mkdir -p "$HOME"; grep -q " /root " /proc/mounts && echo mounted; ' + PROBE
    done = shim_run(shim_bin, podman_env, [*base, "sh", "-c", script], facts=facts_files["zen4"],
                    extra_env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    seen = probe(done.stdout)
    assert seen["home"] == "/root" and "writable" in seen, done.stdout
    assert "mounted" not in seen, done.stdout  # the image's /root, not a tmpfs
    assert seen["dups"].strip() == "", done.stdout
    assert seen["path"].startswith("/opt/app/bin:/usr/bin:/bin:"), done.stdout
    assert (seen["build"], seen["uid"]) == ("zen4", "0")
    cmd = shim_run(shim_bin, podman_env, base, facts=facts_files["zen4"], extra_env=env)
    assert cmd.returncode == 0, cmd.stderr
    assert cmd.stdout.split() == [CMD_MARK, "zen4"], cmd.stdout + cmd.stderr
    # the Cmd is kept with the decision: the next run decides from the cache, no request
    mark = registry.log_offset()
    again = shim_run(shim_bin, podman_env, base, facts=facts_files["zen4"],
                     extra_env={**env, "IMAGEFIT_DRY_RUN": "1"})  # fmt: skip
    assert json.loads(again.stdout)[-4:] == ["sh", "-c", f"echo {CMD_MARK}; whichbuild", "sh"]
    assert registry.requests(mark) == []


def test_rootful_home_mounted_is_the_callers(shim_bin, podman_env, app, facts_files, tmp_path):
    home = tmp_path / "roothome"
    home.mkdir()
    ref = f"{app.repository}:2024"
    args = ["run", "--rm", "--network=none", "--tls-verify=false", "-v", f"{home}:{home}", ref,
            "sh", "-c", PROBE]  # fmt: skip
    done = shim_run(shim_bin, podman_env, args, facts=facts_files["zen4"],
                    extra_env={"HOME": str(home)})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert probe(done.stdout)["home"] == str(home) and "writable" in probe(done.stdout)
    assert (home / ".imagefit-probe").exists()  # the caller's own home, not a tmpfs


def _alice_env(user, base) -> dict[str, str]:
    """_rootless_env's environment, for directories it already made."""
    return {
        "HOME": user.pw_dir, "USER": user.pw_name, "LOGNAME": user.pw_name, "PATH": os.environ["PATH"],
        "XDG_RUNTIME_DIR": str(base / "run"), "CONTAINERS_CONF": str(base / "containers.conf"),
        "TMPDIR": str(base / "tmp"),
    }  # fmt: skip


def _alice_podman(shim_bin, user, base, args, *, facts):
    if not (base / "root").exists():
        _rootless_env(user, base)  # makes the directories
    env = _alice_env(user, base)
    env["PATH"] = f"{shim_bin}:{env['PATH']}"
    env["IMAGEFIT_FACTS"] = facts
    cmd = [
        "runuser", "-u", user.pw_name, "--", "env", *(f"{k}={v}" for k, v in env.items()),
        "podman", "--root", str(base / "root"), "--runroot", str(base / "runroot"), "--storage-driver", "vfs",
        *args,
    ]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd="/")


def test_rootless_login_container_home_cmd_and_path(shim_bin, app, facts_files):
    """As alice (rootless, keep-id): HOME is alice's home path, an empty
    tmpfs she owns when not mounted, her real home when ``-v $HOME:$HOME``;
    PATH once; the image's Cmd with no command and no TTY."""
    user = pwd.getpwnam(os.environ.get("IMAGEFIT_TEST_USER", "alice"))
    base = world_readable_tmp("imagefit-rootless-")
    ref = f"{app.repository}:2024"
    run = ["run", "--rm", "--network=none", "--tls-verify=false"]
    marker = os.path.join(user.pw_dir, ".imagefit-probe")
    try:
        done = _alice_podman(
            shim_bin, user, base, [*run, ref, "sh", "-c", PROBE], facts=facts_files["haswell"]
        )
        assert done.returncode == 0, done.stderr
        seen = probe(done.stdout)
        assert seen["home"] == user.pw_dir and "writable" in seen, done.stdout + done.stderr
        assert not os.path.exists(marker)  # a tmpfs: alice's real home untouched
        assert seen["dups"].strip() == "" and seen["path"].startswith("/opt/app/bin:"), done.stdout
        assert (seen["build"], seen["uid"]) == ("haswell", str(user.pw_uid))
        mounted = _alice_podman(shim_bin, user, base, [*run, "-v", f"{user.pw_dir}:{user.pw_dir}", ref, "sh", "-c", PROBE],
                                facts=facts_files["haswell"])  # fmt: skip
        assert mounted.returncode == 0, mounted.stderr
        assert probe(mounted.stdout)["home"] == user.pw_dir and "writable" in probe(mounted.stdout)
        assert os.path.exists(marker)  # the caller's own home
        cmd = _alice_podman(shim_bin, user, base, [*run, ref], facts=facts_files["haswell"])
        assert cmd.returncode == 0, cmd.stderr
        assert cmd.stdout.split() == [CMD_MARK, "haswell"], cmd.stdout + cmd.stderr
    finally:
        if os.path.exists(marker):
            os.unlink(marker)
        subprocess.run(["runuser", "-u", user.pw_name, "--", "podman", "--root", str(base / "root"), "--runroot",
                        str(base / "runroot"), "--storage-driver", "vfs", "unshare", "rm", "-rf", str(base / "root")],
                       capture_output=True, env={**os.environ, "XDG_RUNTIME_DIR": str(base / "run")})  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)
