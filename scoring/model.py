"""The decision model: what scoring returns, and what ``imagefit explain`` shows."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from scoring.index import Candidate


class Outcome(StrEnum):
    """What the shim does with the decision."""

    SELECTED = "selected"  # rewrite the image to the chosen manifest digest
    PASSTHROUGH = "passthrough"  # no compatibility data: leave the command untouched
    REFUSED = "refused"  # compatibility data, and no build fits: exit 125


class Check(BaseModel):
    """One requirement of a candidate tested against the host."""

    model_config = ConfigDict(frozen=True)

    name: str  # "platform", "media-type", "cpu.target"
    passed: bool
    detail: str  # one line: what was required and what the host has


class Verdict(BaseModel):
    """One candidate, its checks and, when it fits, its score.

    ``score`` is ``(specificity, -position)``: specificity is the depth in
    archspec's DAG of the build's CPU target (the number of its ancestors; 0
    for a build with no CPU data), position its place in the index. Scores
    compare as tuples; the highest wins.
    """

    model_config = ConfigDict(frozen=True)

    candidate: Candidate
    build: str  # short label: the CPU target, else the platform
    fits: bool
    checks: tuple[Check, ...]
    score: tuple[int, int] | None = None

    @property
    def why_not(self) -> str:
        """The first failed check's detail (checks run from the most basic,
        platform, to the most specific); '' when the candidate fits."""
        return next((c.detail for c in self.checks if not c.passed), "")


class Decision(BaseModel):
    """The result of :func:`scoring.select`.

    ``chosen`` is set only for ``Outcome.SELECTED``; ``verdicts`` holds every
    candidate in index order.
    """

    model_config = ConfigDict(frozen=True)

    outcome: Outcome
    reason: str
    chosen: Candidate | None = None
    verdicts: tuple[Verdict, ...] = ()
    host: str = ""  # one-line host summary the decision was made for
