"""The CPU probe: /proc/cpuinfo under the context's root, through archspec
(:mod:`hostfacts.cpu`). On the live root the machine is ``platform.machine()``;
on a copied tree it is read from the dump's keys (``guess_machine``)."""

from __future__ import annotations

import platform

from hostfacts.context import ProbeContext, file_evidence
from hostfacts.cpu import cpu_facts_from_text, guess_machine
from hostfacts.errors import HostFactsError
from hostfacts.model import CpuFacts, Probe


def probe(ctx: ProbeContext, machine: str | None = None) -> CpuFacts:
    """CpuFacts of the context's /proc/cpuinfo.

    Raises:
        HostFactsError: no readable cpuinfo, or an unknown machine: without a
            CPU there is nothing to choose for.
    """
    text = ctx.read_text("/proc/cpuinfo")
    if text is None:
        raise HostFactsError(f"cannot read {ctx.path('/proc/cpuinfo')}")
    machine = machine or (platform.machine() if ctx.live else guess_machine(text))
    if machine is None:
        raise HostFactsError(
            f"cannot tell the architecture of {ctx.path('/proc/cpuinfo')}; give --machine"
        )
    facts = cpu_facts_from_text(text, machine, str(ctx.path("/proc/cpuinfo")))
    evidence = (file_evidence(ctx, "/proc/cpuinfo", f"{machine}: archspec target {facts.target}"),)
    return facts.model_copy(update={"probe": Probe(status="ok", reason="", evidence=evidence)})
