"""The decision model: what scoring returns, and what ``imagefit explain`` shows."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from scoring.index import Candidate
from scoring.rules import SetResult


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


class Score(BaseModel):
    """Why a fitting candidate ranks where it does; compared by :meth:`key`,
    highest first (DESIGN.md "Choosing").

    Attributes:
        policy: site/user policy: 1 preferred (more for an earlier ``prefer``
            entry), 0 neutral, -1 avoided.
        weight: the build's weight annotation plus the weight of its best
            fitting NFD compatibility set.
        gpu: 0 for a CPU build; for a GPU build that fits every visible GPU
            its grade (:mod:`scoring.gpu`): 4000 native code for each GPU's
            exact compute capability or gfx target (4001 arch-specific
            code, ``sm_90a``, on its device), 3000 + minor native code
            of a lower minor (or 3000 a generic gfx target), 2000 + 10*major
            + minor PTX JIT-compiled at load, 1000 a build naming no code;
            the grade of its weakest visible GPU.
        mpi: 1 for a build naming an MPI that fits the host's, else 0.
        cpu: depth in archspec's DAG of the build's CPU target (0: none).
        position: place in the index; lower wins the final tie.
    """

    model_config = ConfigDict(frozen=True)

    policy: int = 0
    weight: int = 0
    gpu: int = 0
    mpi: int = 0
    cpu: int = 0
    position: int = 0

    def key(self) -> tuple[int, ...]:
        return (self.policy, self.weight, self.gpu, self.mpi, self.cpu, -self.position)

    def __lt__(self, other: Score) -> bool:
        return self.key() < other.key()

    def __gt__(self, other: Score) -> bool:
        return self.key() > other.key()

    def __le__(self, other: Score) -> bool:
        return self.key() <= other.key()

    def __ge__(self, other: Score) -> bool:
        return self.key() >= other.key()


class Verdict(BaseModel):
    """One candidate, its checks and, when it fits, its score.

    ``checks`` run from the most basic (media type, platform) to the most
    specific (each annotation rule, then NFD sets); ``sets`` holds every
    evaluated compatibility set with each expression and the host value it was
    tested against. ``gpu`` and ``mpi`` are short labels of what the build
    needs (``-`` for nothing).
    """

    model_config = ConfigDict(frozen=True)

    candidate: Candidate
    build: str  # label, unique within the index (scoring.labels): ``x86_64_v3+cuda12.2+sm90``
    fits: bool
    checks: tuple[Check, ...]
    sets: tuple[SetResult, ...] = ()
    score: Score | None = None
    gpu: str = "-"
    mpi: str = "-"
    #: for a fitting GPU build: how its code runs on the visible GPUs
    #: (``native sm_90 code for every visible GPU``, ``PTX 8.0, JIT-compiled
    #: for 9.0 at load``); '' otherwise
    gpu_code: str = ""

    @property
    def why_not(self) -> str:
        """The first failed check's detail; '' when the candidate fits."""
        return next((c.detail for c in self.checks if not c.passed), "")

    @property
    def failed(self) -> int:
        """Number of failed checks."""
        return sum(not c.passed for c in self.checks)


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
    closest: Candidate | None = (
        None  # for a refusal: the build that came nearest (platform fits, fewest failures)
    )
    #: a refusal because the policy cannot be applied (a pin that names
    #: several builds): the one line that says so, also the ``reason``
    policy_error: str = ""
