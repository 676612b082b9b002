"""The hot path (a command the shim does not intercept, or a pass-through)
imports only the standard library and the shim's own small modules.

Checked by what is imported, never by timing (benchmarks measure time).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

HEAVY = ("requests", "urllib3", "pydantic", "structlog", "archspec", "pynvml", "hostfacts", "scoring",
         "shim.intercept", "shim.resolve", "shim.registry", "urllib3", "yaml", "jsonschema")  # fmt: skip

PROBE = """
import json, sys
from shim import config, main
settings = config.Settings()
for args in {cases!r}:
    main._final_args("podman", args, settings)
print(json.dumps(sorted(sys.modules)))
"""


def _imported(cases, env=None) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(cases=cases)],
        capture_output=True, text=True, check=True, env={**os.environ, **(env or {})},
    )  # fmt: skip
    return json.loads(done.stdout)


def _heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]


def test_not_intercepted_commands_import_nothing_heavy():
    cases = [["ps", "-a"], ["images"], ["exec", "-it", "ctr", "sh"], ["--version"], ["build", "-t", "x", "."],
             ["run", "--no-such-flag", "x.io/a:1"]]  # fmt: skip
    assert _heavy(_imported(cases)) == []


def test_pass_through_of_run_imports_nothing_heavy():
    # short names, local images, other transports, --rootfs: no resolution
    cases = [["run", "--rm", "busybox", "true"], ["run", "localhost/x", "true"], ["run", "--rootfs", "/d", "sh"],
             ["run", "oci:/tmp/layout", "true"], ["run", "--platform", "linux/arm64", "quay.io/a/b:1"]]  # fmt: skip
    modules = _imported(cases)
    assert "shim.intercept" in modules  # it did look at the image operands ...
    assert [
        m for m in _heavy(modules) if m != "shim.intercept"
    ] == []  # ... and imported nothing heavy


def test_disable_imports_no_grammar_at_all():
    modules = _imported([["run", "--rm", "quay.io/a/b:1"]], env={"IMAGEFIT_DISABLE": "1"})
    assert _heavy(modules) == [] and "shim.argv.podman" not in modules


def test_the_shims_spelling_of_the_container_kind_key_is_the_vocabularys():
    from scoring.vocabulary import CONTAINER_KIND
    from shim.intercept import CONTAINER_KIND as SHIM_CONTAINER_KIND

    assert SHIM_CONTAINER_KIND == CONTAINER_KIND


def test_the_fingerprints_schema_version_is_the_models():
    from hostfacts.fingerprint import SCHEMA_VERSION as FP
    from hostfacts.model import SCHEMA_VERSION

    assert FP == SCHEMA_VERSION


def test_the_entrypoint_json_is_json_dumps():
    from hypothesis import given
    from hypothesis import strategies as st

    from shim import login

    assert login.ENTRYPOINT_JSON == json.dumps(login.ENTRYPOINT)
    assert json.loads(login.ENTRYPOINT_JSON) == login.ENTRYPOINT

    @given(st.text())
    def agrees(text):
        assert login._json_string(text) == json.dumps(text)

    agrees()


def test_a_pass_through_with_a_site_config_imports_no_hashing(tmp_path):
    """Reading a config (and checking its parse cache's directory) loads
    hostfacts.fingerprint's path checks, never hashlib (~4 ms) or a heavy module."""
    site = tmp_path / "site.toml"
    site.write_text('[node_classes.a]\nfacts = "/x.json"\nhosts = ["a[0-9]*"]\n')
    site.chmod(0o644)
    probe = (
        "import sys; from shim import config, main; "
        "settings = config.load(); main._final_args('podman', ['ps', '-a'], settings); "
        "print(' '.join(sorted(sys.modules)))"  # not json: it imports re
    )
    env = {**os.environ, "IMAGEFIT_SITE_CONFIG": str(site), "HOME": str(tmp_path)}
    env.pop("XDG_CACHE_HOME", None)
    for _ in range(2):  # the first fills the parse cache (tomllib), the second is the hot path
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env)
    modules = done.stdout.split()
    assert "hashlib" not in modules and "re" not in modules and "tomllib" not in modules
    assert [m for m in _heavy(modules) if m not in ("hostfacts", "hostfacts.fingerprint")] == []
    assert (tmp_path / ".cache" / "imagefit" / "config").is_dir()  # the parse cache was used
