"""The benchmarks run (quick mode): they prove they work, not how fast."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_podman_run_benchmark_quick_mode():
    done = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.podman_run", "--runs", "2"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("podman run --rm IMG id") and "ratio" in line for line in lines), (
        done.stdout
    )
    assert any(line.startswith("podman version (pass-through)") for line in lines), done.stdout


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
