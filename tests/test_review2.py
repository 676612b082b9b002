"""Review findings (adversarial, second pass): ``imagefit index build`` input
files, through the installed ``imagefit`` (``--dry-run``: no podman, no
registry needed to reach the refusal). Each test is one finding."""

from __future__ import annotations

import os
import resource
import subprocess

import pytest

ARGS = ["index", "build", "localhost:5000/a/b:1", ".", "--compiler", "gcc@12.2", "--dry-run"]


def _limit_memory() -> None:  # pragma: no cover  (runs in the child)
    # the old code read a device to its end: keep that from taking the machine
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def _run(imagefit_cmd, tmp_path, *args):
    (tmp_path / "Containerfile").write_text("FROM scratch\nARG IMAGEFIT_TARGET\n")
    try:
        return subprocess.run([*imagefit_cmd, *ARGS, *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=30, stdin=subprocess.DEVNULL,
                              preexec_fn=_limit_memory)  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail(f"imagefit {' '.join(args)} hung")


def test_a_targets_file_that_is_a_fifo_is_one_line_not_a_hang(imagefit_cmd, tmp_path):
    fifo = tmp_path / "targets.txt"
    os.mkfifo(fifo)
    done = _run(imagefit_cmd, tmp_path, "--targets", str(fifo))
    assert done.returncode == 125, done.stderr
    assert done.stderr.splitlines() == [f"imagefit: cannot read {fifo}: not a regular file"]


def test_a_targets_file_that_is_a_device_is_one_line_not_read_to_its_end(imagefit_cmd, tmp_path):
    done = _run(imagefit_cmd, tmp_path, "--targets", "/dev/zero")
    assert done.returncode == 125, done.stderr
    assert done.stderr.splitlines() == ["imagefit: cannot read /dev/zero: not a regular file"]
