"""NFD exactness of scoring.rules: MatchAny (an expression with no ``op``),
``type: version`` as NFD compares it, and a compatibility set that cannot be
read failing that set only.

Read for it (kubernetes-sigs/node-feature-discovery at 76e6cc8):

- ``api/nfd/v1alpha1/types.go``: ``MatchAny MatchOp = ""`` ("returns always
  true"): a MatchExpression whose ``op`` is not written decodes to it.
- ``pkg/apis/nfd/nodefeaturerule/expression.go``: ``evaluateMatchExpression``
  (MatchAny: true, its value must be empty; GtLt/GeLe check the order of
  their bounds for integers only) and ``extractVersion``
  (``semver.NewVersion`` of github.com/Masterminds/semver/v3, pinned at
  v3.5.0 in go.mod, then ``SetPrerelease("")``).
- Masterminds/semver ``version.go``: ``NewVersion`` -> ``coerceNewVersion``
  (``CoerceNewVersion`` is true by default): ``looseSemVerRegex``
  ``v?N(.N)?(.N)?(-pre)?(+meta)?`` anchored, each part ``ParseUint(.., 10,
  64)``, ``validatePrerelease`` (an all-digit identifier must not start with
  0).

Each case below names the upstream test it mirrors; the data are our own.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scoring.rules import (
    UNREADABLE_RULE,
    MatchExpression,
    compare_versions,
    evaluate_expression,
    evaluate_set,
    nfd_version,
    parse_nfd_spec,
)


def nfd(op: str, *values: str, version: bool = True) -> MatchExpression:
    """An expression as parse_nfd_spec makes it from a spec."""
    return MatchExpression(op=op, value=values, type="version" if version else "", nfd=version)


# -- MatchAny ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("valid", "value"),
    [
        # expression_test.go TestEvaluateMatchExpression "MatchAny-1" (no input at all)
        (False, None),
        # ... "MatchAny-2" (an input that is not valid still matches)
        (False, "sapphirerapids"),
        # TestEvaluateMatchExpressionValues "1" (a present value)
        (True, "zen4"),
        (True, None),  # a flag: a name, no value
    ],
)
def test_match_any_always_matches(valid, value):
    assert evaluate_expression(MatchExpression(op=""), valid, value) == (True, "")


def test_match_any_with_a_value_is_an_error_as_in_nfd():
    # evaluateMatchExpression: "'value' field must be empty for Op" (MatchAny branch)
    matched, why = evaluate_expression(MatchExpression(op="", value=("x",)), True, "x")
    assert not matched and "must be empty for op MatchAny" in why


def _spec(expressions: dict, *more_sets: dict) -> dict:
    return {
        "version": "v1alpha1",
        "compatibilities": [
            {
                "tag": "first",
                "weight": 5,
                "rules": [
                    {
                        "name": "cpu",
                        "matchFeatures": [
                            {"feature": "cpu.cpuid", "matchExpressions": expressions}
                        ],
                    }
                ],
            },
            *more_sets,
        ],
    }


HOST = {
    "flags": {"cpu.cpuid": {"elements": {"AVX2": {}, "FMA3": {}}}},
    "attributes": {"kernel.version": {"elements": {"full": "6.8.0-45-generic", "major": "6"}}},
    "instances": {},
}


@pytest.mark.parametrize("written", [{}, {"op": None}, {"op": ""}, {"value": []}])
def test_an_expression_with_no_op_is_match_any(written):
    # validate-node decodes the spec with Go's JSON rules: a missing (or null)
    # `op` leaves MatchOp "", which is MatchAny (types.go)
    (cs,) = parse_nfd_spec(_spec({"AVX512F": written}), "nfd:sha256:test")
    expr = cs.rules[0].match_features[0].match_expressions["AVX512F"]
    assert expr.op == "" and str(expr) == "MatchAny"
    result = evaluate_set(cs, HOST)  # the host lacks AVX512F: MatchAny does not care
    assert result.is_match and result.rules[0].expressions[0].expression == "MatchAny"


def test_match_any_on_a_feature_the_host_lacks_still_fails_the_term():
    # rule.go evaluateFeatureMatcher: a feature the host does not have fails its term
    spec = _spec({})
    spec["compatibilities"][0]["rules"][0]["matchFeatures"] = [
        {"feature": "pci.device.nothere", "matchExpressions": {"vendor": {}}}
    ]
    (cs,) = parse_nfd_spec(spec, "s")
    assert not evaluate_set(cs, HOST).is_match


# -- type: version ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("op", "values", "host", "expected", "error"),
    [
        # expression_test.go TestEvaluateMatchExpressionValues "21"-"28" (Gt), with our data
        ("Gt", ("6",), "6", False, False),
        ("Gt", ("6",), "7", True, False),
        ("Gt", ("6.8",), "6.8", False, False),
        ("Gt", ("6.8",), "6.9", True, False),
        ("Gt", ("6.8.1",), "6.8.2", True, False),
        ("Gt", ("6.8.1",), "generic", False, True),  # "28": not a version
        # "35"-"47" (Ge): a missing part is 0
        ("Ge", ("6.8",), "6.8.0", True, False),
        ("Ge", ("6.8.1",), "6.8.0", False, False),
        # "54"-"82" (Lt, Le)
        ("Lt", ("12.4",), "12.3.9", True, False),
        ("Le", ("12.4",), "12.4.0", True, False),
        ("Le", ("12.4",), "12.4.1", False, False),
        # "90"-"104" (GtLt) and "113"-"128" (GeLe)
        ("GtLt", ("5.4", "6.9"), "6.8.0", True, False),
        ("GtLt", ("5.4", "6.9"), "6.9.0", False, False),
        ("GeLe", ("5.4", "6.9"), "6.9", True, False),
        ("GeLe", ("5.4", "6.9"), "-3", False, True),  # "115": -11 is no version
        # extractVersion drops the pre-release: 6.8.0-45 counts as 6.8.0 (semver alone
        # would put it below 6.8.0); build metadata never counts
        ("Ge", ("6.8.0",), "6.8.0-45-generic", True, False),
        ("Gt", ("6.8.0",), "6.8.0-45-generic", False, False),
        ("Le", ("6.8.0",), "6.8.0-rc7", True, False),
        ("Ge", ("2.1.0",), "2.1.0+build.7", True, False),
        ("Gt", ("2.1.0",), "2.1.0+build.7", False, False),
        # NewVersion: a fourth part, blanks, a capital V, other characters: errors
        ("Ge", ("1.2.3",), "1.2.3.4", False, True),
        ("Le", ("1.2.3.4",), "1.2.3", False, True),
        ("Ge", ("1",), " 1.2", False, True),
        ("Ge", ("1",), "V1.2", False, True),
        ("Ge", ("1",), "1.", False, True),
        ("Ge", ("1",), "", False, True),
        ("Ge", ("5.14",), "5.14.0-427.13.1.el9_4.x86_64", False, True),  # '_' in the pre-release
        ("Ge", ("1.2.3",), "1.2.3-01", False, True),  # ErrSegmentStartsZero
        # ... what it coerces: a lower-case v, leading zeros in the numbers
        ("Ge", ("1.2",), "v1.2.3", True, False),
        ("Ge", ("1.2.3",), "01.02.03", True, False),
        ("Ge", ("1.2.3",), "1.2.3-0a", True, False),  # not all digits: no leading-zero rule
        # each part is a uint64 (ParseUint(.., 10, 64))
        ("Ge", ("1",), "18446744073709551615", True, False),
        ("Ge", ("1",), "18446744073709551616", False, True),
        # GtLt/GeLe: NFD checks that value[0] < value[1] for integers only
        ("GtLt", ("6.9", "5.4"), "6.0", False, False),
        ("GeLe", ("6.8", "6.8"), "6.8.0", True, False),
    ],
)
def test_type_version_compares_as_nfd(op, values, host, expected, error):
    is_match, why = evaluate_expression(nfd(op, *values), True, host)
    assert (is_match, bool(why)) == (expected, error), why
    if error:
        assert "is not a version" in why


def test_integer_bounds_out_of_order_are_an_error():
    # the TypeEmpty branch of evaluateMatchExpression for GtLt/GeLe
    is_match, why = evaluate_expression(nfd("GtLt", "9", "5", version=False), True, "6")
    assert not is_match and "value[0] must be less than value[1]" in why


def test_imagefit_annotations_keep_reading_release_strings():
    # imagefit's own vocabulary (nfd=False): the leading numbers of a release string
    own = MatchExpression(op="Ge", value=("5.14",), type="version")
    assert evaluate_expression(own, True, "5.14.0-427.13.1.el9_4.x86_64") == (True, "")
    assert compare_versions("1.2.3.4", "1.2.3") == 0
    with pytest.raises(ValueError, match="not a version '1.2.3.4'"):
        compare_versions("1.2.3.4", "1.2.3", nfd=True)


def test_a_spec_marks_its_version_expressions_nfd():
    spec = _spec({})
    spec["compatibilities"][0]["rules"][0]["matchFeatures"] = [
        {"feature": "kernel.version", "matchExpressions": {"full": {"op": "Ge", "value": ["6.8"], "type": "version"}}}
    ]  # fmt: skip
    (cs,) = parse_nfd_spec(spec, "s")
    expr = cs.rules[0].match_features[0].match_expressions["full"]
    assert expr.nfd and expr.type == "version"
    assert evaluate_set(cs, HOST).is_match  # 6.8.0-45-generic >= 6.8


parts = st.integers(min_value=0, max_value=2**64 - 1)
pre = st.sampled_from(["", "-45-generic", "-rc.1", "+meta.7", "-alpha+b1"])


@given(a=st.tuples(parts, parts, parts), b=st.tuples(parts, parts, parts), pa=pre, pb=pre)
def test_nfd_order_is_the_order_of_major_minor_patch(a, b, pa, pb):
    text_a, text_b = ".".join(map(str, a)) + pa, ".".join(map(str, b)) + pb
    assert nfd_version(text_a) == a
    assert compare_versions(text_a, text_b, nfd=True) == (a > b) - (a < b)


# -- a set that cannot be read fails that set only ----------------------------------------
GOOD_SET = {
    "tag": "second",
    "weight": 1,
    "rules": [
        {
            "name": "avx2",
            "matchFeatures": [
                {"feature": "cpu.cpuid", "matchExpressions": {"AVX2": {"op": "Exists"}}}
            ],
        }
    ],
}


def test_one_bad_set_fails_alone_and_says_why():
    spec = _spec({"AVX2": {"op": "Exist"}}, GOOD_SET)  # a typo in the first set
    with pytest.raises(ValueError, match=r"compatibilities\[0\].*unknown op 'Exist'"):
        parse_nfd_spec(spec, "s")  # strict, for authors (attach, lint): the whole spec
    bad, good = parse_nfd_spec(spec, "nfd:sha256:x", strict=False)
    assert bad.error.startswith("compatibilities[0].rules[0].matchFeatures[0]")
    assert "unknown op 'Exist'" in bad.error and "\n" not in bad.error
    assert (bad.tag, bad.weight, bad.source, bad.rules) == ("first", 5, "nfd:sha256:x", ())
    assert not good.error and evaluate_set(good, HOST).is_match
    result = evaluate_set(bad, HOST)
    assert not result.is_match and result.error == bad.error
    (rule,) = result.rules
    assert rule.name == UNREADABLE_RULE and not rule.is_match
    assert rule.expressions[0].error == bad.error  # what explain prints for a failed rule


@pytest.mark.parametrize(
    "bad_set",
    [
        "not a mapping",
        {"weight": "heavy", "rules": []},
        {"rules": [{"matchFeatures": [{"feature": None}]}]},
        {"rules": [{"matchAny": [{"matchFeatures": "cpu.cpuid"}]}]},
        {"rules": [], "labels": {"a": "b"}},
    ],
)
def test_any_unreadable_set_is_kept_as_a_failing_set(bad_set):
    sets = parse_nfd_spec(_spec({"AVX2": {"op": "Exists"}}, bad_set), "s", strict=False)
    assert [bool(s.error) for s in sets] == [False, True]
    assert sets[1].error.startswith("compatibilities[1]")
    assert [evaluate_set(s, HOST).is_match for s in sets] == [True, False]


@pytest.mark.parametrize(
    "document",
    [{"version": "v1beta1", "compatibilities": []}, ["v1alpha1"], {"version": "v1alpha1", "compatibilities": {}}],
)  # fmt: skip
def test_a_spec_that_cannot_be_read_at_all_still_raises(document):
    with pytest.raises(ValueError):
        parse_nfd_spec(document, "s", strict=False)


def test_resolve_parse_specs_fails_the_bad_set_only():
    from shim.resolve import parse_specs

    subject, other = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    specs = {
        subject: [("sha256:" + "a" * 64, _spec({"AVX2": {"op": "Exist"}}, GOOD_SET))],
        other: [("sha256:" + "b" * 64, {"version": "v9", "compatibilities": []})],
    }
    sets = parse_specs(specs)  # raised RegistryError before: the whole image failed open
    assert [bool(s.error) for s in sets[subject]] == [True, False]
    (whole,) = sets[other]
    assert whole.source == "nfd:sha256:" + "b" * 64
    assert whole.error.startswith("NFD artifact sha256:bbbb") and "version 'v9'" in whole.error
    assert not evaluate_set(whole, HOST).is_match
