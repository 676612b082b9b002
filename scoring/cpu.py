"""The CPU target requirement: can this host run code built for target T?

A build names its target with the annotation ``CPU_TARGET`` (or compspec's
``CPU_TARGET_COMPSPEC``), an archspec target name. It fits when the host's
target is T or descends from T in archspec's DAG (archspec/archspec:
archspec/cpu/microarchitecture.py, ``__le__`` on ancestor sets): never by name
or feature-count comparison. Its specificity is T's depth in the DAG.
"""

from __future__ import annotations

from hostfacts import CpuFacts
from scoring import vocabulary
from scoring.model import Check


def annotated_target(annotations: dict[str, str]) -> str | None:
    """The CPU target a descriptor's annotations name, or None."""
    value = annotations.get(vocabulary.CPU_TARGET) or annotations.get(
        vocabulary.CPU_TARGET_COMPSPEC
    )
    return value.strip().lower() if value and value.strip() else None


def depth(target: str | None) -> int:
    """Depth of an archspec target (its number of ancestors); 0 if unknown or None."""
    from archspec.cpu import TARGETS

    uarch = TARGETS.get(target) if target else None
    return len(uarch.ancestors) if uarch is not None else 0


def check_target(target: str, cpu: CpuFacts) -> Check:
    """One Check named ``cpu.target``: does a host with `cpu` run `target`?
    Its detail: ``needs CPU target zen3; host haswell cannot run it``."""
    from archspec.cpu import TARGETS

    uarch = TARGETS.get(target)
    if uarch is None:
        return Check(
            name="cpu.target",
            passed=False,
            detail=f"needs unknown CPU target {target!r} (not an archspec name)",
        )
    if cpu.can_run(target):
        return Check(
            name="cpu.target",
            passed=True,
            detail=f"needs CPU target {target}; host {cpu.target} runs it",
        )
    host_family = TARGETS[cpu.target].family.name if cpu.target in TARGETS else cpu.architecture
    if uarch.family.name != host_family:
        return Check(
            name="cpu.target",
            passed=False,
            detail=f"needs CPU target {target} ({uarch.family.name}); host is {host_family}",
        )
    return Check(
        name="cpu.target",
        passed=False,
        detail=f"needs CPU target {target}; host {cpu.target} cannot run it",
    )
