"""End to end with the real docker daemon: real registry, real OCI index,
Debian's dockerd and docker client, the shim installed in front as ``docker``.

The daemon is the tests' own (tests/support/docker.py: no bridge, no
iptables, loopback registries insecure by the daemon's default). The images,
the index and the facts files are those of tests/test_e2e_podman.py, so the
expected build per facts file is known; two facts files choosing two builds
prove that the choice drives the run.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess

import pytest

from tests import test_e2e_podman as podman_e2e
from tests.conftest import world_readable_tmp
from tests.support import docker as docker_support
from tests.test_e2e_podman import CMD_MARK, ENTRYPOINT_MARK, PROBE, probe

# fixtures shared with the podman tests (the same index, the same facts files)
dockerd = docker_support.dockerd
app = podman_e2e.app
facts_files = podman_e2e.facts_files

#: the shim first, then Debian's docker (the daemon's own client), not /usr/local/bin's
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


@pytest.fixture(scope="session")
def docker_shim_bin(imagefit_cmd):
    """``imagefit install --prefix DIR --runtime docker``: DIR/bin/docker, in a
    world-readable directory (an ordinary user runs it too)."""
    prefix = world_readable_tmp("imagefit-docker-prefix-")
    subprocess.run(
        [*imagefit_cmd, "install", "--prefix", str(prefix), "--runtime", "docker"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    yield prefix / "bin"
    shutil.rmtree(prefix, ignore_errors=True)


def shim_docker(shim_bin, daemon, args, *, facts=None, extra_env=None, timeout=180):
    env = {**os.environ, **daemon.env, "PATH": f"{shim_bin}:{PATH}", "HOME": "/root"}
    if facts:
        env["IMAGEFIT_FACTS"] = facts
    env.update(extra_env or {})
    return subprocess.run(
        [str(shim_bin / "docker"), *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_daemon_is_real_quiet_and_treats_loopback_as_insecure(dockerd):
    info = json.loads(dockerd.docker("info", "--format", "{{json .}}").stdout)
    # what the shim's docker personality assumes (shim.personality.docker.LOOPBACK)
    assert "127.0.0.0/8" in info["RegistryConfig"]["InsecureRegistryCIDRs"]
    assert info["CgroupDriver"] == "cgroupfs"
    # no bridge: podman's networks on this host are left alone
    assert not os.path.exists("/sys/class/net/docker0")


def test_pass_through_execs_the_real_docker(docker_shim_bin, dockerd):
    done = shim_docker(docker_shim_bin, dockerd, ["version", "--format", "{{.Server.Version}}"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == dockerd.version()


@pytest.mark.parametrize(("node", "expected"), [("zen4", "zen4"), ("ivybridge", "x86_64_v2")])
def test_shimmed_docker_run_starts_the_best_build(
    docker_shim_bin,
    dockerd,
    app,
    facts_files,
    node,
    expected,
):
    args = ["run", "--rm", "--network=none", app.ref, "sh", "-c", "whichbuild; id -u"]
    dry = shim_docker(docker_shim_bin, dockerd, args, facts=facts_files[node],
                      extra_env={"IMAGEFIT_DRY_RUN": "1"})  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert f"{app.repository}@{app.manifests[expected]}" in json.loads(dry.stdout)
    done = shim_docker(docker_shim_bin, dockerd, args, facts=facts_files[node])
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [expected, "0"], done.stdout + done.stderr
    assert ENTRYPOINT_MARK not in done.stdout


def test_root_login_container_home_and_image_cmd(docker_shim_bin, dockerd, app, facts_files):
    """As root: HOME=/root (the image's, writable), the image's PATH once;
    with no command and no TTY the image's Cmd runs through the login
    shell, not its ENTRYPOINT."""
    base = ["run", "--rm", "--network=none", app.ref]
    done = shim_docker(docker_shim_bin, dockerd, [*base, "sh", "-c", 'mkdir -p "$HOME"; ' + PROBE],
                       facts=facts_files["haswell"])  # fmt: skip
    assert done.returncode == 0, done.stderr
    seen = probe(done.stdout)
    assert seen["home"] == "/root" and "writable" in seen, done.stdout
    assert seen["dups"].strip() == "" and seen["path"].startswith("/opt/app/bin:"), done.stdout
    assert (seen["build"], seen["uid"]) == ("haswell", "0")
    cmd = shim_docker(docker_shim_bin, dockerd, base, facts=facts_files["haswell"])
    assert cmd.returncode == 0, cmd.stderr
    assert cmd.stdout.split() == [CMD_MARK, "haswell"], cmd.stdout + cmd.stderr


def _image_id(daemon, ref: str) -> str | None:
    done = daemon.docker("image", "inspect", "--format", "{{.Id}}", ref, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def test_pull_fetches_the_chosen_build(docker_shim_bin, dockerd, app, facts_files):
    ref = f"{app.repository}:2024"
    pinned = f"{app.repository}@{app.manifests['haswell']}"
    dockerd.docker("image", "rm", "--force", ref, pinned, check=False)
    done = shim_docker(docker_shim_bin, dockerd, ["pull", "-q", ref], facts=facts_files["haswell"])
    assert done.returncode == 0, done.stderr
    assert _image_id(dockerd, pinned) is not None  # the haswell build, by its digest
    listed = dockerd.docker("images", "--digests", "--format", "{{.Digest}}").stdout.split()
    assert app.manifests["haswell"] in listed


def test_pull_keeps_the_users_tag(docker_shim_bin, dockerd, app, facts_files):
    ref = f"{app.repository}:2024"
    pinned = f"{app.repository}@{app.manifests['zen4']}"
    dockerd.docker("image", "rm", "--force", ref, pinned, check=False)
    done = shim_docker(docker_shim_bin, dockerd, ["pull", "-q", ref], facts=facts_files["zen4"])
    assert done.returncode == 0, done.stderr
    # as after a plain pull, `docker images` lists REF, and it is the chosen build
    named = dockerd.docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    assert ref in named, named
    assert _image_id(dockerd, ref) == _image_id(dockerd, pinned)


def test_caller_runs_as_herself(docker_shim_bin, dockerd, app, facts_files):
    """As the ordinary user alice (given the socket for this test only: a
    rootful daemon's socket is root on the host): ``--user`` makes her uid
    the container's, HOME is her home path on a tmpfs she owns (docker's
    ``uid=``/``gid=`` tmpfs options), her real home untouched; the image's
    Cmd with no command."""
    user = pwd.getpwnam(os.environ.get("IMAGEFIT_TEST_USER", "alice"))
    env = {**dockerd.env, "PATH": f"{docker_shim_bin}:{PATH}", "HOME": user.pw_dir,
           "USER": user.pw_name, "IMAGEFIT_FACTS": facts_files["haswell"],
           # alice's own decision cache: root's is not hers to read
           "XDG_CACHE_HOME": f"{dockerd.base}/alice-cache"}  # fmt: skip
    os.makedirs(env["XDG_CACHE_HOME"], exist_ok=True)
    os.chown(env["XDG_CACHE_HOME"], user.pw_uid, user.pw_gid)

    def as_alice(*args):
        cmd = ["runuser", "-u", user.pw_name, "--", "env", "-i",
               *(f"{k}={v}" for k, v in env.items()), "docker", *args]  # fmt: skip
        return subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd="/")

    marker = os.path.join(user.pw_dir, ".imagefit-probe")
    base = ["run", "--rm", "--network=none", app.ref]
    try:
        with dockerd.granted_to(user.pw_gid):
            done = as_alice(*base, "sh", "-c", PROBE)
            cmd = as_alice(*base)
        touched = os.path.exists(marker)
    finally:
        if os.path.exists(marker):
            os.unlink(marker)
    assert done.returncode == 0, done.stderr
    seen = probe(done.stdout)
    assert (seen["build"], seen["uid"]) == ("haswell", str(user.pw_uid)), done.stdout
    assert seen["home"] == user.pw_dir and "writable" in seen, done.stdout + done.stderr
    assert not touched  # a tmpfs: her real home is not the container's
    assert cmd.returncode == 0, cmd.stderr
    assert cmd.stdout.split() == [CMD_MARK, "haswell"], cmd.stdout + cmd.stderr
