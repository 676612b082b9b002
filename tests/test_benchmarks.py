"""The benchmarks run (quick mode): they prove they work, not how fast."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_shim_benchmarks_quick_mode():
    done = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.shim_bench", "--runs", "2", "--herd", "8"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for prefix in ("0. interpreter floor: ", "1. hot path", "2. pass-through", "3. cold resolution, annotations only",
                   "3. cold resolution, NFD artifacts", "4. herd of 8 shims", "5. peak RSS"):  # fmt: skip
        assert any(line.startswith(prefix) for line in out.splitlines()), (prefix, out)
    assert "1 index resolution(s), 1 distinct choice(s)" in out
    floor = next(line for line in out.splitlines() if line.startswith("0. interpreter floor: "))
    assert (
        floor.split(": ", 1)[1].startswith(("/", "python")) and " -IS -c pass median " in floor
    ), floor


def test_scoring_benchmark_quick_mode():
    done = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.scoring_bench",
         "--candidates", "50", "--rules", "5", "--runs", "2"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("select median") and "per candidate" in line for line in lines), (
        done.stdout
    )
    assert any(line.startswith("hostfacts.nfd.features median") for line in lines), done.stdout


def test_cluster_benchmark_quick_mode():
    done = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.cluster_bench", "--nodes", "6"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("6 nodes cold:"))
    assert "1 index resolution(s)" in line and "0 failed" in line, done.stdout
    assert "haswell: 1, sapphirerapids: 1, zen4: 1" in line, line


def test_value_benchmark_quick_mode():
    """The kernels built per target by ``imagefit index build``, run through
    stock podman (the first build, generic) and through the shim (the host's
    own target: the best of x86_64, x86_64_v3 and the host's target)."""
    import json

    facts = subprocess.run([str(Path(sys.executable).parent / "imagefit"), "facts", "--json"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    host = json.loads(facts.stdout)["cpu"]["target"]
    done = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.value_bench", "--quick"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("value_bench ") and f"archspec target {host} " in lines[0], lines[0]
    assert "load average" in lines[0] and any(
        "load average" in ln and "at the end" in ln for ln in lines
    )
    if any(
        ln.startswith(f"skipped {host}: ") for ln in lines
    ):  # this gcc cannot build the host's target
        cpu = json.loads(facts.stdout)["cpu"]
        host = "x86_64_v3" if "x86_64_v3" in [cpu["target"], *cpu["ancestors"]] else "x86_64"
    order = next(ln for ln in lines if ln.startswith("index "))
    assert order.endswith(
        f"in index order: {', '.join(dict.fromkeys(['x86_64', 'x86_64_v3', host]))}"
    ), order
    for kernel in ("triad", "dgemm", "stencil"):
        row = next(ln for ln in lines if ln.startswith(kernel + " ")).split()
        # stock podman: the first build; the shim: the host's own target
        assert row[1] == "x86_64" and row[4] == host, row
        assert row[7].endswith("x") and float(row[7][:-1]) > 0, row
