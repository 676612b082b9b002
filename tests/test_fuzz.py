"""Fuzz tests: bad input never raises anything but the documented one-line error.

Every reader of outside input is fed generated garbage and near-valid documents:

1. image index JSON (``scoring.parse_index``), and what it accepts chosen for
   real hosts (``scoring.select``);
2. descriptor annotations (``scoring.vocabulary.compile_annotations``), and
   what compiles evaluated (``scoring.rules.evaluate_set``);
3. NFD image-compatibility specs (``scoring.rules.parse_nfd_spec``), and the
   spec layer's bytes (``shim.artifacts.decode_spec``);
4. config files (``shim.config.load``);
5. runtime command lines (``shim.argv.<runtime>.parse``), planned by
   ``shim.intercept.plan`` with a fake resolver;
6. decision cache entries (``shim.decisions.Entry.loads``);
7. whole registry responses: an index (valid-ish or hostile: nested deep,
   numbers of thousands of digits, control characters, hundreds of builds,
   wrong types, cut short, a lying digest) and NFD artifacts found by the
   referrers tag (hostile spec layers, manifests and listings), served by
   a malicious registry on loopback (``tests.support.hostile``) and resolved
   by ``shim.intercept.plan`` as the shim does: a Plan or a one-line
   ShimError (a Refusal: at most 13 lines), nothing with a control character.

Modes (examples per test, from ``IMAGEFIT_FUZZ_EXAMPLES``):

    python -m pytest tests/test_fuzz.py                                # CI: 200
    IMAGEFIT_FUZZ_EXAMPLES=10000 python -m pytest tests/test_fuzz.py   # nightly

A failure prints the shrunk input (hypothesis); the example database
(``.hypothesis/``) replays it first on the next run.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import tempfile
import tomllib
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path

import archspec
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

import hostfacts
import hostfacts.nfd
import scoring
import shim.config
import shim.resolve
from hostfacts.model import (
    GpuFacts,
    InterconnectFacts,
    MpiFacts,
    NvidiaDevice,
    NvidiaFacts,
    Probe,
    SystemFacts,
)
from scoring import rules, vocabulary
from shim import artifacts, decisions
from shim import personality as personalities
from shim.config import Settings
from shim.errors import ArgvError, ConfigError, Refusal, RegistryError, ShimError
from shim.intercept import plan

EXAMPLES = int(os.environ.get("IMAGEFIT_FUZZ_EXAMPLES") or 200)

#: deadline=None: the first example of a test pays for lazy imports (pydantic
#: models, archspec, yaml) and a loaded CI machine is slow; a deadline would
#: report timing, not bugs. No health check is suppressed: deep nesting is
#: built after the draw (:func:`deep`), so generation stays small.
FUZZ = settings(max_examples=EXAMPLES, deadline=None)

DUMPS = Path(archspec.__file__).parent / "json" / "tests" / "targets"
HEX = "0123456789abcdef"


def assert_one_line(exc: BaseException) -> None:
    """The documented error shape: a non-empty message on one line."""
    text = str(exc)
    assert text.strip(), f"{type(exc).__name__} with an empty message"
    assert "\n" not in text and "\r" not in text, f"{type(exc).__name__} not one line: {text!r}"


# --------------------------------------------------------------------- hosts


@functools.cache
def zen4() -> hostfacts.HostFacts:
    return hostfacts.facts_from_cpuinfo(DUMPS / "linux-rocky8.5-zen4", "x86_64")


@functools.cache
def gpu_host() -> hostfacts.HostFacts:
    """A host with every fact the rules can ask about: GPUs, MPI, kernel,
    glibc, a fabric (more of the evaluator runs than on a bare CPU)."""
    ok = Probe(status="ok")
    devices = tuple(
        NvidiaDevice(index=i, name="NVIDIA Fake", compute_capability=cc, memory_mib=81559)
        for i, cc in enumerate(("9.0", "8.0"))
    )
    base = hostfacts.facts_from_cpuinfo(DUMPS / "linux-rhel7-skylake_avx512", "x86_64")
    return base.model_copy(
        update={
            "gpu": GpuFacts(
                nvidia=NvidiaFacts(
                    probe=ok, driver_version="550.54.15", cuda_driver_version="12.4",
                    devices=devices,
                )
            ),
            "mpi": MpiFacts(probe=ok, implementation="mpich", version="4.1.2", abi="mpich"),
            "system": SystemFacts(
                probe=ok, kernel_release="6.1.0-18-amd64", kernel_version=(6, 1, 0),
                libc="glibc", glibc_version="2.36",
            ),
            "interconnect": InterconnectFacts(probe=ok, fabrics=("infiniband",)),
        }
    )  # fmt: skip


HOSTS = (zen4, gpu_host)


@functools.cache
def host_features(which: int) -> dict:
    return hostfacts.nfd.features(HOSTS[which]())


hosts = st.integers(min_value=0, max_value=len(HOSTS) - 1)


# ------------------------------------------------------------ shared pieces


def mostly(good: st.SearchStrategy, bad: st.SearchStrategy, odds: int = 40) -> st.SearchStrategy:
    """`bad` once in `odds` draws, else `good`: a document of many fields is
    then often valid up to one broken field, so parsing gets deep."""
    return st.integers(1, odds).flatmap(lambda i: bad if i == 1 else good)


HUGE_INTS = st.sampled_from([2**31, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30, 10**400, -1])
short_text = st.text(max_size=12)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | HUGE_INTS
    | st.floats()
    | short_text
    | st.sampled_from(["", " ", "\n", "\x00", "sha256:", "v1alpha1", "2", "\u2028", "é"])
)


def json_like(keys: st.SearchStrategy, leaves: st.SearchStrategy = scalars, size: int = 20):
    return st.recursive(
        leaves,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5)
        ),
        max_leaves=size,
    )


def deep(value: object, depth: int, kind: str) -> object:
    """`value` nested `depth` levels in lists or in {"a": ...} mappings."""
    for _ in range(depth):
        value = [value] if kind == "list" else {"a": value}
    return value


# ======================================================== 1. image index JSON

INDEX_KEYS = [
    "schemaVersion", "mediaType", "manifests", "digest", "size", "platform", "annotations",
    "architecture", "os", "variant", "os.version", "os.features", "features", "artifactType",
    "subject", "urls", "data", "line\nbreak",
]  # fmt: skip
MEDIA_TYPES = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.empty.v1+json",
    "text/plain",
]
index_keys = st.sampled_from(INDEX_KEYS) | short_text
garbage = json_like(index_keys)

digests = st.builds(lambda h: "sha256:" + h, st.text(HEX, min_size=64, max_size=64))
bad_digests = (
    st.builds(lambda h: "sha256:" + h, st.text(HEX + "ABCDEFg\n", max_size=70))
    | st.builds(lambda h: "sha512:" + h, st.text(HEX, min_size=128, max_size=128))
    | short_text
)
ARCHES = ["amd64", "arm64", "x86_64", "aarch64", "ppc64le", "riscv64", "386", "arm", "s390x", ""]
VARIANTS = ["v1", "v2", "v3", "v4", "v5", "v8", "v8.0", "v8.2", "v9", "v9.0", "v9.5", "v7", "v10"]
OSES = ["linux", "windows", "darwin", "", "Linux"]
TOKENS = ["cpu:haswell", "zen2", "neoverse_n1", "nvidia-535-0", "nv-compute-capability-9-0",
          "x86_64_v3", "sse4.2", "avx512f", "gfx90a", "::", ""]  # fmt: skip


def _flat_list(values: list[str]) -> st.SearchStrategy:
    return st.lists(st.sampled_from(values) | short_text, max_size=4).map(",".join)


CPU_TARGETS = ["zen4", "zen3", "x86_64_v3", "skylake_avx512", "neoverse_v2", "a64fx", "ZEN4", "nosuch",
               "x86_64", "power9le", " zen2 "]  # fmt: skip
#: Realistic values per annotation key (mixed with arbitrary text).
VOCAB_VALUES: dict[str, st.SearchStrategy] = {
    vocabulary.CPU_TARGET: st.sampled_from(CPU_TARGETS),
    vocabulary.CPU_TARGET_COMPSPEC: st.sampled_from(["zen4", "haswell", "x86_64_v2", "m1"]),
    vocabulary.CPU_FEATURES: _flat_list(
        ["avx2", "fma", "AVX512F", "avx512f", "asimd", "sve", "sse4_2", "sse4.2", "AVX10"]
    ),
    vocabulary.GPU_VENDOR: st.sampled_from(["nvidia", "amd", "none", "NVIDIA", "intel", ""]),
    vocabulary.CUDA_VERSION: st.sampled_from([">=12.2", "12.0", ">=11,<13", "==12.4", "v12", "x"]),
    vocabulary.COMPUTE_CAPABILITIES: _flat_list(["8.0", "9.0", "7.0+", "9.0a", "10", "8.6+"]),
    vocabulary.AMD_GFX: _flat_list(["gfx90a", "gfx942", "gfx1100"]),
    vocabulary.MPI_ABI: _flat_list(["mpich", "openmpi", "mpi-abi", "MPICH"]),
    vocabulary.MPI_IMPLEMENTATION: _flat_list(["mpich", "openmpi", "craympich", "intelmpi"]),
    vocabulary.MPI_VERSION: st.sampled_from([">=4.1,<5", ">=4", "4.1.2", "<=3", ">v4", "=="]),
    vocabulary.KERNEL_VERSION: st.sampled_from([">=5.14", "6.1.0-18-amd64", ">=4.18,<7", ">"]),
    vocabulary.GLIBC_VERSION: st.sampled_from([">=2.28", ">=2.28,<2.40", "2.36", ",", ">=2.x"]),
    vocabulary.FABRIC: _flat_list(
        ["verbs", "cxi", "efa", "opa", "tcp", "infiniband", "roce", "ib"]
    ),
    vocabulary.CONTAINER_KIND: st.sampled_from(["login", "application", "LOGIN", "other"]),
    vocabulary.WEIGHT: st.sampled_from(["0", "10", "-3", " 7 ", "1_000", "x", "1e3", "9" * 5000])
    | st.integers().map(str),
}
ANNOTATION_KEYS = sorted(VOCAB_VALUES)
assert set(ANNOTATION_KEYS) == vocabulary.REQUIREMENT_KEYS | {vocabulary.CONTAINER_KIND}

annotation_values = st.sampled_from(ANNOTATION_KEYS).flatmap(
    lambda key: st.tuples(st.just(key), st.one_of(VOCAB_VALUES[key], VOCAB_VALUES[key], st.text()))
)
annotations = st.builds(
    lambda pairs, extra: {**extra, **dict(pairs)},
    st.lists(annotation_values, max_size=6),
    st.dictionaries(
        st.sampled_from(["org.opencontainers.image.title", "org.supercontainers.x", "a\nb"])
        | short_text,
        short_text,
        max_size=2,
    ),
)

platforms = st.fixed_dictionaries(
    {"architecture": mostly(st.just("amd64") | st.sampled_from(ARCHES), scalars),
     "os": mostly(st.just("linux") | st.sampled_from(OSES), scalars)},
    optional={
        "variant": mostly(st.sampled_from(VARIANTS), scalars),
        "os.version": mostly(st.sampled_from(["10.0.17763.1", ""]), scalars),
        "os.features": mostly(st.lists(st.sampled_from(["win32k", "x"]), max_size=2), garbage),
        "features": mostly(
            st.just([]) | st.lists(st.sampled_from(TOKENS) | short_text, max_size=3), garbage
        ),
    },
)  # fmt: skip
descriptors = st.fixed_dictionaries(
    {
        "mediaType": mostly(st.sampled_from(MEDIA_TYPES[:2]), st.sampled_from(MEDIA_TYPES) | scalars),
        "digest": mostly(digests, bad_digests | scalars),
        "size": mostly(st.integers(min_value=0, max_value=2**40), st.integers() | HUGE_INTS | scalars),
        "platform": mostly(platforms, st.none() | garbage, odds=5),
    },
    optional={
        "annotations": mostly(
            st.builds(
                lambda good, odd: {**odd, **good},
                annotations,
                st.dictionaries(st.sampled_from(["a\nb", "x"]) | short_text, scalars, max_size=1)
                | st.just({}),
            ),
            garbage,
        ),
        "artifactType": short_text,
        "urls": garbage,
    },
)  # fmt: skip
indexes = st.fixed_dictionaries(
    {
        "schemaVersion": mostly(st.just(2), scalars),
        "manifests": mostly(st.lists(mostly(descriptors, garbage), max_size=6), garbage),
    },
    optional={
        "mediaType": mostly(st.sampled_from(MEDIA_TYPES[2:4]), st.sampled_from(MEDIA_TYPES) | scalars),
        "annotations": garbage,
        "subject": garbage,
    },
)  # fmt: skip
index_documents = mostly(
    indexes,
    garbage | st.builds(deep, garbage, st.integers(0, 3000), st.sampled_from(["list", "dict"])),
    odds=8,
)


@FUZZ
@given(document=index_documents, which=hosts)
def test_index_documents(document, which):
    try:
        candidates = scoring.parse_index(document)
    except scoring.InvalidIndexError as exc:
        assert isinstance(exc, ValueError)
        assert_one_line(exc)
        event("index: invalid")
        return
    assert isinstance(candidates, list)
    assert [c.position for c in candidates] == list(range(len(candidates)))
    decision = scoring.select(candidates, HOSTS[which]())
    assert decision.outcome in set(scoring.Outcome)
    event(f"index: {len(candidates)} candidates, {decision.outcome.value}")
    if decision.outcome == scoring.Outcome.SELECTED:
        assert decision.chosen in candidates


# =========================================================== 2. annotations


@FUZZ
@given(values=annotations, which=hosts)
def test_annotations(values, which):
    try:
        compiled = vocabulary.compile_annotations(values)
    except vocabulary.InvalidAnnotation as exc:
        assert_one_line(exc)
        event("annotations: invalid")
        return
    assert compiled is None or isinstance(compiled, rules.CompatibilitySet)
    vocabulary.requires_gpu(values)
    vocabulary.names_mpi(values)
    if compiled is not None:
        result = rules.evaluate_set(compiled, host_features(which))
        assert isinstance(result.is_match, bool)
        event(f"annotations: {len(compiled.rules)} rules, match={result.is_match}")


# ============================================================ 3. NFD specs

FEATURES = [
    "cpu.cpuid", "cpu.model", "archspec.compatible", "archspec.cpu", "kernel.version",
    "kernel.loadedmodule", "libc.version", "gpu.nvidia", "gpu.nvidia.device", "gpu.amd.device",
    "mpi.library", "network.fabric", "pci.device", "system.osrelease", "rule.matched", "nosuch",
    "cpu", "",
]  # fmt: skip
ELEMENTS = [
    "AVX512F", "AVX2", "SVE", "vendor_id", "family", "id", "target", "full", "major", "minor",
    "version", "abi", "implementation", "compute_capability", "count", "cuda_driver_version",
    "gfx_target", "infiniband", "zen4", "x86_64_v3", "ID", "VERSION_ID", "class", "vendor", "a\nb",
]  # fmt: skip
OPS = list(rules.Op.__args__) + ["in", "Equals", ""]
REGEXES = st.text("()[]{}*+?|^$\\.:-aZ09pP=<>!#&", max_size=10) | st.sampled_from(
    [r"^zen[0-9]$", r"[[:alpha:]]+", r"\pL", r"(?i)AMD", r"(?P<x>a)", r"a{2,}", r"\z", r"[", r"(?<=a)b",
     r"\Q.*\E", r"x**", r"[[:word:]]", r"\C"]
)  # fmt: skip
spec_values = st.one_of(
    st.lists(st.sampled_from(["5.14", "9.0", "0", "-1", "AMD", "zen4", "12.4", "v1", ""]) | short_text,
             max_size=3),
    st.lists(REGEXES, max_size=2),
    st.lists(scalars, max_size=2),
    scalars,
)  # fmt: skip
spec_keys = (
    st.sampled_from(
        ["version", "compatibilities", "rules", "weight", "tag", "description", "name", "vars",
         "varsTemplate", "matchFeatures", "matchAny", "feature", "matchExpressions", "matchName",
         "op", "value", "type"]
    )
    | short_text
)  # fmt: skip
spec_garbage = json_like(spec_keys)


def _optional(entries: dict) -> st.SearchStrategy:
    return st.fixed_dictionaries({}, optional=entries)


expressions = st.fixed_dictionaries(
    {"op": mostly(st.sampled_from(OPS), scalars)},
    optional={"value": spec_values, "type": mostly(st.sampled_from(["version", ""]), scalars)},
)  # fmt: skip
terms = st.fixed_dictionaries(
    {"feature": mostly(st.sampled_from(FEATURES), scalars)},
    optional={
        "matchExpressions": mostly(
            st.dictionaries(st.sampled_from(ELEMENTS) | short_text, mostly(expressions, spec_garbage),
                            max_size=3),
            spec_garbage,
        ),
        "matchName": mostly(expressions, spec_garbage),
    },
)  # fmt: skip
term_lists = mostly(st.lists(mostly(terms, spec_garbage), max_size=3), spec_garbage)
nfd_rules = _optional(
    {
        "name": mostly(short_text, scalars),
        "vars": mostly(
            st.dictionaries(st.sampled_from(["v", "a\nb", ""]) | short_text, short_text | scalars, max_size=2),
            spec_garbage,
        ),
        "varsTemplate": mostly(short_text, scalars),
        "matchFeatures": term_lists,
        "matchAny": mostly(
            st.lists(mostly(st.fixed_dictionaries({"matchFeatures": term_lists}), spec_garbage),
                     max_size=3),
            spec_garbage,
        ),
    }
)  # fmt: skip
compatibilities = _optional(
    {
        "rules": mostly(st.lists(mostly(nfd_rules, spec_garbage), max_size=3), spec_garbage),
        "weight": mostly(st.integers(-(2**63), 2**63 - 1), st.integers() | HUGE_INTS | scalars),
        "tag": mostly(short_text, scalars),
        "description": mostly(st.text(), scalars),
    }
)
specs = st.fixed_dictionaries(
    {"version": mostly(st.just("v1alpha1"), scalars)},
    optional={
        "compatibilities": mostly(st.lists(mostly(compatibilities, spec_garbage), max_size=3),
                                  spec_garbage),
    },
)  # fmt: skip
spec_documents = mostly(
    specs,
    spec_garbage
    | st.builds(
        lambda doc, depth, kind: {
            "version": "v1alpha1",
            "compatibilities": [deep(doc, depth, kind)],
        },
        spec_garbage,
        st.integers(0, 3000),
        st.sampled_from(["list", "dict"]),
    ),
    odds=4,
)


def _parse_and_evaluate(document, which: int) -> None:
    try:
        sets = rules.parse_nfd_spec(document, "fuzz")
    except ValueError as exc:
        assert_one_line(exc)
        event("spec: invalid")
        return
    event(f"spec: {min(len(sets), 2)}+ sets")
    assert isinstance(sets, tuple)
    for cs in sets:
        assert isinstance(cs, rules.CompatibilitySet) and cs.source == "fuzz"
        result = rules.evaluate_set(cs, host_features(which))
        assert isinstance(result.is_match, bool)


@FUZZ
@given(document=spec_documents, which=hosts)
def test_nfd_specs(document, which):
    _parse_and_evaluate(document, which)


YAML_PIECES = [
    "version: v1alpha1\n", "compatibilities:\n", "- rules:\n", "  - name: x\n", "    matchFeatures:\n",
    "    - feature: cpu.cpuid\n", "      matchExpressions:\n", "        AVX512F: {op: Exists}\n",
    "        full: {op: Gt, value: [5.10], type: version}\n", "  weight: 5\n", "  tag: zen4\n",
    "&a ", "*a", "<<: *a\n", "!!python/object:os.system ", "!!binary ", "? ", ": ", "- ", "[", "]", "{",
    "}", ",", "'", '"', "|", ">", "#", "---\n", "...\n", "%YAML 1.1\n", "%TAG ! tag:x:\n", "\t", "\n", "  ",
    "2024-01-01T00:00:00Z", "0x1F", ".inf", ".nan", "~", "null", "yes", "1e400", "\ufeff", "\x00",
]  # fmt: skip
yaml_texts = st.lists(st.sampled_from(YAML_PIECES) | short_text, max_size=30).map("".join)
spec_bytes = st.one_of(
    st.binary(max_size=200),
    yaml_texts.map(lambda t: t.encode("utf-8", "surrogatepass")),
    mostly(specs, spec_garbage, odds=4).map(lambda d: json.dumps(d).encode()),  # deep: below
    st.builds(
        lambda opener, n: (b"a: " if opener[0] != b"{"[0] else b"") + opener * n,
        st.sampled_from([b"[", b"{", b"- ", b"{a: ", b"? ", b"[{"]),
        st.integers(0, 100_000),
    ),
)
spec_media_types = st.sampled_from(
    [artifacts.NFD_SPEC_YAML, artifacts.NFD_SPEC_JSON, "application/yaml", "x+json", ""]
)


@FUZZ
@given(data=spec_bytes, media_type=spec_media_types, which=hosts)
def test_spec_layer_bytes(data, media_type, which):
    try:
        document = artifacts.decode_spec(data, media_type)
    except RegistryError as exc:
        assert_one_line(exc)
        event("spec layer: invalid")
        return
    assert isinstance(document, dict)
    _parse_and_evaluate(document, which)


# ========================================================== 4. config files

CONFIG_KEYS = [
    "on_error", "login", "registry_timeout", "insecure_registries", "runtimes", "cpu_targets",
    "nfd_artifacts", "decision_cache_ttl", "decision_cache_dir", "cache_trusted_uids", "audit_log",
    "policy", "image", "pin", "prefer", "avoid", *shim.config.RUNTIMES,
]  # fmt: skip
CONFIG_VALUES = [
    "passthrough", "refuse", "auto", "always", "never", "/usr/bin/podman", "syslog", "relative/path",
    "registry.example.org/apps/*", "nid0*", "zen3", "[", "*",
]  # fmt: skip
TOML_PIECES = [
    *CONFIG_KEYS, *(f'"{v}"' for v in CONFIG_VALUES), " = ", "=", " ", "\n", "\r\n", '"', "'", "[", "]",
    "[[", "]]", "{", "}", ",", ".", "#", "true", "false", "1979-05-27T07:32:00Z", "07:32:00",
    "1979-05-27", "inf", "-inf", "nan", "-0", "0x1f", "0o7", "0b1", "1e400", "1_000", "600.0001", '"""',
    "'''", "\\", "\\u0000", "\\U0010FFFF", "\\ud800", "\x00", "\x7f", "\ufeff", "[runtimes]\n",
    "[cpu_targets]\n", "[[policy]]\n", "[policy]\n", "a.b.c", "9223372036854775808",
]  # fmt: skip
toml_ish = st.lists(st.sampled_from(TOML_PIECES) | short_text, max_size=30).map("".join)
nested_toml = st.builds(
    lambda key, opener, closer, n: f"{key} = {opener * n}1{closer * n}\n",
    st.sampled_from(CONFIG_KEYS),
    st.sampled_from(["[", "{a = "]),
    st.sampled_from(["]", "}"]),
    st.integers(0, 5000),
)

TOML_INT = st.integers(-(2**63), 2**63 - 1)
toml_scalars = st.one_of(
    st.sampled_from(CONFIG_VALUES),
    st.text(),
    TOML_INT,
    st.floats(),
    st.booleans(),
    st.datetimes(timezones=st.none() | st.just(UTC) | st.just(timezone(timedelta(hours=-5)))),
    st.dates(),
    st.times(),
)
toml_keys = st.sampled_from(CONFIG_KEYS) | st.text(max_size=8)
toml_values = st.recursive(
    toml_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(toml_keys, children, max_size=3)
    ),
    max_leaves=12,
)
toml_documents = st.dictionaries(
    toml_keys,
    st.one_of(
        toml_values,
        st.dictionaries(toml_keys, toml_values, max_size=3),  # a [table]
        st.lists(st.dictionaries(toml_keys, toml_values, max_size=3), max_size=3),  # [[tables]]
    ),
    max_size=6,
)

globs = st.text("*?[]!-^/.:az09\\", max_size=10) | st.sampled_from(
    ["nid0*", "*", "[", "[z-a]*", "registry.example.org/apps/*"]
)
good_configs = _optional(
    {
        "on_error": mostly(st.sampled_from(shim.config.ON_ERROR), toml_scalars),
        "login": mostly(st.sampled_from(shim.config.LOGIN), toml_scalars),
        "registry_timeout": mostly(st.floats(0, 700) | st.integers(-1, 700), toml_scalars),
        "insecure_registries": mostly(st.lists(short_text, max_size=3), toml_values),
        "runtimes": mostly(
            st.dictionaries(
                st.sampled_from(shim.config.RUNTIMES),
                st.sampled_from(["/usr/bin/podman", "/opt/x", "podman", ""]),
                max_size=3,
            ),
            toml_values,
        ),
        "cpu_targets": mostly(
            st.dictionaries(globs, st.sampled_from(["zen3", "nosuch", ""]) | short_text, max_size=3),
            toml_values,
        ),
        "nfd_artifacts": mostly(st.booleans(), toml_scalars),
        "decision_cache_ttl": mostly(st.floats(-1, 40 * 86400) | st.integers(-1, 40 * 86400), toml_scalars),
        "decision_cache_dir": mostly(st.sampled_from(["/lustre/imagefit", "relative", ""]), toml_scalars),
        "cache_trusted_uids": mostly(st.lists(TOML_INT, max_size=3), toml_values),
        "audit_log": mostly(st.sampled_from(["syslog", "/var/log/imagefit.jsonl", "x"]), toml_scalars),
        "policy": mostly(
            st.lists(
                st.fixed_dictionaries(
                    {"image": mostly(globs, toml_scalars)},
                    optional={
                        "pin": mostly(short_text, toml_values),
                        "prefer": mostly(st.lists(short_text, max_size=3), toml_values),
                        "avoid": mostly(st.lists(short_text, max_size=3), toml_values),
                    },
                ),
                max_size=3,
            ),
            toml_values,
        ),
    }
)  # fmt: skip


def _toml_string(text: str) -> str:
    out = []
    for c in text:
        if c in '"\\':
            out.append("\\" + c)
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{ord(c):04x}")
        elif 0xD800 <= ord(c) <= 0xDFFF:  # not a Unicode scalar value: TOML cannot hold it
            out.append("\\ufffd")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{_toml_string(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"


def to_toml(document: dict) -> str:
    """`document` as TOML: tables of scalars as ``[table]``, lists of tables
    as ``[[table]]``, everything else inline."""
    head, tail = [], []
    for key, value in document.items():
        name = _toml_string(key)
        if isinstance(value, dict) and value:
            tail.append(f"[{name}]")
            tail += [f"{_toml_string(k)} = {_toml_value(v)}" for k, v in value.items()]
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for table in value:
                tail.append(f"[[{name}]]")
                tail += [f"{_toml_string(k)} = {_toml_value(v)}" for k, v in table.items()]
        else:
            head.append(f"{name} = {_toml_value(value)}")
    return "\n".join(head + tail) + "\n"


config_files = st.one_of(
    good_configs.map(lambda d: ("valid", to_toml(d).encode())),
    good_configs.map(lambda d: ("valid", to_toml(d).encode())),
    toml_documents.map(lambda d: ("valid", to_toml(d).encode())),
    toml_ish.map(lambda t: ("text", t.encode("utf-8", "surrogatepass"))),
    st.binary(max_size=100).map(lambda b: ("bytes", b)),
    nested_toml.map(lambda t: ("text", t.encode())),
)


@FUZZ
@given(config=config_files)
def test_config_files(config):
    kind, data = config
    if kind == "valid":  # the generator's own check: these are TOML
        tomllib.loads(data.decode())
    home = tempfile.mkdtemp(prefix="imagefit-fuzz-")
    try:
        path = os.path.join(home, "site.toml")
        with open(path, "wb") as fh:
            fh.write(data)
        # As root (CI) this is the brief's euid=0: only the site file is read.
        # As a user, the site file is ours and the user file does not exist.
        environ = {
            "IMAGEFIT_SITE_CONFIG": path,
            "HOME": home,
            "XDG_CONFIG_HOME": os.path.join(home, "empty"),
        }
        try:
            loaded = shim.config.load(environ, euid=os.geteuid())
        except ConfigError as exc:
            assert_one_line(exc)
            event(f"config ({kind}): invalid")
            return
        event(f"config ({kind}): loaded")
        assert isinstance(loaded, Settings)
        assert loaded.sources == (path,), loaded.warnings
        # what the shim does with the settings on every command
        loaded.policy_for("docker.io/library/ubuntu")
        loaded.cpu_target_for("nid001234")
        # the parse cache (written above) gives the same answer
        again = shim.config.load(environ, euid=os.geteuid())
        assert repr(again) == repr(loaded)
    finally:
        shutil.rmtree(home, ignore_errors=True)


# ================================================================= 5. argv

RUNTIMES = [
    name
    for name, grammar in (
        ("podman", "podman"),
        ("docker", "docker"),
        ("apptainer", "apptainer"),
        ("singularity", "apptainer"),
        ("sarus", "sarus"),
    )  # fmt: skip
    if (Path(shim.__file__).parent / "argv" / f"{grammar}.py").exists()
]
GRAMMARS = {"podman": "podman", "docker": "docker", "apptainer": "apptainer",
            "singularity": "apptainer", "sarus": "sarus"}  # fmt: skip


@functools.cache
def vocabulary_of(grammar: str) -> tuple[list[str], list[str], list[str], list[str]]:
    """(subcommand words, flag words, bundle letters, environment names) from
    the runtime's option table module."""
    import importlib

    table = importlib.import_module(f"shim.argv.{grammar}_table")
    names: set[str] = set()
    words: set[str] = {"run", "create", "pull", "exec", "shell", "instance", "start", "image",
                       "container", "build", "help", "version", "images", "inspect", "test"}  # fmt: skip
    env: set[str] = set()
    for attr in vars(table).values():
        if isinstance(attr, frozenset) and all(isinstance(v, str) for v in attr):
            names |= attr
        elif isinstance(attr, dict):
            for key in attr:
                if isinstance(key, tuple):
                    words |= set(key)
                elif isinstance(key, str) and key.isupper():
                    env.add(key)
    for prefix in getattr(table, "ENV_PREFIXES", ()):
        env |= {prefix + key for key in getattr(table, "ENV_KEYS", {})}
    env |= {"PODMAN_USERNS", "DOCKER_DEFAULT_PLATFORM", "DOCKER_HOST", "DOCKER_CONTEXT",
            "DOCKER_CONTENT_TRUST", "REGISTRY_AUTH_FILE", "CONTAINER_HOST"}  # fmt: skip
    names |= {"help", "h", "version", "v", "platform", "arch", "variant", "tls-verify", "authfile"}
    flags = sorted({("--" if len(n) > 1 else "-") + n for n in names})
    letters = sorted(n for n in names if len(n) == 1)
    return sorted(words), flags, letters, sorted(env)


IMAGES = [
    "quay.io/hpc/app:1", "ghcr.io/org/tool:2.0", "docker.io/library/ubuntu", "ubuntu", "ubuntu:22.04",
    "registry.example.org:5000/a/b@sha256:" + "a" * 64, "quay.io/hpc/app:1@sha256:" + "b" * 64,
    "docker://quay.io/hpc/app:1", "docker://ubuntu", "oras://ghcr.io/x/y:1", "library://x/y/z",
    "shub://a/b", "docker-archive:/tmp/x.tar", "oci:/dir", "oci-archive:/x.tar", "localhost/x:1",
    "/path/img.sif", "./img.sif", "0123456789ab", "sha256:" + "c" * 64, "UPPER/Case", "a..b/c:d",
    "quay.io/x:" + "t" * 200, "instance://x", "docker-daemon:ubuntu:1", "containers-storage:x",
]  # fmt: skip
VALUES = ["/a:/b", "X=1", "linux/arm64", "linux/amd64/v3", "amd64", "arm64", "false", "true", "0", "",
          "/tmp/auth.json", "keep-id", "name", "-", "--", "="]  # fmt: skip


@functools.cache
def command_lines(grammar: str) -> st.SearchStrategy:
    words, flags, letters, _ = vocabulary_of(grammar)
    flag = st.sampled_from(flags)
    token = st.one_of(
        flag,
        flag,
        st.builds(lambda f, v: f"{f}={v}", flag, st.sampled_from(VALUES) | short_text),
        st.builds(
            lambda ls, tail: "-" + "".join(ls) + tail,
            st.lists(st.sampled_from(letters or ["x"]), min_size=1, max_size=4),
            st.sampled_from(["", "=", "=1", "/a:/b", "X=1"]),
        ),
        st.sampled_from(["--", "-", "=", "--=", "-=", "---x", ""]),
        st.sampled_from(words),
        st.sampled_from(IMAGES),
        st.sampled_from(IMAGES),
        st.sampled_from(VALUES),
        short_text,
    )
    tokens = st.lists(token, max_size=10)
    verbs = st.sampled_from(["run", "create", "pull", "exec", "shell", "instance start", "container run",
                             "image pull", "build"])  # fmt: skip
    structured = st.builds(
        lambda before, verb, middle, image, after: [*before, *verb.split(), *middle, image, *after],
        st.lists(token, max_size=2) | st.just([]),
        verbs,
        st.lists(token, max_size=5),
        st.sampled_from(IMAGES),
        st.lists(token, max_size=4),
    )
    return st.one_of(tokens, structured, well_formed(grammar, "run"), well_formed(grammar, "pull"))


def _table_flags(grammar: str, verb: str, kind: str) -> list[str]:
    import importlib

    table = importlib.import_module(f"shim.argv.{grammar}_table")
    names = getattr(table, f"{verb.upper()}_{kind}", frozenset())
    return sorted(("--" if len(n) > 1 else "-") + n for n in names)


@functools.cache
def well_formed(grammar: str, verb: str) -> st.SearchStrategy:
    """``VERB [OPTIONS] IMAGE [COMMAND...]`` from the verb's own option table
    (``RUN_VALUE``/``RUN_BOOL``, ``PULL_...``), now and then a stray token."""
    values, bools = _table_flags(grammar, verb, "VALUE"), _table_flags(grammar, verb, "BOOL")
    value = st.sampled_from(VALUES[:12]) | short_text
    option = st.one_of(
        st.sampled_from(bools or ["--help"]).map(lambda f: [f]),
        st.tuples(st.sampled_from(values or ["--help"]), value).map(list),
        st.tuples(st.sampled_from(values or ["--help"]), value).map(lambda fv: ["=".join(fv)]),
    )
    stray = st.sampled_from(["--", "-", "=", "--=", ""]) | st.sampled_from(VALUES) | short_text
    return st.builds(
        lambda options, image, command: [verb, *(w for o in options for w in o), image, *command],
        st.lists(mostly(option, stray.map(lambda t: [t]), odds=10), max_size=5),
        st.sampled_from(IMAGES),
        st.lists(
            st.sampled_from(["sh", "-c", "--", "-it", "x y", "--rm"]) | short_text, max_size=3
        ),
    )


class FakeResolver:
    """Stands in for shim.resolve.fetch and decide: a decision chosen by the example."""

    def __init__(self, outcome: str, kind: str) -> None:
        self.outcome = outcome
        self.kind = kind

    def fetch(self, ref, **kwargs):
        if self.outcome == "error":
            raise RegistryError("registry.example.org: connection refused")
        return shim.resolve.IndexData(ref, "sha256:" + "e" * 64, (), {}, 1)

    def decide(self, data, facts, policy=None, requested_platform=None):
        assert isinstance(facts, hostfacts.HostFacts)
        chosen = None
        if self.outcome == "selected":
            chosen = scoring.Candidate(
                position=0, digest="sha256:" + "d" * 64,
                media_type="application/vnd.oci.image.manifest.v1+json", size=1234,
                annotations={vocabulary.CONTAINER_KIND: self.kind} if self.kind else {},
            )  # fmt: skip
        return scoring.Decision(
            outcome=scoring.Outcome(self.outcome), reason="fake decision", chosen=chosen
        )


@pytest.fixture(scope="module")
def argv_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("argv-home")
    (home / "registries.conf").write_text("")
    (home / "docker-config").mkdir()
    return home


@contextlib.contextmanager
def faked_host(resolver: FakeResolver, home: Path):
    """No registry, no probing: the fake resolver and the zen4 host, an
    unprivileged user on amd64 (as tests/test_argv_podman.py does)."""
    import shim.personality.docker as docker_personality

    real_uname = os.uname()
    fake_uname = type(real_uname)((*real_uname[:4], "x86_64"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(shim.resolve, "fetch", resolver.fetch)
        mp.setattr(shim.resolve, "decide", resolver.decide)
        mp.setattr(hostfacts, "host_facts", lambda environ=None, **kw: zen4())
        mp.setattr(os, "geteuid", lambda: 1000)
        mp.setattr(os, "getegid", lambda: 1000)
        mp.setattr(os, "uname", lambda: fake_uname)
        mp.setattr(docker_personality, "DAEMON_JSON", str(home / "daemon.json"), raising=False)
        yield


@pytest.mark.parametrize("runtime", RUNTIMES)
@FUZZ
@given(data=st.data())
def test_command_lines(runtime, argv_home, data):
    grammar = GRAMMARS[runtime]
    args = data.draw(command_lines(grammar), label="args")
    personality = personalities.get(runtime)
    assert personality is not None
    try:
        inv = personality.parse(list(args))
    except ArgvError as exc:
        assert_one_line(exc)
        event("argv: invalid")
        return
    event(f"argv: verb {inv.verb}, {len(inv.images)} images")
    n = len(args)
    assert list(inv.args) == list(args)
    assert all(0 <= p < n for p in inv.images), inv
    assert list(inv.images) == sorted(set(inv.images)), inv
    assert inv.insert_at is None or 0 <= inv.insert_at <= n, inv
    assert inv.command_at is None or 0 <= inv.command_at <= n, inv
    assert inv.output_at is None or 0 <= inv.output_at < n, inv
    assert inv.command_at is None or all(p < inv.command_at for p in inv.images), inv

    env_names = vocabulary_of(grammar)[3]
    extra_env = data.draw(
        st.dictionaries(
            st.sampled_from(env_names), st.sampled_from(VALUES) | short_text, max_size=3
        ),
        label="environ",
    )
    environ = {
        **{k: v for k, v in extra_env.items() if "\x00" not in k + v},
        "HOME": str(argv_home),
        "CONTAINERS_REGISTRIES_CONF": str(argv_home / "registries.conf"),
        "DOCKER_CONFIG": str(argv_home / "docker-config"),
        "XDG_CONFIG_HOME": str(argv_home / "xdg"),
    }
    config = Settings(
        decision_cache_ttl=0,
        on_error=data.draw(st.sampled_from(shim.config.ON_ERROR), label="on_error"),
        login=data.draw(st.sampled_from(shim.config.LOGIN), label="login"),
    )
    resolver = FakeResolver(
        data.draw(
            st.sampled_from(["selected", "passthrough", "refused", "error"]), label="outcome"
        ),
        data.draw(st.sampled_from(["", "login", "application"]), label="kind"),
    )
    with faked_host(resolver, argv_home):
        try:
            result = plan(personality, inv, config, environ)
        except ShimError as exc:
            if not isinstance(exc, Refusal):  # a refusal lists every build, one per line
                assert_one_line(exc)
            event(f"plan: {type(exc).__name__}")
            return
    event(f"plan: {'rewritten' if result.args != list(args) else 'unchanged'}")
    assert isinstance(result.args, list) and all(isinstance(a, str) for a in result.args)
    assert all(isinstance(b, list) and all(isinstance(a, str) for a in b) for b in result.before)
    if inv.command_at is not None:  # the container's own command is never touched
        tail = list(args[inv.command_at :])
        assert result.args[len(result.args) - len(tail) :] == tail, (args, result.args)


# ================================================== 6. decision cache entries

ENTRY_FIELDS = ["format", "reference", "index_digest", "outcome", "chosen", "kind", "refusal",
                "decided_at", "end"]  # fmt: skip
ENTRY_VALUES = ["2", "1", "quay.io/hpc/app:1", "sha256:" + "a" * 64, "sha256:" + "A" * 64, "selected",
                "passthrough", "refused", "login", "1700000000.5", "nan", "inf", "-1e400", "1_0", "",
                "\\", "\\n", "\\t", "no build fits\\nline 2"]  # fmt: skip
entry_lines = st.builds(
    lambda name, value: f"{name}\t{value}",
    st.sampled_from(ENTRY_FIELDS) | short_text,
    st.sampled_from(ENTRY_VALUES) | st.text(max_size=20),
)
entry_texts = st.one_of(
    st.text(),
    st.lists(entry_lines | short_text, max_size=12).map("\n".join),
    st.builds(
        lambda entry, cut: entry.dumps()[:cut],
        st.builds(
            decisions.Entry,
            st.sampled_from(IMAGES) | st.text(),
            digests,
            st.sampled_from(["selected", "passthrough", "refused", "other"]),
            digests | st.none(),
            st.dictionaries(st.just(decisions.KIND_KEY), st.text(), max_size=1),
            st.text() | st.none(),
            st.floats(allow_nan=False, allow_infinity=False),
        ),
        st.integers(0, 1000),
    ),
)


@FUZZ
@given(text=entry_texts)
def test_decision_entries(text):
    entry = decisions.Entry.loads(text)
    event(f"entry: {'none' if entry is None else entry.outcome}")
    if entry is None:
        return
    assert isinstance(entry, decisions.Entry)
    assert entry.outcome in ("selected", "passthrough", "refused")
    again = decisions.Entry.loads(entry.dumps())  # what it writes back reads the same
    assert again is not None and again.dumps() == entry.dumps()


# ========================================= 7. whole registry responses, resolved

#: Control characters a terminal acts on (C0 but newline, DEL, C1, bidi overrides).
TERMINAL_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _hostile_bytes(body: bytes, how: str, n: int) -> bytes:
    """`body` (a JSON document) made hostile: nested `n` deep inside, a number
    of `n` digits, or cut."""
    if how == "deep" and body.startswith(b"{"):
        return b'{"x":' + b"[" * n + b"]" * n + b"," + body[1:]
    if how == "number":
        return re.sub(rb"\d+", lambda m: m[0] + b"9" * n, body, count=1)
    if how == "cut":
        return body[: max(1, len(body) - n)]
    return body


def _many(document: object, copies: int) -> object:
    """`document` with its first descriptor repeated `copies` more times."""
    if isinstance(document, dict) and isinstance(document.get("manifests"), list):
        if document["manifests"]:
            document = {**document, "manifests": document["manifests"] * (copies + 1)}
    return document


#: Indexes a zen4 host often has a build in (so scoring, NFD sets and the
#: rewrite are reached), with annotations realistic or arbitrary text.
plausible_indexes = st.fixed_dictionaries(
    {
        "schemaVersion": st.just(2),
        "mediaType": st.just(MEDIA_TYPES[2]),
        "manifests": st.lists(
            st.fixed_dictionaries({
                "mediaType": st.just(MEDIA_TYPES[0]),
                "digest": digests,
                "size": st.integers(0, 10**6),
                "platform": mostly(st.just({"architecture": "amd64", "os": "linux"}), platforms, odds=4),
                "annotations": annotations,
            }),
            min_size=1, max_size=5,
        ),
    }
)  # fmt: skip
registry_indexes = st.builds(
    lambda doc, copies, how, n: _hostile_bytes(json.dumps(_many(doc, copies)).encode(), how, n),
    plausible_indexes | indexes,
    mostly(st.just(0), st.integers(1, 300), odds=6),
    mostly(st.just("none"), st.sampled_from(["deep", "number", "cut"]), odds=5),
    st.integers(1, 5000),
)
nfd_layers = st.one_of(
    st.tuples(mostly(specs, spec_garbage, odds=4).map(lambda d: json.dumps(d).encode()),
              st.just(artifacts.NFD_SPEC_JSON)),
    st.tuples(spec_bytes, st.sampled_from([artifacts.NFD_SPEC_YAML, artifacts.NFD_SPEC_JSON])),
)  # fmt: skip
#: None: no artifact; else (spec layer, its media type, a hostile manifest or
#: None, a hostile referrers-tag listing or None)
nfd_attachments = st.none() | st.none() | st.tuples(
    nfd_layers,
    mostly(st.none(), st.binary(max_size=50) | st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n), odds=6),
    mostly(st.none(), st.binary(max_size=50) | st.integers(1, 3000).map(lambda n: b"{}" + b"[" * n), odds=6),
)  # fmt: skip


@pytest.fixture(scope="module")
def hostile_registry():
    from tests.support.hostile import HostileRegistry

    with HostileRegistry() as reg:
        yield reg


@pytest.fixture(scope="module")
def registry_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("registry-home")
    (home / "registries.conf").write_text("")
    return home


@contextlib.contextmanager
def zen4_user(home: Path):
    """The zen4 host (no probing), an unprivileged user on amd64; the registry
    and scoring are the real ones."""
    import shim.personality.docker as docker_personality

    real_uname = os.uname()
    fake_uname = type(real_uname)((*real_uname[:4], "x86_64"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(hostfacts, "host_facts", lambda environ=None, **kw: zen4())
        mp.setattr(os, "geteuid", lambda: 1000)
        mp.setattr(os, "getegid", lambda: 1000)
        mp.setattr(os, "uname", lambda: fake_uname)
        mp.setattr(docker_personality, "DAEMON_JSON", str(home / "daemon.json"), raising=False)
        yield


_REPOSITORIES = iter(range(10**9))


@FUZZ
@given(
    body=registry_indexes,
    media_type=mostly(st.just(MEDIA_TYPES[2]), st.sampled_from(MEDIA_TYPES), odds=8),
    nfd=nfd_attachments,
    lie=mostly(st.just(False), st.just(True), odds=20),
    on_error=st.sampled_from(shim.config.ON_ERROR),
)
def test_registry_responses(hostile_registry, registry_home, body, media_type, nfd, lie, on_error):
    """A whole registry answer (an index, possibly hostile; NFD artifacts found by
    the referrers tag, possibly hostile) resolved for ``podman run`` as the shim
    does (:func:`shim.intercept.plan`: fetch, parse, artifacts, scoring, the
    boundary): a Plan, or a ShimError (a Refusal of at most 13 lines, else one
    line); everything said on stderr is one line per warning, and nothing said
    holds a control character."""
    import io

    from tests.support.hostile import nfd_attachment

    documents = {"1": (body, media_type)}
    if nfd is not None:
        (layer, layer_type), manifest, listing = nfd
        documents.update(nfd_attachment(body, layer, media_type=layer_type, manifest=manifest,
                                        listing=listing))  # fmt: skip
    repository = f"fuzz/r{next(_REPOSITORIES)}"
    announce = "sha256:" + "0" * 64 if lie else None
    ref = hostile_registry.documents(repository, documents, announce=announce) + ":1"
    args = ["run", "--rm", "--tls-verify=false", ref, "id"]
    personality = personalities.get("podman")
    inv = personality.parse(args)
    environ = {"HOME": str(registry_home), "XDG_CACHE_HOME": str(registry_home / "cache"),
               "XDG_CONFIG_HOME": str(registry_home / "xdg"),
               "CONTAINERS_REGISTRIES_CONF": str(registry_home / "registries.conf")}  # fmt: skip
    config = Settings(decision_cache_ttl=0, registry_timeout=5, on_error=on_error)
    said = io.StringIO()
    try:
        with zen4_user(registry_home), contextlib.redirect_stderr(said):
            result = plan(personality, inv, config, environ)
    except ShimError as exc:
        text = str(exc)
        assert not TERMINAL_CONTROL.search(text), text
        if isinstance(exc, Refusal):
            assert 2 <= len(text.splitlines()) <= 13, text
            event("registry: refused")
        else:
            assert_one_line(exc)
            event("registry: error (refuse)")
    else:
        assert isinstance(result.args, list) and result.args[-1] == "id"
        event(f"registry: {'rewritten' if ref not in result.args else 'unchanged'}")
    finally:
        hostile_registry.behaviours.pop(repository, None)
    stderr = said.getvalue()
    assert not TERMINAL_CONTROL.search(stderr), stderr
    assert all(line.startswith("imagefit: ") for line in stderr.splitlines()), stderr
