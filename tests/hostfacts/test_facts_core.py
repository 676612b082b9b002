"""hostfacts core: every archspec dump, masked flags, collect, the per-boot
cache, site target overrides, the NFD projection and `imagefit facts`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import types
from pathlib import Path

import archspec
import pytest
from archspec.cpu import TARGETS

from hostfacts import HostFactsError, cache, collect, facts_from_cpuinfo, host_facts, nfd
from hostfacts.context import ProbeContext
from hostfacts.cpu import cpu_facts_from_text, with_target
from hostfacts.model import HostFacts, Probe, SystemFacts

DUMPS = Path(archspec.__file__).parent / "json" / "tests" / "targets"
ALL = sorted(p.name for p in DUMPS.iterdir() if p.name.startswith(("linux-", "darwin-")))
IMAGEFIT = [str(Path(sys.executable).parent / "imagefit")]


def _machine(name: str) -> str | None:
    if name.startswith("darwin-"):
        return None  # read from the sysctl dump
    return TARGETS[
        name.rsplit("-", 1)[1]
    ].family.name  # as archspec's own tests do (power9 -> ppc64)


def test_there_are_more_than_fifty_dumps():
    assert len(ALL) >= 50


@pytest.mark.parametrize("name", ALL)
def test_every_archspec_dump_gives_its_target_and_generic_level(name):
    expected = name.rsplit("-", 1)[1]
    cpu = facts_from_cpuinfo(DUMPS / name, _machine(name)).cpu
    assert cpu.target == expected
    assert cpu.detected_target == expected and cpu.target_source == "archspec"
    assert cpu.generic == TARGETS[expected].generic.name
    assert set(cpu.ancestors) == {a.name for a in TARGETS[expected].ancestors}


def _optional_flags(text: str, machine: str) -> list[str]:
    """Flags the detected target needs beyond its generic level: the kind a hypervisor masks."""
    cpu = cpu_facts_from_text(text, machine, "dump")
    target, generic = TARGETS[cpu.target], TARGETS[cpu.generic]
    return sorted((target.features - generic.features) & set(cpu.flags))


MASKABLE = [
    n for n in ALL
    if n.startswith("linux-") and _machine(n) == "x86_64" and TARGETS[n.rsplit("-", 1)[1]].vendor != "generic"
]  # fmt: skip


def _mask(text: str, key: str, flags: set[str]) -> str:
    return "\n".join(
        f"{line.split(':', 1)[0]}: " + " ".join(f for f in line.split(":", 1)[1].split() if f not in flags)
        if line.split(":", 1)[0].strip() == key else line
        for line in text.splitlines()
    )  # fmt: skip


@pytest.mark.parametrize("name", MASKABLE)
def test_masking_one_optional_flag_keeps_the_generic_level(name):
    """x86: a hypervisor hiding one flag the target needs beyond its generic
    level (pku, amx_tile, avx512_vp2intersect...) gives an older target and
    the same generic level."""
    machine = _machine(name)
    text = (DUMPS / name).read_text()
    before = cpu_facts_from_text(text, machine, name)
    flags = _optional_flags(text, machine)
    assert flags, f"{before.target} needs no flag beyond {before.generic}"
    for flag in flags[:3]:
        after = cpu_facts_from_text(_mask(text, "flags", {flag}), machine, name)
        assert flag not in after.flags
        assert after.generic == before.generic, (flag, after.target)
        assert after.target == before.target or after.target in before.ancestors, (
            flag,
            after.target,
        )


@pytest.mark.parametrize(
    ("name", "hidden", "target", "generic"),
    [
        # real reports (shared/reference/host-facts.md section 2), replayed on real dumps
        (
            "linux-ubuntu20.04-zen3",
            {"pku"},
            "zen2",
            "x86_64_v3",
        ),  # Azure HB120rs v3 / AWS c6a Milan
        ("linux-unknown-sapphirerapids", {"amx_tile"}, "icelake", "x86_64_v4"),
        ("linux-rocky9-zen5", {"avx512_vp2intersect"}, "zen4", "x86_64_v4"),
        ("linux-rocky9-zen5", {"clzero"}, "x86_64_v4", "x86_64_v4"),
        (
            "linux-rhel7-haswell",
            {"movbe"},
            "ivybridge",
            "x86_64_v2",
        ),  # a v3 flag: the level drops too
        # AArch64: archspec has no flag data for armv8.x levels (archspec#205); the
        # level is the detected target's, so a masked flag lowers it: record both,
        # and let the site set the target ([cpu_targets]).
        ("linux-rhel9-neoverse_v2", {"sve2"}, "neoverse_n1", "armv8.2a"),  # Grace without SVE2
        (
            "linux-amazon-neoverse_v1",
            {"paca", "pacg"},
            "neoverse_v1",
            "armv8.4a",
        ),  # Graviton3: fixed in archspec (#157)
    ],
)
def test_real_masked_flag_reports(name, hidden, target, generic):
    machine = _machine(name)
    key = "flags" if machine == "x86_64" else "Features"
    cpu = cpu_facts_from_text(_mask((DUMPS / name).read_text(), key, hidden), machine, name)
    assert (cpu.target, cpu.generic) == (target, generic)
    fixed = with_target(cpu, name.rsplit("-", 1)[1])  # the site override restores the node class
    assert fixed.detected_target == target and fixed.target_source == "site config"


def test_site_override_keeps_what_archspec_detected():
    cpu = facts_from_cpuinfo(DUMPS / "linux-rocky8.5-zen4", "x86_64").cpu
    masked = with_target(cpu, "zen3")
    assert (masked.target, masked.detected_target, masked.target_source) == (
        "zen3",
        "zen4",
        "site config",
    )
    assert (
        masked.generic == "x86_64_v3"
        and "zen2" in masked.ancestors
        and "zen4" not in masked.ancestors
    )
    with pytest.raises(HostFactsError, match="not an archspec target"):
        with_target(cpu, "zen99")
    with pytest.raises(HostFactsError, match="aarch64 target"):
        with_target(cpu, "neoverse_v2")


def test_cpuinfo_of_another_architecture_than_claimed_is_refused():
    with pytest.raises(HostFactsError, match="looks like a x86_64"):
        facts_from_cpuinfo(DUMPS / "linux-rocky8.5-zen4", "aarch64")
    assert (
        facts_from_cpuinfo(DUMPS / "linux-rhel9-neoverse_v2").cpu.architecture == "aarch64"
    )  # guessed


# -- collect ------------------------------------------------------------------


def _fake_probe_module(monkeypatch, name, func):
    module = types.ModuleType(f"fake_{name}")
    module.probe = func
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(collect.PROBES, name, (module.__name__, collect.PROBES[name][1]))


def test_a_probe_that_raises_or_hangs_does_not_sink_the_others(monkeypatch):
    def boom(ctx):
        raise RuntimeError("simulated failure\nsecond line")

    def hang(ctx):
        time.sleep(30)

    _fake_probe_module(monkeypatch, "mpi", boom)
    _fake_probe_module(monkeypatch, "interconnect", hang)
    start = time.monotonic()
    facts = collect.collect(ProbeContext(timeout=0.5))
    assert time.monotonic() - start < 3
    assert facts.mpi.probe.status == "error"
    assert facts.mpi.probe.reason == "probe failed: RuntimeError: simulated failure"
    assert facts.interconnect.probe.status == "error"
    assert facts.interconnect.probe.reason == "timed out after 0.5 s"
    assert facts.system.probe.status == "ok"  # the others still ran
    assert facts.cpu.probe.status == "ok" and facts.cpu.probe.seconds > 0


# -- cache --------------------------------------------------------------------


@pytest.fixture
def counted(monkeypatch):
    calls = []
    real = collect.collect

    def counting(ctx, **kw):
        calls.append(ctx.root)
        return real(ctx, **kw)

    import hostfacts.api

    monkeypatch.setattr(hostfacts.api, "collect", counting)
    return calls


def test_cache_hit_refresh_and_bad_files(tmp_path, counted):
    env = {**os.environ, "IMAGEFIT_CACHE_DIR": str(tmp_path / "c")}
    env.pop("IMAGEFIT_FACTS", None)
    first = host_facts(env)
    files = list((tmp_path / "c").glob("facts-*.json"))
    assert len(counted) == 1 and len(files) == 1
    assert host_facts(env) == first and len(counted) == 1  # hit: no probe
    host_facts(env, refresh=True)
    assert len(counted) == 2
    files[0].write_text("{ truncated")  # corrupt: ignored, re-probed, replaced
    again = host_facts(env)  # re-probed: probe times differ, the CPU does not
    assert again.cpu.model_dump(exclude={"probe"}) == first.cpu.model_dump(exclude={"probe"})
    assert len(counted) == 3 and HostFacts.model_validate_json(files[0].read_text())
    files[0].chmod(0o666)  # writable by others: not trusted
    host_facts(env)
    assert len(counted) == 4
    files[0].chmod(0o600)
    other = {**env, "CUDA_VISIBLE_DEVICES": "1"}  # an input that matters: another key
    host_facts(other)
    assert len(counted) == 5 and len(list((tmp_path / "c").glob("facts-*.json"))) == 2


def test_cache_key_follows_the_boot_id(tmp_path):
    (tmp_path / "proc/sys/kernel/random").mkdir(parents=True)
    boot = tmp_path / "proc/sys/kernel/random/boot_id"
    boot.write_text("11111111-2222\n")
    ctx = ProbeContext(root=tmp_path, environ={})
    first = cache.cache_key(ctx, "node1")
    boot.write_text("33333333-4444\n")
    assert cache.cache_key(ctx, "node1") != first
    boot.unlink()
    assert cache.cache_key(ctx, "node1") is None  # no boot id: never cached


def test_facts_file_bypasses_probing(tmp_path, counted):
    path = tmp_path / "zen4.json"
    path.write_text(facts_from_cpuinfo(DUMPS / "linux-rocky8.5-zen4", "x86_64").model_dump_json())
    assert host_facts({"IMAGEFIT_FACTS": str(path)}).cpu.target == "zen4"
    assert counted == []


# -- NFD ----------------------------------------------------------------------


def test_nfd_projection_names_and_shape():
    cpu = facts_from_cpuinfo(DUMPS / "linux-rocky8.5-zen4", "x86_64").cpu
    system = SystemFacts(
        probe=Probe(status="ok"), kernel_release="6.1.0-18-amd64", kernel_version=(6, 1, 0),
        libc="glibc", glibc_version="2.36", loaded_modules=("mlx5_core", "nvidia"),
        os_release={"id": "debian", "version_id": "12"},
        pci_devices=[{"address": "0000:01:00.0", "class_id": "0207", "vendor": "15b3", "device": "101b"}],
    )  # fmt: skip
    out = nfd.features(HostFacts(cpu=cpu, system=system))
    assert set(out) == {"flags", "attributes", "instances"}
    cpuid = out["flags"]["cpu.cpuid"]["elements"]
    assert {"AVX512F", "SSE42", "SSE4", "FMA3", "AESNI", "CLMUL", "AVX2"} <= set(cpuid)
    assert all(v == {} for v in cpuid.values())
    assert out["attributes"]["cpu.model"]["elements"] == {
        "vendor_id": "AMD",
        "family": "25",
        "id": "17",
    }
    assert out["attributes"]["kernel.version"]["elements"] == {
        "full": "6.1.0-18-amd64", "major": "6", "minor": "1", "revision": "0"}  # fmt: skip
    assert out["attributes"]["system.osrelease"]["elements"] == {
        "ID": "debian", "VERSION_ID": "12", "VERSION_ID.major": "12"}  # fmt: skip
    assert out["flags"]["kernel.loadedmodule"]["elements"] == {"mlx5_core": {}, "nvidia": {}}
    assert out["instances"]["pci.device"]["elements"] == [
        {"attributes": {"class": "0207", "vendor": "15b3", "device": "101b"}}]  # fmt: skip
    assert out["attributes"]["archspec.cpu"]["elements"]["target"] == "zen4"
    assert {"zen4", "zen3", "x86_64_v4"} <= set(out["flags"]["archspec.compatible"]["elements"])


# -- the CLI ------------------------------------------------------------------


def test_facts_root_reads_a_copied_tree(tmp_path):
    root = tmp_path / "node"
    (root / "proc").mkdir(parents=True)
    shutil.copy(DUMPS / "linux-rhel9-neoverse_v2", root / "proc" / "cpuinfo")
    (root / "etc").mkdir()
    (root / "etc" / "os-release").write_text('ID="rhel"\nVERSION_ID="9.3"\n')
    (root / "etc" / "hostname").write_text("gh-node-17\n")
    done = subprocess.run(
        [*IMAGEFIT, "facts", "--json", "--root", str(root)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    facts = HostFacts.model_validate_json(done.stdout)
    assert (facts.hostname, facts.root, facts.cpu.target, facts.cpu.architecture) == (
        "gh-node-17", str(root), "neoverse_v2", "aarch64")  # fmt: skip
    assert (
        facts.gpu.nvidia.probe.status == "unknown" and "not probed" in facts.gpu.nvidia.probe.reason
    )
    assert facts.system.os_release.id == "rhel"
    nfd_out = subprocess.run(
        [*IMAGEFIT, "facts", "--nfd", "--root", str(root)], capture_output=True, text=True
    )
    assert (
        json.loads(nfd_out.stdout)["attributes"]["archspec.cpu"]["elements"]["target"]
        == "neoverse_v2"
    )


def test_facts_human_and_verbose_evidence(tmp_path):
    env = {**os.environ, "IMAGEFIT_CACHE_DIR": str(tmp_path)}
    env.pop("IMAGEFIT_FACTS", None)
    done = subprocess.run(
        [*IMAGEFIT, "facts", "-v", "--refresh"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    for label in (
        "cpu target:",
        "nvidia gpu:",
        "amd gpu:",
        "mpi:",
        "system:",
        "interconnect:",
        "evidence:",
    ):
        assert label in done.stdout
    assert "file /proc/cpuinfo" in done.stdout


def test_site_cpu_target_override_through_config(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text(f'[cpu_targets]\n"{os.uname().nodename}" = "x86_64_v2"\n')
    site.chmod(0o644)
    env = {
        **os.environ,
        "IMAGEFIT_SITE_CONFIG": str(site),
        "IMAGEFIT_CACHE_DIR": str(tmp_path / "c"),
    }
    env.pop("IMAGEFIT_FACTS", None)
    done = subprocess.run([*IMAGEFIT, "facts", "--json"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    cpu = HostFacts.model_validate_json(done.stdout).cpu
    assert (cpu.target, cpu.target_source, cpu.generic) == ("x86_64_v2", "site config", "x86_64_v2")
    site.write_text('[cpu_targets]\n"*" = "zen99"\n')
    bad = subprocess.run([*IMAGEFIT, "facts"], capture_output=True, text=True, env=env)
    assert bad.returncode == 125 and bad.stderr.count("\n") == 1 and "zen99" in bad.stderr
