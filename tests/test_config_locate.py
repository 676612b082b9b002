"""Config files (precedence, trust, validation) and finding the real runtime."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shim import config
from shim.errors import ConfigError, RuntimeNotFound
from shim.locate import find_runtime


def _env(tmp_path, **extra):
    return {"HOME": str(tmp_path), "IMAGEFIT_SITE_CONFIG": str(tmp_path / "site.toml"), **extra}


def test_defaults_without_files(tmp_path):
    s = config.load(_env(tmp_path), euid=1000)
    assert (s.on_error, s.login, s.registry_timeout, s.insecure_registries, s.runtimes) == (
        "passthrough", "auto", 5.0, (), {})  # fmt: skip


def test_site_then_user_then_environment(tmp_path):
    (tmp_path / "site.toml").write_text(
        'on_error = "refuse"\nlogin = "never"\n[runtimes]\npodman = "/usr/bin/podman"\n'
    )
    user = tmp_path / ".config" / "imagefit"
    user.mkdir(parents=True)
    (user / "config.toml").write_text(
        'login = "always"\nregistry_timeout = 2\ninsecure_registries = ["r:5000"]\n'
    )
    s = config.load(_env(tmp_path), euid=1000)  # an ordinary user: site, then user file
    assert (s.on_error, s.login, s.registry_timeout, s.insecure_registries) == (
        "refuse",
        "always",
        2.0,
        ("r:5000",),
    )
    s = config.load(_env(tmp_path), euid=0)  # root never reads a user config
    assert (s.on_error, s.login, s.registry_timeout) == ("refuse", "never", 5.0)
    s = config.load(_env(tmp_path, IMAGEFIT_LOGIN="1", IMAGEFIT_ON_ERROR="passthrough"), euid=0)
    assert (s.login, s.on_error, s.runtimes["podman"]) == (
        "always",
        "passthrough",
        "/usr/bin/podman",
    )


def test_user_config_read_for_ordinary_users(tmp_path):
    user = tmp_path / ".config" / "imagefit"
    user.mkdir(parents=True)
    (user / "config.toml").write_text('login = "never"\nregistry_timeout = 2\n')
    s = config.load(_env(tmp_path), euid=os.geteuid())  # files are ours: trusted
    if os.geteuid() != 0:
        assert (s.login, s.registry_timeout) == ("never", 2.0)
    else:
        assert config.config_paths(_env(tmp_path), 0) == [str(tmp_path / "site.toml")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('on_eror = "refuse"\n', "unknown key 'on_eror'"),
        ('login = "sometimes"\n', "login must be one of"),
        ("registry_timeout = -1\n", "registry_timeout"),
        ('insecure_registries = "r:5000"\n', "insecure_registries"),
        ('[runtimes]\npodman = "podman"\n', "absolute paths"),
        ("on_error = \n", "cannot read config"),
    ],
)
def test_invalid_config_is_one_clear_error(tmp_path, text, message):
    (tmp_path / "site.toml").write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        config.load(_env(tmp_path), euid=0)
    assert "\n" not in str(info.value)


def test_group_writable_config_is_ignored_with_a_warning(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text('on_error = "refuse"\n')
    site.chmod(0o664)
    s = config.load(_env(tmp_path), euid=0)
    assert s.on_error == "passthrough"
    assert s.warnings == (f"ignoring config {site}: {site} is writable by group or others",)


def test_config_owned_by_another_user_is_ignored(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text('on_error = "refuse"\n')
    if os.geteuid() == 0:
        os.chown(site, 1234, 1234)
    s = config.load(_env(tmp_path), euid=0 if os.geteuid() == 0 else os.geteuid() + 1)
    assert s.on_error == "passthrough" and "owned by uid" in s.warnings[0]


def test_bad_environment_values(tmp_path):
    for key, value in [("IMAGEFIT_LOGIN", "2"), ("IMAGEFIT_ON_ERROR", "x"), ("IMAGEFIT_REGISTRY_TIMEOUT", "soon"),
                       ("IMAGEFIT_PODMAN", "podman")]:  # fmt: skip
        with pytest.raises(ConfigError):
            config.load(_env(tmp_path, **{key: value}), euid=0)


def _exe(path: Path, body: str = "#!/bin/sh\nexit 0\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    path.chmod(0o755)
    return path


def test_find_runtime_skips_the_shim_by_inode_and_by_name(tmp_path):
    shim = _exe(tmp_path / "venv" / "bin" / "imagefit-shim")
    first = tmp_path / "first"
    first.mkdir()
    (first / "podman").symlink_to(shim)  # the shim, as installed
    other = tmp_path / "other" / "bin"
    other.mkdir(parents=True)
    (other / "podman").symlink_to(_exe(tmp_path / "copy" / "imagefit-shim"))  # another installation
    real = _exe(tmp_path / "usr" / "bin" / "podman")
    path = os.pathsep.join(["", "relative/bin", str(first), str(other), str(real.parent)])
    assert find_runtime("podman", {"PATH": path}, str(first / "podman")) == str(real)


def test_find_runtime_errors(tmp_path):
    shim = _exe(tmp_path / "imagefit-shim")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "podman").symlink_to(shim)
    with pytest.raises(RuntimeNotFound, match="no podman found on PATH"):
        find_runtime("podman", {"PATH": str(tmp_path / "bin")}, str(tmp_path / "bin" / "podman"))
    with pytest.raises(RuntimeNotFound, match="not an executable runtime"):
        find_runtime("podman", {"PATH": ""}, str(shim), configured=str(tmp_path / "bin" / "podman"))
    real = _exe(tmp_path / "real" / "podman")
    assert find_runtime("podman", {"PATH": ""}, str(shim), configured=str(real)) == str(real)


def test_imagefit_install_links_the_shim(tmp_path):
    bindir = Path(sys.executable).parent
    done = subprocess.run([str(bindir / "imagefit"), "install", "--prefix", str(tmp_path), "--runtime", "podman"],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    link = tmp_path / "bin" / "podman"
    assert link.is_symlink() and os.path.basename(os.path.realpath(link)) == "imagefit-shim"
    assert f'export PATH="{tmp_path}/bin:$PATH"' in done.stdout
    again = subprocess.run([str(bindir / "imagefit"), "install", "--prefix", str(tmp_path), "--runtime", "podman"],
                           capture_output=True, text=True)  # fmt: skip
    assert again.returncode == 0 and "already there" in again.stdout
    link.unlink()
    link.write_text("not ours")
    refused = subprocess.run([str(bindir / "imagefit"), "install", "--prefix", str(tmp_path), "--runtime", "podman"],
                             capture_output=True, text=True)  # fmt: skip
    assert refused.returncode == 125 and "use --force" in refused.stderr


def test_shim_started_under_its_own_name_says_how_to_use_it():
    bindir = Path(sys.executable).parent
    done = subprocess.run(
        [str(bindir / "imagefit-shim"), "run", "x"], capture_output=True, text=True
    )
    assert done.returncode == 125 and "imagefit install" in done.stderr


def test_parsed_config_is_cached_until_the_file_changes(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text('login = "never"\n')
    env = _env(tmp_path)
    assert config.load(env, euid=0).login == "never"
    (cached,) = (tmp_path / ".cache" / "imagefit" / "config").iterdir()
    assert cached.stat().st_mode & 0o077 == 0
    site.write_text('login = "always"\n')  # a change (size) is seen at once
    assert config.load(env, euid=0).login == "always"
    site.write_text("login = [\n")  # and an invalid file is an error, not an old cached value
    with pytest.raises(ConfigError, match="cannot read config"):
        config.load(env, euid=0)


def test_a_parse_cache_not_private_to_the_user_is_not_used(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text('login = "never"\n')
    env = _env(tmp_path)
    config.load(env, euid=0)
    (cached,) = (tmp_path / ".cache" / "imagefit" / "config").iterdir()
    import marshal

    signature, _ = marshal.loads(cached.read_bytes())
    cached.write_bytes(marshal.dumps((signature, {"login": "always"})))  # a forged entry...
    cached.chmod(0o644)  # ...readable by others: not the user's private cache
    assert config.load(env, euid=0).login == "never"


def test_reentry_is_silent_about_config_problems(tmp_path, shim_bin):
    site = tmp_path / "site.toml"
    site.write_text('on_eror = "refuse"\n')  # invalid: every shimmed command stops with 125...
    base = {
        **os.environ,
        "IMAGEFIT_SITE_CONFIG": str(site),
        "IMAGEFIT_DRY_RUN": "1",
        "HOME": str(tmp_path),
    }
    done = subprocess.run(
        [str(shim_bin / "podman"), "ps"], env=base, capture_output=True, text=True
    )
    assert done.returncode == 125 and "unknown key 'on_eror'" in done.stderr
    for marker in (
        {"IMAGEFIT_ACTIVE": "1"},
        {"IMAGEFIT_DISABLE": "1"},
    ):  # ...but not a re-entered one
        again = subprocess.run(
            [str(shim_bin / "podman"), "ps"], env={**base, **marker}, capture_output=True, text=True
        )
        assert again.returncode == 0 and again.stderr == "", again.stderr
        assert json.loads(again.stdout)[1:] == ["ps"]


NUL_PATHS = [
    ('decision_cache_dir = "/tmp/a\\u0000b"\n', "decision_cache_dir must not contain a NUL byte"),
    ('audit_log = "/var/log/a\\u0000b"\n', "audit_log must not contain a NUL byte"),
    ('audit_log = "syslog:/dev/l\\u0000og"\n', "audit_log must not contain a NUL byte"),
    (
        '[runtimes]\npodman = "/usr/bin/pod\\u0000man"\n',
        "[runtimes] podman must not contain a NUL byte",
    ),
    (
        '[node_classes.a]\nfacts = "/x\\u0000.json"\nhosts = ["n*"]\n',
        "[node_classes.a] facts must not contain",
    ),
    ('audit_log = "syslog:dev/log"\n', "audit_log must be an absolute path"),
    ('audit_facility = "kern"\n', "audit_facility must be one of"),
]


@pytest.mark.parametrize(("text", "message"), NUL_PATHS)
def test_a_path_the_kernel_cannot_take_is_one_line(tmp_path, text, message):
    (tmp_path / "site.toml").write_text(text)
    with pytest.raises(ConfigError) as info:
        config.load(_env(tmp_path), euid=0)
    assert (
        message in str(info.value) and "\n" not in str(info.value) and "\0" not in str(info.value)
    )


@pytest.mark.parametrize("text", [t for t, _ in NUL_PATHS[:5]])
def test_a_nul_in_a_config_path_stops_every_command_in_one_line_exit_125(tmp_path, shim_bin, text):
    """As any invalid site config (docs/reference.md): `podman ps` included,
    one line, exit 125, never a traceback (before: ValueError on every command)."""
    site = tmp_path / "site.toml"
    site.write_text(text)
    env = {"PATH": f"{shim_bin}:/usr/bin:/bin", "IMAGEFIT_SITE_CONFIG": str(site), "HOME": str(tmp_path),
           "IMAGEFIT_DRY_RUN": "1"}  # fmt: skip
    done = subprocess.run(
        [str(shim_bin / "podman"), "ps"], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 125 and done.stdout == "", done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"imagefit: {site}: ") and "NUL byte" in line and "\0" not in line


def test_a_runtime_variable_is_a_path_too(tmp_path):
    with pytest.raises(ConfigError, match="IMAGEFIT_PODMAN: the runtime is longer than PATH_MAX"):
        config.load(_env(tmp_path, IMAGEFIT_PODMAN="/" + "x" * 5000), euid=0)
    assert config.load(_env(tmp_path, IMAGEFIT_PODMAN="/usr/bin/podman"), euid=0).runtimes == {
        "podman": "/usr/bin/podman"
    }
