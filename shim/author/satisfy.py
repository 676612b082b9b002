"""Can any host run this build? Static checks, then a proof with scoring.

For one index descriptor, :func:`build_problems` returns what makes its
compatibility data unsatisfiable (errors) or suspicious (warnings):

1. static checks with precise messages: an unknown archspec target, a target
   of another architecture than the platform, a value the vocabulary cannot
   read (``scoring.vocabulary.compile_annotations``), an empty compute
   capability list, an unknown MPI ABI or implementation, an MPI
   implementation of another ABI than the one required, a version range no
   version satisfies (``>=5,<4``), CPU flags no archspec target lists;
2. a proof: a synthetic "best host" is made for the build (each CPU that
   descends from its target in archspec's DAG, with that target's flags,
   the GPU, MPI, kernel, glibc and fabric its annotations ask for, a version
   inside every range) and the build is scored against it with
   :func:`scoring.select`, the function the shim uses. If no such host
   fits, the checks that failed on the closest one are the finding.

NFD compatibility sets are checked for expressions that can never be
evaluated (a wrong number of values, a bound that is not a number, GtLt
bounds in the wrong order, an invalid regexp): :func:`nfd_set_problems`.
Whether some host has the features an NFD rule names is not decided here.
Pure functions: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from scoring import vocabulary
from scoring.index import MANIFEST_MEDIA_TYPES, Candidate
from scoring.platform import normalize_architecture, normalize_variant, variant_target

ERROR = "error"
WARNING = "warning"

#: OCI architecture -> archspec family.
ARCH_FAMILY = {
    "amd64": "x86_64", "arm64": "aarch64", "ppc64le": "ppc64le", "ppc64": "ppc64",
    "riscv64": "riscv64", "386": "x86", "arm": "arm", "sparc64": "sparc64",
}  # fmt: skip
#: MPI implementations hostfacts reports (hostfacts/probes/mpi.py) and their ABI family.
MPI_ABI_OF = {
    "mpich": "mpich", "craympich": "mpich", "intelmpi": "mpich", "mvapich": "mpich",
    "openmpi": "openmpi", "spectrum": "openmpi", "fujitsu": "openmpi",
    "mpt": None, "mpiwrapper": None, "mpi_abi_wrapper": None,
}  # fmt: skip
MPI_ABIS = ("mpich", "openmpi", "mpi-abi")
_VERSION_RULES = {
    "mpi.version": vocabulary.MPI_VERSION,
    "kernel.version": vocabulary.KERNEL_VERSION,
    "glibc.version": vocabulary.GLIBC_VERSION,
    "gpu.cuda": vocabulary.CUDA_VERSION,
}
_VERSION = re.compile(r"\s*[vV]?([0-9]+)(?:\.([0-9]+))?(?:\.([0-9]+))?")  # scoring.rules' reading


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a build: ``severity`` error (no host can run it,
    or its data cannot be read) or warning; ``code`` a short stable name."""

    severity: str
    code: str
    message: str


def _split(value: str) -> list[str]:
    return [v for v in re.split(r"[\s,]+", value.strip()) if v]


def family_of(architecture: str) -> str | None:
    """archspec's family for an OCI architecture (``amd64`` -> ``x86_64``), or None."""
    return ARCH_FAMILY.get(normalize_architecture(architecture))


def variant_for(target: str) -> str | None:
    """The platform ``variant`` of an archspec target's generic level, for
    amd64 and arm64 (docs/compatibility.md): ``haswell`` -> ``v3``,
    ``x86_64`` -> None, ``neoverse_v2`` -> ``v9``, ``neoverse_n1`` -> ``v8.2``;
    None for other families."""
    from archspec.cpu import TARGETS

    uarch = TARGETS[target]
    generic = uarch.generic.name
    if uarch.family.name == "x86_64":
        match = re.fullmatch(r"x86_64_(v\d+)", generic)
        return normalize_variant("amd64", match[1]) if match else None
    if uarch.family.name == "aarch64":
        match = re.fullmatch(r"armv(\d+)\.(\d+)a", generic)
        return normalize_variant("arm64", f"v{match[1]}.{match[2]}") if match else None
    return None


def _triple(text: str) -> tuple[int, int, int]:
    match = _VERSION.match(text)
    assert match is not None  # the vocabulary's range grammar starts with a digit
    return tuple(int(g) if g else 0 for g in match.groups())  # type: ignore[return-value]


_COMPARE = {
    "Ge": lambda a, b: a >= b,
    "Gt": lambda a, b: a > b,
    "Le": lambda a, b: a <= b,
    "Lt": lambda a, b: a < b,
}


def version_witness(terms: list[tuple[str, str]]) -> str | None:
    """A version satisfying every ``(op, version)`` term (ops Ge/Gt/Le/Lt;
    versions compare as scoring does, by their first three numeric parts),
    or None when no version can. The smallest one is returned: the feasible
    set is an interval of triples, whose least element is 0.0.0, a lower
    bound, or the successor of one."""
    bounds = [(op, _triple(v)) for op, v in terms]
    candidates = [(0, 0, 0)]
    for _op, b in bounds:
        candidates += [b, (b[0], b[1], b[2] + 1)]
    for c in sorted(set(candidates)):
        if all(_COMPARE[op](c, b) for op, b in bounds):
            return ".".join(map(str, c))
    return None


def _range_terms(cs, rule_name: str) -> list[tuple[str, str]]:
    terms = []
    for rule in cs.rules:
        if rule.name != rule_name:
            continue
        for term in rule.match_features:
            for expr in (term.match_expressions or {}).values():
                terms.append((expr.op, expr.value[0]))
    return terms


@dataclass
class _Needs:
    """What the synthetic host must offer."""

    nvidia: bool = False
    compute_capability: str = "9.0"
    cuda: str = "99.0.0"
    amd: bool = False
    gfx: str = "gfx942"
    mpi: tuple[str, str] | None = None  # (implementation, abi)
    mpi_version: str = "5.0.0"
    kernel: str = "6.8.0"
    glibc: str = "2.39.0"
    flags: tuple[str, ...] = ()


def build_problems(candidate: Candidate) -> list[Problem]:
    """Every problem of one index descriptor (see the module docstring)."""
    if candidate.media_type not in MANIFEST_MEDIA_TYPES:
        return [
            Problem(
                ERROR, "not-a-manifest",
                f"{candidate.media_type} is not an image manifest: never chosen",
            )
        ]  # fmt: skip
    plat = candidate.platform
    if plat is None:
        return [Problem(ERROR, "no-platform", "the descriptor has no platform: never chosen")]
    a = candidate.annotations
    problems: list[Problem] = []
    try:
        cs = vocabulary.compile_annotations(a)
        vocabulary.weight(a)
    except vocabulary.InvalidAnnotation as exc:
        return [Problem(ERROR, "invalid-annotation", f"invalid annotation {exc}")]
    needs = _Needs()

    if vocabulary.COMPUTE_CAPABILITIES in a and not a[vocabulary.COMPUTE_CAPABILITIES].strip():
        problems.append(
            Problem(
                ERROR, "empty-list",
                f"{vocabulary.COMPUTE_CAPABILITIES} is empty: name the compute capabilities "
                "the build has code for",
            )
        )  # fmt: skip
    for key in (vocabulary.CPU_FEATURES, vocabulary.AMD_GFX, vocabulary.MPI_ABI,
                vocabulary.MPI_IMPLEMENTATION, vocabulary.FABRIC):  # fmt: skip
        if key in a and not a[key].strip():
            problems.append(Problem(WARNING, "empty-list", f"{key} is empty: drop it"))
    kind = a.get(vocabulary.CONTAINER_KIND)
    if kind is not None and kind.strip().lower() not in ("login", "application"):
        problems.append(
            Problem(
                WARNING, "invalid-annotation",
                f"{vocabulary.CONTAINER_KIND}: {kind!r} is neither login nor application",
            )
        )  # fmt: skip

    cpu_problems, targets = _cpu(candidate, a)
    problems += cpu_problems
    if any(p.severity == ERROR for p in cpu_problems):
        return problems

    vendor = a.get(vocabulary.GPU_VENDOR, "").strip().lower()
    nvidia_keys = [k for k in (vocabulary.CUDA_VERSION, vocabulary.COMPUTE_CAPABILITIES) if k in a]
    if vendor == "none" and (nvidia_keys or a.get(vocabulary.AMD_GFX, "").strip()):
        problems.append(
            Problem(
                WARNING, "contradiction",
                f"{vocabulary.GPU_VENDOR} is none but "
                f"{(nvidia_keys or [vocabulary.AMD_GFX])[0]} asks for a GPU",
            )
        )  # fmt: skip
    needs.nvidia = vendor == "nvidia" or bool(nvidia_keys)
    ccs = _split(a.get(vocabulary.COMPUTE_CAPABILITIES, ""))
    if ccs:
        needs.compute_capability = ccs[0].rstrip("+af")  # 9.0a, 10.0f: a 9.0, 10.0 device
    needs.amd = vendor == "amd" or bool(a.get(vocabulary.AMD_GFX, "").strip())
    gfx = _split(a.get(vocabulary.AMD_GFX, ""))
    if gfx:
        needs.gfx = gfx[0]

    mpi = _mpi(a)
    if isinstance(mpi, Problem):
        problems.append(mpi)
    else:
        needs.mpi = mpi

    if cs is not None:
        for rule_name, key in _VERSION_RULES.items():
            terms = _range_terms(cs, rule_name)
            if not terms:
                continue
            witness = version_witness(terms)
            if witness is None:
                problems.append(
                    Problem(ERROR, "impossible-range", f"{key}: no version satisfies {a[key]!r}")
                )
                continue
            attribute = {"mpi.version": "mpi_version", "kernel.version": "kernel",
                         "glibc.version": "glibc", "gpu.cuda": "cuda"}[rule_name]  # fmt: skip
            setattr(needs, attribute, witness)

    flag_problems, extra = _flags(a, plat.architecture)
    problems += flag_problems
    needs.flags = extra
    if any(p.severity == ERROR for p in problems):
        return problems
    failure = _prove(candidate, targets, needs)
    if failure:
        problems.append(Problem(ERROR, "unsatisfiable", f"no host can run it: {failure}"))
    return problems


def _cpu(candidate: Candidate, a: dict[str, str]) -> tuple[list[Problem], list[str | None]]:
    """CPU target problems, and the targets a synthetic host may have."""
    from archspec.cpu import TARGETS

    from shim.author.keys import suggest

    plat = candidate.platform
    arch = normalize_architecture(plat.architecture)
    family = family_of(arch)
    named = (a.get(vocabulary.CPU_TARGET) or a.get(vocabulary.CPU_TARGET_COMPSPEC) or "").strip()
    target = named.lower()
    if target:
        uarch = TARGETS.get(target)
        if uarch is None:
            hint = suggest(target, TARGETS)
            return [
                Problem(
                    ERROR, "unknown-target",
                    f"unknown CPU target {named!r} (not an archspec name"
                    + (f"; did you mean {hint}?)" if hint else ")"),
                )
            ], []  # fmt: skip
        if uarch.family.name != family:
            return [
                Problem(
                    ERROR, "wrong-architecture",
                    f"CPU target {target} is for {uarch.family.name}; the platform is {plat}",
                )
            ], []  # fmt: skip
        problems = []
        variant = normalize_variant(arch, plat.variant)
        implied = variant_for(target) if arch in ("amd64", "arm64") else None
        level = variant_target(plat) or (family if variant is None else None)
        generic = uarch.generic.name
        if arch in ("amd64", "arm64") and variant != implied and level is not None:
            shown = f"platform variant {variant or '(none)'}"
            if level in {t.name for t in TARGETS[generic].ancestors}:
                problems.append(
                    Problem(
                        WARNING, "variant",
                        f"{shown} is below {target}'s level ({implied}): runtimes without "
                        "imagefit may choose it for a CPU that cannot run it",
                    )
                )  # fmt: skip
            else:
                problems.append(
                    Problem(
                        WARNING, "variant",
                        f"{shown} is above {target}'s level ({implied or 'none'}): hosts of "
                        "that level never get it",
                    )
                )  # fmt: skip
        names = [target, *sorted(_descendants(target) - {target}, key=_depth)]
        return problems, names
    if family is None:
        return [], [None]
    names = sorted((n for n, t in TARGETS.items() if t.family.name == family), key=_depth)
    return [], names


def _descendants(target: str) -> set[str]:
    """`target` and every archspec target that runs its code."""
    from archspec.cpu import TARGETS

    return {n for n, t in TARGETS.items() if n == target or target in {x.name for x in t.ancestors}}


def _depth(name: str) -> tuple[int, str]:
    from archspec.cpu import TARGETS

    return len(TARGETS[name].ancestors), name


def _mpi(a: dict[str, str]) -> tuple[str, str] | Problem | None:
    impls = [v.lower() for v in _split(a.get(vocabulary.MPI_IMPLEMENTATION, ""))]
    abis = [v.lower() for v in _split(a.get(vocabulary.MPI_ABI, ""))]
    unknown = [v for v in abis if v not in MPI_ABIS]
    if unknown:
        return Problem(
            ERROR, "unknown-value",
            f"{vocabulary.MPI_ABI}: unknown MPI ABI {unknown[0]!r} ({', '.join(MPI_ABIS)})",
        )  # fmt: skip
    unknown = [v for v in impls if v not in MPI_ABI_OF]
    if unknown:
        return Problem(
            ERROR, "unknown-value",
            f"{vocabulary.MPI_IMPLEMENTATION}: no host reports MPI implementation "
            f"{unknown[0]!r} ({', '.join(k for k in MPI_ABI_OF if k != 'mpi_abi_wrapper')})",
        )  # fmt: skip
    if not impls and not abis:
        # an mpi.version alone needs some MPI: any will do for the proof
        return ("mpich", "mpich") if a.get(vocabulary.MPI_VERSION, "").strip() else None
    if not impls:
        abi = abis[0]
        return ({"openmpi": "openmpi"}.get(abi, "mpich"), abi)
    if not abis:
        return (impls[0], MPI_ABI_OF[impls[0]] or "unknown")
    for impl in impls:
        for abi in abis:
            if abi == "mpi-abi" or MPI_ABI_OF[impl] in (abi, None):
                return (impl, abi)
    return Problem(
        ERROR, "contradiction",
        f"{vocabulary.MPI_IMPLEMENTATION} {','.join(impls)} has the "
        f"{MPI_ABI_OF[impls[0]]} ABI, not {','.join(abis)}",
    )  # fmt: skip


def _flags(a: dict[str, str], architecture: str) -> tuple[list[Problem], tuple[str, ...]]:
    """Warnings for CPU flags no archspec target of the family lists, and
    those flags (the synthetic host gets them: archspec's lists are not
    every flag a CPU reports)."""
    from archspec.cpu import TARGETS

    from hostfacts.nfd import cpuid_name

    wanted = _split(a.get(vocabulary.CPU_FEATURES, ""))
    family = family_of(architecture)
    if not wanted or family is None:
        return [], tuple(wanted)
    known = {f for t in TARGETS.values() if t.family.name == family for f in t.features}
    nfd_known = {cpuid_name(f) for f in known}
    unknown = [f for f in wanted if (f not in nfd_known if f.isupper() else f not in known)]
    if not unknown:
        return [], ()
    return [
        Problem(
            WARNING, "unknown-flag",
            f"{vocabulary.CPU_FEATURES}: no archspec {family} target lists {', '.join(unknown)} "
            "(a typo?)",
        )
    ], tuple(unknown)  # fmt: skip


def synthetic_host(os_name: str, architecture: str, target: str | None, needs: _Needs):
    """HostFacts of a host with CPU `target` (None: an architecture archspec
    does not know) offering everything in `needs`."""
    from archspec.cpu import TARGETS

    from hostfacts import model

    ok = model.Probe(status="ok")
    none = model.Probe(status="none", reason="synthetic host")
    family = family_of(architecture) or normalize_architecture(architecture)
    if target is not None:
        uarch = TARGETS[target]
        ancestors = sorted(uarch.ancestors, key=lambda t: -len(t.ancestors))
        cpu = model.CpuFacts(
            architecture=family, target=target, detected_target=target, vendor=uarch.vendor,
            generic=uarch.generic.name, ancestors=tuple(t.name for t in ancestors),
            flags=tuple(sorted({*uarch.features, *needs.flags})),
            source="imagefit lint (synthetic host)", probe=ok,
        )  # fmt: skip
    else:
        cpu = model.CpuFacts(
            architecture=family, target=family, detected_target=family, vendor="generic",
            generic=family, ancestors=(), flags=tuple(sorted(needs.flags)),
            source="imagefit lint (synthetic host)", probe=ok,
        )  # fmt: skip
    nvidia = model.NvidiaFacts(probe=none)
    if needs.nvidia:
        device = model.NvidiaDevice(index=0, name="synthetic", compute_capability=needs.compute_capability)  # fmt: skip
        nvidia = model.NvidiaFacts(
            probe=ok, driver_version="999.0", cuda_driver_version=needs.cuda, devices=(device,)
        )
    amd = model.AmdFacts(probe=none)
    if needs.amd:
        amd = model.AmdFacts(
            probe=ok, devices=(model.AmdGpu(node=1, gfx_target=needs.gfx, gfx_target_version=0),)
        )
    mpi = model.MpiFacts(probe=none)
    if needs.mpi is not None:
        impl, abi = needs.mpi
        mpi = model.MpiFacts(probe=ok, implementation=impl, version=needs.mpi_version, abi=abi)
    kernel = tuple(int(p) for p in needs.kernel.split("."))
    system = model.SystemFacts(
        probe=ok, kernel_release=needs.kernel, kernel_version=kernel, libc="glibc",
        glibc_version=needs.glibc,
    )  # fmt: skip
    fabrics = ("infiniband", "roce", "iwarp", "opa", "cxi", "efa")
    return model.HostFacts(
        hostname="synthetic", os=os_name, cpu=cpu, gpu=model.GpuFacts(nvidia=nvidia, amd=amd),
        mpi=mpi, system=system, interconnect=model.InterconnectFacts(probe=ok, fabrics=fabrics),
    )  # fmt: skip


def _prove(candidate: Candidate, targets: list[str | None], needs: _Needs) -> str:
    """'' when some synthetic host fits `candidate`, else the failed checks
    on the closest one."""
    from scoring import select

    plat = candidate.platform
    closest = None
    for target in targets:
        facts = synthetic_host(plat.os, plat.architecture, target, needs)
        verdict = select([candidate], facts).verdicts[0]
        if verdict.fits:
            return ""
        if closest is None or verdict.failed <= closest.failed:  # ties: the deepest CPU
            closest = verdict
    if closest is None:
        return "no CPU of its architecture is known"
    return "; ".join(c.detail for c in closest.checks if not c.passed)


def nfd_set_problems(sets) -> list[str]:
    """Expressions of NFD compatibility sets that can never be evaluated,
    one line each (NFD fails them on every node)."""
    from scoring.rules import evaluate_expression

    lines = []
    for i, cs in enumerate(sets):
        label = f"set {cs.tag!r}" if cs.tag else f"set #{i}"
        for rule in cs.rules:
            terms = list(rule.match_features)
            for alternative in rule.match_any:
                terms += alternative.match_features
            for term in terms:
                exprs = list((term.match_expressions or {}).items())
                if term.match_name is not None:
                    exprs.append(("(names)", term.match_name))
                for name, expr in exprs:
                    sample = "1.0.0" if expr.type == "version" else "1"
                    _ok, error = evaluate_expression(expr, True, sample)
                    if not error and expr.op == "InRegexp":
                        _ok, error = evaluate_expression(expr, True, "x")
                    if error:
                        where = f"rule {rule.name or '-'}: {term.feature} {name} {expr}"
                        lines.append(f"NFD {label}: {where}: {error}")
    return lines
