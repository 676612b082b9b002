"""Scoring: choose the best build of an image index for a host. Pure: no I/O.

``scoring`` takes an image index (the parsed JSON document), host facts and
nothing else, and returns a :class:`Decision`: the chosen manifest, or a
pass-through, or a refusal, with every candidate's checks and score. It knows
nothing of argv, registries or runtimes (DESIGN.md, data flow).

Public API:
    parse_index(document) -> list[Candidate]     raises InvalidIndexError
    select(candidates, facts) -> Decision
    select_common(candidates, facts_by_class) -> Decision   one build for every node class of a job
"""

from scoring.index import INDEX_MEDIA_TYPES, Candidate, InvalidIndexError, Platform, parse_index
from scoring.model import Check, Decision, Outcome, Verdict
from scoring.select import select, select_common

__all__ = [
    "INDEX_MEDIA_TYPES",
    "Candidate",
    "Check",
    "Decision",
    "InvalidIndexError",
    "Outcome",
    "Platform",
    "Verdict",
    "parse_index",
    "select",
    "select_common",
]
