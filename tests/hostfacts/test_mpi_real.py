"""The MPI probe on real MPI libraries: Debian's MPICH and Open MPI
(installed by tests/provision.sh), identified by calling them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from hostfacts.context import ProbeContext
from hostfacts.probes import mpi

LIBDIR = (
    Path("/usr/lib/x86_64-linux-gnu")
    if Path("/usr/lib/x86_64-linux-gnu").is_dir()
    else Path("/usr/lib")
)


def _upstream(package: str) -> str:
    done = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.fail(f"{package} is not installed: run tests/provision.sh")
    return done.stdout.split("-")[0].split(":")[-1]  # 4.0.2-3 -> 4.0.2


@pytest.mark.parametrize(
    ("package", "library", "implementation", "abi"),
    [
        ("libmpich12", "libmpich.so.12", "mpich", "mpich"),
        ("libopenmpi3", "libmpi.so.40", "openmpi", "openmpi"),
    ],
)
def test_debian_mpi_libraries_are_identified_by_calling_them(package, library, implementation, abi):
    path = LIBDIR / library
    env = {"PATH": os.environ["PATH"], mpi.LIBRARY_ENV: str(path)}
    facts = mpi.probe(ProbeContext(environ=env, timeout=10))
    assert facts.probe.status == "ok", facts.probe.reason
    assert (facts.implementation, facts.abi) == (implementation, abi)
    assert facts.version == _upstream(package)
    assert Path(facts.library).resolve() == path.resolve()
    assert any(
        e.kind == "call" and "MPI_Get_library_version" in e.source for e in facts.probe.evidence
    )


def test_the_mpi_the_environment_resolves_is_found_without_help():
    facts = mpi.probe(ProbeContext(environ={"PATH": os.environ["PATH"]}, timeout=10))
    assert facts.probe.status == "ok", facts.probe.reason
    assert facts.implementation in ("mpich", "openmpi")
