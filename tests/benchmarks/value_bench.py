"""The value of imagefit on this host, measured: the build stock podman runs
(the first platform match) against the build the shim chooses, for three C
kernels (tests/benchmarks/kernels.c: a STREAM-like triad, a dense matrix
multiply, a 5-point stencil).

    /opt/imagefit-venv/bin/python -m tests.benchmarks.value_bench [--runs N] [--targets T,T,...]

1. the kernels are compiled per archspec target with archspec's flags for
   the installed gcc (``Microarchitecture.optimization_flags``, -O3,
   -static); a target this gcc cannot do is skipped with archspec's reason;
2. ``imagefit index build`` packs each into a tiny image (the busybox root
   file system of tests.support.oci, ``podman import``-ed) with the real
   ``podman build`` and pushes one annotated index, most generic build
   first, to a registry of its own on loopback (tests.support.kernels);
3. each kernel runs ``--runs`` times through the real podman (``podman run
   --rm IMAGE kernels NAME``: what podman picks without imagefit) and
   through the shim linked as podman by ``imagefit install`` (the host's own
   facts, an empty site config), alternately, after one untimed run of each
   (the pulls);
4. it prints, per kernel, the build each ran (the kernel says the target it
   was compiled for), the median kernel time (timed inside the container,
   so container start-up does not dilute it), the median wall time of the
   whole ``podman run``, and the speed-up of the shim's choice.

Host, date, load average (before and after: other work on the machine
slows both sides) are printed with the figures. Needs root, gcc and
tests/provision.sh. ``--quick`` (tests): three targets, one run, short kernels.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support import kernels
from tests.support.fixtures import _podman_setup, _podman_teardown
from tests.support.registry import LocalRegistry

KERNELS = ("triad", "dgemm", "stencil")
DEFAULT_TARGETS = ["x86_64", "x86_64_v2", "x86_64_v3", "x86_64_v4", "haswell", "skylake_avx512",
                   "icelake", "sapphirerapids", "zen2", "zen3", "zen4"]  # fmt: skip
#: kernel repetitions in --quick mode (the defaults of kernels.c otherwise)
QUICK_REPS = {"triad": "40", "dgemm": "1", "stencil": "4"}


def cpu_model() -> str:
    """/proc/cpuinfo's first ``model name``."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _run(argv, env) -> tuple[str, float, float]:
    """(build target, kernel ms, wall ms) of one ``podman run``."""
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    wall = (time.perf_counter() - start) * 1000
    if done.returncode != 0:
        raise SystemExit(f"value_bench: {argv} failed ({done.returncode}):\n{done.stderr}")
    _name, target, ms, _sum = done.stdout.split()[-4:]
    return target, float(ms), wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per kernel and path (default 7)")
    parser.add_argument(
        "--targets", help=f"comma-separated (default {','.join(DEFAULT_TARGETS)} and the host's)"
    )
    parser.add_argument("--gcc", default="gcc", help="the compiler (default gcc on PATH)")
    parser.add_argument(
        "--quick", action="store_true", help="3 targets, 1 run, short kernels (tests)"
    )
    args = parser.parse_args(argv)
    bindir = Path(sys.executable).parent
    facts = json.loads(subprocess.run([str(bindir / "imagefit"), "facts", "--json"], check=True,
                                      capture_output=True, text=True).stdout)  # fmt: skip
    host_target = facts["cpu"]["target"]
    if args.targets:
        targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    elif args.quick:
        targets = ["x86_64", "x86_64_v3", host_target]
    else:
        targets = DEFAULT_TARGETS + [host_target]
    targets = list(dict.fromkeys(targets))
    runs = 1 if args.quick else args.runs
    version = kernels.gcc_version(args.gcc)
    from shim.locate import find_runtime

    real = find_runtime("podman", os.environ, str(bindir / "imagefit"))
    podman_version = subprocess.run(
        [real, "--version"], capture_output=True, text=True
    ).stdout.strip()
    print(f"value_bench {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {cpu_model()}, "
          f"archspec target {host_target} ({facts['cpu'].get('generic')}), {os.cpu_count()} CPUs, "
          f"gcc {version}, {podman_version}; load average {load()} at the start")  # fmt: skip

    work = Path(tempfile.mkdtemp(prefix="imagefit-value-"))
    work.chmod(0o755)
    registry = LocalRegistry(work / "registry")
    pargv, env = _podman_setup(work / "p")
    try:
        kernels.import_base(pargv, env)
        built, skipped = kernels.write_context(work / "ctx", targets, version, args.gcc)
        for target, reason in skipped.items():
            print(f"skipped {target}: {reason}")
        ref = f"{registry.host}/value/kernels:1"
        done = subprocess.run(
            [str(bindir / "imagefit"), "index", "build", ref, str(work / "ctx"), "--compiler",
             f"gcc@{version}", *(f"--target={t}" for t in built), "--tls-verify", "false", "--quiet",
             *(f"--podman-arg={a}" for a in pargv[1:])],
            env=env, capture_output=True, text=True, timeout=3600,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"value_bench: imagefit index build failed:\n{done.stderr}")
        order = [ln.split()[1] for ln in done.stdout.splitlines()[:-1]]
        print(f"index {ref}: {len(order)} builds, in index order: {', '.join(order)}")
        subprocess.run([str(bindir / "imagefit"), "install", "--prefix", str(work / "shim"), "--runtime", "podman"],
                       check=True, capture_output=True)  # fmt: skip
        site = work / "site.toml"
        site.write_text("")
        site.chmod(0o644)
        shim_env = {**env, "PATH": f"{work / 'shim' / 'bin'}:{env['PATH']}", "HOME": str(work),
                    "XDG_CACHE_HOME": str(work / "cache"), "IMAGEFIT_SITE_CONFIG": str(site)}  # fmt: skip
        shim = str(work / "shim" / "bin" / "podman")
        rows = []
        for name in KERNELS:
            tail = ["run", "--rm", "--network=none", "--tls-verify=false", ref, "kernels", name]
            if args.quick:
                tail.append(QUICK_REPS[name])
            stock_argv, shim_argv = [real, *pargv[1:], *tail], [shim, *pargv[1:], *tail]
            _run(stock_argv, env), _run(shim_argv, shim_env)  # the pulls, the decision: untimed
            stock, shimmed = [], []
            for _ in range(runs):
                stock.append(_run(stock_argv, env))
                shimmed.append(_run(shim_argv, shim_env))
            rows.append((name, stock, shimmed))
        print(f"{runs} runs per kernel and path; load average {load()} at the end")
        print(
            "kernel   stock podman ran       imagefit ran           speed-up  "
            "(of the median kernel times; the median of per-round ratios; median wall times of podman run)"
        )
        for name, stock, shimmed in rows:
            s_t, i_t = {r[0] for r in stock}, {r[0] for r in shimmed}
            s_ms, i_ms = (
                statistics.median(r[1] for r in stock),
                statistics.median(r[1] for r in shimmed),
            )
            s_wall, i_wall = (
                statistics.median(r[2] for r in stock),
                statistics.median(r[2] for r in shimmed),
            )
            # per round: each shim run against the stock run just before it (drifts cancel)
            per_round = statistics.median(a[1] / b[1] for a, b in zip(stock, shimmed, strict=True))
            print(f"{name:<8} {'/'.join(sorted(s_t)):<10} {s_ms:8.1f} ms  {'/'.join(sorted(i_t)):<10} {i_ms:8.1f} ms  "
                  f"{s_ms / i_ms:5.2f}x    (per round {per_round:.2f}x; wall {s_wall:.0f} ms vs {i_wall:.0f} ms)")  # fmt: skip
    finally:
        registry.stop()
        _podman_teardown(work / "p", pargv, env)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
