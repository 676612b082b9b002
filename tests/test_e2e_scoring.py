"""End to end: choosing a build from compatibility data, as a user sees it.

Real registry (Distribution 2.8, no referrers API: NFD artifacts are found by
the ``sha256-<hex>`` tag fallback), real OCI indexes pushed once per module,
and the *installed* commands: ``imagefit explain`` / ``imagefit check`` and the
shim linked as ``podman`` (``IMAGEFIT_DRY_RUN=1``). Host facts are written to
files: the CPU from archspec's real /proc/cpuinfo dumps
(``hostfacts.facts_from_cpuinfo``), the GPU, MPI, kernel, glibc and fabric
described with the hostfacts model, so each expected build is known.

Three indexes:

* ``annot``: annotations only (CPU targets, CUDA, PTX, MPI ABIs, kernel,
  glibc, fabric, weight);
* ``nfd``: no annotations at all, NFD artifacts attached by subject (one per
  build, one on the index, several on one build with different ``created``);
* ``mix``: annotations and artifacts on one index.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from hostfacts import facts_from_cpuinfo
from hostfacts.model import (
    InterconnectFacts,
    MpiFacts,
    NvidiaDevice,
    NvidiaFacts,
    OsRelease,
    PciDevice,
    Probe,
    SystemFacts,
)
from tests.support import oci

IMAGEFIT = Path(sys.executable).parent / "imagefit"
P = "org.supercontainers."
TARGET = P + "hardware.cpu.target.microarch"
V3 = {"architecture": "amd64", "os": "linux", "variant": "v3"}
V4 = {"architecture": "amd64", "os": "linux", "variant": "v4"}
AMD64 = {"architecture": "amd64", "os": "linux"}

OK = Probe(status="ok")


def _none(reason: str) -> Probe:
    return Probe(status="none", reason=reason)


# -- host facts ------------------------------------------------------------------


def h100(cuda: str = "12.4", memory: int = 81559) -> NvidiaFacts:
    return NvidiaFacts(
        probe=OK, driver_version="550.54.15", cuda_driver_version=cuda, nvml_version="12.550.54.15",
        devices=(NvidiaDevice(index=0, uuid="GPU-0b5d", name="NVIDIA H100 80GB HBM3",
                              compute_capability="9.0", memory_mib=memory, mig_enabled=False),),
    )  # fmt: skip


def t4() -> NvidiaFacts:
    return NvidiaFacts(
        probe=OK, driver_version="535.183.01", cuda_driver_version="12.2", nvml_version="12.535.183.01",
        devices=(NvidiaDevice(index=0, uuid="GPU-7a1c", name="Tesla T4", compute_capability="7.5",
                              memory_mib=15360, mig_enabled=None),),
    )  # fmt: skip


MPICH = MpiFacts(probe=OK, implementation="mpich", version="4.1.2", abi="mpich",
                 library="/usr/lib/x86_64-linux-gnu/libmpich.so.12")  # fmt: skip
OPENMPI = MpiFacts(probe=OK, implementation="openmpi", version="4.1.6", abi="openmpi",
                   library="/usr/lib/x86_64-linux-gnu/libmpi.so.40")  # fmt: skip
NVIDIA_PCI = PciDevice(address="0000:41:00.0", class_id="0302", vendor="10de", device="2330")


def host(
    dump: str,
    hostname: str,
    *,
    machine: str = "x86_64",
    gpu: NvidiaFacts | None = None,
    mpi: MpiFacts | None = None,
    kernel: str = "6.1.0-18-amd64",
    glibc: str = "2.36",
    os_release: tuple[str, str] = ("debian", "12"),
    fabrics: tuple[str, ...] = (),
    pci: tuple[PciDevice, ...] = (),
    vendor_id: str | None = None,
):
    """HostFacts of one node class: the CPU of an archspec dump, the rest described."""
    facts = facts_from_cpuinfo(CPUINFO / dump, machine)
    cpu = facts.cpu
    if vendor_id is not None:
        cpu = cpu.model_copy(
            update={"model": cpu.model.model_copy(update={"vendor_id": vendor_id})}
        )
    gpus = facts.gpu.model_copy(
        update={"nvidia": gpu or NvidiaFacts(probe=_none("no NVIDIA driver loaded"))}
    )
    version = tuple(int(p) for p in re.match(r"[0-9.]+", kernel)[0].strip(".").split("."))
    system = SystemFacts(
        probe=OK, kernel_release=kernel, kernel_version=version, libc="glibc", glibc_version=glibc,
        os_release=OsRelease(id=os_release[0], version_id=os_release[1]), pci_devices=pci,
    )  # fmt: skip
    net = InterconnectFacts(
        probe=OK if fabrics else _none("no RDMA, CXI or EFA device"),
        fabrics=fabrics,
        cxi=("cxi0",) if "cxi" in fabrics else (),
    )
    return facts.model_copy(
        update={
            "hostname": hostname,
            "cpu": cpu,
            "gpu": gpus,
            "mpi": mpi or MpiFacts(probe=_none("no MPI library found")),
            "system": system,
            "interconnect": net,
        }
    )


def _archspec_dumps() -> Path:
    import archspec

    return Path(archspec.__file__).parent / "json" / "tests" / "targets"


CPUINFO = _archspec_dumps()
ZEN4 = "linux-rocky8.5-zen4"
HASWELL = "linux-rhel7-haswell"

HOSTS = {
    "zen4": lambda: host(ZEN4, "zen4-cpu"),
    "zen4-h100": lambda: host(ZEN4, "zen4-h100", gpu=h100()),
    "zen4-cuda118": lambda: host(ZEN4, "zen4-cuda118", gpu=h100(cuda="11.8")),
    "haswell-t4": lambda: host(HASWELL, "haswell-t4", gpu=t4()),
    "zen4-mpich": lambda: host(ZEN4, "zen4-mpich", mpi=MPICH),
    "zen4-openmpi": lambda: host(ZEN4, "zen4-openmpi", mpi=OPENMPI),
    "zen4-slingshot": lambda: host(ZEN4, "zen4-slingshot", fabrics=("cxi",), mpi=MPICH),
    "zen4-el8": lambda: host(ZEN4, "zen4-el8", kernel="4.18.0-553.el8_10.x86_64", glibc="2.36"),
    "zen4-old": lambda: host(ZEN4, "zen4-old", kernel="4.18.0-553.el8_10.x86_64", glibc="2.28"),
    "haswell": lambda: host(HASWELL, "haswell"),
    "haswell-gpu-pci": lambda: host(HASWELL, "haswell-gpu-pci", pci=(NVIDIA_PCI,)),
    "hygon": lambda: host("linux-rhel7-zen", "hygon", vendor_id="HygonGenuine"),
    "zen4-ib": lambda: host(ZEN4, "zen4-ib", fabrics=("infiniband",)),
    "zen4-ib-h100": lambda: host(ZEN4, "zen4-ib-h100", fabrics=("infiniband",), gpu=h100()),
    "rhel7": lambda: host(HASWELL, "rhel7", kernel="3.10.0-1160.el7.x86_64", glibc="2.17",
                          os_release=("rhel", "7.9")),
    "grace": lambda: host("linux-rhel9-neoverse_v2", "grace", machine="aarch64"),
}  # fmt: skip


@pytest.fixture(scope="module")
def facts(tmp_path_factory) -> dict[str, str]:
    """Facts file per node class (HostFacts.model_dump_json())."""
    out = tmp_path_factory.mktemp("facts")
    files = {}
    for name, make in HOSTS.items():
        path = out / f"{name}.json"
        path.write_text(make().model_dump_json(indent=2))
        files[name] = str(path)
    return files


# -- the indexes ---------------------------------------------------------------------


def _b(name: str, platform: dict, annotations: dict | None) -> dict:
    return {"name": name, "platform": platform, "annotations": annotations}


ANNOT_BUILDS = [
    _b("generic", AMD64, {TARGET: "x86_64"}),
    _b("zen4", V4, {TARGET: "zen4", P + "os.kernel.version": ">=5.14"}),
    _b("zen3", V3, {TARGET: "zen3", P + "os.glibc.version": ">=2.34"}),
    _b("cuda", V3, {TARGET: "x86_64_v3", P + "hardware.gpu.vendor": "nvidia",
                    P + "hardware.gpu.cuda.version": ">=12.2",
                    P + "hardware.gpu.compute_capabilities": "8.0,9.0"}),
    _b("ptx", V3, {TARGET: "x86_64_v3", P + "hardware.gpu.vendor": "nvidia",
                   P + "hardware.gpu.cuda.version": ">=12.0",
                   P + "hardware.gpu.compute_capabilities": "7.0+"}),
    _b("mpich", V3, {TARGET: "x86_64_v3", P + "mpi.abi": "mpich"}),
    _b("openmpi", V3, {TARGET: "x86_64_v3", P + "mpi.abi": "openmpi"}),
    _b("slingshot", V3, {TARGET: "x86_64_v3", P + "network.fabric": "cxi", P + "weight": "5"}),
]  # fmt: skip


def _spec(*compatibilities: str) -> bytes:
    return ("version: v1alpha1\ncompatibilities:\n" + "".join(compatibilities)).encode()


AVX512_SET = """\
- tag: avx512
  weight: 10
  description: AVX-512 build, needs a 5.14+ kernel
  rules:
  - name: avx512
    matchFeatures:
    - feature: cpu.cpuid
      matchExpressions:
        AVX512F: {op: Exists}
    - feature: kernel.version
      matchExpressions:
        full: {op: Ge, value: ["5.14"], type: version}
"""
FALLBACK_SET = """\
- tag: fallback
  weight: 1
  rules:
  - name: x86-vendor
    matchFeatures:
    - feature: cpu.model
      matchExpressions:
        vendor_id: {op: In, value: [Intel, AMD]}
"""
STALE_SET = """\
- tag: stale-{n}
  weight: 100
  rules:
  - name: stale
    matchFeatures:
    - feature: cpu.model
      matchExpressions:
        vendor_id: {{op: In, value: [NoSuchVendor]}}
"""
NVIDIA_NODE_SET = """\
- tag: nvidia-node
  rules:
  - name: nvidia-pci
    matchFeatures:
    - feature: pci.device
      matchExpressions:
        vendor: {op: In, value: ["10de"]}
        class: {op: In, value: ["0302"]}
"""
IB_SET = """\
- tag: ib
  weight: 1
  rules:
  - name: fabric
    matchAny:
    - matchFeatures:
      - feature: network.fabric
        matchExpressions: {infiniband: {op: Exists}}
    - matchFeatures:
      - feature: network.fabric
        matchExpressions: {roce: {op: Exists}}
"""
BIG_GPU_SET = """\
- tag: big-gpu
  weight: 1
  rules:
  - name: gpu-memory
    matchFeatures:
    - feature: gpu.nvidia.device
      matchExpressions:
        memory_mib: {op: Ge, value: ["65536"]}
"""


@pytest.fixture(scope="module")
def indexes(registry, tmp_path_factory):
    """The three indexes pushed (in parallel), with their artifacts attached."""
    host = registry.host

    def annot():
        return oci.build_and_push(host, "e2e/annot", "1", ANNOT_BUILDS,
                                  layout_dir=tmp_path_factory.mktemp("annot"))  # fmt: skip

    def nfd():
        builds = [
            _b("avx512", AMD64, None),
            _b("fallback", AMD64, None),
            _b("gpu-node", AMD64, None),
        ]
        pushed = oci.build_and_push(
            host, "e2e/nfd", "1", builds, layout_dir=tmp_path_factory.mktemp("nfd")
        )
        repo = "e2e/nfd"
        arts = {
            "avx512": oci.push_artifact(host, repo, oci.subject_descriptor(pushed, "avx512"),
                                        _spec(AVX512_SET), created="2024-06-01T00:00:00Z"),
            "index": oci.push_artifact(host, repo, oci.subject_descriptor(pushed),
                                       _spec(NVIDIA_NODE_SET), created="2024-06-01T00:00:00Z"),
        }  # fmt: skip
        fallback = oci.subject_descriptor(pushed, "fallback")
        # the newest (12:00Z) is listed in the middle and is not the greatest string: neither
        # listing order nor comparing the strings picks it by accident
        for n, created, spec in ((1, "2023-01-01T00:00:00Z", STALE_SET.format(n=1)),
                                 (0, "2025-03-01T10:00:00-02:00", FALLBACK_SET),
                                 (2, "2025-03-01T11:00:00Z", STALE_SET.format(n=2))):  # fmt: skip
            arts[f"fallback-{n}"] = oci.push_artifact(
                host, repo, fallback, _spec(spec), created=created
            )
        pushed.artifacts = arts
        return pushed

    def mix():
        builds = [
            _b("v3", V3, {TARGET: "x86_64_v3", P + "os.glibc.version": ">=2.28"}),
            _b("zen4", V4, {TARGET: "zen4", P + "os.kernel.version": ">=5.14"}),
            _b("cuda", V3, {TARGET: "x86_64_v3", P + "hardware.gpu.vendor": "nvidia",
                            P + "hardware.gpu.cuda.version": ">=12.0",
                            P + "hardware.gpu.compute_capabilities": "9.0"}),
        ]  # fmt: skip
        pushed = oci.build_and_push(
            host, "e2e/mix", "1", builds, layout_dir=tmp_path_factory.mktemp("mix")
        )
        repo = "e2e/mix"
        pushed.artifacts = {
            "ib": oci.push_artifact(host, repo, oci.subject_descriptor(pushed, "zen4"), _spec(IB_SET),
                                    created="2024-01-01T00:00:00Z"),
            "big-gpu": oci.push_artifact(host, repo, oci.subject_descriptor(pushed, "cuda"),
                                         _spec(BIG_GPU_SET), created="2024-01-01T00:00:00Z"),
        }  # fmt: skip
        return pushed

    with ThreadPoolExecutor(3) as pool:
        futures = {
            name: pool.submit(f) for name, f in (("annot", annot), ("nfd", nfd), ("mix", mix))
        }
        return {name: f.result() for name, f in futures.items()}


@pytest.fixture(scope="module")
def annot(indexes):
    return indexes["annot"]


@pytest.fixture(scope="module")
def nfd(indexes):
    return indexes["nfd"]


@pytest.fixture(scope="module")
def mix(indexes):
    return indexes["mix"]


# -- running the installed commands ---------------------------------------------------


@pytest.fixture(scope="module")
def clean_env(tmp_path_factory) -> dict[str, str]:
    """The environment without any site or user config, cache of its own."""
    base = tmp_path_factory.mktemp("env")
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEFIT_")}
    env.update({
        "IMAGEFIT_SITE_CONFIG": str(base / "no-site-config.toml"),
        "XDG_CONFIG_HOME": str(base / "config"),
        "IMAGEFIT_CACHE_DIR": str(base / "cache"),
    })  # fmt: skip
    return env


def run_imagefit(env, *args: str, site: str | None = None) -> subprocess.CompletedProcess:
    if not IMAGEFIT.exists():
        pytest.fail(f"{IMAGEFIT} missing: run tests/provision.sh (as root) first")
    env = dict(env)
    if site:
        env["IMAGEFIT_SITE_CONFIG"] = site
    return subprocess.run(
        [str(IMAGEFIT), *args], env=env, capture_output=True, text=True, timeout=60
    )


def explain(env, ref: str, facts_file: str, *extra: str, site: str | None = None):
    """(completed process, parsed JSON) of ``imagefit explain REF --json --facts F``."""
    done = run_imagefit(env, "explain", ref, "--json", "--tls-verify", "false", "--facts", facts_file,
                        *extra, site=site)  # fmt: skip
    assert done.returncode in (0, 125), done.stderr
    assert done.stderr == "", done.stderr
    return done, json.loads(done.stdout)


def explain_many(env, jobs: list[tuple[str, str]]) -> list[dict]:
    """Explain (ref, facts file) pairs concurrently; the parsed JSON of each."""
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda job: explain(env, *job)[1], jobs))


def candidate(decision: dict, digest: str) -> dict:
    return next(c for c in decision["candidates"] if c["digest"] == digest)


def check_named(cand: dict, name: str) -> dict:
    return next(c for c in cand["checks"] if c["name"] == name)


def name_of(pushed, digest: str | None) -> str | None:
    return next((n for n, d in pushed.manifests.items() if d == digest), digest)


def chosen(decision: dict) -> str | None:
    return decision["chosen"]["digest"] if decision["chosen"] else None


# -- 1. annotations only -------------------------------------------------------------

ANNOT_EXPECTED = {
    "zen4": "zen4",  # deepest CPU target; GPU/MPI/fabric builds do not fit
    "zen4-h100": "cuda",  # GPU build beats the CPU build; cuda before ptx in index order
    "zen4-cuda118": "zen4",  # driver too old for both GPU builds
    "haswell-t4": "ptx",  # sm 7.5: no code in the 8.0,9.0 build, the 7.0+ PTX JIT-compiles
    "zen4-mpich": "mpich",
    "zen4-openmpi": "openmpi",
    "zen4-slingshot": "slingshot",  # weight 5 beats the MPICH build on a CXI node
    "zen4-el8": "zen3",  # kernel 4.18: the zen4 build needs >=5.14
    "zen4-old": "generic",  # and glibc 2.28: the zen3 build needs >=2.34
}


@pytest.fixture(scope="module")
def annot_decisions(clean_env, annot, facts) -> dict[str, dict]:
    names = list(ANNOT_EXPECTED)
    results = explain_many(clean_env, [(annot.ref, facts[n]) for n in names])
    return dict(zip(names, results, strict=True))


@pytest.mark.parametrize("node", list(ANNOT_EXPECTED))
def test_annotations_choose_the_build_for_each_node_class(annot, annot_decisions, node):
    decision = annot_decisions[node]
    expected = ANNOT_EXPECTED[node]
    assert decision["outcome"] == "selected", decision["reason"]
    assert name_of(annot, chosen(decision)) == expected, decision["reason"]
    assert decision["chosen"]["digest"] == annot.manifests[expected]
    assert decision["chosen"]["rewritten"] == f"{annot.repository}@{annot.manifests[expected]}"
    assert decision["index_digest"] == annot.index_digest
    fits = {name_of(annot, c["digest"]) for c in decision["candidates"] if c["fits"]}
    assert expected in fits


def test_gpu_build_beats_cpu_build_and_says_so(annot, annot_decisions):
    decision = annot_decisions["zen4-h100"]
    fits = {name_of(annot, c["digest"]): c for c in decision["candidates"] if c["fits"]}
    assert set(fits) == {"generic", "zen4", "zen3", "cuda", "ptx"}
    # native sm_90 code (4000) over PTX 7.0 JIT-compiled at load (2000 + 70) over a CPU build
    assert fits["cuda"]["score"]["gpu"] == 4000 and fits["zen4"]["score"]["gpu"] == 0
    assert fits["ptx"]["score"]["gpu"] == 2070
    assert fits["cuda"]["gpu"] == "nvidia sm 8.0,9.0 cuda >=12.2"
    why = "ranks first of 5 fitting builds (native sm_90 code for every visible GPU; "
    assert why in decision["reason"]
    assert "has PTX 7.0, JIT-compiled for 9.0 at load)" in decision["reason"]
    assert "NVIDIA GPU (sm 9.0, CUDA 12.4)" in decision["host"]


def test_old_cuda_driver_refuses_the_cuda_build_with_the_host_value(annot, annot_decisions):
    decision = annot_decisions["zen4-cuda118"]
    cuda = candidate(decision, annot.manifests["cuda"])
    assert cuda["fits"] is False and cuda["score"] is None
    failed = check_named(cuda, "gpu.cuda")
    assert failed["passed"] is False
    assert failed["detail"] == "needs CUDA >= 12.2 (driver); host has CUDA 11.8"
    assert check_named(cuda, "gpu.nvidia")["passed"] is True
    assert check_named(cuda, "gpu.compute_capability")["passed"] is True
    rule = next(r for r in cuda["sets"][0]["rules"] if r["name"] == "gpu.cuda")
    assert rule["is_match"] is False
    [expr] = rule["expressions"]
    assert expr == {**expr, "feature": "gpu.nvidia", "name": "cuda_driver_version",
                    "expression": "Ge ['12.2'] (version)", "host_value": "11.8", "is_match": False}  # fmt: skip
    ptx = candidate(decision, annot.manifests["ptx"])
    assert check_named(ptx, "gpu.cuda")["passed"] is False


def test_compute_capability_ptx_build_fits_a_newer_gpu(annot, annot_decisions):
    decision = annot_decisions["haswell-t4"]
    cuda = candidate(decision, annot.manifests["cuda"])
    assert not cuda["fits"]
    cc = check_named(cuda, "gpu.compute_capability")
    assert not cc["passed"] and "7.5" in cc["detail"]
    assert check_named(cuda, "gpu.cuda")["passed"] is True  # 12.2 >= 12.2
    ptx = candidate(decision, annot.manifests["ptx"])
    assert ptx["fits"] and check_named(ptx, "gpu.compute_capability")["passed"]
    [alt] = [r for r in ptx["sets"][0]["rules"] if r["name"] == "gpu.compute_capability"]
    assert alt["expressions"][0]["expression"] == "Ge ['7.0'] (version)"
    assert alt["expressions"][0]["host_value"] == "7.5"
    # haswell runs no zen code: both zen builds fail on the platform level or the target
    assert not candidate(decision, annot.manifests["zen4"])["fits"]
    zen3 = candidate(decision, annot.manifests["zen3"])
    assert (
        check_named(zen3, "cpu.target")["detail"]
        == "needs CPU target zen3; host haswell cannot run it"
    )


@pytest.mark.parametrize(
    ("node", "gets", "refused", "host_mpi"),
    [("zen4-mpich", "mpich", "openmpi", "mpich 4.1.2 (mpich ABI)"),
     ("zen4-openmpi", "openmpi", "mpich", "openmpi 4.1.6 (openmpi ABI)")],
)  # fmt: skip
def test_mpi_abi_builds_follow_the_host_mpi(annot, annot_decisions, node, gets, refused, host_mpi):
    decision = annot_decisions[node]
    assert chosen(decision) == annot.manifests[gets]
    assert "built for this host's MPI" in decision["reason"]
    other = candidate(decision, annot.manifests[refused])
    assert not other["fits"]
    assert (
        check_named(other, "mpi.abi")["detail"] == f"needs MPI ABI {refused}; host has {host_mpi}"
    )


def test_host_without_mpi_gets_neither_mpi_build(annot, annot_decisions):
    decision = annot_decisions["zen4"]
    for build in ("mpich", "openmpi"):
        cand = candidate(decision, annot.manifests[build])
        assert not cand["fits"]
        assert check_named(cand, "mpi.abi")["detail"] == f"needs MPI ABI {build}; host has no MPI"
    assert chosen(decision) == annot.manifests["zen4"]


def test_kernel_glibc_fabric_and_weight(annot, annot_decisions):
    el8 = annot_decisions["zen4-el8"]
    kernel = check_named(candidate(el8, annot.manifests["zen4"]), "kernel.version")
    assert not kernel["passed"]
    assert kernel["detail"] == "needs kernel >= 5.14; host has 4.18.0-553.el8_10.x86_64"
    old = annot_decisions["zen4-old"]
    glibc = check_named(candidate(old, annot.manifests["zen3"]), "glibc.version")
    assert not glibc["passed"] and glibc["detail"] == "needs glibc >= 2.34; host has glibc 2.28"
    slingshot = annot_decisions["zen4-slingshot"]
    assert "higher weight" in slingshot["reason"]
    assert candidate(slingshot, annot.manifests["slingshot"])["score"]["weight"] == 5
    fabric = check_named(
        candidate(annot_decisions["zen4"], annot.manifests["slingshot"]), "network.fabric"
    )
    assert not fabric["passed"] and fabric["detail"] == "needs fabric cxi; host has none"


# -- 2. NFD artifacts only -------------------------------------------------------------

NFD_EXPECTED = {
    "zen4": "avx512",  # AVX512F and kernel 6.1: the weight-10 set
    "haswell": "fallback",  # no AVX-512
    "zen4-el8": "fallback",  # AVX-512 but kernel 4.18
    "haswell-gpu-pci": "fallback",  # the index's set fits every build; weight still decides
}


@pytest.fixture(scope="module")
def nfd_decisions(clean_env, nfd, facts) -> dict[str, dict]:
    names = [*NFD_EXPECTED, "hygon"]
    results = explain_many(clean_env, [(nfd.ref, facts[n]) for n in names])
    return dict(zip(names, results, strict=True))


@pytest.mark.parametrize("node", list(NFD_EXPECTED))
def test_nfd_artifacts_choose_the_build(nfd, nfd_decisions, node):
    decision = nfd_decisions[node]
    assert decision["outcome"] == "selected", decision["reason"]
    assert name_of(nfd, chosen(decision)) == NFD_EXPECTED[node]
    assert (
        decision["chosen"]["rewritten"] == f"{nfd.repository}@{nfd.manifests[NFD_EXPECTED[node]]}"
    )


def test_nfd_weight_and_sets_as_explained(nfd, nfd_decisions):
    decision = nfd_decisions["zen4"]
    a = candidate(decision, nfd.manifests["avx512"])
    assert a["score"]["weight"] == 10
    assert (
        check_named(a, "nfd")["detail"] == f"NFD set avx512 matches (nfd:{nfd.artifacts['avx512']})"
    )
    assert "higher weight" in decision["reason"]
    old = nfd_decisions["zen4-el8"]
    a = candidate(old, nfd.manifests["avx512"])
    own = next(s for s in a["sets"] if s["tag"] == "avx512")
    exprs = {e["feature"]: e for e in own["rules"][0]["expressions"]}
    assert exprs["cpu.cpuid"]["is_match"] is True
    assert exprs["kernel.version"] == {
        **exprs["kernel.version"], "name": "full", "expression": "Ge ['5.14'] (version)",
        "host_value": "4.18.0-553.el8_10.x86_64", "is_match": False,
    }  # fmt: skip


def test_index_artifact_applies_to_every_build(nfd, nfd_decisions):
    index_source = f"nfd:{nfd.artifacts['index']}"
    for node in ("zen4", "haswell-gpu-pci"):
        for cand in nfd_decisions[node]["candidates"]:
            assert index_source in [s["source"] for s in cand["sets"]], (node, cand["build"])
    gpu_node = candidate(nfd_decisions["haswell-gpu-pci"], nfd.manifests["gpu-node"])
    assert gpu_node["fits"]  # its only set is the index's
    assert [s["tag"] for s in gpu_node["sets"]] == ["nvidia-node"]
    assert candidate(nfd_decisions["haswell-gpu-pci"], nfd.manifests["avx512"])["fits"]
    assert not candidate(nfd_decisions["haswell"], nfd.manifests["gpu-node"])["fits"]
    assert not candidate(nfd_decisions["haswell"], nfd.manifests["avx512"])["fits"]


def test_newest_artifact_of_a_subject_is_the_one_used(nfd, nfd_decisions):
    newest = f"nfd:{nfd.artifacts['fallback-0']}"
    for node in NFD_EXPECTED:
        cand = candidate(nfd_decisions[node], nfd.manifests["fallback"])
        own = [s for s in cand["sets"] if s["source"] != f"nfd:{nfd.artifacts['index']}"]
        assert [(s["tag"], s["source"]) for s in own] == [("fallback", newest)], node
        assert cand["fits"]  # the stale, older specs would match no host


def test_no_build_fits_refusal_names_the_closest(nfd, nfd_decisions):
    decision = nfd_decisions["hygon"]
    assert decision["outcome"] == "refused" and decision["chosen"] is None
    assert decision["reason"].startswith("none of the 3 builds runs on this host")
    assert decision["closest"]["digest"] == nfd.manifests["avx512"]
    [lack] = decision["closest"]["lacks"]
    assert lack.startswith("none of 2 NFD compatibility sets matches")
    assert "AVX512F" in lack
    fallback = candidate(decision, nfd.manifests["fallback"])
    [expr] = fallback["sets"][0]["rules"][0]["expressions"]
    assert expr["host_value"] == "Hygon" and not expr["is_match"]


# -- 3. annotations and artifacts on one index ---------------------------------------------

MIX_EXPECTED = {
    "zen4": "v3",  # the zen4 build's only NFD set needs InfiniBand or RoCE
    "zen4-ib": "zen4",  # annotations and the ib set fit: weight 1
    "zen4-ib-h100": "cuda",  # both weight 1: the GPU build wins
    "rhel7": None,  # glibc 2.17, kernel 3.10: nothing fits
}


@pytest.fixture(scope="module")
def mix_decisions(clean_env, mix, facts) -> dict[str, dict]:
    names = list(MIX_EXPECTED)
    results = explain_many(clean_env, [(mix.ref, facts[n]) for n in names])
    return dict(zip(names, results, strict=True))


@pytest.mark.parametrize("node", list(MIX_EXPECTED))
def test_annotations_and_artifacts_together(mix, mix_decisions, node):
    decision = mix_decisions[node]
    expected = MIX_EXPECTED[node]
    if expected is None:
        assert decision["outcome"] == "refused"
        assert decision["closest"]["digest"] == mix.manifests["v3"]
        [lack] = decision["closest"]["lacks"]
        assert lack == "needs glibc >= 2.28; host has glibc 2.17"
    else:
        assert decision["outcome"] == "selected"
        assert name_of(mix, chosen(decision)) == expected, decision["reason"]


def test_mix_checks_annotations_and_the_nfd_set_of_one_build(mix, mix_decisions):
    zen4 = candidate(mix_decisions["zen4"], mix.manifests["zen4"])
    assert (
        check_named(zen4, "cpu.target")["passed"] and check_named(zen4, "kernel.version")["passed"]
    )
    nfd = check_named(zen4, "nfd")
    assert not nfd["passed"] and nfd["detail"].startswith(
        "none of 1 NFD compatibility sets matches"
    )
    assert [s["source"] for s in zen4["sets"]] == ["annotations", f"nfd:{mix.artifacts['ib']}"]
    cuda = candidate(mix_decisions["zen4-ib-h100"], mix.manifests["cuda"])
    assert cuda["score"]["weight"] == 1 and cuda["score"]["gpu"] == 4000  # native sm_90 code
    mem = cuda["sets"][1]["rules"][0]["expressions"][0]
    assert (mem["feature"], mem["host_value"], mem["is_match"]) == (
        "gpu.nvidia.device",
        "81559",
        True,
    )


# -- 4. explain output: -v text and the JSON shape ---------------------------------------


def _validate_explain(doc: dict) -> None:
    """docs/reference.md "imagefit explain --json (schema_version 2)"."""
    opt_str = (str, type(None))
    assert set(doc) == {"schema_version", "reference", "index_digest", "host", "outcome", "reason",
                        "node_class", "policy", "chosen", "closest", "candidates"}  # fmt: skip
    assert isinstance(doc["node_class"], opt_str)
    if doc["policy"] is not None:
        assert set(doc["policy"]) == {"image", "pin", "prefer", "avoid", "source", "lock"}
    assert doc["schema_version"] == 2
    assert isinstance(doc["reference"], str) and isinstance(doc["index_digest"], opt_str)
    assert isinstance(doc["host"], str) and isinstance(doc["reason"], str)
    assert doc["outcome"] in ("selected", "passthrough", "refused")
    if doc["chosen"] is not None:
        assert set(doc["chosen"]) == {"digest", "build", "rewritten"}
        assert isinstance(doc["chosen"]["rewritten"], opt_str)
    if doc["closest"] is not None:
        assert set(doc["closest"]) == {"digest", "build", "lacks"}
        assert all(isinstance(x, str) for x in doc["closest"]["lacks"])
    assert doc["candidates"]
    for c in doc["candidates"]:
        assert set(c) == {"position", "digest", "platform", "build", "gpu", "mpi", "fits", "score",
                          "checks", "sets", "gpu_code"}  # fmt: skip
        assert isinstance(c["position"], int) and isinstance(c["fits"], bool)
        assert isinstance(c["platform"], opt_str)
        assert all(isinstance(c[k], str) for k in ("digest", "build", "gpu", "mpi"))
        assert (c["score"] is None) == (not c["fits"])
        if c["score"] is not None:
            assert set(c["score"]) == {"policy", "weight", "gpu", "mpi", "cpu", "position"}
            assert all(isinstance(v, int) for v in c["score"].values())
        for check in c["checks"]:
            assert set(check) == {"name", "passed", "detail"}
            assert isinstance(check["passed"], bool) and "\n" not in check["detail"]
        for s in c["sets"]:
            assert set(s) == {"source", "tag", "weight", "is_match", "rules", "error"}
            assert isinstance(s["error"], str)  # a set that could not be read (scoring.rules)
            assert isinstance(s["weight"], int) and isinstance(s["is_match"], bool)
            for r in s["rules"]:
                assert {"name", "is_match", "expressions"} <= set(r)
                for e in r["expressions"]:
                    keys = {
                        "feature",
                        "name",
                        "expression",
                        "host_value",
                        "matcher_type",
                        "is_match",
                        "error",
                    }
                    assert keys <= set(e)
                    assert isinstance(e["host_value"], opt_str) and isinstance(e["is_match"], bool)
                    assert all(isinstance(e[k], str) for k in ("feature", "name", "expression",
                                                               "matcher_type", "error"))  # fmt: skip


def test_explain_json_has_the_documented_shape(annot_decisions, nfd_decisions, mix_decisions):
    for decisions in (annot_decisions, nfd_decisions, mix_decisions):
        for decision in decisions.values():
            _validate_explain(decision)


def test_explain_verbose_shows_every_rule_expression_and_host_value(
    clean_env, annot, annot_decisions, facts
):
    done = run_imagefit(clean_env, "explain", annot.ref, "-v", "--tls-verify", "false",
                        "--facts", facts["zen4-cuda118"])  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "x  gpu.nvidia cuda_driver_version >= 12.2; host has 11.8" in text
    assert "FAIL gpu.cuda: needs CUDA >= 12.2 (driver); host has CUDA 11.8" in text
    assert "Ge [" not in text and "; host: " not in text
    decision = annot_decisions["zen4-cuda118"]
    lines = text.splitlines()
    for cand in decision["candidates"]:
        for s in cand["sets"]:
            for r in s["rules"]:
                assert any(f"rule {r['name']}: {'match' if r['is_match'] else 'no match'}" in ln
                           for ln in lines), r["name"]  # fmt: skip
                for e in r["expressions"]:
                    # every expression, worded as people write it (scoring.explain)
                    line = f"{e['feature']} {e['name']}".strip()
                    assert any(
                        line in ln and ("; host has" in ln or "; host lacks it" in ln)
                        for ln in lines
                    ), line
        for check in cand["checks"]:
            assert (
                f"{'pass' if check['passed'] else 'FAIL'} {check['name']}: {check['detail']}"
                in text
            )
    assert lines[-2].startswith("selected: zen4 ")
    assert lines[-1] == f"runs:   {annot.repository}@{annot.manifests['zen4']}"


def test_explain_text_refusal_prints_the_closest_build(clean_env, mix, facts):
    done = run_imagefit(
        clean_env, "explain", mix.ref, "--tls-verify", "false", "--facts", facts["rhel7"]
    )
    assert done.returncode == 125, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-2].startswith("refused: none of the 3 builds runs on this host")
    assert lines[-1] == (
        f"closest: x86_64_v3 ({mix.manifests['v3'][:19]}), lacks: "
        "needs glibc >= 2.28; host has glibc 2.17"
    )


def test_explain_is_deterministic(clean_env, nfd, annot, facts):
    for ref, node in ((nfd.ref, "haswell-gpu-pci"), (annot.ref, "zen4-h100")):
        first = run_imagefit(
            clean_env, "explain", ref, "--json", "--tls-verify", "false", "--facts", facts[node]
        )
        second = run_imagefit(
            clean_env, "explain", ref, "--json", "--tls-verify", "false", "--facts", facts[node]
        )
        assert first.returncode == second.returncode == 0, first.stderr + second.stderr
        assert first.stdout == second.stdout


# -- 5. imagefit check: a matrix over node classes ----------------------------------------


def _table(lines: list[str]) -> list[dict[str, str]]:
    """Rows of a text table whose header names its columns (two spaces apart)."""
    header = lines[0]
    names = re.split(r"\s{2,}", header.strip())
    starts = [header.index(n) for n in names]
    ends = [*starts[1:], None]
    return [
        {n: ln[a:b].strip() for n, a, b in zip(names, starts, ends, strict=True)}
        for ln in lines[1:]
    ]


def test_check_matrix_one_row_per_node_class(clean_env, annot, facts):
    nodes = ["zen4", "zen4-h100", "grace"]
    args = [
        "check",
        annot.ref,
        "--tls-verify",
        "false",
        *(x for n in nodes for x in ("--facts", facts[n])),
    ]
    done = run_imagefit(clean_env, *args)
    assert done.returncode == 125, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"image:  {annot.ref}"
    rows = {row["node class"]: row for row in _table(lines[2:])}
    assert list(rows) == ["zen4-cpu", "zen4-h100", "grace"]
    # the host column: CPU target, GPUs and MPI
    assert rows["zen4-cpu"]["host"] == "zen4; no GPU; no MPI"
    assert rows["zen4-h100"]["host"] == "zen4; 1x NVIDIA H100 80GB HBM3 (sm 9.0, CUDA 12.4); no MPI"
    assert rows["grace"]["host"] == "neoverse_v2; no GPU; no MPI"
    cells = [(r["outcome"], r["build"], r["digest / reason"]) for r in rows.values()]
    assert cells == [
        ("selected", "zen4", annot.manifests["zen4"][:19]),
        ("selected", "x86_64_v3+cuda12.2+sm80,90", annot.manifests["cuda"][:19]),
        ("refused", "-", "no build for this platform"),
    ]

    done = run_imagefit(clean_env, *args[:-2], "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["schema_version"] == 1 and doc["index_digest"] == annot.index_digest
    assert [n["node"] for n in doc["nodes"]] == ["zen4-cpu", "zen4-h100"]
    assert [n["facts"] for n in doc["nodes"]] == [facts["zen4"], facts["zen4-h100"]]
    assert [n["chosen"]["digest"] for n in doc["nodes"]] == [
        annot.manifests["zen4"],
        annot.manifests["cuda"],
    ]
    for node in doc["nodes"]:
        _validate_explain({k: v for k, v in node.items() if k not in ("node", "facts")})

    import csv
    import io

    done = run_imagefit(clean_env, *args, "--csv")
    assert done.returncode == 125, done.stderr
    table = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [(r["node"], r["outcome"], r["build"], r["digest"]) for r in table] == [
        ("zen4-cpu", "selected", "zen4", annot.manifests["zen4"]),
        ("zen4-h100", "selected", "x86_64_v3+cuda12.2+sm80,90", annot.manifests["cuda"]),
        ("grace", "refused", "", ""),
    ]


def test_check_refused_class_names_the_closest_build(clean_env, mix, facts):
    done = run_imagefit(clean_env, "check", mix.ref, "--tls-verify", "false", "--facts", facts["zen4-ib"],
                        "--facts", facts["rhel7"], "--json")  # fmt: skip
    assert done.returncode == 125, done.stderr
    nodes = json.loads(done.stdout)["nodes"]
    assert [(n["node"], n["outcome"]) for n in nodes] == [
        ("zen4-ib", "selected"),
        ("rhel7", "refused"),
    ]
    assert nodes[0]["chosen"]["digest"] == mix.manifests["zen4"]
    assert nodes[1]["closest"]["digest"] == mix.manifests["v3"]


# -- 6. site policy ------------------------------------------------------------------------


def _site(tmp_path, body: str) -> str:
    path = tmp_path / "site.toml"
    path.write_text(body)
    path.chmod(0o644)
    if os.geteuid() == 0:
        os.chown(path, 0, 0)
    return str(path)


@pytest.mark.parametrize(
    ("policy", "node", "expected"),
    [
        ('prefer = ["x86_64"]', "zen4", "generic"),  # the generic build over zen4
        ('avoid = ["zen4"]', "zen4", "zen3"),
        ("pin = '{zen3}'", "zen4", "zen3"),  # by digest
        ('pin = "x86_64"', "zen4-h100", "generic"),  # by build label
        ('prefer = ["ib"]', "zen4-ib-h100", "zen4"),  # by NFD set tag, over the GPU build
    ],
)  # fmt: skip
def test_site_policy(clean_env, annot, mix, facts, tmp_path, policy, node, expected):
    pushed = mix if "ib" in policy else annot
    body = (
        f'[[policy]]\nimage = "{pushed.repository}*"\n'
        + policy.format(zen3=annot.manifests["zen3"])
        + "\n"
    )
    site = _site(tmp_path, body)
    _, decision = explain(clean_env, pushed.ref, facts[node], site=site)
    assert decision["outcome"] == "selected", decision["reason"]
    assert name_of(pushed, chosen(decision)) == expected, decision["reason"]
    if "prefer" in policy:
        assert "(site policy)" in decision["reason"]
    if "avoid" in policy:  # ranked last; the reason compares with the runner-up (generic)
        assert candidate(decision, annot.manifests["zen4"])["score"]["policy"] == -1
    if "pin" in policy:
        pinned_out = [c for c in decision["candidates"] if c["digest"] != annot.manifests[expected]]
        assert all(check_named(c, "policy")["passed"] is False for c in pinned_out)


def test_site_policy_pin_of_a_build_that_does_not_fit_is_refused(clean_env, annot, facts, tmp_path):
    site = _site(
        tmp_path, f'[[policy]]\nimage = "{annot.repository}*"\npin = "{annot.manifests["cuda"]}"\n'
    )
    done, decision = explain(clean_env, annot.ref, facts["zen4"], site=site)
    assert done.returncode == 125
    assert decision["outcome"] == "refused"
    zen4 = candidate(decision, annot.manifests["zen4"])
    assert check_named(zen4, "policy")["detail"] == f"site policy pins {annot.manifests['cuda']}"


def test_site_policy_of_another_image_does_not_apply(clean_env, annot, facts, tmp_path):
    site = _site(
        tmp_path, f'[[policy]]\nimage = "{annot.repository}-other*"\nprefer = ["x86_64"]\n'
    )
    _, decision = explain(clean_env, annot.ref, facts["zen4"], site=site)
    assert chosen(decision) == annot.manifests["zen4"]


# -- 7. the shim -----------------------------------------------------------------------------


def shim(shim_bin, podman_env, args, facts_file, **extra):
    argv, env = podman_env
    env = {k: v for k, v in env.items() if not k.startswith("IMAGEFIT_")}
    env.update({"PATH": f"{shim_bin}:{env['PATH']}", "IMAGEFIT_FACTS": facts_file, "IMAGEFIT_DRY_RUN": "1",
                "IMAGEFIT_SITE_CONFIG": "/nonexistent/imagefit.toml", **extra})  # fmt: skip
    return subprocess.run([str(shim_bin / "podman"), *argv[1:], *args], env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip


def test_shim_rewrites_to_the_digest_explain_chooses(
    shim_bin, podman_env, annot, annot_decisions, facts
):
    args = ["run", "--rm", "--tls-verify=false", annot.ref, "nvidia-smi", "-L"]
    done = shim(shim_bin, podman_env, args, facts["zen4-h100"])
    assert done.returncode == 0, done.stderr
    final = json.loads(done.stdout)
    rewritten = annot_decisions["zen4-h100"]["chosen"]["rewritten"]
    assert rewritten == f"{annot.repository}@{annot.manifests['cuda']}"
    assert final[0] == shutil.which("podman")
    assert rewritten in final and annot.ref not in final
    assert final[-2:] == ["nvidia-smi", "-L"]


def test_shim_applies_site_policy(shim_bin, podman_env, annot, facts, tmp_path):
    site = _site(tmp_path, f'[[policy]]\nimage = "{annot.repository}*"\nprefer = ["x86_64"]\n')
    done = shim(shim_bin, podman_env, ["run", "--rm", "--tls-verify=false", annot.ref, "true"], facts["zen4"],
                IMAGEFIT_SITE_CONFIG=site)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"{annot.repository}@{annot.manifests['generic']}" in json.loads(done.stdout)


def test_shim_refuses_when_no_build_fits(shim_bin, podman_env, mix, facts):
    done = shim(
        shim_bin, podman_env, ["run", "--rm", "--tls-verify=false", mix.ref, "true"], facts["rhel7"]
    )
    assert done.returncode == 125
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith(f"imagefit: {mix.ref}: none of the 3 builds runs on this host (")
    glibc = "needs glibc >= 2.28; host has glibc 2.17"
    assert lines[1:] == [
        f"  x86_64_v3: {glibc}",
        "  zen4: linux/amd64/v4 needs a newer CPU level than this host's linux/amd64/v3",
        "  x86_64_v3+cuda12.0+sm90: needs an NVIDIA GPU; host has no NVIDIA driver",
        f"closest: x86_64_v3, which lacks: {glibc}",
    ]
