"""docker command lines through the shim: the exact final argv.

Each case is a docker command line (argv without argv[0]), the exact argv the
shim must exec, and the references it must have asked the resolver for
(normalised, in order). Expectations are written out literally; nothing is
computed by the code under test. The resolver and the host facts are faked
(no registry I/O): every resolved image selects the build ``D``. The caller
is uid/gid 1000 (not root) with HOME=/home/alice unless a test says otherwise.

How docker reads a line was checked against the installed docker client
28.2.2 talking to a recording fake API socket (``DOCKER_HOST=unix://...``):
the ``Image`` of ``POST /containers/create`` and the ``fromImage`` of
``POST /images/create`` name the token docker took as the image; "unknown
flag" errors name the flags it rejects.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

import hostfacts
import scoring
import shim.login
import shim.main
import shim.personality.docker as docker_personality
import shim.resolve
from shim import personality as personalities
from shim.argv import docker
from shim.config import Settings
from shim.errors import ArgvError
from shim.intercept import plan
from tests.support.fake_resolver import D, FakeResolver, U, install, zen4_host  # noqa: F401

#: The digest of the build the fake resolver chooses.
#: An index digest a user may already have pinned.
#: The login recipe: the entrypoint is /bin/sh...
EP = "--entrypoint=/bin/sh"
#: ... and its arguments come right after the image, before the user's command.
SH = ["-c", shim.login.OUTER, "sh"]
#: As the caller (uid/gid 1000, not root) with the caller's HOME.
HOME = "/home/alice"
US = "--user=1000:1000"
HM = f"--env=HOME={HOME}"
#: ... and, the caller's home not being mounted, an empty tmpfs there (shim.login.home_flags)
TM = f"--tmpfs={HOME}:rw,exec,mode=0700,uid=1000,gid=1000"
LG = [EP, US, HM, TM]
#: root's HOME flags (uid/gid 0): root's home in the image, nothing mounted over it
RH = ["--env=HOME=/root"]
#: podman's HOME flags (when docker is podman-docker's script)
PH = [HM, f"--tmpfs={HOME}:rw,exec,mode=0700,U"]
#: podman's login flags (when docker is podman-docker's script)
PEP = "--entrypoint=" + json.dumps(shim.login.ENTRYPOINT)
KI = "--userns=keep-id"

IMG = "quay.io/hpc/app:1"
PIN = f"quay.io/hpc/app@{D}"
IMG2 = "ghcr.io/org/tool:2.0"
HEX12 = "0123456789ab"
HEX64 = "0123456789abcdef" * 4

# (args, expected final argv, references the resolver was asked for)
# fmt: off
CASES: list[tuple[list[str], list[str], list[str]]] = [
    # --- run: the plain case, the container's command after -c OUTER sh ---------------
    (["run", IMG], ["run", *LG, PIN, *SH], [IMG]),
    (["run", IMG, "gmx", "mdrun", "-v"], ["run", *LG, PIN, *SH, "gmx", "mdrun", "-v"], [IMG]),
    # --- bundles and --opt=value --------------------------------------------------------
    (["run", "-it", IMG, "bash"], ["run", *LG, "-it", PIN, *SH, "bash"], [IMG]),
    (["run", "-itv/a:/b", IMG], ["run", *LG, "-itv/a:/b", PIN, *SH], [IMG]),
    (["run", "-itv", "/a:/b", IMG], ["run", *LG, "-itv", "/a:/b", PIN, *SH], [IMG]),
    (["run", "-dit", IMG], ["run", *LG, "-dit", PIN, *SH], [IMG]),
    (["run", "-e=X=1", IMG], ["run", *LG, "-e=X=1", PIN, *SH], [IMG]),
    (["run", "-ie", "X=1", IMG], ["run", *LG, "-ie", "X=1", PIN, *SH], [IMG]),
    (["run", "--name=x", IMG], ["run", *LG, "--name=x", PIN, *SH], [IMG]),
    (["run", "--name", "x", IMG], ["run", *LG, "--name", "x", PIN, *SH], [IMG]),
    (["run", "-v", "/a:/b", IMG], ["run", *LG, "-v", "/a:/b", PIN, *SH], [IMG]),
    (
        ["run", "--mount", "type=bind,src=/a,dst=/b", IMG],
        ["run", *LG, "--mount", "type=bind,src=/a,dst=/b", PIN, *SH],
        [IMG],
    ),
    # in run, -h is --hostname, -c --cpu-shares, -l --label (not help, --context, --log-level)
    (["run", "-h", "node1", IMG], ["run", *LG, "-h", "node1", PIN, *SH], [IMG]),
    (["run", "-hnode1", IMG], ["run", *LG, "-hnode1", PIN, *SH], [IMG]),
    (["run", "-c", "512", IMG], ["run", *LG, "-c", "512", PIN, *SH], [IMG]),
    (["run", "-l", "a=b", IMG], ["run", *LG, "-l", "a=b", PIN, *SH], [IMG]),
    (["run", "--pull", "always", IMG], ["run", *LG, "--pull", "always", PIN, *SH], [IMG]),
    (["run", "--net", "host", IMG], ["run", *LG, "--net", "host", PIN, *SH], [IMG]),
    (["run", "--dns-opt", "ndots:1", IMG], ["run", *LG, "--dns-opt", "ndots:1", PIN, *SH], [IMG]),
    (["run", "--gpus", "all", IMG], ["run", *LG, "--gpus", "all", PIN, *SH], [IMG]),
    (["run", "--rm=false", IMG], ["run", *LG, "--rm=false", PIN, *SH], [IMG]),
    (["run", "--sig-proxy=false", IMG], ["run", *LG, "--sig-proxy=false", PIN, *SH], [IMG]),
    (["run", "--init", "--privileged", IMG], ["run", *LG, "--init", "--privileged", PIN, *SH], [IMG]),
    # a boolean never takes the next word: docker's image here is "false" (docker.io/library/false)
    (
        ["run", "--rm", "-i", "false", IMG],
        ["run", *LG, "--rm", "-i", f"docker.io/library/false@{D}", *SH, IMG],
        ["docker.io/library/false"],
    ),
    # --- global flags before the command word -------------------------------------------
    (["-D", "run", IMG], ["-D", "run", *LG, PIN, *SH], [IMG]),
    (["-l", "debug", "run", IMG], ["-l", "debug", "run", *LG, PIN, *SH], [IMG]),
    (["-Dl", "debug", "run", IMG], ["-Dl", "debug", "run", *LG, PIN, *SH], [IMG]),
    (["--log-level=info", "run", IMG], ["--log-level=info", "run", *LG, PIN, *SH], [IMG]),
    (["--config", "/nonexistent/dc", "run", IMG], ["--config", "/nonexistent/dc", "run", *LG, PIN, *SH], [IMG]),
    (["-v", "run", IMG], ["-v", "run", *LG, PIN, *SH], [IMG]),  # docker runs it (version ignored)
    (["-c", "default", "run", IMG], ["-c", "default", "run", *LG, PIN, *SH], [IMG]),
    (["--context=default", "pull", IMG], ["--context=default", "pull", PIN], [IMG]),
    # a daemon on this host (unix socket) vs elsewhere: another host's facts are not ours
    (
        ["-H", "unix:///run/user/1000/docker.sock", "run", IMG],
        ["-H", "unix:///run/user/1000/docker.sock", "run", *LG, PIN, *SH],
        [IMG],
    ),
    (["-H", "tcp://node2:2375", "run", IMG], ["-H", "tcp://node2:2375", "run", IMG], []),
    (["--host=ssh://me@node2", "run", IMG], ["--host=ssh://me@node2", "run", IMG], []),
    (["-H", "node2:2375", "pull", IMG], ["-H", "node2:2375", "pull", IMG], []),  # no scheme: tcp
    (["--context", "remote", "run", IMG], ["--context", "remote", "run", IMG], []),  # no such context here
    (["--tlsverify", "run", IMG], ["--tlsverify", "run", IMG], []),  # tcp://localhost:2376
    # --- `--` at the root: docker reads global flags once more after it ---------------
    (["--", "run", IMG], ["--", "run", *LG, PIN, *SH], [IMG]),
    (["-D", "--", "run", "--rm", IMG], ["-D", "--", "run", *LG, "--rm", PIN, *SH], [IMG]),
    (["--", "-D", "run", IMG], ["--", "-D", "run", *LG, PIN, *SH], [IMG]),
    # --- command groups -------------------------------------------------------------
    (["container", "run", IMG], ["container", "run", *LG, PIN, *SH], [IMG]),
    (["container", "create", IMG], ["container", "create", *LG, PIN, *SH], [IMG]),
    (["image", "pull", IMG], ["image", "pull", PIN], [IMG]),
    (["-D", "image", "pull", "-q", IMG], ["-D", "image", "pull", "-q", PIN], [IMG]),
    # the root's --help does not reach run/create (docker runs the container) ...
    (["--help", "run", IMG], ["--help", "run", *LG, PIN, *SH], [IMG]),
    (["container", "--help", "run", IMG], ["container", "--help", "run", *LG, PIN, *SH], [IMG]),
    # ... but reaches pull (docker prints help)
    (["--help", "pull", IMG], ["--help", "pull", IMG], []),
    (["image", "-h", "pull", IMG], ["image", "-h", "pull", IMG], []),
    # --- create gets the same recipe as run ---------------------------------------------
    (["create", IMG], ["create", *LG, PIN, *SH], [IMG]),
    (
        ["create", "-it", "--name", "c1", IMG, "sh"],
        ["create", *LG, "-it", "--name", "c1", PIN, *SH, "sh"],
        [IMG],
    ),
    # --- `--` ends flag parsing -------------------------------------------------------
    (["run", "--rm", "--", IMG, "cmd"], ["run", *LG, "--rm", "--", PIN, *SH, "cmd"], [IMG]),
    (["run", "--", IMG], ["run", *LG, "--", PIN, *SH], [IMG]),
    (["run", IMG, "sh", "--", "-x"], ["run", *LG, PIN, *SH, "sh", "--", "-x"], [IMG]),
    # --- the container's own command is never read ------------------------------------
    (
        ["run", IMG, "docker", "run", "other.io/x:1", "--rm"],
        ["run", *LG, PIN, *SH, "docker", "run", "other.io/x:1", "--rm"],
        [IMG],
    ),
    (["run", IMG, "--help"], ["run", *LG, PIN, *SH, "--help"], [IMG]),
    (["run", IMG, "-h"], ["run", *LG, PIN, *SH, "-h"], [IMG]),
    (["run", IMG, "--no-such-flag"], ["run", *LG, PIN, *SH, "--no-such-flag"], [IMG]),
    (["run", IMG, "--entrypoint", "/x"], ["run", *LG, PIN, *SH, "--entrypoint", "/x"], [IMG]),
    (["run", IMG, "-u", "0"], ["run", *LG, PIN, *SH, "-u", "0"], [IMG]),
    (["run", IMG, IMG2], ["run", *LG, PIN, *SH, IMG2], [IMG]),
    # --- short names are docker.io, as the daemon reads them ----------------------------
    (["run", "ubuntu"], ["run", *LG, f"docker.io/library/ubuntu@{D}", *SH], ["docker.io/library/ubuntu"]),
    (
        ["run", "-it", "ubuntu:22.04", "bash"],
        ["run", *LG, "-it", f"docker.io/library/ubuntu@{D}", *SH, "bash"],
        ["docker.io/library/ubuntu:22.04"],
    ),
    (
        ["run", "gromacs/gromacs:2024"],
        ["run", *LG, f"docker.io/gromacs/gromacs@{D}", *SH],
        ["docker.io/gromacs/gromacs:2024"],
    ),
    (["pull", "busybox"], ["pull", f"docker.io/library/busybox@{D}"], ["docker.io/library/busybox"]),
    (
        ["run", "index.docker.io/hpc/app:2024"],
        ["run", *LG, f"docker.io/hpc/app@{D}", *SH],
        ["docker.io/hpc/app:2024"],
    ),
    (
        ["run", "localhost:5000/app:1"],
        ["run", *LG, f"localhost:5000/app@{D}", *SH],
        ["localhost:5000/app:1"],
    ),
    (["run", f"quay.io/hpc/app@{U}"], ["run", *LG, PIN, *SH], [f"quay.io/hpc/app@{U}"]),
    (["run", f"quay.io/hpc/app:1@{U}"], ["run", *LG, PIN, *SH], [f"quay.io/hpc/app@{U}"]),
    # --- images the shim never resolves (no flags added either) ------------------------
    (["run", "localhost/x"], ["run", "localhost/x"], []),
    (["run", HEX12], ["run", HEX12], []),
    (["run", HEX64, "sh"], ["run", HEX64, "sh"], []),
    (["run", f"sha256:{HEX64}"], ["run", f"sha256:{HEX64}"], []),
    (["run", "Ubuntu"], ["run", "Ubuntu"], []),  # invalid: upper case
    (["run", "--", "--rm", IMG], ["run", "--", "--rm", IMG], []),  # the image is "--rm"
    (["run", "--rm"], ["run", "--rm"], []),
    (["run"], ["run"], []),
    # --- pull: exactly one image, flags anywhere, never login flags ----------------------
    (["pull", IMG], ["pull", PIN], [IMG]),
    (["pull", "-q", IMG], ["pull", "-q", PIN], [IMG]),
    (["pull", IMG, "--quiet"], ["pull", PIN, "--quiet"], [IMG]),
    (["pull", "--", IMG], ["pull", "--", PIN], [IMG]),
    (["pull", IMG, "--"], ["pull", PIN, "--"], [IMG]),
    (["pull", "--disable-content-trust", IMG], ["pull", "--disable-content-trust", PIN], [IMG]),
    (["pull", IMG, IMG2], ["pull", IMG, IMG2], []),  # docker: 'docker pull' requires 1 argument
    (["pull"], ["pull"], []),
    (["pull", "-a", IMG], ["pull", "-a", IMG], []),  # every tag: no single build to pick
    (["pull", "--all-tags", IMG], ["pull", "--all-tags", IMG], []),
    (["pull", "-a=false", IMG], ["pull", "-a=false", PIN], [IMG]),
    (["pull", "-h", IMG], ["pull", "-h", IMG], []),
    (["pull", IMG, "--help"], ["pull", IMG, "--help"], []),
    (["pull", "--help=false", IMG], ["pull", "--help=false", PIN], [IMG]),
    # --- --platform: a constraint on this host's architecture, else the runtime's choice
    (["pull", "--platform", "linux/amd64", IMG], ["pull", "--platform", "linux/amd64", PIN], [IMG]),
    (["pull", "--platform", "linux/arm64", IMG], ["pull", "--platform", "linux/arm64", IMG], []),
    (
        ["run", "--platform", "linux/amd64", IMG],
        ["run", *LG, "--platform", "linux/amd64", PIN, *SH],
        [IMG],
    ),
    (["run", "--platform=linux/arm64", IMG], ["run", "--platform=linux/arm64", IMG], []),
    (["run", "--platform", "arm64", IMG], ["run", "--platform", "arm64", IMG], []),  # one word: arch
    (["run", "--platform", "amd64", IMG], ["run", *LG, "--platform", "amd64", PIN, *SH], [IMG]),
    (["run", "--platform", "linux", IMG], ["run", *LG, "--platform", "linux", PIN, *SH], [IMG]),
    (["run", "--platform", "windows/amd64", IMG], ["run", "--platform", "windows/amd64", IMG], []),
    (
        ["create", "--platform=linux/x86_64/v3", IMG],
        ["create", *LG, "--platform=linux/x86_64/v3", PIN, *SH],
        [IMG],
    ),
    # --- the user chose the entrypoint, the user, HOME ------------------------------------
    (
        ["run", "--entrypoint", "/bin/bash", IMG, "-l"],
        ["run", US, HM, TM, "--entrypoint", "/bin/bash", PIN, "-l"],
        [IMG],
    ),
    (["run", "--entrypoint=", IMG, "ls"], ["run", US, HM, TM, "--entrypoint=", PIN, "ls"], [IMG]),
    (["run", "-u", "0", IMG], ["run", EP, "-u", "0", PIN, *SH], [IMG]),
    (["run", "-u1000:1000", IMG], ["run", EP, "-u1000:1000", PIN, *SH], [IMG]),
    (["run", "--user=root", IMG, "id"], ["run", EP, "--user=root", PIN, *SH, "id"], [IMG]),
    (
        ["run", "--entrypoint", "/x", "-u", "0", IMG],
        ["run", "--entrypoint", "/x", "-u", "0", PIN],
        [IMG],
    ),
    (["run", "-e", "HOME=/scratch", IMG], ["run", EP, US, "-e", "HOME=/scratch", PIN, *SH], [IMG]),
    (["run", "--env", "HOME", IMG], ["run", EP, US, "--env", "HOME", PIN, *SH], [IMG]),
    (["run", "-eHOME=/s", IMG], ["run", EP, US, "-eHOME=/s", PIN, *SH], [IMG]),
    (["run", "-e", "HOMEDIR=/x", IMG], ["run", *LG, "-e", "HOMEDIR=/x", PIN, *SH], [IMG]),
    # --- help passes through ------------------------------------------------------------
    (["run", "--help"], ["run", "--help"], []),
    (["run", "--help", IMG], ["run", "--help", IMG], []),
    (["create", "--help", IMG], ["create", "--help", IMG], []),
    (["run", "--help=false", IMG], ["run", *LG, "--help=false", PIN, *SH], [IMG]),
    # --- not intercepted at all ---------------------------------------------------------
    (["ps"], ["ps"], []),
    (["ps", "-a"], ["ps", "-a"], []),
    (["images"], ["images"], []),
    (
        ["exec", "-it", "ctr", "docker", "run", IMG],
        ["exec", "-it", "ctr", "docker", "run", IMG],
        [],
    ),
    (["build", "-t", "x", "."], ["build", "-t", "x", "."], []),
    (["buildx", "build", "--platform", "linux/arm64", "."], ["buildx", "build", "--platform", "linux/arm64", "."], []),
    (["compose", "up", "-d"], ["compose", "up", "-d"], []),
    (["push", IMG], ["push", IMG], []),
    (["image", "inspect", IMG], ["image", "inspect", IMG], []),
    (["container", "ls"], ["container", "ls"], []),
    (["container", "--", "run", IMG], ["container", "--", "run", IMG], []),  # docker: unknown command
    (["-D", "--", "--", "run", IMG], ["-D", "--", "--", "run", IMG], []),
    (["--version"], ["--version"], []),
    (["version"], ["version"], []),
    ([], [], []),
]
# fmt: on


def _id(case) -> str:
    return " ".join(case[0]).replace(D, "D").replace(U, "U") or "(empty)"


@pytest.fixture(scope="module")
def zen4_facts() -> hostfacts.HostFacts:
    return zen4_host()


@pytest.fixture
def fake(monkeypatch, tmp_path, zen4_facts) -> FakeResolver:
    resolver = install(
        monkeypatch, zen4_facts
    )  # not root (uid 1000) on amd64 unless a test says otherwise
    monkeypatch.setattr(os, "getegid", lambda: 1000)
    monkeypatch.setattr(docker_personality, "DAEMON_JSON", str(tmp_path / "daemon.json"))
    return resolver


@pytest.fixture
def environ(tmp_path) -> dict[str, str]:
    conf = tmp_path / "registries.conf"
    conf.write_text("")
    return {
        "HOME": HOME,
        "DOCKER_CONFIG": str(tmp_path / "docker-config"),
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
        "CONTAINERS_REGISTRIES_CONF": str(conf),
    }


def final(args, environ, settings: Settings | None = None, real: str | None = None) -> list[str]:
    settings = settings or Settings(decision_cache_ttl=0)  # the decision cache has tests of its own
    personality = personalities.get("docker")
    personality.real = real
    return plan(personality, personality.parse(args), settings, environ).args


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_final_argv(case, fake, environ):
    args, expected, asked = case
    assert final(args, environ) == expected
    assert fake.asked == asked


def test_table_is_large_enough():
    assert len(CASES) >= 50


def test_the_recipe_runs_the_command_through_the_login_shell(fake, environ):
    """What docker runs: ENTRYPOINT ["/bin/sh"], CMD ["-c", OUTER, "sh", CMD...]."""
    out = final(["run", IMG, "cmd", "a b", "c"], environ)
    assert out[out.index(PIN) + 1 :] == ["-c", shim.login.OUTER, "sh", "cmd", "a b", "c"]
    assert shim.login.ENTRYPOINT == ["/bin/sh", "-c", shim.login.OUTER, "sh"]


# ---------------------------------------------------------------- root, rootless daemon


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", IMG], ["run", EP, *RH, PIN, *SH]),
        (["run", "-it", IMG, "sh"], ["run", EP, *RH, "-it", PIN, *SH, "sh"]),
        (["create", "--rm", IMG], ["create", EP, *RH, "--rm", PIN, *SH]),
        (["run", "--entrypoint", "/x", IMG], ["run", *RH, "--entrypoint", "/x", PIN]),
        (["-D", "container", "run", IMG], ["-D", "container", "run", EP, *RH, PIN, *SH]),
        (["pull", IMG], ["pull", PIN]),
    ],
)
def test_root_runs_as_the_images_user(args, expected, fake, environ, monkeypatch):
    # root's container runs as root; HOME is root's (here $HOME), an empty tmpfs
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(os, "getegid", lambda: 0)
    assert final(args, environ) == expected
    assert fake.asked == [IMG]


def _socket_owned_by_caller(tmp_path, monkeypatch) -> str:
    sock = tmp_path / "docker.sock"
    sock.write_text("")
    uid = os.getuid()
    if uid == 0:
        os.chown(sock, 1000, 1000)
        uid = 1000
    monkeypatch.setattr(os, "geteuid", lambda: uid)
    return str(sock)


def test_rootless_daemon_gets_no_user(fake, environ, tmp_path, monkeypatch):
    """A daemon whose socket belongs to the caller is rootless: container root
    is the caller already, and --user would be one of its sub-uids."""
    sock = _socket_owned_by_caller(tmp_path, monkeypatch)
    env = {**environ, "DOCKER_HOST": f"unix://{sock}"}
    assert final(["run", "-it", IMG, "sh"], env) == ["run", EP, "-it", PIN, *SH, "sh"]
    assert final(["-H", f"unix://{sock}", "run", IMG], environ) == [
        "-H",
        f"unix://{sock}",
        "run",
        EP,
        PIN,
        *SH,
    ]


def test_home_from_the_passwd_entry_without_HOME(fake, environ, monkeypatch):
    import pwd

    monkeypatch.setattr(pwd, "getpwuid", lambda uid: type("P", (), {"pw_dir": f"/u/{uid}"})())
    env = {k: v for k, v in environ.items() if k != "HOME"}
    assert final(["run", IMG], env) == [
        "run", EP, US, "--env=HOME=/u/1000", "--tmpfs=/u/1000:rw,exec,mode=0700,uid=1000,gid=1000",
        PIN, *SH,
    ]  # fmt: skip


def test_home_in_an_env_file_is_the_users(fake, environ, tmp_path):
    with_home = tmp_path / "with.env"
    with_home.write_text("# comment\nA=1\n  HOME=/scratch/me\n")
    without = tmp_path / "without.env"
    without.write_text("A=1\n#HOME=/x\nHOMER=2\n")
    assert final(["run", "--env-file", str(with_home), IMG], environ) == [
        "run", EP, US, "--env-file", str(with_home), PIN, *SH,
    ]  # fmt: skip
    assert final(["run", f"--env-file={without}", IMG], environ) == [
        "run", *LG, f"--env-file={without}", PIN, *SH,
    ]  # fmt: skip


# ---------------------------------------------------------------- remote daemons, contexts


def _context(config_dir: Path, name: str, host: str) -> None:
    meta = config_dir / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(
        json.dumps(
            {
                "Name": name,
                "Metadata": {},
                "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": False}},
            }
        )
    )


def test_docker_host_variable(fake, environ):
    for host, runs_here in [
        ("unix:///run/user/1000/docker.sock", True),
        ("unix://", True),
        ("tcp://10.0.0.2:2376", False),
        ("ssh://me@node2", False),
        ("node2:2375", False),
    ]:
        out = final(["run", IMG], {**environ, "DOCKER_HOST": host})
        assert out == (["run", *LG, PIN, *SH] if runs_here else ["run", IMG]), host


def test_contexts(fake, environ, tmp_path):
    config = Path(environ["DOCKER_CONFIG"])
    _context(config, "rootless", "unix:///run/user/1000/docker.sock")
    _context(config, "cluster", "ssh://me@login1")
    here = ["run", *LG, PIN, *SH]
    assert final(["run", IMG], {**environ, "DOCKER_CONTEXT": "rootless"}) == here
    assert final(["run", IMG], {**environ, "DOCKER_CONTEXT": "cluster"}) == ["run", IMG]
    assert final(["--context", "cluster", "run", IMG], environ) == [
        "--context",
        "cluster",
        "run",
        IMG,
    ]
    assert final(["-c", "rootless", "run", IMG], environ) == [
        "-c",
        "rootless",
        "run",
        *LG,
        PIN,
        *SH,
    ]
    # --context wins over DOCKER_HOST; DOCKER_HOST wins over DOCKER_CONTEXT
    env = {**environ, "DOCKER_HOST": "tcp://node2:2375", "DOCKER_CONTEXT": "rootless"}
    assert final(["run", IMG], env) == ["run", IMG]
    assert final(["-c", "rootless", "run", IMG], env) == ["-c", "rootless", "run", *LG, PIN, *SH]
    # the current context of config.json (`docker context use`)
    (config / "config.json").write_text(json.dumps({"currentContext": "cluster"}))
    assert final(["run", IMG], environ) == ["run", IMG]
    assert final(["run", IMG], {**environ, "DOCKER_CONTEXT": "default"}) == here
    # --config names another directory: its config.json and contexts
    other = tmp_path / "other"
    _context(other, "cluster", "unix:///var/run/docker.sock")
    (other / "config.json").write_text(json.dumps({"currentContext": "cluster"}))
    assert final(["--config", str(other), "run", IMG], environ) == [
        "--config",
        str(other),
        "run",
        *LG,
        PIN,
        *SH,
    ]


def test_lines_docker_refuses_pass_through(fake, environ):
    both = ["-H", "unix:///var/run/docker.sock", "-c", "default", "run", IMG]  # conflicting options
    assert final(both, environ) == both
    two = ["-H", "unix:///a.sock", "-H", "unix:///b.sock", "run", IMG]  # specify only one -H
    assert final(two, environ) == two
    assert fake.asked == []


def test_tls_to_the_daemon_from_the_environment(fake, environ):
    for var in ("DOCKER_TLS_VERIFY", "DOCKER_TLS"):
        assert final(["run", IMG], {**environ, var: "1"}) == ["run", IMG]  # tcp://localhost:2376
    env = {**environ, "DOCKER_TLS_VERIFY": "1", "DOCKER_HOST": "unix:///var/run/docker.sock"}
    assert final(["run", IMG], env) == ["run", *LG, PIN, *SH]
    assert final(["--tlsverify=false", "run", IMG], {**environ, "DOCKER_TLS_VERIFY": "1"}) == [
        "--tlsverify=false", "run", *LG, PIN, *SH,
    ]  # fmt: skip


# ---------------------------------------------------------------- content trust


def test_content_trust_passes_through(fake, environ):
    """docker verifies a tag with Notary; a digest would skip the verification."""
    trusted = {**environ, "DOCKER_CONTENT_TRUST": "1"}
    assert final(["run", IMG], trusted) == ["run", IMG]
    assert final(["pull", IMG], trusted) == ["pull", IMG]
    assert final(["pull", "--disable-content-trust", IMG], trusted) == [
        "pull",
        "--disable-content-trust",
        PIN,
    ]
    assert final(["run", "--disable-content-trust=false", IMG], environ) == [
        "run",
        "--disable-content-trust=false",
        IMG,
    ]
    assert final(["run", IMG], {**environ, "DOCKER_CONTENT_TRUST": "0"}) == ["run", *LG, PIN, *SH]
    assert final(["run", IMG], {**environ, "DOCKER_CONTENT_TRUST": "yes"}) == [
        "run",
        IMG,
    ]  # not a bool: on


# ---------------------------------------------------------------- platform


def test_platform_is_a_constraint(fake, environ):
    final(["run", "--platform", "linux/amd64", IMG], environ)
    final(["run", "--platform", "amd64", IMG], environ)
    final(["run", "--platform", "linux/x86_64/v3", IMG], environ)
    final(["pull", "--platform", "linux", IMG], environ)
    assert fake.requested == [
        ("linux", "amd64", None),
        ("linux", "amd64", None),
        ("linux", "amd64", "v3"),
        ("linux", "amd64", None),
    ]


def test_default_platform_variable(fake, environ):
    env = {**environ, "DOCKER_DEFAULT_PLATFORM": "linux/arm64"}
    assert final(["run", IMG], env) == ["run", IMG]
    assert final(["pull", IMG], env) == ["pull", IMG]
    # --platform wins over the variable
    assert final(["run", "--platform", "linux/amd64", IMG], env) == [
        "run", *LG, "--platform", "linux/amd64", PIN, *SH,
    ]  # fmt: skip
    assert final(["run", IMG], {**environ, "DOCKER_DEFAULT_PLATFORM": "linux/amd64/v2"}) == [
        "run", *LG, PIN, *SH,
    ]  # fmt: skip
    assert fake.requested == [("linux", "amd64", None), ("linux", "amd64", "v2")]


# ---------------------------------------------------------------- TLS and credentials


def test_daemon_insecure_registries(fake, environ, tmp_path, capsys):
    (tmp_path / "daemon.json").write_text(
        json.dumps({"insecure-registries": ["quay.io", "10.0.0.0/8", "http://reg.site:5000"]})
    )
    for ref, insecure in [
        (IMG, True),  # by name
        ("10.1.2.3:5000/a/b:1", True),  # in a CIDR
        ("reg.site:5000/a/b:1", True),
        ("reg.site/a/b:1", False),  # the port is part of the name
        ("127.0.0.1:5000/a/b:1", True),  # loopback: always
        ("localhost:5000/a/b:1", True),
        ("[::1]:5000/a/b:1", True),
        ("11.0.0.1:5000/a/b:1", False),
        (IMG2, False),
        ("ubuntu", False),
    ]:
        fake.calls.clear()
        final(["pull", ref], environ)
        assert [c["insecure"] for c in fake.calls] == [insecure], ref
    assert capsys.readouterr().err == ""


def test_rootless_daemon_reads_its_own_daemon_json(fake, environ, tmp_path, monkeypatch):
    sock = _socket_owned_by_caller(tmp_path, monkeypatch)
    user = Path(environ["XDG_CONFIG_HOME"]) / "docker"
    user.mkdir(parents=True)
    (user / "daemon.json").write_text(json.dumps({"insecure-registries": ["quay.io"]}))
    final(["pull", IMG], environ)
    final(["pull", IMG], {**environ, "DOCKER_HOST": f"unix://{sock}"})
    assert [c["insecure"] for c in fake.calls] == [False, True]


def test_insecure_only_by_imagefit_config_warns_and_adds_no_flag(fake, environ, capsys):
    settings = Settings(insecure_registries=("quay.io",), decision_cache_ttl=0)
    assert final(["run", IMG], environ, settings) == ["run", *LG, PIN, *SH]
    assert final(["pull", IMG], environ, settings) == ["pull", PIN]
    assert [c["insecure"] for c in fake.calls] == [True, True]
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all("insecure-registries" in line for line in err)


def test_credentials_come_from_dockers_config(fake, environ, tmp_path):
    final(["pull", IMG], environ)
    final(["--config", "/etc/dc", "pull", IMG], environ)
    final(["run", IMG], {k: v for k, v in environ.items() if k != "DOCKER_CONFIG"})
    assert [c["authfile"] for c in fake.calls] == [
        f"{environ['DOCKER_CONFIG']}/config.json",
        "/etc/dc/config.json",
        f"{HOME}/.docker/config.json",
    ]


# ---------------------------------------------------------------- login setting


def test_login_never_and_application_containers(fake, environ):
    assert final(["run", "-it", IMG, "sh"], environ, Settings(login="never", decision_cache_ttl=0)) == [
        "run", "-it", PIN, "sh",
    ]  # fmt: skip
    fake.annotations = {"org.supercontainers.container.kind": "application"}
    assert final(["run", "-d", IMG], environ) == ["run", "-d", PIN]


def test_login_always_on_passthrough(fake, environ):
    fake.outcome = scoring.Outcome.PASSTHROUGH
    always = Settings(login="always", decision_cache_ttl=0)
    assert final(["run", "-d", IMG, "ls"], environ, always) == ["run", *LG, "-d", IMG, *SH, "ls"]
    assert final(["run", "-d", IMG, "ls"], environ) == ["run", "-d", IMG, "ls"]


# ---------------------------------------------------------------- lines the shim cannot read

BAD = [
    ["run", "--no-such-flag", IMG],
    ["run", "--tls-verify=false", IMG],  # podman's flag
    ["run", "--systemd", "false", IMG],  # podman's flag
    ["run", "--userns=keep-id", "--tls-verify", IMG],
    ["run", "-D", IMG],  # global flag after the command word
    ["container", "-D", "run", IMG],
    ["run", "-Z", IMG],
    ["run", "-itZ", IMG],
    ["run", "--rm", "--name"],  # value flag at the end, no value
    ["run", "-it", "-e"],
    ["create", "-d", IMG],  # run-only flags
    ["create", "--detach-keys", "x", IMG],
    ["pull", "--no-such-flag", IMG],
    ["pull", "-it", IMG],
    ["pull", IMG, "--platform"],
    ["--no-such-flag", "run", IMG],
    ["--root", "/r", "run", IMG],  # podman's global flag
    ["-H"],
    ["--", "--no-such-flag", "run", IMG],  # global flags are read again after the root's --
]


@pytest.mark.parametrize("args", BAD, ids=[" ".join(a) for a in BAD])
def test_unreadable_lines_raise(args):
    with pytest.raises(ArgvError):
        docker.parse(args)


@pytest.mark.parametrize("args", BAD, ids=[" ".join(a) for a in BAD])
def test_unreadable_lines_run_unchanged_with_one_warning(args, fake, capsys, monkeypatch):
    monkeypatch.delenv("IMAGEFIT_DISABLE", raising=False)
    monkeypatch.delenv(shim.main.ACTIVE_ENV, raising=False)
    assert shim.main._final_args("docker", list(args), Settings(decision_cache_ttl=0)) == args
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("imagefit: ")
    assert fake.asked == []


def test_final_args_rewrites_through_the_same_path(fake, monkeypatch, capsys, tmp_path):
    for var in ("IMAGEFIT_DISABLE", shim.main.ACTIVE_ENV, "DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS",
                "DOCKER_TLS_VERIFY", "DOCKER_CONTENT_TRUST", "DOCKER_DEFAULT_PLATFORM"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", HOME)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "dc"))
    settings = Settings(decision_cache_ttl=0)
    assert shim.main._final_args("docker", ["run", "--rm", IMG], settings) == [
        "run",
        *LG,
        "--rm",
        PIN,
        *SH,
    ]
    assert shim.main._final_args("docker", ["ps", "-a"], settings) == ["ps", "-a"]
    assert capsys.readouterr().err == ""
    assert fake.asked == [IMG]


# ---------------------------------------------------------------- docker is podman

#: podman-docker's /usr/bin/docker (Debian podman-docker 4.3.1, containers/podman docker/docker.in)
PODMAN_DOCKER = """#!/bin/sh
[ -e /etc/containers/nodocker ] || \\
echo "Emulate Docker CLI using podman. Create /etc/containers/nodocker to quiet msg." >&2
exec /usr/bin/podman "$@"
"""


@pytest.fixture
def podman_docker(tmp_path) -> str:
    script = tmp_path / "bin" / "docker"
    script.parent.mkdir()
    script.write_text(PODMAN_DOCKER)
    script.chmod(0o755)
    return str(script)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (PODMAN_DOCKER, True),
        ('#!/bin/sh\nexec podman "$@"\n', True),
        ("#!/bin/bash\n# wrapper\n  exec '/opt/podman/bin/podman' --log-level=info \"$@\"\n", True),
        ('#!/bin/sh\nexec ${BINDIR}/podman "$@"\n', True),
        ('#!/bin/sh\nexec /usr/bin/docker.real "$@"\n', False),
        ('#!/bin/sh\n# exec podman "$@"\nexec /usr/libexec/docker "$@"\n', False),
        ('#!/bin/sh\nexec podman-remote "$@"\n', False),
        ('exec podman "$@"\n', False),  # not a script
        ("\x7fELF\x02\x01\x01 ... exec podman", False),
    ],
)
def test_runs_podman_reads_scripts(text, expected, tmp_path):
    path = tmp_path / "docker"
    path.write_text(text)
    assert docker_personality.runs_podman(str(path)) is expected


def test_runs_podman_by_real_name(tmp_path):
    podman = tmp_path / "podman"
    podman.write_bytes(b"\x7fELF")
    link = tmp_path / "docker"
    link.symlink_to(podman)
    assert docker_personality.runs_podman(str(link))
    assert not docker_personality.runs_podman(str(podman.with_name("docker.real")))  # missing
    assert not docker_personality.runs_podman(None)


@pytest.mark.parametrize(
    ("args", "expected", "asked"),
    [
        (["run", IMG], ["run", PEP, KI, *PH, PIN], [IMG]),
        (["run", "-it", IMG, "sh"], ["run", PEP, KI, *PH, "-it", PIN, "sh"], [IMG]),
        (
            ["run", "--tls-verify=false", IMG],
            ["run", PEP, KI, *PH, "--tls-verify=false", PIN],
            [IMG],
        ),  # podman reads it
        (["--root", "/r", "run", IMG], ["--root", "/r", "run", PEP, KI, *PH, PIN], [IMG]),
        (["run", "-u", "0", IMG], ["run", PEP, "-u", "0", PIN], [IMG]),
        (["run", "ubuntu"], ["run", "ubuntu"], []),  # podman: a local image first
        (
            ["pull", IMG, IMG2],
            ["pull", PIN, f"ghcr.io/org/tool@{D}"],
            [IMG, IMG2],
        ),  # podman pulls both
        (["-H", "tcp://node2:2375", "run", IMG], ["-H", "tcp://node2:2375", "run", IMG], []),
        (["run", "--rootfs", "/d", "sh"], ["run", "--rootfs", "/d", "sh"], []),
    ],
)
def test_docker_that_is_podman_follows_podman(args, expected, asked, fake, environ, podman_docker):
    assert final(args, environ, real=podman_docker) == expected
    assert fake.asked == asked


def test_docker_that_is_podman_resolves_short_names_for_pull_via_registries_conf(
    fake, environ, podman_docker
):
    Path(environ["CONTAINERS_REGISTRIES_CONF"]).write_text(
        'unqualified-search-registries = ["quay.io"]\n'
    )
    assert final(["pull", "hpc/app:1"], environ, real=podman_docker) == ["pull", PIN]
    assert final(["pull", "hpc/app:1"], environ) == [
        "pull",
        f"docker.io/hpc/app@{D}",
    ]  # real docker
    assert fake.asked == [IMG, "docker.io/hpc/app:1"]


def test_docker_that_is_podman_is_told_about_imagefits_insecure_registries(
    fake, environ, podman_docker
):
    settings = Settings(insecure_registries=("quay.io",), decision_cache_ttl=0)
    assert final(["pull", IMG], environ, settings, real=podman_docker) == [
        "pull",
        "--tls-verify=false",
        PIN,
    ]


def test_docker_that_is_podman_through_main(fake, monkeypatch, podman_docker):
    monkeypatch.delenv("IMAGEFIT_DISABLE", raising=False)
    monkeypatch.delenv(shim.main.ACTIVE_ENV, raising=False)
    for var in ("CONTAINER_HOST", "CONTAINER_CONNECTION", "PODMAN_USERNS"):
        monkeypatch.delenv(var, raising=False)
    settings = Settings(decision_cache_ttl=0)
    # a podman flag docker does not know: read with podman's grammar
    args = ["run", "--tls-verify=false", "--rm", IMG]
    home = os.environ["HOME"]
    assert shim.main._final_args("docker", args, settings, real=podman_docker) == [
        "run", PEP, KI, f"--env=HOME={home}", f"--tmpfs={home}:rw,exec,mode=0700,U",
        "--tls-verify=false", "--rm", PIN,
    ]  # fmt: skip


@pytest.mark.parametrize(
    "args, tag_step",
    [
        (["pull", IMG], ["tag", PIN, IMG]),
        (["image", "pull", "-q", IMG], ["tag", PIN, IMG]),
        # the tag step reaches the same daemon: its selecting flags, not --log-level/--debug
        (["--context=default", "-D", "pull", IMG], ["--context=default", "tag", PIN, IMG]),
        (["-H", "unix:///run/user/1/docker.sock", "-l", "debug", "--tlsverify", "--tlscacert", "/c/ca.pem",
          "pull", IMG],
         ["--host=unix:///run/user/1/docker.sock", "--tlscacert=/c/ca.pem", "--tlsverify", "tag", PIN, IMG]),
        (["pull", PIN], None),  # a digest pull keeps its digest: nothing to tag
        (["run", IMG], None),
    ],
)  # fmt: skip
def test_pull_tags_the_chosen_build_with_the_users_reference(fake, environ, args, tag_step):
    """The daemon stores ``pull REPO@DIGEST`` as ``REPO:<none>``: a ``docker
    tag`` step after the pull gives the chosen build the user's tag, as a
    plain pull would (tested against the real daemon in tests/test_e2e_docker.py)."""
    personality = personalities.get("docker")
    done = plan(personality, personality.parse(args), Settings(decision_cache_ttl=0), environ)
    assert done.after == ([tag_step] if tag_step else [])
