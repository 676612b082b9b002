"""End to end with Charliecloud: Debian's real ``ch-image`` and ``ch-run``,
the shim installed in front of ch-image (``imagefit install --runtime
ch-image``), a real registry speaking HTTPS (ch-image speaks nothing else:
registry.py ``_url_of``) with a self-signed certificate, and an annotated
index whose builds print their names.

The index holds two builds of one architecture and variant (x86_64_v3 and
haswell are both linux/amd64/v3): ch-image alone refuses it ("manifest
list: duplicate architecture"); through the shim the pull stores the build
the host facts (``IMAGEFIT_FACTS``, archspec's real /proc/cpuinfo dumps)
choose under the user's own name, and ``ch-run NAME`` runs it as the caller.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
from pathlib import Path

import pytest

from tests import test_e2e_podman
from tests.conftest import world_readable_tmp
from tests.support import oci
from tests.support.fixtures import missing_tool
from tests.support.registry import REGISTRY_BINARY, LocalRegistry
from tests.test_e2e_podman import _build

#: facts files of real CPUs (archspec's /proc/cpuinfo dumps), the podman end-to-end fixture
node_facts = test_e2e_podman.facts_files
CH_IMAGE, CH_RUN = "/usr/bin/ch-image", "/usr/bin/ch-run"
BUILDS = [
    _build("x86_64"),
    _build("x86_64_v2", variant="v2"),
    _build("x86_64_v3", variant="v3"),
    _build("haswell", variant="v3"),
    _build("zen4", variant="v4"),
]
SHOW = "cat /etc/imagefit-build; id -u"
#: git identity for ch-image's build cache (a git repository in its storage)
GIT = {f"GIT_{who}_{what}": value for who in ("AUTHOR", "COMMITTER")
       for what, value in (("NAME", "imagefit tests"), ("EMAIL", "tests@imagefit.invalid"))}  # fmt: skip


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory):
    if not os.access(REGISTRY_BINARY, os.X_OK):
        missing_tool(f"{REGISTRY_BINARY} missing")
    if not (os.access(CH_IMAGE, os.X_OK) and os.access(CH_RUN, os.X_OK)):
        missing_tool("ch-image/ch-run (Debian's charliecloud) missing")
    reg = LocalRegistry(tmp_path_factory.mktemp("tls-registry"), tls=True)
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="module")
def app(tls_registry, tmp_path_factory):
    return oci.build_and_push(
        tls_registry.host, "hpc/app", "2024", BUILDS, layout_dir=tmp_path_factory.mktemp("ch-app")
    )


@pytest.fixture(scope="module")
def ch_bin(imagefit_cmd):
    """The shim linked as ``ch-image`` in a world-readable prefix."""
    prefix = world_readable_tmp("imagefit-ch-prefix-")
    subprocess.run([*imagefit_cmd, "install", "--prefix", str(prefix), "--runtime", "ch-image"],
                   check=True, capture_output=True, text=True)  # fmt: skip
    yield prefix / "bin"
    shutil.rmtree(prefix, ignore_errors=True)


@pytest.fixture
def home(tmp_path):
    """A world-readable directory for one test's storage and caches."""
    base = world_readable_tmp("imagefit-ch-")
    yield base
    shutil.rmtree(base, ignore_errors=True)


def ch_env(base: Path, bindir, *, user: str = "root", **extra) -> dict[str, str]:
    """A clean environment: no CA bundle variables (requests would let
    ``$REQUESTS_CA_BUNDLE`` override ch-image's ``--tls-no-verify``), Debian's
    python3 first, ch-image's storage and imagefit's caches under `base`."""
    path = f"{bindir}:/usr/bin:/bin" if bindir else "/usr/bin:/bin"
    return {
        "PATH": path, "USER": user, "LOGNAME": user, "HOME": pwd.getpwnam(user).pw_dir,
        "LC_ALL": "C.UTF-8", "CH_IMAGE_STORAGE": str(base / "storage"),
        "XDG_CACHE_HOME": str(base / "cache"), "XDG_CONFIG_HOME": str(base / "config"),
        "IMAGEFIT_SITE_CONFIG": str(base / "site.toml"), **GIT, **extra,
    }  # fmt: skip


def run_as(env: dict[str, str], argv: list[str], *, user: str = "root", timeout=180):
    prefix = [] if user == "root" else ["runuser", "-u", user, "--"]
    cmd = [*prefix, "env", "-i", *(f"{k}={v}" for k, v in env.items()), *argv]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd="/")


def pull_and_show(env, ref, *, pull_options=(), user="root") -> list[str]:
    pulled = run_as(env, ["ch-image", "pull", *pull_options, ref], user=user)
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    assert "imagefit:" not in pulled.stderr and "Warning" not in pulled.stderr, pulled.stderr
    shown = run_as(env, ["ch-run", ref, "--", "sh", "-c", SHOW], user=user)
    assert shown.returncode == 0, shown.stderr
    return shown.stdout.split()


def test_ch_image_alone_refuses_the_index(app, home):
    env = ch_env(home, None)
    done = run_as(env, ["ch-image", "pull", "--tls-no-verify", app.ref])
    assert done.returncode != 0
    assert "duplicate architecture: amd64/v3" in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("node", "expected"), [("zen4", "zen4"), ("haswell", "haswell"), ("ivybridge", "x86_64_v2")]
)
def test_pull_stores_the_chosen_build_under_the_users_name(
    app, ch_bin, home, node_facts, node, expected
):
    env = ch_env(home, ch_bin, IMAGEFIT_FACTS=node_facts[node])
    assert pull_and_show(env, app.ref, pull_options=["--tls-no-verify"]) == [expected, "0"]
    listed = run_as(env, ["ch-image", "list"])
    assert listed.stdout.split() == [app.ref]  # the user's name, nothing else


def test_dry_run_shows_the_exact_argv(app, ch_bin, home, node_facts):
    env = ch_env(home, ch_bin, IMAGEFIT_FACTS=node_facts["haswell"], IMAGEFIT_DRY_RUN="1")
    done = run_as(env, ["ch-image", "-v", "pull", "--tls-no-verify", app.ref])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [
        CH_IMAGE, "-v", "pull", "--tls-no-verify", "--arch=yolo", app.digest_ref("haswell"), app.ref,
    ]  # fmt: skip


def test_unprivileged_user_gets_the_build_and_runs_as_themself(app, ch_bin, home, node_facts):
    user = pwd.getpwnam(os.environ.get("IMAGEFIT_TEST_USER", "alice"))
    shim_target = os.path.realpath(ch_bin / "ch-image")
    if subprocess.run(["runuser", "-u", user.pw_name, "--", "test", "-x", shim_target]).returncode:
        pytest.fail(
            f"{user.pw_name} cannot run {shim_target}: run the tests with /opt/imagefit-venv/bin/python"
        )
    os.chown(home, user.pw_uid, user.pw_gid)
    env = ch_env(home, ch_bin, user=user.pw_name, IMAGEFIT_FACTS=node_facts["zen4"])
    shown = pull_and_show(env, app.ref, pull_options=["--tls-no-verify"], user=user.pw_name)
    assert shown == ["zen4", str(user.pw_uid)]
    assert (home / "storage").stat().st_uid == user.pw_uid  # ch-image ran as the caller


def test_verified_tls_with_the_registrys_certificate(app, ch_bin, home, node_facts, tls_registry):
    """No --tls-no-verify: ch-image and the shim both verify the registry,
    here with its certificate as the CA bundle requests reads from the
    environment; without it the shim says so in one line and runs the
    command unchanged (ch-image then fails on the certificate itself)."""
    env = ch_env(home, ch_bin, IMAGEFIT_FACTS=node_facts["haswell"],
                 REQUESTS_CA_BUNDLE=str(tls_registry.ca_cert))  # fmt: skip
    assert pull_and_show(env, app.ref) == ["haswell", "0"]
    env = ch_env(home, ch_bin, IMAGEFIT_FACTS=node_facts["zen4"], IMAGEFIT_DRY_RUN="1",
                 XDG_CACHE_HOME=str(home / "fresh-cache"))  # the index stored above: not asked  # fmt: skip
    done = run_as(env, ["ch-image", "pull", app.ref])
    assert json.loads(done.stdout) == [CH_IMAGE, "pull", app.ref]
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"imagefit: cannot resolve {app.ref}")
    assert "certificate" in lines[0]


def test_node_classes_get_the_one_build_that_fits_them_all(
    app, ch_bin, home, node_facts, imagefit_cmd
):
    (home / "site.toml").write_text(
        f'[node_classes.zen4]\nfacts = "{node_facts["zen4"]}"\nhosts = ["zen4-*"]\n'
        f'[node_classes.ivy]\nfacts = "{node_facts["ivybridge"]}"\nhosts = ["ivy-*"]\n'
    )
    env = ch_env(home, ch_bin, IMAGEFIT_FACTS=node_facts["haswell"], IMAGEFIT_NODE_CLASS="zen4,ivy")
    assert pull_and_show(env, app.ref, pull_options=["--tls-no-verify"]) == ["x86_64_v2", "0"]
    # the same from `imagefit pull --runtime ch-image --node-class ...` (a login node)
    env = ch_env(home, None, IMAGEFIT_FACTS=node_facts["zen4"])
    run_as(env, ["ch-image", "delete", app.ref])
    done = run_as(env, [*imagefit_cmd, "pull", "--runtime", "ch-image", "--node-class", "zen4",
                        "--node-class", "ivy", app.ref, "--", "--tls-no-verify"])  # fmt: skip
    assert done.returncode == 0, done.stderr
    shown = run_as(env, ["ch-run", app.ref, "--", "sh", "-c", SHOW])
    assert shown.stdout.split() == ["x86_64_v2", "0"], shown.stderr


def test_runtimes_ch_image_in_the_site_config_is_the_one_run(app, ch_bin, home, node_facts):
    """``[runtimes] ch-image = PATH`` (shim.config.RUNTIMES): the shim runs
    that ch-image, here a copy of Debian's outside PATH's reach."""
    elsewhere = home / "opt" / "ch-image"
    elsewhere.parent.mkdir()
    os.symlink(CH_IMAGE, elsewhere)
    site = home / "site.toml"
    site.write_text(f'[runtimes]\n"ch-image" = "{elsewhere}"\n')
    site.chmod(0o644)
    env = ch_env(home, ch_bin, IMAGEFIT_FACTS=node_facts["zen4"], IMAGEFIT_DRY_RUN="1")
    done = run_as(env, ["ch-image", "pull", "--tls-no-verify", app.ref])
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert json.loads(done.stdout) == [
        str(elsewhere), "pull", "--tls-no-verify", "--arch=yolo", app.digest_ref("zen4"), app.ref,
    ]  # fmt: skip
