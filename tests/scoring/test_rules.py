"""scoring.rules: NFD expression, matcher, rule and set evaluation, and the NFD
image-compatibility spec parser.

Expected values come from kubernetes-sigs/node-feature-discovery where a
case exists there (pkg/apis/nfd/nodefeaturerule/expression_test.go,
pkg/client-nfd/compat/node-validator/
node-validator_test.go with the features of source/fake/fake.go,
examples/image-compatibility.yaml)."""

from __future__ import annotations

import textwrap

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from scoring.rules import (
    CompatibilitySet,
    FeatureMatcher,
    MatchAnyElement,
    MatchExpression,
    Rule,
    compare_versions,
    evaluate_expression,
    evaluate_matcher,
    evaluate_rule,
    evaluate_set,
    parse_nfd_spec,
)


def E(op: str, *values: str, type: str = "", nfd: bool = False) -> MatchExpression:  # noqa: A002
    return MatchExpression(op=op, value=values, type=type, nfd=nfd)


def T(
    feature: str, match_name: MatchExpression | None = None, /, **expressions: MatchExpression
) -> FeatureMatcher:
    """A term: matchName positional, matchExpressions as keywords."""
    return FeatureMatcher(
        feature=feature, matchExpressions=expressions or None, matchName=match_name
    )


# A host as hostfacts.nfd.features() describes it: a zen4 box with two PCI devices.
HOST = {
    "flags": {
        "cpu.cpuid": {"elements": {"AVX": {}, "AVX2": {}, "AVX512F": {}, "FMA3": {}, "SSE42": {}}},
        "kernel.loadedmodule": {"elements": {"vfio-pci": {}, "ip_tables": {}}},
    },
    "attributes": {
        "cpu.model": {"elements": {"vendor_id": "AMD", "family": "25", "id": "17"}},
        "kernel.version": {
            "elements": {"full": "6.1.0-18-amd64", "major": "6", "minor": "1", "revision": "0"}
        },
        "system.osrelease": {
            "elements": {"ID": "debian", "VERSION_ID": "12", "VERSION_ID.major": "12"}
        },
        "gpu.nvidia": {
            "elements": {"driver_version": "550.54.15", "cuda_driver_version": "12.4", "count": "2"}
        },
    },
    "instances": {
        "pci.device": {
            "elements": [
                {"attributes": {"class": "0300", "vendor": "1a03", "device": "2000"}},
                {"attributes": {"class": "0200", "vendor": "8086", "device": "1592"}},
            ]
        },
        "gpu.nvidia.device": {"elements": []},
    },
}

# NFD's fake source defaults (source/fake/fake.go), used by node-validator_test.go.
FAKE = {
    "flags": {"fake.flag": {"elements": {"flag_1": {}, "flag_2": {}, "flag_3": {}}}},
    "attributes": {
        "fake.attribute": {"elements": {"attr_1": "true", "attr_2": "false", "attr_3": "10"}}
    },
    "instances": {
        "fake.instance": {
            "elements": [
                {
                    "attributes": {
                        "name": "instance_1",
                        "attr_1": "true",
                        "attr_2": "false",
                        "attr_3": "10",
                        "attr_4": "foobar",
                    }
                },
                {
                    "attributes": {
                        "name": "instance_2",
                        "attr_1": "true",
                        "attr_2": "true",
                        "attr_3": "100",
                    }
                },
                {"attributes": {"name": "instance_3"}},
            ]
        }
    },
}


# ----------------------------------------------------------------- operators


@pytest.mark.parametrize(
    ("expr", "valid", "value", "expected"),
    [
        # In / NotIn: exact string comparison
        (E("In", "1", "2", "3"), True, "2", True),
        (E("In", "1"), True, "2", False),
        (E("In", "1", "2"), False, None, False),  # missing element
        (E("In", ""), True, None, False),  # a flag has no value: never In, no error
        (E("NotIn", "1"), True, "2", True),
        (E("NotIn", "1", "2", "3"), True, "2", False),
        (E("NotIn", "1"), False, None, False),  # missing element: NotIn does not match either
        # InRegexp: unanchored search, as Go's regexp.MatchString
        (E("InRegexp", "val-[0-9]$"), True, "val-1", True),
        (E("InRegexp", "val-[0-9]$"), True, "val-12", False),
        (E("InRegexp", "val-[0-9]$", "al-[1-9]"), True, "val-12", True),
        (E("InRegexp", "^AVX512"), True, "xAVX512F", False),
        (E("InRegexp", "[[:digit:]]{3}$"), True, "AVX512", True),  # POSIX class
        (E("InRegexp", r"\QA.B\E"), True, "A.B", True),  # RE2 literal quoting
        (E("InRegexp", r"\QA.B\E"), True, "AxB", False),
        (E("InRegexp", r"^12\z"), True, "12", True),
        (E("InRegexp", r"^\d+$"), True, "١٢", False),  # RE2's \d is ASCII
        (E("InRegexp", "val"), False, None, False),
        # Exists / DoesNotExist
        (E("Exists"), True, None, True),
        (E("Exists"), False, None, False),
        (E("DoesNotExist"), False, None, True),
        (E("DoesNotExist"), True, "x", False),
        # Gt / Ge / Lt / Le on integers
        (E("Gt", "2"), True, "3", True),
        (E("Gt", "2"), True, "2", False),
        (E("Gt", "-10"), True, "-3", True),
        (E("Gt", "2"), False, None, False),
        (E("Ge", "2"), True, "2", True),
        (E("Ge", "2"), True, "1", False),
        (E("Lt", "2"), True, "1", True),
        (E("Lt", "2"), True, "2", False),
        (E("Lt", "-10"), True, "-3", False),
        (E("Le", "2"), True, "2", True),
        (E("Le", "2"), True, "3", False),
        (E("Le", "2"), False, None, False),
        # GtLt exclusive, GeLe inclusive
        (E("GtLt", "1", "10"), True, "2", True),
        (E("GtLt", "1", "10"), True, "1", False),
        (E("GtLt", "1", "10"), True, "10", False),
        (E("GtLt", "-10", "10"), True, "-11", False),
        (E("GtLt", "1", "10"), False, None, False),
        (E("GeLe", "-10", "10"), True, "10", True),
        (E("GeLe", "-10", "10"), True, "-10", True),
        (E("GeLe", "-10", "10"), True, "-11", False),
        (E("GeLe", "-10", "10"), False, None, False),
        # IsTrue / IsFalse
        (E("IsTrue"), True, "true", True),
        (E("IsTrue"), True, "1", False),
        (E("IsTrue"), True, "false", False),
        (E("IsTrue"), False, None, False),
        (E("IsFalse"), True, "false", True),
        (E("IsFalse"), True, "true", False),
        (E("IsFalse"), False, None, False),
    ],
)
def test_operator(expr, valid, value, expected):
    assert evaluate_expression(expr, valid, value) == (expected, "")


@pytest.mark.parametrize(
    ("expr", "value", "needle"),
    [
        (E("In"), "val", "must be non-empty"),
        (E("NotIn"), "val", "must be non-empty"),
        (E("InRegexp"), "val", "must be non-empty"),
        (E("InRegexp", "("), "val", "invalid regexp"),
        (E("InRegexp", "^AVX(?=5)"), "AVX512", "lookaround"),  # Python has it, RE2 does not
        (E("InRegexp", r"(a)\1"), "aa", "invalid escape"),  # no backreferences in RE2
        (E("InRegexp", "[[:alfa:]]"), "a", "character class"),
        (E("Exists", "1"), "val", "must be empty"),
        (E("DoesNotExist", "1"), "val", "must be empty"),
        (E("Gt"), "1", "exactly one element"),
        (E("Gt", "1", "2"), "1", "exactly one element"),
        (E("Gt", ""), "1", "not a number"),
        (E("Gt", "2"), "3a", "host value '3a' is not a number"),
        (E("Lt", "a"), "1", "'a' in Lt ['a'] is not a number"),
        (E("Lt", "2"), "1.0", "not a number"),
        (E("Le", "2"), " 1", "not a number"),  # strconv.Atoi: no spaces
        (E("Ge", "1_000"), "2", "not a number"),  # nor underscores
        (E("Ge", "2"), "9223372036854775808", "not a number"),  # beyond int64
        (E("GtLt"), "1", "exactly two elements"),
        (E("GtLt", "1"), "1", "exactly two elements"),
        (E("GtLt", "1", "2", "3"), "1", "exactly two elements"),
        (E("GtLt", "2", "1"), "1", "value[0] must be less than value[1]"),
        (E("GeLe", "2", "2"), "2", "value[0] must be less than value[1]"),  # as NFD, even inclusive
        (E("GtLt", "a", "2"), "1", "not a number"),
        (E("GtLt", "1", "10"), "1.0", "not a number"),
        (E("IsTrue", "1"), "true", "must be empty"),
        (E("IsFalse", "1", "2"), "false", "must be empty"),
    ],
)
def test_operator_error(expr, value, needle):
    is_match, error = evaluate_expression(expr, True, value)
    assert not is_match
    assert needle in error
    assert "\n" not in error


def test_value_errors_wait_for_an_element_as_in_nfd():
    # NFD checks value counts of In/Gt/... only when the element exists; Exists/DoesNotExist always.
    assert evaluate_expression(E("In"), False, None) == (False, "")
    assert evaluate_expression(E("Gt", "a"), False, None) == (False, "")
    assert evaluate_expression(E("DoesNotExist", "x"), False, None)[1]


# ------------------------------------------------------------------- versions


@pytest.mark.parametrize(
    ("op", "values", "value", "expected", "error"),
    [
        # pkg/apis/nfd/nodefeaturerule/expression_test.go, TestEvaluateMatchExpressionValues
        ("Gt", ("2",), "2", False, False),  # 22
        ("Gt", ("2",), "3", True, False),  # 23
        ("Gt", ("2.0",), "2.0", False, False),  # 24
        ("Gt", ("2.0",), "2.1", True, False),  # 25
        ("Gt", ("2.0.1",), "2.0.1", False, False),  # 26
        ("Gt", ("2.0.1",), "2.0.2", True, False),  # 27
        ("Gt", ("2.0.1",), "str", False, True),  # 28
        ("Ge", ("2.0",), "1.9", False, False),  # 42
        ("Ge", ("2.0.1",), "2.0.0", False, False),  # 46
        ("Lt", ("2.0",), "1.9", True, False),  # 59
        ("Le", ("2.0.1",), "2.0.2", False, False),  # 81
        ("GtLt", ("1.0", "10.0"), "10.1", False, False),  # 96
        ("GtLt", ("1.0", "10.0"), "1.1", True, False),  # 98
        ("GtLt", ("1.0.1", "10.0.1"), "1.0.2", True, False),  # 103
        ("GeLe", ("1", "10"), "10", True, False),  # 114
        ("GeLe", ("1", "10"), "-11", False, True),  # 115: not a version
        ("GeLe", ("1.0.1", "10.0.1"), "10.0.1", True, False),  # 124
        ("GeLe", ("1.0.1", "10.0.1"), "str", False, True),  # 128
        # kernel release strings compare by their numeric parts
        ("Ge", ("6.1",), "6.1.0-18-amd64", True, False),
        ("Gt", ("6.1.0",), "6.1.0-18-amd64", False, False),
        ("Ge", ("5.14",), "5.14.0-427.13.1.el9_4.x86_64", True, False),
        ("Lt", ("5.15",), "5.14.0-427.13.1.el9_4.x86_64", True, False),
        ("GeLe", ("4.18", "5.14"), "4.18.0-553.el8_10.x86_64", True, False),
        # different lengths: missing parts are 0
        ("Ge", ("5.14.0",), "5.14", True, False),
        ("Le", ("5.14.0",), "5.14", True, False),
        ("Gt", ("5.14.0",), "5.14", False, False),
        ("Gt", ("5",), "5.0.1", True, False),
        # 'v' prefix (imagefit also accepts it)
        ("Ge", ("1.2",), "v1.2.3", True, False),
        ("Lt", ("v2",), "1.9.9", True, False),
        # numeric, not lexical
        ("Gt", ("9.2",), "10.1", True, False),
        ("Ge", ("535.104.05",), "550.54.15", True, False),
        ("Lt", ("2.9",), "2.10", False, False),
        # bad expression values
        ("Gt", ("x.y",), "1.2", False, True),
        ("GtLt", ("2.0", "1.0"), "1.5", False, True),
        ("Gt", ("1", "2"), "1.5", False, True),
    ],
)
def test_version_comparison(op, values, value, expected, error):
    is_match, why = evaluate_expression(E(op, *values, type="version"), True, value)
    assert is_match is expected
    assert bool(why) is error


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [  # imagefit's own vocabulary (numeric_version); NFD's type: version: tests/scoring/test_nfd_exact.py
        ("1", "2", -1), ("2", "2", 0), ("3", "2", 1),
        ("1.9", "2.0", -1), ("2.0", "2.0", 0), ("2.1", "2.0", 1),
        ("1.9.9", "2.0.0", -1), ("2.0.0", "2.0.0", 0), ("2.0.1", "2.0.0", 1),
        ("1", "2.0", -1), ("2", "2.0", 0), ("3", "2.0", 1),
        ("1", "2.0.0", -1), ("2", "2.0.0", 0), ("3", "2.0.0", 1),
        ("1.9.9", "2", -1), ("2.0.0", "2", 0), ("2.0.1", "2", 1),
        # the rest after major.minor.patch is ignored
        ("1.2.3-flavor", "1.2.3", 0), ("1.2.3-flavor.2.3.4", "1.2.3", 0),
        # so are pre-release tags and a fourth part
        ("1.2.3-rc1", "1.2.3", 0), ("1.2.3.4", "1.2.3", 0),
        ("v5.14", "5.14.0", 0), ("22.04", "22.4", 0),
    ],
)  # fmt: skip
def test_compare_versions(a, b, expected):
    assert compare_versions(a, b) == expected
    assert compare_versions(b, a) == -expected


@pytest.mark.parametrize("text", ["flavor-1.2.3", "A.2.3", "str", "", "-11", "+1", ".5"])
def test_not_a_version(text):
    with pytest.raises(ValueError, match="not a version"):
        compare_versions(text, "1")


# ----------------------------------------------------------------- properties

names = st.text(alphabet="abcdefgh0123456789.-_", min_size=0, max_size=8)


@given(value=names, values=st.lists(names, min_size=1, max_size=5))
def test_in_and_notin_are_complements_for_present_elements(value, values):
    in_match, in_error = evaluate_expression(E("In", *values), True, value)
    not_in_match, not_in_error = evaluate_expression(E("NotIn", *values), True, value)
    assert in_error == not_in_error == ""
    assert in_match is not not_in_match


ints = st.integers(min_value=-(2**40), max_value=2**40)


@given(a=ints, b=ints, v=ints)
def test_gtlt_is_gt_and_lt_and_gele_is_ge_and_le(a, b, v):
    a, b = min(a, b), max(a, b)
    if a == b:
        b += 1
    host = str(v)
    gt, _ = evaluate_expression(E("Gt", str(a)), True, host)
    lt, _ = evaluate_expression(E("Lt", str(b)), True, host)
    ge, _ = evaluate_expression(E("Ge", str(a)), True, host)
    le, _ = evaluate_expression(E("Le", str(b)), True, host)
    assert evaluate_expression(E("GtLt", str(a), str(b)), True, host) == (gt and lt, "")
    assert evaluate_expression(E("GeLe", str(a), str(b)), True, host) == (ge and le, "")


parts = st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=3)
suffixes = st.sampled_from(
    ["", "-18-amd64", "-rc1", "+build.5", ".el9_4.x86_64", "-427.13.1", "a", " "]
)


def _version_text(numbers: list[int], suffix: str, v: bool) -> str:
    return ("v" if v else "") + ".".join(map(str, numbers)) + suffix


@given(a=parts, b=parts, sa=suffixes, sb=suffixes, va=st.booleans(), vb=st.booleans())
def test_version_order_is_tuple_order_of_numeric_parts(a, b, sa, sb, va, vb):
    key_a, key_b = tuple(a + [0] * (3 - len(a))), tuple(b + [0] * (3 - len(b)))
    expected = (key_a > key_b) - (key_a < key_b)
    text_a, text_b = _version_text(a, sa, va), _version_text(b, sb, vb)
    assert compare_versions(text_a, text_b) == expected
    assert compare_versions(text_b, text_a) == -expected  # antisymmetric
    ge, _ = evaluate_expression(E("Ge", text_b, type="version"), True, text_a)
    lt, _ = evaluate_expression(E("Lt", text_b, type="version"), True, text_a)
    assert ge is (expected >= 0) and lt is (expected < 0)  # total: exactly one holds


@given(a=parts, b=parts, c=parts)
def test_version_order_is_transitive(a, b, c):
    x, y, z = (".".join(map(str, p)) for p in (a, b, c))
    if compare_versions(x, y) <= 0 and compare_versions(y, z) <= 0:
        assert compare_versions(x, z) <= 0


# ----------------------------------------------------------------- matchers


def test_flags_exists_and_does_not_exist():
    ok, results = evaluate_matcher(
        T("cpu.cpuid", AVX512F=E("Exists"), AVX10=E("DoesNotExist")), HOST
    )
    assert ok
    assert [(r.name, r.host_value, r.is_match) for r in results] == [
        ("AVX512F", "", True),
        ("AVX10", None, True),
    ]
    ok, results = evaluate_matcher(T("cpu.cpuid", AMXTILE=E("Exists")), HOST)
    assert not ok and results[0].host_value is None and results[0].feature_present


def test_flags_have_no_value():
    # A flag element has a name only: In/IsTrue never match it, without error (NFD TestEvaluateMatchExpressionKeys).
    ok, results = evaluate_matcher(T("cpu.cpuid", AVX2=E("In", "")), HOST)
    assert not ok and results[0].error == ""


def test_attributes():
    ok, results = evaluate_matcher(
        T("kernel.version", major=E("Ge", "5"), full=E("Ge", "6.1", type="version")), HOST
    )
    assert ok
    assert {r.name: r.host_value for r in results} == {"major": "6", "full": "6.1.0-18-amd64"}
    ok, results = evaluate_matcher(T("cpu.model", vendor_id=E("In", "Intel")), HOST)
    assert not ok and results[0].host_value == "AMD"


def test_all_expressions_of_a_term_must_match():
    ok, results = evaluate_matcher(
        T("cpu.model", vendor_id=E("In", "AMD"), family=E("Gt", "25")), HOST
    )
    assert not ok
    assert [r.is_match for r in results] == [True, False]


def test_bad_host_value_fails_with_the_reason():
    ok, results = evaluate_matcher(T("gpu.nvidia", driver_version=E("Ge", "535")), HOST)
    assert not ok
    assert results[0].error == "host value '550.54.15' is not a number"
    ok, _ = evaluate_matcher(T("gpu.nvidia", driver_version=E("Ge", "535", type="version")), HOST)
    assert ok


def test_instances_need_one_instance_matching_every_expression():
    # vendor 8086 and class 0300 both exist, on different devices: no match.
    ok, results = evaluate_matcher(
        T("pci.device", vendor=E("In", "8086"), **{"class": E("In", "0300")}), HOST
    )
    assert not ok
    ok, results = evaluate_matcher(
        T("pci.device", vendor=E("In", "8086"), **{"class": E("In", "0200")}), HOST
    )
    assert ok
    assert {r.instance for r in results} == {1}
    assert {r.name: r.host_value for r in results} == {"vendor": "8086", "class": "0200"}


def test_failing_instance_term_reports_the_closest_instance():
    term = T(
        "pci.device", vendor=E("In", "8086"), device=E("In", "1593"), **{"class": E("In", "0200")}
    )
    ok, results = evaluate_matcher(term, HOST)
    assert not ok
    assert {r.instance for r in results} == {1}  # two of three match on the NIC
    assert [r.is_match for r in results] == [True, False, True]


def test_instance_without_the_attribute_matches_does_not_exist():
    ok, results = evaluate_matcher(
        T("fake.instance", attr_4=E("DoesNotExist"), name=E("In", "instance_2")), FAKE
    )
    assert ok and results[0].instance == 1


def test_no_instances():
    ok, results = evaluate_matcher(T("gpu.nvidia.device", compute_capability=E("In", "9.0")), HOST)
    assert not ok
    assert (
        results[0].host_value is None and results[0].instance is None and results[0].feature_present
    )
    # an empty expression set needs an instance, too (NFD MatchGetInstances)
    assert not evaluate_matcher(
        FeatureMatcher(feature="gpu.nvidia.device", matchExpressions={}), HOST
    )[0]
    assert evaluate_matcher(FeatureMatcher(feature="pci.device", matchExpressions={}), HOST)[0]


def test_flags_and_attributes_of_one_feature_are_a_union():
    # NFD's cpu.cpuid has flags and the attribute AVX10_VERSION (rule.go MatchMulti).
    host = {
        "flags": {"cpu.cpuid": {"elements": {"AVX512F": {}}}},
        "attributes": {"cpu.cpuid": {"elements": {"AVX10_VERSION": "1"}}},
    }
    ok, results = evaluate_matcher(
        T("cpu.cpuid", AVX512F=E("Exists"), AVX10_VERSION=E("Ge", "1")), host
    )
    assert ok
    assert {r.name: r.host_value for r in results} == {"AVX512F": "", "AVX10_VERSION": "1"}
    # DoesNotExist must hold in both
    assert not evaluate_matcher(T("cpu.cpuid", AVX10_VERSION=E("DoesNotExist")), host)[0]
    assert not evaluate_matcher(T("cpu.cpuid", AVX512F=E("DoesNotExist")), host)[0]
    assert evaluate_matcher(T("cpu.cpuid", AMX=E("DoesNotExist")), host)[0]


def test_absent_feature_fails_its_term_even_for_does_not_exist():
    # rule.go evaluateFeatureMatcher: "feature not available" -> no match, whatever the operator;
    # grouprule_test.go: "matching against a missing feature" does not match.
    ok, results = evaluate_matcher(T("kernel.enabledmodule", nouveau=E("DoesNotExist")), HOST)
    assert not ok
    assert (
        results[0].feature_present is False
        and results[0].host_value is None
        and results[0].error == ""
    )
    ok, results = evaluate_matcher(FeatureMatcher(feature="usb.device"), HOST)
    assert not ok and results[0].expression == "feature present"


def test_term_without_expressions_matches_when_the_feature_exists():
    ok, results = evaluate_matcher(FeatureMatcher(feature="cpu.cpuid"), HOST)
    assert ok and results[0].expression == "feature present"


def test_feature_name_is_matched_lower_cased():
    assert evaluate_matcher(T("CPU.CPUID", AVX2=E("Exists")), HOST)[0]


def test_match_name_alone():
    # docs: "matches if any CPUID feature starting with AVX is present"
    ok, results = evaluate_matcher(T("cpu.cpuid", E("InRegexp", "^AVX512")), HOST)
    assert ok
    assert len(results) == 1
    (r,) = results
    assert (r.name, r.matcher_type, r.host_value) == ("", "matchName", "AVX512F")
    ok, results = evaluate_matcher(T("cpu.cpuid", E("In", "AMXTILE", "AVX10")), HOST)
    assert not ok and results[0].host_value is None


def test_match_name_semantics():
    assert evaluate_matcher(T("cpu.cpuid", E("Exists")), HOST)[0]  # any element
    assert not evaluate_matcher(T("cpu.cpuid", E("DoesNotExist")), HOST)[0]  # never matches
    assert evaluate_matcher(T("cpu.cpuid", E("NotIn", "AVX")), HOST)[0]  # some name is not AVX
    # on attributes and on the attribute names of instances
    assert evaluate_matcher(T("kernel.version", E("In", "full")), HOST)[0]
    ok, results = evaluate_matcher(T("fake.instance", E("In", "attr_4")), FAKE)
    assert ok and results[0].host_value == "attr_4"
    # Gt on names that are not integers: NFD stops with an error
    ok, results = evaluate_matcher(T("cpu.cpuid", E("Gt", "1")), HOST)
    assert not ok and "not a number" in results[0].error


def test_match_name_with_expressions_both_must_match():
    both = T("cpu.cpuid", E("InRegexp", "^AVX"), SSE42=E("Exists"))
    assert evaluate_matcher(both, HOST)[0]
    names_fail = T("cpu.cpuid", E("InRegexp", "^AMX"), SSE42=E("Exists"))
    ok, results = evaluate_matcher(names_fail, HOST)
    assert not ok and [r.is_match for r in results] == [True, False]
    exprs_fail = T("cpu.cpuid", E("InRegexp", "^AVX"), SSE3=E("Exists"))
    ok, results = evaluate_matcher(exprs_fail, HOST)
    assert not ok and [r.is_match for r in results] == [False, True]


def test_features_are_not_modified():
    import copy

    before = copy.deepcopy(HOST)
    evaluate_set(
        CompatibilitySet(
            rules=(
                Rule(name="r", vars={"x": "1"}, matchFeatures=(T("cpu.cpuid", AVX=E("Exists")),)),
            )
        ),
        HOST,
    )
    assert HOST == before


# ---------------------------------------------------------------------- rules

AVX512 = T("cpu.cpuid", AVX512F=E("Exists"))
AMX = T("cpu.cpuid", AMXTILE=E("Exists"))
INTEL_NIC = T("pci.device", vendor=E("In", "8086"), **{"class": E("In", "0200")})
NVIDIA_NIC = T("pci.device", vendor=E("In", "15b3"), **{"class": E("In", "0200")})


def test_match_features_alone_is_and():
    assert evaluate_rule(Rule(name="r", matchFeatures=(AVX512, INTEL_NIC)), HOST).is_match
    result = evaluate_rule(Rule(name="r", matchFeatures=(AVX512, AMX)), HOST)
    assert not result.is_match
    assert [r.is_match for r in result.expressions] == [True, False]


def test_match_any_alone_is_or():
    result = evaluate_rule(
        Rule(
            name="nic",
            matchAny=(
                MatchAnyElement(matchFeatures=(NVIDIA_NIC,)),
                MatchAnyElement(matchFeatures=(INTEL_NIC,)),
            ),
        ),
        HOST,
    )
    assert result.is_match
    assert [a.is_match for a in result.match_any] == [False, True]
    assert all(r.is_match for r in result.expressions)  # what decided it: the matching alternative
    result = evaluate_rule(
        Rule(name="nic", matchAny=(MatchAnyElement(matchFeatures=(NVIDIA_NIC,)),)), HOST
    )
    assert not result.is_match
    assert [r.is_match for r in result.expressions] == [False, True]


def test_match_any_and_match_features_must_both_hold():
    any_fails = (
        MatchAnyElement(matchFeatures=(AMX,)),
        MatchAnyElement(matchFeatures=(NVIDIA_NIC,)),
    )
    any_holds = (MatchAnyElement(matchFeatures=(AMX,)), MatchAnyElement(matchFeatures=(INTEL_NIC,)))
    assert not evaluate_rule(
        Rule(name="r", matchFeatures=(AVX512,), matchAny=any_fails), HOST
    ).is_match
    assert not evaluate_rule(
        Rule(name="r", matchFeatures=(AMX,), matchAny=any_holds), HOST
    ).is_match
    assert evaluate_rule(Rule(name="r", matchFeatures=(AVX512,), matchAny=any_holds), HOST).is_match


def _fake_rule(any_names: list[list[str]]) -> Rule:
    """node-validator_test.go "fake_6": matchAny over fake.instance names beside
    matchFeatures fake.attribute attr_1 In [true]."""
    return Rule(
        name="fake_6",
        matchAny=tuple(
            MatchAnyElement(
                matchFeatures=tuple(T("fake.instance", **{"name": E("In", n)}) for n in names)
            )
            for names in any_names
        ),
        matchFeatures=(T("fake.attribute", attr_1=E("In", "true")),),
    )


def test_nfd_2260_match_any_beside_match_features_is_no_false_positive():
    # NFD PR #2260 ("If matchAny and matchFeatures are defined at the same level in the spec, you
    # might receive a false positive"): with no matchAny alternative matching, a matching
    # matchFeatures made the rule match. The upstream scenario, with NFD's fake source features:
    rule = _fake_rule([["instance_unknown"], ["instance_unknown", "instance_1"]])
    result = evaluate_rule(rule, FAKE)
    assert not result.is_match
    assert [r.is_match for r in result.expressions if r.feature == "fake.attribute"] == [True]
    assert [a.is_match for a in result.match_any] == [False, False]
    # and as upstream's test has it (one alternative matches): a match
    upstream = evaluate_rule(_fake_rule([["instance_1"], ["instance_unknown", "instance_1"]]), FAKE)
    assert upstream.is_match
    assert [a.is_match for a in upstream.match_any] == [True, False]


def test_empty_rule_matches():
    # grouprule_test.go: "empty matcher should have matched empty features"
    assert evaluate_rule(Rule(name="empty"), {}).is_match
    assert evaluate_rule(Rule(name="empty"), HOST).is_match


def test_an_error_in_any_alternative_fails_the_rule():
    # NFD stops the whole evaluation on an error, even when another alternative matches.
    # "6.1.0-18-amd64" is not an integer
    bad = MatchAnyElement(matchFeatures=(T("kernel.version", full=E("Gt", "5")),))
    good = MatchAnyElement(matchFeatures=(AVX512,))
    result = evaluate_rule(Rule(name="r", matchAny=(bad, good)), HOST)
    assert not result.is_match
    assert any(r.error for r in result.expressions)


def test_absent_feature_in_one_alternative_is_no_error():
    amd = MatchAnyElement(matchFeatures=(T("gpu.amd.device", gfx_target=E("In", "gfx90a")),))
    nvidia = MatchAnyElement(matchFeatures=(T("gpu.nvidia", count=E("Gt", "0")),))
    assert evaluate_rule(Rule(name="gpu", matchAny=(amd, nvidia)), HOST).is_match


# ----------------------------------------------------------------------- sets


def test_empty_set_matches():
    result = evaluate_set(CompatibilitySet(tag="t", weight=3, source="annotations"), HOST)
    assert result.is_match and result.rules == ()
    assert (result.tag, result.weight, result.source) == ("t", 3, "annotations")


def test_set_with_one_failing_rule():
    cs = CompatibilitySet(
        rules=(
            Rule(name="avx512", matchFeatures=(AVX512,)),
            Rule(name="amx", matchFeatures=(AMX,)),
        ),
        tag="preferred",
        weight=10,
        description="AMX build",
    )
    result = evaluate_set(cs, HOST)
    assert not result.is_match
    assert [(r.name, r.is_match) for r in result.rules] == [("avx512", True), ("amx", False)]
    assert (result.tag, result.weight, result.description) == ("preferred", 10, "AMX build")


def test_matched_rule_vars_feed_rule_matched():
    # node-validator.go: matched rules' vars become the rule.matched feature for later rules.
    cs = CompatibilitySet(
        rules=(
            Rule(name="avx", vars={"avx512": "true"}, matchFeatures=(AVX512,)),
            Rule(name="amx", vars={"amx": "true"}, matchFeatures=(AMX,)),
            Rule(
                name="uses",
                matchFeatures=(T("rule.matched", avx512=E("IsTrue"), amx=E("DoesNotExist")),),
            ),
        )
    )
    result = evaluate_set(cs, HOST)
    # amx did not match, so no amx var: the third rule still holds
    assert [r.is_match for r in result.rules] == [True, False, True]
    assert not result.is_match
    assert evaluate_set(CompatibilitySet(rules=(cs.rules[0], cs.rules[2])), HOST).is_match
    alone = CompatibilitySet(rules=cs.rules[2:])
    assert not evaluate_set(alone, HOST).is_match  # no rule.matched feature at all


# --------------------------------------------------------------- NFD fake tests


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (Rule(name="fake_1", matchFeatures=(T("fake.flag", E("InRegexp", "^flag")),)), True),
        (Rule(name="fake_2", matchFeatures=(T("fake.flag", flag_unknown=E("Exists")), T("fake.attribute", attr_1=E("In", "true")))), False),
        (Rule(name="fake_3", matchFeatures=(
            T("fake.instance", **{"name": E("In", "instance_1"), "attr_1": E("In", "true")}),
            T("fake.instance", **{"name": E("In", "instance_2"), "attr_1": E("In", "false")}),
        )), False),
        (Rule(name="fake_4", matchAny=(
            MatchAnyElement(matchFeatures=(T("fake.instance", **{"name": E("In", "instance_1")}),)),
            MatchAnyElement(matchFeatures=(T("fake.instance", **{"name": E("In", "instance_unknown")}),)),
        )), True),
        (Rule(name="fake_5", matchFeatures=(T("unknown.unknown", **{"name": E("In", "instance_1")}),)), False),
    ],
)  # fmt: skip
def test_nfd_node_validator_cases(rule, expected):
    # pkg/client-nfd/compat/node-validator/node-validator_test.go, TestNodeValidator
    assert evaluate_rule(rule, FAKE).is_match is expected


# ------------------------------------------------------------------ the spec

# kubernetes-sigs/node-feature-discovery examples/image-compatibility.yaml, verbatim.
NFD_EXAMPLE = """\
version: v1alpha1
compatibilities:
- description: "my image requirements"
  rules:
  - name: "kernel and cpu"
    matchFeatures:
    - feature: kernel.loadedmodule
      matchExpressions:
        vfio-pci: {op: Exists}
        ip_tables: {op: Exists}
    - feature: cpu.model
      matchExpressions:
        vendor_id: {op: In, value: ["Intel", "AMD"]}
    - feature: cpu.cpuid
      matchName: {op: InRegexp, value: ["^AVX"]}
  - name: "one of available nics"
    matchAny:
    - matchFeatures:
      - feature: pci.device
        matchExpressions:
          vendor: {op: In, value: ["0eee"]}
          class: {op: In, value: ["0200"]}
    - matchFeatures:
      - feature: pci.device
        matchExpressions:
          vendor: {op: In, value: ["0fff"]}
          class: {op: In, value: ["0200"]}
"""

# shared/reference/spec-landscape.md section 2, "Spec layer".
REFERENCE_EXAMPLE = """\
version: v1alpha1
compatibilities:
- tag: preferred
  weight: 10
  description: AVX-512 build with vfio and an Intel/AMD NIC
  rules:
  - name: cpu-and-kernel
    matchFeatures:
    - feature: cpu.cpuid
      matchExpressions: {AVX512F: {op: Exists}}
    - feature: kernel.version
      matchExpressions: {major: {op: Ge, value: ["5"]}}
    - feature: kernel.loadedmodule
      matchExpressions: {vfio-pci: {op: Exists}}
  - name: nic
    matchAny:
    - matchFeatures:
      - feature: pci.device
        matchExpressions: {vendor: {op: In, value: ["8086"]}, class: {op: In, value: ["0200"]}}
- tag: fallback
  weight: 1
  rules:
  - name: cpu
    matchFeatures:
    - feature: cpu.model
      matchExpressions: {vendor_id: {op: In, value: ["Intel","AMD"]}}
"""


def test_parse_nfd_example():
    (cs,) = parse_nfd_spec(yaml.safe_load(NFD_EXAMPLE), "nfd:sha256:abc")
    assert (cs.description, cs.weight, cs.tag, cs.source) == (
        "my image requirements",
        0,
        "",
        "nfd:sha256:abc",
    )
    kernel, nics = cs.rules
    assert kernel.name == "kernel and cpu"
    assert [t.feature for t in kernel.match_features] == [
        "kernel.loadedmodule",
        "cpu.model",
        "cpu.cpuid",
    ]
    assert kernel.match_features[1].match_expressions == {"vendor_id": E("In", "Intel", "AMD")}
    assert kernel.match_features[2].match_name == E("InRegexp", "^AVX")
    assert kernel.match_features[2].match_expressions is None
    assert len(nics.match_any) == 2 and nics.match_features == ()
    # Against the host: the kernel/cpu rule holds, no NIC of vendor 0eee/0fff.
    result = evaluate_set(cs, HOST)
    assert [r.is_match for r in result.rules] == [True, False]
    assert not result.is_match
    nic = {
        "instances": {
            "pci.device": {"elements": [{"attributes": {"vendor": "0fff", "class": "0200"}}]}
        }
    }
    host = {**HOST, "instances": {**HOST["instances"], **nic["instances"]}}
    assert evaluate_set(cs, host).is_match


def test_parse_reference_example():
    preferred, fallback = parse_nfd_spec(yaml.safe_load(REFERENCE_EXAMPLE), "nfd:sha256:def")
    assert (preferred.tag, preferred.weight, fallback.tag, fallback.weight) == (
        "preferred",
        10,
        "fallback",
        1,
    )
    assert evaluate_set(preferred, HOST).is_match
    assert evaluate_set(fallback, HOST).is_match


def test_parse_json_form_and_empty():
    assert parse_nfd_spec({"version": "v1alpha1"}, "s") == ()
    assert parse_nfd_spec({"version": "v1alpha1", "compatibilities": None}, "s") == ()
    (cs,) = parse_nfd_spec({"version": "v1alpha1", "compatibilities": [{"rules": [{}]}]}, "s")
    assert cs.rules == (Rule(),)


def _spec(expressions: dict) -> dict:
    return {
        "version": "v1alpha1",
        "compatibilities": [
            {
                "rules": [
                    {
                        "name": "r",
                        "matchFeatures": [{"feature": "f.x", "matchExpressions": expressions}],
                    }
                ]
            }
        ],
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5", ("5",)),
        (["5", "6"], ("5", "6")),
        (5, ("5",)),  # NFD MatchValue: strconv.FormatFloat(v, 'f', -1, 64)
        (5.0, ("5",)),
        (5.10, ("5.1",)),
        (1e20, ("100000000000000000000",)),
        (True, ("true",)),
        (False, ("false",)),
        (None, ()),
        ([], ()),
    ],
)
def test_parse_value_forms(value, expected):
    (cs,) = parse_nfd_spec(_spec({"e": {"op": "In", "value": value}}), "s")
    assert cs.rules[0].match_features[0].match_expressions["e"].value == expected


def test_parse_type_version_and_vars():
    spec = {
        "version": "v1alpha1",
        "compatibilities": [
            {
                "rules": [
                    {
                        "name": "kernel",
                        "vars": {"new-kernel": "true"},
                        "varsTemplate": "",
                        "matchFeatures": [
                            {
                                "feature": "kernel.version",
                                "matchExpressions": {
                                    "full": {"op": "Ge", "value": ["5.14"], "type": "version"}
                                },
                            }
                        ],
                    }
                ]
            }
        ],
    }
    (cs,) = parse_nfd_spec(spec, "s")
    rule = cs.rules[0]
    assert rule.vars == {"new-kernel": "true"}
    assert rule.match_features[0].match_expressions["full"] == E(
        "Ge", "5.14", type="version", nfd=True
    )
    assert evaluate_set(cs, HOST).is_match


@pytest.mark.parametrize(
    ("document", "needle"),
    [
        ({"version": "v1beta1", "compatibilities": []}, "unsupported NFD image-compatibility spec: version 'v1beta1'"),
        ({"compatibilities": []}, "unsupported NFD image-compatibility spec: no version"),
        (["version", "v1alpha1"], "expected a mapping, got a list"),
        ({"version": "v1alpha1", "compatibilities": {"rules": []}}, "compatibilities: expected a list, got a mapping"),
        ({"version": "v1alpha1", "compatibility": []}, "unknown field 'compatibility'"),
        ({"version": "v1alpha1", "compatibilities": ["x"]}, "compatibilities[0]: expected a mapping, got str 'x'"),
        ({"version": "v1alpha1", "compatibilities": [{"rule": []}]}, "compatibilities[0]: unknown field 'rule'"),
        ({"version": "v1alpha1", "compatibilities": [{"weight": "10"}]}, "compatibilities[0].weight: expected an integer, got str '10'"),
        ({"version": "v1alpha1", "compatibilities": [{"weight": True}]}, "weight: expected an integer, got boolean true"),
        ({"version": "v1alpha1", "compatibilities": [{"weight": 1.5}]}, "weight: expected an integer"),
        ({"version": "v1alpha1", "compatibilities": [{"tag": 3}]}, "compatibilities[0].tag: expected a string, got int 3"),
        ({"version": "v1alpha1", "compatibilities": [{"rules": [{"matchFeature": []}]}]}, "compatibilities[0].rules[0]: unknown field 'matchFeature'"),
        ({"version": "v1alpha1", "compatibilities": [{"rules": [{"labels": {"a": "b"}}]}]}, "unknown field 'labels'"),
        ({"version": "v1alpha1", "compatibilities": [{"rules": [{"matchFeatures": [{"matchExpressions": {}}]}]}]},
         "compatibilities[0].rules[0].matchFeatures[0].feature: expected a non-empty string, got null"),
        ({"version": "v1alpha1", "compatibilities": [{"rules": [{"matchAny": [{"matchFeatures": [{"feature": "a.b", "matchName": {"op": "Like"}}]}]}]}]},
         "compatibilities[0].rules[0].matchAny[0].matchFeatures[0].matchName.op: unknown op 'Like'"),
        ({"version": "v1alpha1", "compatibilities": [{"rules": [{"matchFeatures": "cpu.cpuid"}]}]}, "matchFeatures: expected a list, got str"),
        ({"version": "v1alpha1", "compatibilities": [{"rules": [{"vars": {"a": 1}}]}]}, "vars.a: expected a string, got int 1"),
        (_spec({"e": {"op": "In", "value": [5.10]}}), "invalid value float 5.1 in the list: quote it"),
        (_spec({"e": {"op": "In", "value": {"a": 1}}}), "matchExpressions.e.value: expected a string or a list of strings, got a mapping"),
        (_spec({"e": {"op": "Gt", "value": ["1"], "type": "semver"}}), "matchExpressions.e.type: unknown type 'semver'"),
        (_spec({"e": {"op": "Like"}}), "matchExpressions.e.op: unknown op 'Like' (one of In, NotIn"),
        (_spec({"e": {"op": "Gt", "value": ["1"], "type": False}}), "matchExpressions.e.type: unknown type False"),
        (_spec({"e": None}), "matchExpressions.e: expected a mapping, got null"),
        (_spec({"e": {"op": "In", "values": ["1"]}}), "matchExpressions.e: unknown field 'values'"),
        (_spec(["AVX512F"]), "matchExpressions: expected a mapping, got a list"),
    ],
)  # fmt: skip
def test_parse_malformed(document, needle):
    with pytest.raises(ValueError) as info:
        parse_nfd_spec(document, "s")
    message = str(info.value)
    assert needle in message
    assert "\n" not in message


def test_parse_error_names_the_path_on_one_line():
    bad = textwrap.dedent(
        """\
        version: v1alpha1
        compatibilities:
        - rules:
          - name: x
            matchFeatures:
            - feature: cpu.cpuid
              matchExpressions:
                AVX512F: {op: Exists, value: [a,
                  b]}
              extra: 1
        """
    )
    with pytest.raises(
        ValueError,
        match=r"^compatibilities\[0\]\.rules\[0\]\.matchFeatures\[0\]: unknown field 'extra'",
    ):
        parse_nfd_spec(yaml.safe_load(bad), "s")
