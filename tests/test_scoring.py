"""scoring: the pick on real hosts, platform ladders, pass-through, refusal,
tie-breaks and index validation. Scoring itself is pure; the only files read
here are fixtures (archspec's cpuinfo dumps, the embedded demo index)."""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import archspec
import pytest
from archspec.cpu import TARGETS

import hostfacts
import scoring
from hostfacts import CpuFacts, HostFacts
from scoring import InvalidIndexError, Outcome, parse_index, select
from scoring.index import Platform
from scoring.platform import check_platform, host_platform, normalize_variant, variant_target
from scoring.vocabulary import CPU_TARGET, CPU_TARGET_COMPSPEC

REPO = Path(__file__).resolve().parents[1]
DUMPS = Path(archspec.__file__).parent / "json" / "tests" / "targets"
DEMO = json.loads((REPO / "shim" / "data" / "demo-index.json").read_text())
DEMO_BY_TARGET = {m["annotations"][CPU_TARGET]: m["digest"] for m in DEMO["manifests"]}

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
REFUSED = "REFUSED"


@functools.cache
def dump_facts(name: str, machine: str) -> HostFacts:
    return hostfacts.facts_from_cpuinfo(DUMPS / name, machine)


def synthetic(target: str, machine: str | None = None) -> HostFacts:
    """Facts of a host whose archspec target is `target`, without any cpuinfo."""
    uarch = TARGETS[target]
    ancestors = sorted(uarch.ancestors, key=lambda a: -len(a.ancestors))
    return HostFacts(
        cpu=CpuFacts(
            architecture=machine or uarch.family.name,
            target=target,
            vendor=uarch.vendor,
            generic=uarch.generic.name,
            ancestors=tuple(a.name for a in ancestors),
            flags=(),
            source="synthetic",
        )
    )


def digest(label: str) -> str:
    return "sha256:" + hashlib.sha256(label.encode()).hexdigest()


def desc(
    label: str,
    arch: str = "amd64",
    variant: str | None = None,
    target: str | None = None,
    media_type: str = OCI_MANIFEST,
    annotations: dict | None = None,
    **platform_extra,
) -> dict:
    """One index descriptor; `label` makes its digest unique."""
    d: dict = {"mediaType": media_type, "digest": digest(label), "size": 1234}
    d["platform"] = {"architecture": arch, "os": "linux", **platform_extra}
    if variant:
        d["platform"]["variant"] = variant
    notes = dict(annotations or {})
    if target:
        notes[CPU_TARGET] = target
    if notes:
        d["annotations"] = notes
    return d


def index(*manifests: dict, media_type: str | None = OCI_INDEX) -> dict:
    doc: dict = {"schemaVersion": 2, "manifests": list(manifests)}
    if media_type:
        doc["mediaType"] = media_type
    return doc


def decide(doc: dict, facts: HostFacts):
    return select(parse_index(doc), facts)


def chosen_label(decision) -> str:
    if decision.outcome is Outcome.REFUSED:
        return REFUSED
    assert decision.outcome is Outcome.SELECTED, decision
    return decision.chosen.annotations[CPU_TARGET]


# -- the pick on real hosts, against the embedded demo index -------------------
#
# Expected builds worked out from archspec's DAG (the deepest demo target that
# is the host or one of its ancestors, within the host's platform ladder).
# The demo index builds: x86_64, x86_64_v2, x86_64_v3, x86_64_v4, haswell,
# skylake_avx512, icelake, sapphirerapids, zen2, zen3, zen4, zen5 (amd64);
# aarch64, neoverse_n1, neoverse_v1, neoverse_v2, a64fx (arm64); power9le.

DEMO_PICKS = [
    # Intel
    ("linux-rhel7-ivybridge", "x86_64", "x86_64_v2"),
    ("linux-rhel7-haswell", "x86_64", "haswell"),
    ("linux-rhel7-x86_64_v3", "x86_64", "x86_64_v3"),  # Haswell with AES off: not a haswell
    ("linux-rhel7-broadwell", "x86_64", "haswell"),
    ("linux-ubuntu18.04-broadwell", "x86_64", "haswell"),
    ("linux-rhel7-skylake_avx512", "x86_64", "skylake_avx512"),
    ("linux-centos7-cascadelake", "x86_64", "skylake_avx512"),  # icelake is not its ancestor
    ("linux-unknown-sapphirerapids", "x86_64", "sapphirerapids"),
    ("linux-ubuntu24.04-alderlake", "x86_64", "haswell"),
    ("linux-ubuntu26.04-arrowlake_s", "x86_64", "haswell"),
    # AMD
    ("linux-scientific7-k10", "x86_64", "x86_64"),
    ("linux-scientificfermi6-bulldozer", "x86_64", "x86_64_v2"),
    ("linux-scientific7-piledriver", "x86_64", "x86_64_v2"),
    ("linux-scientificfermi6-piledriver", "x86_64", "x86_64_v2"),
    ("linux-rhel6-piledriver", "x86_64", "x86_64_v2"),
    ("linux-rhel7-zen", "x86_64", "x86_64_v3"),  # zen2 is a child of zen, not an ancestor
    ("linux-ubuntu20.04-zen3", "x86_64", "zen3"),
    ("linux-rocky8.5-zen4", "x86_64", "zen4"),
    ("linux-rocky9-zen5", "x86_64", "zen5"),
    ("linux-rocky9-zen6", "x86_64", "zen5"),
    # Arm
    ("linux-amazon-cortex_a72", "aarch64", "aarch64"),
    ("linux-centos7-thunderx2", "aarch64", "aarch64"),
    ("linux-amazon-neoverse_n1", "aarch64", "neoverse_n1"),
    ("linux-amazon-neoverse_v1", "aarch64", "neoverse_v1"),
    ("linux-rhel8-neoverse_v1", "aarch64", "neoverse_v1"),
    ("linux-rhel9-neoverse_n2", "aarch64", "neoverse_n1"),
    ("linux-ubuntu22.04-neoverse_n2", "aarch64", "neoverse_n1"),
    ("linux-rhel9-neoverse_v2", "aarch64", "neoverse_v2"),
    ("linux-ubuntu22.04-neoverse_v2", "aarch64", "neoverse_v2"),
    ("linux-unknown-neoverse_v2", "aarch64", "neoverse_v2"),
    ("linux-ubuntu24.04-neoverse_v3ae", "aarch64", "neoverse_v2"),
    ("linux-rocky8-a64fx", "aarch64", "a64fx"),
    ("linux-ubuntu22.04-ampere1", "aarch64", "neoverse_n1"),
    ("linux-ubuntu22.04-ampere1a", "aarch64", "neoverse_n1"),
    ("linux-ubuntu26.04-olympus", "aarch64", "aarch64"),  # Vera: parent armv9.2a only
    ("linux-asahi-m1", "aarch64", "aarch64"),
    ("linux-asahi-m2", "aarch64", "aarch64"),
    # POWER
    ("linux-centos7-power8le", "ppc64le", REFUSED),  # power9le build needs POWER9
    ("linux-rhel8-power9", "ppc64le", "power9le"),
    ("linux-unknown-power10", "ppc64le", "power9le"),
    ("linux-rhel8-power9", "ppc64", REFUSED),  # big-endian: no ppc64 build at all
    # RISC-V: no build
    ("linux-sifive-u74mc", "riscv64", REFUSED),
    ("linux-spacemit-x60", "riscv64", REFUSED),
]


@pytest.mark.parametrize(("dump", "machine", "expected"), DEMO_PICKS)
def test_demo_pick_on_real_host(dump, machine, expected):
    facts = dump_facts(dump, machine)
    decision = select(parse_index(DEMO), facts)
    assert chosen_label(decision) == expected
    assert len(decision.verdicts) == len(DEMO["manifests"])
    if expected == REFUSED:
        assert decision.chosen is None
        for v in decision.verdicts:
            assert not v.fits and v.why_not and "\n" not in v.why_not
        assert "\n" not in decision.reason
    else:
        assert decision.chosen.digest == DEMO_BY_TARGET[expected]
        best = next(v for v in decision.verdicts if v.candidate == decision.chosen)
        assert best.fits and best.build == expected and best.why_not == ""
        # never a build the host cannot run
        for v in decision.verdicts:
            if v.fits:
                assert facts.cpu.can_run(v.build)


def test_demo_pick_table_is_broad():
    vendors = {dump_facts(d, m).cpu.vendor for d, m, _ in DEMO_PICKS}
    assert {"GenuineIntel", "AuthenticAMD", "ARM", "IBM"} <= vendors
    assert len(DEMO_PICKS) >= 24


# -- refusal: no build for the host's platform ----------------------------------

NO_POWER = index(
    desc("x86", target="x86_64"),
    desc("v3", variant="v3", target="x86_64_v3"),
    desc("arm", arch="arm64", target="aarch64"),
    desc("grace", arch="arm64", variant="v9", target="neoverse_v2"),
)


@pytest.mark.parametrize(
    ("dump", "machine"), [("linux-rhel8-power9", "ppc64le"), ("linux-unknown-power10", "ppc64le")]
)
def test_power_host_refused_without_ppc64le_build(dump, machine):
    decision = decide(NO_POWER, dump_facts(dump, machine))
    assert decision.outcome is Outcome.REFUSED
    assert decision.chosen is None
    assert len(decision.verdicts) == 4
    for v in decision.verdicts:
        assert not v.fits
        assert "\n" not in v.why_not
        assert "does not run on a linux/ppc64le host" in v.why_not
        assert str(v.candidate.platform.architecture) in v.why_not


def test_power_host_refused_synthetic():
    decision = decide(NO_POWER, synthetic("power9le"))
    assert decision.outcome is Outcome.REFUSED
    assert [v.checks[0].name for v in decision.verdicts] == ["platform"] * 4


# -- arm64: fall back to the generic build ------------------------------------

ARM_INDEX = index(
    desc("amd", target="x86_64"),
    desc("n1", arch="arm64", variant="v8.2", target="neoverse_n1"),
    desc("v1", arch="arm64", variant="v8.4", target="neoverse_v1"),
    desc("v2", arch="arm64", variant="v9", target="neoverse_v2"),
    desc("generic", arch="arm64", target="aarch64"),
)


@pytest.mark.parametrize("dump", ["linux-centos7-thunderx2", "linux-amazon-cortex_a72"])
def test_arm64_host_without_specific_build_gets_generic(dump):
    decision = decide(ARM_INDEX, dump_facts(dump, "aarch64"))
    assert decision.outcome is Outcome.SELECTED
    assert decision.chosen.digest == digest("generic")
    assert decision.chosen.position == 4
    neoverse = [v for v in decision.verdicts if v.build.startswith("neoverse")]
    assert len(neoverse) == 3 and not any(v.fits for v in neoverse)
    assert all(v.why_not and "\n" not in v.why_not for v in neoverse)


def test_arm64_generic_without_platform_variant_or_annotation():
    doc = index(
        desc("v2", arch="arm64", variant="v9", target="neoverse_v2"),
        desc("plain", arch="arm64"),
    )
    decision = decide(doc, dump_facts("linux-centos7-thunderx2", "aarch64"))
    assert decision.outcome is Outcome.SELECTED
    assert decision.chosen.digest == digest("plain")


# -- platform and variant ladders ----------------------------------------------


@pytest.mark.parametrize(
    ("target", "arch", "variants"),
    [
        ("k10", "amd64", (None,)),
        ("ivybridge", "amd64", ("v2", None)),
        ("haswell", "amd64", ("v3", "v2", None)),
        ("zen4", "amd64", ("v4", "v3", "v2", None)),
        ("skylake_avx512", "amd64", ("v4", "v3", "v2", None)),
        ("cortex_a72", "arm64", (None,)),
        ("thunderx2", "arm64", ("v8.1", None)),
        ("neoverse_n1", "arm64", ("v8.2", "v8.1", None)),
        ("neoverse_v1", "arm64", ("v8.4", "v8.3", "v8.2", "v8.1", None)),
        ("neoverse_v2", "arm64", ("v9", "v8.5", "v8.4", "v8.3", "v8.2", "v8.1", None)),
        (
            "neoverse_v3ae",
            "arm64",
            ("v9.2", "v9.1", "v9", "v8.7", "v8.6", "v8.5", "v8.4", "v8.3", "v8.2", "v8.1", None),
        ),
        ("power8le", "ppc64le", ("power8", None)),
        ("power9le", "ppc64le", ("power9", "power8", None)),
        ("power10le", "ppc64le", ("power10", "power9", "power8", None)),
        ("power9", "ppc64", (None,)),
        ("u74mc", "riscv64", (None,)),
    ],
)
def test_host_platform_ladder(target, arch, variants):
    host = host_platform(synthetic(target))
    assert host.os == "linux"
    assert host.architecture == arch
    assert host.variants == variants


def test_host_platform_str():
    assert str(host_platform(synthetic("haswell"))) == "linux/amd64/v3"
    assert str(host_platform(synthetic("neoverse_v2"))) == "linux/arm64/v9"
    assert str(host_platform(synthetic("cortex_a72"))) == "linux/arm64"


@pytest.mark.parametrize(
    ("arch", "variant", "normal"),
    [
        ("amd64", "v1", None),
        ("x86_64", "v1", None),
        ("amd64", "v2", "v2"),
        ("amd64", "V3", "v3"),
        ("amd64", None, None),
        ("amd64", "", None),
        ("arm64", "v8", None),
        ("arm64", "v8.0", None),
        ("aarch64", "v8", None),
        ("arm64", "v8.2", "v8.2"),
        ("arm64", "v9.0", "v9"),
        ("arm64", "v9", "v9"),
        ("arm64", "v9.2", "v9.2"),
        ("ppc64le", "power9", "power9"),
    ],
)
def test_normalize_variant(arch, variant, normal):
    assert normalize_variant(arch, variant) == normal


@pytest.mark.parametrize(
    ("arch", "variant", "target"),
    [
        ("amd64", "v3", "x86_64_v3"),
        ("x86_64", "v4", "x86_64_v4"),
        ("amd64", "v1", None),
        ("arm64", "v9", "armv9.0a"),
        ("arm64", "v9.0", "armv9.0a"),
        ("arm64", "v8.2", "armv8.2a"),
        ("arm64", "v8", None),
        ("ppc64le", "power9", "power9le"),
        ("amd64", "v7", None),
    ],
)
def test_variant_target(arch, variant, target):
    assert variant_target(Platform(architecture=arch, os="linux", variant=variant)) == target


def test_amd64_v4_candidate_fails_on_v3_host():
    check = check_platform(
        Platform(architecture="amd64", os="linux", variant="v4"),
        host_platform(synthetic("haswell")),
    )
    assert not check.passed
    assert check.name == "platform"
    assert "\n" not in check.detail
    assert "linux/amd64/v4" in check.detail and "linux/amd64/v3" in check.detail


def test_arm64_v9_runs_v8_5_but_not_v8_6():
    host = host_platform(synthetic("neoverse_v2"))
    assert check_platform(Platform(architecture="arm64", os="linux", variant="v8.5"), host).passed
    assert not check_platform(
        Platform(architecture="arm64", os="linux", variant="v8.6"), host
    ).passed
    assert check_platform(Platform(architecture="aarch64", os="linux", variant="v9.0"), host).passed


def test_x86_64_spelling_is_amd64():
    host = host_platform(synthetic("haswell"))
    assert check_platform(Platform(architecture="x86_64", os="linux", variant="v3"), host).passed


def test_os_features_fail():
    plat = Platform.model_validate(
        {"architecture": "amd64", "os": "linux", "os.features": ["win32k"]}
    )
    check = check_platform(plat, host_platform(synthetic("haswell")))
    assert not check.passed
    assert "win32k" in check.detail and "\n" not in check.detail


def test_other_os_fails():
    check = check_platform(
        Platform(architecture="amd64", os="windows"), host_platform(synthetic("haswell"))
    )
    assert not check.passed and "windows/amd64" in check.detail


def test_missing_platform_fails():
    doc = index(
        {
            "mediaType": OCI_MANIFEST,
            "digest": digest("x"),
            "size": 1,
            "annotations": {CPU_TARGET: "x86_64"},
        }
    )
    decision = decide(doc, synthetic("haswell"))
    assert decision.outcome is Outcome.REFUSED
    assert decision.verdicts[0].why_not == "descriptor has no platform"


def test_variant_only_index_selects_best_level():
    doc = index(
        desc("v1", variant="v1"),
        desc("v2", variant="v2"),
        desc("v3", variant="v3"),
        desc("v4", variant="v4"),
    )
    assert decide(doc, synthetic("haswell")).chosen.digest == digest("v3")
    assert decide(doc, synthetic("zen4")).chosen.digest == digest("v4")
    assert decide(doc, synthetic("k10")).chosen.digest == digest("v1")


# -- pass-through, vocabulary, tie-breaks --------------------------------------


def test_no_compatibility_data_passes_through():
    doc = index(desc("amd"), desc("arm", arch="arm64"), desc("amd-v1", variant="v1"))
    decision = decide(doc, synthetic("haswell"))
    assert decision.outcome is Outcome.PASSTHROUGH
    assert decision.chosen is None
    assert len(decision.verdicts) == 3


def test_unknown_annotation_is_not_compatibility_data():
    doc = index(
        desc(
            "amd",
            annotations={"org.example.flavour": "fast", "org.opencontainers.image.title": "x"},
        ),
        desc("arm", arch="arm64", variant="v8"),
    )
    assert decide(doc, synthetic("zen4")).outcome is Outcome.PASSTHROUGH


def test_compspec_key_is_read():
    assert CPU_TARGET_COMPSPEC == "org.supercontainers.hardware.cpu.optimized.version"
    doc = index(
        desc("generic", target="x86_64"),
        desc("zen3", annotations={CPU_TARGET_COMPSPEC: "zen3"}),
        desc("zen4", annotations={CPU_TARGET_COMPSPEC: "zen4"}),
    )
    decision = decide(doc, dump_facts("linux-ubuntu20.04-zen3", "x86_64"))
    assert decision.outcome is Outcome.SELECTED
    assert decision.chosen.digest == digest("zen3")
    zen4 = decision.verdicts[2]
    assert not zen4.fits and zen4.build == "zen4"
    assert zen4.why_not == "needs CPU target zen4; host zen3 cannot run it"


def test_compspec_key_alone_is_compatibility_data():
    doc = index(desc("zen5", annotations={CPU_TARGET_COMPSPEC: "zen5"}))
    assert decide(doc, synthetic("haswell")).outcome is Outcome.REFUSED


def test_unknown_target_never_fits():
    doc = index(desc("zen99", target="zen99"), desc("generic", target="x86_64"))
    for host in ("zen5", "zen6", "sapphirerapids", "x86_64"):
        decision = decide(doc, synthetic(host))
        assert decision.chosen.digest == digest("generic")
        assert not decision.verdicts[0].fits
        assert "needs unknown CPU target" in decision.verdicts[0].why_not
        assert "zen99" in decision.verdicts[0].why_not
    alone = decide(index(desc("zen99", target="zen99")), synthetic("zen5"))
    assert alone.outcome is Outcome.REFUSED


def test_target_of_other_family_names_the_mismatch():
    doc = index(desc("odd", arch="amd64", target="neoverse_v2"))
    decision = decide(doc, synthetic("zen4"))
    assert decision.outcome is Outcome.REFUSED
    assert "aarch64" in decision.verdicts[0].why_not and "x86_64" in decision.verdicts[0].why_not


def test_tie_between_equally_specific_builds_earlier_wins():
    # zen and x86_64_v4 both have 3 ancestors, and a zen4 host runs both
    assert len(TARGETS["zen"].ancestors) == len(TARGETS["x86_64_v4"].ancestors)
    first = index(desc("v4", variant="v4", target="x86_64_v4"), desc("zen", target="zen"))
    second = index(desc("zen", target="zen"), desc("v4", variant="v4", target="x86_64_v4"))
    host = synthetic("zen4")
    assert decide(first, host).chosen.digest == digest("v4")
    assert decide(second, host).chosen.digest == digest("zen")


def test_tie_between_identical_targets_earlier_wins():
    doc = index(
        desc("a", target="haswell"), desc("b", target="haswell"), desc("c", target="x86_64")
    )
    decision = decide(doc, synthetic("broadwell"))
    assert decision.chosen.digest == digest("a")
    assert decision.verdicts[0].score > decision.verdicts[1].score > decision.verdicts[2].score


def test_deeper_target_beats_earlier_position():
    doc = index(desc("generic", target="x86_64_v4"), desc("zen3", target="zen3"))
    assert decide(doc, synthetic("zen4")).chosen.digest == digest("zen3")


def test_deterministic():
    facts = dump_facts("linux-rocky9-zen5", "x86_64")
    a = select(parse_index(DEMO), facts)
    b = select(parse_index(json.loads(json.dumps(DEMO))), facts)
    assert a == b
    assert a.model_dump_json() == b.model_dump_json()


def test_outcome_values():
    assert {o.value for o in Outcome} == {"selected", "passthrough", "refused"}


# -- parse_index ---------------------------------------------------------------


def _good() -> dict:
    return index(desc("x", target="x86_64"))


def _with(mutate) -> dict:
    doc = _good()
    mutate(doc)
    return doc


HEX = "a" * 64

BAD_INDEXES = [
    ("list", [1, 2], "not a JSON object"),
    ("string", "index", "not a JSON object"),
    ("none", None, "not a JSON object"),
    ("schema-1", _with(lambda d: d.update(schemaVersion=1)), "schemaVersion is 1"),
    ("no-schema", _with(lambda d: d.pop("schemaVersion")), "at schemaVersion"),
    ("no-manifests", _with(lambda d: d.pop("manifests")), "at manifests"),
    ("manifest-type", _with(lambda d: d.update(mediaType=OCI_MANIFEST)), "not an image index"),
    ("digest-xyz", _with(lambda d: d["manifests"][0].update(digest="sha256:xyz")), "'sha256:xyz'"),
    ("digest-md5", _with(lambda d: d["manifests"][0].update(digest="md5:" + "a" * 32)), "md5:"),
    (
        "digest-upper",
        _with(lambda d: d["manifests"][0].update(digest="sha256:" + "A" * 64)),
        "expected sha256",
    ),
    (
        "digest-short",
        _with(lambda d: d["manifests"][0].update(digest="sha256:" + "a" * 63)),
        "expected sha256",
    ),
    (
        "digest-newline",
        _with(lambda d: d["manifests"][0].update(digest=f"sha256:{HEX}\n")),
        "expected sha256",
    ),
    (
        "digest-space",
        _with(lambda d: d["manifests"][0].update(digest=f" sha256:{HEX}")),
        "expected sha256",
    ),
    ("no-digest", _with(lambda d: d["manifests"][0].pop("digest")), "manifests.0.digest"),
    ("negative-size", _with(lambda d: d["manifests"][0].update(size=-1)), "manifests.0.size"),
    ("no-media-type", _with(lambda d: d["manifests"][0].pop("mediaType")), "manifests.0.mediaType"),
    (
        "no-architecture",
        _with(lambda d: d["manifests"][0]["platform"].pop("architecture")),
        "manifests.0.platform.architecture",
    ),
    ("no-os", _with(lambda d: d["manifests"][0]["platform"].pop("os")), "manifests.0.platform.os"),
    (
        "annotation-int",
        _with(lambda d: d["manifests"][0]["annotations"].update(n=1)),
        "manifests.0.annotations.n",
    ),
]


@pytest.mark.parametrize(("case", "doc", "needle"), BAD_INDEXES, ids=[c[0] for c in BAD_INDEXES])
def test_parse_index_errors(case, doc, needle):
    with pytest.raises(InvalidIndexError) as info:
        parse_index(doc)
    message = str(info.value)
    assert "\n" not in message
    assert needle in message
    assert isinstance(info.value, ValueError)


def test_parse_index_good():
    candidates = parse_index(DEMO)
    assert [c.position for c in candidates] == list(range(len(DEMO["manifests"])))
    assert [c.digest for c in candidates] == [m["digest"] for m in DEMO["manifests"]]
    assert candidates[0].platform.architecture == "amd64"
    assert candidates[0].annotations[CPU_TARGET] == "x86_64"


def test_index_without_media_type_is_accepted():
    assert len(parse_index(index(desc("x"), media_type=None))) == 1


def test_docker_manifest_list_accepted():
    doc = index(
        desc("x86", target="x86_64", media_type=DOCKER_MANIFEST),
        desc("hsw", variant="v3", target="haswell", media_type=DOCKER_MANIFEST),
        media_type=DOCKER_LIST,
    )
    assert scoring.INDEX_MEDIA_TYPES == {OCI_INDEX, DOCKER_LIST}
    decision = decide(doc, synthetic("broadwell"))
    assert decision.outcome is Outcome.SELECTED
    assert decision.chosen.digest == digest("hsw")
    assert decision.chosen.media_type == DOCKER_MANIFEST


@pytest.mark.parametrize(
    "media_type",
    [
        OCI_INDEX,
        DOCKER_LIST,
        "application/vnd.oci.empty.v1+json",
        "application/vnd.nfd.image-compatibility.v1alpha1",
    ],
)
def test_nested_index_or_artifact_never_fits(media_type):
    doc = index(
        desc("deep", variant="v4", target="zen4", media_type=media_type),
        desc("generic", target="x86_64"),
    )
    decision = decide(doc, synthetic("zen4"))
    assert decision.chosen.digest == digest("generic")
    odd = decision.verdicts[0]
    assert not odd.fits and odd.score is None
    assert odd.checks[0].name == "media-type"
    assert "not an image manifest" in odd.why_not and "\n" not in odd.why_not
    alone = decide(
        index(desc("deep", variant="v4", target="zen4", media_type=media_type)), synthetic("zen4")
    )
    assert alone.outcome is Outcome.REFUSED
