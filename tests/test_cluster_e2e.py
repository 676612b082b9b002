"""imagefit on a cluster: a login node and 13 compute nodes in 4 node classes
(tests/support/cluster.py: each node in its own mount, UTS and network
namespaces with its own hostname, archspec's real /proc/cpuinfo dump and
boot id; a real slurmctld and one real slurmd per node; real podman with its
image store on the shared directory; the real registry), the installed shim
first on PATH, and a site config as docs/admin.md sets it up:

- 12 nodes of 3 classes starting one image cold and concurrently make one
  index resolution at the registry, and each runs its class's build;
- an offline node of a class that never resolved decides from the store,
  and says which build it needs when it does not have it; a pull on the login
  node for that class makes it run;
- a Slurm job across two classes runs one common build (consistency = job);
- a policy for one class only; a site lock a user config and IMAGEFIT_PIN
  cannot override.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import oci
from tests.support.cluster import nodes_by_class, start_for_pytest, world_readable_dir

TARGET = "org.supercontainers.hardware.cpu.target.microarch"
BUILDS = [
    "x86_64",
    "x86_64_v2",
    "x86_64_v3",
    "x86_64_v4",
    "haswell",
    "zen3",
    "zen4",
    "sapphirerapids",
]
NODES = nodes_by_class(
    {
        "zen4": ("a", "linux-rocky8.5-zen4", 4),
        "spr": ("s", "linux-unknown-sapphirerapids", 4),
        "haswell": ("h", "linux-rhel7-haswell", 4),
        "zen3": ("z", "linux-ubuntu20.04-zen3", 1),
    }
)
ONLINE = "a[001-004],s[001-004],h[001-004]"
EXPECTED = {"zen4": "zen4", "spr": "sapphirerapids", "haswell": "haswell", "zen3": "zen3"}
VENV_BIN = str(Path(sys.executable).parent)


@pytest.fixture(scope="module")
def cluster():
    base = world_readable_dir()
    c = start_for_pytest(base, NODES, offline={"z001"})
    try:
        yield c
    finally:
        c.stop()
        subprocess.run(["rm", "-rf", str(base)], check=False, timeout=120)


@pytest.fixture(scope="module")
def site(cluster, shim_bin, app, pinned_app):
    """The site's setup: a shared directory (root's, sticky, world-writable),
    one facts file per node class made on a node of the class, the config.
    (After the registry started: every node's registries.conf names it.)"""
    c = cluster
    c.podman_everywhere()
    c.podman_everywhere("alice")
    top = c.shared_dir / "imagefit"
    (top / "classes").mkdir(parents=True, mode=0o755)
    store = top / "store"
    store.mkdir(mode=0o755)
    store.chmod(0o1777)
    classes = {
        "zen4": ("a001", "a*"),
        "spr": ("s001", "s*"),
        "haswell": ("h001", "h*"),
        "zen3": ("z001", "z*"),
    }
    for name, (node, _) in classes.items():
        done = c.run_on(node, [f"{VENV_BIN}/imagefit", "facts", "--json", "--output",
                               str(top / "classes" / f"{name}.json")], env=env_for(c, shim_bin, node))  # fmt: skip
        assert done.returncode == 0, done.stderr
        (top / "classes" / f"{name}.json").chmod(0o644)
    config = top / "config.toml"
    lines = [f'decision_cache_dir = "{store}"', "decision_cache_ttl = 600", ""]
    for name, (_, glob) in classes.items():
        lines += [
            f"[node_classes.{name}]",
            f'facts = "{top / "classes" / f"{name}.json"}"',
            f'hosts = ["{glob}"]',
            "",
        ]
    lines += [
        "[[policy]]", 'image = "*/hpc/pinned"', 'node_class = "spr"', 'pin = "x86_64_v4"', "lock = true", "",
        "[[policy]]", 'image = "*/hpc/pinned"', 'node_class = "hasw*"', 'pin = "x86_64_v3"', "",
    ]  # fmt: skip
    config.write_text("\n".join(lines) + "\n")
    config.chmod(0o644)
    return {"config": str(config), "store": store, "top": top}


def env_for(c, shim_bin, node, user=None, **extra) -> dict:
    """A user's environment on `node`: the shim first on PATH, podman on the
    shared image store, a node-local cache (the node's own /run)."""
    _, podman_env = c.podman(node, user)
    uid = 1234 if user == "alice" else 0
    return {
        **podman_env,
        "PATH": f"{shim_bin}:{VENV_BIN}:/usr/sbin:/usr/bin:/sbin:/bin",
        "XDG_CACHE_HOME": f"/run/user/{uid}/cache" if uid else "/run/imagefit-cache",
        **extra,
    }


@pytest.fixture(scope="module")
def app(cluster):
    builds = [{"name": n, "platform": {"architecture": "amd64", "os": "linux"}, "annotations": {TARGET: n}}
              for n in BUILDS]  # fmt: skip
    return oci.build_and_push(cluster.registry.host, "hpc/app", "1", builds,
                              layout_dir=cluster.shared_dir / "layout-app")  # fmt: skip


@pytest.fixture(scope="module")
def pinned_app(cluster):
    builds = [{"name": n, "platform": {"architecture": "amd64", "os": "linux"}, "annotations": {TARGET: n}}
              for n in BUILDS]  # fmt: skip
    return oci.build_and_push(cluster.registry.host, "hpc/pinned", "1", builds,
                              layout_dir=cluster.shared_dir / "layout-pinned")  # fmt: skip


def _podman_args(c, node="a001", user=None):
    argv, _ = c.podman(node, user)
    return argv[1:]  # without "podman": the shim is "podman" on PATH


def _chosen(line: str) -> str:
    """The pinned image operand of a dry run's argv line."""
    found = re.findall(r'[^\s"\[,]+@sha256:[0-9a-f]{64}', line)
    assert len(found) == 1, line
    return found[0]


def _by_host(stdout: str) -> dict[str, str]:
    out = {}
    for line in stdout.splitlines():
        host, _, rest = line.partition(" ")
        out[host] = rest
    return out


def test_12_nodes_of_3_classes_cold_make_one_index_resolution(cluster, site, app, shim_bin):
    c = cluster
    env = env_for(c, shim_bin, "a001", IMAGEFIT_SITE_CONFIG=site["config"], IMAGEFIT_DRY_RUN="1")
    podman = " ".join(_podman_args(c))
    mark = c.registry.log_offset()
    done = c.srun(["-w", ONLINE, "-N12", "--ntasks-per-node=1", "sh", "-c",
                   f'echo "$(hostname) $(podman {podman} run --rm --network=none {app.ref} cat /etc/imagefit-build)"'],
                  env=env, timeout=180)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "imagefit:" not in done.stderr, done.stderr
    chosen = {h: _chosen(rest) for h, rest in _by_host(done.stdout).items()}
    assert len(chosen) == 12, done.stdout
    for host, pinned in chosen.items():
        cls = c.nodes[host].cls
        assert pinned == app.digest_ref(EXPECTED[cls]), (host, cls, pinned)
    index_gets = [
        r for r in c.registry.requests(mark) if r[0] == "GET" and r[1].endswith("/manifests/1")
    ]
    assert len(index_gets) == 1, index_gets
    assert not [r for r in c.registry.requests(mark) if r[0] == "HEAD"]
    # each class's decision was made once and is shared: 3 entries (root's), one record
    assert len(list(site["store"].glob("*.0.entry"))) == 3
    assert len(list(site["store"].glob("*.0.ref"))) == 1
    # and really runs: srun -N 6 podman run prints each node's build
    run_env = {k: v for k, v in env.items() if k != "IMAGEFIT_DRY_RUN"}
    done = c.srun(["-w", "a[001-002],s[001-002],h[001-002]", "-N6", "--ntasks-per-node=1", "sh", "-c",
                   f'echo "$(hostname) $(podman {podman} run --rm --network=none {app.ref} cat /etc/imagefit-build)"'],
                  env=run_env, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert _by_host(done.stdout) == {h: EXPECTED[c.nodes[h].cls] for h in  # noqa: E501
                                     ("a001", "a002", "s001", "s002", "h001", "h002")}, done.stderr  # fmt: skip


def test_offline_node_of_a_class_that_never_resolved(cluster, site, app, shim_bin, tmp_path):
    c = cluster
    podman = _podman_args(c, "z001")
    env = env_for(c, shim_bin, "z001", IMAGEFIT_SITE_CONFIG=site["config"])
    run = [
        "podman",
        *podman,
        "run",
        "--rm",
        "--network=none",
        app.ref,
        "cat",
        "/etc/imagefit-build",
    ]
    # z001 (class zen3) cannot reach the registry and no zen3 decision exists yet: the store
    # decides (no warning: its record is fresh), and the build is not in local storage, so
    # one line names the build this node needs and how to get it, before podman would fail
    assert not [p for p in site["store"].glob("*.entry") if "zen3" in p.read_text()]
    needs = (
        f"imagefit: {app.ref}: node class zen3 needs build zen3 ({app.manifests['zen3']}), which is not in "
        "local storage, and the registry cannot be reached; on a node that reaches it run: "
        "IMAGEFIT_NODE_CLASS=zen3 podman "
    )
    done = c.run_on("z001", run, env=env, timeout=60)
    assert done.returncode == 125 and done.stdout == "", done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(needs) and line.endswith(f" pull {app.ref}"), line
    assert "--root=" in line  # the storage it uses
    # once the store's record is past its TTL the shim tries the registry, cannot reach it, and
    # decides anyway, with one warning naming the age; same refusal
    stale = tmp_path / "stale.toml"
    stale.write_text(
        Path(site["config"])
        .read_text()
        .replace("decision_cache_ttl = 600", "decision_cache_ttl = 0.001")
    )
    stale.chmod(0o644)
    env_stale = {**env, "IMAGEFIT_SITE_CONFIG": str(stale), "IMAGEFIT_REGISTRY_TIMEOUT": "2"}
    done = c.run_on("z001", run, env=env_stale, timeout=60)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 125, done.stderr
    assert "network unreachable" in lines[0] and re.search(r"(stored|made) \d+ s ago$", lines[0]), (
        lines
    )
    assert lines[1] == line, lines
    # the login node pulls for the class (and tags the reference, as a plain pull would)
    login_env = env_for(
        c, shim_bin, c.login.name, IMAGEFIT_SITE_CONFIG=site["config"], IMAGEFIT_NODE_CLASS="zen3"
    )
    done = c.run_on(c.login.name, ["podman", *_podman_args(c, c.login.name), "pull", "-q", app.ref],
                    env=login_env, timeout=180)  # fmt: skip
    assert done.returncode == 0, done.stderr
    listed = c.run_on(c.login.name, ["/usr/bin/podman", *_podman_args(c, c.login.name), "images", "--format",
                                     "{{.Repository}}:{{.Tag}} {{.Digest}}"], env=login_env)  # fmt: skip
    assert f"{app.ref} {app.manifests['zen3']}" in listed.stdout.splitlines(), listed.stdout
    # now the offline node runs its build: silently from the fresh decision...
    done = c.run_on("z001", run, env=env, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (0, "zen3\n", ""), done.stderr
    # ...and with one warning naming the age when the registry is asked and out of reach
    done = c.run_on("z001", run, env=env_stale, timeout=120)
    assert (done.returncode, done.stdout) == (0, "zen3\n"), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and " ago" in done.stderr
    # without imagefit's store (fail open), podman runs what the pull tagged, as without imagefit
    bare = {
        **env_stale,
        "IMAGEFIT_SITE_CONFIG": "/nonexistent",
        "XDG_CACHE_HOME": "/run/empty-cache",
    }
    done = c.run_on("z001", run, env=bare, timeout=120)
    assert (done.returncode, done.stdout) == (0, "zen3\n"), done.stderr
    assert "running the command unchanged" in done.stderr


def test_a_job_across_two_classes_runs_one_common_build(cluster, site, app, shim_bin):
    c = cluster
    podman = " ".join(_podman_args(c))
    env = env_for(c, shim_bin, "a001", IMAGEFIT_SITE_CONFIG=site["config"])
    script = f'echo "$(hostname) $(podman {podman} run --rm --network=none {app.ref} cat /etc/imagefit-build)"'
    per_node = c.srun(
        ["-w", "a001,s001", "-N2", "--ntasks-per-node=1", "sh", "-c", script], env=env, timeout=180
    )
    assert per_node.returncode == 0, per_node.stderr
    assert _by_host(per_node.stdout) == {"a001": "zen4", "s001": "sapphirerapids"}
    job = c.srun(["-w", "a001,s001", "-N2", "--ntasks-per-node=1", "sh", "-c", script],
                 env={**env, "IMAGEFIT_CONSISTENCY": "job"}, timeout=180)  # fmt: skip
    assert job.returncode == 0, job.stderr
    assert _by_host(job.stdout) == {"a001": "x86_64_v4", "s001": "x86_64_v4"}
    # zen4 + haswell: the best build both run
    job = c.srun(["-w", "a002,h002", "-N2", "--ntasks-per-node=1", "sh", "-c", script],
                 env={**env, "IMAGEFIT_CONSISTENCY": "job"}, timeout=180)  # fmt: skip
    assert job.returncode == 0, job.stderr
    assert _by_host(job.stdout) == {"a002": "x86_64_v3", "h002": "x86_64_v3"}


def test_policy_for_one_class_and_a_lock_a_user_cannot_override(
    cluster, site, pinned_app, shim_bin
):
    c = cluster
    pinned = pinned_app.ref
    home = Path("/home/alice")
    cfg = home / ".config" / "imagefit"
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "config.toml").write_text('[[policy]]\nimage = "*/hpc/pinned"\npin = "x86_64_v2"\n')
    for path in (home / ".config", cfg, cfg / "config.toml"):
        os.chown(path, 1234, 1234)
    try:

        def chosen(node, user=None, **extra):
            env = env_for(
                c,
                shim_bin,
                node,
                user,
                IMAGEFIT_SITE_CONFIG=site["config"],
                IMAGEFIT_DRY_RUN="1",
                **extra,
            )
            done = c.run_on(node, ["podman", *_podman_args(c, node, user), "run", "--rm", pinned, "true"],
                            env=env, user=user)  # fmt: skip
            assert done.returncode == 0, done.stderr
            return _chosen(done.stdout.splitlines()[-1]).rsplit("@", 1)[1]

        builds = {v: k for k, v in pinned_app.manifests.items()}
        # root: the site policy, scoped by class
        assert builds[chosen("a001")] == "zen4"  # no policy for zen4
        assert builds[chosen("h001")] == "x86_64_v3"  # haswell's pin
        assert builds[chosen("s001")] == "x86_64_v4"  # spr's locked pin
        # alice's own pin wins over the site's unlocked one, never over the lock
        assert builds[chosen("a001", "alice")] == "x86_64_v2"
        assert builds[chosen("h001", "alice")] == "x86_64_v2"
        assert builds[chosen("s001", "alice")] == "x86_64_v4"
        # IMAGEFIT_PIN for one command: the same rule
        assert builds[chosen("a001", "alice", IMAGEFIT_PIN="x86_64")] == "x86_64"
        assert builds[chosen("s001", "alice", IMAGEFIT_PIN="x86_64")] == "x86_64_v4"
        # a lock in a user config is refused
        (cfg / "config.toml").write_text('[[policy]]\nimage = "*"\npin = "x86_64"\nlock = true\n')
        env = env_for(
            c, shim_bin, "a001", "alice", IMAGEFIT_SITE_CONFIG=site["config"], IMAGEFIT_DRY_RUN="1"
        )
        done = c.run_on("a001", ["podman", "run", "--rm", pinned, "true"], env=env, user="alice")
        assert done.returncode == 125 and "lock is a site setting" in done.stderr, done.stderr
    finally:
        (cfg / "config.toml").unlink(missing_ok=True)
