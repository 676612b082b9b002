"""The one rule model every compatibility format compiles into, with Node
Feature Discovery's semantics, and its evaluation.

- A :class:`CompatibilitySet` fits a host when **all** its rules match (an
  empty set fits).
- A :class:`Rule` matches when all its ``match_features`` terms match (AND)
  and, if it has ``match_any``, at least one of those elements matches (OR);
  both must hold when both are given (NFD PR #2260: matchAny beside
  matchFeatures must not give a false positive). A rule with neither matches.
- A :class:`FeatureMatcher` term tests one feature (``cpu.cpuid``,
  ``kernel.version``, ``pci.device``...) of the host's NFD features
  (``hostfacts.nfd.features``): flags and attributes by element name,
  instances by "some instance matches every expression".
- A candidate fits when any of its sets fits, or when it carries none (the
  caller's rule, :mod:`scoring.select`).

Evaluation is pure and returns every expression's result with the host value
it was tested against, for ``imagefit explain``.

Host features (the input of the ``evaluate_*`` functions) are NFD's
``Features``, as ``hostfacts.nfd.features`` and ``nfd export features`` write
them::

    {"flags":      {"<feature>": {"elements": {"<name>": {}}}},
     "attributes": {"<feature>": {"elements": {"<name>": "<value>"}}},
     "instances":  {"<feature>": {"elements": [{"attributes": {...}}]}}}

Sources (kubernetes-sigs/node-feature-discovery, read for this module):

- ``pkg/apis/nfd/nodefeaturerule/expression.go``: ``evaluateMatchExpression``
  (MatchAny and the 13 operators, value-count errors, "not a number"
  errors, a missing element: only DoesNotExist and MatchAny match; the order
  of GtLt/GeLe bounds is checked for integers only), ``extractVersion``
  (``type: version``: Masterminds/semver v3 ``NewVersion``, then the
  pre-release dropped, see :func:`nfd_version`), ``MatchMulti`` (flags and attributes
  of one feature are a union; DoesNotExist must hold in both; instances are
  matched separately: one instance must satisfy every expression),
  ``MatchNamesMulti`` (matchName: matches when any element name matches).
- ``pkg/apis/nfd/nodefeaturerule/expression_test.go``: the operator tables,
  including ``type: version`` (``2`` = ``2.0`` = ``2.0.0``; ``str`` and
  ``-11`` are not versions) and MatchAny.
- ``api/nfd/v1alpha1/types.go``: ``MatchExpression``, ``MatchOp``
  (``MatchAny MatchOp = ""``: an expression with no ``op``), ``ValueType``,
  ``GroupRule`` (``name``, ``vars``, ``varsTemplate``, ``matchFeatures``,
  ``matchAny``).
- github.com/Masterminds/semver v3 (NFD's go.mod: v3.5.0) ``version.go``:
  ``NewVersion``/``coerceNewVersion`` (``looseSemVerRegex``, each part a
  uint64, ``validatePrerelease``).
- ``pkg/apis/nfd/nodefeaturerule/rule.go``: ``evaluateFeatureMatcher`` (a
  feature the host does not have fails its term, whatever the operator;
  the feature name is matched lower-cased; matchExpressions and matchName
  must both match) and ``ExecuteGroupRule``; ``grouprule_test.go`` ("matching
  against a missing feature" does not match; an empty rule matches).
- ``pkg/client-nfd/compat/node-validator/node-validator.go``: how
  ``nfd compat validate-node`` runs each rule and feeds matched rules'
  ``vars`` back as the ``rule.matched`` feature; ``node-validator_test.go``
  (the matchAny + matchFeatures cases); PR #2260 ("Fix matchAny and
  matchFeatures processing logic for image compatibility").
- ``api/image-compatibility/v1alpha1/spec.go`` (``version: v1alpha1``,
  ``compatibilities[]{rules, weight, tag, description}``) and
  ``examples/image-compatibility.yaml``.
- The scalar ``value`` forms (string, bool, number) follow NFD's lenient
  ``MatchValue.UnmarshalJSON`` (``strconv.FormatBool``,
  ``strconv.FormatFloat(v, 'f', -1, 64)``; list items must be strings).

Where imagefit differs from NFD, on purpose:

- An evaluation error (a bad regexp, a non-integer for ``Gt``...) aborts the
  whole ``validate-node`` run in NFD; here it fails the expression (with the
  reason in :attr:`ExpressionResult.error`) and the rule that contains it,
  so the other candidates are still judged.
- ``type: version`` in an NFD spec compares exactly as NFD does
  (:func:`nfd_version`: ``6.1.0-18-amd64`` is 6.1.0, ``1.2.3.4`` and RHEL's
  ``5.14.0-427.13.1.el9_4.x86_64`` are no versions: an error, as in NFD).
  imagefit's own vocabulary (annotations, ``platform.features`` tokens)
  compiles to the same expressions with ``nfd=False`` and reads the leading
  numbers of any release string instead (:func:`numeric_version`).
- A compatibility set that cannot be read is refused by NFD with the whole
  spec; :func:`parse_nfd_spec` with ``strict=False`` (choosing a build) keeps
  it as a set that never matches and says why (``CompatibilitySet.error``).
- ``InRegexp`` uses Python's :mod:`re` on Go RE2 syntax: ``re.search`` (Go's
  ``MatchString`` is unanchored too), ASCII ``\\d \\w \\s``, POSIX classes
  (``[[:alpha:]]``), ``\\z`` and ``\\Q...\\E`` translated; lookarounds and
  backreferences, which RE2 lacks, are errors. ``$`` also matches before a
  final newline (host values have none).
- :func:`parse_nfd_spec` rejects unknown fields (Go ignores them): a typo
  such as ``matchFeature:`` would otherwise leave a rule that matches every
  host.
- ``rule.matched`` back-references (``vars``) are scoped to one set; NFD
  carries them across sets. ``varsTemplate`` is kept but not expanded.
"""

from __future__ import annotations

import decimal
import functools
import re
import warnings
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

#: NFD's operators (api/nfd/v1alpha1/types.go ``MatchOp``); ``""`` is
#: ``MatchAny`` (an expression with no ``op``): it always matches.
Op = Literal[
    "", "In", "NotIn", "InRegexp", "Exists", "DoesNotExist", "Gt", "Ge", "Lt", "Le", "GtLt", "GeLe", "IsTrue", "IsFalse",
]  # fmt: skip


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")


class MatchExpression(_Model):
    """One operator with its values. ``type: version`` makes Gt/Ge/Lt/Le/GtLt/GeLe
    compare versions (Masterminds semver, e.g. ``5.14.0``) instead of integers.
    ``op`` ``""`` is NFD's ``MatchAny`` (no ``op`` written): always a match.

    Value counts are checked when the expression is evaluated, as NFD does:
    none for MatchAny/Exists/DoesNotExist/IsTrue/IsFalse, one or more for
    In/NotIn/InRegexp, exactly one for Gt/Ge/Lt/Le, exactly two (the first
    below the second) for GtLt/GeLe. See :func:`evaluate_expression`.
    """

    op: Op
    value: tuple[str, ...] = ()
    type: Literal["", "version"] = ""
    #: ``type: version`` compares as NFD does (:func:`nfd_version`: Masterminds
    #: semver, ``1.2.3.4`` no version); set for ``type: version`` expressions
    #: read from an NFD spec (:func:`parse_nfd_spec`). False: imagefit's own annotation
    #: vocabulary and ``platform.features`` tokens, which compare the leading
    #: numbers of any release string (:func:`numeric_version`), so that
    #: ``5.14.0-427.el9_4.x86_64`` is 5.14.0.
    nfd: bool = False

    def __str__(self) -> str:
        op = self.op or "MatchAny"
        shown = f"{op} {list(self.value)}" if self.value else op
        return f"{shown} (version)" if self.type == "version" else shown


class FeatureMatcher(_Model):
    """One ``matchFeatures`` term: expressions per element of one feature, and/or
    an expression on the element names (``matchName``)."""

    feature: str
    match_expressions: dict[str, MatchExpression] | None = Field(
        default=None, alias="matchExpressions"
    )
    match_name: MatchExpression | None = Field(default=None, alias="matchName")


class MatchAnyElement(_Model):
    """One ``matchAny`` alternative: its terms must all match."""

    match_features: tuple[FeatureMatcher, ...] = Field(alias="matchFeatures")


class Rule(_Model):
    """An NFD ``GroupRule``.

    Attributes:
        vars: stored as the ``rule.matched`` attribute feature when the rule
            matches, for the set's later rules (NFD back-references).
        vars_template: NFD's Go template for more vars; kept, not expanded.
    """

    name: str = ""
    match_features: tuple[FeatureMatcher, ...] = Field(default=(), alias="matchFeatures")
    match_any: tuple[MatchAnyElement, ...] = Field(default=(), alias="matchAny")
    vars: dict[str, str] = Field(default_factory=dict)
    vars_template: str = Field(default="", alias="varsTemplate")


class CompatibilitySet(_Model):
    """One NFD ``compatibilities[]`` entry (or what annotations compile to).

    Attributes:
        rules: all must match.
        weight: preference among fitting sets and candidates (higher first).
        tag: the set's label (``preferred``, ``fallback``...).
        description: free text shown by explain.
        source: where it came from: ``annotations``, ``platform.features``,
            ``nfd:sha256:<artifact manifest digest>``.
        error: why the set as written could not be read ('' when it was):
            such a set never matches, and :func:`evaluate_set` reports the
            reason (``parse_nfd_spec(..., strict=False)``).
    """

    rules: tuple[Rule, ...] = ()
    weight: int = 0
    tag: str = ""
    description: str = ""
    source: str = ""
    error: str = ""


class ExpressionResult(_Model):
    """One evaluated expression: what was required, what the host has.

    For ``matchName`` (``name`` is '') ``host_value`` lists the element names
    that matched, comma-separated (None when none did). A term with neither
    matchExpressions nor matchName reports one result, expression
    ``feature present``.
    """

    feature: str
    name: str = Field(description="Element name the expression is on; '' for matchName.")
    expression: str = Field(description="str(MatchExpression).")
    host_value: str | None = Field(
        description="The host's value ('' for a flag, None when absent)."
    )
    matcher_type: Literal["matchExpression", "matchName"] = "matchExpression"
    is_match: bool
    error: str = Field(
        default="", description="Why the expression could not be evaluated (e.g. not an integer)."
    )
    instance: int | None = Field(
        default=None,
        description="For an instance feature: index of the instance reported (None: no instance).",
    )
    feature_present: bool = Field(
        default=True, description="False when the host has no such feature at all."
    )


class MatchAnyResult(_Model):
    """One ``matchAny`` alternative as evaluated."""

    is_match: bool
    expressions: tuple[ExpressionResult, ...] = ()


class RuleResult(_Model):
    """One evaluated rule.

    ``expressions`` holds what decided it: the ``matchFeatures`` results, then,
    when the rule matched, those of the first matching ``matchAny``
    alternative, else those of every alternative. ``match_any`` holds every
    alternative with its own result (NFD's ``matchedAny``).
    """

    name: str
    is_match: bool
    expressions: tuple[ExpressionResult, ...] = ()
    match_any: tuple[MatchAnyResult, ...] = ()


class SetResult(_Model):
    """One evaluated :class:`CompatibilitySet`: it matches when all its rules
    do. ``error``: the set could not be read (it does not match; its one
    rule, :data:`UNREADABLE_RULE`, carries the reason as an expression
    error, so that every view of the rules shows it)."""

    tag: str = ""
    weight: int = 0
    source: str = ""
    description: str = ""
    is_match: bool
    rules: tuple[RuleResult, ...] = ()
    error: str = ""


# --------------------------------------------------------------------------
# Evaluation


_NUMBER = re.compile(r"[+-]?[0-9]+")  # strconv.Atoi: optional sign, decimal digits, nothing else
_INT64 = (-(2**63), 2**63 - 1)
# Masterminds/semver v3 version.go ``looseSemVerRegex`` (what ``NewVersion``
# matches, ``CoerceNewVersion`` being true), anchored as Go anchors it.
_IDENTIFIERS = r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*"
_VERSION = re.compile(
    rf"v?([0-9]+)(?:\.([0-9]+))?(?:\.([0-9]+))?(?:-({_IDENTIFIERS}))?(?:\+({_IDENTIFIERS}))?"
)
_UINT64_MAX = 2**64 - 1
_NUMERIC_VERSION = re.compile(r"\s*[vV]?([0-9]+)(?:\.([0-9]+))?(?:\.([0-9]+))?")
_COMPARE_OPS = {"Gt": 1, "Ge": 1, "Lt": 1, "Le": 1, "GtLt": 2, "GeLe": 2}
_ELEMENTS = {1: "exactly one element", 2: "exactly two elements"}


#: Longest number the annotation vocabulary reads in a version (digits): 18
#: digits always fit an int64 (:mod:`scoring.vocabulary`). NFD's ``type:
#: version`` takes up to 2**64-1 per part instead (:func:`_version`).
MAX_VERSION_DIGITS = 18


def _atoi(text: str) -> int | None:
    """Go's ``strconv.Atoi`` on a 64-bit host; None where it fails (not a
    decimal integer, or out of int64 range, as any text over 20 characters
    is: it is never converted)."""
    if len(text) > 20 or not _NUMBER.fullmatch(text):
        return None
    number = int(text)
    return number if _INT64[0] <= number <= _INT64[1] else None


def _uint64(digits: str) -> int | None:
    """Go's ``strconv.ParseUint(digits, 10, 64)`` of ASCII digits (leading
    zeros allowed); None when over 2**64-1. Never converts a long string."""
    digits = digits.lstrip("0") or "0"
    if len(digits) > 20:
        return None
    number = int(digits)
    return number if number <= _UINT64_MAX else None


def numeric_version(text: str) -> tuple[int, int, int] | None:
    """``(major, minor, patch)`` of a version as imagefit's own vocabulary
    reads it (annotations such as ``os.kernel.version``, ``platform.features``
    tokens): the longest of ``N.N.N``, ``N.N``, ``N`` at the start (after
    optional blanks and ``v``/``V``); missing parts are 0; the rest is
    ignored, so ``5.14.0-427.13.1.el9_4.x86_64`` is 5.14.0 and ``1.2.3.4``
    is 1.2.3. None when the string does not start with a number (``str``,
    ``-11``) or a part has more than :data:`MAX_VERSION_DIGITS` digits."""
    match = _NUMERIC_VERSION.match(text)
    if match is None or any(len(p or "") > MAX_VERSION_DIGITS for p in match.groups()):
        return None
    return tuple(int(part or 0) for part in match.groups())  # type: ignore[return-value]


def nfd_version(text: str) -> tuple[int, int, int] | None:
    """``(major, minor, patch)`` of a version as NFD reads it, or None when NFD
    says "not a version".

    NFD (pkg/apis/nfd/nodefeaturerule/expression.go ``extractVersion``) parses
    with Masterminds/semver v3 ``semver.NewVersion`` and then drops the
    pre-release (``SetPrerelease("")``); build metadata never counts in a
    comparison. ``NewVersion`` (version.go ``coerceNewVersion``): the whole
    string must match ``v?N(.N)?(.N)?(-pre)?(+meta)?`` (missing parts are 0,
    leading zeros allowed in them, each at most 2**64-1); a pre-release
    identifier that is all digits must not start with 0. So ``1.2.3.4``,
    ``V1``, `` 1``, ``1.2.3-rc_1``, ``5.14.0-427.el9_4.x86_64`` and
    ``1.2.3-01`` are no versions; ``v1.2``, ``01.2``, ``6.8.0-45-generic``
    and ``1.2.3+build.5`` are."""
    match = _VERSION.fullmatch(text)
    if match is None:
        return None
    major, minor, patch, pre, _ = match.groups()
    if pre is not None and any(
        len(part) > 1 and part[0] == "0" and part.isdigit() for part in pre.split(".")
    ):  # validatePrerelease: ErrSegmentStartsZero
        return None
    numbers = tuple(_uint64(part or "0") for part in (major, minor, patch))
    return None if None in numbers else numbers  # type: ignore[return-value]


def compare_versions(a: str, b: str, *, nfd: bool = False) -> int:
    """-1, 0 or 1 as version ``a`` is lower than, equal to or higher than ``b``.

    With `nfd`, as NFD's ``type: version`` compares them (:func:`nfd_version`:
    Masterminds semver, pre-release dropped): ``5.14`` = ``5.14.0``,
    ``6.1.0-18-amd64`` = ``6.1.0``, ``v1.2`` = ``1.2``, ``1.2.3+b`` =
    ``1.2.3``, and ``1.2.3.4`` is an error. Without, as imagefit's own
    vocabulary does (:func:`numeric_version`: ``1.2.3.4`` = ``1.2.3``).

    Raises:
        ValueError: either string is not a version.
    """
    parse = nfd_version if nfd else numeric_version
    va, vb = parse(a), parse(b)
    for text, parsed in ((a, va), (b, vb)):
        if parsed is None:
            raise ValueError(f"not a version {text!r}")
    return (va > vb) - (va < vb)  # type: ignore[operator]


# Go RE2 syntax -> Python re (see the module docstring).
_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z", "alpha": "A-Za-z", "ascii": "\\x00-\\x7f", "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f", "digit": "0-9", "graph": "!-~", "lower": "a-z",
    "print": " -~", "punct": "!-/:-@\\[-`{-~", "space": "\\t\\n\\v\\f\\r ", "upper": "A-Z",
    "word": "0-9A-Za-z_", "xdigit": "0-9A-Fa-f",
}  # fmt: skip


def _go_class(pattern: str, start: int) -> tuple[int, str]:
    """Translate the bracket expression at ``pattern[start] == '['``; returns the
    index after it and its Python form."""
    i, out = start + 1, ["["]
    if pattern.startswith("^", i):
        out.append("^")
        i += 1
    if pattern.startswith("]", i):  # a leading ']' is a literal in both
        out.append("\\]")
        i += 1
    while i < len(pattern) and pattern[i] != "]":
        if pattern.startswith("[:", i) and (end := pattern.find(":]", i + 2)) > 0:
            name = pattern[i + 2 : end]
            if name not in _POSIX_CLASSES:
                raise ValueError(f"invalid character class range [:{name}:]")
            out.append(_POSIX_CLASSES[name])
            i = end + 2
        elif pattern[i] == "\\" and i + 1 < len(pattern):
            out.append(pattern[i : i + 2])
            i += 2
        else:  # '[', '&', '~', '|' are plain characters in a Go class; Python may read set operations
            out.append("\\" + pattern[i] if pattern[i] in "[&~|" else pattern[i])
            i += 1
    if i >= len(pattern):
        raise ValueError("missing closing ]")
    return i + 1, "".join(out) + "]"


def _go_to_python(pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            if i + 1 >= len(pattern):
                raise ValueError("trailing backslash at end of expression")
            nxt = pattern[i + 1]
            if nxt == "Q":  # \Q...\E: literal text
                end = pattern.find("\\E", i + 2)
                end = len(pattern) if end < 0 else end
                out.append(re.escape(pattern[i + 2 : end]))
                i = end + 2
                continue
            if nxt in "123456789" or nxt == "Z":
                raise ValueError(f"invalid escape sequence \\{nxt}")  # RE2: no backreferences
            out.append("\\Z" if nxt == "z" else pattern[i : i + 2])
            i += 2
        elif char == "[":
            i, translated = _go_class(pattern, i)
            out.append(translated)
        else:
            if pattern.startswith(("(?=", "(?!", "(?<=", "(?<!", "(?P="), i):
                raise ValueError("invalid or unsupported Perl syntax (lookaround or backreference)")
            out.append(char)
            i += 1
    return "".join(out)


@functools.lru_cache(maxsize=512)
def _go_regexp(pattern: str) -> tuple[re.Pattern[str] | None, str]:
    """(compiled pattern, '') or (None, why it is not a valid Go regexp)."""
    try:
        translated = _go_to_python(pattern)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return re.compile(translated, re.ASCII), ""
    except (ValueError, re.error) as exc:
        return None, str(exc)


def evaluate_expression(expr: MatchExpression, valid: bool, value: str | None) -> tuple[bool, str]:
    """Evaluate one expression against one input, as NFD's
    ``evaluateMatchExpression`` does (pkg/apis/nfd/nodefeaturerule/expression.go).

    Args:
        expr: the expression.
        valid: the element exists on the host.
        value: its value; None for a flag element (which has a name only):
            then every operator except Exists/DoesNotExist is false, without
            error, as in NFD.

    Returns:
        ``(is_match, error)``; ``error`` is '' or one line saying why the
        expression cannot be evaluated (then ``is_match`` is False):
        values given to Exists/DoesNotExist (always checked), and, only for
        an existing element with a value, a wrong number of values, a
        non-integer (or, with ``type: version``, non-version) host value or
        value, GtLt/GeLe bounds not in increasing order, an invalid regexp.

    Semantics: MatchAny (``op`` ``""``) always matches; otherwise a missing
    element matches DoesNotExist only. In/NotIn
    compare strings exactly; InRegexp searches (unanchored, as Go's
    ``regexp.MatchString``); Gt/Ge/Lt/Le compare with the one value;
    GtLt is exclusive and GeLe inclusive of both bounds; IsTrue/IsFalse
    test for the strings ``true``/``false``.
    """
    op, values = expr.op, expr.value
    if op == "":  # MatchAny: true whatever the input, once its value is empty
        if values:
            return False, f"'value' must be empty for op MatchAny (have {list(values)})"
        return True, ""
    if op in ("Exists", "DoesNotExist"):
        if values:
            return False, f"'value' must be empty for op {op} (have {list(values)})"
        return (valid if op == "Exists" else not valid), ""
    if not valid or value is None:
        return False, ""
    if op in ("In", "NotIn", "InRegexp"):
        if not values:
            return False, f"'value' must be non-empty for op {op}"
        if op == "In":
            return value in values, ""
        if op == "NotIn":
            return value not in values, ""
        compiled = []
        for pattern in values:
            regexp, why = _go_regexp(pattern)
            if regexp is None:
                return False, f"invalid regexp {pattern!r} for op InRegexp: {why}"
            compiled.append(regexp)
        return any(r.search(value) for r in compiled), ""
    if op in ("IsTrue", "IsFalse"):
        if values:
            return False, f"'value' must be empty for op {op} (have {list(values)})"
        return value == ("true" if op == "IsTrue" else "false"), ""
    count = _COMPARE_OPS[op]
    if len(values) != count:
        return False, f"'value' must contain {_ELEMENTS[count]} for op {op} (have {list(values)})"
    if expr.type == "version":
        parse, kind = (nfd_version if expr.nfd else numeric_version), "version"
    else:
        parse, kind = _atoi, "number"
    have = parse(value)
    if have is None:
        return False, f"host value {value!r} is not a {kind}"
    bounds = []
    for text in values:
        bound = parse(text)
        if bound is None:
            return False, f"{text!r} in {expr} is not a {kind}"
        bounds.append(bound)
    if count == 1:
        want = bounds[0]
        matched = {"Gt": have > want, "Ge": have >= want, "Lt": have < want, "Le": have <= want}[op]
        return matched, ""
    low, high = bounds
    if low >= high and not (expr.nfd and expr.type == "version"):  # NFD: integers only
        return False, f"value[0] must be less than value[1] for op {op} (have {list(values)})"
    return ((low < have < high) if op == "GtLt" else (low <= have <= high)), ""


def _host_string(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_float(value)
    return "" if value is None else str(value)


class _Feature:
    """One feature of the host, by kind; None for a kind it does not have."""

    def __init__(self, features: dict, name: str):
        key = name.lower()  # NFD looks features up lower-cased (rule.go)
        flags = (features.get("flags") or {}).get(key)
        attributes = (features.get("attributes") or {}).get(key)
        instances = (features.get("instances") or {}).get(key)
        self.keys: set[str] | None = None
        self.values: dict[str, str] | None = None
        self.instances: list[dict[str, str]] | None = None
        if flags is not None:
            self.keys = {str(k) for k in (flags.get("elements") or {})}
        if attributes is not None:
            self.values = {
                str(k): _host_string(v) for k, v in (attributes.get("elements") or {}).items()
            }
        if instances is not None:
            self.instances = [
                {str(k): _host_string(v) for k, v in ((e or {}).get("attributes") or {}).items()}
                for e in (instances.get("elements") or [])
            ]
        self.present = flags is not None or attributes is not None or instances is not None
        self.has_named = self.keys is not None or self.values is not None


_VIEW: tuple[object, dict[str, _Feature]] = (None, {})


def _host_feature(features: dict, name: str) -> _Feature:
    """The host's view of feature `name`, built once per features object
    (select() evaluates every candidate against the same one; the cache
    holds that object, so its identity cannot be reused while cached)."""
    global _VIEW
    owner, cache = _VIEW
    if owner is not features:
        cache = {}
        _VIEW = (features, cache)
    view = cache.get(name)
    if view is None:
        view = cache[name] = _Feature(features, name)
    return view


def _result(term: FeatureMatcher, name: str, expr: MatchExpression | str, host_value: str | None,
            is_match: bool, error: str = "", *, on_name: bool = False, **extra) -> ExpressionResult:  # fmt: skip
    return ExpressionResult(
        feature=term.feature,
        name=name,
        expression=str(expr),
        host_value=host_value,
        matcher_type="matchName" if on_name else "matchExpression",
        is_match=is_match,
        error=error,
        **extra,
    )


def _named_element(
    expr: MatchExpression, name: str, feature: _Feature
) -> tuple[bool, str | None, str]:
    """One expression on the union of a feature's flags and attributes (NFD
    ``MatchMulti``): it matches when it matches in either, except DoesNotExist,
    which must hold in both. Returns (is_match, host value, error)."""
    keys, values = feature.keys, feature.values
    host = values[name] if values is not None and name in values else None
    if host is None and keys is not None and name in keys:
        host = ""
    inputs = []
    if keys is not None:
        inputs.append((name in keys, None))  # a flag has a name, no value
    if values is not None:
        inputs.append((name in values, values.get(name)))
    matches = []
    for valid, value in inputs:
        matched, error = evaluate_expression(expr, valid, value)
        if error:
            return False, host, error
        if not matched and expr.op == "DoesNotExist":
            return False, host, ""
        matches.append(matched)
    return any(matches), host, ""


def _instance_outcomes(term: FeatureMatcher, attributes: dict[str, str]) -> list[tuple[bool, str]]:
    """(is_match, error) of each expression on one instance: cheap, no result objects."""
    return [
        evaluate_expression(expr, name in attributes, attributes.get(name))
        for name, expr in (term.match_expressions or {}).items()
    ]


def _instance_results(
    term: FeatureMatcher, attributes: dict[str, str], index: int, outcomes: list[tuple[bool, str]]
) -> list[ExpressionResult]:
    """Result objects for the one instance that is reported."""
    return [
        _result(term, name, expr, attributes.get(name), matched, error, instance=index)
        for (name, expr), (matched, error) in zip(
            (term.match_expressions or {}).items(), outcomes, strict=True
        )
    ]


def _match_expressions(
    term: FeatureMatcher, feature: _Feature
) -> tuple[bool, list[ExpressionResult]]:
    """The term's matchExpressions: flags and attributes as a union, or one
    instance satisfying every expression (NFD ``MatchMulti``)."""
    expressions = term.match_expressions or {}
    named: list[ExpressionResult] = []
    named_ok = False
    if feature.has_named:
        for name, expr in expressions.items():
            matched, host, error = _named_element(expr, name, feature)
            named.append(_result(term, name, expr, host, matched, error))
        named_ok = all(r.is_match for r in named)
    instances = feature.instances or ()
    outcomes = [_instance_outcomes(term, a) for a in instances]

    def report(i: int) -> list[ExpressionResult]:
        return _instance_results(term, instances[i], i, outcomes[i])

    if any(r.error for r in named):  # NFD stops at the first error: flags/attributes first
        return False, named
    for i, outs in enumerate(outcomes):
        if any(error for _, error in outs):
            return False, report(i)
    if named_ok:
        return True, named
    matching = next((i for i, outs in enumerate(outcomes) if all(m for m, _ in outs)), None)
    if matching is not None:
        return True, report(matching)
    if feature.has_named or feature.instances is None:
        return False, named
    if not outcomes:  # no instance at all
        return False, [_result(term, n, e, None, False) for n, e in expressions.items()]
    closest = max(
        range(len(outcomes)), key=lambda i: sum(m for m, _ in outcomes[i])
    )  # first of the closest
    return False, report(closest)


def _match_name(term: FeatureMatcher, feature: _Feature) -> ExpressionResult:
    """The term's matchName: matches when any element name (flag, attribute,
    or attribute of any instance) satisfies it (NFD ``MatchNamesMulti``)."""
    expr = term.match_name
    assert expr is not None
    names = [*sorted(feature.keys or ()), *sorted(feature.values or {})]
    for attributes in feature.instances or []:
        names.extend(sorted(attributes))
    matched: list[str] = []
    for name in names:
        ok, error = evaluate_expression(expr, True, name)
        if error:
            return _result(term, "", expr, None, False, error, on_name=True)
        if ok and name not in matched:
            matched.append(name)
    return _result(term, "", expr, ",".join(matched) or None, bool(matched), on_name=True)


def evaluate_matcher(
    term: FeatureMatcher, features: dict
) -> tuple[bool, tuple[ExpressionResult, ...]]:
    """Evaluate one ``matchFeatures`` term against the host's NFD features
    (pkg/apis/nfd/nodefeaturerule/rule.go ``evaluateFeatureMatcher``).

    Args:
        term: the term.
        features: NFD ``Features`` (see the module docstring).

    Returns:
        ``(is_match, results)``, one :class:`ExpressionResult` per
        expression, then one for ``matchName``; for an instance feature the
        results of the first instance that matches every expression, or of
        the closest one (most expressions matched, first on a tie) when none
        does.

    Semantics (NFD): a feature the host does not have fails the term, even
    for DoesNotExist (results with ``feature_present`` False). Flag and
    attribute elements of one feature are matched as a union;
    ``matchExpressions`` on an instance feature need one instance that
    satisfies all of them (an empty set matches when there is an instance);
    ``matchName`` matches when any element name satisfies it; when both are
    given both must match; a term with neither matches when the feature
    exists. An evaluation error fails the term. Never raises.
    """
    feature = _host_feature(features, term.feature)
    if not feature.present:
        absent = {"feature_present": False}
        results = [
            _result(term, n, e, None, False, **absent)
            for n, e in (term.match_expressions or {}).items()
        ]
        if term.match_name is not None:
            results.append(_result(term, "", term.match_name, None, False, on_name=True, **absent))
        if term.match_expressions is None and term.match_name is None:
            results.append(
                _result(term, "", "feature present", None, False, on_name=True, **absent)
            )
        return False, tuple(results)
    is_match, results = True, []
    if term.match_expressions is not None:
        is_match, results = _match_expressions(term, feature)
    if term.match_name is not None:
        name_result = _match_name(term, feature)
        results.append(name_result)
        is_match = is_match and name_result.is_match
    if term.match_expressions is None and term.match_name is None:
        results.append(_result(term, "", "feature present", "", True, on_name=True))
    return is_match and not any(r.error for r in results), tuple(results)


def _evaluate_terms(
    terms: tuple[FeatureMatcher, ...], features: dict
) -> tuple[bool, tuple[ExpressionResult, ...]]:
    """Logical AND over terms; every term is evaluated (for the report)."""
    is_match, results = True, []
    for term in terms:
        matched, term_results = evaluate_matcher(term, features)
        is_match = is_match and matched
        results.extend(term_results)
    return is_match, tuple(results)


def evaluate_rule(rule: Rule, features: dict) -> RuleResult:
    """Evaluate one rule (NFD ``ExecuteGroupRule``, with the PR #2260 fix).

    The rule matches when every ``matchFeatures`` term matches and, if
    ``matchAny`` is given, at least one of its alternatives matches: both
    must hold when both are given. A rule with neither matches. An
    evaluation error anywhere in the rule (even in an alternative that
    another one would have outvoted) makes it not match: NFD stops with that
    error. Never raises.
    """
    features_ok, feature_results = _evaluate_terms(rule.match_features, features)
    alternatives = tuple(
        MatchAnyResult(is_match=ok, expressions=results)
        for ok, results in (_evaluate_terms(e.match_features, features) for e in rule.match_any)
    )
    any_ok = not alternatives or any(a.is_match for a in alternatives)
    everything = feature_results + tuple(r for a in alternatives for r in a.expressions)
    is_match = features_ok and any_ok and not any(r.error for r in everything)
    chosen = next((a for a in alternatives if a.is_match), None)
    shown = feature_results + chosen.expressions if is_match and chosen is not None else everything
    return RuleResult(name=rule.name, is_match=is_match, expressions=shown, match_any=alternatives)


def _with_vars(features: dict, values: dict[str, str]) -> dict:
    """A copy of `features` whose ``rule.matched`` attributes include `values`."""
    attributes = dict(features.get("attributes") or {})
    current = dict((attributes.get("rule.matched") or {}).get("elements") or {})
    attributes["rule.matched"] = {"elements": {**current, **values}}
    return {**features, "attributes": attributes}


#: The name of the one rule reported for a set that could not be read.
UNREADABLE_RULE = "unreadable"


def evaluate_set(cs: CompatibilitySet, features: dict) -> SetResult:
    """Evaluate a compatibility set: it matches when all its rules match (an
    empty set matches). Rules run in order; a matched rule's ``vars`` become
    attributes of the ``rule.matched`` feature for the rules after it, as in
    ``nfd compat validate-node``. `features` is not modified. Never raises.

    A set with an ``error`` (it could not be read) does not match; its result
    has that ``error`` and one rule, :data:`UNREADABLE_RULE`, whose one
    expression carries it.
    """
    if cs.error:
        unreadable = ExpressionResult(
            feature="compatibility set", name="", expression="that imagefit can read",
            host_value=None, is_match=False, error=cs.error, feature_present=False,
        )  # fmt: skip
        return SetResult(
            tag=cs.tag, weight=cs.weight, source=cs.source, description=cs.description,
            is_match=False, error=cs.error,
            rules=(RuleResult(name=UNREADABLE_RULE, is_match=False, expressions=(unreadable,)),),
        )  # fmt: skip
    results = []
    for rule in cs.rules:
        result = evaluate_rule(rule, features)
        results.append(result)
        if result.is_match and rule.vars:
            features = _with_vars(features, rule.vars)
    return SetResult(
        tag=cs.tag,
        weight=cs.weight,
        source=cs.source,
        description=cs.description,
        is_match=all(r.is_match for r in results),
        rules=tuple(results),
    )


# --------------------------------------------------------------------------
# The NFD image-compatibility spec (api/image-compatibility/v1alpha1/spec.go)

NFD_SPEC_VERSION = "v1alpha1"
_OPS: tuple[str, ...] = Op.__args__  # type: ignore[attr-defined]


def _go_float(number: float) -> str:
    """Go's ``strconv.FormatFloat(number, 'f', -1, 64)``."""
    text = format(decimal.Decimal(repr(float(number))), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


_FLOAT_MAX = 1.7976931348623157e308  # sys.float_info.max; a larger int is no float64 (Go)


def _scalar(value: object) -> str | None:
    """A YAML scalar as the string Go's JSON decoding in NFD makes of it; None
    when it is not a string, bool or finite number."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float) and abs(value) <= _FLOAT_MAX:  # not nan/inf/too big an int
        return _go_float(value)
    return None


class _SpecError(ValueError):
    def __init__(self, path: str, message: str):
        path = "".join(c if c.isprintable() else repr(c)[1:-1] for c in path)  # keys: one line
        super().__init__(f"{path}: {message}" if path else message)


def _mapping(raw: object, path: str, allowed: tuple[str, ...]) -> dict:
    """`raw` as a mapping whose keys are all in `allowed`."""
    _dict(raw, path)
    unknown = [k for k in raw if k not in allowed]
    if unknown:
        raise _SpecError(path, f"unknown field {str(unknown[0])!r} (expected {', '.join(allowed)})")
    return raw


def _dict(raw: object, path: str) -> dict:
    if not isinstance(raw, dict):
        raise _SpecError(path, f"expected a mapping, got {_kind(raw)}")
    return raw


def _list(raw: object, path: str) -> list:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _SpecError(path, f"expected a list, got {_kind(raw)}")
    return raw


def _string(raw: object, path: str, *, required: bool = False) -> str:
    if raw is None and not required:
        return ""
    if not isinstance(raw, str) or (required and not raw):
        raise _SpecError(
            path, f"expected a{' non-empty' if required else ''} string, got {_kind(raw)}"
        )
    return raw


def _kind(raw: object) -> str:
    if raw is None:
        return "null"
    if isinstance(raw, bool):
        return f"boolean {str(raw).lower()}"
    if isinstance(raw, int | float | str):
        shown = repr(raw) if len(repr(raw)) <= 40 else repr(raw)[:37] + "..."
        return f"{type(raw).__name__} {shown}"
    return {"dict": "a mapping", "list": "a list"}.get(type(raw).__name__, type(raw).__name__)


def _values(raw: object, path: str) -> tuple[str, ...]:
    """NFD's lenient ``MatchValue``: a list of strings, or one scalar (string,
    bool, number: formatted as Go does)."""
    if raw is None:
        return ()
    if isinstance(raw, list):
        for item in raw:
            if not isinstance(item, str):
                raise _SpecError(
                    path,
                    f"invalid value {_kind(item)} in the list: quote it (YAML reads 5.10 as 5.1)",
                )
        return tuple(raw)
    scalar = _scalar(raw)
    if scalar is None:
        raise _SpecError(path, f"expected a string or a list of strings, got {_kind(raw)}")
    return (scalar,)


def _expression(raw: object, path: str) -> MatchExpression:
    data = _mapping(raw, path, ("op", "value", "type"))
    op = data.get("op")
    if op is None:  # no op (or null): Go leaves MatchOp "", MatchAny
        op = ""
    if op not in _OPS:
        shown = ", ".join(o for o in _OPS if o)
        raise _SpecError(f"{path}.op", f"unknown op {op!r} (one of {shown})")
    kind = "" if data.get("type") is None else data.get("type")
    if kind not in ("", "version"):
        raise _SpecError(f"{path}.type", f"unknown type {kind!r} (only 'version')")
    values = _values(data.get("value"), f"{path}.value")
    return MatchExpression(op=op, value=values, type=kind, nfd=kind == "version")


def _term(raw: object, path: str) -> FeatureMatcher:
    data = _mapping(raw, path, ("feature", "matchExpressions", "matchName"))
    expressions = data.get("matchExpressions")
    if expressions is not None:
        exprs = _dict(expressions, f"{path}.matchExpressions")
        expressions = {
            (_scalar(k) or str(k)): _expression(v, f"{path}.matchExpressions.{k}")
            for k, v in exprs.items()
        }
    name = data.get("matchName")
    return FeatureMatcher(
        feature=_string(data.get("feature"), f"{path}.feature", required=True),
        matchExpressions=expressions,
        matchName=None if name is None else _expression(name, f"{path}.matchName"),
    )


def _terms(raw: object, path: str) -> tuple[FeatureMatcher, ...]:
    return tuple(_term(t, f"{path}[{i}]") for i, t in enumerate(_list(raw, path)))


def _rule(raw: object, path: str) -> Rule:
    data = _mapping(raw, path, ("name", "vars", "varsTemplate", "matchFeatures", "matchAny"))
    variables = _dict(data.get("vars") or {}, f"{path}.vars")
    for key, value in variables.items():
        _string(key, f"{path}.vars", required=True)
        _string(value, f"{path}.vars.{key}", required=False)
    alternatives = []
    for i, element in enumerate(_list(data.get("matchAny"), f"{path}.matchAny")):
        where = f"{path}.matchAny[{i}]"
        element = _mapping(element, where, ("matchFeatures",))
        alternatives.append(
            MatchAnyElement(
                matchFeatures=_terms(element.get("matchFeatures"), f"{where}.matchFeatures")
            )
        )
    return Rule(
        name=_string(data.get("name"), f"{path}.name"),
        vars={k: v or "" for k, v in variables.items()},
        varsTemplate=_string(data.get("varsTemplate"), f"{path}.varsTemplate"),
        matchFeatures=_terms(data.get("matchFeatures"), f"{path}.matchFeatures"),
        matchAny=tuple(alternatives),
    )


def _compatibility(raw: object, path: str, source: str) -> CompatibilitySet:
    data = _mapping(raw, path, ("rules", "weight", "tag", "description"))
    weight = data.get("weight")
    if weight is None:
        weight = 0
    if isinstance(weight, bool) or not isinstance(weight, int):
        raise _SpecError(f"{path}.weight", f"expected an integer, got {_kind(weight)}")
    if not _INT64[0] <= weight <= _INT64[1]:
        raise _SpecError(f"{path}.weight", f"{weight} is out of range")
    return CompatibilitySet(
        rules=tuple(
            _rule(r, f"{path}.rules[{i}]")
            for i, r in enumerate(_list(data.get("rules"), f"{path}.rules"))
        ),
        weight=weight,
        tag=_string(data.get("tag"), f"{path}.tag"),
        description=_string(data.get("description"), f"{path}.description"),
        source=source,
    )


def _unreadable(raw: object, path: str, source: str, error: str) -> CompatibilitySet:
    """A set that could not be read: its tag and weight when those are
    readable (for the reports), the reason, no rules."""
    data = raw if isinstance(raw, dict) else {}
    tag, weight = data.get("tag"), data.get("weight")
    return CompatibilitySet(
        tag=tag if isinstance(tag, str) else "",
        weight=weight if type(weight) is int and _INT64[0] <= weight <= _INT64[1] else 0,
        source=source,
        error=error if error.startswith(path) else f"{path}: {error}",
    )


def _one_line(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    return f"invalid NFD image-compatibility spec: {where}: {first.get('msg', exc)}"


def parse_nfd_spec(
    document: dict, source: str, *, strict: bool = True
) -> tuple[CompatibilitySet, ...]:
    """The compatibility sets of an NFD image-compatibility spec layer
    (``application/vnd.nfd.image-compatibility.spec.v1alpha1+yaml``), already
    decoded from YAML or JSON::

        version: v1alpha1
        compatibilities:
        - rules:                      # NFD GroupRules, all must match
          - name: <str>
            vars: {<key>: <str>}      # optional
            varsTemplate: <str>       # optional, not expanded
            matchFeatures:
            - feature: <domain>.<feature>
              matchExpressions: {<element>: {op: <Op>, value: [<str>...], type: version}}
              matchName: {op: <Op>, value: [<str>...]}
            matchAny:
            - matchFeatures: [...]
          weight: <int>
          tag: <str>
          description: <str>

    ``value`` may be a list of strings or one scalar; a number or bool scalar
    becomes the string Go makes of it (``5`` -> ``"5"``, ``5.10`` ->
    ``"5.1"``, ``true`` -> ``"true"``); a non-string list item is an error
    (as in NFD). An expression with no ``op`` (or ``op: null``, ``op: ""``)
    is NFD's ``MatchAny`` (api/nfd/v1alpha1/types.go: ``MatchAny MatchOp =
    ""``, Go leaves a missing string field empty): it always matches. A
    missing or null ``compatibilities`` gives no sets.

    Args:
        document: the decoded spec.
        source: stored in each set's ``source`` (``nfd:sha256:<digest>``).
        strict: True (authors' tools: ``attach``, ``lint``): any error raises.
            False (choosing a build): a set that cannot be read is returned
            as a set with ``error`` set (it never matches; the others are
            judged as usual), so one bad set does not void the artifact.

    Returns:
        The sets, in the document's order, each with ``source`` set.

    Raises:
        ValueError: a version other than ``v1alpha1`` (or none), or a
            structure that is not the schema above (wrong types, unknown
            fields, unknown ``op`` or ``type``); one line naming the path,
            e.g. ``compatibilities[0].rules[1].matchFeatures[0].feature:
            expected a non-empty string, got null``. With ``strict=False``
            only for the document itself (not a mapping, its version, an
            unknown top-level field, ``compatibilities`` not a list).
    """
    if not isinstance(document, dict):
        raise ValueError(f"NFD image-compatibility spec: expected a mapping, got {_kind(document)}")
    version = document.get("version")
    if version != NFD_SPEC_VERSION:
        shown = "no version" if version is None else f"version {version!r}"
        raise ValueError(
            f"unsupported NFD image-compatibility spec: {shown} (imagefit reads {NFD_SPEC_VERSION})"
        )
    data = _mapping(document, "", ("version", "compatibilities"))
    compatibilities = _list(data.get("compatibilities"), "compatibilities")
    sets = []
    for i, raw in enumerate(compatibilities):
        path = f"compatibilities[{i}]"
        try:
            sets.append(_compatibility(raw, path, source))
        except ValidationError as exc:  # a case the checks above missed: still one line
            if strict:
                raise ValueError(_one_line(exc)) from None
            sets.append(_unreadable(raw, path, source, _one_line(exc)))
        except ValueError as exc:
            if strict:
                raise
            sets.append(_unreadable(raw, path, source, str(exc)))
    return tuple(sets)
