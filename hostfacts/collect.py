"""Run every probe, each bounded in time, none able to sink the others.

The CPU probe runs first and must succeed (without a CPU there is nothing to
choose for). The others (NVIDIA, AMD, MPI, system, interconnect) run
concurrently in daemon threads; one that raises becomes an ``error`` section
with the exception's one-line message, one that outlives the context's
timeout becomes an ``error`` section "timed out" and is abandoned (a daemon
thread never holds the process open; commands it ran have their own
timeouts). Each section records its wall time in ``probe.seconds``.
"""

from __future__ import annotations

import importlib
import socket
import threading
import time

from hostfacts.context import ProbeContext
from hostfacts.model import (
    AmdFacts,
    GpuFacts,
    HostFacts,
    InterconnectFacts,
    MpiFacts,
    NvidiaFacts,
    Probe,
    SystemFacts,
)
from hostfacts.probes import cpu as cpu_probe

#: section name -> (probe module, model class of its result)
PROBES = {
    "nvidia": ("hostfacts.probes.gpu_nvidia", NvidiaFacts),
    "amd": ("hostfacts.probes.gpu_amd", AmdFacts),
    "mpi": ("hostfacts.probes.mpi", MpiFacts),
    "system": ("hostfacts.probes.system", SystemFacts),
    "interconnect": ("hostfacts.probes.interconnect", InterconnectFacts),
}


def _timed(section, seconds: float):
    return section.model_copy(
        update={"probe": section.probe.model_copy(update={"seconds": round(seconds, 4)})}
    )


def _failed(model, reason: str, seconds: float):
    return model(probe=Probe(status="error", reason=reason[:300], seconds=round(seconds, 4)))


def _run(name: str, ctx: ProbeContext, results: dict) -> None:
    module_name, model = PROBES[name]
    start = time.monotonic()
    try:
        section = importlib.import_module(module_name).probe(ctx)
        results[name] = _timed(section, time.monotonic() - start)
    except Exception as exc:  # a probe must never take the others down
        first = str(exc).splitlines()[0] if str(exc) else ""
        results[name] = _failed(
            model, f"probe failed: {type(exc).__name__}: {first}", time.monotonic() - start
        )


def hostname_of(ctx: ProbeContext) -> str:
    """This host's name (live), or the copied tree's /etc/hostname."""
    if ctx.live:
        return socket.gethostname()
    return (ctx.read_text("/etc/hostname") or "").strip()


def collect(
    ctx: ProbeContext, *, machine: str | None = None, sections: tuple[str, ...] | None = None
) -> HostFacts:
    """Probe everything `ctx` points at.

    Args:
        ctx: root, environment, per-probe timeout (seconds), fakes.
        machine: kernel machine name of a copied tree, if its cpuinfo is ambiguous.
        sections: only these of PROBES (default all); the rest read "not recorded".

    Returns:
        HostFacts; every section's ``probe`` says how it went.

    Raises:
        HostFactsError: the CPU cannot be described.
    """
    start = time.monotonic()
    cpu = _timed(cpu_probe.probe(ctx, machine), time.monotonic() - start)
    results: dict = {}
    threads = []
    for name in sections or tuple(PROBES):
        thread = threading.Thread(
            target=_run, args=(name, ctx, results), name=f"probe-{name}", daemon=True
        )
        thread.start()
        threads.append((name, thread, time.monotonic()))
    deadline = time.monotonic() + ctx.timeout + 1.0
    for name, thread, started in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive() and name not in results:
            results[name] = _failed(
                PROBES[name][1], f"timed out after {ctx.timeout:g} s", time.monotonic() - started
            )
    return HostFacts(
        hostname=hostname_of(ctx),
        root=str(ctx.root),
        cpu=cpu,
        gpu=GpuFacts(
            nvidia=results.get("nvidia", NvidiaFacts()), amd=results.get("amd", AmdFacts())
        ),
        mpi=results.get("mpi", MpiFacts()),
        system=results.get("system", SystemFacts()),
        interconnect=results.get("interconnect", InterconnectFacts()),
    )
