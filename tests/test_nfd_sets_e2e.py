"""NFD artifacts read exactly as NFD reads them, end to end: the real registry
(Distribution 2.8, tag fallback), ``imagefit explain`` installed next to this
Python, a facts file saved by ``imagefit facts --json``.

- A spec whose first compatibility set cannot be read (``op: Exist``) and
  whose second set fits: the build is chosen by the second set, and explain
  shows the first set's reason. Before, the whole image failed open (exit 0,
  "NFD artifact ...: unknown op" and no decision).
- A set written with an expression that has no ``op`` (NFD's MatchAny).
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.support import oci

BUILDS = [
    {"name": "generic", "platform": {"architecture": "amd64", "os": "linux"}},
    {"name": "tuned", "platform": {"architecture": "amd64", "os": "linux"}},
]

SPEC = b"""\
version: v1alpha1
compatibilities:
- tag: typo
  weight: 20
  rules:
  - name: cpu
    matchFeatures:
    - feature: cpu.model
      matchExpressions: {vendor_id: {op: Exist}}
- tag: any-vendor
  weight: 5
  rules:
  - name: cpu
    matchFeatures:
    - feature: cpu.model
      matchExpressions: {vendor_id: {}}
"""


@pytest.fixture(scope="module")
def image(registry, tmp_path_factory):
    base = tmp_path_factory.mktemp("nfd-sets")
    pushed = oci.build_and_push(registry.host, "nfd/sets", "1", BUILDS, layout_dir=base / "l")
    artifact = oci.push_artifact(
        registry.host, "nfd/sets", oci.subject_descriptor(pushed, "tuned"), SPEC,
        created="2026-01-01T00:00:00Z",
    )  # fmt: skip
    return pushed, artifact


def _explain(imagefit_cmd, tmp_path, ref: str, *args: str):
    facts = tmp_path / "facts.json"
    if not facts.exists():
        done = subprocess.run([*imagefit_cmd, "facts", "--json", "--output", str(facts)],
                              capture_output=True, text=True, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
    env = {"HOME": str(tmp_path), "PATH": os.environ["PATH"], "LANG": "C.UTF-8",
           "IMAGEFIT_SITE_CONFIG": str(tmp_path / "none.toml")}  # fmt: skip
    return subprocess.run(
        [*imagefit_cmd, "explain", ref, "--facts", str(facts), "--tls-verify", "false", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_a_set_that_cannot_be_read_fails_alone_and_match_any_matches(image, imagefit_cmd, tmp_path):
    pushed, artifact = image
    done = _explain(imagefit_cmd, tmp_path, pushed.ref, "--json")
    assert done.returncode == 0, done.stderr
    assert "NFD artifact" not in done.stderr  # no fail-open warning
    doc = json.loads(done.stdout)
    assert doc["outcome"] == "selected", doc["reason"]
    assert doc["chosen"]["digest"] == pushed.manifests["tuned"]
    tuned = next(c for c in doc["candidates"] if c["digest"] == pushed.manifests["tuned"])
    typo, any_vendor = tuned["sets"]
    reason = (
        "compatibilities[0].rules[0].matchFeatures[0].matchExpressions.vendor_id.op: "
        "unknown op 'Exist' (one of In, NotIn, InRegexp, Exists, DoesNotExist, Gt, Ge, Lt, "
        "Le, GtLt, GeLe, IsTrue, IsFalse)"
    )
    assert (typo["tag"], typo["is_match"], typo["error"]) == ("typo", False, reason)
    assert typo["source"] == f"nfd:{artifact}"
    assert (any_vendor["tag"], any_vendor["is_match"], any_vendor["error"]) == (
        "any-vendor", True, "")  # fmt: skip
    (expression,) = any_vendor["rules"][0]["expressions"]
    assert (expression["expression"], expression["is_match"]) == ("MatchAny", True)
    assert tuned["score"]["weight"] == 5  # the fitting set's weight, not the unreadable one's
    # the text shows the reason of the set that could not be read
    text = _explain(imagefit_cmd, tmp_path, pushed.ref, "-v").stdout
    assert f"[{reason}]" in text
