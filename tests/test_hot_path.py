"""The hot path (a command the shim does not intercept, a pass-through) imports
only the standard library and the shim's own small modules, run as users run
it: the launcher ``imagefit install`` writes, through the link it makes.

Checked by what is imported, never by timing (benchmarks measure time).

How the imports are seen: a shebang script cannot take ``-X importtime``, and
the launcher's ``-I`` ignores ``PYTHONPROFILEIMPORTTIME``. For a link whose
launcher starts ``#!INTERPRETER FLAGS``, the kernel runs ``INTERPRETER FLAGS
LINK ARGS...`` (binfmt_script: one argument after the interpreter, then the
path the link was run by); :func:`launcher_argv` runs exactly that command,
read from the installed launcher's own first line, with ``-X importtime``
inserted after FLAGS. That option only reports each import on stderr: the
interpreter, its flags, ``sys.path`` (set by the launcher file itself),
``argv[0]`` and the environment are the user's. The launcher run directly by
the kernel is tested too (it is isolated from ``PYTHONPATH``, and execs the
runtime).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("requests", "urllib3", "pydantic", "structlog", "archspec", "pynvml", "hostfacts", "scoring",
         "shim.intercept", "shim.resolve", "shim.registry", "urllib3", "yaml", "jsonschema")  # fmt: skip
#: What the interpreter floor (``python -I -S``) does not load and the hot path must not:
#: ``site`` (and the .pth scan), regular expressions, json, OpenSSL's hashing; importlib and
#: warnings (a lazy package import done with ``importlib.import_module``), the ascii codec (UTF-8
#: is loaded at start-up): each ~0.3 ms.
NEVER = ("site", "sitecustomize", "re", "json", "hashlib", "_hashlib", "fnmatch", "tempfile", "socket",
         "tomllib", "collections", "dataclasses", "importlib", "warnings", "encodings.ascii")  # fmt: skip


def launcher_argv(link, *args) -> list[str]:
    """The command the kernel runs for `link` (a runtime link made by
    ``imagefit install``), with ``-X importtime`` after the shebang's flags."""
    launcher = os.path.realpath(link)
    with open(launcher, encoding="utf-8") as fh:
        first = fh.readline().rstrip("\n")
    assert first.startswith("#!") and first.count(" ") == 1, first  # interpreter, one argument
    interpreter, flags = first[2:].split(" ")
    return [interpreter, flags, "-X", "importtime", str(link), *args]


def imported(done: subprocess.CompletedProcess) -> list[str]:
    """The modules an ``-X importtime`` run imported, in order."""
    return [line.split("|")[-1].strip() for line in done.stderr.splitlines()
            if line.startswith("import time:") and not line.endswith("| imported package")]  # fmt: skip


def _heavy(modules: list[str], names=HEAVY) -> list[str]:
    return [m for m in modules if any(m == h or m.startswith(h + ".") for h in names)]


@pytest.fixture
def quiet_env(tmp_path) -> dict[str, str]:
    """A user with no config, and ``/bin/true`` as the real podman."""
    return {**os.environ, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"),
            "XDG_CONFIG_HOME": str(tmp_path / "config"), "IMAGEFIT_SITE_CONFIG": str(tmp_path / "none.toml"),
            "IMAGEFIT_PODMAN": "/bin/true"}  # fmt: skip


def _run_launcher(shim_bin, env, args) -> list[str]:
    done = subprocess.run(launcher_argv(shim_bin / "podman", *args), env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    modules = imported(done)
    assert "shim.main" in modules, done.stderr[-2000:]
    return modules


def test_the_links_lead_to_an_isolated_launcher_without_site(shim_bin):
    launcher = Path(os.path.realpath(shim_bin / "podman"))
    assert launcher == shim_bin.parent / "libexec" / "imagefit-shim"
    lines = launcher.read_text().splitlines()
    assert lines[0] == f"#!{os.path.abspath(sys.executable)} -IS"
    # the code: sys.path gets this installation's site-packages, then the shim's main
    code = [line for line in lines if line and not line.startswith("#")]
    import sysconfig

    purelib = sysconfig.get_paths()["purelib"]
    assert code[:3] == ["import sys", f"sys.path += {[purelib]!r}", "try:"]
    assert code[3].strip() == "from shim.main import main" and code[-1] == "sys.exit(main())"
    assert not [
        line for line in code if line.lstrip().startswith("import ") and line != "import sys"
    ]


def test_a_launcher_whose_installation_is_gone_says_so_in_one_line(tmp_path):
    from shim.install import launcher_text

    launcher = tmp_path / "libexec" / "imagefit-shim"
    launcher.parent.mkdir()
    launcher.write_text(launcher_text(os.path.abspath(sys.executable), [str(tmp_path / "gone")]))
    launcher.chmod(0o755)
    (tmp_path / "podman").symlink_to(launcher)
    done = subprocess.run(
        [str(tmp_path / "podman"), "ps"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 125 and done.stdout == "", done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(
        "imagefit: cannot load the shim ("
    ), done.stderr


def test_not_intercepted_commands_import_nothing_heavy(shim_bin, quiet_env):
    cases = [["ps", "-a"], ["images"], ["exec", "-it", "ctr", "sh"], ["--version"], ["build", "-t", "x", "."],
             ["run", "--no-such-flag", "x.io/a:1"]]  # fmt: skip
    for args in cases:
        modules = _run_launcher(shim_bin, {**quiet_env}, args)
        assert _heavy(modules) == [] and _heavy(modules, NEVER) == [], (args, modules)


def test_pass_through_of_run_imports_nothing_heavy(shim_bin, quiet_env):
    # short names, local images, other transports, --rootfs: no resolution
    cases = [["run", "--rm", "busybox", "true"], ["run", "localhost/x", "true"], ["run", "--rootfs", "/d", "sh"],
             ["run", "oci:/tmp/layout", "true"], ["run", "--platform", "linux/arm64", "quay.io/a/b:1"]]  # fmt: skip
    for args in cases:
        modules = _run_launcher(shim_bin, quiet_env, args)
        assert "shim.intercept" in modules  # it did look at the image operands ...
        heavy = [m for m in _heavy(modules) if m != "shim.intercept"]
        assert heavy == [] and _heavy(modules, NEVER) == [], (
            args,
            modules,
        )  # ... and imported nothing heavy


def test_disable_imports_no_grammar_at_all(shim_bin, quiet_env):
    modules = _run_launcher(
        shim_bin, {**quiet_env, "IMAGEFIT_DISABLE": "1"}, ["run", "--rm", "quay.io/a/b:1"]
    )
    assert (
        _heavy(modules) == [] and _heavy(modules, NEVER) == [] and "shim.argv.podman" not in modules
    )


def test_the_launcher_run_by_the_kernel_ignores_pythonpath(shim_bin, tmp_path):
    """Run as users run it (the link, executed): ``PYTHONPATH`` (kept by
    ``sudo -E``) cannot put another ``shim`` package, a ``re`` or a
    ``sitecustomize`` in front of the installed one; the real runtime
    (``/bin/echo`` here: it prints its argv) gets the argv unchanged."""
    evil = tmp_path / "evil"
    for name in ("shim/__init__.py", "re.py", "sitecustomize.py"):
        (evil / name).parent.mkdir(parents=True, exist_ok=True)
        (evil / name).write_text("import sys\nprint('EVIL', file=sys.stderr)\nsys.exit(99)\n")
    env = {**os.environ, "HOME": str(tmp_path), "IMAGEFIT_SITE_CONFIG": str(tmp_path / "none.toml"),
           "PYTHONPATH": str(evil), "PYTHONSTARTUP": str(evil / "re.py"), "IMAGEFIT_PODMAN": "/bin/echo",
           "PATH": f"{shim_bin}:/usr/bin:/bin"}  # fmt: skip
    done = subprocess.run(
        ["podman", "ps", "-a"], env=env, capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "ps -a\n", "")


def test_a_cold_miss_through_the_launcher_loads_the_dependencies(shim_bin, registry, tmp_path):
    """``-S`` drops site-packages: the launcher adds them itself, so a
    resolution (requests, pydantic, archspec and this host's live facts
    probes) works through it; ``imagefit install`` found them at install time."""
    from tests.support import oci

    builds = [{"name": "x86_64", "platform": {"architecture": "amd64", "os": "linux"},
               "annotations": {"org.supercontainers.hardware.cpu.target.microarch": "x86_64"}}]  # fmt: skip
    app = oci.build_and_push(registry.host, "hot/cold", "1", builds, layout_dir=tmp_path / "layout")
    site = tmp_path / "site.toml"
    site.write_text("decision_cache_ttl = 600\n")
    site.chmod(0o644)
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "IMAGEFIT_SITE_CONFIG": str(site), "IMAGEFIT_DRY_RUN": "1"}  # fmt: skip
    env.pop("IMAGEFIT_FACTS", None)
    done = subprocess.run(launcher_argv(shim_bin / "podman", "run", "--rm", "--tls-verify=false", app.ref, "id"),
                          env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.splitlines()[-1])[-2] == app.digest_ref("x86_64")
    modules = imported(done)
    for needed in (
        "requests",
        "pydantic",
        "archspec",
        "shim.resolve",
        "hostfacts.model",
        "hostfacts.probes.cpu",
    ):
        assert needed in modules, (needed, modules)
    assert "site" not in modules


def test_install_writes_the_paths_an_installation_imports_from(imagefit_cmd, tmp_path):
    """Paths that ``PYTHONPATH`` adds at install time (Spack's build
    environment, a checkout in front) are written into the launcher, after
    the standard library, in the installing interpreter's order."""
    import sysconfig

    extra = tmp_path / "extra"
    extra.mkdir()
    env = {**os.environ, "PYTHONPATH": str(extra), "HOME": str(tmp_path)}
    done = subprocess.run([*imagefit_cmd, "install", "--prefix", str(tmp_path / "p"), "--runtime", "podman"],
                          env=env, capture_output=True, text=True, cwd=tmp_path, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "p/libexec/imagefit-shim").read_text()
    paths = [str(extra), sysconfig.get_paths()["purelib"]]
    assert f"sys.path += {paths!r}\n" in text, text
    assert str(tmp_path) + "'" not in text  # the working directory is not an import path


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


def test_a_pass_through_with_a_site_config_imports_no_hashing(shim_bin, quiet_env, tmp_path):
    """Reading a config (and checking its parse cache's directory) loads
    hostfacts.fingerprint's path checks, never hashlib (~4 ms) or a heavy module."""
    site = tmp_path / "site.toml"
    site.write_text('[node_classes.a]\nfacts = "/x.json"\nhosts = ["a[0-9]*"]\n')
    site.chmod(0o644)
    env = {**quiet_env, "IMAGEFIT_SITE_CONFIG": str(site)}
    env.pop("XDG_CACHE_HOME", None)
    for _ in range(2):  # the first fills the parse cache (tomllib), the second is the hot path
        modules = _run_launcher(shim_bin, env, ["ps", "-a"])
    assert "hashlib" not in modules and "re" not in modules and "tomllib" not in modules
    assert [m for m in _heavy(modules) if m not in ("hostfacts", "hostfacts.fingerprint")] == []
    assert _heavy(modules, NEVER) == []
    assert (tmp_path / ".cache" / "imagefit" / "config").is_dir()  # the parse cache was used


def test_the_launcher_run_by_its_own_name_says_how_to_use_it(shim_bin):
    launcher = os.path.realpath(shim_bin / "podman")
    done = subprocess.run([launcher, "run", "x"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 125 and done.stdout == "" and done.stderr.count("\n") == 1, (
        done.stderr
    )
    assert "run it through a link named podman" in done.stderr
