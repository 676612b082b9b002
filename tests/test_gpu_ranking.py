"""GPU builds as an expert picks them, for the GPUs the job sees (issue 13 items 1, 2).

Through the installed shim as ``podman`` (``IMAGEFIT_DRY_RUN=1``: the final
argv as JSON) against a real registry on loopback, host facts from facts
files (``IMAGEFIT_FACTS``), and the visible-device variables in the
command's environment:

- native code for every visible GPU's compute capability > native code of a
  lower minor of the same major > PTX, in both index orders; sm_80 code runs
  on 8.6, never on 9.0; the same for AMD (exact gfx target > generic);
- ``CUDA_VISIBLE_DEVICES`` / ``NVIDIA_VISIBLE_DEVICES`` / ``ROCR_VISIBLE_DEVICES``
  by index, UUID (prefix), MIG UUID; ``""``/``void``/``-1``: the CPU build;
  a mixed node: the build must fit every visible GPU;
- a UUID the facts do not hold: every GPU counts, and ``imagefit explain`` says so;
- the decision cache never serves one visible set's decision for another.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from hostfacts.model import AmdFacts, AmdGpu, NvidiaDevice, NvidiaFacts, NvidiaMigDevice, Probe
from tests.support import oci
from tests.test_e2e_scoring import HASWELL, ZEN4, host

P = "org.supercontainers."
CC = P + "hardware.gpu.compute_capabilities"
GFX = P + "hardware.gpu.amd.gfx"
TARGET = P + "hardware.cpu.target.microarch"
AMD64 = {"architecture": "amd64", "os": "linux"}
OK = Probe(status="ok")

H100_UUID = "GPU-5e4f0c3a-9d2b-4b51-8a07-1f2e3d4c5b6a"
A100_UUID = "GPU-0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"
MIG_UUID = "MIG-7c3e1f20-5a4b-5c6d-9e8f-0a1b2c3d4e5f"


def _b(name: str, **notes: str) -> dict:
    return {"name": name, "platform": AMD64, "annotations": {TARGET: "x86_64", **notes}}


CPU = _b("cpu")
PTX80 = _b("ptx80", **{CC: "8.0+"})
SM90 = _b("sm90", **{CC: "9.0"})
SM80 = _b("sm80", **{CC: "8.0"})
SM80_90 = _b("sm80_90", **{CC: "8.0,9.0"})

INDEXES = {
    "ptx-first": [CPU, PTX80, SM90],
    "native-first": [CPU, SM90, PTX80],
    "sm80": [CPU, PTX80, SM80],
    "sm80-only": [CPU, SM80],
    "mixed": [CPU, PTX80, SM90, SM80, SM80_90],
    "amd-generic-first": [CPU, _b("generic", **{GFX: "gfx9-4-generic"}), _b("exact", **{GFX: "gfx942"})],
    "amd-exact-first": [CPU, _b("exact", **{GFX: "gfx942"}), _b("generic", **{GFX: "gfx9-4-generic"})],
    "amd-generic-only": [CPU, _b("generic", **{GFX: "gfx9-4-generic"})],
    # arch-specific (sm_90a, sm_100a: that device only) and family-specific (sm_100f) code
    "arch-specific": [CPU, SM90, _b("sm90a", **{CC: "9.0a"}), PTX80],
    "blackwell": [CPU, PTX80, _b("sm100a", **{CC: "10.0a"}), _b("sm100f", **{CC: "10.0f"})],
}  # fmt: skip


def _gpu(index: int, name: str, cc: str, uuid: str | None, migs=()) -> NvidiaDevice:
    return NvidiaDevice(index=index, uuid=uuid, name=name, compute_capability=cc, memory_mib=81559,
                        mig_enabled=bool(migs), mig_devices=migs)  # fmt: skip


def _nvidia(*devices: NvidiaDevice) -> NvidiaFacts:
    return NvidiaFacts(probe=OK, driver_version="550.54.15", cuda_driver_version="12.4",
                       devices=devices)  # fmt: skip


NODES = {
    "h100": lambda: host(ZEN4, "h100", gpu=_nvidia(_gpu(0, "NVIDIA H100", "9.0", H100_UUID))),
    "a40": lambda: host(ZEN4, "a40", gpu=_nvidia(_gpu(0, "NVIDIA A40", "8.6", None))),
    "b200": lambda: host(ZEN4, "b200", gpu=_nvidia(_gpu(0, "NVIDIA B200", "10.0", None))),
    "b300": lambda: host(ZEN4, "b300", gpu=_nvidia(_gpu(0, "NVIDIA B300", "10.3", None))),
    # an A100 (8.0) and an H100 (9.0, in MIG mode with one instance) on one node
    "mixed": lambda: host(ZEN4, "mixed", gpu=_nvidia(
        _gpu(0, "NVIDIA A100", "8.0", A100_UUID),
        _gpu(1, "NVIDIA H100", "9.0", H100_UUID, (NvidiaMigDevice(index=0, uuid=MIG_UUID),)),
    )),
    # the same node described without UUIDs (an old facts file)
    "mixed-no-uuid": lambda: host(ZEN4, "mixed2", gpu=_nvidia(
        _gpu(0, "NVIDIA A100", "8.0", None), _gpu(1, "NVIDIA H100", "9.0", None),
    )),
    "mi250-mi300": lambda: host(HASWELL, "amd").model_copy(update={"gpu": host(HASWELL, "amd").gpu.model_copy(
        update={"amd": AmdFacts(probe=OK, devices=(
            AmdGpu(node=1, gfx_target="gfx90a", gfx_target_version=90010, uuid="GPU-0000000000000001"),
            AmdGpu(node=2, gfx_target="gfx942", gfx_target_version=90402, uuid="GPU-00000000000000ff"),
        ))})}),
}  # fmt: skip


@pytest.fixture(scope="module")
def indexes(registry, tmp_path_factory):
    return {
        name: oci.build_and_push(
            registry.host, f"gpu/{name}", "1", builds, layout_dir=tmp_path_factory.mktemp(name)
        )  # fmt: skip
        for name, builds in INDEXES.items()
    }


@pytest.fixture(scope="module")
def facts(tmp_path_factory):
    directory = tmp_path_factory.mktemp("gpu-facts")
    paths = {}
    for name, make in NODES.items():
        path = directory / f"{name}.json"
        path.write_text(make().model_dump_json())
        path.chmod(0o644)
        paths[name] = str(path)
    return paths


VISIBLE = (
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES",
    "ROCR_VISIBLE_DEVICES",
    "HIP_VISIBLE_DEVICES",
)


@pytest.fixture
def env(tmp_path):
    """No site or user config, a cache of its own, no visible-device variable of the caller's."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("IMAGEFIT_") and k not in VISIBLE
    }
    (tmp_path / "registries.conf").write_text("")
    env.update({"IMAGEFIT_SITE_CONFIG": str(tmp_path / "no-site.toml"), "HOME": str(tmp_path),
                "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
                "CONTAINERS_REGISTRIES_CONF": str(tmp_path / "registries.conf")})  # fmt: skip
    return env


def chosen(shim_bin, env, pushed, facts_file: str, **visible: str) -> str:
    """The build the shim's podman runs for `pushed` on `facts_file` with `visible` set."""
    done = subprocess.run(
        [str(shim_bin / "podman"), "run", "--rm", "--tls-verify=false", pushed.ref, "true"],
        env={**env, "PATH": f"{shim_bin}:{env['PATH']}", "IMAGEFIT_DRY_RUN": "1",
             "IMAGEFIT_FACTS": facts_file, **visible},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    argv = json.loads(done.stdout.splitlines()[-1])
    found = [b for b in pushed.manifests if pushed.digest_ref(b) in argv]
    assert len(found) == 1, argv
    return found[0]


def explain(imagefit_cmd, env, pushed, facts_file: str, **visible: str) -> dict:
    done = subprocess.run(
        [*imagefit_cmd, "explain", pushed.ref, "--json", "--tls-verify", "false", "--facts", facts_file],
        env={**env, **visible}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode in (0, 125), done.stderr
    return json.loads(done.stdout)


def check(decision: dict, pushed, build: str, name: str) -> dict:
    cand = next(c for c in decision["candidates"] if c["digest"] == pushed.manifests[build])
    return next(c for c in cand["checks"] if c["name"] == name)


# -- native code over PTX ---------------------------------------------------------------


@pytest.mark.parametrize("order", ["ptx-first", "native-first"])
def test_native_sm90_beats_ptx_in_either_index_order(shim_bin, env, indexes, facts, order):
    assert chosen(shim_bin, env, indexes[order], facts["h100"]) == "sm90"


def test_explain_says_native_code_won_over_ptx(imagefit_cmd, env, indexes, facts):
    pushed = indexes["ptx-first"]
    decision = explain(imagefit_cmd, env, pushed, facts["h100"])
    assert decision["chosen"]["digest"] == pushed.manifests["sm90"]
    assert "(native sm_90 code for every visible GPU; " in decision["reason"]
    assert "has PTX 8.0, JIT-compiled for 9.0 at load)" in decision["reason"]


def test_sm80_code_runs_on_an_8_6_gpu_and_beats_ptx(shim_bin, imagefit_cmd, env, indexes, facts):
    assert chosen(shim_bin, env, indexes["sm80"], facts["a40"]) == "sm80"
    decision = explain(imagefit_cmd, env, indexes["sm80"], facts["a40"])
    assert "native sm_80 code (same major as 8.6)" in decision["reason"]


def test_sm80_code_never_runs_on_9_0(shim_bin, imagefit_cmd, env, indexes, facts):
    pushed = indexes["sm80-only"]
    assert chosen(shim_bin, env, pushed, facts["h100"]) == "cpu"
    detail = check(explain(imagefit_cmd, env, pushed, facts["h100"]), pushed, "sm80",
                   "gpu.compute_capability")  # fmt: skip
    assert detail == {**detail, "passed": False,
                      "detail": "needs a GPU of compute capability 8.0; host has 9.0"}  # fmt: skip


# -- the GPUs the job sees --------------------------------------------------------------

MIXED_CASES = [
    ({}, "sm80_90"),  # an A100 and an H100: only the build with code for both
    ({"CUDA_VISIBLE_DEVICES": "0,1"}, "sm80_90"),
    ({"CUDA_VISIBLE_DEVICES": "1"}, "sm90"),  # the H100 alone: the first exact build
    ({"CUDA_VISIBLE_DEVICES": "0"}, "sm80"),
    ({"CUDA_VISIBLE_DEVICES": ""}, "cpu"),
    ({"CUDA_VISIBLE_DEVICES": "-1"}, "cpu"),  # invalid: CUDA shows nothing from there on
    ({"CUDA_VISIBLE_DEVICES": "1,7,0"}, "sm90"),  # 7 is no device: 0 after it is ignored
    ({"CUDA_VISIBLE_DEVICES": H100_UUID}, "sm90"),
    ({"CUDA_VISIBLE_DEVICES": "GPU-5e4f"}, "sm90"),  # a UUID prefix, as CUDA takes it
    ({"CUDA_VISIBLE_DEVICES": MIG_UUID}, "sm90"),  # a MIG instance of the H100: its parent's code
    ({"CUDA_VISIBLE_DEVICES": f"MIG-{H100_UUID}/1/0"}, "sm90"),  # the older MIG form
    ({"NVIDIA_VISIBLE_DEVICES": "void"}, "cpu"),
    ({"NVIDIA_VISIBLE_DEVICES": "none"}, "cpu"),
    ({"NVIDIA_VISIBLE_DEVICES": "all"}, "sm80_90"),
    ({"NVIDIA_VISIBLE_DEVICES": "1"}, "sm90"),
    ({"NVIDIA_VISIBLE_DEVICES": "1,0", "CUDA_VISIBLE_DEVICES": "1"}, "sm80"),  # CUDA's 1 is GPU 0
]


@pytest.mark.parametrize(("visible", "build"), MIXED_CASES,
                         ids=[",".join(f"{k}={v}" for k, v in c.items()) or "unset" for c, _ in MIXED_CASES])  # fmt: skip
def test_the_build_fits_every_visible_gpu(shim_bin, env, indexes, facts, visible, build):
    assert chosen(shim_bin, env, indexes["mixed"], facts["mixed"], **visible) == build


def test_a_uuid_the_facts_lack_counts_every_gpu_and_explain_says_so(
    shim_bin, imagefit_cmd, env, indexes, facts
):
    pushed = indexes["mixed"]
    for node in ("mixed", "mixed-no-uuid"):  # another node's UUID; a facts file without UUIDs
        visible = {"CUDA_VISIBLE_DEVICES": H100_UUID if node == "mixed-no-uuid" else "GPU-ffff"}
        assert chosen(shim_bin, env, pushed, facts[node], **visible) == "sm80_90"
        decision = explain(imagefit_cmd, env, pushed, facts[node], **visible)
        detail = check(decision, pushed, "sm90", "gpu.compute_capability")["detail"]
        assert not check(decision, pushed, "sm90", "gpu.compute_capability")["passed"]
        assert "which the facts do not list" in detail and "every GPU counts (2)" in detail, detail


def test_no_visible_gpu_refuses_the_gpu_build_and_says_why(imagefit_cmd, env, indexes, facts):
    pushed = indexes["ptx-first"]
    decision = explain(imagefit_cmd, env, pushed, facts["h100"], CUDA_VISIBLE_DEVICES="")
    assert decision["chosen"]["digest"] == pushed.manifests["cpu"]
    gpu = check(decision, pushed, "sm90", "gpu.nvidia")
    assert not gpu["passed"]
    assert gpu["detail"] == ("needs an NVIDIA GPU; host has no NVIDIA GPU visible to the job"
                             " [CUDA_VISIBLE_DEVICES='': no GPU visible]")  # fmt: skip


# -- AMD ---------------------------------------------------------------------------------

AMD_CASES = [
    ("amd-generic-first", {"ROCR_VISIBLE_DEVICES": "1"}, "exact"),
    ("amd-exact-first", {"ROCR_VISIBLE_DEVICES": "1"}, "exact"),
    ("amd-generic-first", {"ROCR_VISIBLE_DEVICES": "GPU-00000000000000ff"}, "exact"),
    ("amd-generic-first", {"HIP_VISIBLE_DEVICES": "1"}, "exact"),
    ("amd-generic-first", {}, "cpu"),  # the gfx90a is visible too: neither build runs on it
    ("amd-generic-first", {"ROCR_VISIBLE_DEVICES": "0"}, "cpu"),
    ("amd-generic-only", {"ROCR_VISIBLE_DEVICES": "1"}, "generic"),  # gfx9-4-generic runs on gfx942
    ("amd-generic-only", {"ROCR_VISIBLE_DEVICES": "0"}, "cpu"),  # not on gfx90a (LLVM's table)
]


@pytest.mark.parametrize(("index", "visible", "build"), AMD_CASES)
def test_amd_exact_gfx_target_beats_a_generic_one(
    shim_bin, env, indexes, facts, index, visible, build
):
    assert chosen(shim_bin, env, indexes[index], facts["mi250-mi300"], **visible) == build


def test_explain_names_the_generic_target(imagefit_cmd, env, indexes, facts):
    pushed = indexes["amd-generic-first"]
    decision = explain(imagefit_cmd, env, pushed, facts["mi250-mi300"], ROCR_VISIBLE_DEVICES="1")
    assert "native gfx942 code for every visible GPU; " in decision["reason"]
    assert "has generic gfx9-4-generic code for gfx942" in decision["reason"]


# -- the decision cache ----------------------------------------------------------------


def test_the_decision_cache_keys_on_the_visible_devices(shim_bin, env, indexes, facts, tmp_path):
    """One cache, one facts file (its fingerprint is its bytes), four visible sets in turn:
    each command gets its own set's build, and the cache holds one decision per set."""
    pushed = indexes["mixed"]
    sets = [("CUDA_VISIBLE_DEVICES", "0"), ("CUDA_VISIBLE_DEVICES", "1"), ("HIP_VISIBLE_DEVICES", "1"),
            ("NVIDIA_VISIBLE_DEVICES", "void"), ("CUDA_VISIBLE_DEVICES", "0"), ("CUDA_VISIBLE_DEVICES", "1")]  # fmt: skip
    expected = ["sm80", "sm90", "sm80_90", "cpu", "sm80", "sm90"]
    got = [chosen(shim_bin, env, pushed, facts["mixed"], **{k: v}) for k, v in sets]
    assert got == expected
    entries = list((tmp_path / "cache" / "imagefit" / "decisions").glob("*.entry"))
    # HIP_VISIBLE_DEVICES=1 changes nothing on NVIDIA, but is a set of its own
    assert len(entries) == 4, entries


# -- arch- and family-specific code ------------------------------------------------------

ARCH_CASES = [
    ("arch-specific", "h100", "sm90a"),  # sm_90a on its device: above portable sm_90 and PTX
    ("arch-specific", "a40", "ptx80"),  # sm_90a never runs on 8.6, nor sm_90
    ("blackwell", "b200", "sm100a"),
    ("blackwell", "b300", "sm100f"),  # sm_100a never on 10.3; sm_100f runs on the family
    ("blackwell", "h100", "ptx80"),
]


@pytest.mark.parametrize(("index", "node", "build"), ARCH_CASES)
def test_arch_and_family_specific_code(shim_bin, env, indexes, facts, index, node, build):
    assert chosen(shim_bin, env, indexes[index], facts[node]) == build


def test_explain_names_arch_specific_code(imagefit_cmd, env, indexes, facts):
    pushed = indexes["blackwell"]
    decision = explain(imagefit_cmd, env, pushed, facts["b300"])
    assert decision["reason"] == (
        "x86_64+sm100f ranks first of 3 fitting builds (native sm_100f code (same major as 10.3);"
        " x86_64+sm80ptx has PTX 8.0, JIT-compiled for 10.3 at load)"
    ), decision["reason"]
    miss = check(decision, pushed, "sm100a", "gpu.compute_capability")
    assert not miss["passed"]
    assert miss["detail"].startswith(
        "needs a GPU of compute capability exactly 10.0 (sm_100a); host has 10.3"
    ), miss
