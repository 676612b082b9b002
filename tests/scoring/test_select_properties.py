"""Properties of scoring.select over generated indexes.

Indexes are lists of Candidates (amd64/arm64 platforms with and without
variants, archspec CPU targets of the x86_64 and aarch64 families, weights,
optional GPU/MPI/feature/fabric annotations, platform.features tokens,
optional NFD compatibility sets per build and for the whole index, an
optional site policy), chosen for a few fixed hosts: archspec's real
/proc/cpuinfo dumps, some with a fake NVIDIA or AMD GPU, an MPI library, a
kernel and glibc.

Properties: the decision does not depend on dict order; adding a build
that fits worse (or not at all) never changes the choice; removing the chosen
build picks the runner-up; a refusal happens exactly when the index carries
compatibility data and nothing fits; the same input gives the same decision;
the chosen build's score is the highest of the fitting builds.
"""

from __future__ import annotations

import functools
import hashlib
import os
import random
import subprocess
import sys
from pathlib import Path
from unittest import mock

import archspec
from archspec.cpu import TARGETS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hostfacts
import hostfacts.nfd
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
from scoring import Candidate, Outcome, Platform, select
from scoring.platform import normalize_architecture
from scoring.policy import Policy
from scoring.rules import CompatibilitySet, FeatureMatcher, MatchExpression, Rule
from scoring.vocabulary import (
    AMD_GFX,
    COMPUTE_CAPABILITIES,
    CONTAINER_KIND,
    CPU_FEATURES,
    CPU_TARGET,
    CPU_TARGET_COMPSPEC,
    CUDA_VERSION,
    FABRIC,
    GLIBC_VERSION,
    GPU_VENDOR,
    KERNEL_VERSION,
    MPI_ABI,
    MPI_IMPLEMENTATION,
    MPI_VERSION,
    WEIGHT,
)

DUMPS = Path(archspec.__file__).parent / "json" / "tests" / "targets"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
INDEX_DIGEST = "sha256:" + "1" * 64
OK = Probe(status="ok")
NONE = Probe(status="none", reason="looked, found none")

SETTINGS = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- hosts -------------------------------------------------------------------


def _nvidia(*ccs: str, cuda: str = "12.4", driver: str = "550.54.15") -> GpuFacts:
    devices = tuple(
        NvidiaDevice(index=i, name="NVIDIA Fake", compute_capability=cc, memory_mib=81559)
        for i, cc in enumerate(ccs)
    )
    return GpuFacts(
        nvidia=NvidiaFacts(
            probe=OK, driver_version=driver, cuda_driver_version=cuda, devices=devices
        ),
        amd=AmdFacts(probe=NONE),
    )


def _mpi(implementation: str, version: str, abi: str) -> MpiFacts:
    return MpiFacts(probe=OK, implementation=implementation, version=version, abi=abi)


SYSTEM = SystemFacts(
    probe=OK, kernel_release="6.1.0-18-amd64", kernel_version=(6, 1, 0), libc="glibc",
    glibc_version="2.36",
)  # fmt: skip
INFINIBAND = InterconnectFacts(probe=OK, fabrics=("infiniband",))
NO_GPU = GpuFacts(nvidia=NvidiaFacts(probe=NONE), amd=AmdFacts(probe=NONE))


@functools.cache
def _dump(name: str, machine: str) -> hostfacts.HostFacts:
    return hostfacts.facts_from_cpuinfo(DUMPS / name, machine)


# name -> (dump, machine, model_copy update)
HOSTS = {
    "zen4": ("linux-rocky8.5-zen4", "x86_64", {}),
    "haswell": ("linux-rhel7-haswell", "x86_64", {"system": SYSTEM}),
    "skylake_avx512+h100+mpich": (
        "linux-rhel7-skylake_avx512", "x86_64",
        {"gpu": _nvidia("9.0", "9.0"), "mpi": _mpi("mpich", "4.1.2", "mpich"),
         "system": SYSTEM, "interconnect": INFINIBAND},
    ),
    "ivybridge+openmpi": ("linux-rhel7-ivybridge", "x86_64", {"mpi": _mpi("openmpi", "4.1.5", "openmpi")}),
    "zen3+mi250+nompi": (
        "linux-ubuntu20.04-zen3", "x86_64",
        {"gpu": GpuFacts(nvidia=NvidiaFacts(probe=NONE), amd=AmdFacts(
            probe=OK, devices=(AmdGpu(node=1, gfx_target="gfx90a", gfx_target_version=90010),))),
         "mpi": MpiFacts(probe=NONE)},
    ),
    "zen4+a100x2+v100": ("linux-rocky8.5-zen4", "x86_64", {"gpu": _nvidia("8.0", "8.0", "7.0", cuda="12.2")}),
    "neoverse_v2+gh200+mpich": (
        "linux-rhel9-neoverse_v2", "aarch64",
        {"gpu": _nvidia("9.0"), "mpi": _mpi("craympich", "8.1.28", "mpich"), "system": SYSTEM},
    ),
    "neoverse_n1+nogpu": ("linux-amazon-neoverse_n1", "aarch64", {"gpu": NO_GPU, "mpi": MpiFacts(probe=NONE)}),
    "a64fx+openmpi": ("linux-rocky8-a64fx", "aarch64", {"mpi": _mpi("openmpi", "5.0.3", "openmpi")}),
}  # fmt: skip


@functools.cache
def host(name: str) -> hostfacts.HostFacts:
    dump, machine, update = HOSTS[name]
    return _dump(dump, machine).model_copy(update=update)


def lineage(name: str) -> list[str]:
    cpu = host(name).cpu
    return [cpu.target, *cpu.ancestors]


# -- index pieces ------------------------------------------------------------

TARGET_NAMES = sorted(n for n, t in TARGETS.items() if t.family.name in ("x86_64", "aarch64"))
PLATFORMS = [
    ("amd64", None), ("amd64", "v1"), ("amd64", "v2"), ("amd64", "v3"), ("amd64", "v4"), ("x86_64", None),
    ("arm64", None), ("arm64", "v8"), ("arm64", "v8.2"), ("arm64", "v8.5"), ("arm64", "v9"), ("arm64", "v9.0"),
    ("aarch64", None), None,
]  # fmt: skip
GPU_OPTIONS = [
    {}, {}, {GPU_VENDOR: "none"}, {GPU_VENDOR: "nvidia"}, {CUDA_VERSION: ">=12.2"}, {CUDA_VERSION: ">=12.6"},
    {GPU_VENDOR: "nvidia", COMPUTE_CAPABILITIES: "9.0"}, {COMPUTE_CAPABILITIES: "8.0,9.0"},
    {COMPUTE_CAPABILITIES: "7.0+", CUDA_VERSION: "12.0"}, {GPU_VENDOR: "amd"}, {AMD_GFX: "gfx90a,gfx942"},
    {AMD_GFX: "gfx1100"}, {GPU_VENDOR: "intel"},
]  # fmt: skip
MPI_OPTIONS = [
    {}, {}, {MPI_ABI: "mpich"}, {MPI_ABI: "openmpi"}, {MPI_ABI: "mpi-abi"},
    {MPI_IMPLEMENTATION: "openmpi", MPI_VERSION: ">=4.1,<5"}, {MPI_IMPLEMENTATION: "mpich,craympich"},
    {MPI_ABI: "mpich", MPI_VERSION: ">=4"},
]  # fmt: skip
EXTRA_OPTIONS = [
    {}, {}, {}, {CONTAINER_KIND: "application"}, {"org.opencontainers.image.title": "app"},
    {CPU_FEATURES: "avx2,fma"}, {CPU_FEATURES: "AVX512F"}, {CPU_FEATURES: "asimd"}, {CPU_FEATURES: "sve"},
    {FABRIC: "verbs"}, {FABRIC: "cxi,tcp"}, {KERNEL_VERSION: ">=5.14"}, {GLIBC_VERSION: ">=2.28,<2.40"},
]  # fmt: skip
TOKEN_OPTIONS = [
    (), (), (), ("cpu:haswell",), ("zen2",), ("neoverse_n1",), ("nvidia-535-0",), ("nv-compute-capability-9-0",),
    ("mystery-token",),
]  # fmt: skip


def _term(feature: str, **expressions: MatchExpression) -> FeatureMatcher:
    return FeatureMatcher(feature=feature, matchExpressions=expressions)


def _set(tag: str, weight: int, *terms: FeatureMatcher) -> CompatibilitySet:
    return CompatibilitySet(
        rules=(Rule(name=tag, matchFeatures=terms),), weight=weight, tag=tag, source=f"nfd:{tag}"
    )


EXISTS = MatchExpression(op="Exists")
SET_POOL = {
    "avx512": _set("avx512", 2, _term("cpu.cpuid", AVX512F=EXISTS, AVX512BW=EXISTS, AVX2=EXISTS)),
    "kernel": _set(
        "kernel",
        1,
        _term(
            "kernel.version",
            full=MatchExpression(op="Ge", value=("5.14",), type="version"),
            major=MatchExpression(op="Gt", value=("4",)),
        ),
    ),  # fmt: skip
    "generic": CompatibilitySet(weight=0, tag="generic", source="nfd:generic"),
    "sve": _set("sve", 3, _term("cpu.cpuid", SVE=EXISTS, ASIMD=EXISTS)),
    "h100": _set(
        "h100",
        5,
        _term("gpu.nvidia.device", compute_capability=MatchExpression(op="In", value=("9.0",))),
    ),
    "not-amd": _set(
        "not-amd", -1, _term("cpu.model", vendor_id=MatchExpression(op="NotIn", value=("AMD",)))
    ),
}
POLICIES = [
    Policy(prefer=("zen3",)), Policy(avoid=("x86_64", "aarch64")), Policy(prefer=("avx512", "haswell")),
    Policy(pin="neoverse_v2"), Policy(prefer=("h100",), avoid=("generic",)),
]  # fmt: skip

# Keys whose presence is compatibility data (docs/compatibility.md; container.kind is not).
DATA_KEYS = {
    CPU_TARGET, CPU_TARGET_COMPSPEC, CPU_FEATURES, GPU_VENDOR, CUDA_VERSION, COMPUTE_CAPABILITIES, AMD_GFX,
    MPI_ABI, MPI_IMPLEMENTATION, MPI_VERSION, KERNEL_VERSION, GLIBC_VERSION, FABRIC, WEIGHT,
}  # fmt: skip
BASELINE_VARIANTS = {None, "v1", "v8"}  # amd64 v1, arm64 v8: no variant after normalisation


def _maybe(draw, options: list, percent: int, empty=None):
    """One of `options` in `percent` % of the draws, else `empty`."""
    return draw(st.sampled_from(options)) if draw(st.integers(0, 99)) < percent else empty


@st.composite
def build_specs(draw, host_name: str) -> dict:
    """One build: everything needed to make its Candidate at any position.

    Biased towards builds the host can run (its own architecture, targets of
    its lineage, few extra requirements), so that most indexes have several
    fitting builds to rank."""
    annotations: dict[str, str] = {}
    if draw(st.integers(0, 99)) < 75:
        key = draw(st.sampled_from([CPU_TARGET, CPU_TARGET, CPU_TARGET_COMPSPEC]))
        annotations[key] = draw(
            st.sampled_from(lineage(host_name))
            if draw(st.integers(0, 99)) < 70
            else st.sampled_from(TARGET_NAMES)
        )
    weight = _maybe(draw, ["-2", "-1", "0", "1", "2", "3", "heavy"], 40)
    if weight is not None:
        annotations[WEIGHT] = weight
    for options, percent in ((GPU_OPTIONS, 35), (MPI_OPTIONS, 35), (EXTRA_OPTIONS, 25)):
        annotations.update(_maybe(draw, options, percent, {}))
    own = "arm64" if host(host_name).cpu.architecture == "aarch64" else "amd64"
    platforms = [p for p in PLATFORMS if p is not None and normalize_architecture(p[0]) == own]
    return {
        "platform": draw(st.sampled_from(platforms))
        if draw(st.integers(0, 99)) < 85
        else draw(st.sampled_from(PLATFORMS)),
        "annotations": annotations,
        "tokens": _maybe(draw, TOKEN_OPTIONS, 15, ()),
        "media_type": OCI_INDEX if draw(st.integers(0, 99)) < 4 else OCI_MANIFEST,
        "sets": draw(st.lists(st.sampled_from(sorted(SET_POOL)), max_size=2, unique=True))
        if draw(st.integers(0, 99)) < 30
        else [],
    }


@st.composite
def scenarios(draw) -> dict:
    host_name = draw(st.sampled_from(sorted(HOSTS)))
    specs = draw(st.lists(build_specs(host_name), min_size=1, max_size=7))
    for n, spec in enumerate(specs):
        spec["id"] = n
    return {
        "host": host_name,
        "specs": specs,
        "index_sets": _maybe(draw, [[name] for name in sorted(SET_POOL)], 15, []),
        "policy": _maybe(draw, POLICIES, 30),
    }


def _digest(spec: dict) -> str:
    return "sha256:" + hashlib.sha256(f"build-{spec['id']}".encode()).hexdigest()


def candidate(spec: dict, position: int, rnd: random.Random | None = None) -> Candidate:
    items = list(spec["annotations"].items())
    if rnd is not None:
        rnd.shuffle(items)
    plat = None
    if spec["platform"] is not None:
        arch, variant = spec["platform"]
        plat = Platform(architecture=arch, os="linux", variant=variant, features=spec["tokens"])
    return Candidate(
        position=position,
        digest=_digest(spec),
        media_type=spec["media_type"],
        size=1234,
        platform=plat,
        annotations=dict(items),
    )


def _shuffled_set(cs: CompatibilitySet, rnd: random.Random) -> CompatibilitySet:
    rules = []
    for rule in cs.rules:
        terms = []
        for term in rule.match_features:
            items = list((term.match_expressions or {}).items())
            rnd.shuffle(items)
            terms.append(term.model_copy(update={"match_expressions": dict(items)}))
        rules.append(rule.model_copy(update={"match_features": tuple(terms)}))
    return cs.model_copy(update={"rules": tuple(rules)})


def run(
    scenario: dict,
    specs: list[dict] | None = None,
    rnd: random.Random | None = None,
    shuffle_terms: bool = False,
):
    """select() on the scenario; with `rnd`, the annotations and artifact_sets
    dicts it passes are reordered, and with `shuffle_terms` also the
    matchExpressions of every NFD term."""
    specs = scenario["specs"] if specs is None else specs
    candidates = [candidate(s, i, rnd) for i, s in enumerate(specs)]
    sets: dict[str, tuple[CompatibilitySet, ...]] = {}
    for s in specs:
        if s["sets"]:
            sets[_digest(s)] = tuple(SET_POOL[name] for name in s["sets"])
    if scenario["index_sets"]:
        sets[INDEX_DIGEST] = tuple(SET_POOL[name] for name in scenario["index_sets"])
    if rnd is not None:
        items = [
            (k, tuple(_shuffled_set(cs, rnd) if shuffle_terms else cs for cs in v))
            for k, v in sets.items()
        ]
        rnd.shuffle(items)
        sets = dict(items)
    return select(
        candidates,
        host(scenario["host"]),
        artifact_sets=sets,
        index_digest=INDEX_DIGEST,
        policy=scenario["policy"],
    )


def carries_data(scenario: dict, specs: list[dict]) -> bool:
    """The index has compatibility data (docs/compatibility.md), judged from the
    specs. NFD sets attached to the index apply to its builds: an index with no
    build at all carries none (select passes an empty index through)."""
    if scenario["index_sets"] and specs:
        return True
    for s in specs:
        variant = s["platform"][1] if s["platform"] else None
        if DATA_KEYS & s["annotations"].keys() or s["sets"]:
            return True
        if s["platform"] is not None and (variant not in BASELINE_VARIANTS or s["tokens"]):
            return True
    return False


def _reordered(value, rnd: random.Random):
    """`value` with every dict's insertion order shuffled (lists keep their order)."""
    if isinstance(value, dict):
        items = [(k, _reordered(v, rnd)) for k, v in value.items()]
        rnd.shuffle(items)
        return dict(items)
    if isinstance(value, list):
        return [_reordered(v, rnd) for v in value]
    return value


def _best(verdicts):
    return max(verdicts, key=lambda v: v.score.key())


# -- properties --------------------------------------------------------------


def _essentials(decision) -> tuple:
    """What the decision is, without the order of the expressions it reports."""
    return (
        decision.outcome, decision.chosen, decision.reason, decision.closest, decision.host,
        tuple(
            (v.candidate, v.build, v.fits, v.score, tuple((c.name, c.passed) for c in v.checks),
             tuple((r.source, r.tag, r.is_match, tuple(rr.is_match for rr in r.rules)) for r in v.sets))
            for v in decision.verdicts
        ),
    )  # fmt: skip


@settings(SETTINGS, max_examples=50)  # three select() calls and a reordered host per example
@given(scenario=scenarios(), rnd=st.randoms(use_true_random=False))
def test_decision_does_not_depend_on_dict_order(scenario, rnd):
    plain = run(scenario)
    original = hostfacts.nfd.features
    calls = []

    def shuffled_features(facts):
        calls.append(1)
        return _reordered(original(facts), rnd)

    with mock.patch.object(hostfacts.nfd, "features", shuffled_features):
        shuffled = run(scenario, rnd=rnd)
        terms_shuffled = run(scenario, rnd=rnd, shuffle_terms=True)
    assert len(calls) == 2, "select() did not read hostfacts.nfd.features"
    # host features, annotations and the artifact_sets mapping in another order:
    # the very same decision, every check and explanation included
    assert shuffled == plain
    # an NFD term's matchExpressions in another order: the same decision; only
    # the order in which explain reports the expressions follows the author's
    assert _essentials(terms_shuffled) == _essentials(plain)


@SETTINGS
@given(scenario=scenarios(), extra=st.data())
def test_adding_a_worse_or_unfit_build_keeps_the_choice(scenario, extra):
    specs = scenario["specs"]
    before = run(scenario)
    new = extra.draw(build_specs(scenario["host"]), label="added")
    new["id"] = 1000
    at = extra.draw(st.integers(0, len(specs)), label="inserted at")
    grown = [*specs[:at], new, *specs[at:]]
    after = run(scenario, grown)
    added = next(v for v in after.verdicts if v.candidate.digest == _digest(new))
    if before.outcome is Outcome.SELECTED:
        old = next(v for v in after.verdicts if v.candidate.digest == before.chosen.digest)
        if added.fits and added.score.key() > old.score.key():
            assert after.chosen.digest == _digest(new)
        else:
            assert after.outcome is Outcome.SELECTED
            assert after.chosen.digest == before.chosen.digest
    elif before.outcome is Outcome.REFUSED:
        if added.fits:
            assert after.outcome is Outcome.SELECTED and after.chosen.digest == _digest(new)
        else:
            assert after.outcome is Outcome.REFUSED
    else:  # pass-through stays so when the new build carries no data either
        if not carries_data(scenario, [new]):
            assert after.outcome is Outcome.PASSTHROUGH


@SETTINGS
@given(scenario=scenarios())
def test_removing_the_chosen_build_picks_the_runner_up(scenario):
    specs = scenario["specs"]
    before = run(scenario)
    if before.outcome is not Outcome.SELECTED:
        return
    rest = [v for v in before.verdicts if v.fits and v.candidate.digest != before.chosen.digest]
    remaining = [s for s in specs if _digest(s) != before.chosen.digest]
    after = run(scenario, remaining)
    if not carries_data(scenario, remaining):  # the chosen build held all the data
        assert after.outcome is Outcome.PASSTHROUGH
    elif rest:
        assert after.outcome is Outcome.SELECTED
        assert after.chosen.digest == _best(rest).candidate.digest
    else:
        assert after.outcome is Outcome.REFUSED


@SETTINGS
@given(scenario=scenarios())
def test_refuses_exactly_when_data_and_nothing_fits(scenario):
    decision = run(scenario)
    data = carries_data(scenario, scenario["specs"])
    fits = any(v.fits for v in decision.verdicts)
    assert (decision.outcome is Outcome.REFUSED) == (data and not fits)
    assert (decision.outcome is Outcome.PASSTHROUGH) == (not data)
    assert (decision.outcome is Outcome.SELECTED) == (data and fits)
    assert (decision.chosen is not None) == (decision.outcome is Outcome.SELECTED)
    assert [v.candidate.position for v in decision.verdicts] == list(range(len(scenario["specs"])))
    for v in decision.verdicts:
        assert v.fits == all(c.passed for c in v.checks)
        assert (v.score is not None) == v.fits
        assert v.fits or v.why_not


@SETTINGS
@given(scenario=scenarios())
def test_same_input_same_decision(scenario):
    first, second = run(scenario), run(scenario)
    assert first == second
    assert first.model_dump_json() == second.model_dump_json()


@SETTINGS
@given(scenario=scenarios())
def test_chosen_score_is_the_highest(scenario):
    decision = run(scenario)
    if decision.outcome is not Outcome.SELECTED:
        return
    chosen = next(v for v in decision.verdicts if v.candidate == decision.chosen)
    assert chosen.fits
    for v in decision.verdicts:
        if v.fits and v is not chosen:
            assert chosen.score > v.score
            assert chosen.score >= v.score
            assert not v.score >= chosen.score
    assert chosen is _best([v for v in decision.verdicts if v.fits])


HASH_SEED_SCRIPT = """
import hashlib, json
from scoring import parse_index, select
from tests.benchmarks.scoring_bench import bench_host, build_index
from tests.scoring.test_select_properties import HOSTS, host
facts = bench_host()
candidates, sets = build_index(40, 16)
out = [select(candidates, facts, artifact_sets=sets).model_dump_json()]
demo = parse_index(json.load(open("shim/data/demo-index.json")))
out += [select(demo, host(name)).model_dump_json() for name in sorted(HOSTS)]
print(hashlib.sha256("".join(out).encode()).hexdigest())
"""


def test_same_decision_under_other_hash_seeds():
    """No set or hash order leaks into a decision: two interpreters with
    different PYTHONHASHSEED give byte-identical decisions."""
    repo = Path(__file__).resolve().parents[2]
    digests = set()
    for seed in ("1", "4242"):
        done = subprocess.run(
            [sys.executable, "-c", HASH_SEED_SCRIPT],
            cwd=repo, capture_output=True, text=True, timeout=120,
            env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(repo)},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        digests.add(done.stdout.strip())
    assert len(digests) == 1
