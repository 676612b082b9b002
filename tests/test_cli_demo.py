"""``imagefit demo``: the embedded example index resolved for this host and for
real cpuinfo dumps, through the installed command."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import archspec
import archspec.cpu
import pytest
from archspec.cpu import TARGETS

REPO = Path(__file__).resolve().parents[1]
DUMPS = Path(archspec.__file__).parent / "json" / "tests" / "targets"
DEMO = json.loads((REPO / "shim" / "data" / "demo-index.json").read_text())
TARGET_KEY = "org.supercontainers.hardware.cpu.target.microarch"
DEMO_TARGETS = [m["annotations"][TARGET_KEY] for m in DEMO["manifests"]]
DEMO_DIGESTS = {m["digest"] for m in DEMO["manifests"]}
#: one candidate row of the human table: [->] position build platform verdict score digest
ROW = re.compile(
    r"^\s*(?:->\s+)?(?P<pos>\d+)\s+(?P<build>\S+)\s+(?P<platform>\S+)\s+(?P<gpu>\S+)\s+(?P<mpi>\S+)\s+(?P<verdict>fits|no)\s"
)


def expected_for_this_host() -> str | None:
    """The demo build this host should get, from archspec alone: its own target
    if the demo has it, else the deepest demo target it runs (ties: earlier)."""
    host = archspec.cpu.host()
    if host.name in DEMO_TARGETS:
        return host.name
    runs = [t for t in DEMO_TARGETS if TARGETS[t] <= host]
    if not runs:
        return None
    return max(runs, key=lambda t: (len(TARGETS[t].ancestors), -DEMO_TARGETS.index(t)))


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("IMAGEFIT_FACTS", None)
    return subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, timeout=120)


def test_demo_on_this_host(imagefit_cmd):
    expected = expected_for_this_host()
    proc = run([*imagefit_cmd, "demo"])
    if expected is None:  # e.g. a RISC-V host: the demo has no build for it
        assert proc.returncode == 125
        assert any(line.startswith("refused:") for line in proc.stdout.splitlines())
        return
    assert proc.returncode == 0, proc.stderr
    selected = [line for line in proc.stdout.splitlines() if line.startswith("selected:")]
    assert len(selected) == 1, proc.stdout
    assert selected[0].split()[1] == expected
    digest = DEMO["manifests"][DEMO_TARGETS.index(expected)]["digest"]
    assert f"runs:   registry.example.org/apps/gromacs@{digest}" in proc.stdout
    assert archspec.cpu.host().name in proc.stdout  # the host line


def test_demo_json(imagefit_cmd):
    proc = run([*imagefit_cmd, "demo", "--json"])
    data = json.loads(proc.stdout)
    assert data["schema_version"] == 2
    assert data["outcome"] in ("selected", "refused", "passthrough")
    assert len(data["candidates"]) == len(DEMO["manifests"])
    assert [c["digest"] for c in data["candidates"]] == [m["digest"] for m in DEMO["manifests"]]
    assert [c["position"] for c in data["candidates"]] == list(range(len(DEMO["manifests"])))
    expected = expected_for_this_host()
    if expected is None:
        assert data["outcome"] == "refused" and data["chosen"] is None
        assert proc.returncode == 125
        return
    assert proc.returncode == 0, proc.stderr
    assert data["outcome"] == "selected"
    assert data["chosen"]["digest"] in DEMO_DIGESTS
    assert data["chosen"]["build"] == expected
    assert (
        data["chosen"]["rewritten"]
        == f"registry.example.org/apps/gromacs@{data['chosen']['digest']}"
    )
    for c in data["candidates"]:
        assert c["fits"] == (c["score"] is not None)
        assert all(set(check) == {"name", "passed", "detail"} for check in c["checks"])


@pytest.mark.parametrize(
    ("dump", "machine", "build"),
    [
        ("linux-rocky8.5-zen4", "x86_64", "zen4"),
        ("linux-rhel9-neoverse_v2", "aarch64", "neoverse_v2"),
        ("linux-ubuntu24.04-alderlake", "x86_64", "haswell"),
    ],
)
def test_demo_for_a_dump(imagefit_cmd, dump, machine, build):
    proc = run([*imagefit_cmd, "demo", "--cpuinfo", str(DUMPS / dump), "--machine", machine])
    assert proc.returncode == 0, proc.stderr
    selected = [line for line in proc.stdout.splitlines() if line.startswith("selected:")]
    assert len(selected) == 1 and selected[0].split()[1] == build
    proc = run(
        [*imagefit_cmd, "demo", "--json", "--cpuinfo", str(DUMPS / dump), "--machine", machine]
    )
    data = json.loads(proc.stdout)
    assert data["chosen"]["build"] == build
    assert data["chosen"]["digest"] == DEMO["manifests"][DEMO_TARGETS.index(build)]["digest"]


def test_demo_refused_on_power8(imagefit_cmd):
    dump = DUMPS / "linux-centos7-power8le"
    proc = run([*imagefit_cmd, "demo", "--cpuinfo", str(dump), "--machine", "ppc64le"])
    assert proc.returncode == 125
    lines = proc.stdout.splitlines()
    assert any(line.split()[:3] == ["#", "build", "platform"] for line in lines)
    rows = [m for m in map(ROW.match, lines) if m]
    assert [int(m["pos"]) for m in rows] == list(range(len(DEMO_TARGETS)))
    assert [m["build"] for m in rows] == DEMO_TARGETS
    assert {m["verdict"] for m in rows} == {"no"}
    assert any(line.startswith("refused:") for line in lines)
    assert "power8le" in proc.stdout
    assert "linux/ppc64le/power9 needs a newer CPU level" in proc.stdout
    assert "runs:" not in proc.stdout
    assert "Traceback" not in proc.stderr


def test_demo_refused_json_on_power8(imagefit_cmd):
    dump = DUMPS / "linux-centos7-power8le"
    proc = run([*imagefit_cmd, "demo", "--json", "--cpuinfo", str(dump), "--machine", "ppc64le"])
    assert proc.returncode == 125
    data = json.loads(proc.stdout)
    assert data["outcome"] == "refused" and data["chosen"] is None
    assert not any(c["fits"] for c in data["candidates"])


def test_demo_verbose_lists_every_check(imagefit_cmd):
    dump = DUMPS / "linux-rocky8.5-zen4"
    proc = run([*imagefit_cmd, "demo", "-v", "--cpuinfo", str(dump), "--machine", "x86_64"])
    assert proc.returncode == 0
    assert "pass platform: linux/amd64/v4 runs on linux/amd64/v4" in proc.stdout
    assert "pass cpu.target: needs CPU target zen4; host zen4 runs it" in proc.stdout


def test_demo_bad_cpuinfo(imagefit_cmd, tmp_path):
    proc = run([*imagefit_cmd, "demo", "--cpuinfo", str(tmp_path / "nope"), "--machine", "x86_64"])
    assert proc.returncode == 125
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("imagefit: ")
