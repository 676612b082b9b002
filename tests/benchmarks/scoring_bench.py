"""Benchmark: scoring.select on a large index whose builds carry NFD rules.

Builds an index of N candidates (amd64, variants v1..v4), each with one
NFD-style CompatibilitySet of R rules passed to ``scoring.select`` as
``artifact_sets``. The rules mix operators over the features a real NFD
artifact names: ``cpu.cpuid`` flags (Exists, DoesNotExist), ``kernel.version``
(Ge/GtLt with ``type: version``, Gt on an integer), ``pci.device`` instances
(In, InRegexp), ``archspec.compatible`` (the CPU target), ``cpu.model``,
``system.osrelease`` (GeLe), ``kernel.loadedmodule`` (matchName),
``libc.version``, ``gpu.nvidia.device``, and ``matchAny`` alternatives. Most
sets fit the host (a zen4 node with an H100, InfiniBand, Debian 12), so every
rule is evaluated and the builds are ranked.

Prints the median wall time of ``select()`` over the runs (and per candidate
and per rule), and the time of ``hostfacts.nfd.features()``. Pure CPU work:
no registry, no runtime.

    python -m tests.benchmarks.scoring_bench [--candidates 1000] [--rules 20] [--runs 7]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time
from pathlib import Path

import archspec

import hostfacts
from hostfacts.model import (
    GpuFacts,
    InterconnectFacts,
    NvidiaDevice,
    NvidiaFacts,
    OsRelease,
    PciDevice,
    Probe,
    SystemFacts,
)
from hostfacts.nfd import features
from scoring import Candidate, Outcome, Platform, select
from scoring.rules import (
    CompatibilitySet,
    FeatureMatcher,
    MatchAnyElement,
    MatchExpression,
    Rule,
)

DUMPS = Path(archspec.__file__).parent / "json" / "tests" / "targets"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OK = Probe(status="ok")


def bench_host() -> hostfacts.HostFacts:
    """A zen4 node (archspec's real cpuinfo dump) with an H100, InfiniBand,
    Debian 12: every feature the rules name is present."""
    base = hostfacts.facts_from_cpuinfo(DUMPS / "linux-rocky8.5-zen4", "x86_64")
    pci = tuple(
        PciDevice(address=f"0000:{bus:02x}:00.0", class_id=cls, vendor=vendor, device=device)
        for bus, (cls, vendor, device) in enumerate(
            [("0600", "1022", "14a4"), ("0302", "10de", "2330"), ("0207", "15b3", "1021"),
             ("0200", "8086", "1593"), ("0108", "144d", "a80a"), ("0c03", "1022", "14c9")] * 4
        )
    )  # fmt: skip
    return base.model_copy(
        update={
            "system": SystemFacts(
                probe=OK,
                kernel_release="6.1.0-18-amd64",
                kernel_version=(6, 1, 0),
                libc="glibc",
                glibc_version="2.36",
                os_release=OsRelease(id="debian", version_id="12"),
                loaded_modules=("nvidia", "nvidia_uvm", "mlx5_core", "ib_core", "xfs", "overlay"),
                pci_devices=pci,
            ),  # fmt: skip
            "gpu": GpuFacts(
                nvidia=NvidiaFacts(
                    probe=OK,
                    driver_version="550.54.15",
                    cuda_driver_version="12.4",
                    devices=tuple(
                        NvidiaDevice(index=i, compute_capability="9.0") for i in range(4)
                    ),
                )  # fmt: skip
            ),
            "interconnect": InterconnectFacts(probe=OK, fabrics=("infiniband",)),
        }
    )


def _e(op: str, *values: str, version: bool = False) -> MatchExpression:
    return MatchExpression(op=op, value=values, type="version" if version else "")


def _t(feature: str, **expressions: MatchExpression) -> FeatureMatcher:
    return FeatureMatcher(feature=feature, matchExpressions=expressions)


TARGETS = ("x86_64", "x86_64_v2", "x86_64_v3", "x86_64_v4", "zen", "zen2", "zen3", "zen4")
# Rule templates; every one but the last fits the bench host.
TEMPLATES = [
    lambda i: Rule(name="avx512", matchFeatures=(_t("cpu.cpuid", AVX512F=_e("Exists"), AVX2=_e("Exists")),)),
    lambda i: Rule(name="kernel", matchFeatures=(_t("kernel.version", full=_e("Ge", "5.14", version=True)),)),
    lambda i: Rule(name="gpu-pci", matchFeatures=(
        _t("pci.device", vendor=_e("In", "10de"), **{"class": _e("InRegexp", "^03")}),)),
    lambda i: Rule(name="target", matchFeatures=(_t("archspec.compatible", **{TARGETS[i % len(TARGETS)]: _e("Exists")}),)),
    lambda i: Rule(name="vendor", matchFeatures=(_t("cpu.model", vendor_id=_e("In", "AMD", "Intel")),)),
    lambda i: Rule(name="kernel-major", matchFeatures=(_t("kernel.version", major=_e("Gt", "4")),)),
    lambda i: Rule(name="os", matchFeatures=(
        _t("system.osrelease", ID=_e("In", "debian", "ubuntu", "rhel"), **{"VERSION_ID.major": _e("GeLe", "8", "12")}),)),
    lambda i: Rule(name="driver", matchFeatures=(
        FeatureMatcher(feature="kernel.loadedmodule", matchName=_e("InRegexp", "^nvidia")),)),
    lambda i: Rule(name="no-sgx", matchFeatures=(_t("cpu.cpuid", SGX=_e("DoesNotExist")),)),
    lambda i: Rule(name="fabric", matchAny=(
        MatchAnyElement(matchFeatures=(_t("network.fabric", cxi=_e("Exists")),)),
        MatchAnyElement(matchFeatures=(_t("pci.device", **{"class": _e("In", "0207")}),)),
        MatchAnyElement(matchFeatures=(_t("network.fabric", infiniband=_e("Exists")),)),
    )),
    lambda i: Rule(name="glibc", matchFeatures=(_t("libc.version", version=_e("Ge", "2.28", version=True)),)),
    lambda i: Rule(name="cc", matchFeatures=(_t("gpu.nvidia.device", compute_capability=_e("In", "8.0", "9.0")),)),
    lambda i: Rule(name="kernel-window", matchFeatures=(
        _t("kernel.version", full=_e("GtLt", "5.4", "7.0", version=True)),)),
    lambda i: Rule(name="nic", matchFeatures=(_t("pci.device", vendor=_e("In", "15b3"), device=_e("InRegexp", "^10")),)),
    lambda i: Rule(name="cuda", matchFeatures=(
        _t("gpu.nvidia", cuda_driver_version=_e("Ge", "12.2", version=True), count=_e("Gt", "0")),)),
    lambda i: Rule(name="not-hypervisor", matchFeatures=(_t("cpu.cpuid", HYPERVISOR=_e("DoesNotExist")),)),
]  # fmt: skip
FAILING = Rule(name="amx", matchFeatures=(_t("cpu.cpuid", AMXTILE=_e("Exists")),))


def digest(i: int) -> str:
    return "sha256:" + hashlib.sha256(f"bench-{i}".encode()).hexdigest()


def build_index(candidates: int, rules: int) -> tuple[list[Candidate], dict]:
    """N candidates, each with one set of R rules; every 10th build needs AMX
    (which the host lacks), so it does not fit."""
    index, sets = [], {}
    for i in range(candidates):
        variant = ("v1", "v2", "v3", "v4")[i % 4]
        index.append(
            Candidate(
                position=i,
                digest=digest(i),
                media_type=OCI_MANIFEST,
                size=1234,
                platform=Platform(architecture="amd64", os="linux", variant=variant),
            )
        )
        chosen = [TEMPLATES[(i + k) % len(TEMPLATES)](i + k) for k in range(rules)]
        if i % 10 == 9 and chosen:
            chosen[-1] = FAILING
        sets[digest(i)] = (
            CompatibilitySet(
                rules=tuple(chosen), weight=i % 5, tag=f"build-{i}", source=f"nfd:{digest(i)}"
            ),
        )
    return index, sets


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=1000, help="builds in the index (1000)")
    parser.add_argument("--rules", type=int, default=20, help="NFD rules per build (20)")
    parser.add_argument("--runs", type=int, default=7, help="timed select() runs (7)")
    args = parser.parse_args(argv)
    if args.candidates < 1 or args.rules < 0 or args.runs < 1:
        parser.error("--candidates and --runs must be at least 1, --rules at least 0")

    facts = bench_host()
    candidates, sets = build_index(args.candidates, args.rules)

    feature_times = []
    for _ in range(max(args.runs, 5)):
        start = time.perf_counter()
        features(facts)
        feature_times.append(time.perf_counter() - start)

    start = time.perf_counter()
    first = select(candidates, facts, artifact_sets=sets)  # warm-up: imports, caches
    cold = time.perf_counter() - start
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        decision = select(candidates, facts, artifact_sets=sets)
        times.append(time.perf_counter() - start)
    if decision != first or decision.outcome is not Outcome.SELECTED:
        print(f"unexpected decision: {decision.outcome} {decision.reason}")
        return 1

    fitting = sum(v.fits for v in decision.verdicts)
    median = _median_ms(times)
    per_candidate_us = median * 1000 / args.candidates
    per_rule_us = per_candidate_us / args.rules if args.rules else float("nan")
    print(
        f"host: {decision.host}; {args.candidates} candidates x {args.rules} rules "
        f"(+ platform), {fitting} fit, chosen {decision.chosen.digest[:19]} ({decision.reason})"
    )
    print(
        f"select median {median:.1f} ms over {args.runs} runs "
        f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f}; first call {cold * 1000:.1f} ms): "
        f"{per_candidate_us:.1f} us per candidate, {per_rule_us:.2f} us per rule"
    )
    print(
        f"hostfacts.nfd.features median {_median_ms(feature_times):.3f} ms "
        f"over {len(feature_times)} runs"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
