"""Benchmark: `podman run --rm IMG id` through the shim vs podman directly.

Starts a real registry on loopback, pushes an annotated 9-build index, links
the shim with `imagefit install`, pre-pulls what both paths run, then times
paired runs (direct, shim, direct, shim...) and prints the medians and the
ratio measured in this run; also `podman version` (not intercepted: the
pass-through cost). Needs root and tests/provision.sh.

    /opt/imagefit-venv/bin/python -m tests.benchmarks.podman_run [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support import oci
from tests.support.fixtures import _podman_setup, _podman_teardown
from tests.support.registry import LocalRegistry

TARGET_KEY = "org.supercontainers.hardware.cpu.target.microarch"
BUILDS = [
    ("x86_64", None), ("x86_64_v2", "v2"), ("x86_64_v3", "v3"), ("x86_64_v4", "v4"), ("haswell", "v3"),
    ("skylake_avx512", "v4"), ("icelake", "v4"), ("zen3", "v3"), ("zen4", "v4"),
]  # fmt: skip


def _timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"benchmark command failed: {argv}\n{done.stderr}")
    return elapsed


def _paired(label: str, direct: list[str], shimmed: list[str], env, shim_env, runs: int) -> None:
    d, s = [], []
    for _ in range(runs):
        d.append(_timed(direct, env))
        s.append(_timed(shimmed, shim_env))
    md, ms = statistics.median(d), statistics.median(s)
    print(f"{label}: direct median {md * 1000:.1f} ms, shim median {ms * 1000:.1f} ms, "
          f"added {1000 * (ms - md):+.1f} ms, ratio {ms / md:.2f} ({runs} paired runs)")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", type=int, default=15, help="paired runs per measurement (default 15)"
    )
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="imagefit-bench-"))
    work.chmod(0o755)
    registry = LocalRegistry(work / "registry")
    base = work / "podman"
    pargv, env = _podman_setup(base)
    try:
        builds = [
            {"name": n, "platform": {"architecture": "amd64", "os": "linux", **({"variant": v} if v else {})},
             "annotations": {TARGET_KEY: n}}
            for n, v in BUILDS
        ]  # fmt: skip
        pushed = oci.build_and_push(
            registry.host, "bench/app", "1", builds, layout_dir=work / "layout"
        )
        bindir = Path(sys.executable).parent
        subprocess.run([str(bindir / "imagefit"), "install", "--prefix", str(work / "shim"), "--runtime", "podman"],
                       check=True, capture_output=True)  # fmt: skip
        shim = str(work / "shim" / "bin" / "podman")
        shim_env = {**env, "PATH": f"{work / 'shim' / 'bin'}:{env['PATH']}"}
        real = shutil.which("podman")
        run = ["run", "--rm", "--network=none", "--tls-verify=false", pushed.ref, "id"]
        # pre-pull what each path runs, so no image pull is timed
        _timed([real, *pargv[1:], *run], env)
        _timed([shim, *pargv[1:], *run], shim_env)
        print(f"podman {subprocess.run([real, '--version'], capture_output=True, text=True).stdout.split()[-1]}, "
              f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")  # fmt: skip
        _paired("podman run --rm IMG id (cold resolution every run, no decision cache yet)",
                [real, *pargv[1:], *run], [shim, *pargv[1:], *run], env, shim_env, args.runs)  # fmt: skip
        _paired("podman version (pass-through)", [real, *pargv[1:], "version"], [shim, *pargv[1:], "version"],
                env, shim_env, args.runs)  # fmt: skip
    finally:
        registry.stop()
        _podman_teardown(base, pargv, env)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
