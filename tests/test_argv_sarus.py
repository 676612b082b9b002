"""Sarus command lines through the shim: the exact pre-steps and final argv.

Each case is a Sarus command line (argv without argv[0]), the exact pre-steps
the shim must run first (each an argv without argv[0]), the exact argv it
must exec, and the references it must have asked the resolver for
(normalised, in order). Expectations are written out literally; nothing is
computed by the code under test. The resolver and the host facts are faked
(no registry I/O): every resolved image selects the build ``D``.

How Sarus reads a line comes from its source (Sarus cannot be installed
here): eth-cscs/sarus src/cli/Utility.cpp ``groupOptionsAndPositionalArguments``
(where the image is), CommandRun.hpp/CommandPull.hpp (the options), and
boost::program_options ``unix_style`` (boostorg/program_options
src/cmdline.cpp: abbreviations, ``--opt=`` refused; value_semantic.cpp: an
option given twice). See shim/argv/sarus.py and shim/argv/sarus_table.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import hostfacts
import scoring
import shim.login
import shim.main
import shim.resolve
from shim import personality as personalities
from shim.argv import sarus
from shim.argv import sarus_table as T
from shim.config import Settings
from shim.errors import ArgvError, Refusal, RegistryError
from shim.intercept import plan
from tests.support.fake_resolver import D, FakeResolver, U, install, zen4_host  # noqa: F401

#: The digest of the build the fake resolver chooses.
#: An index digest a user may already have pinned.
#: The login recipe: no image ENTRYPOINT (two words: ``--entrypoint=`` is a boost error)...
EP = ["--entrypoint", ""]
#: ...and a login shell in front of the user's command, right after the image.
SH = ["/bin/sh", "-c", shim.login.OUTER, "sh"]

IMG = "quay.io/hpc/app:1"
PIN = f"quay.io/hpc/app@{D}"
PULL = [["pull", PIN]]
HUB = f"docker.io/library/ubuntu@{D}"
HEX64 = "0123456789abcdef" * 4

# (args, pre-steps, final argv, references the resolver was asked for)
# fmt: off
CASES: list[tuple[list[str], list[list[str]], list[str], list[str]]] = [
    # --- run: the plain case, a command, bundled ("sticky") short booleans ----------------
    (["run", IMG], PULL, ["run", *EP, PIN, *SH], [IMG]),
    (["run", IMG, "gmx", "mdrun", "-v"], PULL, ["run", *EP, PIN, *SH, "gmx", "mdrun", "-v"], [IMG]),
    (["run", "-t", IMG, "bash"], PULL, ["run", *EP, "-t", PIN, *SH, "bash"], [IMG]),
    (["run", "--tty", "--mpi", IMG], PULL, ["run", *EP, "--tty", "--mpi", PIN, *SH], [IMG]),
    (["run", "-tm", IMG, "a"], PULL, ["run", *EP, "-tm", PIN, *SH, "a"], [IMG]),
    (["run", "-mt", IMG], PULL, ["run", *EP, "-mt", PIN, *SH], [IMG]),
    # the first value letter takes the rest of the word, else the next word
    (["run", "-tw/work", IMG], PULL, ["run", *EP, "-tw/work", PIN, *SH], [IMG]),
    (["run", "-tw", "/work", IMG], PULL, ["run", *EP, "-tw", "/work", PIN, *SH], [IMG]),
    (["run", "-eX=1", IMG], PULL, ["run", *EP, "-eX=1", PIN, *SH], [IMG]),
    # --- run: value options, both spellings ------------------------------------------------
    (["run", "-e", "X=1", IMG], PULL, ["run", *EP, "-e", "X=1", PIN, *SH], [IMG]),
    (["run", "--env=X=1", IMG], PULL, ["run", *EP, "--env=X=1", PIN, *SH], [IMG]),
    (["run", "-e", "A=1", "--env", "B", "-e", "C=3", IMG], PULL,
     ["run", *EP, "-e", "A=1", "--env", "B", "-e", "C=3", PIN, *SH], [IMG]),  # --env repeats
    (["run", "--workdir=/w", IMG], PULL, ["run", *EP, "--workdir=/w", PIN, *SH], [IMG]),
    (["run", "-w", "/w", "-n", "job1", IMG], PULL,
     ["run", *EP, "-w", "/w", "-n", "job1", PIN, *SH], [IMG]),
    (["run", "--mount", "type=bind,src=/a,dst=/b", "--mount=type=bind,src=/c,dst=/d", IMG], PULL,
     ["run", *EP, "--mount", "type=bind,src=/a,dst=/b", "--mount=type=bind,src=/c,dst=/d", PIN, *SH],
     [IMG]),
    (["run", "--device", "/dev/fuse", "--pid", "private", "--init", IMG], PULL,
     ["run", *EP, "--device", "/dev/fuse", "--pid", "private", "--init", PIN, *SH], [IMG]),
    (["run", "--ssh", "--glibc", IMG], PULL, ["run", *EP, "--ssh", "--glibc", PIN, *SH], [IMG]),
    # --- a value option takes the next word unless it is a single-dash option word --------
    (["run", "--workdir", "--tty", IMG], PULL, ["run", *EP, "--workdir", "--tty", PIN, *SH], [IMG]),
    (["run", "--name", "--", IMG, "x"], PULL, ["run", *EP, "--name", "--", PIN, *SH, "x"], [IMG]),
    (["run", "-n", "-", IMG], PULL, ["run", *EP, "-n", "-", PIN, *SH], [IMG]),
    (["run", "--name", "", IMG], PULL, ["run", *EP, "--name", "", PIN, *SH], [IMG]),
    (["run", "-e", IMG, "ubuntu"], [["pull", HUB]], ["run", *EP, "-e", IMG, HUB, *SH],
     ["docker.io/library/ubuntu"]),  # IMG is -e's value; the image is "ubuntu"
    # --- unambiguous prefixes (boost allow_guessing): booleans, and --prefix=value --------
    (["run", "--gl", "--in", IMG], PULL, ["run", *EP, "--gl", "--in", PIN, *SH], [IMG]),
    (["run", "--mpi-t=mpich", IMG], PULL, ["run", *EP, "--mpi-t=mpich", PIN, *SH], [IMG]),
    (["run", "--ann=com.hooks.x=1", IMG], PULL, ["run", *EP, "--ann=com.hooks.x=1", PIN, *SH], [IMG]),
    # --- MPI, hooks and annotations are the site's business: passed through untouched -----
    (["run", "--mpi", "--annotation", "com.hooks.ssh.port=15263", IMG, "./app"], PULL,
     ["run", *EP, "--mpi", "--annotation", "com.hooks.ssh.port=15263", PIN, *SH, "./app"], [IMG]),
    (["run", "--mpi-type", "mpich", "--annotation=a=b", "--annotation", "c=d", IMG], PULL,
     ["run", *EP, "--mpi-type", "mpich", "--annotation=a=b", "--annotation", "c=d", PIN, *SH], [IMG]),
    (["run", "-m", "--mpi-type=pmix", IMG, "hostname"], PULL,
     ["run", *EP, "-m", "--mpi-type=pmix", PIN, *SH, "hostname"], [IMG]),
    # --- the user chose the entrypoint: no recipe at all (theirs runs their arguments) -----
    (["run", "--entrypoint", "/bin/bash", IMG, "-c", "x"], PULL,
     ["run", "--entrypoint", "/bin/bash", PIN, "-c", "x"], [IMG]),
    (["run", "--entrypoint", "", IMG, "ls"], PULL, ["run", "--entrypoint", "", PIN, "ls"], [IMG]),
    (["run", "--ent=python3 -u", IMG], PULL, ["run", "--ent=python3 -u", PIN], [IMG]),
    (["run", "--entrypoint", "--tty", IMG], PULL, ["run", "--entrypoint", "--tty", PIN], [IMG]),
    # --- global options: before the command word, also given to the pull ------------------
    (["--verbose", "run", IMG], [["--verbose", "pull", PIN]], ["--verbose", "run", *EP, PIN, *SH], [IMG]),
    (["--debug", "--verb", "run", "-t", IMG, "sh"], [["--debug", "--verb", "pull", PIN]],
     ["--debug", "--verb", "run", *EP, "-t", PIN, *SH, "sh"], [IMG]),
    # --- after the image everything is the container's, never read -------------------------
    (["run", IMG, "sarus", "run", "--mpi", "other.io/x:1"], PULL,
     ["run", *EP, PIN, *SH, "sarus", "run", "--mpi", "other.io/x:1"], [IMG]),
    (["run", IMG, "--help"], PULL, ["run", *EP, PIN, *SH, "--help"], [IMG]),
    (["run", IMG, "-t", "--no-such-flag"], PULL, ["run", *EP, PIN, *SH, "-t", "--no-such-flag"], [IMG]),
    (["run", IMG, "--", "-x"], PULL, ["run", *EP, PIN, *SH, "--", "-x"], [IMG]),
    (["run", IMG, "quay.io/hpc/app:2"], PULL, ["run", *EP, PIN, *SH, "quay.io/hpc/app:2"], [IMG]),
    # --- a bare `--` is no end-of-options marker: it IS the image (Sarus then refuses it) --
    (["run", "--", IMG], [], ["run", "--", IMG], []),
    (["run", "-t", "--", "ls"], [], ["run", "-t", "--", "ls"], []),
    (["run", "-", IMG], [], ["run", "-", IMG], []),
    (["run", "---x", IMG], [], ["run", "---x", IMG], []),
    # --- how references are read: short names are Docker Hub's, no search ----------------
    (["run", "ubuntu"], [["pull", HUB]], ["run", *EP, HUB, *SH], ["docker.io/library/ubuntu"]),
    (["run", "ubuntu:22.04", "ls"], [["pull", HUB]], ["run", *EP, HUB, *SH, "ls"],
     ["docker.io/library/ubuntu:22.04"]),
    (["run", "index.docker.io/hpc/app:2024"], [["pull", f"docker.io/hpc/app@{D}"]],
     ["run", *EP, f"docker.io/hpc/app@{D}", *SH], ["docker.io/hpc/app:2024"]),
    (["run", "127.0.0.1:5000/a/b:1"], [["pull", f"127.0.0.1:5000/a/b@{D}"]],
     ["run", *EP, f"127.0.0.1:5000/a/b@{D}", *SH], ["127.0.0.1:5000/a/b:1"]),
    (["run", "localhost/x:1"], [["pull", f"localhost/x@{D}"]], ["run", *EP, f"localhost/x@{D}", *SH],
     ["localhost/x:1"]),  # for Sarus a registry on localhost, not a local image
    # already pinned, with or without a tag (Sarus ignores the tag): resolved all the same
    (["run", f"quay.io/hpc/app@{U}"], PULL, ["run", *EP, PIN, *SH], [f"quay.io/hpc/app@{U}"]),
    (["run", f"quay.io/hpc/app:1@{U}"], PULL, ["run", *EP, PIN, *SH], [f"quay.io/hpc/app@{U}"]),
    # --- images never resolved, and no recipe either ---------------------------------------
    (["run", "load/library/mine:1", "sh"], [], ["run", "load/library/mine:1", "sh"], []),
    (["run", "quay.io/Hpc/App:1"], [], ["run", "quay.io/Hpc/App:1"], []),
    (["run", "docker://quay.io/a/b:1"], [], ["run", "docker://quay.io/a/b:1"], []),
    (["run", HEX64], [], ["run", HEX64], []),
    (["run", "a/../b"], [], ["run", "a/../b"], []),
    (["run"], [], ["run"], []),
    (["run", "-t"], [], ["run", "-t"], []),
    # --- the centralized repository is the administrator's: stand aside -------------------
    (["run", "--centralized-repository", IMG], [], ["run", "--centralized-repository", IMG], []),
    (["run", "--cent", "-t", IMG, "sh"], [], ["run", "--cent", "-t", IMG, "sh"], []),
    (["pull", "--centralized-repository", IMG], [], ["pull", "--centralized-repository", IMG], []),
    (["pull", "--containers-storage", IMG], [], ["pull", "--containers-storage", IMG], []),
    # --- pull: only rewritten, its own options kept, never a recipe or a pre-step ---------
    (["pull", IMG], [], ["pull", PIN], [IMG]),
    (["pull", "--temp-dir", "/scratch", IMG], [], ["pull", "--temp-dir", "/scratch", PIN], [IMG]),
    (["pull", "--temp-dir=/scratch", "--login", IMG], [], ["pull", "--temp-dir=/scratch", "--login", PIN],
     [IMG]),
    (["pull", "-u", "alice", "--password-stdin", IMG], [], ["pull", "-u", "alice", "--password-stdin", PIN],
     [IMG]),
    (["pull", "--username=alice", "--pass", IMG], [], ["pull", "--username=alice", "--pass", PIN], [IMG]),
    (["--debug", "pull", "ubuntu"], [], ["--debug", "pull", HUB], ["docker.io/library/ubuntu"]),
    (["pull", "--"], [], ["pull", "--"], []),  # the image named "--"
    (["pull"], [], ["pull"], []),
    # --- not intercepted at all ---------------------------------------------------------------
    (["images"], [], ["images"], []),
    (["images", "--digests"], [], ["images", "--digests"], []),
    (["rmi", IMG], [], ["rmi", IMG], []),
    (["load", "a.tar", "mine"], [], ["load", "a.tar", "mine"], []),
    (["help", "run"], [], ["help", "run"], []),
    (["--help", "run", IMG], [], ["--help", "run", IMG], []),  # --help overrides the rest
    (["--version", "run", "--no-such-flag", IMG], [], ["--version", "run", "--no-such-flag", IMG], []),
    (["version"], [], ["version"], []),
    (["ps"], [], ["ps"], []),
    (["hooks", "--mpi"], [], ["hooks", "--mpi"], []),
    (["ssh-keygen"], [], ["ssh-keygen"], []),
    (["--debug"], [], ["--debug"], []),
    ([], [], [], []),
]
# fmt: on


def _id(case) -> str:
    return " ".join(repr(w) if w in ("", " ") else w for w in case[0]).replace(D, "D") or "(empty)"


@pytest.fixture(scope="module")
def zen4_facts() -> hostfacts.HostFacts:
    return zen4_host()


@pytest.fixture
def fake(monkeypatch, zen4_facts) -> FakeResolver:
    return install(monkeypatch, zen4_facts, amd64_user=False)


@pytest.fixture
def environ(tmp_path) -> dict[str, str]:
    conf = tmp_path / "registries.conf"
    conf.write_text("")
    return {
        "HOME": str(tmp_path),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),  # no decision cached by another test
        "CONTAINERS_REGISTRIES_CONF": str(conf),
    }


def planned(args: list[str], environ, settings: Settings | None = None):
    return plan(personalities.get("sarus"), sarus.parse(args), settings or Settings(), environ)


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_final_argv_and_pre_steps(case, fake, environ):
    args, before, expected, asked = case
    result = planned(args, environ)
    assert result.before == before
    assert result.args == expected
    assert fake.asked == asked


def test_table_is_large_enough():
    assert len(CASES) >= 40


def test_the_personality_is_registered():
    found = personalities.get("sarus")
    assert found is not None and found.grammar is sarus and found.login_verbs == {"run"}
    assert found.tls_flag is None  # Sarus has no command-line TLS switch


def test_every_short_option_of_the_table_has_a_long_name():
    for table, values, bools in (
        (sarus.RUN, T.RUN_VALUE, T.RUN_BOOL),
        (sarus.PULL, T.PULL_VALUE, T.PULL_BOOL),
    ):
        letters = {n for n in values | bools if len(n) == 1}
        assert set(table.short) == letters
        for letter, name in table.short.items():
            assert (name in table.value) == (letter in values), letter


# ---------------------------------------------------------------- what the parser records


def test_parse_records_options_image_and_command():
    inv = sarus.parse(
        ["--verbose", "run", "-tw/w", "--mpi-t=mpich", "-e", "A", "-eB", IMG, "ls", "-l"]
    )
    assert inv.verb == "run" and inv.images == (7,) and inv.insert_at == 2 and inv.command_at == 8
    assert inv.global_flags == {"verbose": [None]}
    assert inv.flags == {"tty": [None], "workdir": ["/w"], "mpi-type": ["mpich"], "env": ["A", "B"]}


def test_parse_of_pull():
    inv = sarus.parse(["pull", "--login", "-u", "bob", "--temp=/t", IMG])
    assert inv.verb == "pull" and inv.images == (5,) and inv.command_at is None
    assert inv.flags == {"login": [None], "username": ["bob"], "temp-dir": ["/t"]}


# ---------------------------------------------------------------- login setting


def test_login_never_still_pulls_first(fake, environ):
    result = planned(["run", "-t", IMG, "sh"], environ, Settings(login="never"))
    assert result.before == PULL
    assert result.args == ["run", "-t", PIN, "sh"]


def test_login_always_on_a_passthrough_decision_adds_the_recipe_without_pull(fake, environ):
    fake.outcome = scoring.Outcome.PASSTHROUGH
    result = planned(["run", "-t", IMG, "sh"], environ, Settings(login="always"))
    assert result.before == []
    assert result.args == ["run", *EP, "-t", IMG, *SH, "sh"]


def test_login_auto_passthrough_leaves_the_command_alone(fake, environ):
    fake.outcome = scoring.Outcome.PASSTHROUGH
    result = planned(["run", "-t", IMG, "sh"], environ)
    assert (result.before, result.args) == ([], ["run", "-t", IMG, "sh"])
    assert fake.asked == [IMG]


def test_application_container_gets_the_pull_but_no_recipe(fake, environ):
    fake.annotations = {"org.supercontainers.container.kind": "application"}
    result = planned(["run", IMG, "serve"], environ)
    assert (result.before, result.args) == (PULL, ["run", PIN, "serve"])


def test_imagefit_login_variable_turns_the_recipe_off(fake, environ):
    from shim import config

    settings = config.load(
        {**environ, "IMAGEFIT_LOGIN": "0", "IMAGEFIT_SITE_CONFIG": "/nonexistent"}
    )
    result = planned(["run", IMG], environ, settings)
    assert (result.before, result.args) == (PULL, ["run", PIN])


# ---------------------------------------------------------------- refusals and failures


def test_refused_decision_raises(fake, environ):
    fake.outcome = scoring.Outcome.REFUSED
    with pytest.raises(Refusal):
        planned(["run", IMG], environ)


def test_registry_failure_fails_open_with_no_pull(fake, environ, capsys):
    fake.error = RegistryError("registry down")
    result = planned(["run", "-t", IMG, "ls"], environ)
    assert (result.before, result.args) == ([], ["run", "-t", IMG, "ls"])
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("imagefit: ") and "registry down" in err[0]


# ---------------------------------------------------------------- TLS


def test_registry_insecure_in_registries_conf_is_resolved_without_tls(fake, environ, capsys):
    Path(environ["CONTAINERS_REGISTRIES_CONF"]).write_text(
        '[[registry]]\nlocation = "quay.io"\ninsecure = true\n'
    )
    assert planned(["run", IMG], environ).args == ["run", *EP, PIN, *SH]
    assert fake.calls[0]["insecure"] is True
    assert capsys.readouterr().err == ""  # Skopeo reads the same file: nothing to say


def test_registry_insecure_only_by_imagefit_config_warns_once(fake, environ, capsys):
    result = planned(["run", IMG], environ, Settings(insecure_registries=("quay.io",)))
    assert (result.before, result.args) == (PULL, ["run", *EP, PIN, *SH])  # no flag to add
    assert fake.calls[0]["insecure"] is True
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("imagefit: quay.io is insecure only by")


def test_no_platform_or_credentials_from_the_command_line(fake, environ):
    planned(["pull", "-u", "alice", IMG], environ)
    assert [(c["insecure"], c["authfile"], c["platform"]) for c in fake.calls] == [
        (False, None, None)
    ]


# ---------------------------------------------------------------- lines the shim cannot read

BAD = [
    ["run", "--no-such-flag", IMG],
    ["run", "-Z", IMG],
    ["run", "-tZ", IMG],
    ["run", "-t=1", IMG],
    ["run", "-tt", IMG],  # boost: option '--tty' cannot be specified more than once
    ["run", "--tty", "-t", IMG],
    ["run", "--name", "a", "-n", "b", IMG],
    ["run", "--entrypoint", "a", "--entrypoint=b", IMG],
    ["run", "--entrypoint=", IMG],  # boost: empty adjacent parameter
    ["run", "--ent", "/x", IMG],  # Sarus's split makes /x the image, boost misses the value
    ["run", "--m", IMG],  # ambiguous: --mount, --mpi, --mpi-type
    ["run", "--mpi=yes", IMG],  # a boolean takes no value
    ["run", "--workdir"],
    ["run", "-w", "-t", IMG],  # a value option never takes a single-dash option word
    ["run", "-tw"],
    ["run", "--help", IMG],  # commands have no --help (`sarus help run`)
    ["run", "-h", IMG],
    ["run", "--debug", IMG],  # a global option after the command
    ["run", "--temp-dir", "/t", IMG],  # a pull option
    ["--no-such-flag", "run", IMG],
    ["-v", "run", IMG],  # globals have no short forms
    ["--ver", "run", IMG],  # ambiguous: --verbose, --version
    ["--debug=1", "run", IMG],
    ["pull", IMG, "--login"],  # pull: one positional, options before it only
    ["pull", IMG, IMG],
    ["pull", "--mount", "x", IMG],
    ["pull", "-t", IMG],
    ["pull", "-u"],
    ["pull", "--login", "--login", IMG],
]


@pytest.mark.parametrize("args", BAD, ids=[" ".join(a) for a in BAD])
def test_unreadable_lines_raise(args):
    with pytest.raises(ArgvError):
        sarus.parse(args)


@pytest.mark.parametrize("args", BAD, ids=[" ".join(a) for a in BAD])
def test_unreadable_lines_run_unchanged_with_one_warning(args, fake, capsys, monkeypatch):
    monkeypatch.delenv("IMAGEFIT_DISABLE", raising=False)
    monkeypatch.delenv(shim.main.ACTIVE_ENV, raising=False)
    assert shim.main._final_args("sarus", list(args), Settings()) == args
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("imagefit: ")
    assert fake.asked == []


def test_final_args_rewrites_through_the_same_path(fake, monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("IMAGEFIT_DISABLE", raising=False)
    monkeypatch.delenv(shim.main.ACTIVE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", os.devnull)
    assert shim.main._final_args("sarus", ["run", "-t", IMG], Settings()) == [
        "run", *EP, "-t", PIN, *SH,
    ]  # fmt: skip
    assert shim.main._final_args("sarus", ["images"], Settings()) == ["images"]
    assert capsys.readouterr().err == ""
    assert fake.asked == [IMG]
