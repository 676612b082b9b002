"""apptainer / singularity command lines through the shim: the exact final argv.

Each case is a command line (argv without argv[0]), the exact argv the shim
must exec, and the references it must have asked the resolver for
(normalised, in order). Expectations are written out literally; nothing is
computed by the code under test. The resolver and the host facts are faked
(no registry I/O): every resolved image selects the build ``D``. Every case
runs for both link names, ``apptainer`` and ``singularity``.

apptainer and singularity cannot be installed on the test machines: how they
read a line comes from their sources and apptainer 1.4.5's own answers, as
recorded in :mod:`shim.argv.apptainer_table`; tests/test_apptainer_standin.py
runs the installed shim in front of recording stand-ins.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import hostfacts
import scoring
import shim.login
import shim.main
import shim.resolve
from shim import personality as personalities
from shim.argv import apptainer
from shim.config import Settings
from shim.errors import ArgvError, Refusal, RegistryError
from shim.intercept import plan
from tests.support.fake_resolver import D, FakeResolver, U, install, zen4_host  # noqa: F401

#: The digest of the build the fake resolver chooses.
#: An index digest a user may already have pinned.
#: The login recipe after the image: ``exec IMG /bin/sh -c OUTER sh [CMD ARGS...]``.
L = ["/bin/sh", "-c", shim.login.OUTER, "sh"]

REF = "quay.io/hpc/app:1"
IMG = "docker://" + REF
PIN = f"docker://quay.io/hpc/app@{D}"
ORAS = "oras://ghcr.io/org/sif:2.0"
ORAS_PIN = f"oras://ghcr.io/org/sif@{D}"
HUB = f"docker://docker.io/library/ubuntu@{D}"

# (args, expected final argv, references the resolver was asked for)
# fmt: off
CASES: list[tuple[list[str], list[str], list[str]]] = [
    # --- the login recipe: run / exec / shell become exec IMG /bin/sh -c OUTER sh ... -----
    (["run", IMG], ["exec", PIN, *L], [REF]),
    (["run", IMG, "gmx", "mdrun", "-v"], ["exec", PIN, *L, "gmx", "mdrun", "-v"], [REF]),
    (["exec", IMG, "ls", "-l"], ["exec", PIN, *L, "ls", "-l"], [REF]),
    (["shell", IMG], ["exec", PIN, *L], [REF]),
    # arguments of `shell` are the shell's: /bin/sh gets them, in the login environment
    (["shell", IMG, "-c", "echo hi"], ["exec", PIN, *L, "/bin/sh", "-c", "echo hi"], [REF]),
    (["run", "--app", "foo", IMG], ["exec", "--app", "foo", PIN, *L], [REF]),
    (["exec", "--fakeroot", IMG, "id"], ["exec", "--fakeroot", PIN, *L, "id"], [REF]),
    (["run", "--oci", IMG], ["exec", "--oci", PIN, *L], [REF]),  # SingularityCE OCI mode
    # --- where the recipe does not apply (the image is pinned all the same) -------------
    (["exec", IMG], ["exec", PIN], [REF]),  # no command: apptainer's own usage error
    (["shell", "-s", "/bin/zsh", IMG], ["shell", "-s", "/bin/zsh", PIN], [REF]),
    (["shell", "--shell=/bin/bash", IMG], ["shell", "--shell=/bin/bash", PIN], [REF]),
    (["shell", "--syos", IMG], ["shell", "--syos", PIN], [REF]),
    (
        ["run", "--runscript-timeout", "10s", IMG, "a"],
        ["run", "--runscript-timeout", "10s", PIN, "a"],
        [REF],
    ),
    (["test", IMG], ["test", PIN], [REF]),
    (["test", "-e", IMG, "a"], ["test", "-e", PIN, "a"], [REF]),
    # --- global flags, only before the command word ---------------------------------
    (["-d", "exec", IMG, "id"], ["-d", "exec", PIN, *L, "id"], [REF]),
    (["-q", "run", IMG], ["-q", "exec", PIN, *L], [REF]),
    (["-s", "exec", IMG, "true"], ["-s", "exec", PIN, *L, "true"], [REF]),  # -s: --silent
    (["-s", "shell", IMG], ["-s", "exec", PIN, *L], [REF]),
    (["-c", "/etc/a.conf", "exec", IMG, "ls"], ["-c", "/etc/a.conf", "exec", PIN, *L, "ls"], [REF]),
    (["--config=/etc/a.conf", "run", IMG], ["--config=/etc/a.conf", "exec", PIN, *L], [REF]),
    (["-c/etc/a.conf", "run", IMG], ["-c/etc/a.conf", "exec", PIN, *L], [REF]),
    (["-q", "-c", "f", "exec", IMG, "x"], ["-q", "-c", "f", "exec", PIN, *L, "x"], [REF]),
    (
        ["--debug", "--nocolor", "-v", "shell", IMG],
        ["--debug", "--nocolor", "-v", "exec", PIN, *L],
        [REF],
    ),
    (["-ds", "exec", IMG, "x"], ["-ds", "exec", PIN, *L, "x"], [REF]),
    (["--config", "-s", "run", IMG], ["--config", "-s", "exec", PIN, *L], [REF]),  # FILE "-s"
    (["--silent=false", "run", IMG], ["--silent=false", "exec", PIN, *L], [REF]),
    # --- collisions: after exec/shell, -c is --contain and -s is --shell --------------
    (["exec", "-c", IMG, "ls"], ["exec", "-c", PIN, *L, "ls"], [REF]),
    (["exec", "-cC", IMG, "ls"], ["exec", "-cC", PIN, *L, "ls"], [REF]),
    (["shell", "-s", "/bin/sh", "-c", IMG], ["shell", "-s", "/bin/sh", "-c", PIN], [REF]),
    (["shell", "-cs/bin/zsh", IMG], ["shell", "-cs/bin/zsh", PIN], [REF]),
    (["shell", "-c", IMG], ["exec", "-c", PIN, *L], [REF]),
    (["exec", "-e", IMG, "env"], ["exec", "-e", PIN, *L, "env"], [REF]),
    (
        ["--silent", "run", "-c", "--no-home", IMG, "a"],
        ["--silent", "exec", "-c", "--no-home", PIN, *L, "a"],
        [REF],
    ),
    # --- value flags and bundles -------------------------------------------------------
    (["exec", "-B", "/data:/data", IMG, "ls"], ["exec", "-B", "/data:/data", PIN, *L, "ls"], [REF]),
    (
        ["exec", "-B/scratch", "--bind=/a:/b", IMG, "ls"],
        ["exec", "-B/scratch", "--bind=/a:/b", PIN, *L, "ls"],
        [REF],
    ),
    (
        ["run", "--env", "A=1", "--env-file", "/e", IMG],
        ["exec", "--env", "A=1", "--env-file", "/e", PIN, *L],
        [REF],
    ),
    (["exec", "--nv", "-w", IMG, "x"], ["exec", "--nv", "-w", PIN, *L, "x"], [REF]),
    (["exec", "-ecB", "/a", IMG, "x"], ["exec", "-ecB", "/a", PIN, *L, "x"], [REF]),
    (["exec", "-B=/a", IMG, "x"], ["exec", "-B=/a", PIN, *L, "x"], [REF]),
    (
        ["run", "-H", "/home/u:/home/u", "--cwd", "/w", IMG],
        ["exec", "-H", "/home/u:/home/u", "--cwd", "/w", PIN, *L],
        [REF],
    ),
    (["exec", "--containall=false", IMG, "x"], ["exec", "--containall=false", PIN, *L, "x"], [REF]),
    (
        ["exec", "--overlay", "o.img", "--writable-tmpfs", IMG, "x"],
        ["exec", "--overlay", "o.img", "--writable-tmpfs", PIN, *L, "x"],
        [REF],
    ),
    (  # a flag value that looks like an image is a value
        ["exec", "--env", f"IMG={IMG}", IMG, "x"],
        ["exec", "--env", f"IMG={IMG}", PIN, *L, "x"],
        [REF],
    ),
    (["exec", "-B", IMG, "app.sif", "ls"], ["exec", "-B", IMG, "app.sif", "ls"], []),
    # --- `--` ends options; after the image it is the container's --------------------
    (["exec", "--", IMG, "ls"], ["exec", "--", PIN, *L, "ls"], [REF]),
    (["run", "--", IMG], ["exec", "--", PIN, *L], [REF]),
    (["exec", IMG, "--", "ls"], ["exec", PIN, *L, "--", "ls"], [REF]),
    # --- the container's own arguments are never read --------------------------------
    (
        ["exec", IMG, "apptainer", "exec", "docker://other.io/x:1", "--help"],
        ["exec", PIN, *L, "apptainer", "exec", "docker://other.io/x:1", "--help"],
        [REF],
    ),
    (["run", IMG, "--help"], ["exec", PIN, *L, "--help"], [REF]),
    (["exec", IMG, "-s", "-c", "x"], ["exec", PIN, *L, "-s", "-c", "x"], [REF]),
    (["run", IMG, IMG], ["exec", PIN, *L, IMG], [REF]),
    (["exec", IMG, "--no-such-flag"], ["exec", PIN, *L, "--no-such-flag"], [REF]),
    # --- how references are read ------------------------------------------------------
    (["run", "docker://ubuntu"], ["exec", HUB, *L], ["docker.io/library/ubuntu"]),
    (
        ["exec", "docker://localhost:5000/a/b:1", "x"],
        ["exec", f"docker://localhost:5000/a/b@{D}", *L, "x"],
        ["localhost:5000/a/b:1"],
    ),
    (  # for apptainer, localhost is a registry host like any other
        ["run", "docker://localhost/app:1"],
        ["exec", f"docker://localhost/app@{D}", *L],
        ["localhost/app:1"],
    ),
    (
        ["run", "docker://index.docker.io/hpc/app:2024"],
        ["exec", f"docker://docker.io/hpc/app@{D}", *L],
        ["docker.io/hpc/app:2024"],
    ),
    (["run", f"docker://quay.io/hpc/app@{U}"], ["exec", PIN, *L], [f"quay.io/hpc/app@{U}"]),
    (["run", f"docker://quay.io/hpc/app:1@{U}"], ["exec", PIN, *L], [f"quay.io/hpc/app@{U}"]),
    (["exec", ORAS, "x"], ["exec", ORAS_PIN, *L, "x"], ["ghcr.io/org/sif:2.0"]),
    # --- operands that are not registry images pass through (no recipe either) ---------
    (["exec", "app.sif", "ls"], ["exec", "app.sif", "ls"], []),
    (["run", "./sandbox/"], ["run", "./sandbox/"], []),
    (["shell", "library://user/col/img:1"], ["shell", "library://user/col/img:1"], []),
    (["exec", "shub://a/b", "x"], ["exec", "shub://a/b", "x"], []),
    (["run", "https://example.org/x.sif"], ["run", "https://example.org/x.sif"], []),
    (["exec", "instance://web", "ls"], ["exec", "instance://web", "ls"], []),
    (["exec", "docker-archive:/a.tar", "x"], ["exec", "docker-archive:/a.tar", "x"], []),
    (["exec", "oci:/layout:tag", "x"], ["exec", "oci:/layout:tag", "x"], []),
    (["run", "oci-archive:/a.tar"], ["run", "oci-archive:/a.tar"], []),
    (["run", "docker-daemon:quay.io/x:1"], ["run", "docker-daemon:quay.io/x:1"], []),
    (["exec", "docker:quay.io/hpc/app:1", "x"], ["exec", "docker:quay.io/hpc/app:1", "x"], []),
    (["run", "ubuntu:18.04.img"], ["run", "ubuntu:18.04.img"], []),  # a file path
    (["run", REF], ["run", REF], []),  # no transport: a file path for apptainer
    (["run", "oras://sif:1"], ["run", "oras://sif:1"], []),  # oras:// must be fully qualified
    (["run", "docker://quay.io/Hpc/app"], ["run", "docker://quay.io/Hpc/app"], []),  # invalid
    (["run", "docker:///x"], ["run", "docker:///x"], []),
    (["run"], ["run"], []),
    (["run", "--nv"], ["run", "--nv"], []),
    # --- pull [output] URI: the URI is the last positional ------------------------------
    (["pull", IMG], ["pull", "app_1.sif", PIN], [REF]),
    (["pull", "out.sif", IMG], ["pull", "out.sif", PIN], [REF]),
    (["pull", "--force", IMG], ["pull", "--force", "app_1.sif", PIN], [REF]),
    (["pull", "-F", "-U", IMG], ["pull", "-F", "-U", "app_1.sif", PIN], [REF]),
    (["pull", "--dir", "/images", IMG], ["pull", "--dir", "/images", "app_1.sif", PIN], [REF]),
    (["pull", "--sandbox", IMG], ["pull", "--sandbox", "app_1.sif", PIN], [REF]),
    (["pull", "--name", "mine.sif", IMG], ["pull", "--name", "mine.sif", PIN], [REF]),
    (["pull", "--", IMG], ["pull", "--", "app_1.sif", PIN], [REF]),
    (["pull", "--", "o.sif", IMG], ["pull", "--", "o.sif", PIN], [REF]),
    (["-q", "pull", IMG], ["-q", "pull", "app_1.sif", PIN], [REF]),
    (["pull", "docker://ubuntu"], ["pull", "ubuntu_latest.sif", HUB], ["docker.io/library/ubuntu"]),
    (["pull", "docker://quay.io/hpc/app"], ["pull", "app_latest.sif", PIN], ["quay.io/hpc/app"]),
    (  # the name apptainer would have given the user's own digest reference
        ["pull", f"docker://quay.io/hpc/app@{U}"],
        ["pull", "app@sha256_" + "c" * 64 + ".sif", PIN],
        [f"quay.io/hpc/app@{U}"],
    ),
    (["pull", ORAS], ["pull", "sif_2.0.sif", ORAS_PIN], ["ghcr.io/org/sif:2.0"]),
    (["pull", "x.sif", "library://lib/x:1"], ["pull", "x.sif", "library://lib/x:1"], []),
    (["pull", "a", "b", IMG], ["pull", "a", "b", IMG], []),  # 3 positionals: usage error
    (["pull", "out.sif", "--force", IMG], ["pull", "out.sif", "--force", IMG], []),  # idem
    (["pull"], ["pull"], []),
    # the user's architecture: a constraint on this host's (amd64), else apptainer's choice
    (
        ["pull", "--arch", "amd64", IMG],
        ["pull", "--arch", "amd64", "app_1.sif", PIN],
        [REF],
    ),
    (
        ["pull", "--arch", "amd64", "--arch-variant", "v3", IMG],
        ["pull", "--arch", "amd64", "--arch-variant", "v3", "app_1.sif", PIN],
        [REF],
    ),
    (["pull", "--arch", "arm64", IMG], ["pull", "--arch", "arm64", IMG], []),
    (["pull", "--arch=arm64v8", IMG], ["pull", "--arch=arm64v8", IMG], []),
    (["pull", "--platform", "linux/arm64", IMG], ["pull", "--platform", "linux/arm64", IMG], []),
    # --- build IMAGE-PATH SPEC: the spec is the second positional -----------------------
    (["build", "out.sif", IMG], ["build", "out.sif", PIN], [REF]),
    (["build", "--sandbox", "dir/", IMG], ["build", "--sandbox", "dir/", PIN], [REF]),
    (["build", "-s", "dir/", IMG], ["build", "-s", "dir/", PIN], [REF]),  # -s: --sandbox
    (["build", "-F", "--fakeroot", "o.sif", "app.def"], ["build", "-F", "--fakeroot", "o.sif", "app.def"], []),
    (["build", "out.sif", ORAS], ["build", "out.sif", ORAS_PIN], ["ghcr.io/org/sif:2.0"]),
    (["build", IMG], ["build", IMG], []),  # one positional: usage error
    (["build", "--arch", "arm64", "o.sif", IMG], ["build", "--arch", "arm64", "o.sif", IMG], []),
    # --- instances: pinned, never a login recipe ------------------------------------
    (["instance", "start", IMG, "web"], ["instance", "start", PIN, "web"], [REF]),
    (
        ["instance", "start", "-B", "/a", IMG, "web", "arg1"],
        ["instance", "start", "-B", "/a", PIN, "web", "arg1"],
        [REF],
    ),
    (["instance", "run", IMG, "web"], ["instance", "run", PIN, "web"], [REF]),
    (["instance", "list"], ["instance", "list"], []),
    (["instance", "stop", "web"], ["instance", "stop", "web"], []),
    # --- help, version and other commands pass through --------------------------------
    (["run", "--help", IMG], ["run", "--help", IMG], []),
    (["exec", "-h", IMG, "x"], ["exec", "-h", IMG, "x"], []),
    (["--help", "run", IMG], ["--help", "run", IMG], []),
    (["--version", "exec", IMG, "x"], ["--version", "exec", IMG, "x"], []),
    (["pull", "-h"], ["pull", "-h"], []),
    (["--version"], ["--version"], []),
    (["version"], ["version"], []),
    (["help", "run"], ["help", "run"], []),
    (["inspect", IMG], ["inspect", IMG], []),
    (["run-help", IMG], ["run-help", IMG], []),
    (["cache", "clean", "-f"], ["cache", "clean", "-f"], []),
    (["registry", "login", "docker://quay.io"], ["registry", "login", "docker://quay.io"], []),
    ([], [], []),
]
# fmt: on

NAMES = ("apptainer", "singularity")
NO_CACHE = Settings(decision_cache_ttl=0)


def _id(case) -> str:
    return " ".join(case[0]).replace(D, "D").replace(U, "U") or "(empty)"


@pytest.fixture(scope="module")
def zen4_facts() -> hostfacts.HostFacts:
    return zen4_host()


@pytest.fixture
def fake(monkeypatch, zen4_facts) -> FakeResolver:
    return install(monkeypatch, zen4_facts)


@pytest.fixture
def environ(tmp_path) -> dict[str, str]:
    conf = tmp_path / "registries.conf"
    conf.write_text("")
    return {"HOME": str(tmp_path), "CONTAINERS_REGISTRIES_CONF": str(conf)}


def final(
    args: list[str], environ, settings: Settings | None = None, name: str = "apptainer"
) -> list[str]:
    settings = settings or Settings(decision_cache_ttl=0)  # the decision cache has tests of its own
    personality = personalities.get(name)
    return plan(personality, personality.parse(args), settings, environ).args


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_final_argv(case, name, fake, environ):
    args, expected, asked = case
    assert final(args, environ, name=name) == expected
    assert fake.asked == asked


def test_table_is_large_enough():
    assert len(CASES) >= 60


def test_both_names_are_registered():
    for name in NAMES:
        personality = personalities.get(name)
        assert type(personality).__module__ == "shim.personality.apptainer"
        assert personality.name == name
        assert personality.grammar is apptainer


def test_the_recipe_runs_the_command_with_its_arguments_intact(tmp_path):
    """The words after the image reach the command unchanged, through a real
    /bin/sh login shell; the login shell's /etc/profile may reset PATH, the
    image's PATH stays in front."""
    tool = tmp_path / "bin"
    tool.mkdir()
    (tool / "whereami").write_text("#!/bin/sh\necho image-path\n")
    (tool / "whereami").chmod(0o755)
    env = {"PATH": f"{tool}:/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(
        [*L, "sh", "-c", 'whereami; printf "%s|" "$@"', "x", "a b", "", "$HOME", "*"],
        env=env, capture_output=True, text=True, check=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.stdout == "image-path\na b||$HOME|*|"


# ---------------------------------------------------------------- TLS: flags and environment


@pytest.mark.parametrize(
    ("args", "env", "insecure"),
    [
        (["exec", "--no-https", IMG, "x"], {}, True),
        (["pull", "--nohttps", IMG], {}, True),
        (["build", "--no-https", "o.sif", IMG], {}, True),
        (["instance", "start", "--no-https", IMG, "w"], {}, True),
        (["exec", IMG, "x"], {"APPTAINER_NOHTTPS": "1"}, True),
        (["exec", IMG, "x"], {"APPTAINER_NO_HTTPS": "true"}, True),
        (["pull", IMG], {"SINGULARITY_NOHTTPS": "TRUE"}, True),
        (["pull", IMG], {"SINGULARITY_NO_HTTPS": " t "}, True),
        (["exec", IMG, "x"], {"APPTAINER_NOHTTPS": "0"}, False),
        (["exec", IMG, "x"], {"APPTAINER_NOHTTPS": "yes"}, False),  # not a Go bool
        # APPTAINER_ set (even blank) hides the same SINGULARITY_ key
        (["exec", IMG, "x"], {"APPTAINER_NOHTTPS": "", "SINGULARITY_NOHTTPS": "1"}, False),
        # the first value found sets the flag, even to false
        (["exec", IMG, "x"], {"APPTAINER_NOHTTPS": "0", "SINGULARITY_NO_HTTPS": "1"}, False),
        (["exec", IMG, "x"], {"APPTAINER_NOHTTPS": " ", "SINGULARITY_NO_HTTPS": "1"}, True),
        # the command line wins over the environment
        (["exec", "--no-https=false", IMG, "x"], {"APPTAINER_NOHTTPS": "1"}, False),
        (["exec", IMG, "x"], {}, False),
    ],
)
def test_no_https_reaches_the_resolver(args, env, insecure, fake, environ):
    final(args, {**environ, **env})
    assert [c["insecure"] for c in fake.calls] == [insecure]


def test_environment_options_that_do_not_matter_change_nothing(fake, environ):
    env = {
        **environ,
        "APPTAINER_BIND": "/data",
        "APPTAINER_CONTAIN": "1",
        "SINGULARITY_CLEANENV": "1",
        "APPTAINERENV_FOO": "bar",
        "APPTAINER_CACHEDIR": "/tmp/c",
    }
    assert final(["exec", IMG, "ls"], env) == ["exec", PIN, *L, "ls"]
    assert final(["pull", IMG], env) == ["pull", "app_1.sif", PIN]


@pytest.mark.parametrize("var", ["APPTAINER_SHELL", "SINGULARITY_SHELL"])
def test_a_shell_chosen_in_the_environment_keeps_shell(var, fake, environ):
    env = {**environ, var: "/bin/zsh"}
    assert final(["shell", IMG], env) == ["shell", PIN]
    assert final(["run", IMG], env) == ["exec", PIN, *L]  # SHELL is read by `shell` only
    assert final(["shell", IMG], {**environ, var: "  "}) == ["exec", PIN, *L]  # blank: unset


@pytest.mark.parametrize("var", ["APPTAINER_PULL_NAME", "SINGULARITY_PULL_NAME"])
def test_pull_name_from_the_environment_is_not_overridden(var, fake, environ):
    assert final(["pull", IMG], {**environ, var: "mine.sif"}) == ["pull", PIN]


def test_pull_arch_from_the_environment(fake, environ):
    env = {**environ, "APPTAINER_PULL_ARCH": "arm64"}
    assert final(["pull", IMG], env) == ["pull", IMG]
    assert fake.asked == []
    # the flag wins over the environment
    assert final(["pull", "--arch", "amd64", IMG], env) == [
        "pull", "--arch", "amd64", "app_1.sif", PIN,
    ]  # fmt: skip
    env = {**environ, "SINGULARITY_BUILD_ARCH": "ppc64le"}
    assert final(["build", "o.sif", IMG], env) == ["build", "o.sif", IMG]
    assert final(["pull", IMG], env) == ["pull", "app_1.sif", PIN]  # BUILD_ARCH: build only


def test_the_users_platform_is_passed_as_a_constraint(fake, environ):
    final(["pull", "--arch", "amd64", "--arch-variant", "v3", IMG], environ)
    final(["pull", "--arch=amd64", IMG], environ)
    final(["build", "--platform", "linux/amd64", "o.sif", IMG], environ)
    final(["pull", IMG], {**environ, "APPTAINER_PULL_ARCH_VARIANT": "v2"})
    final(["exec", IMG, "x"], environ)
    assert fake.requested == [
        ("linux", "amd64", "v3"),
        ("linux", "amd64", None),
        ("linux", "amd64", None),
        ("linux", "amd64", "v2"),
        None,
    ]


def test_apptainer_arch_names_with_variants():
    personality = personalities.get("apptainer")
    for args, expected in [
        (["pull", "--arch", "arm64v8", IMG], ("linux", "arm64", "v8")),
        (["pull", "--arch", "arm32v7", IMG], ("linux", "arm", "v7")),
        (["pull", "--arch", "arm", "--arch-variant", "6", IMG], ("linux", "arm", "v6")),
        (["pull", "--arch", "x86_64", IMG], ("linux", "x86_64", None)),  # unknown to apptainer
        (["pull", IMG], None),
    ]:
        assert personality.requested_platform(personality.parse(args), {}) == expected


# ---------------------------------------------------------------- credentials, never logged


def test_credentials_from_flags_environment_and_files(fake, environ, capsys):
    final(["pull", "--docker-username", "u1", "--docker-password", "p1", IMG], environ)
    final(["exec", IMG, "x"], {**environ, "APPTAINER_DOCKER_USERNAME": "u2",
                               "APPTAINER_DOCKER_PASSWORD": "p2"})  # fmt: skip
    final(["exec", IMG, "x"], {**environ, "SINGULARITY_DOCKER_USERNAME": "u3",
                               "SINGULARITY_DOCKER_PASSWORD": "p3", "DOCKER_PASSWORD": "p4"})  # fmt: skip
    final(["run", IMG], {**environ, "DOCKER_USERNAME": "u5", "DOCKER_PASSWORD": "p5"})
    final(["run", IMG], {**environ, "APPTAINER_DOCKER_PASSWORD": "token"})
    final(["run", IMG], environ)
    assert [c["credentials"] for c in fake.calls] == [
        ("u1", "p1"), ("u2", "p2"), ("u3", "p3"), ("u5", "p5"), ("", "token"), None,
    ]  # fmt: skip
    captured = capsys.readouterr()
    for secret in ("p1", "p2", "p3", "p5", "token"):
        assert secret not in captured.out + captured.err


def test_authfile_flag_or_apptainers_own_docker_config(fake, environ, tmp_path):
    home = Path(environ["HOME"])
    final(["pull", "--authfile", "/a.json", IMG], environ)
    final(["exec", IMG, "x"], environ)
    final(["exec", IMG, "x"], environ, name="singularity")  # no ~/.apptainer: SingularityCE's
    (home / ".apptainer").mkdir()
    (home / ".apptainer" / "docker-config.json").write_text("{}")
    final(["exec", IMG, "x"], environ, name="singularity")
    assert [c["authfile"] for c in fake.calls] == [
        "/a.json",
        str(home / ".apptainer" / "docker-config.json"),
        str(home / ".singularity" / "docker-config.json"),
        str(home / ".apptainer" / "docker-config.json"),
    ]


def test_apptainer_registry_login_file_is_read(environ, tmp_path):
    """The file ``apptainer registry login`` writes is where shim.auth looks."""
    import base64

    from shim import auth

    home = Path(environ["HOME"])
    (home / ".apptainer").mkdir()
    token = base64.b64encode(b"alice:s3cret").decode()
    (home / ".apptainer" / "docker-config.json").write_text(
        json.dumps({"auths": {"quay.io": {"auth": token}}})
    )
    personality = personalities.get("apptainer")
    authfile = personality.authfile(personality.parse(["exec", IMG, "x"]), environ)
    assert auth.credentials("quay.io", "hpc/app", environ, authfile) == ("alice", "s3cret")


# ---------------------------------------------------------------- login setting


def test_login_never_pins_only(fake, environ):
    never = Settings(login="never", decision_cache_ttl=0)
    assert final(["run", IMG, "a"], environ, never) == ["run", PIN, "a"]
    assert final(["shell", IMG], environ, never) == ["shell", PIN]
    assert final(["exec", IMG, "ls"], environ, never) == ["exec", PIN, "ls"]


def test_login_always_applies_to_images_never_resolved(fake, environ):
    always = Settings(login="always", decision_cache_ttl=0)
    assert final(["run", "app.sif"], environ, always) == ["exec", "app.sif", *L]
    assert final(["shell", "./sandbox"], environ, always) == ["exec", "./sandbox", *L]
    assert final(["instance", "start", "app.sif", "w"], environ, always) == [
        "instance", "start", "app.sif", "w",
    ]  # fmt: skip
    assert final(["pull", "library://a/b:1"], environ, always) == ["pull", "library://a/b:1"]
    assert fake.asked == []


def test_login_auto_passthrough_leaves_the_command_alone(fake, environ):
    fake.outcome = scoring.Outcome.PASSTHROUGH
    assert final(["run", IMG], environ) == ["run", IMG]
    assert final(["pull", IMG], environ) == ["pull", IMG]  # not pinned: no name needed
    assert fake.asked == [REF, REF]


def test_application_container_gets_no_recipe(fake, environ):
    fake.annotations = {"org.supercontainers.container.kind": "application"}
    assert final(["run", IMG, "a"], environ) == ["run", PIN, "a"]
    assert final(["pull", IMG], environ) == ["pull", "app_1.sif", PIN]


# ---------------------------------------------------------------- insecure by imagefit config


def test_registry_insecure_only_by_imagefit_config_gets_no_https(fake, environ):
    settings = Settings(insecure_registries=("quay.io",), decision_cache_ttl=0)
    assert final(["run", IMG], environ, settings) == ["exec", "--no-https", PIN, *L]
    assert final(["-d", "pull", IMG], environ, settings) == [
        "-d", "pull", "--no-https", "app_1.sif", PIN,
    ]  # fmt: skip
    assert final(["build", "o.sif", IMG], environ, settings) == [
        "build", "--no-https", "o.sif", PIN,
    ]  # fmt: skip
    assert final(["instance", "start", IMG, "w"], environ, settings) == [
        "instance", "start", "--no-https", PIN, "w",
    ]  # fmt: skip
    # the user said it already: nothing added
    assert final(["exec", "--no-https", IMG, "x"], environ, settings) == [
        "exec", "--no-https", PIN, *L, "x",
    ]  # fmt: skip
    assert all(c["insecure"] for c in fake.calls)


# ---------------------------------------------------------------- refusals and failures


def test_refused_decision_raises(fake, environ):
    fake.outcome = scoring.Outcome.REFUSED
    with pytest.raises(Refusal):
        final(["exec", IMG, "x"], environ)


def test_registry_failure_fails_open(fake, environ, capsys):
    fake.error = RegistryError("registry down")
    assert final(["pull", IMG], environ) == ["pull", IMG]
    assert final(["run", "-B", "/a", IMG, "ls"], environ) == ["run", "-B", "/a", IMG, "ls"]
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(e.startswith("imagefit: ") and "registry down" in e for e in err)


# ---------------------------------------------------------------- lines the shim cannot read

BAD = [
    ["exec", "--no-such-flag", IMG, "x"],
    ["exec", "-d", IMG, "x"],  # global flags only before the command word
    ["run", "-q", IMG],
    ["exec", "--silent", IMG, "x"],
    ["run", "--config", "f", IMG],
    ["exec", "-s", "/bin/sh", IMG, "x"],  # -s is --shell in `shell` only
    ["--", "exec", IMG, "x"],  # Traverse takes `exec` as the value of a flag named ""
    ["-qc", "f", "exec", IMG, "x"],  # Traverse takes `f` as the command word
    ["--no-such", "exec", IMG, "x"],
    ["-x", "run", IMG],
    ["--contain", "exec", IMG, "x"],  # an exec flag before the command word
    ["pull", "-c", IMG],  # --contain is not a pull flag
    ["pull", "--bind", "/a", IMG],
    ["build", "--nv", "--no-such", "o.sif", IMG],
    ["instance", "start", "--pid", IMG, "w"],  # --pid: exec/run/shell/test only
    ["exec", "--runscript-timeout", "5", IMG, "x"],  # run only
    ["exec", "--bind"],
    ["shell", "--shell"],
    ["-c"],
    ["--config"],
]


@pytest.mark.parametrize("args", BAD, ids=[" ".join(a) for a in BAD])
def test_unreadable_lines_raise(args):
    with pytest.raises(ArgvError):
        apptainer.parse(args)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("args", BAD, ids=[" ".join(a) for a in BAD])
def test_unreadable_lines_run_unchanged_with_one_warning(args, name, fake, capsys, monkeypatch):
    monkeypatch.delenv("IMAGEFIT_DISABLE", raising=False)
    monkeypatch.delenv(shim.main.ACTIVE_ENV, raising=False)
    assert shim.main._final_args(name, list(args), NO_CACHE) == args
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("imagefit: ")
    assert fake.asked == []


@pytest.mark.parametrize("name", NAMES)
def test_final_args_rewrites_through_the_same_path(name, fake, monkeypatch, capsys):
    monkeypatch.delenv("IMAGEFIT_DISABLE", raising=False)
    monkeypatch.delenv(shim.main.ACTIVE_ENV, raising=False)
    assert shim.main._final_args(name, ["-s", "run", "-B", "/a", IMG, "x"], NO_CACHE) == [
        "-s", "exec", "-B", "/a", PIN, *L, "x",
    ]  # fmt: skip
    assert shim.main._final_args(name, ["pull", IMG], NO_CACHE) == ["pull", "app_1.sif", PIN]
    assert shim.main._final_args(name, ["cache", "list"], NO_CACHE) == ["cache", "list"]
    assert shim.main._final_args(name, ["exec", "app.sif", "ls"], NO_CACHE) == [
        "exec", "app.sif", "ls",
    ]  # fmt: skip
    assert capsys.readouterr().err == ""
    assert fake.asked == [REF, REF]


# ---------------------------------------------------------------- the parse itself


def test_parse_records_where_everything_is():
    inv = apptainer.parse(["-s", "pull", "--dir", "/d", "out.sif", IMG])
    assert (inv.verb, inv.images, inv.output_at, inv.insert_at) == ("pull", (5,), 4, 2)
    assert inv.global_flags == {"silent": [None]} and inv.flags == {"dir": ["/d"]}
    inv = apptainer.parse(["instance", "start", "-c", IMG, "web", "a", "b"])
    assert (inv.verb, inv.images, inv.command_at, inv.insert_at) == ("instance start", (3,), 5, 2)
    assert inv.flags == {"contain": [None]}
    inv = apptainer.parse(["shell", "-s", "/bin/zsh", IMG])
    assert inv.flags == {"shell": ["/bin/zsh"]} and inv.command_at is None
    inv = apptainer.parse(["build", "-s", "dir", IMG])
    assert (inv.images, inv.flags) == ((3,), {"sandbox": [None]})
    inv = apptainer.parse(["-c", "f", "exec", "--nohttps", IMG, "ls"])
    assert inv.global_flags == {"config": ["f"]} and inv.flags == {"no-https": [None]}
    assert (inv.images, inv.command_at) == ((4,), 5)
