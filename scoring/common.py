"""One build for several node classes: the build every rank of a job runs.

A Slurm job spanning node classes (zen4 and sapphirerapids nodes, say) must
run one digest on every rank. :func:`select_common` keeps the builds that fit
every class (each checked exactly as :func:`scoring.select` checks it for
that class) and ranks them by the usual score order (DESIGN.md "Choosing":
policy > weight > GPU > MPI > CPU depth > index order), taking for each
component its *worst* value over the classes: a build that is specific on
one class but generic on another does not beat one that is good everywhere.
For one class it is :func:`scoring.select`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hostfacts import HostFacts
from scoring.index import Candidate
from scoring.model import Check, Decision, Outcome, Score, Verdict
from scoring.policy import Policy
from scoring.select import select

_COMPONENTS = ("policy", "weight", "gpu", "mpi", "cpu")


def _worst(scores: Sequence[Score]) -> Score:
    return Score(**{f: min(getattr(s, f) for s in scores) for f in _COMPONENTS},
                 position=scores[0].position)  # fmt: skip


def select_common(
    candidates: Sequence[Candidate],
    facts_by_class: Mapping[str, HostFacts],
    *,
    artifact_sets: Mapping | None = None,
    index_digest: str | None = None,
    policy: Policy | None = None,
    requested_platform: tuple[str, str, str | None] | None = None,
) -> Decision:
    """Choose the one build of an index that fits every node class.

    Args:
        candidates: the index's descriptors (:func:`scoring.parse_index`).
        facts_by_class: node class name -> that class's facts (at least one).
        artifact_sets, index_digest, policy, requested_platform: as for
            :func:`scoring.select`.

    Returns:
        A Decision. SELECTED: ``chosen`` fits every class, ``verdicts`` one
        per candidate (its verdict for the first class, in name order, where
        it fails, else its common verdict with the worst-component score).
        PASSTHROUGH: no compatibility data. REFUSED: no build fits every
        class; the reason names, per class, the builds that fit it.
        Deterministic: the order of `facts_by_class` does not matter.

    Raises:
        ValueError: `facts_by_class` is empty.
    """
    if not facts_by_class:
        raise ValueError("select_common needs at least one node class")
    names = sorted(facts_by_class)
    per_class = {
        n: select(candidates, facts_by_class[n], artifact_sets=artifact_sets,
                  index_digest=index_digest, policy=policy, requested_platform=requested_platform)
        for n in names
    }  # fmt: skip
    if len(names) == 1:
        return per_class[names[0]]
    first = per_class[names[0]]
    if first.outcome == Outcome.PASSTHROUGH:
        return first  # no compatibility data: the same for every class
    hosts = "; ".join(f"{n}: {per_class[n].host}" for n in names)
    verdicts: list[Verdict] = []
    common: list[Verdict] = []
    for i in range(len(candidates)):
        mine = [per_class[n].verdicts[i] for n in names]
        failing = next(((n, v) for n, v in zip(names, mine, strict=True) if not v.fits), None)
        if failing is not None:
            name, verdict = failing
            checks = tuple(
                c if c.passed else Check(name=c.name, passed=False, detail=f"on {name}: {c.detail}")
                for c in verdict.checks
            )
            verdicts.append(verdict.model_copy(update={"checks": checks, "score": None}))
            continue
        merged = mine[0].model_copy(update={"score": _worst([v.score for v in mine])})
        verdicts.append(merged)
        common.append(merged)
    if not common:
        fits = "; ".join(
            f"{n} fits " + (", ".join(v.build for v in per_class[n].verdicts if v.fits) or "none")
            for n in names
        )
        return Decision(
            outcome=Outcome.REFUSED,
            reason=f"no build runs on every node class of this job ({fits})",
            verdicts=tuple(verdicts),
            host=hosts,
        )
    best = max(common, key=lambda v: v.score.key())
    return Decision(
        outcome=Outcome.SELECTED,
        reason=f"{best.build} is the best build that runs on every node class ({', '.join(names)}) "
        f"of {len(common)} that do",
        chosen=best.candidate,
        verdicts=tuple(verdicts),
        host=hosts,
    )
