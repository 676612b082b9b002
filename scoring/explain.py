"""One-line, human readable details of evaluated rules (for checks, refusals
and ``imagefit explain``), worded as people write requirements: ``needs CUDA
>= 12.2 (driver); host has CUDA 12.4``, ``needs MPI ABI mpich; host has no
MPI``, ``needs kernel >= 5.14; host has 4.18.0``, never an NFD operator such
as ``Ge ['12.2']``. Each detail says what the build needs, then what the host
has. Pure.
"""

from __future__ import annotations

import ast

from hostfacts import HostFacts
from scoring.rules import UNREADABLE_RULE, ExpressionResult, RuleResult

_OPS = {"Ge": ">=", "Gt": ">", "Le": "<=", "Lt": "<"}


def _split(expression: str) -> tuple[str, list[str], bool]:
    """``Ge ['12.2'] (version)`` -> ("Ge", ["12.2"], True): the parts of
    ``str(MatchExpression)``; unknown shapes give (expression, [], False)."""
    version = expression.endswith(" (version)")
    text = expression.removesuffix(" (version)")
    op, _, rest = text.partition(" ")
    values: list[str] = []
    if rest:
        try:
            parsed = ast.literal_eval(rest)
        except (ValueError, SyntaxError):
            return expression, [], False
        if not isinstance(parsed, list):
            return expression, [], False
        values = [str(v) for v in parsed]
    return op, values, version


def human(expression: str) -> str:
    """An NFD expression (``str(MatchExpression)``) as a person writes it:
    ``Ge ['12.2'] (version)`` -> ``>= 12.2``, ``In ['a', 'b']`` -> ``in a, b``,
    ``In ['a']`` -> ``= a``, ``Exists`` -> ``present``, ``DoesNotExist`` ->
    ``absent``, ``GeLe ['1', '2']`` -> ``from 1 to 2``, ``GtLt ['1', '2']``
    -> ``between 1 and 2 (exclusive)``, ``InRegexp ['^a']`` -> ``matching
    /^a/``, ``IsTrue`` -> ``true``. An expression it cannot read is returned
    unchanged."""
    op, values, _ = _split(expression)
    joined = ", ".join(values)
    if op in _OPS and len(values) == 1:
        return f"{_OPS[op]} {values[0]}"
    if op == "In":
        return f"= {values[0]}" if len(values) == 1 else f"in {joined}"
    if op == "NotIn":
        return f"!= {values[0]}" if len(values) == 1 else f"not in {joined}"
    if op == "InRegexp":
        return "matching " + " or ".join(f"/{v}/" for v in values)
    if op in ("GeLe", "GtLt") and len(values) == 2:
        if op == "GeLe":
            return f"from {values[0]} to {values[1]}"
        return f"between {values[0]} and {values[1]} (exclusive)"
    simple = {"Exists": "present", "DoesNotExist": "absent", "IsTrue": "true", "IsFalse": "false"}
    if op in simple and not values:
        return simple[op]
    return expression


def host_has(e: ExpressionResult) -> str:
    """What the host has for one expression: ``host has 2.17``, ``host has
    it`` (a flag), ``host lacks it`` (no such element), ``host has no
    kernel.version`` (no such feature), ``host has none`` (matchName: no
    element name matched)."""
    if e.matcher_type == "matchName":
        return f"host has {e.host_value}" if e.host_value else "host has none"
    if e.host_value is None:
        return "host lacks it" if e.feature_present else f"host has no {e.feature}"
    return "host has it" if e.host_value == "" else f"host has {e.host_value}"


def expression_text(e: ExpressionResult) -> str:
    """``kernel.version full >= 5.14`` (``cpu.cpuid AVX512F present``)."""
    what = f"{e.feature} {e.name}".strip() if e.matcher_type == "matchExpression" else (
        f"{e.feature} names"
    )  # fmt: skip
    return f"{what} {human(e.expression)}"


def _first_failed(result: RuleResult):
    return next((e for e in result.expressions if not e.is_match), None)


def _range(result: RuleResult) -> str:
    """The version range a rule's expressions state: ``>= 4.1, < 5``."""
    parts = []
    for e in result.expressions:
        op, values, _ = _split(e.expression)
        if op in _OPS and values:
            parts.append(f"{_OPS[op]} {values[0]}")
    return ", ".join(dict.fromkeys(parts)) or "-"


def _values(result: RuleResult) -> list[str]:
    """The values of a rule's In expressions (an MPI ABI, gfx targets)."""
    out: list[str] = []
    for e in result.expressions:
        op, values, _ = _split(e.expression)
        if op == "In":
            out += values
    return list(dict.fromkeys(out))


def _or(values: list[str]) -> str:
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " or " + values[-1]


def _capabilities(result: RuleResult) -> str:
    """``8.0 or 9.0``; a PTX alternative as ``7.0 or newer (PTX)``; an
    arch-specific one as ``exactly 9.0``. A SASS alternative
    (:func:`scoring.vocabulary.capability_rule`: ``>=`` X.Y with major X) is
    X.Y."""
    out = []
    alternatives = [a.expressions for a in result.match_any] or [result.expressions]
    for expressions in alternatives:
        sass = any(e.name == "compute_capability_major" for e in expressions)
        for e in expressions:
            op, values, _ = _split(e.expression)
            if e.name == "compute_capability_major":
                continue
            if op == "In":  # an arch-specific alternative (9.0a): that capability only
                out += [f"exactly {v}" for v in values]
            elif op == "Ge" and values:
                out.append(values[0] if sass else f"{values[0]} or newer (PTX)")
    return _or(list(dict.fromkeys(out))) if out else "-"


def _visibility(facts: HostFacts) -> str:
    """`` [CUDA_VISIBLE_DEVICES='': no GPU visible]``: how the job's
    visible-device variables narrowed the GPUs, or ''."""
    notes = facts.gpu.visibility
    return f" [{'; '.join(notes)}]" if notes else ""


def _nvidia_missing(facts: HostFacts) -> str:
    nvidia = facts.gpu.nvidia
    if nvidia.probe.status != "ok" and not nvidia.devices:
        return "host has no NVIDIA driver"
    if facts.gpu.visibility:
        return "host has no NVIDIA GPU visible to the job" + _visibility(facts)
    return "host has no NVIDIA GPU"


def _mpi_has(facts: HostFacts) -> str:
    mpi = facts.mpi
    if not mpi.implementation:
        return "host has no MPI"
    return f"host has {mpi.implementation} {mpi.version} ({mpi.abi} ABI)"


def describe(result: RuleResult, facts: HostFacts) -> str:
    """What a rule required and what the host has, in one line, e.g.
    ``needs CUDA >= 12.2 (driver); host has CUDA 12.4``. Annotation rules
    (:mod:`scoring.vocabulary` names: ``gpu.nvidia``, ``gpu.cuda``,
    ``gpu.compute_capability``, ``gpu.amd``, ``mpi.*``, ``kernel.version``,
    ``glibc.version``, ``network.fabric``, ``cpu.features``) are worded from
    the host facts; any other rule (NFD sets, ``platform.features`` tokens)
    by its first failed expression, or its first expressions when it matched."""
    nvidia, system = facts.gpu.nvidia, facts.system
    name = result.name
    if name == UNREADABLE_RULE:  # a compatibility set that could not be read
        errors = [e.error for e in result.expressions if e.error]
        return "the compatibility set cannot be read" + (f": {errors[0]}" if errors else "")
    if name == "gpu.nvidia":
        if nvidia.devices:
            names = ", ".join(dict.fromkeys(d.name for d in nvidia.devices if d.name))
            return (
                f"needs an NVIDIA GPU; host has {len(nvidia.devices)}"
                + (f" ({names})" if names else "")
                + _visibility(facts)
            )
        return f"needs an NVIDIA GPU; {_nvidia_missing(facts)}"
    if name == "gpu.cuda":
        have = (
            f"host has CUDA {nvidia.cuda_driver_version}"
            if nvidia.cuda_driver_version
            else _nvidia_missing(facts)
        )
        return f"needs CUDA {_range(result)} (driver); {have}"
    if name == "gpu.compute_capability":
        ccs = sorted({d.compute_capability for d in nvidia.devices if d.compute_capability})
        have = f"host has {', '.join(ccs)}" if ccs else _nvidia_missing(facts)
        return f"needs a GPU of compute capability {_capabilities(result)}; {have}"
    if name == "gpu.amd":
        gfx = sorted({d.gfx_target for d in facts.gpu.amd.devices if d.gfx_target})
        need = f"an AMD GPU {_or(_values(result))}" if _values(result) else "an AMD GPU"
        return (
            f"needs {need}; "
            + (f"host has {', '.join(gfx)}" if gfx else "host has no AMD GPU")
            + _visibility(facts)
        )
    if name == "mpi.abi":
        return f"needs MPI ABI {_or(_values(result))}; {_mpi_has(facts)}"
    if name == "mpi.implementation":
        return f"needs MPI implementation {_or(_values(result))}; {_mpi_has(facts)}"
    if name == "mpi.version":
        return f"needs MPI {_range(result)}; {_mpi_has(facts)}"
    if name == "kernel.version":
        have = system.kernel_release or "an unknown kernel"
        return f"needs kernel {_range(result)}; host has {have}"
    if name == "glibc.version":
        if system.glibc_version:
            have = f"host has glibc {system.glibc_version}"
        else:
            have = f"host has {system.libc}, no glibc" if system.libc else "host has no glibc"
        return f"needs glibc {_range(result)}; {have}"
    if name == "network.fabric":
        wanted = [e.name for a in result.match_any for e in a.expressions if e.name]
        fabrics = ", ".join(facts.interconnect.fabrics)
        return f"needs fabric {_or(list(dict.fromkeys(wanted)) or ['-'])}; " + (
            f"host has {fabrics}" if fabrics else "host has none"
        )
    if name == "cpu.features":
        missing = [e.name for e in result.expressions if not e.is_match]
        flags = ", ".join(e.name for e in result.expressions)
        return f"needs CPU flags {flags}; " + (
            f"host lacks {', '.join(missing)}" if missing else "host has them"
        )
    targets = [e.name for e in result.expressions if e.feature == "archspec.compatible"]
    if targets and len(targets) == len(result.expressions):  # a platform.features CPU token
        verb = "runs" if result.is_match else "cannot run"
        return f"needs CPU target {', '.join(targets)}; host {facts.cpu.target} {verb} it"
    if not result.expressions:
        return "matches" if result.is_match else "no alternative matches"
    if result.is_match:
        shown = "; ".join(f"{expression_text(e)}: {host_has(e)}" for e in result.expressions[:3])
        return shown or "matches"
    failed = _first_failed(result)
    if failed is None:
        return "no alternative matches"
    error = f" ({failed.error})" if failed.error else ""
    return f"needs {expression_text(failed)}; {host_has(failed)}{error}"
