"""Choosing: filter on hard requirements, rank the survivors.

Ranking (DESIGN.md, "Choosing"): the most specific CPU target the host runs
(deeper in archspec's DAG), then index order (image-index.md: the first match
wins). An index with no compatibility data at all passes through untouched:
the runtime's own platform match applies, exactly as without imagefit.
"""

from __future__ import annotations

from collections.abc import Sequence

from hostfacts import HostFacts
from scoring import cpu, platform, vocabulary
from scoring.index import MANIFEST_MEDIA_TYPES, Candidate
from scoring.model import Check, Decision, Outcome, Verdict


def _has_compatibility_data(candidate: Candidate) -> bool:
    if vocabulary.REQUIREMENT_KEYS & candidate.annotations.keys():
        return True
    plat = candidate.platform
    if plat is None:
        return False
    return bool(platform.normalize_variant(plat.architecture, plat.variant) or plat.os_features)


def _label(candidate: Candidate, target: str | None) -> str:
    if target:
        return target
    return str(candidate.platform) if candidate.platform else candidate.digest[:19]


def evaluate(candidate: Candidate, facts: HostFacts, host: platform.HostPlatform) -> Verdict:
    """Every check of one candidate against the host, and its score if it fits."""
    checks: list[Check] = []
    if candidate.media_type not in MANIFEST_MEDIA_TYPES:
        checks.append(
            Check(
                name="media-type",
                passed=False,
                detail=f"{candidate.media_type} is not an image manifest",
            )
        )
    checks.append(platform.check_platform(candidate.platform, host))
    target = cpu.annotated_target(candidate.annotations)
    if target:
        checks.append(cpu.check_target(target, facts.cpu))
    elif candidate.platform is not None:
        target = platform.variant_target(candidate.platform)
    fits = all(c.passed for c in checks)
    score = (cpu.depth(target), -candidate.position) if fits else None
    return Verdict(
        candidate=candidate,
        build=_label(candidate, target),
        fits=fits,
        checks=tuple(checks),
        score=score,
    )


def host_summary(facts: HostFacts) -> str:
    """One line naming the host as the decision saw it."""
    c = facts.cpu
    return f"{platform.host_platform(facts)} {c.target} ({c.vendor}, {c.generic})"


def select(candidates: Sequence[Candidate], facts: HostFacts) -> Decision:
    """Choose the build of an index for a host.

    Args:
        candidates: the index's descriptors, from :func:`scoring.parse_index`.
        facts: the host (or node class) to choose for.

    Returns:
        A Decision: SELECTED with ``chosen`` the best fitting candidate;
        PASSTHROUGH when no candidate carries compatibility data; REFUSED when
        the index carries compatibility data and no candidate fits. The same
        inputs always give the same decision.
    """
    host = platform.host_platform(facts)
    summary = host_summary(facts)
    verdicts = tuple(evaluate(c, facts, host) for c in candidates)
    if not any(_has_compatibility_data(c) for c in candidates):
        return Decision(
            outcome=Outcome.PASSTHROUGH,
            reason="the index carries no compatibility data; the runtime's own platform match applies",
            verdicts=verdicts,
            host=summary,
        )
    fitting = [v for v in verdicts if v.fits]
    if not fitting:
        return Decision(
            outcome=Outcome.REFUSED,
            reason=f"none of the {len(verdicts)} builds runs on this host ({summary})",
            verdicts=verdicts,
            host=summary,
        )
    best = max(fitting, key=lambda v: v.score)
    runner_up = [v for v in fitting if v is not best]
    why = f"{best.build} is the most specific of {len(fitting)} fitting builds"
    if not runner_up:
        why = f"{best.build} is the only build that runs here"
    return Decision(
        outcome=Outcome.SELECTED,
        reason=why,
        chosen=best.candidate,
        verdicts=verdicts,
        host=summary,
    )
