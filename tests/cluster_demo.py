"""A guided tour of imagefit on a simulated cluster, for a newcomer
(docs/admin.md, "Try it on one machine"):

    bash tests/provision.sh                                    # as root, once
    /opt/imagefit-venv/bin/python -m tests.cluster_demo

It starts the cluster tests/support/cluster.py builds (a login node and 13
compute nodes in 4 classes, each in its own mount, UTS and network
namespaces with its own hostname, boot id and /proc/cpuinfo from archspec's
real dumps; Debian's slurmctld and one slurmd per node; z001 has no route to
the registry), a real registry on the cluster's bridge, and real podman with
its image store on the shared directory. Then it sets the site up as
docs/admin.md says (the shim installed with `imagefit install`, a shared
directory mode 1777, one facts file per class made on a node of the class,
the site config) and shows each behaviour: each command as it is typed and
what it printed. Everything it starts is stopped at the end.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support import oci
from tests.support.cluster import Cluster, nodes_by_class, world_readable_dir

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
NODES = {"zen4": ("a", "linux-rocky8.5-zen4", 4), "spr": ("s", "linux-unknown-sapphirerapids", 4),
         "haswell": ("h", "linux-rhel7-haswell", 4), "zen3": ("z", "linux-ubuntu20.04-zen3", 1)}  # fmt: skip
VENV_BIN = str(Path(sys.executable).parent)


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def show(
    c: Cluster,
    node: str,
    argv: list[str],
    env: dict,
    shown: str | None = None,
    timeout: float = 300,
):
    """Run `argv` on `node` and print it (as `shown`, what a user types) with its output."""
    print(f"[{node}]$ {shown or shlex.join(argv)}", flush=True)
    done = c.run_on(node, argv, env=env, timeout=timeout)
    for line in (done.stdout + done.stderr).splitlines():
        print(f"  {line}")
    if done.returncode:
        print(f"  (exit {done.returncode})")
    return done


def main() -> int:
    base = world_readable_dir()
    with Cluster(base, nodes_by_class(NODES), offline={"z001"}) as c:
        say("a registry on the cluster network, one application built for 8 CPU targets")
        builds = [{"name": n, "platform": {"architecture": "amd64", "os": "linux"}, "annotations": {TARGET: n}}
                  for n in BUILDS]  # fmt: skip
        app = oci.build_and_push(
            c.registry.host, "hpc/app", "1", builds, layout_dir=c.shared_dir / "layout"
        )
        print(f"  {app.ref}: {', '.join(BUILDS)}")
        c.podman_everywhere()  # every node's registries.conf names the registry
        say("the site's setup (docs/admin.md): shim, shared directory, node classes, config")
        prefix = Path(tempfile.mkdtemp(prefix="imagefit-demo-"))
        prefix.chmod(0o755)
        subprocess.run([f"{VENV_BIN}/imagefit", "install", "--prefix", str(prefix), "--runtime", "podman"],
                       check=True, capture_output=True)  # fmt: skip
        site = c.shared_dir / "imagefit"
        (site / "classes").mkdir(parents=True)
        store = site / "store"
        store.mkdir()
        store.chmod(0o1777)
        podman_argv, podman_env = c.podman("a001")
        storage = podman_argv[1:]

        def env(node: str, **extra) -> dict:
            return {**c.podman(node)[1], "PATH": f"{prefix / 'bin'}:{VENV_BIN}:/usr/sbin:/usr/bin:/sbin:/bin",
                    "XDG_CACHE_HOME": "/run/imagefit-cache", "IMAGEFIT_SITE_CONFIG": str(site / "config.toml"),
                    **extra}  # fmt: skip

        config = [f'decision_cache_dir = "{store}"', ""]
        for cls, (letter, _, _) in NODES.items():
            node = f"{letter}001"
            facts = site / "classes" / f"{cls}.json"
            show(c, node, ["imagefit", "facts", "--json", "--output", str(facts)], env(node))
            facts.chmod(0o644)
            config += [f"[node_classes.{cls}]", f'facts = "{facts}"', f'hosts = ["{letter}*"]', ""]
        (site / "config.toml").write_text("\n".join(config))
        (site / "config.toml").chmod(0o644)
        print((site / "config.toml").read_text())
        run = [
            "podman",
            *storage,
            "run",
            "--rm",
            "--network=none",
            app.ref,
            "cat",
            "/etc/imagefit-build",
        ]
        typed = f"podman run --rm --network=none {app.ref} cat /etc/imagefit-build"

        say("12 nodes of 3 classes start the image cold, through srun: one index request for all")
        mark = c.registry.log_offset()
        script = f'echo "$(hostname): $({shlex.join(run)})"'
        print(
            f"[login01]$ srun -w a[001-004],s[001-004],h[001-004] -N12 sh -c 'echo $(hostname): $({typed})'"
        )
        done = c.srun(["-w", "a[001-004],s[001-004],h[001-004]", "-N12", "--ntasks-per-node=1", "sh", "-c", script],
                      env=env("a001"), timeout=600)  # fmt: skip
        for line in sorted(done.stdout.splitlines()):
            print(f"  {line}")
        gets = [
            r for r in c.registry.requests(mark) if r[0] == "GET" and r[1].endswith("/manifests/1")
        ]
        print(f"  -> index requests at the registry: {len(gets)}")

        say("z001 (class zen3) has no route to the registry and no zen3 build yet")
        show(c, "z001", run, env("z001"), typed)
        say("the login node pulls for class zen3 (and tags the reference)")
        show(c, "login01", ["podman", *storage, "pull", "-q", app.ref], env("login01", IMAGEFIT_NODE_CLASS="zen3"),
             f"IMAGEFIT_NODE_CLASS=zen3 podman pull -q {app.ref}")  # fmt: skip
        say("z001 runs its own build, offline")
        show(c, "z001", run, env("z001"), typed)

        say("one build for a job across two classes: IMAGEFIT_CONSISTENCY=job")
        print(
            f"[login01]$ IMAGEFIT_CONSISTENCY=job srun -w a001,s001 -N2 sh -c 'echo $(hostname): $({typed})'"
        )
        done = c.srun(["-w", "a001,s001", "-N2", "--ntasks-per-node=1", "sh", "-c", script],
                      env=env("a001", IMAGEFIT_CONSISTENCY="job"), timeout=300)  # fmt: skip
        for line in sorted(done.stdout.splitlines()):
            print(f"  {line}")

        say("what the site sees: imagefit check over every class, doctor on a node")
        show(c, "login01", ["imagefit", "check", app.ref], env("login01"))
        show(c, "s001", ["imagefit", "doctor"], env("s001"))
    subprocess.run(["rm", "-rf", str(base)], check=False, timeout=120)
    print("\n(cluster stopped)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
