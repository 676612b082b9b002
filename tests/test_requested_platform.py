"""A requested platform through the installed shim (issue 12 items 1, 6c, 7).

``podman``/``docker`` ``--platform``/``--arch``/``--variant``/``--os`` and
apptainer's ``--arch``/``--arch-variant`` limit the choice to the builds the
runtime itself would take for that platform (containerd/platforms
compare.go ``Only``: amd64/v3 takes v3, v2 and baseline builds, never v4),
and imagefit ranks among those; a platform this machine does not run
(``linux/arm64`` here, an x86_64 machine: ``os.uname()``) or one the runtime
refuses (``linux/amd64/foo/bar``) leaves the command exactly as given.

Real registry on loopback (tests/support/registry.py), an index pushed once,
the shim installed by ``imagefit install`` and linked as podman, docker and
apptainer, each in front of a recording stand-in (tests/support/standin.py):
the test asserts the argv the runtime received. Host facts: archspec's real
zen4 /proc/cpuinfo dump. arm64 variants are tested at the scoring level
(tests/scoring/test_platform_requested.py) since an arm64 request is
emulation on this machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import world_readable_tmp
from tests.support import oci
from tests.support.standin import StandIn, path_with

if os.uname().machine != "x86_64":
    pytest.skip("the host architecture these cases assume is x86_64", allow_module_level=True)

TARGET = "org.supercontainers.hardware.cpu.target.microarch"
RUNTIMES = ("podman", "docker", "apptainer")


def _b(name: str, variant: str | None = None, target: str | None = None, features=None,
       arch: str = "amd64") -> dict:  # fmt: skip
    platform = {"architecture": arch, "os": "linux"}
    if variant:
        platform["variant"] = variant
    if features:
        platform["features"] = features
    return {"name": name, "platform": platform,
            "annotations": {TARGET: target} if target else None}  # fmt: skip


BUILDS = [
    _b("generic", target="x86_64"),
    _b("v2", "v2", "x86_64_v2"),
    _b("v3", "v3", "x86_64_v3"),
    _b("zen3", "v3", "zen3"),
    _b("zen4", "v4", "zen4"),
    _b("zen4-plain", target="zen4"),  # no variant; its target needs v4
    _b("neoverse_v2", "v9", "neoverse_v2", arch="arm64"),
]
TOKEN_BUILDS = [  # qnib's layout: the generic build first, feature tokens after it
    _b("generic"),
    _b("haswell", features=["cpu:haswell"]),
    _b("zen4", features=["cpu:zen4"]),
    _b("icelake", features=["icelake"]),
]


@pytest.fixture(scope="module")
def app(registry, tmp_path_factory):
    return oci.build_and_push(registry.host, "hpc/platform-app", "1", BUILDS,
                              layout_dir=tmp_path_factory.mktemp("platform-app"))  # fmt: skip


@pytest.fixture(scope="module")
def tokens(registry, tmp_path_factory):
    return oci.build_and_push(registry.host, "hpc/token-app", "1", TOKEN_BUILDS,
                              layout_dir=tmp_path_factory.mktemp("token-app"))  # fmt: skip


@pytest.fixture(scope="module")
def shim_dir(imagefit_cmd):
    """PREFIX/bin with the shim linked as podman, docker and apptainer."""
    prefix = world_readable_tmp("imagefit-platform-prefix-")
    runtimes = [a for r in RUNTIMES for a in ("--runtime", r)]
    subprocess.run([*imagefit_cmd, "install", "--prefix", str(prefix), *runtimes],
                   check=True, capture_output=True, text=True)  # fmt: skip
    yield prefix / "bin"
    shutil.rmtree(prefix, ignore_errors=True)


@pytest.fixture(scope="module")
def zen4(imagefit_cmd, cpuinfo_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("platform-facts") / "zen4.json"
    done = subprocess.run([*imagefit_cmd, "facts", "--json", "--cpuinfo",
                           str(cpuinfo_dir / "linux-rocky8.5-zen4"), "--machine", "x86_64"],
                          check=True, capture_output=True, text=True)  # fmt: skip
    path.write_text(done.stdout)
    return str(path)


def run(shim_dir, runtime, args, facts, tmp_path, **extra):
    """The shim as `runtime` in front of a stand-in: (completed process, the
    argv the stand-in received, or None when it was not run)."""
    standin = StandIn(tmp_path / "real", runtime)
    (tmp_path / "registries.conf").write_text("")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("IMAGEFIT_", "DOCKER_", "APPTAINER_", "SINGULARITY_", "PODMAN_"))
    }
    env.update({"PATH": path_with(shim_dir, standin.path.parent), "HOME": str(tmp_path),
                "XDG_CACHE_HOME": str(tmp_path / "cache"), "IMAGEFIT_FACTS": facts,
                "IMAGEFIT_SITE_CONFIG": "/nonexistent/imagefit.toml",
                "CONTAINERS_REGISTRIES_CONF": str(tmp_path / "registries.conf"),
                "DOCKER_CONFIG": str(tmp_path / "docker-config"), "APPTAINER_NOHTTPS": "1",
                **extra})  # fmt: skip
    done = subprocess.run([str(shim_dir / runtime), *args], env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    calls = standin.argvs()  # a pull is followed by podman's own tag step: the first is the one
    return done, (calls[0] if calls else None)


def pinned(index, build: str) -> str:
    return f"{index.repository}@{index.manifests[build]}"


def which(index, argv) -> str | None:
    """The build an argv runs (None: the operand was not rewritten)."""
    found = [b for b in index.manifests if any(pinned(index, b) in a for a in argv)]
    assert len(found) <= 1, argv
    return found[0] if found else None


# -- podman ------------------------------------------------------------------------------

PODMAN_CASES = [
    ([], "zen4"),
    (["--platform", "linux/amd64/v4"], "zen4"),
    (["--platform", "linux/amd64/v3"], "zen3"),  # podman alone runs a v3 build too
    (["--platform=linux/amd64/v2"], "v2"),
    (["--platform", "linux/amd64"], "generic"),  # containerd: amd64 alone is the baseline
    (["--platform", "linux/x86_64/v3"], "zen3"),  # an alias, normalised in scoring
    (["--arch", "amd64", "--variant", "v3"], "zen3"),
    (["--variant", "v2"], "v2"),  # the host's architecture
    (["--os", "linux", "--arch", "x86_64"], "generic"),
    (["--platform", "linux/amd64/v5"], "zen4"),  # above this host: the host still limits
]


@pytest.mark.parametrize(
    ("flags", "build"), PODMAN_CASES, ids=[" ".join(f) or "none" for f, _ in PODMAN_CASES]
)
def test_podman_platform_limits_the_choice(shim_dir, app, zen4, tmp_path, flags, build):
    args = ["run", "--rm", "--tls-verify=false", *flags, app.ref, "true"]
    done, argv = run(shim_dir, "podman", args, zen4, tmp_path)
    assert done.returncode == 0, done.stderr
    assert which(app, argv) == build
    assert app.ref not in argv
    assert argv[-1] == "true" and all(f in argv for f in flags)  # the user's flags stay


LEFT_ALONE = [
    ["--platform", "linux/arm64"],  # another architecture: emulation, the runtime's choice
    ["--platform", "linux/arm64/v8"],
    ["--arch", "aarch64"],  # an alias of another architecture
    ["--platform", "windows/amd64"],
    ["--platform", "linux/amd64/foo/bar"],  # containerd Parse refuses it: podman says so itself
    ["--platform", "linux//v3"],
    ["--platform", "armhf"],  # one word: podman refuses it (containers/common parse.Platform)
    ["--platform", "linux/amd64", "--arch", "amd64"],  # podman: not both
]


@pytest.mark.parametrize("flags", LEFT_ALONE, ids=[" ".join(f) for f in LEFT_ALONE])
def test_podman_leaves_other_and_unreadable_platforms_to_the_runtime(
    shim_dir, app, zen4, tmp_path, flags
):
    args = ["run", "--rm", "--tls-verify=false", *flags, app.ref, "true"]
    done, argv = run(shim_dir, "podman", args, zen4, tmp_path)
    assert done.returncode == 0, done.stderr
    assert argv == args  # exactly as given: no rewrite, no login recipe
    assert done.stderr == ""


def test_a_variant_no_build_has_is_refused_with_one_line_per_build(shim_dir, app, zen4, tmp_path):
    args = ["run", "--rm", "--tls-verify=false", "--platform", "linux/amd64/foo", app.ref, "true"]
    done, argv = run(shim_dir, "podman", args, zen4, tmp_path)
    assert done.returncode == 125 and argv is None
    first, *lines = done.stderr.splitlines()
    assert first.startswith(f"imagefit: {app.ref}: none of the 7 builds runs on this host (")
    assert first.endswith(") as the platform asked for (linux/amd64/foo)")
    assert "linux/amd64/v4 is not the platform asked for (linux/amd64/foo)" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_request_is_part_of_the_cached_decision(shim_dir, app, zen4, tmp_path):
    """One cache for the four commands: the request is in the decision's key."""
    chosen = []
    for flags in (["--platform", "linux/amd64/v3"], [], ["--platform", "linux/amd64/v3"], []):
        args = ["run", "--rm", "--tls-verify=false", *flags, app.ref, "true"]
        done, argv = run(shim_dir, "podman", args, zen4, tmp_path)
        assert done.returncode == 0, done.stderr
        chosen.append(which(app, argv))
    assert chosen == ["zen3", "zen4", "zen3", "zen4"]
    # two decisions (with and without the request), each computed once, then read back
    assert len(list((tmp_path / "cache").rglob("*.entry"))) == 2


def test_podman_pull_with_a_platform(shim_dir, app, zen4, tmp_path):
    args = ["pull", "--tls-verify=false", "--platform", "linux/amd64/v2", app.ref]
    done, argv = run(shim_dir, "podman", args, zen4, tmp_path)
    assert done.returncode == 0, done.stderr
    assert argv == ["pull", "--tls-verify=false", "--platform", "linux/amd64/v2", pinned(app, "v2")]


# -- docker ------------------------------------------------------------------------------

DOCKER_CASES = [
    (["--platform", "linux/amd64/v3"], {}, "zen3"),
    (["--platform", "amd64"], {}, "generic"),  # one word: an architecture (containerd Parse)
    (["--platform", "linux"], {}, "generic"),  # one word: an OS; this machine's amd64
    ([], {"DOCKER_DEFAULT_PLATFORM": "linux/amd64/v2"}, "v2"),
    (["--platform", "linux/amd64/v4"], {"DOCKER_DEFAULT_PLATFORM": "linux/amd64/v2"}, "zen4"),
    # an explicit empty --platform is the host's: the variable is only the flag's default
    (["--platform="], {"DOCKER_DEFAULT_PLATFORM": "linux/arm64"}, "zen4"),
    (["--platform", "linux/arm64"], {}, None),
    (["--platform", "armhf"], {}, None),  # arm/v7 (containerd normalizeArch): not this machine
    (["--platform", "linux/amd64/foo/bar"], {}, None),  # docker refuses it itself
]


@pytest.mark.parametrize(("flags", "env", "build"), DOCKER_CASES,
                         ids=[" ".join(f) + str(e) for f, e, _ in DOCKER_CASES])  # fmt: skip
def test_docker_platform(shim_dir, app, zen4, tmp_path, flags, env, build):
    args = ["run", "--rm", *flags, app.ref, "true"]
    done, argv = run(shim_dir, "docker", args, zen4, tmp_path, **env)
    assert done.returncode == 0, done.stderr
    assert which(app, argv) == build
    if build is None:
        assert argv == args


# -- apptainer -----------------------------------------------------------------------------

APPTAINER_CASES = [
    (["--arch", "amd64", "--arch-variant", "v3"], {}, "zen3"),
    (["--arch", "amd64"], {}, "generic"),
    ([], {"APPTAINER_PULL_ARCH_VARIANT": "v2"}, "v2"),
    ([], {}, "zen4"),
    (["--arch", "arm64v8"], {}, None),  # apptainer's name for arm64/v8: not this machine
]


@pytest.mark.parametrize(("flags", "env", "build"), APPTAINER_CASES,
                         ids=[" ".join(f) + str(e) for f, e, _ in APPTAINER_CASES])  # fmt: skip
def test_apptainer_arch(shim_dir, app, zen4, tmp_path, flags, env, build):
    args = ["pull", *flags, "app.sif", f"docker://{app.ref}"]
    done, argv = run(shim_dir, "apptainer", args, zen4, tmp_path, **env)
    assert done.returncode == 0, done.stderr
    assert which(app, argv) == build
    if build is None:
        assert argv == args


# -- platform.features tokens rank as what they stand for (item 7) ------------------------


def test_a_cpu_token_build_beats_the_generic_build_listed_first(shim_dir, tokens, zen4, tmp_path):
    args = ["run", "--rm", "--tls-verify=false", tokens.ref, "true"]
    done, argv = run(shim_dir, "podman", args, zen4, tmp_path)
    assert done.returncode == 0, done.stderr
    assert which(tokens, argv) == "zen4"


def test_a_cpu_token_limits_a_requested_platform_as_the_annotation_does(
    shim_dir, tokens, zen4, tmp_path
):
    args = ["run", "--rm", "--tls-verify=false", "--platform", "linux/amd64", tokens.ref, "true"]
    done, argv = run(shim_dir, "podman", args, zen4, tmp_path)
    assert done.returncode == 0, done.stderr
    assert which(tokens, argv) == "generic"  # cpu:zen4 needs amd64/v4: above the request


# -- the parsers: containerd's syntax, hot-path modules only ---------------------------------


@pytest.mark.parametrize(
    "text",
    ["", "/linux/arm", "linux/arm/", "linux /arm", "linux/&arm", "linux/arm/foo/bar", "linux/*"],
)
def test_what_containerd_parse_refuses_is_unreadable(text):
    # containerd/platforms platforms_test.go TestParseSelectorInvalid, restated
    from shim.personality.platforms import UNREADABLE, split_specifier

    assert split_specifier(text) == UNREADABLE


def test_one_word_and_full_specifiers_split_as_containerd_parse():
    from shim.personality.platforms import UNREADABLE, split_specifier

    assert split_specifier("linux") == ("linux", "", None)
    assert split_specifier("arm64") == ("linux", "arm64", None)
    assert split_specifier("arm64", one_word_arch=False) == UNREADABLE
    assert split_specifier("linux/x86_64/v3") == ("linux", "x86_64", "v3")
    assert split_specifier("Linux/AMD64") == ("Linux", "AMD64", None)


def test_the_shims_architecture_names_are_containerds():
    from scoring.platform import normalize
    from shim.personality.platforms import KNOWN_ARCH

    # every GOARCH name is its own normal form: the hot path may use it unnormalised
    assert all(normalize("linux", a, None)[1] == a for a in KNOWN_ARCH)
    assert {"amd64", "arm64", "386", "arm", "ppc64le", "riscv64", "s390x"} <= KNOWN_ARCH


PROBE = """
import sys
from shim import config, main
settings = config.Settings()
for args in {cases!r}:
    main._final_args("podman", args, settings)
print(" ".join(sorted(sys.modules)))
"""  # no json here: it imports re


def test_platforms_left_to_the_runtime_import_nothing_heavy():
    cases = [
        ["run", "--platform", p, "quay.io/a/b:1"]
        for p in ("linux/amd64/foo/bar", "windows/amd64", "linux/arm64/v8", "linux//v3")
    ]
    cases.append(["run", "--arch", "riscv64", "--variant", "v9", "quay.io/a/b:1"])  # fmt: skip
    done = subprocess.run([sys.executable, "-c", PROBE.format(cases=cases)], capture_output=True,
                          text=True, check=True)  # fmt: skip
    modules = done.stdout.split()
    heavy = ("scoring", "hostfacts", "pydantic", "archspec", "requests", "shim.resolve", "re")
    assert [m for m in modules if m in heavy or m.startswith(tuple(h + "." for h in heavy))] == []


HIT_PROBE = """
import os, sys
from shim import config, main
final = main._final_args("podman", {args!r}, config.load(dict(os.environ)))
print(" ".join(final))
print(" ".join(sorted(sys.modules)))
"""


def test_a_platform_adds_no_import_to_a_cache_hit(shim_dir, app, zen4, tmp_path):
    """A hit with ``--platform linux/amd64/v3`` loads exactly the modules a hit
    without one loads (tests/test_decision_cache.py asserts what those are)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEFIT_")}
    env.update({"HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"), "IMAGEFIT_FACTS": zen4,
                "IMAGEFIT_SITE_CONFIG": "/nonexistent/imagefit.toml",
                "CONTAINERS_REGISTRIES_CONF": str(tmp_path / "registries.conf")})  # fmt: skip
    loaded = {}
    for build, flags in (("zen3", ["--platform", "linux/amd64/v3"]), ("zen4", [])):
        args = ["run", "--rm", "--tls-verify=false", *flags, app.ref, "true"]
        done, argv = run(shim_dir, "podman", args, zen4, tmp_path)  # the miss: decided, cached
        assert which(app, argv) == build, done.stderr
        hit = subprocess.run([sys.executable, "-c", HIT_PROBE.format(args=args)], env=env,
                             capture_output=True, text=True, check=True)  # fmt: skip
        final, modules = hit.stdout.splitlines()
        assert pinned(app, build) in final.split()
        loaded[build] = set(modules.split())
    assert "shim.decisions" in loaded["zen3"]
    assert loaded["zen3"] - loaded["zen4"] == set()


# -- imagefit explain --platform -------------------------------------------------------------


@pytest.mark.parametrize(
    ("platform", "build"),
    [("linux/amd64/v3", "zen3"), ("linux/amd64/v2", "v2"), ("x86_64", "generic"), (None, "zen4")],
)
def test_explain_platform_shows_what_the_shim_would_run(imagefit_cmd, app, zen4, platform, build):
    """`imagefit explain --platform` decides as `podman run --platform` does
    (the same parser and normalisation; tests above), without a container."""
    import json

    argv = [*imagefit_cmd, "explain", app.ref, "--json", "--tls-verify", "false", "--facts", zen4]
    done = subprocess.run([*argv, *(["--platform", platform] if platform else [])],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["chosen"]["digest"] == app.manifests[build]


def test_explain_platform_refuses_what_is_not_a_platform(imagefit_cmd, app, zen4):
    argv = [*imagefit_cmd, "explain", app.ref, "--tls-verify", "false", "--facts", zen4,
            "--platform", "linux/amd64/foo/bar"]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 125 and done.stderr.count("\n") == 1, done.stderr
    assert "not OS[/ARCH[/VARIANT]]" in done.stderr
