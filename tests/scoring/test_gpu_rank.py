"""scoring.gpu and the ranking of GPU builds (issue 13 item 1): native code
for every visible GPU's exact compute capability > native code of a lower
minor of the same major (the nearest first) > PTX (the newest the GPUs can
JIT first) > a GPU build naming no code > a CPU build; AMD exact gfx target
> generic; the grade is that of the weakest visible GPU, in select and in
select_common (component-wise minimum over classes). Indexes in memory."""

from __future__ import annotations

import pytest

from hostfacts.model import AmdGpu, GpuFacts, NvidiaDevice, NvidiaFacts
from hostfacts.visible import narrow
from scoring import gpu, select, select_common
from scoring.vocabulary import COMPUTE_CAPABILITIES, GPU_VENDOR
from tests.scoring.test_select_common import OK, desc, facts, index


def devices(*ccs: str) -> tuple[NvidiaDevice, ...]:
    return tuple(NvidiaDevice(index=i, uuid=f"GPU-{i}aaa", name=f"GPU{i}", compute_capability=cc)
                 for i, cc in enumerate(ccs))  # fmt: skip


def node(*ccs: str):
    return facts("zen4").model_copy(update={"gpu": GpuFacts(nvidia=NvidiaFacts(
        probe=OK, driver_version="550.54.15", cuda_driver_version="12.4", devices=devices(*ccs)))})  # fmt: skip


def grade(value: str, *ccs: str) -> int:
    fit = gpu.nvidia_fit(gpu.parse_capabilities(value), devices(*ccs))
    assert fit.fits == (fit.grade > 0)
    return fit.grade


def test_grades_follow_cuda_compatibility():
    assert grade("9.0", "9.0") == gpu.EXACT
    assert grade("8.0", "8.6") == gpu.NATIVE + 0  # sm_80 SASS runs on 8.6
    assert grade("8.0", "9.0") == 0  # never across a major
    assert grade("8.6", "8.0") == 0  # nor on a lower minor
    assert grade("8.0+", "9.0") == gpu.PTX + 80  # PTX JIT-compiles for any newer GPU
    assert grade("9.0+", "8.6") == 0
    # the order an expert takes
    ladder = [grade(v, "8.9") for v in ("8.9", "8.6", "8.0", "8.6+", "8.0+", "7.0+")]
    assert ladder == sorted(ladder, reverse=True) and len(set(ladder)) == len(ladder)
    assert gpu.UNSTATED < gpu.PTX < ladder[-1]
    assert grade("8.0,9.0+", "9.0") == gpu.PTX + 90 and grade("8.0,9.0", "9.0") == gpu.EXACT


def test_unreadable_or_huge_values_are_no_code():
    assert gpu.parse_capabilities("9.0b") is None and gpu.parse_capabilities("9.0a+") is None
    assert gpu.parse_capabilities("") == gpu.CudaCode()
    assert gpu.parse_capabilities("9" * 5000 + ".0") is None  # never int() of 5000 digits
    assert gpu.token_capabilities(["nv-compute-capability-" + "9" * 5000 + "-0"]) is None
    huge = desc("huge", "x86_64", **{COMPUTE_CAPABILITIES: "9" * 5000 + ".0"})
    decision = select(index(huge, desc("cpu", "x86_64")), node("9.0"))  # no traceback
    assert decision.chosen.digest != huge["digest"]


def test_the_weakest_visible_gpu_grades_a_build():
    assert grade("8.0,9.0", "8.0", "9.0") == gpu.EXACT
    assert grade("9.0", "8.0", "9.0") == 0
    assert grade("8.0", "8.6", "8.0") == gpu.NATIVE
    assert grade("8.0,8.0+", "8.0", "9.0") == gpu.PTX + 80
    fit = gpu.nvidia_fit(gpu.parse_capabilities("9.0"), devices("8.0", "9.0"))
    assert fit.detail == ("needs a GPU of compute capability 9.0; host has 8.0, 9.0: GPU 0 (8.0)"
                          " runs none of sm_90")  # fmt: skip


def test_amd_exact_over_generic_and_generic_coverage_from_llvm():
    mi300 = (AmdGpu(node=1, gfx_target="gfx942", gfx_target_version=90402),)
    mi250 = (AmdGpu(node=1, gfx_target="gfx90a", gfx_target_version=90010),)
    exact, generic = gpu.amd_fit(("gfx942",), mi300), gpu.amd_fit(("gfx9-4-generic",), mi300)
    assert exact.fits and generic.fits and exact.grade > generic.grade
    assert generic.summary == "generic gfx9-4-generic code for gfx942"
    assert not gpu.amd_fit(("gfx9-generic",), mi250).fits  # gfx90a is in no generic target
    assert not gpu.amd_fit(("gfx942",), mi300 + mi250).fits  # every visible GPU
    assert gpu.expand_gfx(("gfx10-3-generic",))[1:] == tuple(f"gfx103{i}" for i in range(7))


@pytest.mark.parametrize("first", ["ptx", "sm90"])
def test_select_takes_native_code_in_either_index_order(first):
    ptx = desc("ptx", "x86_64", **{COMPUTE_CAPABILITIES: "8.0+"})
    sm90 = desc("sm90", "x86_64", **{COMPUTE_CAPABILITIES: "9.0"})
    cands = index(ptx, sm90) if first == "ptx" else index(sm90, ptx)
    decision = select(cands, node("9.0"))
    assert decision.chosen.digest == sm90["digest"]
    assert "native sm_90 code for every visible GPU; " in decision.reason
    assert "has PTX 8.0, JIT-compiled for 9.0 at load" in decision.reason


def test_a_gpu_build_naming_no_code_ranks_below_one_that_does():
    vendor = desc("vendor", "x86_64", **{GPU_VENDOR: "nvidia"})
    ptx = desc("ptx", "x86_64", **{COMPUTE_CAPABILITIES: "7.0+"})
    cpu = desc("cpu", "zen4")  # a deeper CPU target: GPU code ranks before CPU depth
    decision = select(index(cpu, vendor, ptx), node("9.0"))
    assert decision.chosen.digest == ptx["digest"]
    scores = {v.candidate.digest: v.score.gpu for v in decision.verdicts}
    assert scores == {cpu["digest"]: 0, vendor["digest"]: gpu.UNSTATED, ptx["digest"]: gpu.PTX + 70}


def test_select_common_grades_each_build_by_its_weakest_class():
    """An H100 class and an A40 (8.6) class: sm_86+sm_90 is exact on both;
    sm_80+sm_90 only same-major on the A40; PTX below both, in any order."""
    builds = [desc("ptx", "x86_64", **{COMPUTE_CAPABILITIES: "8.0+"}),
              desc("sm80_90", "x86_64", **{COMPUTE_CAPABILITIES: "8.0,9.0"}),
              desc("sm86_90", "x86_64", **{COMPUTE_CAPABILITIES: "8.6,9.0"})]  # fmt: skip
    classes = {"h100": node("9.0"), "a40": node("8.6")}
    for order in (builds, builds[::-1]):
        decision = select_common(index(*order), classes)
        assert decision.chosen.digest == builds[2]["digest"]
        grades = {v.candidate.digest: v.score.gpu for v in decision.verdicts}
        assert grades[builds[1]["digest"]] == gpu.NATIVE  # sm_80 code on the A40
        assert grades[builds[0]["digest"]] == gpu.PTX + 80
        assert "native sm_86, sm_90 code for every visible GPU" not in decision.reason  # per class
        assert "native sm_86 code for every visible GPU; " in decision.reason
    # one class alone chooses as select does
    only = select_common(index(*builds), {"a40": node("8.6")})
    assert only.chosen == select(index(*builds), node("8.6")).chosen


def test_visible_devices_narrow_the_facts():
    host = node("8.0", "9.0", "9.0")
    cases = {
        "": [], "-1": [], "2": ["9.0"], "0,2": ["8.0", "9.0"], "2,9,0": ["9.0"],
        "GPU-1": ["9.0"], "GPU-": ["8.0", "9.0", "9.0"],  # a prefix of several: cannot tell
        "GPU-7zzz": ["8.0", "9.0", "9.0"],  # not in the facts: every GPU counts
    }  # fmt: skip
    for value, ccs in cases.items():
        narrowed = narrow(host, {"CUDA_VISIBLE_DEVICES": value})
        assert [d.compute_capability for d in narrowed.gpu.nvidia.devices] == ccs, value
        assert len(narrowed.gpu.visibility) == 1
    assert narrow(host, {"CUDA_VISIBLE_DEVICES": "2,9,0"}).gpu.visibility == (
        "CUDA_VISIBLE_DEVICES='2,9,0': GPU 2 (GPU2, 9.0) of 3 ('9' is no device: it and the"
        " entries after it are ignored)",
    )
    plain = facts("zen4")  # no GPU: unchanged
    assert narrow(plain, {"CUDA_VISIBLE_DEVICES": "0"}) is plain


def test_arch_specific_code_runs_on_its_device_only_and_ranks_first_there():
    """``9.0a`` (sm_90a: wgmma, TMA) runs on a 9.0 device only; on it, it ranks
    above portable sm_90 code; ``10.0a`` never runs on a 10.3 device, while
    family-specific ``10.0f`` does (CUDA Programming Guide, "Compute
    Capabilities", "Feature Availability")."""
    assert grade("9.0a", "9.0") == gpu.EXACT + 1 > grade("9.0", "9.0") == gpu.EXACT
    assert grade("10.0a", "10.3") == 0 and grade("10.0a", "10.0") == gpu.EXACT + 1
    assert grade("9.0a", "9.1") == 0  # not within the major, unlike SASS
    assert grade("10.0f", "10.3") == gpu.NATIVE and grade("10.0f", "10.0") == gpu.EXACT
    assert grade("10.0f", "12.0") == 0
    assert grade("10.0f", "10.1") == 0  # Jetson Thor under CUDA 12.9: not of the 10.0 family
    assert grade("10.0", "10.1") == gpu.NATIVE  # portable sm_100 code still runs there
    assert grade("9.0a,8.0", "8.0", "9.0") == gpu.EXACT  # a mixed node: each GPU its own code
    assert grade("9.0a", "8.0", "9.0") == 0
    code = gpu.parse_capabilities("10.0f,9.0a,8.0+")
    fit = gpu.nvidia_fit(code, devices("9.0"))
    assert fit.summary == "native sm_90a code for every visible GPU", fit
    assert fit.detail.startswith(
        "needs a GPU of compute capability 10.0, exactly 9.0 (sm_90a) or 8.0 or newer (PTX); host has 9.0"
    ), fit.detail
    miss = gpu.nvidia_fit(gpu.parse_capabilities("10.0a"), devices("10.3"))
    assert not miss.fits and "exactly 10.0 (sm_100a)" in miss.detail, miss.detail
    family = gpu.nvidia_fit(gpu.parse_capabilities("10.0f"), devices("10.3"))
    assert family.summary == "native sm_100f code (same major as 10.3)", family


def test_select_prefers_arch_specific_code_on_its_device():
    builds = [desc(n, "x86_64", **{COMPUTE_CAPABILITIES: cc})
              for n, cc in (("sm90", "9.0"), ("sm90a", "9.0a"), ("ptx", "8.0+"))]  # fmt: skip
    for order in (builds, builds[::-1]):
        assert select(index(*order), node("9.0")).chosen.digest == builds[1]["digest"]
    # on a 10.0 device only the PTX build runs
    assert select(index(*builds), node("10.0")).chosen.digest == builds[2]["digest"]
