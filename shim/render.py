"""Human and JSON renderings of a decision (``imagefit explain``, ``imagefit
demo``, ``imagefit check``).

JSON schema of ``explain --json`` (``EXPLAIN_SCHEMA_VERSION`` 2; documented
in docs/reference.md)::

    {"schema_version": 2, "reference": str, "index_digest": str | null,
     "host": str, "outcome": "selected" | "passthrough" | "refused",
     "reason": str,
     "node_class": str | null,
     "policy": {"image": str, "pin": str | null, "prefer": [str], "avoid": [str],
                "source": "site" | "user" | "environment", "lock": bool} | null,
     "chosen": {"digest": str, "build": str, "rewritten": str | null} | null,
     "closest": {"digest": str, "build": str, "lacks": [str]} | null,
     "candidates": [{
         "position": int, "digest": str, "platform": str | null,
         "build": str, "gpu": str, "mpi": str, "fits": bool,
         "gpu_code": str,
         "score": {"policy": int, "weight": int, "gpu": int, "mpi": int,
                   "cpu": int, "position": int} | null,
         "checks": [{"name": str, "passed": bool, "detail": str}],
         "sets": [{"source": str, "tag": str, "weight": int, "is_match": bool,
                   "rules": [{"name": str, "is_match": bool,
                              "expressions": [{"feature": str, "name": str,
                                  "expression": str, "host_value": str | null,
                                  "matcher_type": str, "is_match": bool,
                                  "error": str}]}]}]}]}

The human renderings (:func:`to_text`, :func:`matrix`) show every string a
registry chose (build labels, platforms, GPU/MPI summaries from annotations,
check details quoting annotation values, NFD tags, rule names and
expressions) through :func:`shim.untrusted.terminal_safe`: control
characters escaped, each field cut (a table column to 60 characters, a detail
to 200), so no registry can write to a terminal or flood it. The JSON
(:func:`to_json`) keeps every string exact.
"""

from __future__ import annotations

from scoring import Decision, Verdict
from scoring.explain import expression_text, host_has
from shim.untrusted import terminal_safe as _safe

EXPLAIN_SCHEMA_VERSION = 2


def _verdict_of(decision: Decision, candidate) -> Verdict | None:
    return next((v for v in decision.verdicts if v.candidate == candidate), None)


_SOURCES = {"site": "site config", "user": "user config", "environment": "IMAGEFIT_PIN"}


def policy_json(entry: dict | None) -> dict | None:
    """A config policy entry (:meth:`shim.config.Settings.policy_for`) as the
    ``policy`` object of ``explain --json``, or None."""
    if entry is None:
        return None
    return {
        "image": entry["image"],
        "pin": entry["pin"],
        "prefer": list(entry["prefer"]),
        "avoid": list(entry["avoid"]),
        "source": entry["source"],
        "lock": bool(entry["lock"]),
    }


def policy_text(entry: dict | None) -> str | None:
    """``pin zen4 (site config, locked)``: what a policy entry does and who set it."""
    if entry is None:
        return None
    parts = []
    if entry["pin"] is not None:
        parts.append(f"pin {entry['pin']}")
    if entry["prefer"]:
        parts.append("prefer " + ", ".join(entry["prefer"]))
    if entry["avoid"]:
        parts.append("avoid " + ", ".join(entry["avoid"]))
    who = _SOURCES.get(entry["source"], entry["source"] or "config")
    if entry["lock"]:
        who += ", locked"
    if entry["source"] in ("site", "user"):
        who += f'; [[policy]] image = "{entry["image"]}"'
        if entry.get("node_class"):
            who += f', node_class = "{entry["node_class"]}"'
    return f"{'; '.join(parts) or 'no pin, prefer or avoid'} ({who})"


def to_json(
    decision: Decision,
    reference: str,
    index_digest: str | None,
    rewritten: str | None,
    node_class: str | None = None,
    policy: dict | None = None,
) -> dict:
    """The decision as the documented JSON object (`policy`: the config's
    policy entry that applied, :meth:`shim.config.Settings.policy_for`)."""
    chosen = closest = None
    if decision.chosen is not None:
        v = _verdict_of(decision, decision.chosen)
        chosen = {"digest": decision.chosen.digest, "build": v.build, "rewritten": rewritten}
    if decision.closest is not None:
        v = _verdict_of(decision, decision.closest)
        closest = {
            "digest": v.candidate.digest,
            "build": v.build,
            "lacks": [c.detail for c in v.checks if not c.passed],
        }
    return {
        "schema_version": EXPLAIN_SCHEMA_VERSION,
        "reference": reference,
        "index_digest": index_digest,
        "host": decision.host,
        "outcome": decision.outcome.value,
        "reason": decision.reason,
        "node_class": node_class,
        "policy": policy_json(policy),
        "chosen": chosen,
        "closest": closest,
        "candidates": [
            {
                "position": v.candidate.position,
                "digest": v.candidate.digest,
                "platform": str(v.candidate.platform) if v.candidate.platform else None,
                "build": v.build,
                "gpu": v.gpu,
                "mpi": v.mpi,
                "fits": v.fits,
                "gpu_code": v.gpu_code,
                "score": v.score.model_dump() if v.score else None,
                "checks": [c.model_dump() for c in v.checks],
                "sets": [s.model_dump(exclude={"description"}) for s in v.sets],
            }
            for v in decision.verdicts
        ],
    }


def _score(v: Verdict) -> str:
    if not v.score:
        return "-"
    s = v.score
    parts = [f"cpu {s.cpu}"]
    if s.gpu:
        from scoring.gpu import tier

        parts.insert(0, f"gpu {tier(s.gpu)}".rstrip())
    if s.mpi:
        parts.insert(0, "mpi")
    if s.weight:
        parts.insert(0, f"w {s.weight}")
    if s.policy:
        parts.insert(0, f"policy {s.policy:+d}")
    return " ".join(parts)


#: Characters of one table cell (build, platform, gpu, mpi) shown at most.
CELL = 60


def _row(v: Verdict, chosen: bool) -> list[str]:
    plat = str(v.candidate.platform) if v.candidate.platform else "-"
    return ["->" if chosen else "", str(v.candidate.position), _safe(v.build, CELL),
            _safe(plat, CELL), _safe(v.gpu, CELL), _safe(v.mpi, CELL),
            "fits" if v.fits else "no", _score(v), _safe(v.candidate.digest[:19])]  # fmt: skip


def to_text(
    decision: Decision,
    reference: str,
    rewritten: str | None,
    verbose: bool = False,
    node_class: str | None = None,
    policy: dict | None = None,
) -> str:
    """A table, one row per candidate (failed checks under it), then the
    outcome; with `verbose`, every check and every NFD expression with the
    host value it was tested against. `node_class` and `policy` (the config's
    entry) add a ``node class:`` and a ``policy:`` line under the host."""
    context = []
    if node_class:
        context.append(f"node class: {node_class}")
    if policy is not None:
        context.append(f"policy: {policy_text(policy)}")
    if not decision.verdicts:  # a single manifest, nothing was chosen
        return "\n".join(
            [f"image:  {reference}", *context, "",
             f"{decision.outcome.value}: {_safe(decision.reason, 400)}"]
        )  # fmt: skip
    header = ["", "#", "build", "platform", "gpu", "mpi", "verdict", "score", "digest"]
    rows = [_row(v, v.candidate == decision.chosen) for v in decision.verdicts]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    indent = " " * (widths[0] + widths[1] + 4)
    lines = [f"image:  {reference}", f"host:   {decision.host}", *context, "",
             fmt.format(*header).rstrip()]  # fmt: skip
    for v, row in zip(decision.verdicts, rows, strict=True):
        lines.append(fmt.format(*row).rstrip())
        for c in v.checks:
            if verbose or not c.passed:
                lines.append(
                    f"{indent}{'pass' if c.passed else 'FAIL'} {c.name}: {_safe(c.detail)}"
                )
        if verbose:
            for s in v.sets:
                label = (
                    f"set {_safe(s.tag or '(untagged)', CELL)} from {_safe(s.source or '?', 100)}"
                    + (f", weight {s.weight}" if s.weight else "")
                )
                lines.append(f"{indent}{'match' if s.is_match else 'no match'}: {label}")
                for r in s.rules:
                    lines.append(
                        f"{indent}  rule {_safe(r.name or '-', CELL)}: {'match' if r.is_match else 'no match'}"
                    )
                    for e in r.expressions:
                        err = f" [{_safe(e.error)}]" if e.error else ""
                        lines.append(
                            f"{indent}    {'ok' if e.is_match else 'x '} "
                            f"{_safe(expression_text(e))}; {_safe(host_has(e))}{err}"
                        )
    lines.append("")
    lines.append(f"{decision.outcome.value}: {_safe(decision.reason, 400)}")
    if decision.closest is not None:
        v = _verdict_of(decision, decision.closest)
        lacks = "; ".join(_safe(c.detail) for c in v.checks if not c.passed)
        lines.append(
            f"closest: {_safe(v.build, CELL)} ({_safe(v.candidate.digest[:19])}), "
            f"lacks: {_safe(lacks, 600)}"
        )
    if rewritten:
        lines.append(f"runs:   {rewritten}")
    return "\n".join(lines)


#: Characters of the host cell of ``imagefit check`` shown at most.
HOST_CELL = 120


def host_cell(facts) -> str:
    """The host column of ``imagefit check``: CPU target, GPUs and MPI, e.g.
    ``zen4; 1x NVIDIA H100 80GB HBM3 (sm 9.0, CUDA 12.4); mpich 4.1.2 (mpich ABI)``,
    ``zen4; no GPU; no MPI``. `facts`: :class:`hostfacts.HostFacts`."""
    parts = [facts.cpu.target]
    gpus = []
    nvidia = facts.gpu.nvidia
    if nvidia.devices:
        by_name: dict[str, list] = {}
        for d in nvidia.devices:
            by_name.setdefault(d.name or "NVIDIA GPU", []).append(d)
        for name, devices in by_name.items():
            ccs = ",".join(sorted({d.compute_capability or "?" for d in devices}))
            gpus.append(
                f"{len(devices)}x {name} (sm {ccs}, CUDA {nvidia.cuda_driver_version or '?'})"
            )
    amd = facts.gpu.amd.devices
    if amd:
        gpus.append(f"{len(amd)}x AMD " + ",".join(sorted({d.gfx_target or "?" for d in amd})))
    parts.append(", ".join(gpus) or "no GPU")
    mpi = facts.mpi
    parts.append(
        f"{mpi.implementation} {mpi.version} ({mpi.abi} ABI)" if mpi.implementation else "no MPI"
    )
    return "; ".join(parts)


def matrix(rows: list[tuple[str, Decision]], reference: str, hosts: list[str] | None = None) -> str:
    """``imagefit check``: which build each node class gets, or why none.
    `hosts`: each row's host cell (:func:`host_cell`); by default the
    decision's host summary."""
    header = ["node class", "host", "outcome", "build", "digest / reason"]
    table = []
    for i, (name, d) in enumerate(rows):
        host = _safe(hosts[i] if hosts else d.host, HOST_CELL)
        if d.policy_error:
            table.append([name, host, "refused", "-", _safe(d.policy_error, 400)])
        elif d.chosen is not None:
            v = _verdict_of(d, d.chosen)
            table.append(
                [name, host, "selected", _safe(v.build, CELL), _safe(d.chosen.digest[:19])]
            )
        elif d.outcome.value == "refused":
            v = _verdict_of(d, d.closest) if d.closest else None
            why = (
                f"closest {_safe(v.build, CELL)}: {_safe(v.why_not)}"
                if v
                else "no build for this platform"
            )
            table.append([name, host, "refused", "-", why])
        else:
            table.append([name, host, d.outcome.value, "-", _safe(d.reason, 400)])
    widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(
        [
            f"image:  {reference}",
            "",
            fmt.format(*header).rstrip(),
            *(fmt.format(*r).rstrip() for r in table),
        ]
    )
