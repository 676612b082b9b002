"""podman command lines through the shim: the exact final argv.

Each case is a podman command line (argv without argv[0]), the exact argv the
shim must exec, and the references it must have asked the resolver for
(normalised, in order). Expectations are written out literally; nothing is
computed by the code under test. The resolver and the host facts are faked
(no registry I/O): every resolved image selects the build ``D``.

How podman 4.3.1 reads a line was checked against the real podman: with
``--root``/``--runroot`` in a scratch directory and no network, its error
("X: image not known", "Trying to pull X...", "unknown flag: --url") names
the token it took as the image or the flag it rejected.
"""

from __future__ import annotations

import json
import os

import pytest

import hostfacts
import scoring
import shim.login
import shim.main
import shim.resolve
from shim import personality as personalities
from shim.argv import podman
from shim.config import Settings
from shim.errors import ArgvError, Refusal, RegistryError
from shim.intercept import plan
from tests.support.fake_resolver import D, FakeResolver, U, install, zen4_host  # noqa: F401

#: The digest of the build the fake resolver chooses.
#: An index digest a user may already have pinned.
#: The login-container flags (shim.login): no image ENTRYPOINT, a login shell...
EP = "--entrypoint=" + json.dumps(shim.login.ENTRYPOINT)
#: ...as the caller (rootless podman).
KI = "--userns=keep-id"

IMG = "quay.io/hpc/app:1"
PIN = f"quay.io/hpc/app@{D}"
IMG2 = "ghcr.io/org/tool:2.0"
PIN2 = f"ghcr.io/org/tool@{D}"
HEX12 = "0123456789ab"
HEX64 = "0123456789abcdef" * 4

# (args, expected final argv, references the resolver was asked for)
# fmt: off
CASES: list[tuple[list[str], list[str], list[str]]] = [
    # --- run: the plain case and bundled short flags --------------------------------
    (["run", IMG], ["run", EP, KI, PIN], [IMG]),
    (["run", IMG, "gmx", "mdrun"], ["run", EP, KI, PIN, "gmx", "mdrun"], [IMG]),
    (["run", "-it", IMG, "bash"], ["run", EP, KI, "-it", PIN, "bash"], [IMG]),
    (["run", "-itv/a:/b", IMG], ["run", EP, KI, "-itv/a:/b", PIN], [IMG]),
    (["run", "-itv", "/a:/b", IMG], ["run", EP, KI, "-itv", "/a:/b", PIN], [IMG]),
    (["run", "-dit", IMG], ["run", EP, KI, "-dit", PIN], [IMG]),
    (["run", "-e=X=1", IMG], ["run", EP, KI, "-e=X=1", PIN], [IMG]),
    (["run", "-vX:Y", IMG], ["run", EP, KI, "-vX:Y", PIN], [IMG]),
    (["run", "-ie", "X=1", IMG], ["run", EP, KI, "-ie", "X=1", PIN], [IMG]),
    (["run", "-it=true", IMG], ["run", EP, KI, "-it=true", PIN], [IMG]),
    # --- run: value flags, both spellings, right before the image -------------------
    (["run", "--name", "x", IMG], ["run", EP, KI, "--name", "x", PIN], [IMG]),
    (["run", "--name=x", IMG], ["run", EP, KI, "--name=x", PIN], [IMG]),
    (["run", "-v", "/a:/b", IMG], ["run", EP, KI, "-v", "/a:/b", PIN], [IMG]),
    (["run", "--volume=/a:/b:ro", IMG], ["run", EP, KI, "--volume=/a:/b:ro", PIN], [IMG]),
    (
        ["run", "--mount", "type=bind,src=/a,dst=/b", IMG],
        ["run", EP, KI, "--mount", "type=bind,src=/a,dst=/b", PIN],
        [IMG],
    ),
    (["run", "-e", "X=1", IMG], ["run", EP, KI, "-e", "X=1", PIN], [IMG]),
    (["run", "--env", "X", IMG], ["run", EP, KI, "--env", "X", PIN], [IMG]),
    (["run", "--env-file", "/tmp/e", IMG], ["run", EP, KI, "--env-file", "/tmp/e", PIN], [IMG]),
    (["run", "--label", "a=b", IMG], ["run", EP, KI, "--label", "a=b", PIN], [IMG]),
    (["run", "-l", "a=b", IMG], ["run", EP, KI, "-l", "a=b", PIN], [IMG]),
    (["run", "-w", "/work", IMG], ["run", EP, KI, "-w", "/work", PIN], [IMG]),
    (["run", "--workdir=/work", IMG], ["run", EP, KI, "--workdir=/work", PIN], [IMG]),
    # in run, -c is --cpu-shares and -h is --hostname (not --connection, --help)
    (["run", "-c", "512", IMG], ["run", EP, KI, "-c", "512", PIN], [IMG]),
    (["run", "-h", "node1", IMG], ["run", EP, KI, "-h", "node1", PIN], [IMG]),
    (["run", "--net", "host", IMG], ["run", EP, KI, "--net", "host", PIN], [IMG]),
    (["run", "-p", "8080:80", IMG], ["run", EP, KI, "-p", "8080:80", PIN], [IMG]),
    (["run", "--pull", "always", IMG], ["run", EP, KI, "--pull", "always", PIN], [IMG]),
    (["run", "--systemd", "false", IMG], ["run", EP, KI, "--systemd", "false", PIN], [IMG]),
    # --- run: the user chose the user / namespace / entrypoint ------------------------
    (["run", "-u", "1000:1000", IMG], ["run", EP, "-u", "1000:1000", PIN], [IMG]),
    (["run", "-u1000", IMG], ["run", EP, "-u1000", PIN], [IMG]),
    (["run", "--user=root", IMG], ["run", EP, "--user=root", PIN], [IMG]),
    (["run", "--userns=host", IMG], ["run", EP, "--userns=host", PIN], [IMG]),
    (["run", "--userns", "auto", IMG], ["run", EP, "--userns", "auto", PIN], [IMG]),
    (
        ["run", "--entrypoint", "/bin/bash", IMG],
        ["run", KI, "--entrypoint", "/bin/bash", PIN],
        [IMG],
    ),
    (["run", '--entrypoint=["/x","y"]', IMG], ["run", KI, '--entrypoint=["/x","y"]', PIN], [IMG]),
    (["run", "--entrypoint", "", IMG, "ls"], ["run", KI, "--entrypoint", "", PIN, "ls"], [IMG]),
    (
        ["run", "--entrypoint=/x", "-u", "0", IMG],
        ["run", "--entrypoint=/x", "-u", "0", PIN],
        [IMG],
    ),
    # --- run: boolean flags right before the image (they never take the image) --------
    (["run", "--rm", IMG], ["run", EP, KI, "--rm", PIN], [IMG]),
    (["run", "-d", IMG], ["run", EP, KI, "-d", PIN], [IMG]),
    (["run", "--detach", IMG], ["run", EP, KI, "--detach", PIN], [IMG]),
    (["run", "--privileged", IMG], ["run", EP, KI, "--privileged", PIN], [IMG]),
    (["run", "--read-only", IMG], ["run", EP, KI, "--read-only", PIN], [IMG]),
    (["run", "--tls-verify=false", IMG], ["run", EP, KI, "--tls-verify=false", PIN], [IMG]),
    (["run", "--init", IMG], ["run", EP, KI, "--init", PIN], [IMG]),
    (["run", "--rm=false", IMG], ["run", EP, KI, "--rm=false", PIN], [IMG]),
    (["run", "--sig-proxy", IMG], ["run", EP, KI, "--sig-proxy", PIN], [IMG]),
    # a bool never takes the next word: here podman's image is "false" (a short name)
    (["run", "--tls-verify", "false", IMG], ["run", "--tls-verify", "false", IMG], []),
    (["run", "--rm", "-i", "false", IMG], ["run", "--rm", "-i", "false", IMG], []),
    # --- global flags before the subcommand -----------------------------------------
    (["--root", "/r", "run", IMG], ["--root", "/r", "run", EP, KI, PIN], [IMG]),
    (
        ["--root=/r", "--runroot", "/rr", "run", IMG],
        ["--root=/r", "--runroot", "/rr", "run", EP, KI, PIN],
        [IMG],
    ),
    (["--log-level", "debug", "run", IMG], ["--log-level", "debug", "run", EP, KI, PIN], [IMG]),
    (
        ["--storage-driver", "vfs", "run", IMG],
        ["--storage-driver", "vfs", "run", EP, KI, PIN],
        [IMG],
    ),
    (
        ["--cgroup-manager=cgroupfs", "run", IMG],
        ["--cgroup-manager=cgroupfs", "run", EP, KI, PIN],
        [IMG],
    ),
    # remote podman: the container runs on another machine; this host's facts do not apply
    (["--connection", "x", "run", IMG], ["--connection", "x", "run", IMG], []),
    (["-c", "x", "run", "--rm", IMG], ["-c", "x", "run", "--rm", IMG], []),
    (
        ["--url", "unix:///run/p.sock", "run", IMG],
        ["--url", "unix:///run/p.sock", "run", IMG],
        [],
    ),
    (["pull", "--all-tags", IMG], ["pull", "--all-tags", IMG], []),  # every tag: no single build to pick
    (["pull", "-a=false", IMG], ["pull", "-a=false", PIN], [IMG]),
    (["--remote", "run", IMG], ["--remote", "run", IMG], []),
    (["--remote=false", "run", IMG], ["--remote=false", "run", EP, KI, PIN], [IMG]),
    (["-r", "--log-level=info", "run", IMG], ["-r", "--log-level=info", "run", IMG], []),
    (["--syslog", "run", IMG], ["--syslog", "run", EP, KI, PIN], [IMG]),
    # --- persistent flags after the subcommand ----------------------------------------
    (["run", "--log-level=debug", IMG], ["run", EP, KI, "--log-level=debug", PIN], [IMG]),
    (
        ["run", "--root", "/r", "--runroot", "/rr", IMG],
        ["run", EP, KI, "--root", "/r", "--runroot", "/rr", PIN],
        [IMG],
    ),
    (
        ["run", "--storage-driver", "vfs", "-it", IMG],
        ["run", EP, KI, "--storage-driver", "vfs", "-it", PIN],
        [IMG],
    ),
    # --- command groups -------------------------------------------------------------
    (["container", "run", IMG], ["container", "run", EP, KI, PIN], [IMG]),
    (["container", "create", IMG], ["container", "create", EP, KI, PIN], [IMG]),
    (
        ["--root", "/r", "container", "--log-level", "debug", "run", "--rm", IMG],
        ["--root", "/r", "container", "--log-level", "debug", "run", EP, KI, "--rm", PIN],
        [IMG],
    ),
    (["image", "pull", IMG], ["image", "pull", PIN], [IMG]),
    # --- create gets the same login flags as run --------------------------------------
    (["create", IMG], ["create", EP, KI, PIN], [IMG]),
    (
        ["create", "-it", "--name", "c1", IMG, "sh"],
        ["create", EP, KI, "-it", "--name", "c1", PIN, "sh"],
        [IMG],
    ),
    (
        ["create", "--pod", "p", "--init-ctr", "once", IMG],
        ["create", EP, KI, "--pod", "p", "--init-ctr", "once", PIN],
        [IMG],
    ),
    (["create", "-u", "1", IMG], ["create", EP, "-u", "1", PIN], [IMG]),
    # --- `--` ends flag parsing -------------------------------------------------------
    (["run", "--rm", "--", IMG, "cmd"], ["run", EP, KI, "--rm", "--", PIN, "cmd"], [IMG]),
    (["run", "--", IMG], ["run", EP, KI, "--", PIN], [IMG]),
    (["run", IMG, "sh", "--", "-x"], ["run", EP, KI, PIN, "sh", "--", "-x"], [IMG]),
    # --- the container's own command is never read ------------------------------------
    (
        ["run", IMG, "podman", "run", "other.io/x:1", "--rm"],
        ["run", EP, KI, PIN, "podman", "run", "other.io/x:1", "--rm"],
        [IMG],
    ),
    (["run", IMG, "--help"], ["run", EP, KI, PIN, "--help"], [IMG]),
    (["run", IMG, "-v"], ["run", EP, KI, PIN, "-v"], [IMG]),
    (["run", IMG, "--no-such-flag"], ["run", EP, KI, PIN, "--no-such-flag"], [IMG]),
    (["run", IMG, "ls", "--", "-l"], ["run", EP, KI, PIN, "ls", "--", "-l"], [IMG]),
    (
        ["run", IMG, "docker.io/library/busybox"],
        ["run", EP, KI, PIN, "docker.io/library/busybox"],
        [IMG],
    ),
    (
        ["run", IMG, "--platform", "linux/arm64"],
        ["run", EP, KI, PIN, "--platform", "linux/arm64"],
        [IMG],
    ),
    # --- how references are normalised -----------------------------------------------
    (["run", "docker://" + IMG], ["run", EP, KI, "docker://" + PIN], [IMG]),
    (
        ["run", "docker.io/ubuntu"],
        ["run", EP, KI, f"docker.io/library/ubuntu@{D}"],
        ["docker.io/library/ubuntu"],
    ),
    (
        ["run", "index.docker.io/hpc/app:2024"],
        ["run", EP, KI, f"docker.io/hpc/app@{D}"],
        ["docker.io/hpc/app:2024"],
    ),
    (["run", "quay.io/hpc/app"], ["run", EP, KI, PIN], ["quay.io/hpc/app"]),
    (
        ["run", "127.0.0.1:5000/a/b:1"],
        ["run", EP, KI, f"127.0.0.1:5000/a/b@{D}"],
        ["127.0.0.1:5000/a/b:1"],
    ),
    (  # a registry on localhost:PORT is a registry, unlike localhost/NAME
        ["run", "localhost:5000/app:1"],
        ["run", EP, KI, f"localhost:5000/app@{D}"],
        ["localhost:5000/app:1"],
    ),
    # already pinned: resolved all the same (an index digest picks its build)
    (["run", f"quay.io/hpc/app@{U}"], ["run", EP, KI, PIN], [f"quay.io/hpc/app@{U}"]),
    (["run", f"quay.io/hpc/app:1@{U}"], ["run", EP, KI, PIN], [f"quay.io/hpc/app@{U}"]),
    # --- images the shim never resolves (no flags added either) ------------------------
    (["run", "ubuntu"], ["run", "ubuntu"], []),
    (["run", "-it", "busybox:latest", "sh"], ["run", "-it", "busybox:latest", "sh"], []),
    (["run", "gromacs/gromacs:2024"], ["run", "gromacs/gromacs:2024"], []),
    (["run", "localhost/x"], ["run", "localhost/x"], []),
    (["run", "localhost/x:1"], ["run", "localhost/x:1"], []),
    (["run", HEX12], ["run", HEX12], []),
    (["run", HEX64], ["run", HEX64], []),
    (["run", f"sha256:{HEX64}"], ["run", f"sha256:{HEX64}"], []),
    (
        ["run", "containers-storage:quay.io/hpc/app:1"],
        ["run", "containers-storage:quay.io/hpc/app:1"],
        [],
    ),
    (["run", "oci:/dir"], ["run", "oci:/dir"], []),
    (["run", "oci-archive:/a.tar"], ["run", "oci-archive:/a.tar"], []),
    (["run", "dir:/x"], ["run", "dir:/x"], []),
    (["run", "docker-archive:/a.tar"], ["run", "docker-archive:/a.tar"], []),
    (["run", "docker-daemon:quay.io/hpc/app:1"], ["run", "docker-daemon:quay.io/hpc/app:1"], []),
    (["run", "quay.io/Hpc/App:1"], ["run", "quay.io/Hpc/App:1"], []),  # invalid: upper case
    (["run", "--rootfs", "/dir", "cmd"], ["run", "--rootfs", "/dir", "cmd"], []),
    (["run", "--rootfs", "/srv/quay.io/x", "sh"], ["run", "--rootfs", "/srv/quay.io/x", "sh"], []),
    (["run", "--rm"], ["run", "--rm"], []),
    (["run"], ["run"], []),
    # --- help passes through; the user's platform is a constraint (this host: amd64) ------
    (["run", "--help"], ["run", "--help"], []),
    (["run", "--help", IMG], ["run", "--help", IMG], []),
    (["--help", "pull", IMG], ["--help", "pull", IMG], []),  # podman prints pull's help
    (["pull", "-h"], ["pull", "-h"], []),
    (["run", "--platform", "linux/arm64", IMG], ["run", "--platform", "linux/arm64", IMG], []),
    (["run", "--arch", "arm64", IMG], ["run", "--arch", "arm64", IMG], []),
    (
        ["run", "--arch=amd64", "--variant", "v3", IMG],
        ["run", EP, KI, "--arch=amd64", "--variant", "v3", PIN],
        [IMG],
    ),
    (["run", "--os", "linux", IMG], ["run", EP, KI, "--os", "linux", PIN], [IMG]),
    (["run", "--override-arch", "arm64", IMG], ["run", "--override-arch", "arm64", IMG], []),
    (["create", "--variant=v8", IMG], ["create", EP, KI, "--variant=v8", PIN], [IMG]),
    (["run", "--os", "windows", IMG], ["run", "--os", "windows", IMG], []),
    (["pull", "--platform", "linux/arm64", IMG], ["pull", "--platform", "linux/arm64", IMG], []),
    (["pull", IMG, "--arch", "arm64"], ["pull", IMG, "--arch", "arm64"], []),
    # --- pull: several images, flags anywhere, never login flags ------------------------
    (["pull", IMG], ["pull", PIN], [IMG]),
    (["pull", IMG, IMG2], ["pull", PIN, PIN2], [IMG, IMG2]),
    (["pull", "-q", IMG], ["pull", "-q", PIN], [IMG]),
    (["pull", IMG, "--quiet"], ["pull", PIN, "--quiet"], [IMG]),
    (
        ["pull", IMG, "--tls-verify=false", IMG2, "-q"],
        ["pull", PIN, "--tls-verify=false", PIN2, "-q"],
        [IMG, IMG2],
    ),
    (
        ["pull", "--authfile", "/a.json", IMG, "--cert-dir", "/c"],
        ["pull", "--authfile", "/a.json", PIN, "--cert-dir", "/c"],
        [IMG],
    ),
    (["pull", "ubuntu", IMG], ["pull", "ubuntu", PIN], [IMG]),
    (["pull", "docker://" + IMG], ["pull", "docker://" + PIN], [IMG]),
    (
        ["--root", "/r", "pull", "--log-level", "debug", IMG],
        ["--root", "/r", "pull", "--log-level", "debug", PIN],
        [IMG],
    ),
    (["pull", "--", IMG, IMG2], ["pull", "--", PIN, PIN2], [IMG, IMG2]),
    (["pull", "oci:/dir", HEX12], ["pull", "oci:/dir", HEX12], []),
    # --- not intercepted at all ---------------------------------------------------------
    (["ps"], ["ps"], []),
    (["ps", "-a"], ["ps", "-a"], []),
    (["images"], ["images"], []),
    (["exec", "ctr", "ls"], ["exec", "ctr", "ls"], []),
    (
        ["exec", "-it", "ctr", "podman", "run", IMG],
        ["exec", "-it", "ctr", "podman", "run", IMG],
        [],
    ),
    (["build", "-t", "x", "."], ["build", "-t", "x", "."], []),
    (["login", "quay.io"], ["login", "quay.io"], []),
    (["push", IMG], ["push", IMG], []),
    (["image", "inspect", IMG], ["image", "inspect", IMG], []),
    (["container", "ls"], ["container", "ls"], []),
    (["start", "ctr"], ["start", "ctr"], []),
    (["--version"], ["--version"], []),
    (["-v"], ["-v"], []),
    (["version"], ["version"], []),
    (["info"], ["info"], []),
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
    return install(
        monkeypatch, zen4_facts
    )  # rootless (uid 1000) on amd64 unless a test says otherwise


@pytest.fixture
def environ(tmp_path) -> dict[str, str]:
    conf = tmp_path / "registries.conf"
    conf.write_text("")
    return {"HOME": str(tmp_path), "CONTAINERS_REGISTRIES_CONF": str(conf)}


def home(environ) -> list[str]:
    """HOME for a login container as the caller (shim.login.home_flags): the
    caller's home is not mounted in these lines, so an empty tmpfs there."""
    return [f"--env=HOME={environ['HOME']}", f"--tmpfs={environ['HOME']}:rw,exec,mode=0700,U"]


def with_home(expected: list[str], environ) -> list[str]:
    """`expected` with :func:`home` after our ``--userns=keep-id``."""
    if KI not in expected:
        return expected
    at = expected.index(KI) + 1
    return [*expected[:at], *home(environ), *expected[at:]]


def final(
    args: list[str], environ, settings: Settings | None = None, *, keep_home: bool = False
) -> list[str]:
    """The final argv; without `keep_home`, less exactly the :func:`home`
    flags (the table checks them; tests/test_login.py the other cases)."""
    settings = settings or Settings(decision_cache_ttl=0)  # the decision cache has tests of its own
    out = plan(personalities.get("podman"), podman.parse(args), settings, environ).args
    return out if keep_home else [a for a in out if a not in home(environ)]


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_final_argv(case, fake, environ):
    args, expected, asked = case
    assert final(args, environ, keep_home=True) == with_home(expected, environ)
    assert fake.asked == asked


def test_table_is_large_enough():
    assert len(CASES) >= 70


# ---------------------------------------------------------------- rootful, PODMAN_USERNS


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", IMG], ["run", EP, PIN]),
        (["run", "-it", IMG, "sh"], ["run", EP, "-it", PIN, "sh"]),
        (["create", "--rm", IMG], ["create", EP, "--rm", PIN]),
        (["run", "--entrypoint", "/x", IMG], ["run", "--entrypoint", "/x", PIN]),
        (["--root", "/r", "container", "run", IMG], ["--root", "/r", "container", "run", EP, PIN]),
        (["pull", IMG], ["pull", PIN]),
    ],
)
def test_rootful_gets_no_keep_id(args, expected, fake, environ, monkeypatch):
    """As root: no keep-id, and HOME=/root without a mount where the recipe
    applies (a tmpfs would hide what the image keeps in /root)."""
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    out = final(args, environ)
    assert not any(a.startswith("--tmpfs") for a in out), out  # nothing mounted over /root
    assert [a for a in out if a != "--env=HOME=/root"] == expected
    assert fake.asked == [IMG]


def test_podman_userns_variable_means_no_keep_id(fake, environ):
    environ["PODMAN_USERNS"] = "auto"
    assert final(["run", IMG], environ) == ["run", EP, PIN]


# ---------------------------------------------------------------- what resolve is given


def test_tls_verify_and_authfile_reach_the_resolver(fake, environ):
    final(["run", "--tls-verify=false", "--authfile", "/a.json", IMG], environ)
    final(["run", "--tls-verify", IMG], environ)
    final(["pull", "--auth-file=/b.json", IMG], environ)  # 6.x spelling of --authfile
    final(["run", IMG], environ)
    assert [(c["insecure"], c["authfile"]) for c in fake.calls] == [
        (True, "/a.json"),
        (False, None),
        (False, "/b.json"),
        (False, None),
    ]


# ---------------------------------------------------------------- login setting


def test_login_never_adds_no_flags(fake, environ):
    assert final(["run", "-it", IMG, "sh"], environ, Settings(login="never")) == [
        "run",
        "-it",
        PIN,
        "sh",
    ]
    assert final(["create", IMG], environ, Settings(login="never")) == ["create", PIN]


def test_login_always_adds_flags_on_passthrough(fake, environ):
    fake.outcome = scoring.Outcome.PASSTHROUGH
    assert final(["run", "-d", IMG], environ, Settings(login="always")) == [
        "run",
        EP,
        KI,
        "-d",
        IMG,
    ]
    assert fake.asked == [IMG]


def test_login_always_adds_flags_to_images_never_resolved(fake, environ):
    assert final(["run", "-d", "nginx"], environ, Settings(login="always")) == [
        "run",
        EP,
        KI,
        "-d",
        "nginx",
    ]
    assert fake.asked == []


def test_login_auto_passthrough_leaves_the_command_alone(fake, environ):
    fake.outcome = scoring.Outcome.PASSTHROUGH
    assert final(["run", "-d", IMG], environ) == ["run", "-d", IMG]
    assert fake.asked == [IMG]


def test_application_container_gets_no_login_flags(fake, environ):
    fake.annotations = {"org.supercontainers.container.kind": "application"}
    assert final(["run", "-d", IMG], environ) == ["run", "-d", PIN]
    assert final(["create", IMG], environ) == ["create", PIN]


def test_application_container_with_login_always(fake, environ):
    fake.annotations = {"org.supercontainers.container.kind": "Application"}
    assert final(["run", IMG], environ, Settings(login="always")) == ["run", EP, KI, PIN]


def test_login_container_kind_gets_login_flags(fake, environ):
    fake.annotations = {"org.supercontainers.container.kind": "login"}
    assert final(["run", IMG], environ) == ["run", EP, KI, PIN]


# ---------------------------------------------------------------- refusals and failures


def test_refused_decision_raises(fake, environ):
    fake.outcome = scoring.Outcome.REFUSED
    with pytest.raises(Refusal):
        final(["run", IMG], environ)


def test_registry_failure_fails_open(fake, environ, capsys):
    fake.error = RegistryError("registry down")
    assert final(["run", "--rm", IMG, "ls"], environ) == ["run", "--rm", IMG, "ls"]
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("imagefit: ") and "registry down" in err[0]


# ---------------------------------------------------------------- lines the shim cannot read

BAD = [
    ["run", "--no-such-flag", IMG],
    ["run", "--url", "unix:///x", IMG],  # root-local flag after the subcommand
    ["run", "--connection=x", IMG],
    ["run", "--remote", IMG],
    ["pull", "--remote", IMG],
    ["run", "-Z", IMG],
    ["run", "-itZ", IMG],
    ["run", "--rm", "--name"],  # value flag at the end, no value
    ["run", "-v"],
    ["run", "-it", "-e"],
    ["create", "--rmi", IMG],  # run-only flag
    ["create", "-d", IMG],
    ["run", "--init-ctr", "once", IMG],  # create-only flag
    ["pull", "--no-such-flag", IMG],
    ["pull", IMG, "--authfile"],
    ["pull", "-it", IMG],
    ["--no-such-flag", "run", IMG],
    ["--root"],
    ["container", "--url", "x", "run", IMG],
    ["-c"],
]


@pytest.mark.parametrize("args", BAD, ids=[" ".join(a) for a in BAD])
def test_unreadable_lines_raise(args):
    with pytest.raises(ArgvError):
        podman.parse(args)


@pytest.mark.parametrize("args", BAD, ids=[" ".join(a) for a in BAD])
def test_unreadable_lines_run_unchanged_with_one_warning(args, fake, capsys, monkeypatch):
    monkeypatch.delenv("IMAGEFIT_DISABLE", raising=False)
    monkeypatch.delenv(shim.main.ACTIVE_ENV, raising=False)
    assert shim.main._final_args("podman", list(args), Settings()) == args
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("imagefit: ")
    assert fake.asked == []


def test_final_args_rewrites_through_the_same_path(fake, monkeypatch, capsys):
    monkeypatch.delenv("IMAGEFIT_DISABLE", raising=False)
    monkeypatch.delenv(shim.main.ACTIVE_ENV, raising=False)
    home = os.environ["HOME"]
    assert shim.main._final_args(
        "podman", ["run", "--rm", IMG], Settings(decision_cache_ttl=0)
    ) == ["run", EP, KI, f"--env=HOME={home}", f"--tmpfs={home}:rw,exec,mode=0700,U", "--rm", PIN]
    assert shim.main._final_args("podman", ["ps", "-a"], Settings()) == ["ps", "-a"]
    assert capsys.readouterr().err == ""
    assert fake.asked == [IMG]


# podman reads docker://NAME as docker.io/library/NAME (no short-name search; checked with podman 4.3.1)
def test_docker_transport_short_name_is_docker_hub(fake, environ):
    assert final(["run", "docker://ubuntu"], environ) == [
        "run",
        EP,
        KI,
        f"docker://docker.io/library/ubuntu@{D}",
    ]
    assert fake.asked == ["docker.io/library/ubuntu"]


# podman 4.3.1 runs/pulls the image in these lines (run and create register their
# own --help, which shadows the root's; pflag reads `--rootfs=false` as false).
MISSED = [
    (["--help", "run", IMG], ["--help", "run", EP, KI, PIN]),
    (["--help", "create", IMG], ["--help", "create", EP, KI, PIN]),
    (["container", "--help", "run", IMG], ["container", "--help", "run", EP, KI, PIN]),
    (["run", "--help=false", IMG], ["run", EP, KI, "--help=false", PIN]),
    (["run", "--rootfs=false", IMG], ["run", EP, KI, "--rootfs=false", PIN]),
    (["pull", "--help=false", IMG], ["pull", "--help=false", PIN]),
]


@pytest.mark.parametrize(("args", "expected"), MISSED, ids=[" ".join(a) for a, _ in MISSED])
def test_lines_podman_runs_but_the_shim_passes_through(args, expected, fake, environ):
    assert final(args, environ) == expected


def test_remote_podman_from_the_environment_passes_through(fake, environ):
    for var in ("CONTAINER_HOST", "CONTAINER_CONNECTION"):
        env = {**environ, var: "ssh://node/run/podman.sock"}
        assert final(["run", "--rm", IMG], env) == ["run", "--rm", IMG]
    assert fake.asked == []


def test_registry_insecure_only_by_imagefit_config_gets_tls_verify_false(fake, environ):
    settings = Settings(insecure_registries=("quay.io",))
    assert final(["run", "--rm", IMG], environ, settings) == [
        "run",
        "--tls-verify=false",
        EP,
        KI,
        "--rm",
        PIN,
    ]
    assert final(["pull", IMG], environ, settings) == ["pull", "--tls-verify=false", PIN]
    # the user's own --tls-verify wins: nothing added
    assert final(["pull", "--tls-verify=true", IMG], environ, settings) == [
        "pull",
        "--tls-verify=true",
        PIN,
    ]


def test_the_users_platform_is_passed_as_a_constraint(fake, environ):
    final(["run", "--arch=amd64", "--variant", "v3", IMG], environ)
    final(["run", "--platform", "linux/amd64", IMG], environ)
    assert fake.requested == [("linux", "amd64", "v3"), ("linux", "amd64", None)]
