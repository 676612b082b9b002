"""Shared fixtures: the real registry and podman (tests/support), the installed
shim, and archspec's real /proc/cpuinfo dumps."""

from __future__ import annotations

import filecmp
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.support.fixtures import podman_env, registry  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _hypothesis_profiles() -> None:
    """``IMAGEFIT_HYPOTHESIS=ci`` (.ci/run sets it): every property test draws
    the same examples on every run (derandomize), so CI is red only for a
    change, never for a new draw or a slow example (no deadline: a loaded
    2-CPU machine stalls); a developer's run (the default profile)
    keeps exploring, and what it finds becomes an explicit test."""
    from hypothesis import settings

    settings.register_profile("ci", derandomize=True, database=None, print_blob=True, deadline=None)
    profile = os.environ.get("IMAGEFIT_HYPOTHESIS")
    if profile:
        settings.load_profile(profile)


_hypothesis_profiles()


def pytest_sessionstart(session):
    """Fail fast when the installed imagefit (what the shim and the installed
    commands run) is not this checkout. The installed copy is looked up in
    the interpreter's site-packages, not through the import system, which finds
    the checkout first."""
    import sysconfig

    site = Path(sysconfig.get_paths()["purelib"])
    for package in ("shim", "hostfacts", "scoring"):
        installed = site / package
        if not installed.is_dir():
            continue  # an editable install: the checkout itself
        diff = filecmp.dircmp(REPO / package, installed, ignore=["__pycache__"])
        stale = (
            diff.diff_files
            or diff.left_only
            or any(d.diff_files or d.left_only for d in diff.subdirs.values())
        )
        if stale:
            pytest.exit(
                f"installed {package} ({installed}) differs from the checkout: rerun tests/provision.sh",
                returncode=3,
            )


@pytest.fixture(scope="session")
def imagefit_cmd() -> list[str]:
    """argv prefix of the installed ``imagefit`` command."""
    exe = BIN / "imagefit"
    if not exe.exists():
        pytest.fail(f"{exe} missing: install imagefit (tests/provision.sh)")
    return [str(exe)]


@pytest.fixture(scope="session")
def shim_bin(imagefit_cmd) -> Path:
    """A world-readable directory holding the shim linked as ``podman`` by
    ``imagefit install --prefix``, as a user would install it."""
    prefix = Path(tempfile.mkdtemp(prefix="imagefit-prefix-"))
    prefix.chmod(0o755)
    subprocess.run(
        [*imagefit_cmd, "install", "--prefix", str(prefix), "--runtime", "podman"],
        check=True,
        capture_output=True,
        text=True,
    )
    return prefix / "bin"


@pytest.fixture(scope="session")
def cpuinfo_dir() -> Path:
    """archspec's real /proc/cpuinfo dumps (shipped in the archspec wheel)."""
    import archspec

    path = Path(archspec.__file__).parent / "json" / "tests" / "targets"
    assert path.is_dir(), path
    return path


def world_readable_tmp(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(path, 0o755)
    return path
