"""enroot command lines through the shim: the exact final argv.

Each case is an enroot command line (argv without argv[0]), the exact argv
the shim must exec, and the references it must have asked the resolver for
(normalised, in order). Expectations are written out literally; nothing is
computed by the code under test. The resolver and the host facts are faked
(no registry I/O): every resolved image selects the build ``D``.

How enroot reads a line comes from its source (enroot cannot be installed
here): NVIDIA/enroot ``enroot.in`` (``enroot::import``, ``enroot::load``,
``enroot::digest``: the options) and ``src/docker.sh``
``docker::_parse_uri`` (the URI), ``docker::import``/``docker::load`` (the
default output name). See shim/argv/enroot.py and shim/argv/enroot_uri.py.
"""

from __future__ import annotations

import pytest

import scoring
from shim import personality as personalities
from shim.argv import enroot, enroot_uri
from shim.config import Settings
from shim.errors import ArgvError, Refusal
from shim.intercept import plan
from shim.personality.enroot import netrc_login
from tests.support.fake_resolver import D, FakeResolver, install, zen4_host

NGC = "docker://nvcr.io#nvidia/pytorch:24.05"
NGC_PIN = f"docker://nvcr.io#nvidia/pytorch:{D}"
NGC_REF = "nvcr.io/nvidia/pytorch:24.05"
OUT = ["--output", "nvidia+pytorch+24.05.sqsh"]
HEX = "0123456789abcdef" * 4

# (args, final argv, references the resolver was asked for)
# fmt: off
CASES: list[tuple[list[str], list[str], list[str]]] = [
    # --- import: enroot's own REGISTRY#IMAGE form; the default output name is kept ----------
    (["import", NGC], ["import", *OUT, NGC_PIN], [NGC_REF]),
    (["import", "-o", "pt.sqsh", NGC], ["import", "-o", "pt.sqsh", NGC_PIN], [NGC_REF]),
    (["import", "--output", "/scratch/pt.sqsh", NGC], ["import", "--output", "/scratch/pt.sqsh", NGC_PIN], [NGC_REF]),
    (["import", "--output=pt.sqsh", NGC], ["import", "--output=pt.sqsh", NGC_PIN], [NGC_REF]),
    (["import", "-o", "a.sqsh", "-o", "b.sqsh", NGC], ["import", "-o", "a.sqsh", "-o", "b.sqsh", NGC_PIN], [NGC_REF]),
    (["import", "--", NGC], ["import", *OUT, "--", NGC_PIN], [NGC_REF]),
    (["import", "-o", "--", NGC], ["import", "-o", "--", NGC_PIN], [NGC_REF]),  # any word is a value
    (["import", "-o", "-x.sqsh", NGC], ["import", "-o", "-x.sqsh", NGC_PIN], [NGC_REF]),
    # --- --arch: the host's architecture is resolved; another one is enroot's choice --------
    (["import", "--arch", "x86_64", NGC], ["import", *OUT, "--arch", "x86_64", NGC_PIN], [NGC_REF]),
    (["import", "-a", "x86_64", "-o", "p.sqsh", NGC], ["import", "-a", "x86_64", "-o", "p.sqsh", NGC_PIN], [NGC_REF]),
    (["import", "--arch=x86_64", NGC], ["import", *OUT, "--arch=x86_64", NGC_PIN], [NGC_REF]),
    (["import", "--arch", "aarch64", NGC], ["import", "--arch", "aarch64", NGC], []),
    (["import", "-a", "ppc64le", NGC], ["import", "-a", "ppc64le", NGC], []),
    (["import", "--arch", "amd64", NGC], ["import", "--arch", "amd64", NGC], []),  # enroot: unsupported
    # --- USER@ is kept (enroot's credentials lookup) ------------------------------------------
    (["import", "docker://bob@nvcr.io#nvidia/pytorch:24.05"],
     ["import", *OUT, f"docker://bob@nvcr.io#nvidia/pytorch:{D}"], [NGC_REF]),
    (["import", "docker://$oauthtoken@nvcr.io#nvidia/pytorch:24.05"],
     ["import", *OUT, f"docker://$oauthtoken@nvcr.io#nvidia/pytorch:{D}"], [NGC_REF]),
    # --- no tag: latest; a registry with a port ----------------------------------------------
    (["import", "docker://nvcr.io#nvidia/pytorch"],
     ["import", "--output", "nvidia+pytorch+latest.sqsh", f"docker://nvcr.io#nvidia/pytorch:{D}"],
     ["nvcr.io/nvidia/pytorch:latest"]),
    (["import", "docker://127.0.0.1:5000#hpc/app:1"],
     ["import", "--output", "hpc+app+1.sqsh", f"docker://127.0.0.1:5000#hpc/app:{D}"], ["127.0.0.1:5000/hpc/app:1"]),
    (["import", "docker://localhost:5000#hpc/app:1"],
     ["import", "--output", "hpc+app+1.sqsh", f"docker://localhost:5000#hpc/app:{D}"], ["localhost:5000/hpc/app:1"]),
    (["import", "docker://myreg#hpc/app:1"],  # for enroot any word before # is a registry
     ["import", "--output", "hpc+app+1.sqsh", f"docker://myreg#hpc/app:{D}"], ["myreg/hpc/app:1"]),
    # --- Docker Hub: library/ for one component, the aliases, no library+ in the name --------
    (["import", "docker://ubuntu:22.04"], ["import", "--output", "ubuntu+22.04.sqsh", f"docker://ubuntu:{D}"],
     ["docker.io/library/ubuntu:22.04"]),
    (["import", "docker://ubuntu"], ["import", "--output", "ubuntu+latest.sqsh", f"docker://ubuntu:{D}"],
     ["docker.io/library/ubuntu:latest"]),
    (["import", "docker://nvidia/cuda:12.4"], ["import", "--output", "nvidia+cuda+12.4.sqsh", f"docker://nvidia/cuda:{D}"],
     ["docker.io/nvidia/cuda:12.4"]),
    (["import", "docker://docker.io#ubuntu:22.04"],
     ["import", "--output", "ubuntu+22.04.sqsh", f"docker://docker.io#ubuntu:{D}"], ["docker.io/library/ubuntu:22.04"]),
    (["import", "docker://registry-1.docker.io#library/ubuntu:22.04"],
     ["import", "--output", "ubuntu+22.04.sqsh", f"docker://registry-1.docker.io#library/ubuntu:{D}"],
     ["docker.io/library/ubuntu:22.04"]),
    (["import", "docker://index.docker.io/hpc/app:1"],
     ["import", "--output", "hpc+app+1.sqsh", f"docker://index.docker.io/hpc/app:{D}"], ["docker.io/hpc/app:1"]),
    # --- enroot 4's docker-style form: a first part with . or : is the registry --------------
    (["import", "docker://nvcr.io/nvidia/pytorch:24.05"], ["import", *OUT, f"docker://nvcr.io/nvidia/pytorch:{D}"], [NGC_REF]),
    (["import", "docker://127.0.0.1:5000/hpc/app:1"],
     ["import", "--output", "hpc+app+1.sqsh", f"docker://127.0.0.1:5000/hpc/app:{D}"], ["127.0.0.1:5000/hpc/app:1"]),
    # --- digests the user gave: resolved (an index digest may hold every build) -------------
    (["import", f"docker://nvcr.io#nvidia/pytorch@sha256:{HEX}"],
     ["import", "--output", f"nvidia+pytorch+sha256:{HEX}.sqsh", NGC_PIN], [f"nvcr.io/nvidia/pytorch@sha256:{HEX}"]),
    (["import", f"docker://nvcr.io#nvidia/pytorch:24.05@sha256:{HEX}"],  # enroot ignores the tag
     ["import", "--output", f"nvidia+pytorch+sha256:{HEX}.sqsh", NGC_PIN], [f"nvcr.io/nvidia/pytorch@sha256:{HEX}"]),
    (["import", f"docker://nvcr.io#nvidia/pytorch:sha256:{HEX}"],  # enroot 3's only digest spelling
     ["import", "--output", f"nvidia+pytorch+sha256:{HEX}.sqsh", NGC_PIN], [f"nvcr.io/nvidia/pytorch@sha256:{HEX}"]),
    (["import", "-o", "x.sqsh", f"docker://ubuntu@sha256:{HEX}"],
     ["import", "-o", "x.sqsh", f"docker://ubuntu:{D}"], [f"docker.io/library/ubuntu@sha256:{HEX}"]),
    # --- load: --name instead of --output; -f kept -------------------------------------------
    (["load", NGC], ["load", "--name", "nvidia+pytorch+24.05", NGC_PIN], [NGC_REF]),
    (["load", "--name", "pyxis_12.0", NGC], ["load", "--name", "pyxis_12.0", NGC_PIN], [NGC_REF]),
    (["load", "-n", "pt", "-f", NGC], ["load", "-n", "pt", "-f", NGC_PIN], [NGC_REF]),
    (["load", "--name=pt", "--force", "-a", "x86_64", NGC], ["load", "--name=pt", "--force", "-a", "x86_64", NGC_PIN], [NGC_REF]),
    (["load", "-f", NGC], ["load", "--name", "nvidia+pytorch+24.05", "-f", NGC_PIN], [NGC_REF]),
    # --- digest: the build's digest (pyxis's caching importer names its cache by it) ---------
    (["digest", NGC], ["digest", NGC_PIN], [NGC_REF]),
    (["digest", "--arch", "x86_64", NGC], ["digest", "--arch", "x86_64", NGC_PIN], [NGC_REF]),
    (["digest", "-a", "aarch64", NGC], ["digest", "-a", "aarch64", NGC], []),
    # --- URIs enroot refuses, or not a registry: left alone ----------------------------------
    (["import", "dockerd://hpc/app:1"], ["import", "dockerd://hpc/app:1"], []),
    (["import", "podman://hpc/app:1"], ["import", "podman://hpc/app:1"], []),
    (["import", "nvcr.io#nvidia/pytorch:24.05"], ["import", "nvcr.io#nvidia/pytorch:24.05"], []),  # no scheme
    (["import", "docker://nvcr.io#Nvidia/PyTorch:1"], ["import", "docker://nvcr.io#Nvidia/PyTorch:1"], []),
    (["import", "docker://nvcr.io#nvidia/x:a:b"], ["import", "docker://nvcr.io#nvidia/x:a:b"], []),
    (["import", "docker://a#b#c"], ["import", "docker://a#b#c"], []),
    (["import", "docker://"], ["import", "docker://"], []),
    # --- help: enroot prints usage ------------------------------------------------------------
    (["import", "--help", NGC], ["import", "--help", NGC], []),
    (["import", "-h"], ["import", "-h"], []),
    (["load", "-h", NGC], ["load", "-h", NGC], []),
    # --- commands without a registry image: never read ----------------------------------------
    (["create", "--name", "pt", "pt.sqsh"], ["create", "--name", "pt", "pt.sqsh"], []),
    (["create", "docker://nvcr.io#nvidia/pytorch:24.05"], ["create", "docker://nvcr.io#nvidia/pytorch:24.05"], []),
    (["start", "--rw", "pt", "python", NGC], ["start", "--rw", "pt", "python", NGC], []),
    (["batch", "job.conf"], ["batch", "job.conf"], []),
    (["export", "-o", "x.sqsh", "pt"], ["export", "-o", "x.sqsh", "pt"], []),
    (["bundle", "pt.sqsh"], ["bundle", "pt.sqsh"], []),
    (["list", "-f"], ["list", "-f"], []),
    (["remove", "-f", "pt"], ["remove", "-f", "pt"], []),
    (["exec", "123", "ls"], ["exec", "123", "ls"], []),
    (["info"], ["info"], []),
    (["version"], ["version"], []),
    ([], [], []),
]
# fmt: on

#: Lines enroot answers with its usage and exit 1 (enroot.in): the shim runs them unchanged.
USAGE_ERRORS = [
    ["import"],
    ["import", "-o"],
    ["import", "-o", "", NGC],
    ["import", "--output=", NGC],
    ["import", "--arch=", NGC],
    ["import", "-ox.sqsh", NGC],  # no bundled values
    ["import", "-a=x86_64", NGC],
    ["import", "--name", "x", NGC],  # import has no --name
    ["import", "--nope", NGC],
    ["import", NGC, "extra"],
    ["import", NGC, NGC],
    ["import", "--", NGC, "-o"],
    ["load", "--output", "x", NGC],
    ["load", "-fn", "x", NGC],
    ["load", "--force=y", NGC],
    ["digest", "-o", "x", NGC],
    ["digest"],
]


def _id(case) -> str:
    return " ".join(repr(w) if w in ("", " ") else w for w in case[0]).replace(D, "D") or "(empty)"


@pytest.fixture
def fake(monkeypatch) -> FakeResolver:
    return install(monkeypatch, zen4_host())


@pytest.fixture
def environ(tmp_path) -> dict[str, str]:
    conf = tmp_path / "registries.conf"
    conf.write_text("")
    return {
        "HOME": str(tmp_path),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "CONTAINERS_REGISTRIES_CONF": str(conf),
    }


def planned(args, environ, settings: Settings | None = None):
    return plan(personalities.get("enroot"), enroot.parse(args), settings or Settings(), environ)


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_final_argv(case, fake, environ):
    args, expected, asked = case
    result = planned(args, environ)
    assert result.before == [] and result.after == []
    assert result.args == expected
    assert fake.asked == asked


@pytest.mark.parametrize("args", USAGE_ERRORS, ids=" ".join)
def test_lines_enroot_refuses_are_argv_errors(args):
    with pytest.raises(ArgvError):
        enroot.parse(args)


def test_table_is_large_enough():
    assert len(CASES) >= 60


def test_the_personality_is_registered():
    found = personalities.get("enroot")
    assert found is not None and found.grammar is enroot and found.login_verbs == frozenset()


def test_parse_records_options_and_the_uri():
    inv = enroot.parse(["load", "-a", "x86_64", "--name=pt", "-f", "--", NGC])
    assert inv.verb == "load" and inv.images == (6,) and inv.insert_at == 1
    assert inv.flags == {"arch": ["x86_64"], "name": ["pt"], "force": [None]}


def test_the_requested_architecture_reaches_the_decision(fake, environ):
    planned(["import", "--arch", "x86_64", NGC], environ)
    assert fake.requested == [("linux", "amd64", None)]


def test_pinned_uri_round_trips_through_enroots_grammar():
    uri = enroot_uri.parse(NGC)
    again = enroot_uri.parse(uri.pinned(D))
    assert (again.registry, again.image, again.tag) == ("nvcr.io", "nvidia/pytorch", D)


def test_a_passthrough_decision_leaves_the_line_alone(fake, environ):
    fake.outcome = scoring.Outcome.PASSTHROUGH
    assert planned(["import", NGC], environ).args == ["import", NGC]


def test_refused_decision_raises(fake, environ):
    fake.outcome = scoring.Outcome.REFUSED
    with pytest.raises(Refusal):
        planned(["import", NGC], environ)


# ---------------------------------------------------------------- credentials and HTTP


def _credentials(tmp_path, text: str) -> dict[str, str]:
    config = tmp_path / "enroot-config"
    config.mkdir(exist_ok=True)
    (config / ".credentials").write_text(text)
    return {"ENROOT_CONFIG_PATH": str(config), "HOME": str(tmp_path)}


@pytest.mark.parametrize(
    ("uri", "text", "extra", "expected"),
    [
        (
            NGC,
            "machine nvcr.io login $oauthtoken password nvapi-xyz\n",
            {},
            ("$oauthtoken", "nvapi-xyz"),
        ),
        # the user of the URI picks its line
        (
            "docker://bob@nvcr.io#a/b",
            "machine nvcr.io login al password 1\nmachine nvcr.io login bob password 2\n",
            {},
            ("bob", "2"),
        ),
        # without a user: the first line of the registry
        (
            "docker://nvcr.io#a/b",
            "machine nvcr.io login al password 1\nmachine nvcr.io login bob password 2\n",
            {},
            ("al", "1"),
        ),
        # the port is dropped (${registry%:*})
        ("docker://127.0.0.1:5000#a/b", "machine 127.0.0.1 login u password p\n", {}, ("u", "p")),
        # Docker Hub is registry-1.docker.io for enroot
        (
            "docker://ubuntu",
            "machine registry-1.docker.io login hub password h\n",
            {},
            ("hub", "h"),
        ),
        ("docker://ubuntu", "machine docker.io login hub password h\n", {}, None),
        # a $VARIABLE password is expanded; a command is never run
        (
            NGC,
            "machine nvcr.io login $oauthtoken password $NGC_KEY\n",
            {"NGC_KEY": "k1"},
            ("$oauthtoken", "k1"),
        ),
        (
            NGC,
            "machine nvcr.io login $oauthtoken password ${NGC_KEY}\n",
            {"NGC_KEY": "k2"},
            ("$oauthtoken", "k2"),
        ),
        (NGC, "machine nvcr.io login x password $(cat /etc/shadow)\n", {}, None),
        # another registry, a user without a password line, a malformed line
        (NGC, "machine quay.io login u password p\n", {}, None),
        ("docker://bob@nvcr.io#a/b", "machine nvcr.io login al password 1\n", {}, None),
        (NGC, "machine nvcr.io login u\n", {}, None),
    ],
)
def test_credentials_as_enroot_reads_them(tmp_path, uri, text, extra, expected):
    environ = {**_credentials(tmp_path, text), **extra}
    assert netrc_login(enroot_uri.parse(uri), environ) == expected


def test_credentials_default_to_xdg_config_home(tmp_path, fake, environ):
    (tmp_path / "xdg" / "enroot").mkdir(parents=True)
    (tmp_path / "xdg" / "enroot" / ".credentials").write_text(
        "machine nvcr.io login u password p\n"
    )
    planned(["import", NGC], {**environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")})
    assert fake.calls[0]["credentials"] == ("u", "p")


def test_a_fifo_as_credentials_file_is_not_waited_on(tmp_path):
    import os

    config = tmp_path / "c"
    config.mkdir()
    os.mkfifo(config / ".credentials")
    assert netrc_login(enroot_uri.parse(NGC), {"ENROOT_CONFIG_PATH": str(config)}) is None


@pytest.mark.parametrize(
    ("value", "insecure"), [("y", True), ("yes", True), ("1", True), ("n", False), ("no", False),
                            ("false", False), ("FALSE", False), ("", False)],
)  # fmt: skip
def test_enroot_allow_http_lets_the_shim_use_plain_http(fake, environ, value, insecure):
    planned(["import", NGC], {**environ, "ENROOT_ALLOW_HTTP": value})
    assert fake.calls[0]["insecure"] is insecure
