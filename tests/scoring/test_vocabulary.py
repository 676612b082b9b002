"""scoring.vocabulary, scoring.tokens and scoring.policy, key by key, and the
ranking order, on crafted hosts.

Every annotation key of docs/compatibility.md is compiled with
``compile_annotations`` and the rules evaluated with ``scoring.rules.evaluate_set``
against ``hostfacts.nfd.features`` of a hand-made HostFacts; the ranking
tests use small indexes whose expected winners are written literally.
"""

from __future__ import annotations

import hashlib

import pytest
from archspec.cpu import TARGETS

from hostfacts import CpuFacts, HostFacts
from hostfacts.model import (
    AmdFacts,
    AmdGpu,
    GpuFacts,
    InterconnectFacts,
    MpiFacts,
    NvidiaDevice,
    NvidiaFacts,
    Probe,
    SystemFacts,
)
from hostfacts.nfd import features
from scoring import Outcome, parse_index, select
from scoring import vocabulary as v
from scoring.policy import Policy
from scoring.rules import CompatibilitySet, FeatureMatcher, MatchExpression, Rule, evaluate_set
from scoring.tokens import compile_tokens

OK = Probe(status="ok")
NONE = Probe(status="none", reason="looked, found none")

# -- crafted hosts -------------------------------------------------------------

ZEN4_FLAGS = (
    "avx",
    "avx2",
    "avx512bw",
    "avx512f",
    "fma",
    "sse4_1",
    "sse4_2",
    "aes",
    "pni",
    "sha_ni",
)


def cpu(target: str = "zen4", flags: tuple[str, ...] = ZEN4_FLAGS) -> CpuFacts:
    uarch = TARGETS[target]
    ancestors = sorted(uarch.ancestors, key=lambda a: -len(a.ancestors))
    return CpuFacts(
        architecture={"x86_64": "x86_64", "aarch64": "aarch64"}[uarch.family.name],
        target=target,
        vendor=uarch.vendor,
        generic=uarch.generic.name,
        ancestors=tuple(a.name for a in ancestors),
        flags=flags,
        source="test",
    )


def nvidia(*ccs: str | None, cuda: str = "12.4", driver: str = "550.54.15") -> NvidiaFacts:
    return NvidiaFacts(
        probe=OK,
        driver_version=driver,
        cuda_driver_version=cuda,
        devices=tuple(NvidiaDevice(index=i, compute_capability=cc) for i, cc in enumerate(ccs)),
    )


def amd(*gfx: str) -> AmdFacts:
    return AmdFacts(
        probe=OK,
        devices=tuple(
            AmdGpu(node=i + 1, gfx_target=g, gfx_target_version=90010) for i, g in enumerate(gfx)
        ),
    )


SYSTEM = SystemFacts(
    probe=OK, kernel_release="6.1.0-18-amd64", kernel_version=(6, 1, 0), libc="glibc",
    glibc_version="2.36",
)  # fmt: skip
NO_GPU = GpuFacts(nvidia=NvidiaFacts(probe=NONE), amd=AmdFacts(probe=NONE))
MPICH = MpiFacts(probe=OK, implementation="mpich", version="4.1.2", abi="mpich")
NO_MPI = MpiFacts(probe=NONE)


def host(
    target: str = "zen4",
    *,
    flags: tuple[str, ...] = ZEN4_FLAGS,
    gpu: GpuFacts = NO_GPU,
    mpi: MpiFacts = NO_MPI,
    system: SystemFacts = SYSTEM,
    fabrics: tuple[str, ...] | None = (),
) -> HostFacts:
    interconnect = (
        InterconnectFacts()  # not probed: no network.fabric feature at all
        if fabrics is None
        else InterconnectFacts(probe=OK if fabrics else NONE, fabrics=fabrics)
    )
    return HostFacts(
        cpu=cpu(target, flags), gpu=gpu, mpi=mpi, system=system, interconnect=interconnect
    )


PLAIN = host()
H100 = host(gpu=GpuFacts(nvidia=nvidia("9.0"), amd=AmdFacts(probe=NONE)), mpi=MPICH)
NOT_PROBED = HostFacts(cpu=cpu())  # GPU, MPI, system, fabric: all unknown


def compiled(annotations: dict[str, str]) -> CompatibilitySet:
    cs = v.compile_annotations(annotations)
    assert cs is not None and cs.source == "annotations"
    return cs


def fits(annotations: dict[str, str], facts: HostFacts) -> bool:
    return evaluate_set(compiled(annotations), features(facts)).is_match


def rule_names(annotations: dict[str, str]) -> list[str]:
    return [r.name for r in compiled(annotations).rules]


# -- CPU target ----------------------------------------------------------------


@pytest.mark.parametrize("key", [v.CPU_TARGET, v.CPU_TARGET_COMPSPEC])
@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("zen4", True), ("zen3", True), ("zen", True), ("x86_64_v4", True), ("x86_64", True),
        (" Zen3 ", True),  # trimmed, lower-cased
        ("zen5", False), ("haswell", False), ("sapphirerapids", False), ("neoverse_v2", False),
        ("not-a-target", False),
    ],
)  # fmt: skip
def test_cpu_target(key, target, expected):
    assert rule_names({key: target}) == ["cpu.target"]
    assert fits({key: target}, PLAIN) is expected


def test_cpu_target_on_arm():
    graviton3 = host("neoverse_v1", flags=("asimd", "sve"))
    assert fits({v.CPU_TARGET: "neoverse_n1"}, graviton3)
    assert fits({v.CPU_TARGET: "armv8.2a"}, graviton3)
    assert not fits({v.CPU_TARGET: "neoverse_v2"}, graviton3)
    assert not fits({v.CPU_TARGET: "x86_64"}, graviton3)


def test_cpu_target_key_wins_over_compspec_key():
    both = {v.CPU_TARGET: "zen3", v.CPU_TARGET_COMPSPEC: "zen5"}
    assert fits(both, PLAIN)
    assert not fits({v.CPU_TARGET: "zen5", v.CPU_TARGET_COMPSPEC: "zen3"}, PLAIN)


# -- CPU features ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("avx512f", True), ("AVX512F", True), ("avx512f,avx2", True), ("avx512f avx2", True),
        ("sse4_2", True), ("SSE42", True),  # Linux sse4_2 is NFD SSE42
        ("fma", True), ("FMA3", True), ("aes", True), ("AESNI", True), ("pni", True), ("SSE3", True),
        ("sha_ni", True), ("SHA", True),
        ("amx_tile", False), ("AMXTILE", False), ("avx512f,amx_tile", False), ("FMA", False),
    ],
)  # fmt: skip
def test_cpu_features_linux_and_nfd_spelling(value, expected):
    assert rule_names({v.CPU_FEATURES: value}) == ["cpu.features"]
    assert fits({v.CPU_FEATURES: value}, PLAIN) is expected


# -- GPU vendor -------------------------------------------------------------------


def test_gpu_vendor_nvidia():
    notes = {v.GPU_VENDOR: "nvidia"}
    assert rule_names(notes) == ["gpu.nvidia"]
    assert fits(notes, H100)
    assert fits({v.GPU_VENDOR: " NVIDIA "}, H100)
    assert not fits(notes, PLAIN)  # probed: none
    assert not fits(notes, NOT_PROBED)  # unknown: no gpu.nvidia feature
    amd_only = host(gpu=GpuFacts(nvidia=NvidiaFacts(probe=NONE), amd=amd("gfx90a")))
    assert not fits(notes, amd_only)


def test_gpu_vendor_amd():
    notes = {v.GPU_VENDOR: "amd"}
    assert rule_names(notes) == ["gpu.amd"]
    assert fits(notes, host(gpu=GpuFacts(nvidia=NvidiaFacts(probe=NONE), amd=amd("gfx942"))))
    assert not fits(notes, H100)
    assert not fits(notes, PLAIN)
    assert not fits(notes, NOT_PROBED)


def test_gpu_vendor_none_is_a_cpu_build_that_fits_any_host():
    notes = {v.GPU_VENDOR: "none"}
    assert rule_names(notes) == []
    assert fits(notes, PLAIN) and fits(notes, H100) and fits(notes, NOT_PROBED)
    assert not v.requires_gpu(notes)
    assert v.requires_gpu({v.GPU_VENDOR: "nvidia"}) and v.requires_gpu({v.GPU_VENDOR: "amd"})


def test_gpu_vendor_invalid():
    with pytest.raises(v.InvalidAnnotation, match="'intel' is not nvidia, amd or none"):
        v.compile_annotations({v.GPU_VENDOR: "intel"})


# -- CUDA -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (">=12.2", True), (">=12.4", True), (">=12.6", False), (">=13", False),
        ("==12.4", True), ("==12.4.0", True), ("==12.2", False), ("=12.4", True),
        ("<13", True), ("<12.4", False), ("<=12.4", True), (">12.3", True), (">12.4", False),
        ("12.2", True), ("12.4", True), ("12.5", False),  # bare: >=
        (">=12.0,<12.4", False), (">=12.0,<13", True), ("v12.1", True),
    ],
)  # fmt: skip
def test_cuda_version_ranges(value, expected):
    notes = {v.CUDA_VERSION: value}
    assert rule_names(notes) == ["gpu.nvidia", "gpu.cuda"]  # CUDA implies an NVIDIA GPU
    assert fits(notes, H100) is expected


def test_cuda_needs_an_nvidia_driver():
    assert not fits({v.CUDA_VERSION: ">=11"}, PLAIN)
    assert not fits({v.CUDA_VERSION: ">=11"}, NOT_PROBED)
    assert v.requires_gpu({v.CUDA_VERSION: ">=11"})


@pytest.mark.parametrize("value", ["latest", ">= twelve", "12.2;13", "~12"])
def test_cuda_version_invalid(value):
    with pytest.raises(v.InvalidAnnotation, match="is not a version comparison"):
        v.compile_annotations({v.CUDA_VERSION: value})


# -- compute capabilities -----------------------------------------------------------


def gpu_host(*ccs: str | None) -> HostFacts:
    return host(gpu=GpuFacts(nvidia=nvidia(*ccs), amd=AmdFacts(probe=NONE)))


@pytest.mark.parametrize(
    ("value", "host_cc", "expected"),
    [
        # SASS runs within its major on an equal or higher minor (CUDA binary compatibility)
        ("8.0", "8.0", True), ("8.0", "9.0", False), ("8.0", "8.6", True), ("8.6", "8.0", False),
        ("9.0", "9.0", True), ("8.0,9.0", "9.0", True), ("8.0 9.0", "8.0", True),
        ("8.0,9.0", "8.9", True), ("9.0", "10.0", False), ("7.5", "8.0", False),
        ("7.0+", "7.0", True), ("7.0+", "7.5", True), ("7.0+", "8.0", True), ("7.0+", "9.0", True),
        ("7.0+", "6.1", False), ("8.0,9.0+", "10.0", True), ("8.0,9.0+", "8.6", True),
        ("9.0,9.0+", "8.6", False),
    ],
)  # fmt: skip
def test_compute_capabilities(value, host_cc, expected):
    notes = {v.COMPUTE_CAPABILITIES: value}
    assert rule_names(notes) == ["gpu.nvidia", "gpu.compute_capability"]
    assert fits(notes, gpu_host(host_cc)) is expected


def test_compute_capabilities_any_gpu_of_the_host():
    mixed = gpu_host("6.1", "8.0")
    assert fits({v.COMPUTE_CAPABILITIES: "8.0"}, mixed)
    assert fits({v.COMPUTE_CAPABILITIES: "6.1"}, mixed)
    assert not fits({v.COMPUTE_CAPABILITIES: "9.0"}, mixed)
    assert not fits({v.COMPUTE_CAPABILITIES: "7.0+"}, gpu_host(None))  # capability unknown
    assert not fits({v.COMPUTE_CAPABILITIES: "7.0+"}, PLAIN)


@pytest.mark.parametrize("value", ["sm_80", "8", "8.0++", "8.x"])
def test_compute_capabilities_invalid(value):
    with pytest.raises(v.InvalidAnnotation, match="is not a compute capability"):
        v.compile_annotations({v.COMPUTE_CAPABILITIES: value})


# -- AMD gfx ----------------------------------------------------------------------


def test_amd_gfx():
    mi250 = host(gpu=GpuFacts(nvidia=NvidiaFacts(probe=NONE), amd=amd("gfx90a", "gfx90a")))
    assert rule_names({v.AMD_GFX: "gfx90a"}) == ["gpu.amd"]
    assert fits({v.AMD_GFX: "gfx90a,gfx942"}, mi250)
    assert fits({v.AMD_GFX: "gfx942 gfx90a"}, mi250)
    assert not fits({v.AMD_GFX: "gfx942"}, mi250)
    assert not fits({v.AMD_GFX: "gfx90a"}, H100)
    assert not fits({v.AMD_GFX: "gfx90a"}, NOT_PROBED)
    assert fits({v.GPU_VENDOR: "amd", v.AMD_GFX: "gfx90a"}, mi250)
    assert v.requires_gpu({v.AMD_GFX: "gfx90a"})


# -- MPI --------------------------------------------------------------------------

OPENMPI = host(mpi=MpiFacts(probe=OK, implementation="openmpi", version="4.1.5", abi="openmpi"))
CRAY = host(mpi=MpiFacts(probe=OK, implementation="craympich", version="8.1.28", abi="mpich"))
MPICH_HOST = host(mpi=MPICH)


@pytest.mark.parametrize(
    ("notes", "facts", "expected"),
    [
        ({v.MPI_ABI: "mpich"}, MPICH_HOST, True), ({v.MPI_ABI: "mpich"}, CRAY, True),
        ({v.MPI_ABI: "MPICH"}, MPICH_HOST, True), ({v.MPI_ABI: "openmpi"}, MPICH_HOST, False),
        ({v.MPI_ABI: "openmpi"}, OPENMPI, True), ({v.MPI_ABI: "mpi-abi"}, MPICH_HOST, False),
        ({v.MPI_ABI: "mpich"}, PLAIN, False), ({v.MPI_ABI: "mpich"}, NOT_PROBED, False),
        ({v.MPI_IMPLEMENTATION: "mpich"}, MPICH_HOST, True), ({v.MPI_IMPLEMENTATION: "mpich"}, CRAY, False),
        ({v.MPI_IMPLEMENTATION: "intelmpi"}, MPICH_HOST, False),
        ({v.MPI_IMPLEMENTATION: "openmpi,mpich"}, MPICH_HOST, True),
        ({v.MPI_VERSION: ">=4.1,<5"}, MPICH_HOST, True), ({v.MPI_VERSION: ">=4.2"}, MPICH_HOST, False),
        ({v.MPI_VERSION: "==4.1.2"}, MPICH_HOST, True), ({v.MPI_VERSION: "==4.1"}, MPICH_HOST, False),
        ({v.MPI_VERSION: "<5"}, OPENMPI, True), ({v.MPI_VERSION: "4"}, OPENMPI, True),
        ({v.MPI_VERSION: ">=4"}, PLAIN, False),
        ({v.MPI_ABI: "mpich", v.MPI_VERSION: ">=8"}, CRAY, True),
        ({v.MPI_ABI: "mpich", v.MPI_VERSION: ">=8"}, MPICH_HOST, False),
    ],
)  # fmt: skip
def test_mpi(notes, facts, expected):
    assert fits(notes, facts) is expected
    assert v.names_mpi(notes)


def test_mpi_rule_names():
    notes = {v.MPI_ABI: "mpich", v.MPI_IMPLEMENTATION: "mpich", v.MPI_VERSION: ">=4"}
    assert rule_names(notes) == ["mpi.abi", "mpi.implementation", "mpi.version"]
    assert not v.names_mpi({v.GPU_VENDOR: "nvidia"})


def test_mpi_version_invalid():
    with pytest.raises(v.InvalidAnnotation):
        v.compile_annotations({v.MPI_VERSION: ">=4.1,latest"})


# -- kernel and glibc ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (">=5.14", True), ("<6", False), (">=6.1", True), ("==6.1.0", True), ("==6.1", True),
        (">6.1", False),  # 6.1.0-18-amd64 is 6.1.0
        ("<=6.1", True), (">=6.2", False), (">=5.14,<7", True), ("5.10", True), ("<6.1.1", True),
    ],
)  # fmt: skip
def test_kernel_version(value, expected):
    assert rule_names({v.KERNEL_VERSION: value}) == ["kernel.version"]
    assert fits({v.KERNEL_VERSION: value}, PLAIN) is expected


def test_kernel_version_unknown_host():
    assert not fits({v.KERNEL_VERSION: ">=3"}, NOT_PROBED)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(">=2.28", True), ("<2.30", False), ("==2.36", True), (">=2.28,<2.40", True), ("2.37", False)],
)
def test_glibc_version(value, expected):
    assert rule_names({v.GLIBC_VERSION: value}) == ["glibc.version"]
    assert fits({v.GLIBC_VERSION: value}, PLAIN) is expected


def test_glibc_version_on_musl_and_unknown_hosts():
    musl = host(system=SYSTEM.model_copy(update={"libc": "musl", "glibc_version": None}))
    assert not fits({v.GLIBC_VERSION: ">=2.17"}, musl)
    assert not fits({v.GLIBC_VERSION: ">=2.17"}, NOT_PROBED)


# -- fabric ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "fabrics", "expected"),
    [
        ("verbs", ("infiniband",), True), ("verbs", ("roce",), True), ("verbs", ("iwarp",), True),
        ("verbs", ("cxi",), False), ("verbs", (), False), ("verbs", None, False),
        ("cxi", ("cxi",), True), ("cxi", ("infiniband",), False), ("cxi,verbs", ("infiniband",), True),
        ("efa", ("efa",), True), ("efa", ("infiniband",), False), ("opa", ("opa",), True),
        ("infiniband", ("roce",), False), ("roce", ("roce",), True),
        ("tcp", (), True), ("tcp", None, True), ("cxi,tcp", (), True), ("VERBS", ("infiniband",), True),
    ],
)  # fmt: skip
def test_fabric(value, fabrics, expected):
    assert fits({v.FABRIC: value}, host(fabrics=fabrics)) is expected


def test_fabric_tcp_is_no_rule():
    assert rule_names({v.FABRIC: "tcp"}) == []
    assert rule_names({v.FABRIC: "verbs"}) == ["network.fabric"]


@pytest.mark.parametrize("value", ["unknown", "ib", "slingshot,verbs"])
def test_fabric_unknown(value):
    with pytest.raises(v.InvalidAnnotation, match="unknown fabric"):
        v.compile_annotations({v.FABRIC: value})


# -- weight, container.kind, unknown keys ------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [("5", 5), (" -2 ", -2), ("0", 0), ("+3", 3), ("", 0)]
)
def test_weight(value, expected):
    assert v.weight({v.WEIGHT: value}) == expected
    cs = v.compile_annotations({v.WEIGHT: value})
    assert cs is not None and cs.weight == expected and cs.rules == ()
    assert fits({v.WEIGHT: value}, PLAIN)  # a preference, not a requirement
    assert v.weight({}) == 0


@pytest.mark.parametrize("value", ["high", "1.5", "ten"])
def test_weight_invalid(value):
    with pytest.raises(v.InvalidAnnotation, match="is not an integer"):
        v.weight({v.WEIGHT: value})
    with pytest.raises(v.InvalidAnnotation):
        v.compile_annotations({v.WEIGHT: value})


def test_unknown_keys_are_ignored():
    unknown = {
        "org.opencontainers.image.title": "gromacs",
        "org.supercontainers.hardware.cpu.target.fancy": "zen9",
        "com.example.requires": "everything",
    }
    assert v.compile_annotations(unknown) is None
    with_known = {**unknown, v.CPU_TARGET: "zen3"}
    assert compiled(with_known) == compiled({v.CPU_TARGET: "zen3"})


def test_container_kind_is_not_a_requirement():
    assert v.CONTAINER_KIND not in v.REQUIREMENT_KEYS
    assert v.compile_annotations({v.CONTAINER_KIND: "application"}) is None
    assert v.compile_annotations({v.CONTAINER_KIND: "login"}) is None
    # an index whose only annotation is container.kind carries no compatibility data
    doc = index(build("app", annotations={v.CONTAINER_KIND: "application"}))
    assert select(parse_index(doc), PLAIN).outcome is Outcome.PASSTHROUGH


def test_every_requirement_key_is_tested_here():
    keys = {
        v.CPU_TARGET, v.CPU_TARGET_COMPSPEC, v.CPU_FEATURES, v.GPU_VENDOR, v.CUDA_VERSION,
        v.COMPUTE_CAPABILITIES, v.AMD_GFX, v.MPI_ABI, v.MPI_IMPLEMENTATION, v.MPI_VERSION,
        v.KERNEL_VERSION, v.GLIBC_VERSION, v.FABRIC, v.WEIGHT,
    }  # fmt: skip
    assert v.REQUIREMENT_KEYS == keys


def test_all_keys_together():
    notes = {
        v.CPU_TARGET: "x86_64_v3", v.CPU_FEATURES: "avx512f", v.GPU_VENDOR: "nvidia",
        v.CUDA_VERSION: ">=12.2", v.COMPUTE_CAPABILITIES: "8.0,9.0+", v.MPI_ABI: "mpich",
        v.MPI_IMPLEMENTATION: "mpich", v.MPI_VERSION: ">=4.1,<5", v.KERNEL_VERSION: ">=5.14",
        v.GLIBC_VERSION: ">=2.28", v.FABRIC: "verbs", v.WEIGHT: "7", v.CONTAINER_KIND: "login",
    }  # fmt: skip
    assert rule_names(notes) == [
        "cpu.target", "cpu.features", "gpu.nvidia", "gpu.cuda", "gpu.compute_capability", "mpi.abi",
        "mpi.implementation", "mpi.version", "kernel.version", "glibc.version", "network.fabric",
    ]  # fmt: skip
    assert compiled(notes).weight == 7
    assert not fits(notes, H100)  # no fabric
    assert fits(
        notes,
        H100.model_copy(update={"interconnect": InterconnectFacts(probe=OK, fabrics=("roce",))}),
    )


# -- platform.features tokens ------------------------------------------------------


def token_fits(tokens: tuple[str, ...], facts: HostFacts) -> bool:
    cs = compile_tokens(tokens)
    assert cs is not None and cs.source == "platform.features"
    # the compute capability tokens together make one rule: the code the build has
    names = [f"platform.features {t}" for t in tokens if not t.startswith("nv-compute-capability-")]
    if len(names) < len(tokens):
        names.append("platform.features nv-compute-capability")
    assert [r.name for r in cs.rules] == names
    return evaluate_set(cs, features(facts)).is_match


@pytest.mark.parametrize(
    ("tokens", "facts", "expected"),
    [
        (("cpu:zen3",), PLAIN, True), (("cpu:zen4",), PLAIN, True), (("cpu:zen5",), PLAIN, False),
        (("cpu:haswell",), PLAIN, False),  # not an ancestor of zen4
        (("zen3",), PLAIN, True), (("x86_64_v4",), PLAIN, True), (("neoverse_v2",), PLAIN, False),
        (("nv-compute-capability-9-0",), H100, True), (("nv-compute-capability-8-0",), H100, False),
        (("nv-compute-capability-9-0",), PLAIN, False),
        (("nv-compute-capability-8-0", "nv-compute-capability-9-0"), H100, True),  # either code runs
        (("nvidia-535-0",), H100, True), (("nvidia-550-54",), H100, True), (("nvidia-560-0",), H100, False),
        (("nvidia-535-0",), PLAIN, False),
        (("cpu:zen3", "nvidia-535-0"), H100, True), (("cpu:zen3", "nvidia-560-0"), H100, False),
        (("avx512",), PLAIN, False),  # not an archspec target: unknown, unsatisfied
        (("cpu:not-a-target",), PLAIN, False), (("os:linux",), PLAIN, False), (("mystery",), H100, False),
    ],
)  # fmt: skip
def test_tokens(tokens, facts, expected):
    assert token_fits(tokens, facts) is expected


def test_no_tokens():
    assert compile_tokens(()) is None


# -- selection helpers --------------------------------------------------------------

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
LABELS: dict[str, str] = {}  # digest -> label of every build made here


def digest(label: str) -> str:
    return "sha256:" + hashlib.sha256(label.encode()).hexdigest()


def build(label: str, *, arch: str = "amd64", variant: str | None = None, **notes) -> dict:
    """One descriptor labelled `label`; `notes` are vocabulary constant names
    (CPU_TARGET=..., WEIGHT=...) or ``annotations={full key: value}``."""
    annotations = dict(notes.pop("annotations", {}))
    annotations.update({getattr(v, k): str(val) for k, val in notes.items()})
    platform = {"architecture": arch, "os": "linux", **({"variant": variant} if variant else {})}
    LABELS[digest(label)] = label
    d = {"mediaType": OCI_MANIFEST, "digest": digest(label), "size": 1, "platform": platform}
    if annotations:
        d["annotations"] = annotations
    return d


def index(*manifests: dict) -> dict:
    return {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": list(manifests)}  # fmt: skip


def decide(doc: dict, facts: HostFacts, **kwargs):
    return select(parse_index(doc), facts, **kwargs)


def winner(doc: dict, facts: HostFacts, **kwargs) -> str:
    """The label of the chosen build, or REFUSED / PASSTHROUGH."""
    decision = decide(doc, facts, **kwargs)
    if decision.outcome is not Outcome.SELECTED:
        return decision.outcome.name
    return LABELS[decision.chosen.digest]


# -- ranking order: weight > GPU > MPI > CPU depth > index order --------------------

H100_MPICH = H100  # zen4, one H100 (9.0, CUDA 12.4), MPICH 4.1.2


def test_weight_beats_gpu():
    doc = index(
        build("gpu", CPU_TARGET="x86_64_v3", GPU_VENDOR="nvidia", COMPUTE_CAPABILITIES="9.0"),
        build("cpu-weighted", CPU_TARGET="x86_64_v3", WEIGHT=1),
    )
    assert winner(doc, H100_MPICH) == "cpu-weighted"
    assert "higher weight" in decide(doc, H100_MPICH).reason


def test_gpu_beats_mpi():
    doc = index(
        build("mpi", CPU_TARGET="zen4", MPI_ABI="mpich"),
        build("gpu", CPU_TARGET="x86_64", CUDA_VERSION=">=12.2"),
    )
    assert winner(doc, H100_MPICH) == "gpu"
    assert "a GPU build for this GPU" in decide(doc, H100_MPICH).reason
    assert winner(doc, MPICH_HOST) == "mpi"  # no GPU: the GPU build does not fit


def test_mpi_beats_cpu_depth():
    doc = index(
        build("zen4", CPU_TARGET="zen4"),
        build("generic-mpich", CPU_TARGET="x86_64", MPI_ABI="mpich"),
    )
    assert winner(doc, MPICH_HOST) == "generic-mpich"
    assert "built for this host's MPI" in decide(doc, MPICH_HOST).reason
    assert winner(doc, OPENMPI) == "zen4"  # an MPICH build does not fit an Open MPI host


def test_cpu_depth_beats_index_order():
    doc = index(
        build("x86_64_v3", variant="v3", CPU_TARGET="x86_64_v3"),
        build("zen3", variant="v3", CPU_TARGET="zen3"),
        build("zen5", variant="v4", CPU_TARGET="zen5"),
    )
    assert winner(doc, PLAIN) == "zen3"
    assert "the most specific CPU target" in decide(doc, PLAIN).reason


def test_variant_counts_as_its_generic_level():
    doc = index(
        build("annotated-v3", variant="v3", CPU_TARGET="x86_64_v3"),
        build("plain-v4", variant="v4"),
        build("plain", CPU_TARGET="x86_64"),
    )
    assert winner(doc, PLAIN) == "plain-v4"
    assert winner(doc, host("haswell", flags=())) == "annotated-v3"


def test_index_order_is_the_last_tie_break():
    doc = index(build("zen2-first", CPU_TARGET="zen2"), build("zen2-second", CPU_TARGET="zen2"))
    assert winner(doc, PLAIN) == "zen2-first"
    assert "first in index order" in decide(doc, PLAIN).reason
    swapped = index(build("zen2-second", CPU_TARGET="zen2"), build("zen2-first", CPU_TARGET="zen2"))
    assert winner(swapped, PLAIN) == "zen2-second"


def test_full_ladder():
    doc = index(
        build("generic", CPU_TARGET="x86_64"),
        build("zen4", CPU_TARGET="zen4"),
        build("mpich", CPU_TARGET="x86_64_v2", MPI_ABI="mpich"),
        build("h100", CPU_TARGET="x86_64_v2", GPU_VENDOR="nvidia", COMPUTE_CAPABILITIES="9.0"),
        build("h100-weighted", CPU_TARGET="x86_64", GPU_VENDOR="nvidia", WEIGHT=2),
        build("cpu-weighted", CPU_TARGET="x86_64", WEIGHT=2),
        build("a100", CPU_TARGET="zen4", WEIGHT=9, COMPUTE_CAPABILITIES="8.0"),
    )
    assert winner(doc, H100_MPICH) == "h100-weighted"
    assert winner(doc, MPICH_HOST) == "cpu-weighted"
    assert winner(doc, PLAIN) == "cpu-weighted"
    assert winner(doc, gpu_host("8.0")) == "a100"


def test_nfd_set_weight_adds_to_the_annotation_weight():
    doc = index(
        build("w4", CPU_TARGET="zen4", WEIGHT=4), build("w1", CPU_TARGET="x86_64", WEIGHT=1)
    )
    heavy = CompatibilitySet(weight=5, tag="heavy", source="nfd:test")
    never = CompatibilitySet(
        rules=(Rule(name="never", matchFeatures=(FeatureMatcher(feature="cpu.cpuid",
               matchExpressions={"NOPE": MatchExpression(op="Exists")}),)),),
        weight=100, tag="never", source="nfd:test",
    )  # fmt: skip
    sets = {digest("w1"): (never, heavy)}
    assert winner(doc, PLAIN) == "w4"
    assert (
        winner(doc, PLAIN, artifact_sets=sets) == "w1"
    )  # 1 + 5 > 4; the unfit set's 100 counts not


def test_a_build_with_an_invalid_annotation_never_fits():
    doc = index(
        build("bad", CPU_TARGET="zen4", GPU_VENDOR="intel"), build("ok", CPU_TARGET="x86_64")
    )
    decision = decide(doc, PLAIN)
    assert winner(doc, PLAIN) == "ok"
    bad = decision.verdicts[0]
    assert not bad.fits and "invalid annotation" in bad.why_not
    assert winner(index(build("bad-weight", WEIGHT="lots")), PLAIN) == "REFUSED"


# -- policy ----------------------------------------------------------------------------


def test_policy_rank_and_pin():
    names = Policy.names("sha256:abc", "zen4", ("fast",))
    assert names == {"sha256:abc", "zen4", "fast"}
    assert Policy().rank(names) == 0 and not Policy().pinned_out(names)
    assert Policy(prefer=("zen4",)).rank(names) == 1
    assert Policy(prefer=("zen4", "x")).rank(names) == 2
    assert Policy(prefer=("x", "fast")).rank(names) == 1
    assert Policy(avoid=("zen4",)).rank(names) == -1
    assert Policy(prefer=("fast",), avoid=("zen4",)).rank(names) == 1  # prefer wins
    assert not Policy(pin="fast").pinned_out(names)
    assert not Policy(pin="sha256:abc").pinned_out(names)
    assert Policy(pin="zen3").pinned_out(names)


POLICY_INDEX = index(
    build("generic", CPU_TARGET="x86_64"),
    build("zen3", CPU_TARGET="zen3"),
    build("zen4", CPU_TARGET="zen4"),
    build("heavy-v2", CPU_TARGET="x86_64_v2", WEIGHT=10),
)


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (None, "heavy-v2"),
        (Policy(pin="zen3"), "zen3"),
        (Policy(pin=digest("generic")), "generic"),
        (Policy(pin="zen5"), "REFUSED"),  # pinned build is not in the index
        (Policy(prefer=("zen3",)), "zen3"),  # policy beats weight
        (Policy(prefer=("zen3", "zen4")), "zen3"),  # an earlier entry is stronger
        (Policy(prefer=("zen4", "zen3")), "zen4"),
        (Policy(prefer=("zen5",)), "heavy-v2"),  # names nothing here
        (Policy(avoid=("x86_64_v2",)), "zen4"),  # avoided ranks below every neutral build
        (Policy(avoid=("x86_64_v2", "zen4", "zen3", "x86_64")), "heavy-v2"),  # all avoided: weight again
        (Policy(prefer=("x86_64",), avoid=("x86_64",)), "generic"),  # prefer wins over avoid
    ],
)  # fmt: skip
def test_policy_ranking(policy, expected):
    assert winner(POLICY_INDEX, PLAIN, policy=policy) == expected


def test_policy_pin_of_a_build_that_does_not_fit_refuses():
    decision = decide(POLICY_INDEX, host("haswell", flags=()), policy=Policy(pin="zen4"))
    assert decision.outcome is Outcome.REFUSED
    checks = {LABELS[vd.candidate.digest]: vd.why_not for vd in decision.verdicts}
    assert "site policy pins zen4" in checks["generic"]
    assert "zen4" in checks["zen4"]


def test_policy_names_nfd_set_tags():
    doc = index(build("a", CPU_TARGET="zen3"), build("b", CPU_TARGET="x86_64"))
    sets = {digest("b"): (CompatibilitySet(tag="preferred", source="nfd:test"),)}
    assert winner(doc, PLAIN, artifact_sets=sets) == "a"
    assert winner(doc, PLAIN, artifact_sets=sets, policy=Policy(prefer=("preferred",))) == "b"
    assert winner(doc, PLAIN, artifact_sets=sets, policy=Policy(pin="preferred")) == "b"
    assert (
        "site policy"
        in decide(doc, PLAIN, artifact_sets=sets, policy=Policy(prefer=("preferred",))).reason
    )


@pytest.mark.parametrize("key", [
    "org.supercontainers.mpi.abi", "org.supercontainers.mpi.implementation",
    "org.supercontainers.hardware.gpu.compute_capabilities", "org.supercontainers.hardware.gpu.amd.gfx",
    "org.supercontainers.hardware.cpu.features", "org.supercontainers.network.fabric",
])  # fmt: skip
def test_a_list_that_names_nothing_is_unreadable(key):
    from scoring.vocabulary import InvalidAnnotation, compile_annotations

    with pytest.raises(InvalidAnnotation, match="names nothing"):
        compile_annotations({key: " , "})
