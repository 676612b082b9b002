"""The one rule model every compatibility format compiles into, with Node
Feature Discovery's semantics (kubernetes-sigs/node-feature-discovery:
api/nfd/v1alpha1 ``MatchExpression``, ``FeatureMatcher``, ``GroupRule``;
image-compatibility spec ``v1alpha1``).

- A :class:`CompatibilitySet` fits a host when **all** its rules match.
- A :class:`Rule` matches when all its ``match_features`` terms match (AND)
  and, if it has ``match_any``, at least one of those elements matches (OR);
  both must hold when both are given (NFD issue #2260: matchAny beside
  matchFeatures must not give a false positive).
- A :class:`FeatureMatcher` term tests one feature (``cpu.cpuid``,
  ``kernel.version``, ``pci.device``...) of the host's NFD features
  (``hostfacts.nfd.features``): flags and attributes by element name,
  instances by "any instance matches every expression".
- A candidate fits when any of its sets fits, or when it carries none.

Evaluation is pure and returns every expression's result with the host value
it was tested against, for ``imagefit explain -v``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Op = Literal[
    "In", "NotIn", "InRegexp", "Exists", "DoesNotExist", "Gt", "Ge", "Lt", "Le", "GtLt", "GeLe", "IsTrue", "IsFalse",
]  # fmt: skip


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")


class MatchExpression(_Model):
    """One operator with its values. ``type: version`` makes Gt/Ge/Lt/Le/GtLt/GeLe
    compare versions (dotted numbers, e.g. ``5.14.0``) instead of integers."""

    op: Op
    value: tuple[str, ...] = ()
    type: Literal["", "version"] = ""

    def __str__(self) -> str:
        shown = f"{self.op} {list(self.value)}" if self.value else self.op
        return f"{shown} (version)" if self.type == "version" else shown


class FeatureMatcher(_Model):
    """One ``matchFeatures`` term: expressions per element of one feature, and/or
    an expression on the element names (``matchName``)."""

    feature: str
    match_expressions: dict[str, MatchExpression] | None = Field(default=None, alias="matchExpressions")
    match_name: MatchExpression | None = Field(default=None, alias="matchName")


class MatchAnyElement(_Model):
    match_features: tuple[FeatureMatcher, ...] = Field(alias="matchFeatures")


class Rule(_Model):
    name: str = ""
    match_features: tuple[FeatureMatcher, ...] = Field(default=(), alias="matchFeatures")
    match_any: tuple[MatchAnyElement, ...] = Field(default=(), alias="matchAny")


class CompatibilitySet(_Model):
    """One NFD ``compatibilities[]`` entry (or what annotations compile to).

    Attributes:
        rules: all must match.
        weight: preference among fitting sets and candidates (higher first).
        tag: the set's label (``preferred``, ``fallback``...).
        description: free text shown by explain.
        source: where it came from: ``annotations``, ``platform.features``,
            ``nfd:sha256:<artifact manifest digest>``.
    """

    rules: tuple[Rule, ...] = ()
    weight: int = 0
    tag: str = ""
    description: str = ""
    source: str = ""


class ExpressionResult(_Model):
    """One evaluated expression: what was required, what the host has."""

    feature: str
    name: str = Field(description="Element name the expression is on; '' for matchName.")
    expression: str = Field(description="str(MatchExpression).")
    host_value: str | None = Field(description="The host's value ('' for a flag, None when absent).")
    matcher_type: Literal["matchExpression", "matchName"] = "matchExpression"
    is_match: bool
    error: str = Field(default="", description="Why the expression could not be evaluated (e.g. not an integer).")


class RuleResult(_Model):
    name: str
    is_match: bool
    expressions: tuple[ExpressionResult, ...] = ()


class SetResult(_Model):
    tag: str = ""
    weight: int = 0
    source: str = ""
    description: str = ""
    is_match: bool
    rules: tuple[RuleResult, ...] = ()
