"""``ch-image`` command lines through the shim: the exact final argv.

Each case is a ch-image command line (argv without argv[0]), the exact argv
the shim must exec and the references it must have asked the resolver for
(normalised, in order). Expectations are written out literally; the
resolver and the host facts are faked (every resolved image selects the
build ``D``).

The grammar is Charliecloud 0.31's (/usr/bin/ch-image ``main``: argparse,
common options before and after the subcommand; lib/image.py
``GRAMMAR_IMAGE_REF``). Where Debian's ch-image is installed, every line of
the tables is also read by **ch-image's own argparse parsers**
(tests/support/ch_image_argparse.py): the shim's parse must find the same
source and destination, the same refusals, and each rewritten line must
read as a pull of the pinned digest into the user's name with
``--arch=yolo``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import scoring
import shim.main
from shim import personality as personalities
from shim.argv import charliecloud
from shim.config import Settings
from shim.errors import ArgvError, RegistryError
from shim.intercept import plan
from tests.support import ch_image_argparse
from tests.support.fake_resolver import D, U, install, zen4_host
from tests.support.fixtures import missing_tool

IMG = "quay.io/hpc/app:1"
PIN = f"quay.io/hpc/app@{D}"
Y = "--arch=yolo"
HUB = f"registry-1.docker.io/library/alpine@{D}"

# (args, final argv, references the resolver was asked for)
# fmt: off
CASES: list[tuple[list[str], list[str], list[str]]] = [
    # --- the plain pull: pinned source, the user's name as DEST_REF, --arch=yolo before it --
    (["pull", IMG], ["pull", Y, PIN, IMG], [IMG]),
    (["pull", IMG, "mine"], ["pull", Y, PIN, "mine"], [IMG]),  # the user's DEST_REF kept
    (["pull", IMG, IMG], ["pull", Y, PIN, IMG], [IMG]),
    (["pull", IMG, "-v"], ["pull", Y, PIN, IMG, "-v"], [IMG]),
    # --- common options, before and after the subcommand, kept where they were -------------
    (["-v", "pull", IMG], ["-v", "pull", Y, PIN, IMG], [IMG]),
    (["pull", "-v", IMG], ["pull", "-v", Y, PIN, IMG], [IMG]),
    (["pull", "-vv", "--debug", IMG], ["pull", "-vv", "--debug", Y, PIN, IMG], [IMG]),
    (["pull", "--tls-no-verify", IMG], ["pull", "--tls-no-verify", Y, PIN, IMG], [IMG]),
    (["--tls-no-verify", "-s", "/st", "pull", IMG],
     ["--tls-no-verify", "-s", "/st", "pull", Y, PIN, IMG], [IMG]),
    (["pull", "--tls-no", "--stor=/s", IMG], ["pull", "--tls-no", "--stor=/s", Y, PIN, IMG], [IMG]),
    (["pull", "-s/st", "--no-lock", IMG, "d"], ["pull", "-s/st", "--no-lock", Y, PIN, "d"], [IMG]),
    (["pull", "--last-layer", "1", IMG], ["pull", "--last-layer", "1", Y, PIN, IMG], [IMG]),
    (["pull", "--always-download", "--no-cache", IMG],
     ["pull", "--always-download", "--no-cache", Y, PIN, IMG], [IMG]),
    (["--cache", "pull", "--rebuild", IMG], ["--cache", "pull", "--rebuild", Y, PIN, IMG], [IMG]),
    (["pull", "--cache-large", "4", "--password-many", IMG],
     ["pull", "--cache-large", "4", "--password-many", Y, PIN, IMG], [IMG]),
    # --- the user's architecture (the host's): a constraint; yolo goes after their last -a --
    (["pull", "-a", "amd64", IMG], ["pull", "-a", "amd64", Y, PIN, IMG], [IMG]),
    (["pull", "-aamd64", IMG], ["pull", "-aamd64", Y, PIN, IMG], [IMG]),
    (["pull", "--arch=amd64", IMG, "d"], ["pull", "--arch=amd64", Y, PIN, "d"], [IMG]),
    (["pull", IMG, "-a", "amd64"], ["pull", PIN, IMG, "-a", "amd64", Y], [IMG]),
    (["pull", "-vva", "amd64", IMG], ["pull", "-vva", "amd64", Y, PIN, IMG], [IMG]),
    (["pull", "-a", "amd64", "-v", "--arch", "host", IMG],
     ["pull", "-a", "amd64", "-v", "--arch", "host", Y, PIN, IMG], [IMG]),
    (["-a", "amd64", "pull", IMG], ["-a", "amd64", "pull", Y, PIN, IMG], [IMG]),
    (["pull", "-a", "amd64/v3", IMG], ["pull", "-a", "amd64/v3", Y, PIN, IMG], [IMG]),
    # --- the end of options: yolo before it, the destination right after the source -------
    (["pull", "--", IMG], ["pull", Y, "--", PIN, IMG], [IMG]),
    (["pull", "-v", "--", IMG, "d"], ["pull", "-v", Y, "--", PIN, "d"], [IMG]),
    (["pull", IMG, "--"], ["pull", Y, PIN, IMG, "--"], [IMG]),
    (["pull", IMG, "--", "d"], ["pull", Y, PIN, "d"][:3] + ["--", "d"], [IMG]),
    # --- how ch-image reads references -----------------------------------------------------
    (["pull", "alpine:3.19"], ["pull", Y, HUB, "alpine:3.19"], ["docker.io/library/alpine:3.19"]),
    (["pull", "alpine"], ["pull", Y, HUB, "alpine"], ["docker.io/library/alpine"]),
    (["pull", "hpc/app"], ["pull", Y, f"registry-1.docker.io/hpc/app@{D}", "hpc/app"],
     ["docker.io/hpc/app"]),
    (["pull", "127.0.0.1:5000/a/b:1"], ["pull", Y, f"127.0.0.1:5000/a/b@{D}", "127.0.0.1:5000/a/b:1"],
     ["127.0.0.1:5000/a/b:1"]),
    (["pull", "localhost:5000/x:1"], ["pull", Y, f"localhost:5000/x@{D}", "localhost:5000/x:1"],
     ["localhost:5000/x:1"]),  # a port makes it a host for ch-image too
    (["pull", "127.0.0.1+5000%a%b+1"], ["pull", Y, f"127.0.0.1:5000/a/b@{D}", "127.0.0.1+5000%a%b+1"],
     ["127.0.0.1:5000/a/b:1"]),  # ch-image's file-name form
    (["pull", f"quay.io/hpc/app@{U}"], ["pull", Y, PIN, f"quay.io/hpc/app@{U}"],
     [f"quay.io/hpc/app@{U}"]),  # an index digest: the build chosen from it, stored under it
    # --- references left alone -------------------------------------------------------------
    (["pull", "localhost/x:1"], ["pull", "localhost/x:1"], []),  # Docker Hub's localhost/x for ch-image
    (["pull", "Hpc/app:1"], ["pull", "Hpc/app:1"], []),
    (["pull", f"quay.io/hpc/app:1@{U}"], ["pull", f"quay.io/hpc/app:1@{U}"], []),  # tag and digest
    (["pull", "quay.io/hpc/app@sha512:" + "a" * 128], ["pull", "quay.io/hpc/app@sha512:" + "a" * 128], []),
    (["pull", "registry-1.docker.io/alpine"], ["pull", "registry-1.docker.io/alpine"], []),
    (["pull", "quay.io/hpc/app:$TAG"], ["pull", "quay.io/hpc/app:$TAG"], []),
    # --- another architecture, yolo, a spelling ch-image would not find: stand aside -------
    (["pull", "-a", "arm64", IMG], ["pull", "-a", "arm64", IMG], []),
    (["pull", "-a", "arm64/v8", IMG], ["pull", "-a", "arm64/v8", IMG], []),
    (["-a", "ppc64le", "pull", IMG], ["-a", "ppc64le", "pull", IMG], []),
    (["pull", "--arch=yolo", IMG], ["pull", "--arch=yolo", IMG], []),
    (["pull", "-a", "x86_64", IMG], ["pull", "-a", "x86_64", IMG], []),
    (["pull", "-a", "amd64/", IMG], ["pull", "-a", "amd64/", IMG], []),
    (["-a", "amd64", "pull", "-a", "arm64", IMG], ["-a", "amd64", "pull", "-a", "arm64", IMG], []),
    # --- nothing pulled, or printed and exited --------------------------------------------
    (["pull", "--parse-only", IMG], ["pull", "--parse-only", IMG], []),
    (["pull", "--help"], ["pull", "--help"], []),
    (["pull", "-h", IMG], ["pull", "-h", IMG], []),
    (["--version", "pull", IMG], ["--version", "pull", IMG], []),
    (["pull", "--version", IMG], ["pull", "--version", IMG], []),
    (["pull", "--dependencies", IMG], ["pull", "--dependencies", IMG], []),
    # --- other subcommands: not intercepted -----------------------------------------------
    (["build", "-t", "app", "."], ["build", "-t", "app", "."], []),
    (["push", "app", IMG], ["push", "app", IMG], []),
    (["list"], ["list"], []),
    (["list", IMG], ["list", IMG], []),
    (["delete", "app"], ["delete", "app"], []),
    (["import", "app.tar", "app"], ["import", "app.tar", "app"], []),
    (["gestalt", "storage-path"], ["gestalt", "storage-path"], []),
    (["-v"], ["-v"], []),
    ([], [], []),
]
# fmt: on

#: lines ch-image's argparse refuses: run unchanged, ch-image says why
BAD = [
    ["pull"],
    ["pull", IMG, "-v", "dest"],  # DEST_REF after an option that follows the source
    ["pull", IMG, "dest", "extra"],
    ["pull", "--no-", IMG],  # ambiguous: --no-cache, --no-lock
    ["pull", "--ca", IMG],  # ambiguous: --cache, --cache-large
    ["pull", "--no-such-option", IMG],
    ["pull", "-x", IMG],
    ["pull", "-vx", IMG],
    ["pull", "-v=3", IMG],
    ["pull", "--tls-no-verify=1", IMG],
    ["pull", "-a"],
    ["pull", "-a", "--", IMG],
    ["pull", "-a", "-v", IMG],
    ["pull", "--cache", "--no-cache", IMG],
    ["--cache", "--rebuild", "pull", IMG],
    ["pull", "--last-layer"],
    ["--no-such-option", "pull", IMG],
]


def _id(case) -> str:
    return " ".join(case[0]).replace(D, "D").replace(U, "U") or "(empty)"


@pytest.fixture
def fake(monkeypatch):
    return install(monkeypatch, zen4_host(), amd64_user=True)


@pytest.fixture
def environ(tmp_path) -> dict[str, str]:
    conf = tmp_path / "registries.conf"
    conf.write_text("")
    return {
        "HOME": str(tmp_path),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),  # no decision cached by another test
        "CONTAINERS_REGISTRIES_CONF": str(conf),
    }


def planned(args, environ, settings: Settings | None = None):
    return plan(
        personalities.get("ch-image"), charliecloud.parse(args), settings or Settings(), environ
    )


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_final_argv(case, fake, environ):
    args, expected, asked = case
    result = planned(args, environ)
    assert result.args == expected
    assert (result.before, result.after) == ([], [])
    assert fake.asked == asked


def test_tables_are_large_enough():
    assert len(CASES) >= 40 and len(BAD) >= 15


@pytest.mark.parametrize("args", BAD, ids=[" ".join(a) for a in BAD])
def test_unreadable_lines_raise(args):
    with pytest.raises(ArgvError):
        charliecloud.parse(args)


@pytest.mark.parametrize("args", BAD[:6], ids=[" ".join(a) for a in BAD[:6]])
def test_unreadable_lines_run_unchanged_with_one_warning(args, fake, capsys, monkeypatch):
    monkeypatch.delenv("IMAGEFIT_DISABLE", raising=False)
    monkeypatch.delenv(shim.main.ACTIVE_ENV, raising=False)
    assert shim.main._final_args("ch-image", list(args), Settings()) == args
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("imagefit: ")
    assert fake.asked == []


def test_the_personality_is_registered():
    found = personalities.get("ch-image")
    assert found is not None and found.grammar is charliecloud
    assert found.login_verbs == frozenset() and found.tls_flag is None
    assert personalities.get("ch-run") is None  # ch-run runs stored images: no shim


# ---------------------------------------------------------------- ch-image's own argparse


def _positions(args):
    inv = charliecloud.parse(args)
    if inv.verb != "pull":
        return None
    return inv.args[inv.images[0]], (None if inv.output_at is None else inv.args[inv.output_at])


def test_ch_image_argparse_reads_every_line_as_the_shim(fake, environ):
    if not ch_image_argparse.available():
        missing_tool(f"{ch_image_argparse.CH_IMAGE} (Debian's charliecloud) missing")
    finals = [planned(args, environ).args for args, _e, _a in CASES]
    lines = [args for args, _e, _a in CASES] + finals + BAD
    real = ch_image_argparse.read_lines(lines)
    given, rewritten, bad = (
        real[: len(CASES)],
        real[len(CASES) : 2 * len(CASES)],
        real[2 * len(CASES) :],
    )
    for (args, _expected, _asked), got in zip(CASES, given, strict=True):
        mine = _positions(args)
        if mine is None:
            assert got.get("verb") != "pull", (args, got)
        else:
            assert (got["verb"], got["source"], got["dest"]) == ("pull", *mine), (args, got)
    for (args, _expected, _asked), final, got in zip(CASES, finals, rewritten, strict=True):
        if final == args:
            continue
        source, dest = _positions(args)
        assert got["verb"] == "pull" and got["arch"] == "yolo", (final, got)
        assert got["source"] == PIN or got["source"].endswith("@" + D), (final, got)
        assert got["dest"] == (dest if dest is not None else source), (final, got)
    for args, got in zip(BAD, bad, strict=True):
        assert "exit" in got and got["exit"] != 0, (args, got)


# ---------------------------------------------------------------- TLS, credentials, platform


def test_tls_verified_unless_tls_no_verify_whatever_other_files_say(fake, environ):
    Path(environ["CONTAINERS_REGISTRIES_CONF"]).write_text(
        '[[registry]]\nlocation = "quay.io"\ninsecure = true\n'
    )
    settings = Settings(insecure_registries=("quay.io",))
    assert planned(["pull", IMG], environ, settings).args == ["pull", Y, PIN, IMG]
    planned(["--tls-no-verify", "pull", IMG], environ, settings)
    planned(["pull", IMG, "--tls-no"], environ, settings)
    assert [c["insecure"] for c in fake.calls] == [False, True, True]


def test_credentials_from_ch_image_variables_in_authenticated_mode(fake, environ):
    env = {**environ, "CH_IMAGE_USERNAME": "bob", "CH_IMAGE_PASSWORD": "pw"}
    planned(["pull", IMG], env)
    planned(["pull", "--auth", IMG], env)
    planned(["pull", IMG], {**env, "CH_IMAGE_AUTH": "yes"})
    planned(["pull", IMG], {**env, "CH_IMAGE_AUTH": "no"})
    assert [c["credentials"] for c in fake.calls] == [None, ("bob", "pw"), ("bob", "pw"), None]


def test_the_users_architecture_is_the_requested_platform(fake, environ):
    planned(["pull", "-a", "amd64/v3", IMG], environ)
    planned(["-a", "amd64", "pull", IMG], environ)
    planned(["pull", IMG], environ)
    assert fake.requested == [("linux", "amd64", "v3"), ("linux", "amd64", None), None]


def test_default_registry_variables_name_the_registry_of_short_names(fake, environ):
    env = {**environ, "CH_REGY_DEFAULT_HOST": "reg.example", "CH_REGY_DEFAULT_PORT": "5000",
           "CH_REGY_PATH_PREFIX": "mirror"}  # fmt: skip
    assert planned(["pull", "alpine:3"], env).args == [
        "pull", Y, f"reg.example:5000/mirror/alpine@{D}", "alpine:3",
    ]  # fmt: skip
    env = {**environ, "CH_REGY_DEFAULT_HOST": "reg.example"}
    assert planned(["pull", "a/b"], env).args == ["pull", Y, f"reg.example/a/b@{D}", "a/b"]
    env = {**environ, "CH_REGY_DEFAULT_HOST": "reg.example", "CH_REGY_DEFAULT_PORT": "x"}
    assert planned(["pull", "a/b"], env).args == ["pull", "a/b"]  # ch-image fails on it itself
    assert fake.asked == ["reg.example:5000/mirror/alpine:3", "reg.example/a/b"]


def test_registry_failure_fails_open(fake, environ, capsys):
    fake.error = RegistryError("registry down")
    assert planned(["pull", IMG], environ).args == ["pull", IMG]
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("imagefit: ") and "registry down" in err[0]


def test_a_passthrough_decision_leaves_the_pull_alone(fake, environ):
    fake.outcome = scoring.Outcome.PASSTHROUGH
    assert planned(["pull", IMG], environ).args == ["pull", IMG]
