"""End to end for enroot: the installed shim (``imagefit install --runtime
enroot``) in front of a recording stand-in ``enroot`` (enroot is not
packaged for this system: ``apt-cache policy enroot`` finds no candidate),
a real registry holding a real annotated index of GPU builds, and host
facts files of three node classes (H100, T4, no GPU).

The index lists the generic build first: enroot alone takes the first
manifest whose architecture matches (src/docker.sh ``docker::_download``),
so every GPU node would get the generic build; through the shim each class
gets its own. The stand-in records the exact argv and the ``ENROOT_*``
environment it receives.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import world_readable_tmp
from tests.support import oci
from tests.support.registry import LocalRegistry
from tests.support.standin import StandIn, path_with
from tests.test_e2e_scoring import HASWELL, ZEN4, P, h100, host, t4

REPO = "hpc/enroot-app"

#: A stand-in that also records the ENROOT_* / PYXIS_* / SLURM_* environment.
SCRIPT = """#!{python}
import json, os, sys
env = {{k: v for k, v in os.environ.items() if k.startswith(("ENROOT_", "PYXIS_", "SLURM_"))}}
with open({log!r}, "a", encoding="utf-8") as fh:
    fh.write(json.dumps({{"argv": sys.argv[1:], "name": os.path.basename(sys.argv[0]),
                          "active": os.environ.get("IMAGEFIT_ACTIVE"), "env": env}}) + "\\n")
sys.exit({status})
"""


class EnrootStandIn(StandIn):
    """The recording stand-in ``enroot``."""

    def __init__(self, directory: Path, status: int = 0) -> None:
        super().__init__(directory, "enroot", status)
        self.path.write_text(SCRIPT.format(python=sys.executable, log=str(self.log), status=status))


def _gpu(name: str, cuda: str, capabilities: str) -> dict:
    return {
        "name": name,
        "platform": {"architecture": "amd64", "os": "linux"},
        "annotations": {
            P + "hardware.gpu.vendor": "nvidia",
            P + "hardware.gpu.cuda.version": cuda,
            P + "hardware.gpu.compute_capabilities": capabilities,
        },
    }


BUILDS = [
    {"name": "generic", "platform": {"architecture": "amd64", "os": "linux"}, "annotations": {}},
    _gpu("cuda-sm90", ">=12.2", "8.0,9.0"),
    _gpu("cuda-sm75", ">=12.0", "7.5"),
]
#: node class -> the build the shim must choose
EXPECTED = {"h100": "cuda-sm90", "t4": "cuda-sm75", "cpu": "generic"}


@pytest.fixture(scope="module")
def enroot_shim(imagefit_cmd) -> Path:
    """The shim linked as ``enroot`` by ``imagefit install``, as a site would."""
    prefix = world_readable_tmp("imagefit-enroot-prefix-")
    done = subprocess.run(
        [*imagefit_cmd, "install", "--prefix", str(prefix), "--runtime", "enroot"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    link = prefix / "bin" / "enroot"
    assert os.path.islink(link), done.stdout
    yield link
    shutil.rmtree(prefix, ignore_errors=True)


@pytest.fixture(scope="module")
def app(registry, tmp_path_factory):
    return oci.build_and_push(
        registry.host, REPO, "2024", BUILDS, layout_dir=tmp_path_factory.mktemp("enroot-app")
    )


@pytest.fixture(scope="module")
def facts_files(tmp_path_factory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("enroot-facts")
    classes = {
        "h100": host(ZEN4, "gpu-h100", gpu=h100()),
        "t4": host(HASWELL, "gpu-t4", gpu=t4()),
        "cpu": host(ZEN4, "cpu-zen4"),
    }
    files = {}
    for name, facts in classes.items():
        path = out / f"{name}.json"
        path.write_text(facts.model_dump_json(indent=2))
        files[name] = str(path)
    return files


def shim_env(enroot_shim, standin, tmp_path, facts, extra=None) -> dict[str, str]:
    registries_conf = tmp_path / "registries.conf"
    registries_conf.write_text("")
    return {
        "PATH": path_with(enroot_shim.parent, standin.path.parent),
        "HOME": str(tmp_path),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "IMAGEFIT_FACTS": facts,
        "IMAGEFIT_SITE_CONFIG": "/nonexistent/imagefit.toml",
        "CONTAINERS_REGISTRIES_CONF": str(registries_conf),
        "ENROOT_ALLOW_HTTP": "y",  # the test registry speaks plain HTTP, as enroot needs it told
        **(extra or {}),
    }


def run_shim(enroot_shim, args, env):
    return subprocess.run(
        [str(enroot_shim), *args], env=env, capture_output=True, text=True, timeout=120
    )


def enroot_uri(app, reference: str) -> str:
    """``docker://HOST#REPO`` + ``:TAG`` or ``:sha256:HEX`` (enroot's own form)."""
    return f"docker://{app.repository.split('/', 1)[0]}#{REPO}:{reference}"


@pytest.mark.parametrize("node", ["h100", "t4", "cpu"])
def test_import_gets_the_build_of_the_nodes_gpu(enroot_shim, app, facts_files, tmp_path, node):
    standin = EnrootStandIn(tmp_path / "bin")
    env = shim_env(enroot_shim, standin, tmp_path, facts_files[node],
                   {"ENROOT_CONFIG_PATH": str(tmp_path / "ecfg"), "ENROOT_SQUASH_OPTIONS": "-comp zstd"})  # fmt: skip
    done = run_shim(enroot_shim, ["import", enroot_uri(app, "2024")], env)
    assert done.returncode == 0, done.stderr
    chosen = app.manifests[EXPECTED[node]]
    assert standin.calls() == [
        {
            "argv": ["import", "--output", "hpc+enroot-app+2024.sqsh", enroot_uri(app, chosen)],
            "name": "enroot",
            "active": "1",
            "env": {  # ENROOT_* reach enroot untouched
                "ENROOT_ALLOW_HTTP": "y",
                "ENROOT_CONFIG_PATH": str(tmp_path / "ecfg"),
                "ENROOT_SQUASH_OPTIONS": "-comp zstd",
            },
        }
    ]


def test_load_and_digest_through_the_shim(enroot_shim, app, facts_files, tmp_path):
    standin = EnrootStandIn(tmp_path / "bin")
    env = shim_env(enroot_shim, standin, tmp_path, facts_files["h100"])
    uri = f"docker://{app.repository}:2024"  # enroot 4's docker-style spelling
    for args in (["load", "--name", "pt", uri], ["digest", uri]):
        done = run_shim(enroot_shim, args, env)
        assert done.returncode == 0, done.stderr
    pinned = f"docker://{app.repository}:{app.manifests['cuda-sm90']}"
    assert standin.argvs() == [["load", "--name", "pt", pinned], ["digest", pinned]]


def test_dry_run_prints_the_final_argv(enroot_shim, app, facts_files, tmp_path):
    standin = EnrootStandIn(tmp_path / "bin")
    env = shim_env(enroot_shim, standin, tmp_path, facts_files["t4"], {"IMAGEFIT_DRY_RUN": "1"})
    done = run_shim(enroot_shim, ["import", "-o", "/scratch/x.sqsh", enroot_uri(app, "2024")], env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [
        str(standin.path), "import", "-o", "/scratch/x.sqsh",
        enroot_uri(app, app.manifests["cuda-sm75"]),
    ]  # fmt: skip
    assert standin.calls() == []


@pytest.mark.parametrize(
    "args",
    [
        ["create", "--name", "pt", "pt.sqsh"],
        ["start", "--rw", "pt", "nvidia-smi"],
        ["import", "dockerd://hpc/app:1"],
        ["import", "--nope", "URI"],  # enroot's usage error: unchanged, enroot says why
        ["import", "URI", "extra"],
        ["import", "--arch", "aarch64", "URI"],  # another architecture: enroot's own choice
    ],
)
def test_lines_the_shim_leaves_alone_reach_enroot_unchanged(
    enroot_shim, app, facts_files, tmp_path, args
):
    args = [enroot_uri(app, "2024") if a == "URI" else a for a in args]
    standin = EnrootStandIn(tmp_path / "bin", status=5)
    done = run_shim(
        enroot_shim, args, shim_env(enroot_shim, standin, tmp_path, facts_files["h100"])
    )
    assert done.returncode == 5
    assert standin.argvs() == [args]


def test_http_registry_without_enroot_allow_http_fails_open(
    enroot_shim, app, facts_files, tmp_path
):
    """Without ENROOT_ALLOW_HTTP enroot (and so the shim) speaks HTTPS only:
    the plain-HTTP registry cannot answer, the command runs unchanged."""
    standin = EnrootStandIn(tmp_path / "bin")
    env = shim_env(enroot_shim, standin, tmp_path, facts_files["h100"])
    del env["ENROOT_ALLOW_HTTP"]
    uri = enroot_uri(app, "2024")
    done = run_shim(enroot_shim, ["import", uri], env)
    assert done.returncode == 0
    assert standin.argvs() == [["import", uri]]
    assert done.stderr.startswith("imagefit: ")


@pytest.fixture(scope="module")
def private(tmp_path_factory):
    """A registry demanding basic auth, holding the same index."""
    reg = LocalRegistry(tmp_path_factory.mktemp("enroot-auth"), auth=("ngc", "s3cret"))
    try:
        app = oci.build_and_push(
            reg.host, REPO, "2024", BUILDS,
            layout_dir=tmp_path_factory.mktemp("enroot-private"), creds="ngc:s3cret",
        )  # fmt: skip
        yield app
    finally:
        reg.stop()


@pytest.mark.parametrize("user", ["", "ngc@"])
def test_credentials_file_opens_a_private_registry(
    enroot_shim, private, facts_files, tmp_path, user
):
    standin = EnrootStandIn(tmp_path / "bin")
    config = tmp_path / "ecfg"
    config.mkdir()
    host_only = private.repository.split("/", 1)[0].rsplit(":", 1)[0]
    (config / ".credentials").write_text(f"machine {host_only} login ngc password $NGC_PASSWORD\n")
    env = shim_env(enroot_shim, standin, tmp_path, facts_files["t4"],
                   {"ENROOT_CONFIG_PATH": str(config), "NGC_PASSWORD": "s3cret"})  # fmt: skip
    uri = enroot_uri(private, "2024").replace("docker://", "docker://" + user)
    done = run_shim(enroot_shim, ["import", "-o", "p.sqsh", uri], env)
    assert done.returncode == 0, done.stderr
    pinned = uri.rsplit(":", 1)[0] + ":" + private.manifests["cuda-sm75"]
    assert standin.argvs() == [["import", "-o", "p.sqsh", pinned]]
    assert "s3cret" not in done.stderr + done.stdout


def test_a_private_registry_without_credentials_fails_open(
    enroot_shim, private, facts_files, tmp_path
):
    standin = EnrootStandIn(tmp_path / "bin")
    env = shim_env(enroot_shim, standin, tmp_path, facts_files["t4"],
                   {"ENROOT_CONFIG_PATH": str(tmp_path / "none")})  # fmt: skip
    uri = enroot_uri(private, "2024")
    done = run_shim(enroot_shim, ["import", uri], env)
    assert done.returncode == 0
    assert standin.argvs() == [["import", uri]]
    assert done.stderr.startswith("imagefit: ")


def test_runtimes_enroot_in_the_site_config_names_the_real_enroot(
    enroot_shim, app, facts_files, tmp_path
):
    """``[runtimes] enroot = PATH`` (shim.config.RUNTIMES) is the enroot the
    shim execs, found nowhere on PATH."""
    standin = EnrootStandIn(tmp_path / "elsewhere")
    site = tmp_path / "site.toml"
    site.write_text(f'[runtimes]\nenroot = "{standin.path}"\n')
    site.chmod(0o644)
    env = shim_env(enroot_shim, standin, tmp_path, facts_files["h100"],
                   {"IMAGEFIT_SITE_CONFIG": str(site), "PATH": path_with(enroot_shim.parent)})  # fmt: skip
    done = run_shim(enroot_shim, ["import", "-o", "x.sqsh", enroot_uri(app, "2024")], env)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert standin.argvs() == [
        ["import", "-o", "x.sqsh", enroot_uri(app, app.manifests["cuda-sm90"])]
    ]


# -- the site's enroot.conf -------------------------------------------------------------


def fresh(enroot_shim, args, env):
    """A run with a cache of its own: nothing decided before answers for it."""
    cache = Path(env["HOME"]) / f"cache-{len(list(Path(env['HOME']).glob('cache-*')))}"
    return run_shim(enroot_shim, args, {**env, "XDG_CACHE_HOME": str(cache)})


@pytest.fixture
def site_conf():
    """Writes /etc/enroot/enroot.conf (and a drop-in) for one test, as an admin
    would (root's, 0644); skipped where this machine has its own."""
    import os
    import shutil

    if os.geteuid() != 0:
        pytest.skip("writing /etc/enroot needs root")
    directory = Path("/etc/enroot")
    if directory.exists():
        pytest.skip("/etc/enroot exists on this machine: its own enroot configuration")
    directory.mkdir(mode=0o755)
    (directory / "enroot.conf.d").mkdir(mode=0o755)

    def write(text: str, name: str = "enroot.conf", mode: int = 0o644) -> Path:
        path = directory / name
        path.write_text(text)
        path.chmod(mode)
        return path

    try:
        yield write
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_enroot_allow_http_in_the_site_enroot_conf_counts(
    enroot_shim, app, facts_files, tmp_path, site_conf
):
    """``ENROOT_ALLOW_HTTP yes`` in /etc/enroot/enroot.conf lets enroot speak plain
    HTTP, and so the shim (before: the environment alone counted, and the
    command ran unchanged); a non-empty variable in the environment wins, as
    enroot's ``config::export`` lets it; another user's file never counts."""
    standin = EnrootStandIn(tmp_path / "bin")
    env = shim_env(enroot_shim, standin, tmp_path, facts_files["h100"])
    del env["ENROOT_ALLOW_HTTP"]
    uri = enroot_uri(app, "2024")
    pinned = uri.rsplit(":", 1)[0] + ":" + app.manifests["cuda-sm90"]
    site_conf(
        "# site settings\nENROOT_RUNTIME_PATH /run/enroot/user-$(id -u)\nENROOT_ALLOW_HTTP   yes\n"
    )
    done = fresh(enroot_shim, ["import", "-o", "a.sqsh", uri], env)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert standin.argvs()[-1] == ["import", "-o", "a.sqsh", pinned]
    # the environment's "no" wins over the file (enroot then unsets it: HTTPS only)
    done = run_shim(
        enroot_shim, ["import", "-o", "a.sqsh", uri], {**env, "ENROOT_ALLOW_HTTP": "no"}
    )
    assert standin.argvs()[-1] == ["import", "-o", "a.sqsh", uri] and done.stderr.startswith(
        "imagefit: "
    )
    # a drop-in, KEY=VALUE, read after the main file (which does not set it: the
    # first non-empty value wins, as config::export keeps it)
    site_conf("# nothing here\n")
    site_conf("ENROOT_ALLOW_HTTP=1\n", "enroot.conf.d/50-http.conf")
    done = fresh(enroot_shim, ["import", "-o", "a.sqsh", uri], env)
    assert standin.argvs()[-1] == ["import", "-o", "a.sqsh", pinned], done.stderr
    # a file others may write is not the site's word
    site_conf("ENROOT_ALLOW_HTTP=1\n", "enroot.conf.d/50-http.conf", mode=0o666)
    done = fresh(enroot_shim, ["import", "-o", "a.sqsh", uri], env)
    assert standin.argvs()[-1] == ["import", "-o", "a.sqsh", uri] and done.stderr.startswith(
        "imagefit: "
    )


def test_enroot_config_path_in_the_site_enroot_conf_finds_the_credentials(
    enroot_shim, private, facts_files, tmp_path, site_conf
):
    """``ENROOT_CONFIG_PATH ${HOME}/.site-enroot`` in enroot.conf: the shim reads
    ``.credentials`` where enroot will; a value only a shell could give
    (``$(...)``) counts as unset and is never run."""
    standin = EnrootStandIn(tmp_path / "bin")
    config = tmp_path / ".site-enroot"
    config.mkdir()
    host_only = private.repository.split("/", 1)[0].rsplit(":", 1)[0]
    (config / ".credentials").write_text(f"machine {host_only} login ngc password s3cret\n")
    env = shim_env(enroot_shim, standin, tmp_path, facts_files["t4"])
    uri = enroot_uri(private, "2024")
    pinned = uri.rsplit(":", 1)[0] + ":" + private.manifests["cuda-sm75"]
    site_conf("ENROOT_CONFIG_PATH ${HOME}/.site-enroot\n")
    done = fresh(enroot_shim, ["import", "-o", "p.sqsh", uri], env)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert standin.argvs()[-1] == ["import", "-o", "p.sqsh", pinned]
    marker = tmp_path / "ran"
    site_conf(f"ENROOT_CONFIG_PATH $(touch {marker}; echo {config})\n")
    done = fresh(enroot_shim, ["import", "-o", "p.sqsh", uri], env)
    assert standin.argvs()[-1] == ["import", "-o", "p.sqsh", uri] and done.stderr.startswith(
        "imagefit: "
    )
    assert not marker.exists()


#: (enroot.conf lines, drop-ins, ENROOT_ALLOW_HTTP kept?, ENROOT_CONFIG_PATH):
#: each expectation is what enroot's own config::init/config::fini (enroot.in,
#: NVIDIA/enroot 8ea147d) gave when run by bash 5.2 on the same files with
#: HOME=/home/u and nothing else set; None: the shim reads no credentials file
#: (a value it cannot read without a shell), never another one.
SITE_CASES = [
    (["ENROOT_ALLOW_HTTP yes\n"], [], True, "/home/u/.config/enroot"),
    (["ENROOT_ALLOW_HTTP no=\n"], [], False, "/home/u/.config/enroot"),  # read drops the "="
    (["ENROOT_ALLOW_HTTP no =\n"], [], False, "/home/u/.config/enroot"),
    (["ENROOT_ALLOW_HTTP yes"], [], False, "/home/u/.config/enroot"),  # no newline: not read
    (["ENROOT_ALLOW_HTTP false\n"], [("50-http.conf", "ENROOT_ALLOW_HTTP=1\n")], False, "/home/u/.config/enroot"),
    (["# c\n"], [("50-http.conf", "ENROOT_ALLOW_HTTP=1\n")], True, "/home/u/.config/enroot"),
    (["# c\n"], [(".off.conf", "ENROOT_ALLOW_HTTP=1\n")], False, "/home/u/.config/enroot"),  # no dotfiles
    (["ENROOT_ALLOW_HTTP -n\n"], [], False, "/home/u/.config/enroot"),  # echo -n prints nothing
    (["ENROOT_ALLOW_HTTP\xa0yes\n"], [], False, "/home/u/.config/enroot"),  # one word: no such key
    (["# note\fENROOT_ALLOW_HTTP yes\n"], [], False, "/home/u/.config/enroot"),  # one line, a comment
    (["ENROOT_CONFIG_PATH /site/a\n", "ENROOT_CONFIG_PATH /site/b\n"], [], False, "/site/a"),
    (["ENROOT_CONFIG_PATH ${XDG_CONFIG_HOME}/enroot\n"], [], False, "/home/u/.config/enroot"),  # set -u
    (["ENROOT_DATA_PATH /scratch/enroot\n", "ENROOT_CONFIG_PATH ${ENROOT_DATA_PATH}/config\n"], [],
     False, "/scratch/enroot/config"),
    (["ENROOT_CONFIG_PATH $HOME/x  y\n"], [], False, "/home/u/x y"),
    (["ENROOT_CONFIG_PATH=\n", "ENROOT_CONFIG_PATH=/z\n"], [], False, "/z"),
    (["  ENROOT_ALLOW_HTTP\t=\tTrue  \n"], [], True, "/home/u/.config/enroot"),
    (["ENROOT_ALLOW_HTTP = -e yes\n"], [], True, "/home/u/.config/enroot"),
    (["ENROOT_ALLOW_HTTP N\n"], [], False, "/home/u/.config/enroot"),
    (["FOO_ALLOW yes\n", "ENROOT_allow_http yes\n"], [], False, "/home/u/.config/enroot"),
    (["ENROOT_CONFIG_PATH $UNSET_VAR/cfg\n"], [], False, "/home/u/.config/enroot"),
    (["ENROOT_CONFIG_PATH /a/$HOME\n"], [], False, "/a//home/u"),
    (['ENROOT_CONFIG_PATH "/site/cfg"\n'], [], False, None),  # quotes: only a shell knows
    (["ENROOT_CONFIG_PATH $(echo /site)\n", "ENROOT_ALLOW_HTTP `echo yes`\n"], [], False, None),
]  # fmt: skip


@pytest.mark.parametrize(("main", "drops", "allowed", "config"), SITE_CASES,
                         ids=[repr("".join(c[0]))[:40] for c in SITE_CASES])  # fmt: skip
def test_site_configuration_is_read_as_enroot_reads_it(
    tmp_path, monkeypatch, main, drops, allowed, config
):
    from shim.personality import enroot

    site = tmp_path / "etc-enroot"
    (site / "enroot.conf.d").mkdir(parents=True)
    (site / "enroot.conf").write_text("".join(main))
    for name, text in drops:
        (site / "enroot.conf.d" / name).write_text(text)
    monkeypatch.setattr(enroot, "SYSCONF", str(site / "enroot.conf"))
    monkeypatch.setattr(enroot, "_SITE_LINES", {})
    got = enroot.site_environ({"HOME": "/home/u", "PATH": "/usr/bin:/bin"})
    assert enroot.enabled(got, "ENROOT_ALLOW_HTTP") is allowed
    assert enroot.credentials_file(got) == (config and config + "/.credentials")


def test_a_site_file_another_user_could_change_is_not_read(tmp_path, monkeypatch):
    """Root's 0644 file, reached through a link into a directory others may
    write (not sticky), or itself group-writable, or not root's: not read."""
    import os

    from shim.personality import enroot

    if os.geteuid() != 0:
        pytest.skip("files owned by root and by another user need root")
    site = tmp_path / "etc-enroot"
    site.mkdir()
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    (open_dir / "real.conf").write_text("ENROOT_ALLOW_HTTP yes\n")
    (site / "enroot.conf").symlink_to(open_dir / "real.conf")
    monkeypatch.setattr(enroot, "SYSCONF", str(site / "enroot.conf"))
    monkeypatch.setattr(enroot, "_SITE_LINES", {})
    env = {"HOME": "/home/u"}

    def read_afresh() -> dict:  # a new command: the files are read once per process
        enroot._SITE_LINES.clear()
        return enroot.site_environ(env)

    assert not enroot.enabled(read_afresh(), "ENROOT_ALLOW_HTTP")
    open_dir.chmod(0o755)  # the same link, the target's directory safe now: read
    assert enroot.enabled(read_afresh(), "ENROOT_ALLOW_HTTP")
    (open_dir / "real.conf").chmod(0o664)
    assert not enroot.enabled(read_afresh(), "ENROOT_ALLOW_HTTP")
    (open_dir / "real.conf").chmod(0o644)
    os.chown(open_dir / "real.conf", 1234, 1234)
    assert not enroot.enabled(read_afresh(), "ENROOT_ALLOW_HTTP")
