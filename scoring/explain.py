"""One-line, human readable details of evaluated rules (for checks, refusals
and ``imagefit explain``). Pure."""

from __future__ import annotations

from hostfacts import HostFacts
from scoring.rules import RuleResult

_OPS = {"Ge": ">=", "Gt": ">", "Le": "<=", "Lt": "<"}


def human(expression: str) -> str:
    """``Ge ['12.2'] (version)`` as ``>= 12.2``; other expressions unchanged."""
    op, _, rest = expression.partition(" ")
    if op in _OPS and rest.startswith("['"):
        value = rest[2:].split("'", 1)[0]
        return f"{_OPS[op]} {value}"
    return expression


def _first_failed(result: RuleResult):
    return next((e for e in result.expressions if not e.is_match), None)


def describe(result: RuleResult, facts: HostFacts) -> str:
    """What a rule required and what the host has, in one line."""
    nvidia, mpi = facts.gpu.nvidia, facts.mpi
    failed = _first_failed(result) if not result.is_match else None
    name = result.name
    if name == "gpu.nvidia":
        if result.is_match:
            return f"host has {len(nvidia.devices)} NVIDIA GPU(s)"
        why = f" ({nvidia.probe.reason})" if nvidia.probe.reason else ""
        return f"needs an NVIDIA GPU; host has none{why}"
    if name == "gpu.cuda":
        have = nvidia.cuda_driver_version or "no CUDA driver"
        need = failed.expression if failed else "-"
        return (
            f"host driver supports CUDA {have}"
            if result.is_match
            else f"needs CUDA {need} from the driver; host: {have}"
        )
    if name == "gpu.compute_capability":
        have = (
            ", ".join(sorted({d.compute_capability or "?" for d in nvidia.devices}))
            or "no NVIDIA GPU"
        )
        return f"host GPU compute capability {have}" + (
            "" if result.is_match else ": no code for it in this build"
        )
    if name in ("mpi.abi", "mpi.implementation", "mpi.version"):
        have = (
            f"{mpi.implementation} {mpi.version} ({mpi.abi} ABI)"
            if mpi.implementation
            else "no MPI found"
        )
        if result.is_match:
            return f"host MPI {have}"
        need = human(failed.expression) if failed else "-"
        return f"needs {name.split('.')[1]} {need}; host: {have}"
    if result.is_match:
        shown = ", ".join(
            f"{e.feature} {e.name} = {e.host_value}" for e in result.expressions[:3] if e.name
        )
        return shown or "matches"
    if failed is None:
        return "no alternative matches"
    have = "absent" if failed.host_value is None else repr(failed.host_value)
    error = f" ({failed.error})" if failed.error else ""
    what = f"{failed.feature} {failed.name}".strip()
    return f"needs {what} {human(failed.expression)}; host: {have}{error}"
