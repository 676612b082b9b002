"""Install modes and ``imagefit doctor``, run as a user or an admin would:
through the installed commands (``imagefit`` next to this Python), with HOME,
XDG directories, the site config path and PATH in temporary directories, and
recording stand-ins (tests/support/standin.py) as the runtimes found on PATH.

- ``pip install`` into a fresh venv and ``pipx install`` (PIPX_HOME/PIPX_BIN_DIR
  in tmp), then ``imagefit install --user`` from that installation;
- ``imagefit install --user``: links for the runtimes found, the PATH line per
  shell, ``--uninstall`` that removes only shim links;
- ``imagefit install --site --prefix`` as root: root-owned links, the config
  skeleton written once and loadable, an idempotent profile snippet; refused
  (125) for an ordinary user;
- root ignores a user config, shown through the installed shim;
- ``imagefit doctor``: healthy, unhealthy with one reason, ``--json`` shape,
  registry reachability against the real registry fixture.
"""

from __future__ import annotations

import base64
import json
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from shim import config
from tests.conftest import world_readable_tmp
from tests.support.fixtures import missing_tool
from tests.support.registry import LocalRegistry, can_make_htpasswd
from tests.support.standin import StandIn

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
IMAGEFIT = BIN / "imagefit"
SHIM = os.path.realpath(BIN / "imagefit-shim")  # pip's script: what `imagefit doctor` names
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TEST_USER = os.environ.get("IMAGEFIT_TEST_USER", "alice")


def _env(home: Path, path: str, **extra: str) -> dict[str, str]:
    """A clean environment: no IMAGEFIT_* or XDG_* from the caller; USER as a
    login sets it (ch-image refuses to run without it, and doctor runs it)."""
    env = {"HOME": str(home), "PATH": path, "LANG": "C.UTF-8", "SHELL": "/bin/bash",
           "USER": pwd.getpwuid(os.geteuid()).pw_name,
           "IMAGEFIT_SITE_CONFIG": str(home / "no-site-config.toml")}  # fmt: skip
    env.update(extra)
    return {k: v for k, v in env.items() if v is not None}


def _run(argv, env, *, user: str | None = None, timeout: float = 120):
    argv = [str(a) for a in argv]
    if user:
        argv = [
            "runuser",
            "-u",
            user,
            "--",
            "env",
            "-i",
            *(f"{k}={v}" for k, v in env.items()),
            *argv,
        ]
        env = None
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, cwd="/")


def imagefit(*args, env, user=None, exe=IMAGEFIT):
    return _run([exe, *args], env, user=user)


def _fakes(directory: Path, *names: str) -> dict[str, StandIn]:
    return {name: StandIn(directory, name) for name in names}


def _launcher(bindir: Path) -> str:
    """The launcher `imagefit install` writes for the links in `bindir`."""
    return str(bindir.parent / "libexec" / "imagefit-shim")


def _shebang(launcher, python) -> None:
    """`launcher` runs `python` isolated and without site, and imports from `python`'s site-packages."""
    lines = Path(launcher).read_text().splitlines()
    assert lines[0] == f"#!{python} -IS", lines[0]
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    assert any(line.startswith("sys.path += [") and repr(purelib) in line for line in lines), lines


def _links(bindir: Path) -> dict[str, str]:
    return {p.name: os.readlink(p) for p in sorted(bindir.iterdir()) if p.is_symlink()}


def _require_root():
    if os.geteuid() != 0:
        pytest.skip("needs root (the tests run as root: tests/provision.sh)")


def _require_test_user() -> pwd.struct_passwd:
    _require_root()
    try:
        return pwd.getpwnam(TEST_USER)
    except KeyError:
        missing_tool(f"no user {TEST_USER}")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- pip and pipx ----------------------------------------------------------------
def _source_tree(tmp_path: Path) -> Path:
    """A copy of what a source install needs (pip builds a local directory in
    place: keep build/ and *.egg-info out of the checkout)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    for package in ("shim", "hostfacts", "scoring"):
        shutil.copytree(REPO / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    return src


def _user_install_from(exe: Path, tmp_path: Path) -> Path:
    """``exe install --user`` with a stand-in podman on PATH; returns the bin dir
    and checks the link leads to the shim of `exe`'s own installation."""
    home = tmp_path / "home"
    home.mkdir()
    _fakes(tmp_path / "runtimes", "podman")
    done = imagefit("install", "--user", env=_env(home, str(tmp_path / "runtimes")), exe=exe)
    assert done.returncode == 0, done.stderr
    bindir = home / ".local/share/imagefit/bin"
    assert 'export PATH="$HOME/.local/share/imagefit/bin:$PATH"' in done.stdout
    assert os.readlink(bindir / "podman") == _launcher(bindir)
    dry = _run(
        ["podman", "--version"],
        _env(home, f"{bindir}:{tmp_path / 'runtimes'}", IMAGEFIT_DRY_RUN="1"),
    )
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout) == [str(tmp_path / "runtimes" / "podman"), "--version"]
    return bindir


def test_pip_install_into_a_fresh_venv_then_user_install(tmp_path):
    src = _source_tree(tmp_path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    done = subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "-q", str(src)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    if done.returncode != 0:
        missing_tool(
            f"pip install {src} failed (needs imagefit's dependencies from the package index): {done.stderr[-500:]}"
        )
    version = _run([venv / "bin/imagefit", "--version"], _env(tmp_path, "/usr/bin:/bin"))
    assert version.stdout.startswith("imagefit "), version.stderr
    bindir = _user_install_from(venv / "bin/imagefit", tmp_path)
    _shebang(_launcher(bindir), venv / "bin/python")  # the new venv's, as its imagefit's shebang
    # the new installation's doctor sees its own shim in front of the stand-in
    report = _run([venv / "bin/imagefit", "doctor", "--json"],
                  _env(tmp_path / "home", f"{bindir}:{tmp_path / 'runtimes'}"))  # fmt: skip
    data = json.loads(report.stdout)
    assert data["imagefit"]["shim"] == os.path.realpath(venv / "bin/imagefit-shim")
    assert data["runtimes"][0]["status"] == "ok" and report.returncode == 0, report.stdout


def test_pipx_install_then_user_install(tmp_path):
    """One test for pipx (about 10 s: pipx itself, then imagefit with its
    dependencies into pipx's own venv)."""
    tools = tmp_path / "tools"
    subprocess.run([sys.executable, "-m", "venv", str(tools)], check=True, capture_output=True)
    got = subprocess.run([str(tools / "bin/python"), "-m", "pip", "install", "-q", "pipx"],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    if got.returncode != 0:
        missing_tool(f"pip install pipx failed: {got.stderr[-500:]}")
    src = _source_tree(tmp_path)
    pipx_env = _env(tmp_path, f"{tools / 'bin'}:/usr/bin:/bin", PIPX_HOME=str(tmp_path / "pipx"),
                    PIPX_BIN_DIR=str(tmp_path / "pipx-bin"), PIPX_MAN_DIR=str(tmp_path / "pipx-man"))  # fmt: skip
    done = _run([tools / "bin/pipx", "install", src], pipx_env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    exe = tmp_path / "pipx-bin" / "imagefit"
    assert exe.is_symlink() and (tmp_path / "pipx-bin" / "imagefit-shim").exists()
    bindir = _user_install_from(exe, tmp_path)
    # the launcher runs pipx's venv's python, not through pipx's bin directory's link
    first = Path(_launcher(bindir)).read_text().splitlines()[0]
    assert first == f"#!{tmp_path / 'pipx/venvs/imagefit/bin/python'} -IS", first
    assert str(tmp_path / "pipx/venvs/imagefit/lib/") in Path(_launcher(bindir)).read_text()


# -- --user --------------------------------------------------------------------
@pytest.mark.parametrize("xdg", [False, True], ids=["default-data-home", "XDG_DATA_HOME"])
def test_user_install_links_the_runtimes_found(tmp_path, xdg):
    home = tmp_path / "home"
    home.mkdir()
    fakes = _fakes(tmp_path / "runtimes", "podman", "apptainer", "sarus")
    # an earlier installation on PATH holds a shim link named docker: not a runtime
    other = tmp_path / "other-shim"
    other.mkdir()
    (other / "docker").symlink_to(SHIM)
    data_home = tmp_path / "data"
    env = _env(
        home, f"{other}:{tmp_path / 'runtimes'}", XDG_DATA_HOME=str(data_home) if xdg else None
    )
    done = imagefit("install", "--user", env=env)
    assert done.returncode == 0, done.stderr
    bindir = (data_home if xdg else home / ".local/share") / "imagefit" / "bin"
    launcher = _launcher(bindir)
    assert _links(bindir) == {name: launcher for name in ("apptainer", "podman", "sarus")}
    assert sorted(p.name for p in bindir.iterdir()) == ["apptainer", "podman", "sarus"]
    assert f"{bindir}/podman -> {launcher}" in done.stdout
    _shebang(launcher, os.path.abspath(sys.executable))
    # the link works: a plain `podman` runs the shim, which runs the stand-in
    ran = _run(["podman", "ps", "-a"], {**env, "PATH": f"{bindir}:{env['PATH']}"})
    assert ran.returncode == 0, ran.stderr
    assert fakes["podman"].calls() == [{"argv": ["ps", "-a"], "name": "podman", "active": "1"}]
    # again, with the shim first on PATH: the same links, nothing replaced
    again = imagefit("install", "--user", env={**env, "PATH": f"{bindir}:{env['PATH']}"})
    assert again.returncode == 0 and again.stdout.count("(already there)") == 3, again.stdout
    assert "already first on PATH" in again.stdout
    # never an rc file
    assert not [
        p
        for p in home.rglob("*")
        if p.name in (".bashrc", ".zshrc", ".profile", ".cshrc", "config.fish")
    ]


def test_user_install_with_no_runtime_found_is_refused(tmp_path):
    done = imagefit("install", "--user", env=_env(tmp_path, str(tmp_path / "empty")))
    assert done.returncode == 125 and done.stderr.count("\n") == 1, done.stderr
    assert "--runtime" in done.stderr and not (tmp_path / ".local").exists()


SHELLS = [
    ("/bin/bash", 'export PATH="{dir}:$PATH"', "~/.bashrc"),
    ("/usr/bin/zsh", 'export PATH="{dir}:$PATH"', "~/.zshrc"),
    ("/bin/sh", 'export PATH="{dir}:$PATH"', "~/.profile"),
    ("/bin/dash", 'export PATH="{dir}:$PATH"', "~/.profile"),
    ("/usr/bin/fish", "fish_add_path -p {dir}", "~/.config/fish/config.fish"),
    ("/bin/csh", 'setenv PATH "{dir}:$PATH"', "~/.cshrc"),
    ("/usr/bin/tcsh", 'setenv PATH "{dir}:$PATH"', "~/.tcshrc (or ~/.cshrc)"),
    (None, 'export PATH="{dir}:$PATH"', "~/.profile"),
]


@pytest.mark.parametrize(
    ("shell", "line", "rc"), SHELLS, ids=[str(s[0]).rsplit("/", 1)[-1] for s in SHELLS]
)
def test_path_line_for_the_users_shell(tmp_path, shell, line, rc):
    home = tmp_path / "home"
    home.mkdir()
    _fakes(tmp_path / "runtimes", "podman")
    env = _env(home, str(tmp_path / "runtimes"), SHELL=shell)
    done = imagefit("install", "--user", env=env)
    assert done.returncode == 0, done.stderr
    expected = line.format(dir="$HOME/.local/share/imagefit/bin")
    assert f"add this line to {rc} (imagefit does not edit it)\n  {expected}\n" in done.stdout
    # outside HOME the directory is spelled out
    prefix = tmp_path / "elsewhere"
    done = imagefit("install", "--prefix", prefix, env=env)
    assert f"\n  {line.format(dir=prefix / 'bin')}\n" in done.stdout, done.stdout
    # the printed line does what it says, in that shell (where installed)
    runner = shutil.which(os.path.basename(shell or "sh"), path=SYSTEM_PATH)
    if runner:
        script = f"{expected}\n" + ("echo $PATH\n" if "fish" not in runner else "echo $PATH[1]\n")
        out = _run([runner, "-c", script], env).stdout.split()[0]
        assert out.split(":")[0] == str(home / ".local/share/imagefit/bin"), out


def test_user_uninstall_removes_only_links_to_a_shim(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    _fakes(tmp_path / "runtimes", "podman", "docker")
    env = _env(home, str(tmp_path / "runtimes"))
    assert imagefit("install", "--user", env=env).returncode == 0
    bindir = home / ".local/share/imagefit/bin"
    (bindir / "singularity").write_text("#!/bin/sh\nexec /usr/bin/true\n")  # the user's own file
    (bindir / "apptainer").symlink_to("/usr/bin/true")  # the user's own link
    (bindir / "sarus").symlink_to("/gone/venv/bin/imagefit-shim")  # a dangling link to an old shim
    (bindir / "notes.txt").write_text("mine\n")
    done = imagefit("install", "--user", "--uninstall", env=env)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in bindir.iterdir()) == ["apptainer", "notes.txt", "singularity"]
    assert (bindir / "singularity").read_text().startswith("#!/bin/sh") and os.readlink(
        bindir / "apptainer"
    ) == "/usr/bin/true"
    assert "left " + str(bindir / "apptainer") + " alone" in done.stdout
    assert "remove the PATH line" in done.stdout and "~/.bashrc" in done.stdout
    for name in ("singularity", "apptainer", "notes.txt"):
        (bindir / name).unlink()
    assert imagefit("install", "--user", env=env).returncode == 0
    done = imagefit("install", "--user", "--uninstall", env=env)
    assert done.returncode == 0 and not bindir.exists(), done.stdout
    assert not (bindir.parent / "libexec").exists()  # the launcher went with its last link
    assert imagefit("install", "--user", "--uninstall", env=env).returncode == 0  # nothing to do


def test_the_launcher_stays_while_a_link_leads_to_it_and_is_never_a_foreign_file(tmp_path):
    _fakes(tmp_path / "runtimes", "podman", "docker")
    env = _env(tmp_path, str(tmp_path / "runtimes"))
    prefix = tmp_path / "p"
    assert imagefit("install", "--prefix", prefix, env=env).returncode == 0
    launcher = Path(_launcher(prefix / "bin"))
    text = launcher.read_text()
    again = imagefit("install", "--prefix", prefix, env=env)  # the same launcher: not rewritten
    assert again.returncode == 0 and "wrote" not in again.stdout and launcher.read_text() == text
    done = imagefit("install", "--prefix", prefix, "--uninstall", "--runtime", "docker", env=env)
    assert (
        done.returncode == 0
        and launcher.is_file()
        and _links(prefix / "bin") == {"podman": str(launcher)}
    )
    done = imagefit("install", "--prefix", prefix, "--uninstall", env=env)
    assert (
        done.returncode == 0
        and f"removed {launcher}" in done.stdout
        and not (prefix / "libexec").exists()
    )
    # a file of the same name that imagefit did not write is left alone
    launcher.parent.mkdir(parents=True)
    launcher.write_text("#!/bin/sh\nexit 0\n")
    done = imagefit("install", "--prefix", prefix, env=env)
    assert (
        done.returncode == 125
        and done.stderr.count("\n") == 1
        and "not written by imagefit" in done.stderr
    )
    assert launcher.read_text() == "#!/bin/sh\nexit 0\n"


def test_an_interpreter_path_too_long_for_a_shebang_links_pips_script(tmp_path):
    """Kernels before 5.1 read 127 bytes of a shebang line: with a longer
    interpreter path the links lead to pip's script, as before the launcher,
    and the shim still works."""
    venv = Path(sys.executable).parent.parent
    long = tmp_path / ("v" * 120)
    long.symlink_to(venv)  # the same venv, by a path too long for a shebang
    python = long / "bin" / Path(sys.executable).name
    _fakes(tmp_path / "runtimes", "podman")
    env = _env(tmp_path, str(tmp_path / "runtimes"))
    code = "import sys; from shim.cli import main; sys.argv[0] = 'imagefit'; sys.exit(main())"
    done = _run([python, "-c", code, "install", "--prefix", tmp_path / "p"], env)
    assert done.returncode == 0, done.stderr
    assert "note: no launcher: its shebang line would be" in done.stdout
    assert os.readlink(tmp_path / "p/bin/podman") == SHIM and not (tmp_path / "p/libexec").exists()
    dry = _run(
        ["podman", "ps"],
        {**env, "PATH": f"{tmp_path / 'p/bin'}:{env['PATH']}", "IMAGEFIT_DRY_RUN": "1"},
    )
    assert json.loads(dry.stdout) == [str(tmp_path / "runtimes/podman"), "ps"], dry.stderr


def test_prefix_install_refuses_a_foreign_file_and_a_bad_directory(tmp_path):
    _fakes(tmp_path / "runtimes", "podman")
    env = _env(tmp_path, str(tmp_path / "runtimes"))
    (tmp_path / "p/bin").mkdir(parents=True)
    (tmp_path / "p/bin/podman").write_text("not ours")
    done = imagefit("install", "--prefix", tmp_path / "p", env=env)
    assert done.returncode == 125 and "--force" in done.stderr
    assert not (tmp_path / "p/libexec").exists()  # no launcher left without a link
    done = imagefit("install", "--prefix", tmp_path / "p", "--force", env=env)
    assert done.returncode == 0 and os.readlink(tmp_path / "p/bin/podman") == _launcher(
        tmp_path / "p/bin"
    )
    done = imagefit("install", "--prefix", tmp_path / "a:b", env=env)
    assert done.returncode == 125 and "':'" in done.stderr and not (tmp_path / "a:b").exists()
    for args in (["--user", "--prefix", str(tmp_path)], ["--site"], []):
        done = imagefit("install", *args, env=env)
        assert done.returncode == 2, (args, done.stderr)


# -- --site ---------------------------------------------------------------------
def _uncommented(text: str) -> str:
    """The skeleton with every key line's '#' removed."""
    return re.sub(r"(?m)^#(?=[\w\[\"])", "", text)


def test_site_install_as_root(tmp_path):
    _require_root()
    fakes_dir = tmp_path / "runtimes"
    _fakes(fakes_dir, "podman", "sarus")
    site_config = tmp_path / "etc/imagefit/config.toml"
    prefix = tmp_path / "opt/imagefit"
    env = _env(tmp_path, str(fakes_dir), IMAGEFIT_SITE_CONFIG=str(site_config))
    done = imagefit("install", "--site", "--prefix", prefix, env=env)
    assert done.returncode == 0, done.stderr
    bindir = prefix / "bin"
    launcher = _launcher(bindir)
    assert _links(bindir) == {"podman": launcher, "sarus": launcher}
    for link in [*bindir.iterdir(), Path(launcher)]:
        st = os.lstat(link)
        assert (st.st_uid, st.st_gid) == (0, 0)
    assert stat.S_IMODE(os.stat(launcher).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(prefix / "libexec").st_mode) == 0o755
    st = bindir.stat()
    assert st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o755
    # the config skeleton: root's, 0644, only comments, valid, every key with its default
    st = site_config.stat()
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o644)
    text = site_config.read_text()
    assert all(not line.strip() or line.startswith("#") for line in text.splitlines())
    settings = config.load(
        {"IMAGEFIT_SITE_CONFIG": str(site_config), "HOME": str(tmp_path)}, euid=0
    )
    assert settings.sources == (str(site_config),) and settings.warnings == ()
    assert repr(settings).split(", sources=")[0] == repr(config.Settings()).split(", sources=")[0]
    # uncommented, it is still valid, names every key, and the scalar defaults are the defaults
    (tmp_path / "uncommented.toml").write_text(_uncommented(text))
    full = config.load(
        {"IMAGEFIT_SITE_CONFIG": str(tmp_path / "uncommented.toml"), "HOME": str(tmp_path)}, euid=0
    )
    assert full.sources == (str(tmp_path / "uncommented.toml"),)
    defaults = config.Settings()
    for key in ("on_error", "login", "registry_timeout", "insecure_registries", "nfd_artifacts",
                "decision_cache_ttl", "cache_trusted_uids"):  # fmt: skip
        assert getattr(full, key) == getattr(defaults, key), key
    import tomllib

    keys = set(tomllib.loads(_uncommented(text)))
    known = {
        k
        for k in config.Settings.__slots__
        if k
        not in ("sources", "warnings", "policies", "pin", "node_class_request")  # environment only
    } | {"policy"}
    assert keys == known
    # the profile snippet: root's, 0644, idempotent when sourced twice
    profile = prefix / "etc/profile.d/imagefit.sh"
    st = profile.stat()
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o644)
    assert f"ln -s {profile} /etc/profile.d/imagefit.sh" in done.stdout
    for start, expected in [("/usr/bin:/bin", f"{bindir}:/usr/bin:/bin"),
                            (f"/usr/bin:{bindir}:/bin", f"/usr/bin:{bindir}:/bin")]:  # fmt: skip
        out = _run(
            ["/bin/sh", "-c", f'. "{profile}"; . "{profile}"; printf %s "$PATH"'], {"PATH": start}
        )
        assert out.stdout == expected, out.stderr
    # a second run leaves an edited config alone, and the links as they are
    site_config.write_text(text + 'on_error = "refuse"\n')
    again = imagefit("install", "--site", "--prefix", prefix, env=env)
    assert again.returncode == 0, again.stderr
    assert site_config.read_text() == text + 'on_error = "refuse"\n'
    assert f"{site_config} exists: left as it is" in again.stdout
    assert again.stdout.count("(already there)") == 2
    # uninstall: links and snippet go, the config stays
    gone = imagefit("install", "--site", "--prefix", prefix, "--uninstall", env=env)
    assert gone.returncode == 0, gone.stderr
    assert not bindir.exists() and not (prefix / "etc").exists() and site_config.exists()
    assert not (prefix / "libexec").exists()
    assert f"left {site_config} in place" in gone.stdout


def test_site_install_refuses_an_unsafe_bin_directory(tmp_path):
    _require_root()
    _fakes(tmp_path / "runtimes", "podman")
    prefix = tmp_path / "opt"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "bin").chmod(0o777)
    env = _env(
        tmp_path, str(tmp_path / "runtimes"), IMAGEFIT_SITE_CONFIG=str(tmp_path / "site.toml")
    )
    done = imagefit("install", "--site", "--prefix", prefix, env=env)
    assert done.returncode == 125 and "writable by group or others" in done.stderr, done.stderr
    assert not (prefix / "bin/podman").exists() and not (tmp_path / "site.toml").exists()


@pytest.mark.parametrize("site", [True, False], ids=["site", "user"])
def test_install_refuses_an_import_path_others_can_write(tmp_path, site):
    """Everyone who calls the runtime runs the launcher (root too, for rootful
    podman), so every directory it imports from, and every directory above
    it, must be one only root (or, without --site, the installer) can change:
    e.g. a PYTHONPATH entry at install time, world-writable or under another
    user's directory."""
    _require_root()
    _fakes(tmp_path / "runtimes", "podman")
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    env = _env(tmp_path, str(tmp_path / "runtimes"), IMAGEFIT_SITE_CONFIG=str(tmp_path / "site.toml"),
               PYTHONPATH=str(open_dir))  # fmt: skip
    flags = ["--site"] if site else []
    done = imagefit("install", *flags, "--prefix", tmp_path / "opt", env=env)
    assert done.returncode == 125 and done.stderr.count("\n") == 1, done.stderr
    assert f"{open_dir} writable by group or others" in done.stderr
    assert not (tmp_path / "opt/bin/podman").exists() and not (tmp_path / "opt/libexec").exists()
    assert not (tmp_path / "site.toml").exists()
    # root's own directory under a directory of another user: she can rename it away
    theirs = tmp_path / "theirs"
    (theirs / "lib").mkdir(parents=True)
    os.chown(theirs, 65534, 65534)
    done = imagefit("install", *flags, "--prefix", tmp_path / "opt",
                    env={**env, "PYTHONPATH": str(theirs / "lib")})  # fmt: skip
    assert done.returncode == 125 and f"{theirs} owned by uid 65534" in done.stderr, done.stderr
    open_dir.chmod(0o755)  # the same, safe: installed, and the launcher names it
    done = imagefit("install", *flags, "--prefix", tmp_path / "opt", env=env)
    assert done.returncode == 0, done.stderr
    assert repr(str(open_dir)) in (tmp_path / "opt/libexec/imagefit-shim").read_text()


def test_site_install_as_an_ordinary_user_is_refused():
    _require_test_user()
    base = world_readable_tmp("imagefit-site-user-")
    try:
        _fakes(base / "runtimes", "podman")
        env = _env(base, str(base / "runtimes"), IMAGEFIT_SITE_CONFIG=str(base / "site.toml"))
        for extra in ([], ["--uninstall"]):
            done = imagefit(
                "install", "--site", "--prefix", base / "opt", *extra, env=env, user=TEST_USER
            )
            assert done.returncode == 125, done.stderr
            assert done.stderr.count("\n") == 1 and "as root" in done.stderr and done.stdout == ""
        assert not (base / "opt").exists() and not (base / "site.toml").exists()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_root_ignores_a_user_config_through_the_installed_shim():
    """A user config saying on_error = "refuse" turns an unreachable registry
    into exit 125 for its user, but root, with the same kind of file in its
    HOME, reads no user config: the shim passes the command through."""
    user = _require_test_user()
    base = world_readable_tmp("imagefit-root-config-")
    try:
        fake = StandIn(base / "runtimes", "podman")
        assert imagefit("install", "--prefix", base / "shim", "--runtime", "podman",
                        env=_env(base, "/usr/bin")).returncode == 0  # fmt: skip
        ref = f"127.0.0.1:{_closed_port()}/hpc/app:1"
        for who, owner in (("root", 0), (TEST_USER, user.pw_uid)):
            home = base / f"home-{who}"
            (home / ".config/imagefit").mkdir(parents=True)
            (home / ".config/imagefit/config.toml").write_text('on_error = "refuse"\n')
            for path in (
                home,
                home / ".config",
                home / ".config/imagefit",
                home / ".config/imagefit/config.toml",
            ):
                os.chown(path, owner, owner)
        path = f"{base / 'shim/bin'}:{base / 'runtimes'}"
        argv = ["podman", "run", "--rm", ref, "true"]
        as_user = _run(
            argv,
            _env(base / f"home-{TEST_USER}", path, IMAGEFIT_SITE_CONFIG=str(base / "none.toml")),
            user=TEST_USER,
        )
        assert as_user.returncode == 125 and "cannot resolve" in as_user.stderr, as_user.stderr
        assert fake.calls() == []
        as_root = _run(
            argv, _env(base / "home-root", path, IMAGEFIT_SITE_CONFIG=str(base / "none.toml"))
        )
        assert as_root.returncode == 0, as_root.stderr
        assert "running the command unchanged" in as_root.stderr
        assert fake.argvs() == [["run", "--rm", ref, "true"]]
        # doctor, as root, names the file and why it is not read
        report = imagefit(
            "doctor",
            "--json",
            env=_env(base / "home-root", path, IMAGEFIT_SITE_CONFIG=str(base / "none.toml")),
        )
        files = {f["role"]: f for f in json.loads(report.stdout)["config"]["files"]}
        assert files["user"]["path"] == str(base / "home-root/.config/imagefit/config.toml")
        assert files["user"]["state"] == "not read" and "root" in files["user"]["reason"]
        assert (files["user"]["uid"], files["user"]["mode"]) == (0, "0644")
    finally:
        shutil.rmtree(base, ignore_errors=True)


# -- doctor ---------------------------------------------------------------------
@pytest.fixture
def shim_dir(tmp_path) -> Path:
    """A bin directory with the installed shim linked as podman."""
    done = imagefit(
        "install",
        "--prefix",
        tmp_path / "shim",
        "--runtime",
        "podman",
        env=_env(tmp_path, "/usr/bin"),
    )
    assert done.returncode == 0, done.stderr
    return tmp_path / "shim" / "bin"


def _doctor(tmp_path, path, *args, **extra):
    done = imagefit("doctor", *args, env=_env(tmp_path, path, **extra))
    assert done.returncode in (0, 1), done.stderr
    return done


def test_doctor_healthy_with_the_shim_first_and_the_real_podman(tmp_path, shim_dir):
    if not os.access("/usr/bin/podman", os.X_OK):
        missing_tool("podman missing")
    path = f"{shim_dir}:/usr/sbin:/usr/bin:/sbin:/bin"
    done = _doctor(tmp_path, path)
    assert done.returncode == 0, done.stdout
    assert done.stdout.startswith("imagefit doctor: healthy\n")
    assert (
        f"`podman` runs the shim ({shim_dir}/podman), which runs /usr/bin/podman; podman version "
        in done.stdout
    )
    assert "problems:" not in done.stdout
    data = json.loads(_doctor(tmp_path, path, "--json").stdout)
    podman = data["runtimes"][0]
    assert (podman["status"], podman["resolves_to"], podman["real"]) == (
        "ok",
        f"{shim_dir}/podman",
        "/usr/bin/podman",
    )
    assert podman["version"].startswith("podman version ")
    assert data["facts"]["cpu_target"] and data["facts"]["probes"]["cpu"]["status"] == "ok"


def test_doctor_unhealthy_when_the_shim_is_not_first_on_path(tmp_path, shim_dir):
    StandIn(tmp_path / "real", "podman")
    done = _doctor(tmp_path, f"{tmp_path / 'real'}:{shim_dir}")
    assert done.returncode == 1
    assert "imagefit doctor: 1 problem(s)" in done.stdout
    problems = done.stdout.split("problems:\n", 1)[1].split("\n\n")[0].splitlines()
    assert problems == [f"  - a plain `podman` runs {tmp_path / 'real/podman'}, not the shim: "
                        f"put {shim_dir} before {tmp_path / 'real'} on PATH"]  # fmt: skip


def test_doctor_unhealthy_when_no_real_runtime_exists(tmp_path, shim_dir):
    data = json.loads(_doctor(tmp_path, str(shim_dir), "--json").stdout)
    assert data["healthy"] is False and len(data["problems"]) == 1, data["problems"]
    assert "`podman` on PATH is the imagefit shim" in data["problems"][0]
    assert "no real podman" in data["problems"][0]
    assert data["runtimes"][0]["status"] == "no-runtime" and data["runtimes"][0]["real"] is None


def test_doctor_unhealthy_when_the_shim_is_not_on_path(tmp_path):
    StandIn(tmp_path / "real", "podman")
    done = _doctor(tmp_path, str(tmp_path / "real"))
    assert done.returncode == 1 and "the shim is not on PATH for any runtime" in done.stdout
    assert "imagefit install --user" in done.stdout


def test_doctor_config_files_read_and_ignored(tmp_path, shim_dir):
    StandIn(tmp_path / "real", "podman")
    site = tmp_path / "site.toml"
    site.write_text('login = "never"\n')
    site.chmod(0o664)  # group-writable: ignored, and said so
    done = _doctor(
        tmp_path, f"{shim_dir}:{tmp_path / 'real'}", "--json", IMAGEFIT_SITE_CONFIG=str(site)
    )
    data = json.loads(done.stdout)
    row = data["config"]["files"][0]
    assert (row["role"], row["state"], row["mode"], row["uid"]) == (
        "site",
        "ignored",
        "0664",
        os.geteuid(),
    )
    assert "writable by group or others" in row["reason"]
    assert done.returncode == 1 and data["problems"] == [
        f"config {site} is ignored: {row['reason']}"
    ]
    site.chmod(0o644)
    data = json.loads(
        _doctor(
            tmp_path, f"{shim_dir}:{tmp_path / 'real'}", "--json", IMAGEFIT_SITE_CONFIG=str(site)
        ).stdout
    )
    assert (
        data["config"]["files"][0]["state"] == "read"
        and data["config"]["effective"]["login"] == "never"
    )
    site.write_text('login = "sometimes"\n')
    data = json.loads(
        _doctor(
            tmp_path, f"{shim_dir}:{tmp_path / 'real'}", "--json", IMAGEFIT_SITE_CONFIG=str(site)
        ).stdout
    )
    assert data["config"]["files"][0]["state"] == "invalid" and not data["healthy"]
    assert "login must be one of" in data["problems"][0] and "exits 125" in data["problems"][0]


def test_doctor_json_shape(tmp_path, shim_dir):
    StandIn(tmp_path / "real", "podman")
    data = json.loads(_doctor(tmp_path, f"{shim_dir}:{tmp_path / 'real'}", "--json",
                              IMAGEFIT_FACTS=str(tmp_path / "nope.json")).stdout)  # fmt: skip
    assert set(data) == {"schema_version", "healthy", "problems", "notes", "imagefit", "runtimes",
                         "config", "caches", "audit_log", "registries", "facts", "cluster"}  # fmt: skip
    assert data["cluster"] == {"node_classes": [], "node_class": data["cluster"]["node_class"],
                               "shared_cache": None, "images": []}  # fmt: skip
    assert data["cluster"]["node_class"]["name"] is None
    assert data["schema_version"] == 2 and isinstance(data["healthy"], bool)
    assert data["imagefit"]["shim"] == SHIM and data["imagefit"]["euid"] == os.geteuid()
    assert [r["name"] for r in data["runtimes"]] == [
        "podman",
        "docker",
        "apptainer",
        "singularity",
        "sarus",
        "enroot",
        "ch-image",
    ]
    assert set(data["runtimes"][0]) == {"name", "status", "resolves_to", "resolves_to_shim", "shim_links", "real",
                                        "real_configured", "real_error", "version"}  # fmt: skip
    assert data["runtimes"][0]["real"] == str(tmp_path / "real/podman")
    assert {c["name"] for c in data["caches"]} == {"facts", "decisions", "config"}
    assert all(set(c) == {"name", "path", "what", "exists", "writable"} for c in data["caches"])
    assert (
        data["caches"][0]["path"] == str(tmp_path / ".cache/imagefit")
        and data["caches"][0]["writable"]
    )
    assert data["audit_log"] == {"destination": None, "writable": None} and data["registries"] == []
    assert set(data["config"]) == {"files", "error", "environment", "effective"}
    assert data["config"]["environment"]["IMAGEFIT_FACTS"] == str(tmp_path / "nope.json")
    # an unreadable facts file: no facts, one problem saying so
    assert data["facts"] is None and data["problems"][0].startswith("cannot tell this host's facts")


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory):
    if not can_make_htpasswd():
        missing_tool("bcrypt htpasswd (apache2-utils)")
    reg = LocalRegistry(
        tmp_path_factory.mktemp("auth-registry"), auth=("doctor-user", "s3cr3t-Pa55")
    )
    try:
        yield reg
    finally:
        reg.stop()


def test_doctor_registry_reachability(tmp_path, shim_dir, registry, auth_registry):
    StandIn(tmp_path / "real", "podman")
    path = f"{shim_dir}:{tmp_path / 'real'}"
    site = tmp_path / "site.toml"
    site.write_text(f'insecure_registries = ["{registry.host}", "{auth_registry.host}"]\n'
                    f'[[policy]]\nimage = "{registry.host}/hpc/*"\nprefer = ["zen4"]\n')  # fmt: skip
    closed = f"127.0.0.1:{_closed_port()}"
    done = _doctor(tmp_path, path, "--json", "--registry", closed, IMAGEFIT_SITE_CONFIG=str(site))
    rows = {r["host"]: r for r in json.loads(done.stdout)["registries"]}
    assert list(rows) == [registry.host, auth_registry.host, closed]
    assert (rows[registry.host]["state"], rows[registry.host]["scheme"], rows[registry.host]["http_status"]) == (
        "reachable", "http", 200)  # fmt: skip
    assert (
        rows[auth_registry.host]["state"] == "auth required"
        and rows[auth_registry.host]["http_status"] == 401
    )
    assert rows[closed]["state"] == "unreachable" and rows[closed]["seconds"] < 3.5
    assert done.returncode == 1 and json.loads(done.stdout)["problems"] == [
        f"registry {closed} is unreachable: {rows[closed]['detail']}"]  # fmt: skip
    # a plain-HTTP registry that no config marks insecure: named as such
    done = _doctor(tmp_path, path, "--registry", registry.host)
    assert done.returncode == 1 and f"{registry.host}: plain-http-only" in done.stdout
    # stored credentials are used, and never shown
    auth_json = tmp_path / ".config/containers/auth.json"
    auth_json.parent.mkdir(parents=True)
    token = base64.b64encode(b"doctor-user:s3cr3t-Pa55").decode()
    auth_json.write_text(json.dumps({"auths": {auth_registry.host: {"auth": token}}}))
    for fmt in ([], ["--json"]):
        done = _doctor(tmp_path, path, *fmt, IMAGEFIT_SITE_CONFIG=str(site))
        assert done.returncode == 0, done.stdout
        assert "s3cr3t" not in done.stdout + done.stderr and token not in done.stdout
        assert "doctor-user" not in done.stdout + done.stderr
    row = {r["host"]: r for r in json.loads(done.stdout)["registries"]}[auth_registry.host]
    assert (row["state"], row["authenticated"], row["credentials_stored"]) == (
        "reachable",
        True,
        True,
    )


FINDER = """import importlib.machinery, importlib.util, sys
MAPPING = {mapping!r}
class _Finder:
    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname in MAPPING:
            init = MAPPING[fullname] + "/__init__.py"
            return importlib.util.spec_from_file_location(fullname, init, submodule_search_locations=[MAPPING[fullname]])
        return None
def install():
    sys.meta_path.append(_Finder)
"""


def test_an_editable_install_found_through_pth_files(tmp_path):
    """setuptools' editable install: a ``.pth`` import line installs a finder
    for the checkout's packages (strict mode: no path on sys.path), and the
    dependencies come from a ``.pth`` path line. The launcher, which runs
    without ``site``, names both; a resolution through it imports the
    dependencies."""
    import sysconfig

    src = _source_tree(tmp_path)
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True
    )
    python = venv / "bin" / "python"
    site = Path(
        _run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], {}
        ).stdout.strip()
    )
    deps = tmp_path / "deps"  # this venv's site-packages without imagefit: its dependencies only
    deps.mkdir()
    installed = Path(sysconfig.get_paths()["purelib"])
    for entry in installed.iterdir():
        if entry.name not in ("shim", "hostfacts", "scoring") and not entry.name.startswith(
            "imagefit-"
        ):
            (deps / entry.name).symlink_to(entry)
    (site / "deps.pth").write_text(f"{deps}\n")
    mapping = {name: str(src / name) for name in ("shim", "hostfacts", "scoring")}
    (site / "__editable___imagefit_finder.py").write_text(FINDER.format(mapping=mapping))
    (site / "__editable__.imagefit-0.1.0.pth").write_text(
        "import __editable___imagefit_finder; __editable___imagefit_finder.install()\n"
    )
    _fakes(tmp_path / "runtimes", "podman")
    env = _env(tmp_path, str(tmp_path / "runtimes"))
    code = "import sys; from shim.cli import main; sys.argv[0] = 'imagefit'; sys.exit(main())"
    done = _run([python, "-c", code, "install", "--prefix", tmp_path / "p"], env)
    assert done.returncode == 0, done.stderr
    launcher = Path(_launcher(tmp_path / "p/bin"))
    assert launcher.read_text().splitlines()[0] == f"#!{python} -IS"
    assert f"sys.path += {[str(site), str(deps), str(src)]!r}" in launcher.read_text()
    # through the launcher: the checkout's shim, the dependencies of deps/
    from tests.test_hot_path import imported, launcher_argv

    ref = f"127.0.0.1:{_closed_port()}/hpc/app:1"
    ran = _run(launcher_argv(tmp_path / "p/bin/podman", "run", "--rm", ref, "true"),
               {**env, "PATH": f"{tmp_path / 'p/bin'}:{env['PATH']}", "IMAGEFIT_DRY_RUN": "1"})  # fmt: skip
    assert ran.returncode == 0 and "running the command unchanged" in ran.stderr, ran.stderr[-2000:]
    assert "No module named" not in ran.stderr and "requests" in imported(ran), ran.stderr[-2000:]
    assert json.loads(ran.stdout.splitlines()[-1]) == [
        str(tmp_path / "runtimes/podman"),
        "run",
        "--rm",
        ref,
        "true",
    ]
