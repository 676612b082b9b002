"""Site packaging (packaging/), each file read by the real tool that reads it:

- packaging/lmod/imagefit.lua: Debian's Lmod (``$LMOD_CMD bash load imagefit``);
- packaging/modules/imagefit: Environment Modules' ``modulecmd.tcl`` under tclsh;
- packaging/spack/package.py: executed against a recording stand-in of Spack's
  recipe API (Spack itself is not installed); its dependencies are checked
  against pyproject.toml, its install hook runs the real ``imagefit install``;
- packaging/rpm/imagefit.spec: ``rpmspec -P``/``-q``, ``rpmbuild -bs`` and a
  full ``rpmbuild -bb`` (that one needs the package index pip is set up with).

tests/provision.sh installs the tools (lmod, rpm; environment-modules unpacked
in /opt/environment-modules, as Debian makes it conflict with lmod).
"""

from __future__ import annotations

import glob
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tomllib
import types
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from shim.install import RUNTIME_NAMES  # every name `imagefit install` can link

REPO = Path(__file__).resolve().parents[1]
PACKAGING = REPO / "packaging"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
NAME = PYPROJECT["project"]["name"]
VERSION = PYPROJECT["project"]["version"]
BIN = Path(sys.executable).parent
CLEAN_PATH = "/usr/bin:/bin"
RPM_PREFIX = "/opt/imagefit"
RPM_VENV = f"{RPM_PREFIX}/venv"


def provisioned(path: str | None, what: str) -> str:
    if not path or not os.access(path, os.X_OK):
        pytest.fail(f"{what} missing ({path}): run tests/provision.sh")
    return path


def run(cmd, **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("timeout", 120)
    return subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, check=False, **kwargs
    )


def shell(script: str, home: Path, modulepath: Path) -> subprocess.CompletedProcess:
    """bash -c SCRIPT in a bare environment: PATH=/usr/bin:/bin, MODULEPATH only."""
    env = {"HOME": str(home), "PATH": CLEAN_PATH, "MODULEPATH": str(modulepath), "LANG": "C"}
    return run(["bash", "--noprofile", "--norc", "-c", script], env=env)


def values(stdout: str) -> dict[str, str]:
    """KEY=VALUE lines of a test script's output."""
    return dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)


def with_prefix(text: str, line_pattern: str, line: str) -> str:
    """The modulefile with its prefix line replaced, as a site does with sed."""
    out, count = re.subn(line_pattern, line, text, flags=re.M)
    assert count == 1, f"{line_pattern!r} matches {count} lines"
    return out


@pytest.fixture
def shim_prefix(tmp_path, imagefit_cmd) -> Path:
    """A prefix holding the shim linked as podman by the real ``imagefit install``."""
    prefix = tmp_path / "prefix"
    done = run([*imagefit_cmd, "install", "--prefix", prefix, "--runtime", "podman"])
    assert done.returncode == 0, done.stderr
    return prefix


@pytest.fixture
def later_runtime(tmp_path) -> Path:
    """A directory with another ``podman``, as a runtime module loaded later would prepend."""
    bindir = tmp_path / "runtime" / "bin"
    bindir.mkdir(parents=True)
    (bindir / "podman").write_text("#!/bin/sh\nexit 0\n")
    (bindir / "podman").chmod(0o755)
    return bindir


# ---- Lmod ------------------------------------------------------------------


@pytest.fixture
def lmod() -> str:
    return provisioned(os.environ.get("LMOD_CMD") or "/usr/share/lmod/lmod/libexec/lmod", "Lmod")


def lmod_tree(tmp_path: Path, prefix: str) -> Path:
    tree = tmp_path / "lmod-modulefiles"
    (tree / "imagefit").mkdir(parents=True)
    text = (PACKAGING / "lmod" / "imagefit.lua").read_text()
    text = with_prefix(text, r"^local prefix = .*$", f'local prefix = "{prefix}"')
    (tree / "imagefit" / f"{VERSION}.lua").write_text(text)
    return tree


def test_lmod_load_puts_the_shim_first_and_unload_removes_it(tmp_path, lmod, shim_prefix):
    tree = lmod_tree(tmp_path, str(shim_prefix))
    done = shell(
        f"""set -e
        eval "$({lmod} bash load imagefit)"
        echo "LOADED=$LOADEDMODULES"
        echo "LOADED_PATH=$PATH"
        echo "PODMAN=$(type -P podman)"
        eval "$({lmod} bash unload imagefit)"
        echo "UNLOADED_PATH=$PATH"
        """,
        tmp_path, tree,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    out = values(done.stdout)
    assert out["LOADED"] == f"imagefit/{VERSION}"
    assert out["LOADED_PATH"] == f"{shim_prefix}/bin:{CLEAN_PATH}"
    assert out["PODMAN"] == f"{shim_prefix}/bin/podman"
    assert os.path.basename(os.path.realpath(out["PODMAN"])) == "imagefit-shim"
    assert out["UNLOADED_PATH"] == CLEAN_PATH


def test_lmod_keeps_the_shim_ahead_of_a_runtime_module_loaded_later(
    tmp_path, lmod, shim_prefix, later_runtime
):
    tree = lmod_tree(tmp_path, str(shim_prefix))
    (tree / "runtime").mkdir()
    (tree / "runtime" / "1.lua").write_text(f'prepend_path("PATH", "{later_runtime}")\n')
    done = shell(
        f"""set -e
        eval "$({lmod} bash load imagefit)"
        eval "$({lmod} bash load runtime)"
        echo "LOADED_PATH=$PATH"
        echo "PODMAN=$(type -P podman)"
        """,
        tmp_path, tree,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    out = values(done.stdout)
    assert out["LOADED_PATH"] == f"{shim_prefix}/bin:{later_runtime}:{CLEAN_PATH}"
    assert out["PODMAN"] == f"{shim_prefix}/bin/podman"


def test_lmod_whatis_and_help(tmp_path, lmod):
    tree = lmod_tree(tmp_path, "/srv/imagefit")
    whatis = shell(f"{lmod} bash whatis imagefit", tmp_path, tree)
    assert whatis.returncode == 0, whatis.stderr
    assert f"imagefit/{VERSION}" in whatis.stderr
    assert "Description: run the best build of an OCI image" in whatis.stderr
    helped = shell(f"{lmod} bash help imagefit", tmp_path, tree)
    assert helped.returncode == 0, helped.stderr
    assert "/srv/imagefit/bin first on PATH" in helped.stderr
    assert "imagefit explain IMAGE" in helped.stderr


# ---- Environment Modules (Tcl) ---------------------------------------------


@pytest.fixture
def modulecmd() -> list[str]:
    """argv prefix of Environment Modules' modulecmd.tcl (installed, or unpacked by provision.sh)."""
    candidates = [
        os.environ.get("IMAGEFIT_MODULECMD_TCL", ""),
        *sorted(glob.glob("/usr/lib/*/modulecmd.tcl")),
        "/usr/share/modules/libexec/modulecmd.tcl",
        *sorted(glob.glob("/opt/environment-modules/usr/lib/*/modulecmd.tcl")),
    ]
    found = next((c for c in candidates if c and os.path.isfile(c)), None)
    if found is None:
        pytest.fail("Environment Modules' modulecmd.tcl missing: run tests/provision.sh")
    return [provisioned(shutil.which("tclsh"), "tclsh"), found]


def tcl_tree(tmp_path: Path, prefixes: dict[str, str]) -> Path:
    tree = tmp_path / "tcl-modulefiles"
    (tree / "imagefit").mkdir(parents=True)
    text = (PACKAGING / "modules" / "imagefit").read_text()
    for version, prefix in prefixes.items():
        (tree / "imagefit" / version).write_text(
            with_prefix(text, r"^set prefix .*$", f"set prefix {prefix}")
        )
    return tree


def test_modules_load_puts_the_shim_first_and_unload_removes_it(tmp_path, modulecmd, shim_prefix):
    tree = tcl_tree(tmp_path, {VERSION: str(shim_prefix)})
    module = " ".join(modulecmd)
    done = shell(
        f"""set -e
        eval "$({module} bash load imagefit)"
        echo "LOADED=$LOADEDMODULES"
        echo "LOADED_PATH=$PATH"
        echo "PODMAN=$(type -P podman)"
        eval "$({module} bash unload imagefit)"
        echo "UNLOADED_PATH=$PATH"
        echo "UNLOADED=$LOADEDMODULES"
        """,
        tmp_path, tree,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    out = values(done.stdout)
    assert out["LOADED"] == f"imagefit/{VERSION}"
    assert out["LOADED_PATH"] == f"{shim_prefix}/bin:{CLEAN_PATH}"
    assert out["PODMAN"] == f"{shim_prefix}/bin/podman"
    assert out["UNLOADED_PATH"] == CLEAN_PATH
    assert out["UNLOADED"] == ""


def test_modules_one_imagefit_at_a_time(tmp_path, modulecmd):
    tree = tcl_tree(tmp_path, {"0.1.0": "/srv/imagefit-a", "0.2.0": "/srv/imagefit-b"})
    module = " ".join(modulecmd)
    done = shell(
        f"""eval "$({module} bash load imagefit/0.1.0)"
        eval "$({module} bash load imagefit/0.2.0)"; echo "SECOND_RC=$?"
        echo "LOADED_PATH=$PATH"
        """,
        tmp_path, tree,
    )  # fmt: skip
    out = values(done.stdout)
    assert out["SECOND_RC"] != "0"
    assert "conflict" in done.stderr
    assert out["LOADED_PATH"] == f"/srv/imagefit-a/bin:{CLEAN_PATH}"


def test_modules_whatis_and_help(tmp_path, modulecmd):
    tree = tcl_tree(tmp_path, {VERSION: "/srv/imagefit"})
    module = " ".join(modulecmd)
    whatis = shell(f"{module} bash whatis imagefit", tmp_path, tree)
    assert f"imagefit/{VERSION}" in whatis.stderr
    assert "Description: run the best build of an OCI image" in whatis.stderr
    helped = shell(f"{module} bash help imagefit", tmp_path, tree)
    assert "/srv/imagefit/bin first on PATH" in helped.stderr
    assert "imagefit explain IMAGE" in helped.stderr


# ---- Spack -----------------------------------------------------------------


def spack_spec(requirement: str) -> str:
    """A PEP 508 requirement as the Spack spec it maps to: ``pydantic>=2.5,<3``
    is ``py-pydantic@2.5:2`` (Spack ranges are inclusive; ``:2`` is any 2.x)."""
    req = Requirement(requirement)
    lower = upper = ""
    for spec in req.specifier:
        if spec.operator == ">=":
            lower = spec.version
        elif spec.operator == "<":
            parts = [int(p) for p in spec.version.split(".")]
            assert parts[-1] > 0, f"no inclusive Spack bound for {spec}"
            parts[-1] -= 1
            upper = ".".join(map(str, parts))
        else:
            raise AssertionError(f"no Spack mapping for {spec} in {requirement}")
    name = "python" if req.name == "python" else f"py-{canonicalize_name(req.name)}"
    return f"{name}@{lower}:{upper}" if lower or upper else name


def load_spack_recipe(monkeypatch, *, spack_v1: bool = True):
    """Execute packaging/spack/package.py against a stand-in of Spack's recipe
    API that records every directive. Returns (module, calls)."""
    calls: dict[str, list] = {
        k: [] for k in ("version", "variant", "depends_on", "license", "run_after", "executable")
    }

    class PythonPackage:
        pass

    def directive(kind):
        def record(*args, **kwargs):
            calls[kind].append((args, kwargs))

        return record

    def run_after(phase, **kwargs):
        def decorate(func):
            calls["run_after"].append((phase, func.__name__))
            return func

        return decorate

    class Executable:
        def __init__(self, path):
            self.path = str(path)

        def __call__(self, *args, extra_env=None):
            argv = [self.path, *map(str, args)]
            calls["executable"].append((argv, extra_env))
            done = run(argv, env={**os.environ, **(extra_env or {})})
            assert done.returncode == 0, done.stderr

    api = types.ModuleType("spack.package")
    api.version = directive("version")
    api.variant = directive("variant")
    api.depends_on = directive("depends_on")
    api.license = directive("license")
    api.run_after = run_after
    api.join_path = lambda *parts: os.path.join(*map(str, parts))
    api.Executable = Executable
    monkeypatch.setitem(sys.modules, "spack", types.ModuleType("spack"))
    monkeypatch.setitem(sys.modules, "spack.package", api)
    if spack_v1:  # Spack >= 1.0: PythonPackage from the builtin repository
        for name in ("spack_repo", "spack_repo.builtin", "spack_repo.builtin.build_systems"):
            monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
        python = types.ModuleType("spack_repo.builtin.build_systems.python")
        python.PythonPackage = PythonPackage
        monkeypatch.setitem(sys.modules, python.__name__, python)
    else:  # Spack 0.x: from spack.package
        api.PythonPackage = PythonPackage
        monkeypatch.setitem(sys.modules, "spack_repo", None)
    spec = importlib.util.spec_from_file_location(
        "imagefit_spack_recipe", PACKAGING / "spack" / "package.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert issubclass(module.PyImagefit, PythonPackage)
    return module, calls


@pytest.mark.parametrize("spack_v1", [True, False], ids=["spack-1.x", "spack-0.x"])
def test_spack_recipe_loads_with_either_spack_api(monkeypatch, spack_v1):
    module, calls = load_spack_recipe(monkeypatch, spack_v1=spack_v1)
    assert module.PyImagefit.__name__ == "PyImagefit"  # Spack's name for py-imagefit
    assert calls["run_after"] == [("install", "link_shim")]


def test_spack_dependencies_match_pyproject(monkeypatch):
    _, calls = load_spack_recipe(monkeypatch)
    declared = {}
    for args, kwargs in calls["depends_on"]:
        kind = kwargs.get("type", ("build", "link"))
        declared[args[0]] = {kind} if isinstance(kind, str) else set(kind)
    expected = {spack_spec(r): {"build", "run"} for r in PYPROJECT["project"]["dependencies"]}
    expected[spack_spec("python" + PYPROJECT["project"]["requires-python"])] = {"build", "run"}
    for build_requirement in PYPROJECT["build-system"]["requires"]:
        expected[spack_spec(build_requirement)] = {"build"}
    assert declared == expected


def test_spack_versions_license_and_runtimes(monkeypatch):
    module, calls = load_spack_recipe(monkeypatch)
    versions = {args[0]: kwargs for args, kwargs in calls["version"]}
    assert versions["main"] == {"branch": "main"}
    assert versions[VERSION] == {"tag": f"v{VERSION}"}  # a version bump updates the recipe
    assert calls["license"] == [((PYPROJECT["project"]["license"],), {})]
    [(args, kwargs)] = calls["variant"]
    assert args == ("runtimes",)
    assert tuple(kwargs["values"]) == RUNTIME_NAMES
    assert kwargs["multi"] is True
    assert kwargs["default"] in RUNTIME_NAMES


def test_spack_install_hook_links_the_shim_with_imagefit_install(tmp_path, monkeypatch):
    """The run_after("install") hook, run on a prefix laid out as Spack installs
    it (console scripts in prefix/bin): the real ``imagefit install`` links the
    chosen runtimes to the launcher prefix/libexec/imagefit-shim, which imports
    from the PYTHONPATH the hook gave (Spack's build environment)."""
    module, calls = load_spack_recipe(monkeypatch)

    class Prefix(str):
        @property
        def bin(self):
            return Prefix(os.path.join(self, "bin"))

    prefix = Prefix(tmp_path / "py-imagefit-0.1.0")
    os.makedirs(prefix.bin)
    for script in ("imagefit", "imagefit-shim"):
        shutil.copy2(BIN / script, prefix.bin)
    purelib = "lib/python3.11/site-packages"
    os.makedirs(os.path.join(prefix, purelib))

    class Spec:
        variants = {"runtimes": types.SimpleNamespace(value=("podman", "apptainer"))}

        def __getitem__(self, name):
            assert name == "python"
            return types.SimpleNamespace(package=types.SimpleNamespace(purelib=purelib))

    package = types.SimpleNamespace(prefix=prefix, spec=Spec())
    module.PyImagefit.link_shim(package)

    [(argv, extra_env)] = calls["executable"]
    assert argv == [f"{prefix}/bin/imagefit", "install", "--prefix", prefix,
                    "--runtime", "podman", "--runtime", "apptainer"]  # fmt: skip
    assert extra_env["PYTHONPATH"].split(os.pathsep)[0] == os.path.join(prefix, purelib)
    for name in ("podman", "apptainer"):
        link = os.path.join(prefix.bin, name)
        assert os.path.islink(link)
        assert os.path.realpath(link) == os.path.join(prefix, "libexec", "imagefit-shim")
    with open(os.path.join(prefix, "libexec", "imagefit-shim"), encoding="utf-8") as fh:
        launcher = fh.read()
    assert repr(os.path.join(prefix, purelib)) in launcher  # PYTHONPATH, written in: -I ignores it
    assert not os.path.lexists(os.path.join(prefix.bin, "docker"))


# ---- RPM -------------------------------------------------------------------

SPEC = PACKAGING / "rpm" / "imagefit.spec"


@pytest.fixture(scope="module")
def rpmspec() -> str:
    return provisioned(shutil.which("rpmspec"), "rpmspec (Debian package rpm)")


@pytest.fixture(scope="module")
def rpmbuild() -> str:
    return provisioned(shutil.which("rpmbuild"), "rpmbuild (Debian package rpm)")


@pytest.fixture(scope="module")
def parsed_spec(rpmspec) -> str:
    done = run([rpmspec, "-P", SPEC])
    assert done.returncode == 0, done.stderr
    return done.stdout


def spec_section(parsed: str, name: str) -> list[str]:
    lines = parsed.splitlines()
    start = lines.index(f"%{name}") + 1
    end = next(
        (
            i
            for i in range(start, len(lines))
            if re.match(r"^%(changelog|files|post|pre|install)\b", lines[i])
        ),
        len(lines),
    )
    return [line for line in lines[start:end] if line.strip()]


@pytest.fixture(scope="module")
def rpm_topdir(tmp_path_factory) -> Path:
    """An rpmbuild tree whose SOURCES holds Source0 made from this checkout
    (tracked and untracked, not ignored, files), as `git archive` makes it."""
    topdir = tmp_path_factory.mktemp("rpmbuild")
    (topdir / "SOURCES").mkdir()
    listed = run(["git", "-C", REPO, "ls-files", "-co", "--exclude-standard", "-z"])
    assert listed.returncode == 0, listed.stderr
    with tarfile.open(topdir / "SOURCES" / f"{NAME}-{VERSION}.tar.gz", "w:gz") as tar:
        for name in sorted(filter(None, listed.stdout.split("\0"))):
            if os.path.isfile(REPO / name):
                tar.add(REPO / name, arcname=f"{NAME}-{VERSION}/{name}", recursive=False)
    return topdir


def test_rpm_spec_name_version_license_match_pyproject(rpmspec, parsed_spec):
    done = run([rpmspec, "-q", "--srpm", "--qf", "%{NAME}|%{VERSION}|%{LICENSE}\n", SPEC])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{NAME}|{VERSION}|{PYPROJECT['project']['license']}"


def test_rpm_spec_owns_the_shim_links_and_makes_them_at_install(parsed_spec):
    files = spec_section(parsed_spec, "files")
    ghosts = [line.split()[-1] for line in files if line.startswith("%ghost")]
    assert ghosts == [
        f"{RPM_PREFIX}/etc/profile.d/imagefit.sh",
        f"{RPM_PREFIX}/libexec/imagefit-shim",  # the launcher the links lead to
        *(f"{RPM_PREFIX}/bin/{name}" for name in RUNTIME_NAMES),
    ]
    assert f"%dir {RPM_PREFIX}/bin" in files  # nothing else shipped in the PATH directory
    post = "\n".join(spec_section(parsed_spec, "post"))
    assert f"{RPM_VENV}/bin/imagefit install --site --prefix {RPM_PREFIX}" in post
    assert "/etc/profile.d" in post


def test_rpmbuild_source_rpm(rpmbuild, rpm_topdir):
    done = run([rpmbuild, "-bs", "--define", f"_topdir {rpm_topdir}", SPEC])
    assert done.returncode == 0, done.stdout + done.stderr
    [srpm] = (rpm_topdir / "SRPMS").glob("*.src.rpm")
    assert srpm.name == f"{NAME}-{VERSION}-1.src.rpm"
    queried = run(["rpm", "-qp", "--qf", "%{NAME} %{VERSION}", srpm])
    assert queried.stdout == f"{NAME} {VERSION}"


NO_INDEX = re.compile(
    r"No matching distribution found|Could not find a version that satisfies|NewConnectionError"
    r"|Temporary failure in name resolution|Network is unreachable"
)


@pytest.fixture(scope="module")
def binary_rpm(rpmbuild, rpm_topdir) -> Path:
    """`rpmbuild -bb` of the spec, with Fedora's check-buildroot (no file may
    name the build root). pip fetches the dependencies from its package index."""
    done = run(
        [rpmbuild, "-bb", "--nodeps", "--define", f"_topdir {rpm_topdir}",
         "--define", "__arch_install_post /usr/lib/rpm/check-buildroot", SPEC],
        timeout=600,
    )  # fmt: skip
    log = done.stdout + done.stderr
    if done.returncode != 0 and NO_INDEX.search(log):
        pytest.skip(
            f"rpmbuild -bb needs a package index for the dependencies: {NO_INDEX.search(log).group(0)}"
        )
    assert done.returncode == 0, log[-6000:]
    [rpm] = (rpm_topdir / "RPMS").glob("*/*.rpm")
    return rpm


@pytest.fixture(scope="module")
def rpm_payload(binary_rpm, tmp_path_factory) -> Path:
    """The binary RPM's files unpacked under a scratch root."""
    root = tmp_path_factory.mktemp("rpmroot")
    done = run(["rpm2archive", binary_rpm])
    assert done.returncode == 0, done.stderr
    unpacked = run(["tar", "-xzf", f"{binary_rpm}.tgz", "-C", root])
    assert unpacked.returncode == 0, unpacked.stderr
    return root


def test_rpm_ships_nothing_but_ghost_links_in_the_path_directory(binary_rpm):
    """RPM_PREFIX/bin goes first on users' PATH: only the shim's links (made
    by %post, owned as %ghost) may be there, not the venv's python or pip."""
    listed = run(["rpm", "-qp", "--qf", "[%{FILENAMES}|%{FILEFLAGS:fflags}\n]", binary_rpm])
    flags = dict(line.split("|", 1) for line in listed.stdout.splitlines())
    in_bin = {f: fl for f, fl in flags.items() if os.path.dirname(f) == f"{RPM_PREFIX}/bin"}
    assert in_bin == {f"{RPM_PREFIX}/bin/{name}": "g" for name in RUNTIME_NAMES}
    assert flags[f"{RPM_PREFIX}/etc/profile.d/imagefit.sh"] == "g"
    for name in ("imagefit", "imagefit-shim"):
        assert flags[f"{RPM_VENV}/bin/{name}"] == ""
    assert "/usr/bin/imagefit" in flags
    assert f"{RPM_PREFIX}/share/modulefiles/imagefit/{VERSION}" in flags
    assert f"{RPM_PREFIX}/share/modulefiles/imagefit/{VERSION}.lua" in flags
    assert not [f for f in flags if f.startswith("/usr/lib/.build-id")]


def test_rpm_pins_the_python_abi(binary_rpm):
    abi = run(
        ["/usr/bin/python3", "-c", "import sys; print(*sys.version_info[:2], sep='.')"]
    ).stdout.strip()
    requires = run(["rpm", "-qp", "--requires", binary_rpm]).stdout.splitlines()
    assert f"python(abi) = {abi}" in requires


def test_rpm_venv_names_its_final_path(rpm_payload, rpm_topdir):
    venv = rpm_payload / RPM_VENV.lstrip("/")
    # check-buildroot skips .pyc files: look at every file, bytecode included
    buildroot = f"{rpm_topdir}/BUILDROOT".encode()
    leaks = [
        p
        for p in venv.rglob("*")
        if p.is_file() and not p.is_symlink() and buildroot in p.read_bytes()
    ]
    assert leaks == []
    for script in ("imagefit", "imagefit-shim"):
        assert (venv / "bin" / script).read_text().splitlines()[0] == f"#!{RPM_VENV}/bin/python"
    assert os.readlink(rpm_payload / "usr/bin/imagefit") == f"{RPM_VENV}/bin/imagefit"
    python = venv / "bin" / "python"
    version = run([python, venv / "bin" / "imagefit", "--version"])
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"imagefit {VERSION}"
    [pyc] = (venv / "lib").glob("python3*/site-packages/shim/__pycache__/cli.*.pyc")
    code = run([python, "-c", "import marshal, sys; d = open(sys.argv[1], 'rb').read();"
                "print(int.from_bytes(d[4:8], 'little'), marshal.loads(d[16:]).co_filename)", pyc])  # fmt: skip
    assert code.returncode == 0, code.stderr
    flags, filename = code.stdout.split()
    assert flags == "3"  # checked-hash: valid whatever mtimes rpm gives the sources
    assert filename == f"{RPM_VENV}/{pyc.relative_to(venv).parent.parent}/cli.py"


def test_rpm_post_command_links_the_shim(binary_rpm, rpm_payload, later_runtime, tmp_path):
    """The %post scriptlet's `imagefit install --site` command, run as written
    but on the unpacked payload (its paths under the scratch root; the venv's
    python named, as its shebang names the final path): root-owned links to
    the packaged shim for the runtimes on PATH, and the profile snippet."""
    postin = run(["rpm", "-qp", "--qf", "%{POSTIN}", binary_rpm]).stdout
    [line] = [line for line in postin.splitlines() if line.startswith(f"{RPM_VENV}/bin/imagefit ")]
    argv = shlex.split(line.split("||")[0].rstrip(" \\"))
    assert argv[0] == f"{RPM_VENV}/bin/imagefit"
    root = str(rpm_payload)
    argv = [str(rpm_payload / RPM_VENV.lstrip("/") / "bin" / "python"),
            *(root + a if a.startswith(RPM_PREFIX) else a for a in argv)]  # fmt: skip
    env = {
        "PATH": f"{later_runtime}:{CLEAN_PATH}",
        "HOME": str(tmp_path),
        "IMAGEFIT_SITE_CONFIG": str(tmp_path / "config.toml"),
    }
    done = run(argv, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    link = rpm_payload / RPM_PREFIX.lstrip("/") / "bin" / "podman"
    launcher = root + f"{RPM_PREFIX}/libexec/imagefit-shim"
    assert os.readlink(link) == launcher
    with open(launcher, encoding="utf-8") as fh:  # the packaged venv's python, isolated, no site
        assert fh.readline() == f"#!{argv[0]} -IS\n"
    assert os.lstat(link).st_uid == 0
    profile = rpm_payload / RPM_PREFIX.lstrip("/") / "etc" / "profile.d" / "imagefit.sh"
    assert f"{root}{RPM_PREFIX}/bin" in profile.read_text()
    assert (tmp_path / "config.toml").is_file()


def test_rpm_modulefiles_put_the_prefix_first(rpm_payload, lmod, modulecmd, tmp_path):
    tree = rpm_payload / RPM_PREFIX.lstrip("/") / "share" / "modulefiles"
    for tool in (lmod, " ".join(modulecmd)):
        done = shell(
            f'set -e; eval "$({tool} bash load imagefit)"; echo "LOADED_PATH=$PATH"', tmp_path, tree
        )
        assert done.returncode == 0, done.stderr
        assert values(done.stdout)["LOADED_PATH"] == f"{RPM_PREFIX}/bin:{CLEAN_PATH}"
