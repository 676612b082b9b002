"""Author tools' input files that are not regular files (FIFOs, devices):
``imagefit index build --targets``, ``index create --from``, ``attach
--nfd``, through the installed ``imagefit`` (no podman, no registry needed
to reach the refusal)."""

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


@pytest.mark.parametrize(
    "args",
    [
        ["index", "create", "localhost:5000/a/b:1", "--dry-run", "--from", "SPEC"],
        ["attach", "localhost:5000/a/b:1", "--nfd", "SPEC"],
    ],
    ids=["index-create-from", "attach-nfd"],
)
@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_an_author_spec_file_that_is_not_a_regular_file_is_one_line(
    imagefit_cmd, tmp_path, args, kind
):
    """``index create --from`` and ``attach --nfd`` read their spec as the
    targets file is read (shim.untrusted.read_bounded): a FIFO does not hang
    them, /dev/zero is not read to its end."""
    spec = tmp_path / "spec.yaml"
    if kind == "fifo":
        os.mkfifo(spec)
    else:
        spec = "/dev/zero"
    argv = [*imagefit_cmd, *(str(spec) if a == "SPEC" else a for a in args)]
    try:
        done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL, preexec_fn=_limit_memory)  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' '.join(args)} hung")
    assert done.returncode == 125, done.stderr
    assert done.stderr.splitlines() == [f"imagefit: cannot read {spec}: not a regular file"]


def test_a_hash_inside_a_targets_value_is_kept(imagefit_cmd, tmp_path):
    """In a --targets file a comment starts a line or follows whitespace; a
    ``#`` inside a value is the value's (it was silently cut: ``a#b`` -> ``a``)."""
    targets = tmp_path / "targets.txt"
    targets.write_text("# the builds\nx86_64   # generic first\nx86_64_v3,org.example.note=a#b\n")
    done = _run(imagefit_cmd, tmp_path, "--targets", str(targets))
    assert done.returncode == 0, done.stderr
    assert "org.example.note=a#b" in done.stdout or "'org.example.note': 'a#b'" in done.stdout, (
        done.stdout
    )


def test_a_build_file_that_is_a_fifo_is_named_as_such(imagefit_cmd, tmp_path):
    """``-f FIFO``: one line saying what is wrong with it (it said ``no FIFO:
    name the build file with -f FILE``), no hang."""
    fifo = tmp_path / "Containerfile.fifo"
    os.mkfifo(fifo)
    done = _run(imagefit_cmd, tmp_path, "--target", "x86_64", "-f", str(fifo))
    assert done.returncode == 125, done.stderr
    assert done.stderr.splitlines() == [f"imagefit: cannot read {fifo}: not a regular file"]
