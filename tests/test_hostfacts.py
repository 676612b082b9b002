"""hostfacts: archspec's real /proc/cpuinfo dumps, the live probe, the facts
JSON round trip and its errors, and the ``imagefit facts`` command."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import archspec
import archspec.cpu
import pytest
from archspec.cpu import TARGETS

import hostfacts
from hostfacts import HostFacts, HostFactsError

DUMPS = Path(archspec.__file__).parent / "json" / "tests" / "targets"


def _linux_dumps() -> list[str]:
    """Every Linux cpuinfo dump archspec ships (named linux-<os>-<target>);
    darwin-* are sysctl dumps, windows-* cpuid tables, bgq-* a BlueGene/Q."""
    return sorted(p.name for p in DUMPS.iterdir() if p.name.startswith("linux-"))


def _expected(name: str) -> tuple[str, str]:
    """(target, machine) for a dump, as archspec's own tests/test_cpu.py does:
    the machine is the family of the target in the file name (so
    linux-rhel8-power9 replays as big-endian ppc64 and gives power9)."""
    target = name.split("-", 2)[2]
    return target, TARGETS[target].family.name


LINUX_DUMPS = _linux_dumps()


def test_enough_dumps_are_shipped():
    assert len(LINUX_DUMPS) >= 40, LINUX_DUMPS


@pytest.mark.parametrize("name", LINUX_DUMPS)
def test_real_dump_detects_as_named(name):
    target, machine = _expected(name)
    facts = hostfacts.facts_from_cpuinfo(DUMPS / name, machine)
    cpu = facts.cpu
    uarch = TARGETS[target]
    assert cpu.target == target
    assert cpu.architecture == machine
    assert cpu.generic == uarch.generic.name
    assert cpu.vendor == uarch.vendor
    assert set(cpu.ancestors) == {a.name for a in uarch.ancestors}
    assert len(cpu.ancestors) == len(uarch.ancestors)
    depths = [len(TARGETS[a].ancestors) for a in cpu.ancestors]
    assert depths == sorted(depths, reverse=True), "ancestors must be deepest first"
    assert list(cpu.flags) == sorted(set(cpu.flags))
    if machine in ("x86_64", "aarch64"):
        assert cpu.flags, "x86_64/aarch64 dumps carry flags/Features"
    assert cpu.source == str(DUMPS / name)
    assert facts.hostname == ""
    assert cpu.can_run(target) and all(cpu.can_run(a) for a in cpu.ancestors)


@pytest.mark.parametrize(
    ("name", "machine", "target", "generic"),
    [
        ("linux-rhel8-power9", "ppc64le", "power9le", "ppc64le"),
        ("linux-rhel8-power9", "ppc64", "power9", "ppc64"),
        ("linux-unknown-power10", "ppc64le", "power10le", "ppc64le"),
        ("linux-centos7-power8le", "ppc64le", "power8le", "ppc64le"),
    ],
)
def test_power_endianness_follows_machine(name, machine, target, generic):
    cpu = hostfacts.facts_from_cpuinfo(DUMPS / name, machine).cpu
    assert (cpu.target, cpu.generic) == (target, generic)


def test_replay_does_not_disturb_archspec_host_cache():
    before = archspec.cpu.host()
    hostfacts.facts_from_cpuinfo(DUMPS / "linux-rhel9-neoverse_v2", "aarch64")
    assert archspec.cpu.host() == before
    from archspec.cpu import detect

    assert not hasattr(detect, "open"), "the replay must remove its open() shadow"


def test_live_probe_equals_archspec_host():
    host = archspec.cpu.host()
    facts = hostfacts.probe()
    assert facts.cpu.target == host.name
    assert facts.cpu.generic == host.generic.name
    assert set(facts.cpu.ancestors) == {a.name for a in host.ancestors}
    assert facts.cpu.source == "/proc/cpuinfo"


def test_host_facts_without_override_probes():
    assert hostfacts.host_facts(environ={}).cpu.target == archspec.cpu.host().name


# -- JSON round trip -----------------------------------------------------------


@pytest.fixture(scope="module")
def zen4() -> HostFacts:
    return hostfacts.facts_from_cpuinfo(DUMPS / "linux-rocky8.5-zen4", "x86_64")


def test_json_round_trip(zen4):
    assert HostFacts.model_validate_json(zen4.model_dump_json()) == zen4
    data = json.loads(zen4.model_dump_json())
    assert data["schema_version"] == 1
    assert data["cpu"]["target"] == "zen4"


def test_load_facts_reads_a_written_file(tmp_path, zen4):
    path = tmp_path / "zen4.json"
    path.write_text(zen4.model_dump_json(indent=2))
    assert hostfacts.load_facts(path) == zen4
    assert hostfacts.load_facts(str(path)) == zen4


@pytest.mark.skipif(os.geteuid() != 0, reason="files of another uid")
def test_a_facts_file_of_another_user_or_writable_by_others_is_refused(tmp_path, zen4):
    """Root never takes facts another user wrote (IMAGEFIT_FACTS under sudo -E):
    owner and mode are checked on the descriptor it reads, links followed."""
    path = tmp_path / "zen4.json"
    path.write_text(zen4.model_dump_json())
    os.chown(path, 1234, 1234)
    link = tmp_path / "link.json"
    link.symlink_to(path)
    for name in (path, link):
        with pytest.raises(HostFactsError, match="owned by uid 1234, not root: not used"):
            hostfacts.load_facts(name)
    os.chown(path, 0, 0)
    path.chmod(0o664)
    with pytest.raises(HostFactsError, match="writable by group or others: not used"):
        hostfacts.host_facts({"IMAGEFIT_FACTS": str(path)})
    path.chmod(0o644)
    assert hostfacts.load_facts(link) == zen4


def test_imagefit_facts_env_overrides_the_probe(tmp_path, zen4):
    path = tmp_path / "zen4.json"
    path.write_text(zen4.model_dump_json())
    assert hostfacts.host_facts(environ={hostfacts.FACTS_ENV: str(path)}) == zen4
    assert hostfacts.FACTS_ENV == "IMAGEFIT_FACTS"


def _valid(zen4) -> dict:
    return json.loads(zen4.model_dump_json())


def _bad_files(zen4) -> dict[str, str | None]:
    no_cpu = _valid(zen4)
    del no_cpu["cpu"]
    extra = _valid(zen4)
    extra["gpu_count"] = 4
    extra_cpu = _valid(zen4)
    extra_cpu["cpu"]["frequency"] = "3GHz"
    v2 = _valid(zen4)
    v2["schema_version"] = 2
    no_version = _valid(zen4)
    del no_version["schema_version"]
    return {
        "missing": None,
        "invalid-json": "{not json",
        "empty": "",
        "list": "[1, 2]",
        "not-utf8": b"\xff\xfe{}".decode("latin-1"),
        "schema-v2": json.dumps(v2),
        "no-schema-version": json.dumps(no_version),
        "no-cpu": json.dumps(no_cpu),
        "extra-field": json.dumps(extra),
        "extra-cpu-field": json.dumps(extra_cpu),
    }


BAD = [
    ("missing", "cannot read"),
    ("invalid-json", "not valid JSON"),
    ("empty", "not valid JSON"),
    ("list", "JSON object"),
    ("not-utf8", "not valid JSON"),
    ("schema-v2", "schema_version 2"),
    ("no-schema-version", "schema_version None"),
    ("no-cpu", "cpu"),
    ("extra-field", "gpu_count"),
    ("extra-cpu-field", "cpu.frequency"),
]


@pytest.mark.parametrize(("case", "needle"), BAD)
def test_bad_facts_file_is_one_line_error(tmp_path, zen4, case, needle):
    content = _bad_files(zen4)[case]
    path = tmp_path / f"{case}.json"
    if content is not None:
        path.write_bytes(content.encode("latin-1"))
    with pytest.raises(HostFactsError) as info:
        hostfacts.load_facts(path)
    message = str(info.value)
    assert "\n" not in message
    assert needle in message
    assert str(path) in message
    with pytest.raises(HostFactsError):
        hostfacts.host_facts(environ={"IMAGEFIT_FACTS": str(path)})


def test_host_facts_error_is_a_value_error():
    assert issubclass(HostFactsError, ValueError)


def test_cpuinfo_missing_file(tmp_path):
    with pytest.raises(HostFactsError) as info:
        hostfacts.facts_from_cpuinfo(tmp_path / "nope", "x86_64")
    assert "\n" not in str(info.value) and "nope" in str(info.value)


def test_cpuinfo_unknown_machine():
    with pytest.raises(HostFactsError) as info:
        hostfacts.facts_from_cpuinfo(DUMPS / "linux-rocky8.5-zen4", "sparc64")
    assert "\n" not in str(info.value) and "sparc64" in str(info.value)


# -- imagefit facts ------------------------------------------------------------


def _run(cmd, env_extra=None):
    env = dict(os.environ)
    env.pop("IMAGEFIT_FACTS", None)
    env.update(env_extra or {})
    return subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, timeout=120)


def test_cli_facts_json_from_dump(imagefit_cmd):
    dump = DUMPS / "linux-rhel9-neoverse_v2"
    proc = _run([*imagefit_cmd, "facts", "--json", "--cpuinfo", str(dump), "--machine", "aarch64"])
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["cpu"]["target"] == "neoverse_v2"
    assert data["cpu"]["generic"] == "armv9.0a"
    assert data["cpu"]["architecture"] == "aarch64"
    assert HostFacts.model_validate(data).cpu.target == "neoverse_v2"


def test_cli_facts_human(imagefit_cmd):
    proc = _run([*imagefit_cmd, "facts"])
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    target_lines = [line for line in lines if line.startswith("cpu target:")]
    assert len(target_lines) == 1
    assert target_lines[0].split(":", 1)[1].strip() == archspec.cpu.host().name


def test_cli_facts_reads_imagefit_facts(imagefit_cmd, tmp_path, zen4):
    path = tmp_path / "zen4.json"
    path.write_text(zen4.model_dump_json())
    proc = _run([*imagefit_cmd, "facts", "--json"], {"IMAGEFIT_FACTS": str(path)})
    assert proc.returncode == 0, proc.stderr
    assert HostFacts.model_validate_json(proc.stdout) == zen4


@pytest.mark.parametrize(
    "case", ["missing", "invalid-json", "list", "schema-v2", "no-cpu", "extra-field"]
)
def test_cli_facts_bad_imagefit_facts(imagefit_cmd, tmp_path, zen4, case):
    content = _bad_files(zen4)[case]
    path = tmp_path / f"{case}.json"
    if content is not None:
        path.write_text(content)
    proc = _run([*imagefit_cmd, "facts"], {"IMAGEFIT_FACTS": str(path)})
    assert proc.returncode == 125
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("imagefit: ")
    assert "Traceback" not in proc.stderr


def test_cli_facts_unknown_machine(imagefit_cmd):
    dump = DUMPS / "linux-rocky8.5-zen4"
    proc = _run([*imagefit_cmd, "facts", "--cpuinfo", str(dump), "--machine", "sparc64"])
    assert proc.returncode == 125
    assert len(proc.stderr.splitlines()) == 1 and "sparc64" in proc.stderr


def test_cli_machine_needs_cpuinfo(imagefit_cmd):
    proc = _run([*imagefit_cmd, "facts", "--machine", "aarch64"])
    assert proc.returncode == 2
    assert "--machine needs --cpuinfo" in proc.stderr
