"""shim.wildcard.match is fnmatch.fnmatchcase without importing re."""

from __future__ import annotations

import subprocess
import sys
from fnmatch import fnmatchcase

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shim.wildcard import match

CASES = [
    ("a001", "a*"), ("nid0003", "nid00[0-3]*"), ("nid0004", "nid00[0-3]*"), ("gpu-1", "gpu-?"),
    ("x1", "[!x]*"), ("y1", "[!x]*"), ("", "*"), ("", ""), ("a", ""), ("[", "["), ("a[", "a["),
    ("]", "[]]"), ("-", "[-a]"), ("b", "[a-c]"), ("d", "[a-c]"), ("abc", "a*c"), ("ac", "a*?c"),
    ("aXbYc", "a*b*c"), ("node1.ib", "node?.ib"), ("zen4", "zen*"), ("spr", "hasw*"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "pattern"), CASES)
def test_table(name, pattern):
    assert match(name, pattern) == fnmatchcase(name, pattern)


@settings(max_examples=3000, deadline=None)
@given(st.text("ab-!*?[]z0", max_size=8), st.text("ab-!*?[]z0", max_size=8))
def test_same_as_fnmatchcase(name, pattern):
    assert match(name, pattern) == fnmatchcase(name, pattern)


def test_no_re_for_the_globs_configs_use():
    code = ("import sys; from shim.wildcard import match; "
            "assert match('nid0003', 'nid00[0-3]*') and not match('s1', 'a*') and match('x', '[!a-c]'); "
            "print('re' in sys.modules, 'fnmatch' in sys.modules)")  # fmt: skip
    out = subprocess.run([sys.executable, "-S", "-c", f"import sys; sys.path.insert(0, '.'); {code}"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert out.split() == ["False", "False"]
