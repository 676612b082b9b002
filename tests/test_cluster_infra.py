"""The simulated HPC cluster (tests/support/cluster.py) really is one: a real
slurmctld and one real slurmd per node, each node in its own mount, UTS and
network namespaces with its own hostname, cpuinfo and boot id; offline nodes
run Slurm job steps but cannot reach the registry; real podman runs images
from the cluster's registry on the nodes, from storage on the shared dir."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import oci
from tests.support.cluster import (
    BASE_PATH,
    STANDARD_OFFLINE,
    Cluster,
    _ns_inode,
    _pids_in_namespaces,
    hpc_cluster,  # noqa: F401
    start_for_pytest,
    world_readable_dir,
)

VENV_BIN = str(Path(sys.executable).parent)
ONLINE = 6
ALL = 7

PROBE = """\
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
        print("status", r.status)
except OSError as exc:
    print("error", getattr(exc, "reason", exc))
"""


def step_lines(c: Cluster, args, **kw) -> dict[str, str]:
    """srun ARGS with one task per node, as {hostname: output}."""
    done = c.srun(["-N", str(len(c.nodes)), "--ntasks-per-node=1", "sh", "-c",
                   f"echo $(hostname) $({args})"], timeout=60, **kw)  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = {}
    for line in done.stdout.splitlines():
        host, _, text = line.partition(" ")
        out[host] = text
    return out


def test_layout(hpc_cluster):
    c = hpc_cluster
    assert len(c.nodes) == ALL
    assert c.classes == {"zen4": ["a001", "a002"], "spr": ["s001", "s002"],
                         "haswell": ["h001", "h002", "h003"]}  # fmt: skip
    assert {n for n, node in c.nodes.items() if node.offline} == set(STANDARD_OFFLINE)
    c.wait_idle(30)
    assert c.node_states() == dict.fromkeys(c.nodes, "idle")
    # Every address is in the cluster's own private networks.
    for node in [c.login, *c.nodes.values()]:
        assert node.address.startswith(f"10.{c.net_index}.0.")
    assert c.registry_address == f"10.{c.net_index}.1.1"


def test_srun_hostnames_boot_ids_and_targets(hpc_cluster, shim_bin):
    c = hpc_cluster
    done = c.srun(["-N", str(ALL), "hostname"], timeout=60)
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.split()) == sorted(c.nodes)

    boot_ids = step_lines(c, "cat /proc/sys/kernel/random/boot_id")
    assert set(boot_ids) == set(c.nodes)
    assert len(set(boot_ids.values())) == ALL
    assert boot_ids == {n: node.boot_id for n, node in c.nodes.items()}
    host_boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert host_boot_id not in boot_ids.values()

    # PATH (shim directory first) reaches the job steps; so does the rest of
    # the caller's environment.
    env = {"PATH": f"{shim_bin}:{VENV_BIN}:{BASE_PATH}", "IMAGEFIT_MARK": "from-login"}
    seen = step_lines(c, 'command -v podman; echo "$IMAGEFIT_MARK"', env=env)
    assert seen == dict.fromkeys(c.nodes, f"{shim_bin}/podman from-login")

    targets = step_lines(
        c, "python -c 'import archspec.cpu; print(archspec.cpu.host().name)'", env=env
    )
    assert targets == {n: node.target for n, node in c.nodes.items()}
    assert {targets["a001"], targets["s001"], targets["h001"]} == {
        "zen4", "sapphirerapids", "haswell"
    }  # fmt: skip


def test_partitions_and_users(hpc_cluster):
    c = hpc_cluster
    done = c.srun(["-p", "spr", "-N", "2", "hostname"], timeout=60)
    assert sorted(done.stdout.split()) == ["s001", "s002"], done.stderr
    # A job step as the rootless test user: Slurm runs it under alice's uid.
    done = c.srun(["-N", "2", "-p", "zen4", "id", "-u"], user="alice", timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1234", "1234"]
    # A batch job (sbatch --wait) writing to the shared directory.
    out = c.shared_dir / "batch-%j.out"
    done = c.run_on("login01", ["sbatch", "--wait", "-N", "2", "-p", "haswell", "-w", "h001,h003",
                                "-o", str(out), "--wrap", "srun hostname"], timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    job = done.stdout.split()[-1]
    assert sorted((c.shared_dir / f"batch-{job}.out").read_text().split()) == ["h001", "h003"]


def test_offline_node_runs_steps_but_cannot_reach_registry(hpc_cluster):
    c = hpc_cluster
    url = f"{c.registry.url}/v2/"
    for node in ["login01", "a001", "s002", "h001"]:
        done = c.run_on(node, ["python3", "-c", PROBE, url], timeout=30)
        assert done.stdout.strip() == "status 200", (node, done.stdout, done.stderr)
    done = c.run_on("h003", ["python3", "-c", PROBE, url], timeout=30)
    assert done.stdout.strip() == "error [Errno 101] Network is unreachable"
    # The offline node still runs Slurm job steps, which see the same.
    done = c.srun(["-w", "h003", "python3", "-c", PROBE, url], timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "error [Errno 101] Network is unreachable"
    # Nothing outside the cluster's networks is routable from a node.
    routes = c.run_on("a001", ["ip", "-4", "route"], timeout=10).stdout
    assert "default" not in routes
    assert c.run_on("h003", ["ip", "-4", "route"], timeout=10).stdout.strip().count("\n") == 0


def test_node_local_and_shared_dirs(hpc_cluster):
    c = hpc_cluster
    c.run_on("a001", ["sh", "-c", f"echo a001 > {c.local_dir}/mark; echo a001 > {c.shared_dir}/mark-a001"],
             check=True)  # fmt: skip
    assert (c.node_dir("a001") / "mark").read_text() == "a001\n"
    assert not (c.node_dir("a002") / "mark").exists()
    assert c.run_on("a002", ["cat", f"{c.shared_dir}/mark-a001"], check=True).stdout == "a001\n"
    done = c.run_on("a002", ["cat", f"{c.local_dir}/mark"])
    assert done.returncode != 0


@pytest.fixture(scope="module")
def pushed(hpc_cluster, tmp_path_factory):
    builds = [
        {"name": name, "platform": {"architecture": "amd64", "os": "linux"}, "annotations": None}
        for name in ("zen4-build",)
    ]
    return oci.build_and_push(
        hpc_cluster.registry.host, "hpc/app", "1", builds, layout_dir=tmp_path_factory.mktemp("app")
    )


def test_podman_pull_on_login_run_on_nodes(hpc_cluster, pushed):
    c = hpc_cluster
    argv, env = c.podman("login01")
    done = c.run_on(
        "login01", [*argv, "pull", "-q", "--tls-verify=false", pushed.ref], env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    before = len(c.registry.requests())
    # The offline node runs the image from the shared store, with no registry.
    for node in ("h003", "s001"):
        argv, env = c.podman(node)
        done = c.run_on(node, [*argv, "run", "--rm", "--network=none", pushed.ref,
                               "cat", "/etc/imagefit-build"], env=env, timeout=120)  # fmt: skip
        assert (done.returncode, done.stdout) == (0, "zen4-build\n"), done.stderr
    assert len(c.registry.requests()) == before
    # An online node pulls by itself; the offline one cannot.
    argv, env = c.podman("a002")
    done = c.run_on(
        "a002", [*argv, "pull", "-q", "--tls-verify=false", pushed.ref], env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    argv, env = c.podman("h003")
    t0 = time.monotonic()
    done = c.run_on("h003", [*argv, "pull", "--tls-verify=false", pushed.ref],
                    env=env, timeout=120)  # fmt: skip
    print(f"offline pull failed after {time.monotonic() - t0:.2f}s")
    assert done.returncode != 0 and "network is unreachable" in done.stderr, done.stderr


def test_srun_podman_on_every_node(hpc_cluster, pushed):
    """One podman setting for every node (per-node paths are the same paths
    on each node): pulled once on the login node, run by srun everywhere,
    concurrently, from the shared store."""
    c = hpc_cluster
    argv, env = c.podman_everywhere()
    c.run_on("login01", [*argv, "pull", "-q", "--tls-verify=false", pushed.ref], env=env, timeout=120,
             check=True)  # fmt: skip
    done = c.srun(["-N", str(ALL), "-l", *argv, "run", "--rm", "--network=none", pushed.ref,
                   "cat", "/etc/imagefit-build"], env=env, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.splitlines()) == [f"{i}: zen4-build" for i in range(ALL)]


def test_podman_rootless_on_node(hpc_cluster, pushed):
    """Rootless podman as alice: pulled on the login node, run on a compute
    node.  ``--pid=host``: the node's bind mounts over /proc (cpuinfo, boot id)
    make the kernel refuse a fresh procfs mount in a user namespace (EPERM);
    with the host's pid namespace podman bind-mounts the node's /proc, so the
    container sees the node's cpuinfo and boot id."""
    c = hpc_cluster
    argv, env = c.podman("login01", user="alice")
    done = c.run_on("login01", [*argv, "pull", "-q", "--tls-verify=false", pushed.ref],
                    env=env, user="alice", timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    argv, env = c.podman("a001", user="alice")
    script = "cat /etc/imagefit-build; id -u; cat /proc/sys/kernel/random/boot_id"
    done = c.run_on("a001", [*argv, "run", "--rm", "--network=none", "--pid=host", pushed.ref,
                             "sh", "-c", script], env=env, user="alice", timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["zen4-build", "0", c.nodes["a001"].boot_id]


def test_start_stop_leaves_nothing(tmp_path):
    """A one-node cluster starts and stops cleanly (timings in the log)."""
    base = world_readable_dir()
    try:
        c = start_for_pytest(base, {"z001": "linux-ubuntu20.04-zen3"})
        inodes = {c.nodes["z001"].netns, c.nodes["z001"].mntns, c.login.netns}
        bridge = c.bridge
        done = c.srun(["-N", "1", "hostname"], timeout=60)
        assert done.stdout == "z001\n", done.stderr
        c.stop()
        print(f"one-node cluster: {c.timings}")
        assert not _pids_in_namespaces(inodes)
        links = subprocess.run(
            ["ip", "-o", "link"], capture_output=True, text=True, timeout=10
        ).stdout
        assert bridge not in links and f"v{c.suffix}" not in links
        assert _ns_inode(os.getpid(), "net") not in inodes
    finally:
        shutil.rmtree(base, ignore_errors=True)
