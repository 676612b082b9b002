"""Human and JSON renderings of a decision (``imagefit explain``, ``imagefit demo``).

JSON schema (``EXPLAIN_SCHEMA_VERSION`` 1)::

    {"schema_version": 1, "reference": str, "index_digest": str | null,
     "host": str, "outcome": "selected" | "passthrough" | "refused",
     "reason": str, "chosen": {"digest": str, "build": str, "rewritten": str} | null,
     "candidates": [{"position": int, "digest": str, "platform": str | null,
                     "build": str, "fits": bool, "score": [int, int] | null,
                     "checks": [{"name": str, "passed": bool, "detail": str}]}]}
"""

from __future__ import annotations

from scoring import Decision, Verdict

EXPLAIN_SCHEMA_VERSION = 1


def to_json(
    decision: Decision, reference: str, index_digest: str | None, rewritten: str | None
) -> dict:
    """The decision as the documented JSON object."""
    chosen = None
    if decision.chosen is not None:
        build = next(v.build for v in decision.verdicts if v.candidate == decision.chosen)
        chosen = {"digest": decision.chosen.digest, "build": build, "rewritten": rewritten}
    return {
        "schema_version": EXPLAIN_SCHEMA_VERSION,
        "reference": reference,
        "index_digest": index_digest,
        "host": decision.host,
        "outcome": decision.outcome.value,
        "reason": decision.reason,
        "chosen": chosen,
        "candidates": [
            {
                "position": v.candidate.position,
                "digest": v.candidate.digest,
                "platform": str(v.candidate.platform) if v.candidate.platform else None,
                "build": v.build,
                "fits": v.fits,
                "score": list(v.score) if v.score else None,
                "checks": [c.model_dump() for c in v.checks],
            }
            for v in decision.verdicts
        ],
    }


def _row(v: Verdict, chosen: bool) -> list[str]:
    mark = "->" if chosen else ""
    plat = str(v.candidate.platform) if v.candidate.platform else "-"
    verdict = "fits" if v.fits else "no"
    score = f"{v.score[0]}" if v.score else "-"
    return [mark, str(v.candidate.position), v.build, plat, verdict, score, v.candidate.digest[:19]]


def to_text(
    decision: Decision, reference: str, rewritten: str | None, verbose: bool = False
) -> str:
    """A table, one row per candidate, then the outcome; with `verbose`,
    every check under its candidate."""
    if not decision.verdicts:  # a single manifest, nothing was chosen
        return "\n".join(
            [f"image:  {reference}", "", f"{decision.outcome.value}: {decision.reason}"]
        )
    header = ["", "#", "build", "platform", "verdict", "score", "digest"]
    rows = [_row(v, v.candidate == decision.chosen) for v in decision.verdicts]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [f"image:  {reference}", f"host:   {decision.host}", ""]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines.append(fmt.format(*header).rstrip())
    for v, row in zip(decision.verdicts, rows, strict=True):
        lines.append(fmt.format(*row).rstrip())
        if verbose or not v.fits:
            for c in v.checks:
                if verbose or not c.passed:
                    lines.append(
                        f"{'':{widths[0] + widths[1] + 4}}{'pass' if c.passed else 'FAIL'} {c.name}: {c.detail}"
                    )
    lines.append("")
    lines.append(f"{decision.outcome.value}: {decision.reason}")
    if rewritten:
        lines.append(f"runs:   {rewritten}")
    return "\n".join(lines)
