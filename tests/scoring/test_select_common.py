"""scoring.select_common: one build for every node class of a job.

Indexes are built in memory (annotated CPU targets zen3/zen4/x86_64_v3/
x86_64_v4/sapphirerapids/neoverse_v2, a generic build, a CUDA build); node
classes are archspec's real /proc/cpuinfo dumps, one with a fake H100.
Examples, then hypothesis properties over generated indexes and class sets:
the order of classes does not matter; adding a class never makes a
non-fitting build fit; the chosen build fits every class; one class chooses
what select chooses.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import archspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hostfacts
from hostfacts.model import AmdFacts, GpuFacts, NvidiaDevice, NvidiaFacts, Probe
from scoring import Candidate, Outcome, Platform, parse_index, select, select_common
from scoring.policy import Policy
from scoring.vocabulary import COMPUTE_CAPABILITIES, CPU_TARGET, CUDA_VERSION, GPU_VENDOR, WEIGHT
from shim import render

DUMPS = Path(archspec.__file__).parent / "json" / "tests" / "targets"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OK = Probe(status="ok")
NONE = Probe(status="none", reason="looked, found none")


def _h100() -> GpuFacts:
    device = NvidiaDevice(index=0, name="NVIDIA H100", compute_capability="9.0", memory_mib=81559)
    return GpuFacts(
        nvidia=NvidiaFacts(probe=OK, driver_version="550.54.15", cuda_driver_version="12.4",
                           devices=(device,)),
        amd=AmdFacts(probe=NONE),
    )  # fmt: skip


CLASS_DUMPS = {
    "zen3": ("linux-ubuntu20.04-zen3", "x86_64"),
    "zen4": ("linux-rocky8.5-zen4", "x86_64"),
    "sapphirerapids": ("linux-unknown-sapphirerapids", "x86_64"),
    "skylake": ("linux-rhel7-skylake_avx512", "x86_64"),
    "neoverse_v2": ("linux-rhel9-neoverse_v2", "aarch64"),
    "zen4-h100": ("linux-rocky8.5-zen4", "x86_64"),
}


@functools.cache
def facts(name: str) -> hostfacts.HostFacts:
    dump, machine = CLASS_DUMPS[name]
    base = hostfacts.facts_from_cpuinfo(DUMPS / dump, machine)
    return base.model_copy(update={"gpu": _h100()}) if name.endswith("-h100") else base


def digest(label: str) -> str:
    return "sha256:" + hashlib.sha256(label.encode()).hexdigest()


def desc(label: str, target: str | None, arch: str = "amd64", **annotations: str) -> dict:
    d = {"mediaType": OCI_MANIFEST, "digest": digest(label), "size": 1234,
         "platform": {"architecture": arch, "os": "linux"}}  # fmt: skip
    notes = {CPU_TARGET: target} if target else {}
    notes.update({k.replace("__", "."): v for k, v in annotations.items()})
    if notes:
        d["annotations"] = notes
    return d


def index(*manifests: dict) -> list[Candidate]:
    return parse_index({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list(manifests)})


CUDA = {GPU_VENDOR: "nvidia", COMPUTE_CAPABILITIES: "9.0", CUDA_VERSION: ">=12.2"}

FULL = index(
    desc("generic", "x86_64"),
    desc("v3", "x86_64_v3"),
    desc("v4", "x86_64_v4"),
    desc("zen3", "zen3"),
    desc("zen4", "zen4"),
    desc("spr", "sapphirerapids"),
    desc("grace", "neoverse_v2", arch="arm64"),
    {**desc("cuda", "x86_64_v3"), "annotations": {CPU_TARGET: "x86_64_v3", **CUDA}},
)
NO_V4 = [c for c in FULL if c.annotations.get(CPU_TARGET) != "x86_64_v4"]


def build(decision) -> str:
    assert decision.outcome is Outcome.SELECTED, decision.reason
    return next(v.build for v in decision.verdicts if v.candidate == decision.chosen)


def chosen_key(decision):
    return decision.outcome, decision.chosen.digest if decision.chosen else None


# -- examples -------------------------------------------------------------------


def test_zen4_and_sapphirerapids_share_x86_64_v4():
    decision = select_common(
        FULL, {"zen4": facts("zen4"), "sapphirerapids": facts("sapphirerapids")}
    )
    assert build(decision) == "x86_64_v4"
    assert decision.reason.startswith(
        "x86_64_v4 is the common build for classes sapphirerapids, zen4"
    )
    # each class alone would take its own, more specific build
    assert build(select(FULL, facts("zen4"))) == "zen4"
    assert build(select(FULL, facts("sapphirerapids"))) == "sapphirerapids"


def test_without_a_v4_build_the_common_one_is_v3():
    decision = select_common(
        NO_V4, {"zen4": facts("zen4"), "sapphirerapids": facts("sapphirerapids")}
    )
    assert build(decision) == "x86_64_v3"
    assert decision.chosen.digest == digest(
        "v3"
    )  # the CPU build, before the CUDA one (index order)


def test_specific_on_one_class_does_not_beat_good_everywhere():
    # zen3 is deeper than x86_64_v3 but fits only the zen classes; on zen3+zen4 it
    # is common and its worst depth (zen3's) beats x86_64_v3's
    both_zen = select_common(FULL, {"zen3": facts("zen3"), "zen4": facts("zen4")})
    assert build(both_zen) == "zen3"
    # weight on a build that is generic everywhere does count (policy/weight first)
    weighted = index(desc("v3", "x86_64_v3"), desc("generic", "x86_64", **{WEIGHT: "5"}))
    decision = select_common(weighted, {"zen4": facts("zen4"), "skylake": facts("skylake")})
    assert build(decision) == "x86_64"


def test_zen4_and_neoverse_v2_are_refused_with_reasons():
    decision = select_common(FULL, {"zen4": facts("zen4"), "neoverse_v2": facts("neoverse_v2")})
    assert decision.outcome is Outcome.REFUSED and decision.chosen is None
    assert decision.reason == (
        "no build runs on every one of these node classes: neoverse_v2 fits neoverse_v2; "
        "zen4 fits x86_64, x86_64_v3, x86_64_v4, zen3, zen4"
    )
    assert "\n" not in decision.reason
    assert len(decision.verdicts) == len(FULL)
    assert not any(v.fits for v in decision.verdicts)
    for v in decision.verdicts:  # every failure says on which class it failed
        assert v.why_not.startswith(("zen4: ", "neoverse_v2: "))
        assert {c.detail.split(":")[0] for c in v.checks} == {"neoverse_v2", "zen4"}
    # the nearest: a build that fits one class, with the fewest failed checks
    assert decision.closest is not None
    assert decision.closest.digest in {digest("grace"), digest("generic")}
    text = render.to_text(decision, "example.org/app:1", None)
    assert (
        "refused: no build runs on every one of these node classes" in text and "closest:" in text
    )
    assert "FAIL platform: neoverse_v2: " in text


def test_a_class_with_no_build_is_named():
    x86_only = [c for c in FULL if c.platform and c.platform.architecture == "amd64"]
    decision = select_common(x86_only, {"zen4": facts("zen4"), "neoverse_v2": facts("neoverse_v2")})
    assert decision.outcome is Outcome.REFUSED
    assert decision.reason.endswith(
        "neoverse_v2 fits none; zen4 fits x86_64, x86_64_v3, x86_64_v4, zen3, zen4"
    )


def test_gpu_class_and_cpu_class_share_a_cpu_build():
    gpu_only = select(FULL, facts("zen4-h100"))
    assert gpu_only.chosen.digest == digest("cuda")  # alone, the GPU class takes the CUDA build
    decision = select_common(FULL, {"gpu": facts("zen4-h100"), "cpu": facts("sapphirerapids")})
    assert decision.chosen.digest == digest("v4")
    cuda = next(v for v in decision.verdicts if v.candidate.digest == digest("cuda"))
    assert not cuda.fits and cuda.why_not.startswith("cpu: needs an NVIDIA GPU")


def test_gpu_preferred_on_every_gpu_class():
    decision = select_common(FULL, {"a": facts("zen4-h100"), "b": facts("zen4-h100")})
    assert decision.chosen.digest == digest("cuda")


@pytest.mark.parametrize("name", sorted(CLASS_DUMPS))
@pytest.mark.parametrize("candidates", [FULL, NO_V4], ids=["full", "no-v4"])
def test_one_class_is_select(name, candidates):
    alone = select(candidates, facts(name))
    common = select_common(candidates, {name: facts(name)})
    assert chosen_key(common) == chosen_key(alone)
    if common.outcome is Outcome.SELECTED:
        assert common.reason.startswith(f"{build(alone)} is the common build for class {name}")
    for mine, theirs in zip(common.verdicts, alone.verdicts, strict=True):
        assert (mine.fits, mine.score, mine.build) == (theirs.fits, theirs.score, theirs.build)


def test_passthrough_without_compatibility_data():
    plain = index({"mediaType": OCI_MANIFEST, "digest": digest("p"), "size": 1,
                   "platform": {"architecture": "amd64", "os": "linux"}})  # fmt: skip
    decision = select_common(plain, {"zen4": facts("zen4"), "neoverse_v2": facts("neoverse_v2")})
    assert decision.outcome is Outcome.PASSTHROUGH and decision.chosen is None
    assert decision.reason == select(plain, facts("zen4")).reason


def test_policy_applies_on_every_class():
    pinned = select_common(FULL, {"zen4": facts("zen4"), "sapphirerapids": facts("sapphirerapids")},
                           policy=Policy(pin="x86_64_v3"))  # fmt: skip
    assert build(pinned) == "x86_64_v3"
    preferred = select_common(FULL, {"zen4": facts("zen4"), "zen3": facts("zen3")},
                              policy=Policy(prefer=("x86_64",)))  # fmt: skip
    assert build(preferred) == "x86_64"


def test_host_names_every_class_and_explain_shows_the_choice():
    decision = select_common(
        FULL, {"zen4": facts("zen4"), "sapphirerapids": facts("sapphirerapids")}
    )
    assert (
        decision.host.startswith("sapphirerapids: linux/amd64")
        and "; zen4: linux/amd64" in decision.host
    )
    text = render.to_text(
        decision, "example.org/app:1", "example.org/app@" + decision.chosen.digest
    )
    assert "selected: x86_64_v4 is the common build for classes sapphirerapids, zen4" in text
    chosen_row = next(line for line in text.splitlines() if line.startswith("->"))
    assert "x86_64_v4" in chosen_row and "fits" in chosen_row


def test_no_class_is_an_error():
    with pytest.raises(ValueError):
        select_common(FULL, {})


# -- properties -----------------------------------------------------------------

X86 = ["x86_64", "x86_64_v2", "x86_64_v3", "x86_64_v4", "haswell", "skylake_avx512", "icelake",
       "sapphirerapids", "zen2", "zen3", "zen4", "zen5"]  # fmt: skip
ARM = ["aarch64", "neoverse_n1", "neoverse_v1", "neoverse_v2"]
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def indexes(draw) -> list[Candidate]:
    n = draw(st.integers(1, 7))
    out = []
    for i in range(n):
        arm = draw(st.booleans())
        target = draw(st.sampled_from(ARM if arm else X86))
        notes = {CPU_TARGET: target}
        if draw(st.integers(0, 4)) == 0:
            notes.update(CUDA)
        if draw(st.integers(0, 4)) == 0:
            notes[WEIGHT] = str(draw(st.integers(-2, 3)))
        out.append(
            Candidate(
                position=i,
                media_type=OCI_MANIFEST,
                digest=digest(f"{i}-{target}-{sorted(notes.items())}"),
                size=1,
                platform=Platform(os="linux", architecture="arm64" if arm else "amd64"),
                annotations=notes,
            )
        )
    return out


class_sets = st.lists(st.sampled_from(sorted(CLASS_DUMPS)), min_size=1, max_size=4, unique=True)


@SETTINGS
@given(candidates=indexes(), names=class_sets, data=st.data())
def test_order_of_classes_does_not_matter(candidates, names, data):
    shuffled = data.draw(st.permutations(names))
    a = select_common(candidates, {n: facts(n) for n in names})
    b = select_common(candidates, {n: facts(n) for n in shuffled})
    assert a == b


@SETTINGS
@given(candidates=indexes(), names=class_sets, extra=st.sampled_from(sorted(CLASS_DUMPS)))
def test_adding_a_class_never_makes_a_build_fit(candidates, names, extra):
    before = select_common(candidates, {n: facts(n) for n in names})
    after = select_common(candidates, {n: facts(n) for n in {*names, extra}})
    for b, a in zip(before.verdicts, after.verdicts, strict=True):
        assert a.fits <= b.fits
        if a.fits:
            assert a.score.key() <= b.score.key()  # a worst-of-more is never better


@SETTINGS
@given(candidates=indexes(), names=class_sets)
def test_chosen_build_fits_every_class_and_ranks_first(candidates, names):
    decision = select_common(candidates, {n: facts(n) for n in names})
    alone = {n: select(candidates, facts(n)) for n in names}
    fits_all = [
        c for i, c in enumerate(candidates) if all(alone[n].verdicts[i].fits for n in names)
    ]
    if decision.outcome is Outcome.SELECTED:
        i = candidates.index(decision.chosen)
        assert all(alone[n].verdicts[i].fits for n in names)
        best = max((v for v in decision.verdicts if v.fits), key=lambda v: v.score.key())
        assert best.candidate == decision.chosen
    else:
        assert decision.outcome is Outcome.REFUSED and not fits_all
        for n in names:
            assert f"{n} fits" in decision.reason


@SETTINGS
@given(candidates=indexes(), name=st.sampled_from(sorted(CLASS_DUMPS)))
def test_one_class_chooses_what_select_chooses(candidates, name):
    assert chosen_key(select_common(candidates, {name: facts(name)})) == chosen_key(
        select(candidates, facts(name))
    )


def test_requested_platform_limits_the_choice():
    decision = select_common(
        FULL, {"zen4": facts("zen4")}, requested_platform=("linux", "arm64", None)
    )
    assert decision.outcome is Outcome.REFUSED
