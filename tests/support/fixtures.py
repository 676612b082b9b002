"""Shared pytest fixtures for tests that need a real registry or podman.

Import them where needed (conftest.py or a test module)::

    from tests.support.fixtures import registry, podman_env  # noqa: F401
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.registry import REGISTRY_BINARY, LocalRegistry

CONTAINERS_CONF = """\
[containers]
default_ulimits = []
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{events}"
tmp_dir = "{tmp}"

[network]
network_config_dir = "{netconf}"
"""

STORAGE_CONF = """\
[storage]
driver = "vfs"
graphroot = "{root}"
runroot = "{runroot}"
"""

# No search registries, no mirrors: nothing can reach beyond loopback.
REGISTRIES_CONF = "unqualified-search-registries = []\n"


def missing_tool(what: str) -> None:
    """A tool the tests need is absent: fail (run tests/provision.sh), or skip
    when IMAGEFIT_TESTS_ALLOW_SKIP=1 says this machine cannot have it."""
    message = f"{what}: run tests/provision.sh (as root) first"
    if os.environ.get("IMAGEFIT_TESTS_ALLOW_SKIP") == "1":
        pytest.skip(message)
    pytest.fail(message)


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    """A running, auth-less local registry for the whole session."""
    if not os.access(REGISTRY_BINARY, os.X_OK):
        missing_tool(f"{REGISTRY_BINARY} missing")
    reg = LocalRegistry(tmp_path_factory.mktemp("registry"))
    try:
        yield reg
    finally:
        reg.stop()


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve()) + "/"
    found = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                mnt = line.split()[4].replace("\\040", " ")
                if mnt.startswith(prefix):
                    found.append(mnt)
    except OSError:
        pass
    return found


def _podman_setup(base: Path) -> tuple[list[str], dict[str, str]]:
    root, runroot, tmp = base / "root", base / "runroot", base / "tmp"
    netconf, conf = base / "net", base / "conf"
    for d in (root, runroot, tmp, netconf, conf):
        d.mkdir(parents=True, exist_ok=True)
    (conf / "containers.conf").write_text(
        CONTAINERS_CONF.format(events=base / "events.log", tmp=tmp, netconf=netconf)
    )
    (conf / "storage.conf").write_text(STORAGE_CONF.format(root=root, runroot=runroot))
    (conf / "registries.conf").write_text(REGISTRIES_CONF)
    argv = [
        "podman",
        "--root",
        str(root),
        "--runroot",
        str(runroot),
        "--storage-driver",
        "vfs",
        "--tmpdir",
        str(tmp),
    ]
    env = dict(os.environ)
    env.update(
        {
            "CONTAINERS_CONF": str(conf / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(conf / "storage.conf"),
            "CONTAINERS_REGISTRIES_CONF": str(conf / "registries.conf"),
            "TMPDIR": str(tmp),
        }
    )
    return argv, env


def _podman_teardown(base: Path, argv: list[str], env: dict[str, str]) -> None:
    try:
        subprocess.run(
            [*argv, "rm", "--all", "--force", "--time", "0"],
            env=env,
            check=False,
            capture_output=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        pass
    for mnt in sorted(_mounts_under(base), key=len, reverse=True):
        subprocess.run(["umount", "-l", mnt], check=False, capture_output=True)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def podman_env(tmp_path_factory):
    """(argv prefix, env) for rootful podman with storage of its own.

    Storage uses the vfs driver (no overlay mounts are left behind) under a
    pytest tmp dir that is removed afterwards.  Pass ``--tls-verify=false``
    to pull/run from the local (plain HTTP) registry, e.g.::

        argv, env = podman_env
        subprocess.run([*argv, "run", "--rm", "--network=none",
                        "--tls-verify=false", ref, "id"], env=env)
    """
    if shutil.which("podman") is None:
        missing_tool("podman missing")
    if os.geteuid() != 0:
        pytest.skip("podman_env is for rootful podman")
    base = tmp_path_factory.mktemp("podman")
    argv, env = _podman_setup(base)
    try:
        yield argv, env
    finally:
        _podman_teardown(base, argv, env)
