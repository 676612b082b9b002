"""The login-container recipe's parts (shim/login.py, shim/decisions.py Entry.cmd):
HOME as the caller, the image's Cmd, PATH kept once. The real containers
(rootful and rootless podman) are in tests/test_e2e_podman.py."""

from __future__ import annotations

import subprocess

import pytest

from shim import decisions, login
from shim.argv import docker, podman

H = "/home/alice"
TMPFS = f"--tmpfs={H}:rw,exec,mode=0700,U"
ENV = {"HOME": H}


def flags(args: list[str]) -> dict:
    return podman.parse(args).flags


# ---------------------------------------------------------------- HOME


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        # not mounted: an empty tmpfs at the caller's home, owned by the caller
        (["run", "IMG"], [f"--env=HOME={H}", TMPFS]),
        (["run", "-v", "/data:/data", "IMG"], [f"--env=HOME={H}", TMPFS]),
        (["run", "-v", f"{H}/x:{H}/x", "IMG"], [f"--env=HOME={H}", TMPFS]),  # below it: tmpfs
        (["run", "-v", "/home/alicex:/home/alicex", "IMG"], [f"--env=HOME={H}", TMPFS]),
        # mounted at its own path (any spelling), or a directory above it
        (["run", "-v", f"{H}:{H}", "IMG"], [f"--env=HOME={H}"]),
        (["run", f"--volume={H}/:{H}/:rw,z", "IMG"], [f"--env=HOME={H}"]),
        (["run", "-v", "/home:/home:ro", "IMG"], [f"--env=HOME={H}"]),
        (["run", "--mount", f"type=bind,source={H},destination={H}", "IMG"], [f"--env=HOME={H}"]),
        (["run", "--mount", f"type=bind,src={H},target={H},ro", "IMG"], [f"--env=HOME={H}"]),
        (["run", "--mount", f"type=volume,dst={H}", "IMG"], [f"--env=HOME={H}"]),
        (["run", "--tmpfs", H, "IMG"], [f"--env=HOME={H}"]),
        (["run", "-v", f"/scratch/me:{H}", "IMG"], [f"--env=HOME={H}"]),  # the user's choice
        # the caller's home mounted elsewhere: HOME is there
        (["run", "-v", f"{H}:/home/me", "IMG"], ["--env=HOME=/home/me"]),
        # the user set HOME: theirs
        (["run", "-e", "HOME=/scratch", "IMG"], []),
        (["run", "--env", "HOME", "IMG"], []),
    ],
)
def test_home_flags_podman(args, expected):
    assert login.home_flags(flags(args), ENV, 1234, 1234, podman=True) == expected


def test_home_flags_docker_owner_and_env_file(tmp_path):
    inv = docker.parse(["run", "IMG"])
    assert login.home_flags(inv.flags, ENV, 1234, 99, podman=False) == [
        f"--env=HOME={H}",
        f"--tmpfs={H}:rw,exec,mode=0700,uid=1234,gid=99",
    ]
    env_file = tmp_path / "e.env"
    env_file.write_text("# x\n  HOME=/s\n")
    assert (
        login.home_flags(flags(["run", "--env-file", str(env_file), "IMG"]), ENV, 1, 1, podman=True)
        == []
    )


@pytest.mark.parametrize("home", ["/", "", "relative/dir", "/a:b", "/a,b", "/a\nb", "//"])
def test_a_home_no_mount_can_name_falls_back_to_tmp(home, monkeypatch):
    import pwd

    monkeypatch.setattr(pwd, "getpwuid", lambda uid: type("P", (), {"pw_dir": "/"})())
    assert login.home_flags(flags(["run", "IMG"]), {"HOME": home}, 1234, 1234, podman=True) == [
        "--env=HOME=/tmp"
    ]


def test_home_from_passwd_without_HOME(monkeypatch):
    import pwd

    monkeypatch.setattr(pwd, "getpwuid", lambda uid: type("P", (), {"pw_dir": f"/u/{uid}"})())
    assert login.home_flags(flags(["run", "IMG"]), {}, 7, 7, podman=True) == [
        "--env=HOME=/u/7",
        "--tmpfs=/u/7:rw,exec,mode=0700,U",
    ]


@pytest.mark.parametrize(
    ("args", "rootless", "userns", "expected_home"),
    [
        (["run", "IMG"], True, None, True),  # our keep-id: as the caller
        (["run", "IMG"], False, None, True),  # root: root's home
        (["run", "--userns=keep-id:uid=5", "IMG"], True, None, True),  # the user's keep-id
        (["run", "IMG"], True, "keep-id", True),
        (["run", "--userns=auto", "IMG"], True, None, False),  # not as the caller
        (["run", "IMG"], True, "auto", False),
        (["run", "-u", "0", "IMG"], True, None, False),  # the user chose who runs
        (["run", "--user=5", "IMG"], False, None, False),
    ],
)
def test_podman_flags_home_only_as_the_caller(args, rootless, userns, expected_home):
    out = login.podman_flags(
        flags(args), rootless=rootless, environ_userns=userns, environ=ENV, euid=1234, egid=1234
    )
    assert (f"--env=HOME={H}" in out) is expected_home
    assert out[0] == "--entrypoint=" + login.ENTRYPOINT_JSON


# ---------------------------------------------------------------- the image's Cmd


@pytest.mark.parametrize(
    ("args", "wanted"),
    [
        (["run", "IMG"], True),
        (["create", "--rm", "IMG"], True),
        (["run", "-i", "IMG"], True),  # stdin, no TTY: still the image's command
        (["run", "-t", "IMG"], False),  # a TTY: an interactive login shell
        (["run", "-it", "IMG"], False),
        (["run", "--tty=false", "IMG"], True),
        (["run", "IMG", "cmd"], False),  # the user's command
        (["run", "--entrypoint=/x", "IMG"], False),  # the user's entrypoint
        (["pull", "IMG"], False),
    ],
)
def test_wants_cmd(args, wanted):
    inv = podman.parse(args)
    assert login.wants_cmd(inv, frozenset({"run", "create"})) is wanted


def test_with_cmd_appends_only_with_no_command_and_no_tty():
    assert login.with_cmd(["run", "IMG"], 1, ["a", "b c"], False) == ["a", "b c"]
    assert login.with_cmd(["run", "IMG"], 1, ["a"], True) == []
    assert login.with_cmd(["run", "IMG", "x"], 1, ["a"], False) == []
    assert login.with_cmd(["run", "IMG"], 1, None, False) == []
    assert login.with_cmd(["run", "IMG"], 1, [], False) == []


@pytest.mark.parametrize("cmd", [None, [], [""], ["sh", "-c", "a\tb\nc \\n"], ["é", "\\", "x\\ty"]])
def test_entry_keeps_the_cmd(cmd):
    d = "sha256:" + "a" * 64
    entry = decisions.Entry("r", d, "selected", d, cmd=cmd)
    assert decisions.Entry.loads(entry.dumps()).cmd == cmd


def test_entries_written_before_cmd_stay_readable_and_bad_cmds_are_refused():
    d = "sha256:" + "a" * 64
    old = decisions.Entry("r", d, "selected", d).dumps()
    assert "cmd" not in old
    assert decisions.Entry.loads(old).cmd is None
    for bad in ("3\\ta", "x", "99999999999\\t", "\u00b2\\ta"):
        assert decisions.Entry.loads(old.replace("end\t", f"cmd\t{bad}\nend\t")) is None
    assert not decisions.valid_cmd(["a\0b"])
    assert not decisions.valid_cmd(["a"] * (decisions.MAX_CMD_WORDS + 1))
    assert not decisions.valid_cmd("sh")


# ---------------------------------------------------------------- PATH once


@pytest.mark.parametrize("shell", ["/bin/sh", "/bin/bash", "/bin/busybox"])
@pytest.mark.parametrize(
    ("image", "profile", "expected"),
    [
        ("/opt/app/bin:/usr/bin:/bin", "/usr/local/bin:/usr/bin:/bin", "/opt/app/bin:/usr/bin:/bin:/usr/local/bin"),
        ("/opt/app/bin:/usr/bin:/bin", "/opt/app/bin:/usr/bin:/bin", "/opt/app/bin:/usr/bin:/bin"),
        ("/a:/a:/b", "", "/a:/b"),
        ("", "/a::/b", "/a::/b"),
        ("/x*y:/[a]", "/x*y:/q", "/x*y:/[a]:/q"),  # no globbing
    ],
)  # fmt: skip
def test_inner_script_keeps_each_path_directory_once(shell, image, profile, expected):
    argv = [shell, "sh"] if shell.endswith("busybox") else [shell]
    setup = 'IMAGEFIT_IMAGE_PATH="$1"; PATH="$2"; shift 2; '
    probe = ["/bin/sh", "-c", 'printf "%s|%s|%s" "$PATH" "$IMAGEFIT_IMAGE_PATH" "$1"', "x", "a b"]
    done = subprocess.run(
        [*argv, "-c", setup + login.INNER, "sh", image, profile, *probe],
        capture_output=True, text=True, check=True, env={},
    )  # fmt: skip
    assert done.stdout == f"{expected}||a b"


def test_an_env_file_that_is_a_fifo_is_skipped_not_waited_on(tmp_path):
    """``--env-file FIFO``: the shim reads env files to see whether the user
    set HOME; a FIFO (or a device) is skipped, never waited on or read to its
    end (shim.untrusted.read_bounded)."""
    import os
    import threading

    from shim.login import sets_home

    fifo = tmp_path / "env.fifo"
    os.mkfifo(fifo)
    answer = []
    worker = threading.Thread(
        target=lambda: answer.append(sets_home({"env-file": [str(fifo), "/dev/zero"]})),
        daemon=True,
    )
    worker.start()
    worker.join(10)
    assert answer == [False]
