"""scoring.labels: one label per build, unique within its index, and the
policy names it gives (pure; no registry)."""

from __future__ import annotations

import pytest

from scoring import Outcome, parse_index, select, select_common
from scoring.labels import base_label, name_builds
from scoring.policy import Policy
from tests.test_scoring import desc, digest, index, synthetic

P = "org.supercontainers."
CUDA = {P + "hardware.gpu.vendor": "nvidia", P + "hardware.gpu.cuda.version": ">=12.2",
        P + "hardware.gpu.compute_capabilities": "8.0,9.0+"}  # fmt: skip


def labels(*descriptors: dict) -> list[str]:
    return [n.label for n in name_builds(parse_index(index(*descriptors)))]


@pytest.mark.parametrize(
    ("annotations", "platform", "expected"),
    [
        ({}, {"variant": "v3"}, "x86_64"),  # the annotation before the variant
        (CUDA, {}, "x86_64+cuda12.2+sm80,90ptx"),
        ({P + "hardware.gpu.cuda.version": ">=12,<13"}, {}, "x86_64+cuda>=12,<13"),
        ({P + "hardware.gpu.vendor": "nvidia"}, {}, "x86_64+nvidia"),
        ({P + "hardware.gpu.amd.gfx": "gfx90a, gfx942"}, {}, "x86_64+gfx90a,gfx942"),
        ({P + "hardware.gpu.vendor": "amd"}, {}, "x86_64+amd"),
        ({P + "mpi.abi": "mpich"}, {}, "x86_64+mpich-abi"),
        ({P + "mpi.abi": "mpi-abi"}, {}, "x86_64+mpi-abi"),
        ({P + "mpi.implementation": "OpenMPI", P + "mpi.abi": "openmpi"}, {}, "x86_64+openmpi"),
        ({P + "network.fabric": "cxi"}, {}, "x86_64+cxi"),
        ({P + "network.fabric": "verbs,tcp"}, {}, "x86_64"),  # tcp: any host
        ({P + "os.kernel.version": ">=5.14"}, {}, "x86_64"),  # a range is no part of the label
    ],
)  # fmt: skip
def test_base_label_says_what_the_build_is(annotations, platform, expected):
    [c] = parse_index(index(desc("b", target="x86_64", annotations=annotations, **platform)))
    assert base_label(c) == expected


def test_label_from_tokens_variant_tag_or_platform():
    [tok, gpu_tok, var, tagged, plain] = parse_index(index(
        desc("tok", features=["cpu:zen4"]), desc("gt", features=["haswell", "nv-compute-capability-9-0"]),
        desc("var", variant="v4"), desc("tagged"), desc("plain"),
    ))  # fmt: skip
    assert base_label(tok) == "zen4"
    assert base_label(gpu_tok) == "haswell+sm90"
    assert base_label(var) == "x86_64_v4"
    assert base_label(tagged, ["preferred"]) == "preferred"
    assert base_label(plain) == "linux/amd64"


def test_equal_labels_get_the_digest_then_the_position():
    out = labels(desc("a", target="zen4"), desc("b", target="zen4"), desc("c", target="zen3"))
    assert out == [f"zen4@{digest('a')[7:15]}", f"zen4@{digest('b')[7:15]}", "zen3"]
    doc = index(desc("a", target="zen4"), desc("a", target="zen4"))  # one manifest listed twice
    assert [n.label for n in name_builds(parse_index(doc))] == [
        f"zen4@{digest('a')[7:15]}#0",
        f"zen4@{digest('a')[7:15]}#1",
    ]


def test_an_index_cannot_imitate_a_suffix():
    """A CPU target spelled like a made-unique label ("zen4@XXXXXXXX#0") is
    written with "-": every label stays unique (a hostile index)."""
    short = digest("a")[7:15]
    out = labels(desc("x", target=f"zen4@{short}#0"), desc("a", target="zen4"),
                 desc("a", target="zen4"))  # fmt: skip
    assert out == [f"zen4-{short}-0", f"zen4@{short}#1", f"zen4@{short}#2"]
    assert len(set(out)) == 3


def test_a_bare_target_is_an_alias_only_where_no_label_is_that_target():
    cpu, cuda = name_builds(parse_index(index(
        desc("cpu", target="x86_64_v3"), desc("cuda", target="x86_64_v3", annotations=CUDA))))  # fmt: skip
    assert cpu.label == "x86_64_v3" and "x86_64_v3" not in cuda.aliases
    assert f"x86_64_v3+cuda12.2+sm80,90ptx@{digest('cuda')[7:15]}" in cuda.aliases
    a, b = name_builds(parse_index(index(
        desc("a", target="zen4", annotations={P + "mpi.abi": "mpich"}),
        desc("b", target="zen4", annotations={P + "mpi.abi": "openmpi"}))))  # fmt: skip
    assert "zen4" in a.aliases and "zen4" in b.aliases


def test_select_pins_by_label_rule_and_refuses_an_ambiguous_pin():
    host = synthetic("zen4")
    doc = index(desc("cpu", target="x86_64_v3"), desc("cuda", target="x86_64_v3", annotations=CUDA),
                desc("mpich", target="zen4", annotations={P + "mpi.abi": "mpich"}),
                desc("openmpi", target="zen4", annotations={P + "mpi.abi": "openmpi"}))  # fmt: skip
    candidates = parse_index(doc)
    assert select(candidates, host, policy=Policy(pin="x86_64_v3")).chosen.digest == digest("cpu")
    pinned = select(candidates, host, policy=Policy(pin="x86_64_v3+cuda12.2+sm80,90ptx"))
    assert pinned.outcome is Outcome.REFUSED and pinned.policy_error == ""  # no GPU here
    decision = select(candidates, host, policy=Policy(pin="zen4", source="user"))
    assert decision.outcome is Outcome.REFUSED and decision.chosen is None
    assert (
        decision.reason
        == decision.policy_error
        == (
            'user policy pin "zen4" names 2 builds: zen4+mpich-abi, zen4+openmpi-abi; '
            "pin one label or digest"
        )
    )
    common = select_common(
        candidates, {"a": host, "b": synthetic("zen3")}, policy=Policy(pin="zen4")
    )
    assert common.outcome is Outcome.REFUSED
    assert common.policy_error.startswith('node class a: site policy pin "zen4" names 2 builds')


def test_pin_error_counts_one_digest_once():
    names = frozenset({"zen4"})
    assert (
        Policy(pin="zen4").pin_error([("a", "sha256:1", names), ("a#1", "sha256:1", names)]) is None
    )
    assert Policy(pin="x").pin_error([("a", "sha256:1", names)]) is None
    assert Policy().pin_error([("a", "sha256:1", names), ("b", "sha256:2", names)]) is None


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("Ge ['12.2'] (version)", ">= 12.2"), ("Lt ['5']", "< 5"), ("In ['mpich']", "= mpich"),
        ("In ['8.0', '9.0']", "in 8.0, 9.0"), ("NotIn ['a']", "!= a"), ("NotIn ['a', 'b']", "not in a, b"),
        ("InRegexp ['^gfx9']", "matching /^gfx9/"), ("Exists", "present"), ("DoesNotExist", "absent"),
        ("GeLe ['1', '2'] (version)", "from 1 to 2"), ("GtLt ['1', '2']", "between 1 and 2 (exclusive)"),
        ("IsTrue", "true"), ("IsFalse", "false"), ("Odd [oops", "Odd [oops"),
    ],
)  # fmt: skip
def test_expressions_are_worded_as_people_write_them(expression, words):
    from scoring.explain import human

    assert human(expression) == words


def test_what_the_host_has_for_an_expression():
    from scoring.explain import host_has
    from scoring.rules import ExpressionResult

    def e(value, present=True):
        return ExpressionResult(feature="kernel.version", name="full", expression="Exists",
                                host_value=value, is_match=False, feature_present=present)  # fmt: skip

    assert host_has(e("6.1.0")) == "host has 6.1.0"
    assert host_has(e("")) == "host has it"
    assert host_has(e(None)) == "host lacks it"
    assert host_has(e(None, present=False)) == "host has no kernel.version"
