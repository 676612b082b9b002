"""shim.hostlist.expand: Slurm's hostlist syntax, as Slurm expands it.

A table of cases (each checked against ``scontrol show hostnames`` when
Slurm's client is installed), malformed and oversized inputs, the hot-path
import, and hypothesis properties: round trips of generated ranges, and
generated hostlists compared with scontrol.
"""

from __future__ import annotations

import ast
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from shim.hostlist import MAX_NAME, expand

REPO = Path(__file__).resolve().parents[1]
ERR = ValueError

# Kinds of case, for the comparison with the installed scontrol:
SAME = "same"  # Slurm gives exactly this (or "Invalid hostlist" where ERR)
SUFFIX = "suffix"  # text after the final ']': Slurm >= 23.02.5; older ones say invalid
UNCLOSED = "unclosed"  # '[' without ']': invalid since Slurm 23.02.0; older ones append ']'
STRICT = "strict"  # Slurm passes it (or silently drops names); expand refuses it

CASES = [
    # (hostlist, expected names or ERR, kind)
    ("", [], SAME),
    ("n1", ["n1"], SAME),
    ("a[001-004,010],b07", ["a001", "a002", "a003", "a004", "a010", "b07"], SAME),
    ("nid[00001-00003]", ["nid00001", "nid00002", "nid00003"], SAME),
    ("node[1-3]-ib", ["node1-ib", "node2-ib", "node3-ib"], SUFFIX),
    ("gpu[1-2].cluster", ["gpu1.cluster", "gpu2.cluster"], SUFFIX),
    ("rack[1-2]-node[01-02]", ["rack1-node01", "rack1-node02", "rack2-node01", "rack2-node02"], SAME),
    ("r[1-2]n[1-2]-ib", ["r1n1-ib", "r1n2-ib", "r2n1-ib", "r2n2-ib"], SUFFIX),
    # three brackets: Slurm varies the middle one slowest
    ("a[1-2]b[1-2]c[1-2]",
     ["a1b1c1", "a1b1c2", "a2b1c1", "a2b1c2", "a1b2c1", "a1b2c2", "a2b2c1", "a2b2c2"], SAME),
    ("x[1-2]y[3]z[4,5]", ["x1y3z4", "x1y3z5", "x2y3z4", "x2y3z5"], SAME),
    ("a[09-11]", ["a09", "a10", "a11"], SAME),
    ("a[9-11]", ["a9", "a10", "a11"], SAME),
    ("a[1-010]", [f"a{i}" for i in range(1, 11)], SAME),  # width is LO's text width
    ("a[001-3]", ["a001", "a002", "a003"], SAME),
    ("a[01-2]", ["a01", "a02"], SAME),
    ("a[1-3,2]", ["a1", "a2", "a3", "a2"], SAME),  # duplicates kept, order kept
    ("a,a", ["a", "a"], SAME),
    ("b2,a1", ["b2", "a1"], SAME),
    ("a[1]", ["a1"], SAME),
    ("a[3-]", ["a3"], SAME),  # "LO-" is LO
    ("[1-2]", ["1", "2"], SAME),
    ("a [1-2]", ["a", "1", "2"], SAME),
    ("a[1-2] b", ["a1", "a2", "b"], SAME),
    ("a[1-2]\tb\nc", ["a1", "a2", "b", "c"], SAME),
    ("a,,b", ["a", "b"], SAME),
    ("a[1-2],", ["a1", "a2"], SAME),
    (" ,a", ["a"], SAME),
    ("x1-2", ["x1-2"], SAME),
    ("r01n[1-2],r1n3", ["r01n1", "r01n2", "r1n3"], SAME),
    ("a[1, 2]", ["a1", "a02"], SAME),  # strtoul reads " 2"; the width counts the blank
    ("a[ 1-3]", ["a01", "a02", "a03"], SAME),
    ("a[+1-3]", ["a01", "a02", "a03"], SAME),
    ("a[1a-3]", ["a01", "a02", "a03"], SAME),  # Slurm never looks past LO's digits
    ("a99999999999999999999", ["a18446744073709551615"], SAME),  # strtoul saturates
    ("a[99999999999999999999]", ["a18446744073709551615"], SAME),
    ("a[0- -0]", ["a0"], SAME),
    ("a[1-65536]", [f"a{i}" for i in range(1, 65537)], SAME),
    ("node-[1-2]", ["node-1", "node-2"], SAME),
    ("c[0-1]-[2-3]", ["c0-2", "c0-3", "c1-2", "c1-3"], SAME),
    # malformed: Slurm says "Invalid hostlist" too
    ("a[3-1]", ERR, SAME),
    ("a[x-y]", ERR, SAME),
    ("a[1x2]", ERR, SAME),
    ("a[]", ERR, SAME),
    ("a[1,,3]", ERR, SAME),
    ("a[1,]", ERR, SAME),
    ("a[-3]", ERR, SAME),
    ("a[1--3]", ERR, SAME),
    ("a[1-3a]", ERR, SAME),
    ("a[1 ]", ERR, SAME),
    ("a[0-99999999999]", ERR, SAME),
    ("a[1-65537]", ERR, SAME),
    ("a[x]b[1-2]", ERR, SAME),
    ("a[1-70000]b[1]", ERR, SAME),  # MAX_PREFIX_CNT
    ("a[1-2]b[1-2],c[1-2]d", ["a1b1", "a1b2", "a2b1", "a2b2", "c1d", "c2d"], SUFFIX),
    # '[' without ']'
    ("a[", ERR, UNCLOSED),
    ("a[1-2", ERR, UNCLOSED),
    ("[", ERR, UNCLOSED),
    # Slurm is lenient, expand refuses
    ("a]", ERR, STRICT),  # Slurm: the name "a]"
    ("a[[1-2]]", ERR, STRICT),  # Slurm >= 23.02.5: "a[1]", "a[2]"
    ("a[1-2[3-4]", ERR, STRICT),  # Slurm: "a[1-23", "a[1-24"
    ("a[1-2]]", ERR, STRICT),
    (",", ERR, STRICT),  # Slurm: no names
    (",,, ,", ERR, STRICT),
    ("a[x]b[1-2]c[1-2]", ERR, STRICT),  # Slurm: no names, no error
    ("a[0- -1]", ERR, STRICT),  # Slurm: the range size wraps to 0, no names
]  # fmt: skip


def _id(case) -> str:
    text = case[0] if len(case[0]) <= 30 else case[0][:27] + "..."
    return repr(text)


@pytest.mark.parametrize(("hostlist", "expected", "kind"), CASES, ids=map(_id, CASES))
def test_expand(hostlist, expected, kind):
    if expected is ERR:
        with pytest.raises(ValueError) as info:
            expand(hostlist)
        assert "\n" not in str(info.value) and len(str(info.value)) < 160
    else:
        assert expand(hostlist) == expected


def test_table_is_broad():
    assert len(CASES) >= 30
    assert sum(1 for c in CASES if c[1] is ERR) >= 15
    assert {SAME, SUFFIX, UNCLOSED, STRICT} == {c[2] for c in CASES}


# -- malformed, bounded -------------------------------------------------------


@pytest.mark.parametrize(
    "hostlist",
    ["a[", "a]", "a[3-1]", "a[1-2", "a[x-y]", "a[[1-2]]", "a[1-[2]]", ",", ",,,", "a\0b",
     "a[0-99999999999]", "a[1-60000]b[1-60000]", "x" * (MAX_NAME + 1),
     "a[" + "0" * 300 + "-1]", "a[" * 100_000, "a[1]" * 50_000, ",".join(["a"] * 70_000),
     "[" + ",".join(["1"] * (256 * 1024)) + "]"],
    ids=lambda h: repr(h[:20]),
)  # fmt: skip
def test_malformed_or_oversized_raises_one_line_quickly(hostlist):
    started = time.monotonic()
    with pytest.raises(ValueError) as info:
        expand(hostlist)
    assert time.monotonic() - started < 5
    message = str(info.value)
    assert message and "\n" not in message and len(message) < 160


def test_limit_is_exact():
    names = expand("a[1-10]b[1-3],c")
    assert len(names) == 31
    assert expand("a[1-10]b[1-3],c", limit=31) == names
    with pytest.raises(ValueError, match="more than 30"):
        expand("a[1-10]b[1-3],c", limit=30)
    with pytest.raises(ValueError):
        expand("a", limit=0)
    assert expand("", limit=0) == []


def test_large_job_list_is_fast():
    hostlist = ",".join(f"r{r:02d}n[001-512]" for r in range(100))  # 51200 nodes
    started = time.monotonic()
    names = expand(hostlist)
    assert time.monotonic() - started < 5
    assert len(names) == 51200 and names[0] == "r00n001" and names[-1] == "r99n512"


def test_not_a_string():
    with pytest.raises(TypeError):
        expand(None)  # type: ignore[arg-type]


def test_import_is_light():
    """The shim's hot path: importing hostlist loads nothing but itself."""
    code = (
        "import sys; before = set(sys.modules); import shim.hostlist; "
        "print(sorted(set(sys.modules) - before))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    loaded = set(ast.literal_eval(out.strip()))
    # __future__ and the built-in itertools cost nothing (an editable install preloads them)
    assert loaded - {"__future__", "itertools"} <= {"shim", "shim.hostlist"}, loaded
    assert "shim.hostlist" in loaded
    source = (REPO / "shim" / "hostlist.py").read_text()
    assert "import re" not in source


# -- hypothesis: round trips of generated ranges ------------------------------

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

prefixes = st.text(alphabet="abcnodergpu-._", min_size=0, max_size=6)
suffixes = st.text(alphabet="abc-._ib", min_size=1, max_size=4)


@st.composite
def ranges(draw):
    """(text of one bracket item, the numbers it names, its width)."""
    lo = draw(st.integers(0, 2000))
    hi = draw(st.integers(lo, lo + 30))
    width = draw(st.integers(1, 6))
    lo_text = f"{lo:0{width}d}"
    single = draw(st.booleans())
    if single:
        return lo_text, [lo], len(lo_text)
    hi_text = f"{hi:0{draw(st.integers(1, 6))}d}"  # HI's padding does not matter
    return f"{lo_text}-{hi_text}", list(range(lo, hi + 1)), len(lo_text)


@st.composite
def brackets(draw):
    items = draw(st.lists(ranges(), min_size=1, max_size=4))
    text = "[" + ",".join(t for t, _, _ in items) + "]"
    values = [f"{v:0{w}d}" for _, vs, w in items for v in vs]
    return text, values


@SETTINGS
@given(prefix=prefixes, bracket=brackets())
def test_round_trip_one_bracket(prefix, bracket):
    text, values = bracket
    assert expand(prefix + text) == [prefix + v for v in values]


@SETTINGS
@given(prefix=prefixes, bracket=brackets(), suffix=suffixes)
def test_round_trip_suffix(prefix, bracket, suffix):
    text, values = bracket
    assert expand(prefix + text + suffix) == [prefix + v + suffix for v in values]


@SETTINGS
@given(a=prefixes, first=brackets(), b=prefixes, second=brackets())
def test_round_trip_two_brackets(a, first, b, second):
    (t1, v1), (t2, v2) = first, second
    assume(len(v1) * len(v2) <= 5000)
    assert expand(f"{a}{t1}{b}{t2}") == [a + x + b + y for x in v1 for y in v2]


@SETTINGS
@given(
    tokens=st.lists(st.tuples(prefixes, brackets()), min_size=1, max_size=5),
    seps=st.sampled_from([",", " ", ",,", ", ", "\t", "\n"]),
)
def test_concatenation_and_plain_names(tokens, seps):
    """A list is the concatenation of its parts; the expansion of an expansion
    is itself (plain names stand for themselves)."""
    texts = [p + t for p, (t, _) in tokens]
    names = expand(seps.join(texts))
    assert names == [n for text in texts for n in expand(text)]
    assert expand(",".join(names)) == names
    assert expand(" ".join(names), limit=len(names)) == names


# -- the installed Slurm, where there is one ------------------------------------

SCONTROL = shutil.which("scontrol")
needs_scontrol = pytest.mark.skipif(
    SCONTROL is None, reason="scontrol (slurm-client) not installed"
)


@functools.cache
def _slurm_env() -> dict[str, str]:
    """A one-line slurm.conf: 'show hostnames' needs a configuration, not a
    controller (a site's real one would do, but the tests must not reach it)."""
    conf = Path(tempfile.mkdtemp(prefix="imagefit-slurm-")) / "slurm.conf"
    conf.write_text("ClusterName=imagefit-test\nSlurmctldHost=localhost\n")
    return {**os.environ, "SLURM_CONF": str(conf)}


@functools.cache
def _slurm_version() -> tuple[int, ...]:
    done = subprocess.run(
        [SCONTROL, "--version"], capture_output=True, text=True, env=_slurm_env(), timeout=30
    )
    word = (done.stdout.split() or ["0"])[-1]  # "slurm 23.11.4", "slurm-wlm 22.05.8"
    return tuple(int("".join(c for c in p if c.isdigit()) or 0) for p in word.split(".")[:3])


def _scontrol(hostlist: str) -> tuple[list[str] | type[ValueError], bool]:
    """scontrol's expansion (a list of names, or ERR where it says invalid),
    and whether it logged an error."""
    done = subprocess.run(
        [SCONTROL, "--", "show", "hostnames", hostlist],
        capture_output=True, text=True, env=_slurm_env(), timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    if "Invalid hostlist" in done.stderr:
        return ERR, True
    return done.stdout.splitlines(), "error" in done.stderr


def scontrol(hostlist: str):
    return _scontrol(hostlist)[0]


@needs_scontrol
@pytest.mark.parametrize(("hostlist", "expected", "kind"), CASES, ids=map(_id, CASES))
def test_same_as_scontrol(hostlist, expected, kind):
    slurm = scontrol(hostlist)
    version = _slurm_version()
    if kind == SAME:
        assert slurm == expected
    elif kind == SUFFIX:
        assert slurm == (expected if version >= (23, 2, 5) else ERR)
    elif kind == UNCLOSED:
        if version >= (23, 2, 0):
            assert slurm is ERR
        else:  # older Slurm appends the missing ']' (or gives an empty name)
            assert slurm is not ERR and any("]" in n or not n for n in slurm)
    else:  # STRICT: Slurm gives names with brackets, or nothing at all
        assert expected is ERR
        assert (
            slurm is ERR
            and version < (23, 2, 5)
            or slurm == []
            or any("[" in n or "]" in n for n in slurm)
        )


@needs_scontrol
def test_a_list_slurm_expands_past_the_limit_is_refused():
    """Slurm expands ``a[0-6][0-099][0-099]`` to 70,000 names; ``expand``
    refuses past its limit (65,536 by default) in one line (found by the
    generated-list test below)."""
    slurm, _ = _scontrol("a[0-6][0-099][0-099]")
    assert len(slurm) == 70000
    with pytest.raises(ValueError, match="names more than 65536 nodes"):
        expand("a[0-6][0-099][0-099]")
    assert expand("a[0-6][0-099][0-099]", limit=70000) == slurm


@st.composite
def slurm_lists(draw, suffix: bool):
    """Hostlists in the syntax, with some of Slurm's odd corners, none with a
    number past 2**64-1 (Slurm loops forever on that one in an earlier bracket)."""
    number = st.one_of(
        st.integers(0, 40).map(str),
        st.sampled_from(["007", "00", "099", " 1", "+2", "1a", "", "x", "-1", " -0"]),
    )
    item = st.one_of(number, st.tuples(number, number).map("-".join), number.map(lambda n: n + "-"))
    bracket = st.lists(item, min_size=1, max_size=3).map(lambda xs: "[" + ",".join(xs) + "]")
    after = st.sampled_from(["", "-n", "b", "0", ".x"] if suffix else [""])
    words = st.sampled_from(["", "-n", "b", "0"])
    tokens = []
    for _ in range(draw(st.integers(1, 3))):
        text = draw(st.sampled_from(["a", "n", "", "r1", "x-", "b0"]))
        for bracket_text, word in draw(st.lists(st.tuples(bracket, words), max_size=3)):
            text += bracket_text + word
        if "]" in text:  # what follows the final bracket is a suffix
            text = text[: text.rindex("]") + 1] + draw(after)
        tokens.append(text)
    return draw(st.sampled_from([",", " ", ", ", "\t"])).join(tokens)


@needs_scontrol
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_generated_lists_same_as_scontrol(data):
    hostlist = data.draw(slurm_lists(suffix=_slurm_version() >= (23, 2, 5)))
    try:
        mine = expand(hostlist)
    except ValueError:
        mine = ERR
    slurm, complained = _scontrol(hostlist)
    if mine is ERR and slurm is not ERR:
        # the documented strict cases: Slurm logs the bad range and drops that
        # token's names (a malformed bracket left of the final two), the list
        # is blanks and commas only, or it names more than expand's limit
        # (a[0-6][0-099][0-099]: 70,000 names)
        assert complained or (slurm == [] and not hostlist.strip(", \t")) or len(slurm) > 65536
    else:
        assert mine == slurm
