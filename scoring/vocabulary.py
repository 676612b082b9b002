"""The flat annotation vocabulary imagefit reads on index descriptors, and its
compilation into the rule model (:mod:`scoring.rules`).

Keys live under ``org.supercontainers.`` (the HPC container community's
namespace; shared/reference/spec-landscape.md section 3). Unknown keys are
ignored, as the OCI image-spec requires (annotations.md). Every requirement
key compiles into one named :class:`~scoring.rules.Rule` over the host's NFD
features (hostfacts.nfd), so annotations, NFD artifacts and
``platform.features`` tokens are judged by one evaluator. docs/compatibility.md
is the author-facing reference.

Version ranges (``mpi.version``, ``os.kernel.version``, ``os.glibc.version``,
``hardware.gpu.cuda.version``): comma-separated comparisons, all of which
must hold: ``>=5.14``, ``>=4.1,<5``, ``==2.28``; a bare version means ``>=``.
Versions compare by their numeric parts (``6.1.0-18-amd64`` is 6.1.0).
"""

from __future__ import annotations

import re

from scoring.rules import (
    MAX_VERSION_DIGITS,
    CompatibilitySet,
    FeatureMatcher,
    MatchAnyElement,
    MatchExpression,
    Rule,
)

P = "org.supercontainers."
#: archspec target name the build was compiled for (``zen4``, ``x86_64_v3``, ``neoverse_v2``).
CPU_TARGET = P + "hardware.cpu.target.microarch"
#: compspec's spelling of the same fact; read when CPU_TARGET is absent.
CPU_TARGET_COMPSPEC = P + "hardware.cpu.optimized.version"
#: CPU features the build needs beyond its target: Linux flag names (``avx512f``) or NFD names (``AVX512F``).
CPU_FEATURES = P + "hardware.cpu.features"
#: ``nvidia``, ``amd`` or ``none`` (a CPU build).
GPU_VENDOR = P + "hardware.gpu.vendor"
#: lowest CUDA version the host driver must support (``nvmlSystemGetCudaDriverVersion``), e.g. ``12.2``.
CUDA_VERSION = P + "hardware.gpu.cuda.version"
#: compute capabilities the build has code for: ``8.0,9.0`` (SASS: runs on X.Y to X.9);
#: ``X.Y+`` has PTX for X.Y that any newer GPU can JIT.
COMPUTE_CAPABILITIES = P + "hardware.gpu.compute_capabilities"
#: AMD gfx targets the build has code for: ``gfx90a,gfx942``, or LLVM generic targets (``gfx9-generic``).
AMD_GFX = P + "hardware.gpu.amd.gfx"
#: MPI ABI the build links against: ``mpich``, ``openmpi`` or ``mpi-abi`` (MPI-5 standard ABI).
MPI_ABI = P + "mpi.abi"
#: MPI implementation: ``mpich``, ``openmpi``, ``intelmpi``, ``craympich``, ``mvapich``...
MPI_IMPLEMENTATION = P + "mpi.implementation"
#: MPI version range, e.g. ``>=4.1,<5``.
MPI_VERSION = P + "mpi.version"
#: kernel version range, e.g. ``>=5.14``.
KERNEL_VERSION = P + "os.kernel.version"
#: glibc version range, e.g. ``>=2.28``.
GLIBC_VERSION = P + "os.glibc.version"
#: fabrics any of which the build can use: ``verbs`` (InfiniBand/RoCE/iWARP), ``cxi``, ``efa``, ``opa``, ``tcp``.
FABRIC = P + "network.fabric"
#: ``login`` (HPC login container: shell, caller's UID) or ``application`` (its ENTRYPOINT must run).
CONTAINER_KIND = P + "container.kind"
#: integer preference among fitting builds (higher first), after site policy.
WEIGHT = P + "weight"

#: Keys that state a requirement on the host (their presence means the index
#: carries compatibility data).
REQUIREMENT_KEYS = frozenset({
    CPU_TARGET, CPU_TARGET_COMPSPEC, CPU_FEATURES, GPU_VENDOR, CUDA_VERSION, COMPUTE_CAPABILITIES, AMD_GFX,
    MPI_ABI, MPI_IMPLEMENTATION, MPI_VERSION, KERNEL_VERSION, GLIBC_VERSION, FABRIC, WEIGHT,
})  # fmt: skip

_RANGE = re.compile(r"^\s*(>=|<=|==|>|<|=)?\s*v?([0-9][0-9A-Za-z.+_-]*)\s*$")
_OPS = {">=": "Ge", "<=": "Le", ">": "Gt", "<": "Lt"}
_CC = re.compile(r"^\d+\.\d+[+af]?$")
_FABRICS = {"verbs": ("infiniband", "roce", "iwarp"), "cxi": ("cxi",), "efa": ("efa",), "opa": ("opa",),
            "infiniband": ("infiniband",), "roce": ("roce",)}  # fmt: skip


#: Longest value of a requirement key read (characters): a list of 300 CPU
#: features is ~3,000; a longer value is unreadable, so that the terms one
#: value can hold, and the time they take to compile and match, stay bounded.
MAX_VALUE_CHARS = 4096


class InvalidAnnotation(ValueError):
    """A known key with a value that cannot be read. One line; the build never fits."""


def _list(value: str) -> list[str]:
    return [v for v in re.split(r"[\s,]+", value.strip()) if v]


def _version_terms(feature: str, element: str, value: str, key: str) -> tuple[FeatureMatcher, ...]:
    terms = []
    for part in value.split(","):
        match = _RANGE.match(part)
        if not match:
            raise InvalidAnnotation(
                f"{key}: {part.strip()!r} is not a version comparison (e.g. '>=5.14')"
            )
        op, version = match[1] or ">=", match[2]
        if any(len(n) > MAX_VERSION_DIGITS for n in re.findall(r"[0-9]+", version)):
            raise InvalidAnnotation(
                f"{key}: {_shown(version)} has a number of more than {MAX_VERSION_DIGITS} digits"
            )
        ops = ("Ge", "Le") if op in ("==", "=") else (_OPS[op],)  # NFD's GeLe refuses equal bounds
        for nfd_op in ops:
            expr = MatchExpression(op=nfd_op, value=(version,), type="version")
            terms.append(FeatureMatcher(feature=feature, matchExpressions={element: expr}))
    return tuple(terms)


def _cpuid_names(value: str) -> list[str]:
    from hostfacts.nfd import cpuid_name

    return [name if name.isupper() else cpuid_name(name) for name in _list(value)]


def _exists(feature: str, *elements: str) -> FeatureMatcher:
    return FeatureMatcher(
        feature=feature, matchExpressions={e: MatchExpression(op="Exists") for e in elements}
    )


_LISTS = (CPU_FEATURES, COMPUTE_CAPABILITIES, AMD_GFX, MPI_ABI, MPI_IMPLEMENTATION, FABRIC)


def _rules(annotations: dict[str, str]) -> list[Rule]:
    rules: list[Rule] = []
    get = annotations.get
    for (
        key
    ) in _LISTS:  # a non-blank list that names nothing (",") is unreadable, not "no requirement"
        if get(key, "").strip() and not _list(get(key)):
            raise InvalidAnnotation(f"{key}: {get(key)!r} names nothing")
    target = (get(CPU_TARGET) or get(CPU_TARGET_COMPSPEC) or "").strip().lower()
    if target:
        rules.append(
            Rule(name="cpu.target", matchFeatures=(_exists("archspec.compatible", target),))
        )
    if get(CPU_FEATURES, "").strip():
        rules.append(
            Rule(
                name="cpu.features",
                matchFeatures=(_exists("cpu.cpuid", *_cpuid_names(get(CPU_FEATURES))),),
            )
        )
    vendor = get(GPU_VENDOR, "").strip().lower()
    if vendor not in ("", "none", "nvidia", "amd"):
        raise InvalidAnnotation(f"{GPU_VENDOR}: {vendor!r} is not nvidia, amd or none")
    nvidia = (
        vendor == "nvidia" or CUDA_VERSION in annotations or COMPUTE_CAPABILITIES in annotations
    )
    if nvidia:
        count = {"count": MatchExpression(op="Gt", value=("0",))}
        rules.append(
            Rule(
                name="gpu.nvidia",
                matchFeatures=(FeatureMatcher(feature="gpu.nvidia", matchExpressions=count),),
            )
        )
    if get(CUDA_VERSION, "").strip():
        rules.append(
            Rule(
                name="gpu.cuda",
                matchFeatures=_version_terms(
                    "gpu.nvidia", "cuda_driver_version", get(CUDA_VERSION), CUDA_VERSION
                ),
            )
        )
    if get(COMPUTE_CAPABILITIES, "").strip():
        for cc in _list(get(COMPUTE_CAPABILITIES)):
            if not _CC.match(cc):
                raise InvalidAnnotation(
                    f"{COMPUTE_CAPABILITIES}: {cc!r} is not a compute capability like 9.0, 9.0a, 10.0f or 8.0+"
                )
        rules.append(capability_rule("gpu.compute_capability", _list(get(COMPUTE_CAPABILITIES))))
    if vendor == "amd" or get(AMD_GFX, "").strip():
        from scoring.gpu import amd_targets, expand_gfx

        gfx = expand_gfx(amd_targets(get(AMD_GFX, "")))
        expr = MatchExpression(op="In", value=gfx) if gfx else MatchExpression(op="Exists")
        term = FeatureMatcher(feature="gpu.amd.device", matchExpressions={"gfx_target": expr})
        rules.append(Rule(name="gpu.amd", matchFeatures=(term,)))
    for key, element, rule in (
        (MPI_ABI, "abi", "mpi.abi"),
        (MPI_IMPLEMENTATION, "implementation", "mpi.implementation"),
    ):
        values = [v.lower() for v in _list(get(key, ""))]
        if values:
            term = FeatureMatcher(
                feature="mpi.library",
                matchExpressions={element: MatchExpression(op="In", value=tuple(values))},
            )
            rules.append(Rule(name=rule, matchFeatures=(term,)))
    for key, feature, element, rule in (
        (MPI_VERSION, "mpi.library", "version", "mpi.version"),
        (KERNEL_VERSION, "kernel.version", "full", "kernel.version"),
        (GLIBC_VERSION, "libc.version", "version", "glibc.version"),
    ):
        if get(key, "").strip():
            rules.append(
                Rule(name=rule, matchFeatures=_version_terms(feature, element, get(key), key))
            )
    fabrics = [f.lower() for f in _list(get(FABRIC, ""))]
    unknown = [f for f in fabrics if f not in _FABRICS and f != "tcp"]
    if unknown:
        raise InvalidAnnotation(
            f"{FABRIC}: unknown fabric {unknown[0]!r} (verbs, cxi, efa, opa, tcp)"
        )
    if fabrics and "tcp" not in fabrics:  # tcp runs everywhere
        hosts = sorted({h for f in fabrics for h in _FABRICS[f]})
        rules.append(
            Rule(
                name="network.fabric",
                matchAny=tuple(
                    MatchAnyElement(matchFeatures=(_exists("network.fabric", h),)) for h in hosts
                ),
            )
        )
    return rules


def capability_rule(name: str, capabilities: list[str]) -> Rule:
    """The rule "some GPU runs this code" for compute capabilities ``X.Y``
    and ``X.Yf`` (SASS, family-specific: a GPU of major X and minor >= Y),
    ``X.Ya`` (arch-specific: a GPU of exactly X.Y) and ``X.Y+`` (PTX: a GPU
    of X.Y or newer), with NFD's any-instance semantics over
    ``gpu.nvidia.device`` (CUDA C Programming Guide, "Binary Compatibility",
    "PTX Compatibility"; "Compute Capabilities", "Feature Availability").
    That every visible GPU runs it, and how well, is :mod:`scoring.gpu`'s
    check, which :func:`scoring.select.evaluate` puts in this rule's place."""
    options = []
    for cc in capabilities:
        version = cc.rstrip("+af")
        exprs = {"compute_capability": MatchExpression(op="Ge", value=(version,), type="version")}
        if cc.endswith("a"):
            exprs = {"compute_capability": MatchExpression(op="In", value=(version,))}
        elif not cc.endswith("+"):
            exprs["compute_capability_major"] = MatchExpression(
                op="In", value=(version.split(".")[0],)
            )
        term = FeatureMatcher(feature="gpu.nvidia.device", matchExpressions=exprs)
        options.append(MatchAnyElement(matchFeatures=(term,)))
    return Rule(name=name, matchAny=tuple(options))


def weight(annotations: dict[str, str]) -> int:
    """The build's integer weight annotation (0 when absent).

    Raises:
        InvalidAnnotation: not a decimal integer (ASCII digits, optional
            sign), or one of more than :data:`MAX_VERSION_DIGITS` digits.
    """
    value = annotations.get(WEIGHT, "").strip()
    if not value:
        return 0
    if not re.fullmatch(r"[+-]?[0-9]+", value):
        raise InvalidAnnotation(f"{WEIGHT}: {_shown(value)} is not an integer")
    if len(value.lstrip("+-")) > MAX_VERSION_DIGITS:
        raise InvalidAnnotation(
            f"{WEIGHT}: {_shown(value)} has more than {MAX_VERSION_DIGITS} digits"
        )
    return int(value)


def _shown(value: str, limit: int = 60) -> str:
    """`value` quoted for a message, cut to `limit` characters (the full value
    stays in the annotations; messages are shown to people)."""
    return repr(value) if len(value) <= limit else f"{value[:limit]!r}... ({len(value)} characters)"


def compile_annotations(annotations: dict[str, str]) -> CompatibilitySet | None:
    """The requirement keys of one descriptor as one CompatibilitySet
    (source ``annotations``), or None when it has none.

    Raises:
        InvalidAnnotation: a known key whose value cannot be read, or longer
            than :data:`MAX_VALUE_CHARS`.
    """
    present = REQUIREMENT_KEYS & annotations.keys()
    if not present:
        return None
    for key in sorted(present):  # bounded before parsing: one value, a bounded number of terms
        if len(annotations[key]) > MAX_VALUE_CHARS:
            raise InvalidAnnotation(
                f"{key}: a value of {len(annotations[key])} characters (at most {MAX_VALUE_CHARS})"
            )
    return CompatibilitySet(
        rules=tuple(_rules(annotations)), weight=weight(annotations), source="annotations"
    )


def requires_gpu(annotations: dict[str, str]) -> bool:
    """The build is a GPU build (names a GPU vendor, CUDA, compute capabilities or gfx targets),
    as :func:`_rules` reads it: a blank gfx list is no AMD requirement."""
    vendor = annotations.get(GPU_VENDOR, "").strip().lower()
    return (
        vendor in ("nvidia", "amd")
        or any(k in annotations for k in (CUDA_VERSION, COMPUTE_CAPABILITIES))
        or bool(annotations.get(AMD_GFX, "").strip())
    )


def names_mpi(annotations: dict[str, str]) -> bool:
    """The build names an MPI (ABI, implementation or version)."""
    return any(annotations.get(k, "").strip() for k in (MPI_ABI, MPI_IMPLEMENTATION, MPI_VERSION))
