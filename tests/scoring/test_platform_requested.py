"""A requested platform (``--platform``/``--arch``/``--variant``) limits the
choice to the builds the runtime itself would take for it
(containerd/platforms compare.go ``Only``), and imagefit ranks among those;
names are normalised in one place (:func:`scoring.platform.normalize`,
containerd/platforms database.go ``normalizeArch``). ``platform.features``
``cpu:TARGET`` and GPU tokens rank as the annotations they stand for.

arm64 requests are tested here, at the scoring level, on archspec's real
neoverse_v2 /proc/cpuinfo dump: through the shim, an arm64 request on this
x86_64 machine is emulation and left to the runtime
(tests/test_requested_platform.py).
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import archspec
import pytest

import hostfacts
from hostfacts.model import AmdFacts, GpuFacts, NvidiaDevice, NvidiaFacts, Probe
from scoring import Outcome, Platform, parse_index, select
from scoring.platform import (
    HostPlatform,
    check_requested,
    normalize,
    requested_variants,
    target_variant,
)
from scoring.vocabulary import CPU_TARGET

DUMPS = Path(archspec.__file__).parent / "json" / "tests" / "targets"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


@functools.cache
def facts(dump: str, machine: str = "x86_64", gpu: bool = False) -> hostfacts.HostFacts:
    base = hostfacts.facts_from_cpuinfo(DUMPS / dump, machine)
    if not gpu:
        return base
    ok = Probe(status="ok")
    h100 = NvidiaDevice(index=0, name="NVIDIA H100", compute_capability="9.0", memory_mib=81559)
    nvidia = NvidiaFacts(probe=ok, driver_version="550.54.15", cuda_driver_version="12.4",
                         devices=(h100,))  # fmt: skip
    amd = AmdFacts(probe=Probe(status="none", reason="none"))
    return base.model_copy(update={"gpu": GpuFacts(nvidia=nvidia, amd=amd)})


ZEN4 = "linux-rocky8.5-zen4"
HASWELL = "linux-rhel7-haswell"
SAPPHIRERAPIDS = "linux-unknown-sapphirerapids"
GRACE = "linux-rhel9-neoverse_v2"


def digest(label: str) -> str:
    return "sha256:" + hashlib.sha256(label.encode()).hexdigest()


def build(label: str, arch: str = "amd64", variant: str | None = None, target: str | None = None,
          features: tuple[str, ...] = ()) -> dict:  # fmt: skip
    platform = {"architecture": arch, "os": "linux"}
    if variant:
        platform["variant"] = variant
    if features:
        platform["features"] = list(features)
    d = {"mediaType": OCI_MANIFEST, "digest": digest(label), "size": 1234, "platform": platform}
    if target:
        d["annotations"] = {CPU_TARGET: target}
    return d


def index(*builds: dict):
    return parse_index({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list(builds)})


def chosen(decision) -> str | None:
    if decision.outcome is not Outcome.SELECTED:
        return None
    labels = {digest(n): n for n in NAMES}
    return labels[decision.chosen.digest]


NAMES = ["generic", "v2", "v3", "zen3", "zen4", "zen4-plain", "token-zen3", "icelake",
         "arm-base", "arm-v8.2", "arm-v8.5", "arm-v9", "arm-v9-plain", "arm-v8.6", "gpu", "cuda"]  # fmt: skip

AMD64_INDEX = index(
    build("generic", target="x86_64"),
    build("v2", variant="v2", target="x86_64_v2"),
    build("v3", variant="v3", target="x86_64_v3"),
    build("zen3", variant="v3", target="zen3"),
    build("zen4", variant="v4", target="zen4"),
    build("zen4-plain", target="zen4"),  # no variant: its annotation says v4
    build("token-zen3", features=("cpu:zen3",)),  # no variant: its token says v3
    build("icelake", variant="v4", target="icelake"),
)


# -- normalisation: one place ---------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "normal"),
    [  # containerd/platforms database.go normalizeArch / normalizeOS, case by case
        (("linux", "x86_64", None), ("linux", "amd64", None)),
        (("linux", "x86-64", "v3"), ("linux", "amd64", "v3")),
        (("Linux", "AMD64", "V1"), ("linux", "amd64", None)),
        (("linux", "i386", "v2"), ("linux", "386", None)),
        (("linux", "aarch64", "v8"), ("linux", "arm64", None)),
        (("linux", "arm64", "8"), ("linux", "arm64", None)),
        (("linux", "arm64", "v8.0"), ("linux", "arm64", None)),
        (("linux", "arm64", "9"), ("linux", "arm64", "v9")),
        (("linux", "arm64", "9.0"), ("linux", "arm64", "v9")),
        (("linux", "arm64", "v9.0"), ("linux", "arm64", "v9")),
        (("linux", "arm64", "v8.2"), ("linux", "arm64", "v8.2")),
        (("linux", "armhf", None), ("linux", "arm", "v7")),
        (("linux", "armel", "v5"), ("linux", "arm", "v6")),
        (("linux", "arm", None), ("linux", "arm", "v7")),
        (("linux", "arm", "7"), ("linux", "arm", "v7")),
        (("linux", "arm", "6"), ("linux", "arm", "v6")),
        (("macos", "arm64", None), ("darwin", "arm64", None)),
        (("linux", "ppc64le", "power9"), ("linux", "ppc64le", "power9")),
    ],
)
def test_normalize_as_containerd(given, normal):
    assert normalize(*given) == normal


# -- containerd's Only(): which variants a request accepts ------------------------------


def _accepts(request: str, build_platform: str) -> bool:
    """Only(request).Match(build), restricted to one architecture (another
    architecture never runs on the host here)."""
    os_, arch, *variant = request.split("/")
    b_os, b_arch, *b_variant = build_platform.split("/")
    host = HostPlatform(os="linux", architecture=normalize("", arch, None)[1], variants=(None,))
    plat = Platform(os=b_os, architecture=b_arch, variant=(b_variant or [None])[0])
    return check_requested(plat, (os_, arch, (variant or [None])[0]), host).passed


# containerd/platforms compare_test.go TestOnly, the amd64 and arm64 cases (our own
# restatement: the 386 and 32-bit arm rows are left out, see requested_variants)
ONLY = {
    "linux/amd64": (["linux/amd64"], ["linux/amd64/v2", "linux/arm64", "windows/amd64"]),
    "linux/amd64/v2": (
        ["linux/amd64", "linux/amd64/v1", "linux/amd64/v2"],
        ["linux/amd64/v3", "linux/amd64/v4", "linux/arm64", "windows/amd64"],
    ),
    "linux/amd64/v3": (["linux/amd64/v3", "linux/amd64/v2", "linux/amd64"], ["linux/amd64/v4"]),
    "linux/arm64/v9.6": (
        [
            "linux/arm64",
            "linux/arm64/v8",
            *(f"linux/arm64/v8.{m}" for m in range(1, 10)),
            "linux/arm64/v9",
            "linux/arm64/v9.0",
            *(f"linux/arm64/v9.{m}" for m in range(1, 7)),
        ],
        ["linux/amd64", "windows/amd64", "linux/arm64/v8.10", "linux/arm64/v9.7"],
    ),  # fmt: skip
    "linux/arm64/v9": (
        [
            "linux/arm64",
            "linux/arm64/v8",
            "linux/arm64/v8.1",
            "linux/arm64/v8.2",
            "linux/arm64/v8.3",
            "linux/arm64/v8.4",
            "linux/arm64/v8.5",
            "linux/arm64/v9",
            "linux/arm64/v9.0",
        ],
        ["linux/amd64", "linux/arm64/v8.6", "linux/arm64/v9.1"],
    ),  # fmt: skip
    "linux/arm64/v8.1": (
        ["linux/arm64", "linux/arm64/v8", "linux/arm64/v8.1"],
        ["linux/amd64", "linux/arm64/v9", "linux/arm64/v8.2"],
    ),
    "linux/arm64": (["linux/arm64", "linux/arm64/v8"], ["linux/arm64/v9", "linux/arm64/v8.1"]),
    "linux/aarch64/v8.2": (
        ["linux/arm64/v8.2", "linux/arm64/v8.1", "linux/arm64"],
        ["linux/arm64/v8.3"],
    ),
    "linux/x86_64/v3": (["linux/amd64/v3", "linux/amd64"], ["linux/amd64/v4"]),
    "linux/amd64/foo": (["linux/amd64/foo"], ["linux/amd64", "linux/amd64/v2"]),
    "linux/arm64/v10": ([], ["linux/arm64", "linux/arm64/v10"]),
}


@pytest.mark.parametrize("request_", sorted(ONLY))
def test_requested_variants_are_containerds_only(request_):
    matches, others = ONLY[request_]
    assert [b for b in matches if not _accepts(request_, b)] == []
    assert [b for b in others if _accepts(request_, b)] == []


def test_requested_variants_ladders():
    assert requested_variants("amd64", "v4") == ("v4", "v3", "v2", None)
    assert requested_variants("x86_64", None) == (None,)
    assert requested_variants("arm64", "v9.2") == (
        "v9.2", "v9.1", "v9", "v8.7", "v8.6", "v8.5", "v8.4", "v8.3", "v8.2", "v8.1", None,
    )  # fmt: skip
    assert requested_variants("arm64", "v8.10") == ()
    assert requested_variants("arm", "v7") == ("v7", "v6", "v5")
    assert requested_variants("ppc64le", "power9") == ("power9",)


@pytest.mark.parametrize(
    ("arch", "target", "needs"),
    [("amd64", "zen4", (True, "v4")), ("amd64", "haswell", (True, "v3")),
     ("amd64", "x86_64", (True, None)), ("arm64", "neoverse_v2", (True, "v9")),
     ("arm64", "a64fx", (True, "v8.2")), ("arm64", "aarch64", (True, None)),
     ("amd64", "neoverse_v2", (False, None)), ("amd64", "nosuchcpu", (False, None)),
     ("ppc64le", "power9le", (True, "power9"))],
)  # fmt: skip
def test_target_variant(arch, target, needs):
    assert target_variant(arch, target) == needs


# -- the choice on a zen4 host ----------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        (None, "zen4"),
        (("linux", "amd64", "v4"), "zen4"),
        (("linux", "amd64", "v5"), "zen4"),  # above the host: the host still limits
        (("linux", "amd64", "v3"), "zen3"),  # not zen4 (v4), not zen4-plain (its target is v4)
        (("linux", "x86_64", "v3"), "zen3"),  # an alias, normalised
        (("linux", "amd64", "v2"), "v2"),  # not zen3, not token-zen3 (cpu:zen3 is v3)
        (("linux", "amd64", "v1"), "generic"),
        (("linux", "amd64", None), "generic"),  # containerd: amd64 alone is the baseline
        (("linux", "amd64", "foo"), None),  # no build of that variant: refused
        (("linux", "arm64", None), None),
    ],
)
def test_a_request_limits_then_imagefit_ranks(requested, expected):
    decision = select(AMD64_INDEX, facts(ZEN4), requested_platform=requested)
    assert chosen(decision) == expected
    if expected is None:
        assert decision.outcome is Outcome.REFUSED


def test_the_refusal_says_why_each_build_is_not_the_platform_asked_for():
    decision = select(AMD64_INDEX, facts(ZEN4), requested_platform=("linux", "amd64", "v2"))
    why = {v.build: v.why_not for v in decision.verdicts if not v.fits}
    zen4 = next(v for v in decision.verdicts if v.candidate.digest == digest("zen4-plain"))
    check = next(c for c in zen4.checks if c.name == "requested-platform")
    assert not check.passed
    assert (
        check.detail
        == "zen4 code needs linux/amd64/v4, above the platform asked for (linux/amd64/v2)"
    )
    assert any(
        "linux/amd64/v3 is not the platform asked for (linux/amd64/v2)" in w for w in why.values()
    )


def test_a_v4_request_on_a_v3_host_gets_the_best_v3_build():
    decision = select(AMD64_INDEX, facts(HASWELL), requested_platform=("linux", "amd64", "v4"))
    assert chosen(decision) == "v3"


def test_a_request_with_no_architecture_is_the_hosts():
    assert (
        chosen(select(AMD64_INDEX, facts(ZEN4), requested_platform=("linux", "", "v3"))) == "zen3"
    )


# -- arm64 variants (scoring level: on this x86_64 machine the shim leaves arm64 alone) --

ARM64_INDEX = index(
    build("arm-base", arch="arm64"),
    build("arm-v8.2", arch="arm64", variant="v8.2"),
    build("arm-v8.5", arch="arm64", variant="v8.5"),
    build("arm-v9", arch="arm64", variant="v9", target="neoverse_v2"),
    build("arm-v9-plain", arch="arm64", target="neoverse_v2"),  # no variant: its target is v9
    build("arm-v8.6", arch="arm64", variant="v8.6"),  # v9.0 does not run v8.6 (containerd)
)


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        (None, "arm-v9"),
        (("linux", "arm64", "v9"), "arm-v9"),
        (("linux", "aarch64", "9.0"), "arm-v9"),
        (("linux", "arm64", "v8.5"), "arm-v8.5"),
        (("linux", "arm64", "v8.4"), "arm-v8.2"),
        (("linux", "arm64", "v8.2"), "arm-v8.2"),
        (("linux", "arm64", "v8"), "arm-base"),
        (("linux", "arm64", None), "arm-base"),
        (("linux", "arm64", "v8.0"), "arm-base"),
        (("linux", "arm64", "v8.10"), None),  # not a variant containerd knows: nothing matches
        (("linux", "amd64", None), None),
    ],
)
def test_arm64_variants_on_a_neoverse_v2_host(requested, expected):
    decision = select(ARM64_INDEX, facts(GRACE, "aarch64"), requested_platform=requested)
    assert chosen(decision) == expected


# -- platform.features tokens rank as what they stand for -------------------------------


def test_cpu_tokens_rank_like_the_target_annotation():
    tokens = index(
        build("generic"),
        build("v2", features=("cpu:haswell",)),
        build("zen4", features=("cpu:zen4",)),
        build("icelake", features=("icelake",)),
    )
    assert chosen(select(tokens, facts(ZEN4))) == "zen4"
    assert chosen(select(tokens, facts(HASWELL))) == "v2"
    assert chosen(select(tokens, facts(SAPPHIRERAPIDS))) == "icelake"
    decision = select(tokens, facts(ZEN4))
    assert "the most specific CPU target" in decision.reason


def test_a_token_and_an_annotation_of_one_target_score_alike():
    both = index(build("zen4", features=("cpu:zen4",)), build("zen4-plain", target="zen4"))
    token, annotated = select(both, facts(ZEN4)).verdicts
    assert token.score.key()[:-1] == annotated.score.key()[:-1]
    assert token.score.cpu > 0


def test_gpu_tokens_rank_like_the_gpu_annotations():
    gpu = index(build("generic"), build("gpu", features=("nv-compute-capability-9-0",)))
    assert chosen(select(gpu, facts(ZEN4, gpu=True))) == "gpu"
    assert chosen(select(gpu, facts(ZEN4))) == "generic"  # no GPU: the token build does not fit
    driver = index(build("generic"), build("cuda", features=("nvidia-550-0",)))
    assert chosen(select(driver, facts(ZEN4, gpu=True))) == "cuda"
