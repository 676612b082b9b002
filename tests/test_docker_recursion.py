"""The shim as ``docker`` in front of podman-docker's ``docker`` script, which
runs ``podman``, itself shimmed: exactly one rewrite.

PATH, in order (each shim installed by ``imagefit install --prefix X
--runtime NAME``, a symlink to the installed imagefit-shim)::

    X/bin/docker   the shim as docker: finds the script below as the real docker
    S/docker       #!/bin/sh  exec podman "$@"   (podman-docker's script)
    Y/bin/podman   the shim as podman: skips itself, finds the podman below
    T/podman       a recording stand-in (tests/support/standin.py), or real podman

The docker shim sees that its real docker is podman, so it reads the line as
podman would and applies podman's recipe; it marks the environment
(``IMAGEFIT_ACTIVE=1``), so the podman shim behind the script passes the
line through untouched. A real registry holds an annotated index; host facts
come from archspec's zen4 /proc/cpuinfo dump, so the zen4 build is chosen.
Also here: the docker shim in front of a stand-in that is docker itself
(docker's recipe, as root and as an ordinary user).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
from pathlib import Path

import pytest

import shim.login
from tests.conftest import world_readable_tmp
from tests.support import oci
from tests.support.standin import StandIn

TARGET_KEY = "org.supercontainers.hardware.cpu.target.microarch"
#: podman's login flag (shim.login): the entrypoint as a JSON array
PODMAN_EP = "--entrypoint=" + json.dumps(shim.login.ENTRYPOINT)
#: docker's login recipe: an entrypoint and its arguments right after the image
DOCKER_EP = "--entrypoint=/bin/sh"


def home_flags(podman: bool) -> list[str]:
    """HOME for a login container as the test's caller (shim.login.home_flags):
    its $HOME, not mounted in these lines, so an empty tmpfs there (root:
    HOME=/root only)."""
    if os.geteuid() == 0:  # root: its home in the image, nothing mounted over it
        return ["--env=HOME=/root"]
    home = os.environ["HOME"]
    owner = "U" if podman else f"uid={os.geteuid()},gid={os.getegid()}"
    return [f"--env=HOME={home}", f"--tmpfs={home}:rw,exec,mode=0700,{owner}"]


DOCKER_SH = ["-c", shim.login.OUTER, "sh"]
SCRIPT = '#!/bin/sh\nexec podman "$@"\n'


def _build(name: str, arch: str = "amd64", variant: str | None = None) -> dict:
    platform = {"architecture": arch, "os": "linux", **({"variant": variant} if variant else {})}
    return {
        "name": name,
        "platform": platform,
        "annotations": {TARGET_KEY: name},
        "entrypoint": ["/bin/echo", "ENTRYPOINT-RAN"],
    }


BUILDS = [
    _build("x86_64"),
    _build("x86_64_v3", variant="v3"),
    _build("haswell", variant="v3"),
    _build("skylake_avx512", variant="v4"),
    _build("zen4", variant="v4"),
    _build("neoverse_v2", arch="arm64", variant="v9"),
]


@pytest.fixture(scope="module")
def app(registry, tmp_path_factory):
    return oci.build_and_push(
        registry.host, "hpc/dockerapp", "2024", BUILDS, layout_dir=tmp_path_factory.mktemp("app")
    )


@pytest.fixture(scope="module")
def zen4_facts(imagefit_cmd, cpuinfo_dir):
    out = world_readable_tmp("imagefit-facts-")
    done = subprocess.run(
        [*imagefit_cmd, "facts", "--json", "--cpuinfo", str(cpuinfo_dir / "linux-rocky8.5-zen4"),
         "--machine", "x86_64"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    path = out / "zen4.json"
    path.write_text(done.stdout)
    path.chmod(0o644)
    yield str(path)
    shutil.rmtree(out, ignore_errors=True)


@pytest.fixture(scope="module")
def chain(imagefit_cmd):
    """The directories of the chain (see the module docstring); world-readable."""
    base = world_readable_tmp("imagefit-chain-")
    dirs = {name: base / name for name in ("X", "S", "Y", "T")}
    for prefix, runtime in (("X", "docker"), ("Y", "podman")):
        subprocess.run(
            [*imagefit_cmd, "install", "--prefix", str(dirs[prefix]), "--runtime", runtime],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
    dirs["S"].mkdir(mode=0o755)
    script = dirs["S"] / "docker"
    script.write_text(SCRIPT)
    script.chmod(0o755)
    dirs["T"].mkdir(mode=0o755)
    yield dirs
    shutil.rmtree(base, ignore_errors=True)


def _clean_env(tmp_path: Path, facts: str, path: str, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("IMAGEFIT_", "DOCKER_", "CONTAINER_", "PODMAN_"))
    }
    env.update(
        {
            "PATH": path,
            "IMAGEFIT_FACTS": facts,
            "XDG_CACHE_HOME": str(tmp_path / "cache"),  # a decision cache of this test's own
            **extra,
        }
    )
    return env


def _site_config(tmp_path: Path, host: str) -> str:
    site = tmp_path / "site.toml"
    site.write_text(f'insecure_registries = ["{host}"]\n')
    site.chmod(0o644)
    return str(site)


def _registries_conf(tmp_path: Path, host: str) -> str:
    conf = tmp_path / "registries.conf"
    conf.write_text(
        f'unqualified-search-registries = []\n[[registry]]\nlocation = "{host}"\ninsecure = true\n'
    )
    return str(conf)


def test_docker_shim_script_podman_shim_standin_rewrites_once(chain, app, zen4_facts, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the site config must be root-owned; run the suite as root")
    standin = StandIn(chain["T"], "podman")
    host = app.repository.split("/")[0]
    path = os.pathsep.join(
        [str(chain["X"] / "bin"), str(chain["S"]), str(chain["Y"] / "bin"), str(chain["T"]),
         os.environ["PATH"]]
    )  # fmt: skip
    env = _clean_env(tmp_path, zen4_facts, path, IMAGEFIT_SITE_CONFIG=_site_config(tmp_path, host))
    done = subprocess.run(
        [str(chain["X"] / "bin" / "docker"), "run", "--rm", app.ref, "whichbuild", "-v"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "imagefit:" not in done.stderr, done.stderr
    calls = standin.calls()
    assert len(calls) == 1, calls
    pinned = f"{app.repository}@{app.manifests['zen4']}"
    # podman's recipe, applied once; --tls-verify=false once since only imagefit's
    # config says the registry speaks plain HTTP (root: no --userns=keep-id)
    assert calls[0]["argv"] == [
        "run",
        "--tls-verify=false",
        PODMAN_EP,
        *home_flags(True),
        "--rm",
        pinned,
        "whichbuild",
        "-v",
    ]
    assert calls[0]["name"] == "podman"
    assert calls[0]["active"] == "1"


def test_dry_run_names_the_script_as_the_real_docker(chain, app, zen4_facts, tmp_path):
    host = app.repository.split("/")[0]
    path = os.pathsep.join([str(chain["X"] / "bin"), str(chain["S"]), str(chain["Y"] / "bin"),
                            str(chain["T"]), os.environ["PATH"]])  # fmt: skip
    env = _clean_env(
        tmp_path, zen4_facts, path,
        CONTAINERS_REGISTRIES_CONF=_registries_conf(tmp_path, host), IMAGEFIT_DRY_RUN="1",
    )  # fmt: skip
    done = subprocess.run(
        [str(chain["X"] / "bin" / "docker"), "run", "-it", app.ref, "sh"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    pinned = f"{app.repository}@{app.manifests['zen4']}"
    # registries.conf makes it insecure for podman too: no flag is added
    recipe = [PODMAN_EP] if os.geteuid() == 0 else [PODMAN_EP, "--userns=keep-id"]
    assert json.loads(done.stdout) == [
        str(chain["S"] / "docker"),
        "run",
        *recipe,
        *home_flags(True),
        "-it",
        pinned,
        "sh",
    ]


def test_podman_shim_alone_behind_the_script_would_rewrite_too(chain, app, zen4_facts, tmp_path):
    """Without the marker (the docker shim absent), the podman shim rewrites:
    the chain's single rewrite comes from the marker, not from luck."""
    standin = StandIn(chain["T"], "podman")
    host = app.repository.split("/")[0]
    path = os.pathsep.join(
        [str(chain["S"]), str(chain["Y"] / "bin"), str(chain["T"]), os.environ["PATH"]]
    )
    env = _clean_env(
        tmp_path, zen4_facts, path, CONTAINERS_REGISTRIES_CONF=_registries_conf(tmp_path, host)
    )
    done = subprocess.run(
        [str(chain["S"] / "docker"), "run", "--rm", app.ref, "whichbuild"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [call] = standin.calls()
    pinned = f"{app.repository}@{app.manifests['zen4']}"
    recipe = [PODMAN_EP] if os.geteuid() == 0 else [PODMAN_EP, "--userns=keep-id"]
    assert call["argv"] == ["run", *recipe, *home_flags(True), "--rm", pinned, "whichbuild"]
    assert call["active"] == "1"


def test_docker_shim_in_front_of_docker_itself(chain, app, zen4_facts, tmp_path):
    """docker's recipe. The registry is on 127.0.0.1, which the docker daemon
    always reaches over plain HTTP: the shim does the same, no config needed."""
    if os.geteuid() != 0:
        pytest.skip("the root case")
    standin = StandIn(tmp_path / "real", "docker")
    path = os.pathsep.join([str(chain["X"] / "bin"), str(tmp_path / "real"), os.environ["PATH"]])
    env = _clean_env(tmp_path, zen4_facts, path, DOCKER_CONFIG=str(tmp_path / "dc"))
    assert app.repository.startswith("127.0.0.1:")
    done = subprocess.run(
        [str(chain["X"] / "bin" / "docker"), "-D", "run", "--rm", "-h", "n1", app.ref, "whichbuild", "-x"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [call] = standin.calls()
    pinned = f"{app.repository}@{app.manifests['zen4']}"
    assert call["argv"] == [
        "-D", "run", DOCKER_EP, *home_flags(False), "--rm", "-h", "n1", pinned, *DOCKER_SH, "whichbuild", "-x",
    ]  # fmt: skip
    assert call["active"] == "1"


def test_docker_shim_as_an_ordinary_user(chain, app, zen4_facts, podman_env):
    """As the caller: --user UID:GID and HOME (run as the test user with runuser).
    Then the recorded argv is replayed with real podman, which reads docker's
    ``--entrypoint STRING`` and CMD as docker does (no docker daemon here): the
    build's PATH survives the login shell's /etc/profile, the image ENTRYPOINT
    does not run, the command runs as the caller with the caller's HOME."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to the test user")
    user_name = os.environ.get("IMAGEFIT_TEST_USER", "alice")
    try:
        user = pwd.getpwnam(user_name)
    except KeyError:
        pytest.fail(f"no user {user_name}: run tests/provision.sh (as root) first")
    base = world_readable_tmp("imagefit-docker-user-")
    try:
        standin = StandIn(base / "real", "docker")
        os.chown(base / "real", user.pw_uid, user.pw_gid)
        path = os.pathsep.join([str(chain["X"] / "bin"), str(base / "real"), os.environ["PATH"]])
        env = {"PATH": path, "HOME": user.pw_dir, "USER": user.pw_name, "IMAGEFIT_FACTS": zen4_facts,
               "XDG_CACHE_HOME": str(base / "cache"), "DOCKER_CONFIG": str(base / "dc")}  # fmt: skip
        os.makedirs(base / "cache", mode=0o777)
        os.chmod(base / "cache", 0o777)
        done = subprocess.run(
            ["runuser", "-u", user_name, "--", "env", *(f"{k}={v}" for k, v in env.items()),
             str(chain["X"] / "bin" / "docker"), "run", "--rm", app.ref, "sh", "-c", "whichbuild; id -u; echo $HOME"],
            capture_output=True, text=True, timeout=120, cwd="/",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        [call] = standin.calls()
        pinned = f"{app.repository}@{app.manifests['zen4']}"
        assert call["argv"] == [
            "run", DOCKER_EP, f"--user={user.pw_uid}:{user.pw_gid}", f"--env=HOME={user.pw_dir}",
            f"--tmpfs={user.pw_dir}:rw,exec,mode=0700,uid={user.pw_uid},gid={user.pw_gid}",
            "--rm", pinned, *DOCKER_SH, "sh", "-c", "whichbuild; id -u; echo $HOME",
        ]  # fmt: skip
        argv, penv = podman_env
        # podman takes docker's --entrypoint STRING and CMD as docker does, but not
        # the tmpfs options uid=/gid= (docker's, moby/sys mount/flags.go): its U
        words = [a.replace(f"uid={user.pw_uid},gid={user.pw_gid}", "U") for a in call["argv"][1:]]
        replay = [*argv, "run", "--tls-verify=false", "--network=none", *words]
        ran = subprocess.run(replay, env=penv, capture_output=True, text=True, timeout=180)
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.split() == ["zen4", str(user.pw_uid), user.pw_dir], (
            ran.stdout + ran.stderr
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_real_podman_through_the_docker_script(chain, app, zen4_facts, podman_env, tmp_path):
    """End to end: docker shim -> podman-docker's script -> podman shim -> real podman."""
    argv, penv = podman_env
    host = app.repository.split("/")[0]
    path = os.pathsep.join(
        [str(chain["X"] / "bin"), str(chain["S"]), str(chain["Y"] / "bin"), penv["PATH"]]
    )
    env = {k: v for k, v in penv.items() if not k.startswith(("IMAGEFIT_", "DOCKER_"))}
    env.update({"PATH": path, "IMAGEFIT_FACTS": zen4_facts, "XDG_CACHE_HOME": str(tmp_path / "cache"),
                "IMAGEFIT_SITE_CONFIG": _site_config(tmp_path, host)})  # fmt: skip
    done = subprocess.run(
        [str(chain["X"] / "bin" / "docker"), *argv[1:], "run", "--rm", "--network=none", app.ref,
         "sh", "-c", "whichbuild; id -u"],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["zen4", "0"], done.stdout + done.stderr
    assert "ENTRYPOINT-RAN" not in done.stdout
