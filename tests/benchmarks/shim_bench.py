"""Benchmarks of the shim in front of podman, each with the direct baseline
measured in the same run (DESIGN: speed is measured, never asserted).

    /opt/imagefit-venv/bin/python -m tests.benchmarks.shim_bench [--runs N] [--herd N]

0. the interpreter floor: ``PYTHON -I -S -c pass`` with the interpreter and
   flags of the shim's launcher (read from its shebang), timed in the same
   rounds as 1 and 2: what any Python shim costs at least; then the shim
   alone (its runtime ``/bin/true``: a hit and ``ps``) in rounds with the
   floor, and what it adds above the floor;
1. hot path: `podman run --rm IMG id` through the shim (decision cache hit)
   vs podman directly (in the same environment) running the very argv the
   shim execs (the digest, and the login-container recipe: the same
   container), paired runs, median
   ratio (target <= 1.05): the shim's own cost. Beside it, in the same
   rounds, plain `podman run --rm IMG id` (the tag, no login recipe): what a
   user sees, the recipe's container-side work (a login shell, a tmpfs HOME)
   included;
2. pass-through: `podman ps` through the shim vs directly (target: added
   median <= 8 ms);
3. cold resolution (decision cache off) against the local registry, for an
   index with annotations only and one whose 12 builds carry NFD artifacts:
   registry requests made (from the registry's access log) and wall time added;
4. herd: N concurrent shims (default 64) with an empty shared cache: registry
   requests, and whether all chose the same digest (target: one resolution);
5. peak RSS of the shim on the hot path (target <= 30 MiB), measured as the
   resident set of the shim process just before it execs (IMAGEFIT_DRY_RUN),
   and podman's own for scale.

Needs root and tests/provision.sh. Starts its own registry on loopback.
"""

from __future__ import annotations

import argparse
import json
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

TARGET = "org.supercontainers.hardware.cpu.target.microarch"
NAMES = ["x86_64", "x86_64_v2", "x86_64_v3", "x86_64_v4", "haswell", "broadwell", "skylake_avx512", "icelake",
         "zen2", "zen3", "zen4", "zen5"]  # fmt: skip
NFD_SPEC = """version: v1alpha1
compatibilities:
- tag: {name}
  weight: 1
  rules:
  - name: cpu
    matchFeatures:
    - feature: archspec.compatible
      matchExpressions: {{{name}: {{op: Exists}}}}
    - feature: kernel.version
      matchExpressions: {{full: {{op: Ge, value: ["3.10"], type: version}}}}
"""


def _builds(annotated: bool) -> list[dict]:
    return [{"name": n, "platform": {"architecture": "amd64", "os": "linux"},
             "annotations": {TARGET: n} if annotated else None} for n in NAMES]  # fmt: skip


def _timed(argv, env) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"benchmark command failed: {argv}\n{done.stderr}")
    return elapsed


def _paired(
    label, direct, shimmed, env, shim_env, runs, floor=None, plain=None
) -> tuple[float, float]:
    """Median of `direct` and of `shimmed`, run alternately `runs` times;
    with `floor` (a command), it runs in each round too (its times: ``FLOOR``),
    and so does `plain` (a command; its median printed beside)."""
    d, s, u = [], [], []
    for _ in range(runs):
        d.append(_timed(direct, env))
        s.append(_timed(shimmed, shim_env))
        if plain:
            u.append(_timed(plain, env))
        if floor:
            FLOOR.append(_timed(floor, env))
    md, ms = statistics.median(d), statistics.median(s)
    # per round: the shim's run against the direct run just before it (drifts of a shared machine cancel)
    added = statistics.median(b - a for a, b in zip(d, s, strict=True))
    ratio = statistics.median(b / a for a, b in zip(d, s, strict=True))
    print(f"{label}: direct median {md * 1000:.1f} ms, shim median {ms * 1000:.1f} ms, "
          f"added {1000 * (ms - md):+.1f} ms, ratio {ms / md:.3f}; per round: median added "
          f"{1000 * added:+.1f} ms, median ratio {ratio:.3f} ({runs} paired runs)")  # fmt: skip
    if plain:
        mu = statistics.median(u)
        print(f"   beside it, plain podman run --rm IMG id (tag, no login recipe): median {mu * 1000:.1f} ms; "
              f"through the shim {1000 * (ms - mu):+.1f} ms, ratio {ms / mu:.3f}")  # fmt: skip
    return md, ms


#: times of the interpreter floor, from every round of 1 and 2
FLOOR: list[float] = []


def launcher_floor(link: str) -> list[str]:
    """``INTERPRETER FLAGS -c pass`` for the launcher `link` leads to (its
    shebang), or the plain ``python -I -S -c pass`` of this interpreter."""
    with open(os.path.realpath(link), encoding="utf-8", errors="replace") as fh:
        first = fh.readline().rstrip("\n")
    if first.startswith("#!") and first.endswith(" -IS"):
        return [first[2:-4], "-IS", "-c", "pass"]
    return [sys.executable, "-I", "-S", "-c", "pass"]


def _peak_rss_kib(argv, env) -> int:
    """Peak RSS (KiB) of one command, by GNU time (``%M``): the command's own
    process, not this one's fork (a child's ru_maxrss counts the forked copy)."""
    done = subprocess.run(["/usr/bin/time", "-f", "%M", *argv], env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"benchmark command failed: {argv}\n{done.stderr}")
    return int(done.stderr.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", type=int, default=15, help="paired runs per measurement (default 15)"
    )
    parser.add_argument(
        "--herd", type=int, default=64, help="concurrent shims in the herd (default 64)"
    )
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="imagefit-bench-"))
    work.chmod(0o755)
    registry = LocalRegistry(work / "registry")
    pargv, env = _podman_setup(work / "podman")
    try:
        annotated = oci.build_and_push(
            registry.host, "bench/annotated", "1", _builds(True), layout_dir=work / "l1"
        )
        nfd = oci.build_and_push(
            registry.host, "bench/nfd", "1", _builds(False), layout_dir=work / "l2"
        )
        for name in NAMES:
            subject = oci.subject_descriptor(nfd, name)
            oci.push_artifact(registry.host, "bench/nfd", subject, NFD_SPEC.format(name=name).encode(),
                              created="2026-12-01T00:00:00Z")  # fmt: skip
        bindir = Path(sys.executable).parent
        subprocess.run([str(bindir / "imagefit"), "install", "--prefix", str(work / "shim"), "--runtime", "podman"],
                       check=True, capture_output=True)  # fmt: skip
        facts = work / "facts.json"
        facts.write_text(subprocess.run([str(bindir / "imagefit"), "facts", "--json"], check=True,
                                        capture_output=True, text=True).stdout)  # fmt: skip
        site = work / "site.toml"
        site.write_text("")
        site.chmod(0o644)
        shim = str(work / "shim" / "bin" / "podman")
        real = shutil.which("podman")
        shim_env = {**env, "PATH": f"{work / 'shim' / 'bin'}:{env['PATH']}", "HOME": str(work),
                    "XDG_CACHE_HOME": str(work / "cache"), "IMAGEFIT_SITE_CONFIG": str(site)}  # fmt: skip
        run = ["run", "--rm", "--network=none", "--tls-verify=false", annotated.ref, "id"]
        _timed(
            [real, *pargv[1:], *run], env
        )  # pre-pull what each path runs: no image pull is timed
        _timed([shim, *pargv[1:], *run], shim_env)  # ... and fills the decision cache
        print(f"podman {subprocess.run([real, '--version'], capture_output=True, text=True).stdout.split()[-1]}, "
              f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")  # fmt: skip
        floor = launcher_floor(shim)
        # 1. hot path: against the argv the shim execs (the same container), and the plain command beside
        dry = subprocess.run([shim, *pargv[1:], *run], env={**shim_env, "IMAGEFIT_DRY_RUN": "1"},
                             capture_output=True, text=True, check=True)  # fmt: skip
        same = json.loads(dry.stdout.splitlines()[-1])
        if same[0] != real or same == [real, *pargv[1:], *run]:
            raise SystemExit(f"the shim did not resolve the benchmark image: {same}")
        run_direct, _ = _paired("1. hot path: podman run --rm IMG id (decision cache hit)",
                same, [shim, *pargv[1:], *run], shim_env, shim_env, args.runs, floor, [real, *pargv[1:], *run])  # fmt: skip
        # 2. pass-through
        ps_direct, _ = _paired("2. pass-through: podman ps", [real, *pargv[1:], "ps"], [shim, *pargv[1:], "ps"], shim_env, shim_env,
                args.runs, floor)  # fmt: skip
        # 0. the floor, timed in the rounds of 1 and 2; then the shim alone (its runtime /bin/true)
        # in rounds of its own with the floor again: what the shim adds above the interpreter
        own = {**shim_env, "IMAGEFIT_PODMAN": "/bin/true"}
        alone: dict[str, list[float]] = {"floor": [], "hit": [], "ps": []}
        for _ in range(args.runs):
            alone["floor"].append(_timed(floor, env))
            alone["hit"].append(_timed([shim, *pargv[1:], *run], own))
            alone["ps"].append(_timed([shim, *pargv[1:], "ps"], own))
        f0, hit0, ps0 = (statistics.median(alone[k]) * 1000 for k in ("floor", "hit", "ps"))
        print(f"0. interpreter floor: {' '.join(floor[:2])} -c pass median {statistics.median(FLOOR) * 1000:.1f} ms "
              f"({len(FLOOR)} runs, in the rounds of 1 and 2); the shim alone, exec of /bin/true, "
              f"{args.runs} rounds with the floor ({f0:.1f} ms): hit {hit0:.1f} ms ({hit0 - f0:+.1f}), "
              f"ps {ps0:.1f} ms ({ps0 - f0:+.1f})")  # fmt: skip
        # the best any launcher in Python can do here: the floor and nothing else
        fl = statistics.median(FLOOR)
        print(f"   at best, a shim that costs only the floor: run ratio {(run_direct + fl) / run_direct:.3f} "
              f"(target <= 1.05), ps added {fl * 1000:+.1f} ms (target <= +8 ms)")  # fmt: skip
        # 3. cold resolution (cache off), dry run so podman's own time is not in it
        cold_env = {**shim_env, "IMAGEFIT_DRY_RUN": "1"}
        site.write_text("decision_cache_ttl = 0\n")
        for label, pushed in (("annotations only", annotated), ("NFD artifacts, 12 builds", nfd)):
            dry = [shim, "run", "--rm", "--tls-verify=false", pushed.ref, "id"]
            passthrough = [
                shim,
                "run",
                "--rm",
                "--tls-verify=false",
                "busybox",
                "id",
            ]  # a short name: not resolved
            mark = registry.log_offset()
            _timed(dry, cold_env)
            requests = len(registry.requests(mark))
            cold = statistics.median(_timed(dry, cold_env) for _ in range(max(3, args.runs // 3)))
            base = statistics.median(
                _timed(passthrough, cold_env) for _ in range(max(3, args.runs // 3))
            )
            print(f"3. cold resolution, {label}: {requests} registry requests, wall {cold * 1000:.1f} ms "
                  f"(shim without resolution {base * 1000:.1f} ms: added {1000 * (cold - base):.1f} ms)")  # fmt: skip
        # 4. herd
        shared = work / "shared-cache"
        site.write_text(f'decision_cache_dir = "{shared}"\n')
        herd_env = {**shim_env, "IMAGEFIT_DRY_RUN": "1"}
        mark = registry.log_offset()
        start = time.perf_counter()
        procs = [subprocess.Popen([shim, "run", "--rm", "--tls-verify=false", nfd.ref, "id"], env=herd_env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
                 for _ in range(args.herd)]  # fmt: skip
        outs = [p.communicate(timeout=300)[0] for p in procs]
        wall = time.perf_counter() - start
        chosen = {json.loads(o.splitlines()[-1])[-2] for o in outs if o.strip()}
        reqs = registry.requests(mark)
        index_gets = [r for r in reqs if r[0] == "GET" and r[1].endswith("/manifests/1")]
        print(f"4. herd of {args.herd} shims, empty shared cache: {len(reqs)} registry requests, "
              f"{len(index_gets)} index resolution(s), {len(chosen)} distinct choice(s), wall {wall:.2f} s")  # fmt: skip
        # 5. peak RSS on the hot path (a cache hit, dry run: the shim's own process)
        site.write_text("")
        hot = {**shim_env, "IMAGEFIT_DRY_RUN": "1"}
        rss = _peak_rss_kib([shim, *pargv[1:], *run], hot)
        podman_rss = _peak_rss_kib([real, *pargv[1:], "ps"], env)
        print(
            f"5. peak RSS of the shim on the hot path: {rss / 1024:.1f} MiB (podman ps: {podman_rss / 1024:.1f} MiB)"
        )
    finally:
        registry.stop()
        _podman_teardown(work / "podman", pargv, env)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
