"""``imagefit install``: put the shim in front of the real runtimes.

Three modes, each undone by ``--uninstall``:

``--user``
    Links ``$XDG_DATA_HOME/imagefit/bin/<runtime>`` (default
    ``~/.local/share/imagefit/bin``) to the shim for every runtime found on
    PATH, and prints the line that puts that directory first on PATH in the
    user's shell (``$SHELL``) and the file it belongs in. Rc files are never
    edited.
``--prefix DIR``
    The same, in ``DIR/bin``.
``--site --prefix DIR`` (root only)
    Root-owned links in ``DIR/bin``; the site config skeleton
    ``/etc/imagefit/config.toml`` (``IMAGEFIT_SITE_CONFIG`` redirects it),
    written only when absent; a profile snippet ``DIR/etc/profile.d/imagefit.sh``
    for the admin to link into ``/etc/profile.d``. The launcher, its
    interpreter, every directory it imports from and the directories it is
    linked from must be root's and not writable by others: the shim runs as
    root for rootful podman and docker.

The links lead to the shim's launcher, ``PREFIX/libexec/imagefit-shim``
(:func:`launcher_text`), written by every install: a Python script whose
shebang runs this installation's interpreter with ``-IS`` (isolated, no
``site``), that appends to ``sys.path`` the directories this installation
imports from (found now: its site-packages, paths that ``.pth`` files or
``PYTHONPATH`` added, an editable install's checkout) and calls
``shim.main.main()``. No ``site`` processing, no ``.pth`` scan, no
``PYTHONPATH`` or user site on every ``podman`` (pip's console script pays
for them before the shim starts: ~1-2.5 ms, docs/benchmarks.md), and none
that root, running the shim for rootful podman, could be handed by a
user's environment (``sudo -E``). Where that shebang cannot be
written (an interpreter path with blanks, or longer than kernels before
Linux 5.1 read: 127 bytes), the links lead to pip's ``imagefit-shim``
script instead, and install says so.

``--uninstall`` removes only symlinks that point to an imagefit shim (and the
profile snippet imagefit wrote), then the launcher when no link is left to
it, then the bin directory if it is empty; the site config is left in place
(the admin may have edited it).
"""

from __future__ import annotations

import os
import shlex
import stat
import sys

from shim.errors import ShimError
from shim.locate import SHIM_NAME, find_runtime, is_shim

RUNTIME_NAMES = ("podman", "docker", "apptainer", "singularity", "sarus", "enroot", "ch-image")
PROFILE_MARK = "# imagefit profile snippet"
#: The second line of every launcher imagefit writes (how uninstall knows its own).
LAUNCHER_MARK = "# imagefit shim launcher"
#: The interpreter flags of the launcher's shebang: isolated (no PYTHON*
#: variables, no user site, no script directory on sys.path), no ``site``.
LAUNCHER_FLAGS = "-IS"
#: The longest shebang line every Linux kernel reads whole (BINPRM_BUF_SIZE
#: was 128 bytes before Linux 5.1, RHEL 8's 4.18 included).
SHEBANG_LIMIT = 127
#: Characters a bin directory may not hold: PATH's separator, and what the
#: printed ``export PATH="DIR:$PATH"`` line or the profile snippet would expand.
_UNSAFE_DIR_CHARS = ':"$`\\\n'


class UsageError(ShimError):
    """A mode or option combination that does not make sense (exit 2)."""

    exit_code = 2


def shim_script() -> str:
    """The real path of the ``imagefit-shim`` script of this installation:
    next to the running ``imagefit`` (its real location first, so a pipx bin
    link leads to pipx's venv), or to the Python running it, else the first
    on PATH."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    places = [os.path.realpath(argv0), os.path.abspath(argv0)] if argv0 else []
    places.append(sys.executable)  # ``python -m shim``: the interpreter's bin directory
    for here in places:
        candidate = os.path.join(os.path.dirname(here), SHIM_NAME)
        if os.path.isfile(candidate):
            return os.path.realpath(candidate)
    import shutil

    found = shutil.which(SHIM_NAME)
    if not found:
        raise ShimError(f"cannot find the {SHIM_NAME} script; is imagefit installed?")
    return os.path.realpath(found)


def launcher_path(bindir: str) -> str:
    """Where the launcher of the links in `bindir` lives: ``PREFIX/libexec/imagefit-shim``
    (named as the shim, so that every check that knows a shim by its real name knows it)."""
    return os.path.join(os.path.dirname(bindir), "libexec", SHIM_NAME)


def _base_path(python: str) -> list[str]:
    """``sys.path`` of `python` run as the launcher runs it (``-I -S``): the
    standard library only."""
    import subprocess

    done = subprocess.run(
        [python, "-I", "-S", "-c", "import sys; print('\\0'.join(sys.path))"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    if done.returncode != 0:
        raise ShimError(f"cannot run {python} -I -S: exit {done.returncode}")
    return [p for p in done.stdout.rstrip("\n").split("\0") if p]


def package_paths(python: str | None = None) -> list[str]:
    """The directories the launcher appends to `python`'s own ``sys.path``
    (default: this interpreter's): those of this process's ``sys.path`` that
    an isolated interpreter without ``site`` lacks (site-packages, paths
    added by ``.pth`` files, by ``PYTHONPATH`` as Spack's build sets it, the
    user site), in this process's order, plus the directories the ``shim``,
    ``hostfacts`` and ``scoring`` packages were imported from (an editable
    install's checkout found through a ``.pth`` import hook). The directory
    of the running script and the working directory are left out unless a
    package came from them."""
    import importlib

    python = python or sys.executable
    base = {os.path.normpath(p) for p in _base_path(python)}
    homes = []
    for name in ("shim", "hostfacts", "scoring"):
        module = importlib.import_module(name)
        homes.append(os.path.dirname(os.path.dirname(os.path.abspath(module.__file__))))
    try:
        incidental = {os.path.normpath(os.getcwd())}
    except OSError:  # a working directory since removed
        incidental = set()
    if sys.path and sys.argv and sys.argv[0]:
        incidental.add(os.path.normpath(os.path.abspath(sys.path[0] or ".")))
    paths: list[str] = []
    for entry in [*sys.path, *homes]:
        path = os.path.normpath(os.path.abspath(entry or "."))
        if path in base or path in paths or not os.path.exists(path):  # a directory, or a zip
            continue
        if path in incidental and path not in homes:
            continue
        paths.append(path)
    return paths


def launcher_text(python: str, paths: list[str]) -> str:
    """The launcher script: a shebang of `python` with :data:`LAUNCHER_FLAGS`,
    `paths` appended to ``sys.path``, then ``shim.main.main()`` (a shim that
    cannot be imported: one line, exit 125). Nothing else is imported (the
    kernel passes the link's path as ``argv[0]``, whose name is the runtime's)."""
    from shim import __version__

    return (
        f"#!{python} {LAUNCHER_FLAGS}\n"
        f"{LAUNCHER_MARK}, written by `imagefit install` (imagefit {__version__}):\n"
        "# the runtime links lead here. Isolated, without site: this installation's\n"
        "# directories are added, found at install time. Rerun `imagefit install` after\n"
        "# moving or upgrading its Python.\n"
        "import sys\n"
        f"sys.path += {paths!r}\n"
        "try:\n"
        "    from shim.main import main\n"
        "except ImportError as exc:  # a moved or removed installation: one line, exit 125\n"
        '    sys.stderr.write(f"imagefit: cannot load the shim ({exc}); rerun `imagefit install`\\n")\n'
        "    sys.exit(125)\n"
        "sys.exit(main())\n"
    )


def shebang_problem(python: str) -> str | None:
    """Why `python` cannot be the launcher's shebang interpreter, or None."""
    if any(c.isspace() for c in python) or not os.path.isabs(python):
        return f"the interpreter path {python!r} has blanks or is relative"
    size = len(f"#!{python} {LAUNCHER_FLAGS}".encode())
    if size > SHEBANG_LIMIT:
        return f"its shebang line would be {size} bytes (kernels before Linux 5.1 read {SHEBANG_LIMIT})"
    return None


def _regular_head(path: str, limit: int) -> bytes | None:
    """The first `limit` bytes of the regular file `path`, or None: no link
    followed, no FIFO waited on (``O_NOFOLLOW|O_NONBLOCK``, then fstat), as
    root must read a name in a directory someone else may write."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        from hostfacts.fingerprint import read_fd

        return read_fd(fd, limit) or b""
    except OSError:
        return None
    finally:
        os.close(fd)


def is_our_launcher(path: str) -> bool:
    """True when `path` is a regular file that imagefit wrote as a launcher."""
    head = _regular_head(path, 1 << 20)
    if head is None:
        return False
    lines = head.split(b"\n", 2)
    return len(lines) > 1 and lines[1].startswith(LAUNCHER_MARK.encode())


def write_launcher(path: str, text: str, *, site: bool) -> bool:
    """Write the launcher `text` at `path` (mode 0755; root's with `site`),
    atomically: a ``podman`` started meanwhile runs the old file or the new.
    Returns False when an identical launcher was already there."""
    same = _regular_head(path, len(text.encode()) + 1) == text.encode()
    if same and is_our_launcher(path) and not os.path.islink(path):
        if site:
            os.chown(path, 0, 0, follow_symlinks=False)
            os.chmod(path, 0o755)
        return False
    if os.path.lexists(path) and not is_our_launcher(path):
        raise ShimError(f"{path} exists and was not written by imagefit; remove it first")
    tmp = f"{path}.imagefit-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o755)
    try:
        try:
            os.fchmod(fd, 0o755)
            if site:
                os.fchown(fd, 0, 0)
            os.write(fd, text.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return True


def user_prefix(environ) -> str:
    """``$XDG_DATA_HOME/imagefit`` (default ``~/.local/share/imagefit``)."""
    data = environ.get("XDG_DATA_HOME") or os.path.join(
        environ.get("HOME") or os.path.expanduser("~"), ".local", "share"
    )
    return os.path.join(os.path.abspath(data), "imagefit")


def site_config_path(environ) -> str:
    from shim.config import SITE_CONFIG

    return environ.get("IMAGEFIT_SITE_CONFIG") or SITE_CONFIG


def runtimes_found(shim: str, environ) -> list[str]:
    """The runtime names with a real runtime on PATH (the shim skipped)."""
    found = []
    for name in RUNTIME_NAMES:
        try:
            find_runtime(name, environ, shim)
        except ShimError:
            continue
        found.append(name)
    return found


# -- shells ------------------------------------------------------------------
def _shell_dir(bindir: str, environ, quote) -> str:
    """`bindir` as the shell should see it: ``$HOME/...`` when under HOME."""
    home = (environ.get("HOME") or "").rstrip("/")
    if home and bindir.startswith(home + "/"):
        return "$HOME/" + quote(bindir[len(home) + 1 :])
    return quote(bindir)


def path_line(bindir: str, shell: str | None, environ) -> tuple[str, str]:
    """(the line that puts `bindir` first on PATH, the file it belongs in) for
    the shell named by `shell` (``$SHELL``: a path or a name)."""
    name = os.path.basename(shell or "sh")
    if name == "fish":
        return (
            f"fish_add_path -p {_shell_dir(bindir, environ, shlex.quote)}",
            "~/.config/fish/config.fish",
        )
    if name in ("csh", "tcsh"):
        rc = "~/.tcshrc (or ~/.cshrc)" if name == "tcsh" else "~/.cshrc"
        return f'setenv PATH "{_shell_dir(bindir, environ, str)}:$PATH"', rc
    rc = {"bash": "~/.bashrc", "zsh": "~/.zshrc"}.get(name, "~/.profile")
    return f'export PATH="{_shell_dir(bindir, environ, str)}:$PATH"', rc


def profile_snippet(bindir: str) -> str:
    """The sh snippet that puts `bindir` first on PATH, once however often sourced."""
    return (
        f"{PROFILE_MARK}: the imagefit shim before the real container runtimes.\n"
        "# Link it into /etc/profile.d; written by `imagefit install --site`.\n"
        f'case ":$PATH:" in *":{bindir}:"*) ;; *) PATH="{bindir}:$PATH";; esac; export PATH\n'
    )


# -- the site config skeleton -----------------------------------------------
SITE_CONFIG_SKELETON = """\
# imagefit site configuration (TOML). Every key is commented out with its
# default; remove the '#' before a key to set it. Users' own files
# (~/.config/imagefit/config.toml) override these keys, but root reads no user
# file. An unknown key or a bad value stops every shimmed command (exit 125):
# check an edited file with `imagefit doctor` before rolling it out.
# Reference: docs/reference.md (config keys), docs/admin.md.

# What a failed resolution (registry down, bad data) does: "passthrough" runs
# the user's command unchanged, "refuse" exits 125.
#on_error = "passthrough"

# The login-container recipe: "auto" (resolved images), "always", "never".
#login = "auto"

# Seconds for all registry I/O of one resolution.
#registry_timeout = 5.0

# Registries reached over plain HTTP without TLS checks (podman gets --tls-verify=false).
#insecure_registries = []

# Look for NFD image-compatibility artifacts (referrers API or tag fallback).
#nfd_artifacts = true

# Seconds a decision is reused without asking the registry (0 disables the cache).
#decision_cache_ttl = 600

# One decision cache directory for all nodes (default: ~/.cache/imagefit/decisions per user).
#decision_cache_dir = "/shared/imagefit/decisions"

# Other uids whose entries in a shared decision cache are trusted (default: none).
#cache_trusted_uids = []

# Audit log (default: none). The recommended site setting is "syslog": one JSON
# message per decision, refusal and failure to the local socket /dev/log
# (rsyslog, or systemd-journald, which records the sender's uid), so that no
# user can forge or erase it. "syslog:/path" names another socket. A file path
# is root's alone (created 0600; users' runs then log to syslog).
#audit_log = "syslog"
# The syslog facility: auth, authpriv, user, daemon, local0..local7.
#audit_facility = "authpriv"

# "job": one build for every node class of a Slurm job (default "node": each node its own).
#consistency = "node"

# GPU access for a chosen GPU build (docs/runtimes.md): "auto" gives the
# container its GPU (podman CDI nvidia.com/gpu=all, docker --gpus, apptainer
# --nv/--rocm) unless the user chose devices; "never" adds nothing.
#gpu_access = "auto"

# Absolute paths of the real runtimes (default: found on PATH, the shim skipped).
#[runtimes]
#podman = "/usr/bin/podman"

# Node classes whose archspec CPU target the site sets: hostname glob = target
# (first match wins; default: archspec's detection).
#[cpu_targets]
#"nid0*" = "zen3"

# Named node classes (first whose hosts match the short hostname; default: none):
# the facts file is `imagefit facts --json --output FILE` on one node of the class.
#[node_classes.zen4]
#facts = "/site/imagefit/classes/zen4.json"
#hosts = ["a*", "nid00[0-3]*"]

# Per-image policy (first matching image glob wins; default: none): pin one
# build, or prefer / avoid builds (build labels, NFD set tags or digests).
#[[policy]]
#image = "registry.example.org/apps/*"
#node_class = "zen*"          # only on nodes of these classes (default: every node)
#pin = "zen3"
#prefer = ["cuda12", "zen4"]
#avoid = ["x86_64"]
#lock = false                 # true: no user config or IMAGEFIT_PIN overrides this entry
"""


# -- file system helpers ----------------------------------------------------
def _check_dir_name(bindir: str) -> None:
    bad = sorted({c for c in bindir if c in _UNSAFE_DIR_CHARS})
    if bad:
        shown = " ".join(repr(c) for c in bad)
        raise ShimError(f"{bindir}: a PATH directory cannot contain {shown}; choose another prefix")


def _root_safe(path: str) -> str | None:
    """Why root must not rely on directory `path`, or None."""
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        st = os.stat(path)
    if st.st_uid != 0:
        return f"{path} is owned by uid {st.st_uid}, not root"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{path} is writable by group or others"
    return None


def _import_dir_problem(path: str, owners: tuple[int, ...]) -> str | None:
    """Why the launcher must not import from `path` (a directory or a zip
    file), or None: every directory from ``/`` down to it, links on the way
    included, owned by a uid of `owners` and not writable by group or others
    unless sticky (``/tmp`` above it); `path` itself owned by `owners` and not
    writable by group or others at all (a sticky directory still lets others
    add a module)."""
    parts = [p for p in os.path.normpath(path).split("/") if p]
    here = "/"
    for i in range(len(parts) + 1):
        if i:
            here = os.path.join(here, parts[i - 1])
        try:
            lst = os.lstat(here)
            st = os.stat(here) if stat.S_ISLNK(lst.st_mode) else lst
        except OSError as exc:
            return f"cannot be checked ({exc.strerror})"
        if stat.S_ISLNK(lst.st_mode) and lst.st_uid not in owners:
            return f"has the link {here} owned by uid {lst.st_uid}"
        if st.st_uid not in owners:
            return f"has {here} owned by uid {st.st_uid}"
        writable = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        if writable and (i == len(parts) or not st.st_mode & stat.S_ISVTX):
            return f"has {here} writable by group or others"
    return None


def _makedirs(path: str, root_owned: bool) -> None:
    missing = []
    probe = path
    while not os.path.isdir(probe):
        missing.append(probe)
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    os.makedirs(path, mode=0o755, exist_ok=True)
    for made in missing:
        os.chmod(made, 0o755)
        if root_owned:
            os.chown(made, 0, 0)


def _points_to_shim(link: str, shim: str) -> bool:
    """True when `link` is a symlink to an imagefit shim (this one, another
    installation's, or a dangling link to one)."""
    if not os.path.islink(link):
        return False
    if os.path.realpath(link) == os.path.realpath(shim):
        return True
    return is_shim(link, None)


def link_runtimes(bindir: str, names: list[str], shim: str, *, force: bool, site: bool) -> None:
    for name in names:
        link = os.path.join(bindir, name)
        note = ""
        if os.path.lexists(link):
            if os.path.islink(link) and os.readlink(link) == shim:
                if site:
                    os.lchown(link, 0, 0)
                print(f"{link} -> {shim} (already there)")
                continue
            if _points_to_shim(link, shim):
                note = f" (replaced a link to {os.readlink(link)})"
            elif not force:
                raise ShimError(
                    f"{link} exists and is not a link to an imagefit shim; use --force to replace it"
                )
        # a new link under a temporary name, renamed over the old one: a
        # `podman` started meanwhile finds the old file or the new link
        tmp = f"{link}.imagefit-{os.getpid()}"
        os.symlink(shim, tmp)
        try:
            if site:
                os.lchown(tmp, 0, 0)
            os.replace(tmp, link)
        except OSError:
            os.unlink(tmp)
            raise
        print(f"{link} -> {shim}{note}")


def unlink_runtimes(bindir: str, names: list[str], shim: str) -> None:
    removed = 0
    for name in names:
        link = os.path.join(bindir, name)
        if not os.path.lexists(link):
            continue
        if _points_to_shim(link, shim):
            os.unlink(link)
            removed += 1
            print(f"removed {link}")
        else:
            print(f"left {link} alone: not a link to an imagefit shim")
    if not removed:
        print(f"no imagefit links in {bindir}")
    _rmdir_if_empty(bindir)


def _rmdir_if_empty(path: str, *, quiet: bool = False) -> None:
    try:
        os.rmdir(path)
    except OSError:
        return
    if not quiet:
        print(f"removed {path} (empty)")


# -- modes -------------------------------------------------------------------
def _bindir(args, environ) -> str:
    if args.user and args.prefix:
        raise UsageError("--user links into $XDG_DATA_HOME/imagefit/bin; drop --prefix (or --user)")
    if args.user and args.site:
        raise UsageError("choose one of --user and --site")
    if args.site and not args.prefix:
        raise UsageError("--site needs --prefix DIR (e.g. --prefix /opt/imagefit)")
    if not (args.user or args.prefix):
        raise UsageError("say where: --user, --prefix DIR, or --site --prefix DIR (as root)")
    prefix = user_prefix(environ) if args.user else os.path.abspath(args.prefix)
    return os.path.join(prefix, "bin")


def run(args, environ=None) -> int:
    """``imagefit install``. Returns the exit status; raises ShimError (125)
    for refusals and file system errors, UsageError (2) for option
    combinations that make no sense."""
    environ = os.environ if environ is None else environ
    try:
        return _run(args, environ)
    except OSError as exc:
        name = exc.filename2 or exc.filename
        where = f"{name}: " if name else ""
        raise ShimError(f"{where}{exc.strerror or exc}") from None


def _run(args, environ) -> int:
    bindir = _bindir(args, environ)
    if args.site and os.geteuid() != 0:
        raise ShimError(
            "--site installs root-owned links and the site config: run it as root "
            "(or use --user for yourself)"
        )
    _check_dir_name(bindir)
    if args.uninstall:
        return _uninstall(args, bindir, environ)
    names = args.runtime or runtimes_found(launcher_path(bindir), environ)
    if not names:
        raise ShimError(
            "no container runtime (" + ", ".join(RUNTIME_NAMES) + ") found on PATH; "
            "name one with --runtime"
        )
    _makedirs(bindir, root_owned=bool(args.site))
    if args.site:
        for directory in (bindir, os.path.dirname(bindir)):
            reason = _root_safe(directory)
            if reason:
                raise ShimError(f"refusing a site install: {reason}")
    fresh = not os.path.lexists(launcher_path(bindir))
    shim = _launcher(bindir, site=bool(args.site))
    try:
        link_runtimes(bindir, names, shim, force=args.force, site=bool(args.site))
    except BaseException:
        if fresh and shim == launcher_path(bindir):  # nothing leads to it: not left behind
            os.unlink(shim)
            _rmdir_if_empty(os.path.dirname(shim), quiet=True)
        raise
    if any(os.path.lexists(os.path.join(bindir, n)) for n in ("python", "python3", "pip")):
        print(
            f"note: {bindir} also holds a python/pip (a virtual environment's bin?): first on "
            "PATH it shadows the users' own; a prefix of its own is better (--prefix /opt/imagefit)"
        )
    if args.site:
        _site_files(args, bindir, environ)
    else:
        _print_path_help(bindir, environ)
    return 0


def _launcher(bindir: str, *, site: bool) -> str:
    """Write the launcher for `bindir`'s links and return it; pip's
    ``imagefit-shim`` script instead where no shebang can name this interpreter. A site
    install refuses an interpreter or a directory another user could change
    (root runs the shim for rootful podman and docker)."""
    from shim.trust import untrusted_reason

    python = os.path.abspath(sys.executable)
    problem = shebang_problem(python)
    if problem:
        script = shim_script()
        print(f"note: no launcher: {problem}; the links lead to {script} (slower to start)")
        if site:
            reason = untrusted_reason(script, 0)
            if reason:
                raise ShimError(f"the shim {script} is not safe to run as root: {reason}")
        return script
    paths = package_paths(python)
    # every directory the launcher imports from (and every directory above
    # it) must be one only root or the installer can change: the launcher
    # runs for everyone who calls the runtime, root included. PYTHONPATH at
    # install time (Spack's modules set it) is kept only under that rule.
    owners = (0,) if site else (0, os.geteuid())
    for path in paths:
        reason = _import_dir_problem(path, owners)
        if reason:
            raise ShimError(
                f"the launcher would import from {path}, which {reason}; install from an "
                "environment whose import paths only root (or you) can change"
            )
    if site:
        # the interpreter, and the directory of the name the shebang uses (a
        # venv's bin/python link)
        reason = untrusted_reason(os.path.realpath(python), 0)
        reason = reason or _root_safe(os.path.dirname(python))
        if reason:
            raise ShimError(f"the shim's Python is not safe to run as root: {reason}")
    path = launcher_path(bindir)
    _makedirs(os.path.dirname(path), root_owned=site)
    if site:
        reason = _root_safe(os.path.dirname(path))
        if reason:
            raise ShimError(f"refusing a site install: {reason}")
    if write_launcher(path, launcher_text(python, paths), site=site):
        print(
            f"wrote {path} (runs {python} {LAUNCHER_FLAGS}: imports from {os.pathsep.join(paths)})"
        )
    return path


def _print_path_help(bindir: str, environ) -> None:
    entries = [e for e in environ.get("PATH", "").split(os.pathsep) if e]
    if entries and os.path.abspath(entries[0]) == bindir:
        print(f"{bindir} is already first on PATH; `imagefit doctor` checks the result")
        return
    line, rc = path_line(bindir, environ.get("SHELL"), environ)
    print(f"put the shim first on PATH: add this line to {rc} (imagefit does not edit it)")
    print(f"  {line}")
    print("then start a new shell (or run the line in this one) and check with `imagefit doctor`")


def _write_new(path: str, text: str, *, exclusive: bool) -> None:
    """Write `text` to `path` as a root-owned 0644 file: only if absent
    (`exclusive`), else atomically replacing it."""
    target = path if exclusive else f"{path}.{os.getpid()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(target, flags, 0o644)
    try:
        os.fchmod(fd, 0o644)
        os.fchown(fd, 0, 0)
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    if not exclusive:
        os.replace(target, path)


def _site_files(args, bindir: str, environ) -> None:
    config = site_config_path(environ)
    if os.path.lexists(config):
        print(f"{config} exists: left as it is")
    else:
        _makedirs(os.path.dirname(config), root_owned=True)
        _write_new(config, SITE_CONFIG_SKELETON, exclusive=True)
        print(f"wrote {config} (every key commented out, with its default)")
    profile_dir = os.path.join(os.path.dirname(bindir), "etc", "profile.d")
    profile = os.path.join(profile_dir, "imagefit.sh")
    if os.path.lexists(profile) and not _is_our_profile(profile) and not args.force:
        raise ShimError(
            f"{profile} exists and was not written by imagefit; use --force to replace it"
        )
    _makedirs(profile_dir, root_owned=True)
    _write_new(profile, profile_snippet(bindir), exclusive=False)
    print(f"wrote {profile}")
    print("put the shim first on every user's PATH (sh, bash, zsh login shells):")
    print(f"  ln -s {shlex.quote(profile)} /etc/profile.d/imagefit.sh")
    print(f'csh/tcsh users: setenv PATH "{bindir}:$PATH" (e.g. in /etc/csh.login), or a module')


def _remove_launcher(launcher: str, bindir: str) -> None:
    """Remove the launcher imagefit wrote when no link in `bindir` leads to it
    any more, then ``libexec`` if empty."""
    if not os.path.lexists(launcher):
        return
    if not is_our_launcher(launcher):
        print(f"left {launcher} alone: not written by imagefit")
        return
    real = os.path.realpath(launcher)
    for name in RUNTIME_NAMES:
        link = os.path.join(bindir, name)
        if os.path.islink(link) and os.path.realpath(link) == real:
            return  # still used
    os.unlink(launcher)
    print(f"removed {launcher}")
    _rmdir_if_empty(os.path.dirname(launcher))


def _is_our_profile(path: str) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read(len(PROFILE_MARK)) == PROFILE_MARK
    except OSError:
        return False


def _uninstall(args, bindir: str, environ) -> int:
    names = args.runtime or list(RUNTIME_NAMES)
    launcher = launcher_path(bindir)
    if os.path.isdir(bindir):
        unlink_runtimes(bindir, names, launcher)
    else:
        print(f"{bindir} does not exist: nothing to remove")
    _remove_launcher(launcher, bindir)
    if args.site:
        prefix = os.path.dirname(bindir)
        profile_dir = os.path.join(prefix, "etc", "profile.d")
        profile = os.path.join(profile_dir, "imagefit.sh")
        if os.path.lexists(profile):
            if _is_our_profile(profile):
                os.unlink(profile)
                print(f"removed {profile} (remove your link to it in /etc/profile.d)")
            else:
                print(f"left {profile} alone: not written by imagefit")
        _rmdir_if_empty(profile_dir)
        _rmdir_if_empty(os.path.join(prefix, "etc"))
        config = site_config_path(environ)
        if os.path.lexists(config):
            print(f"left {config} in place (remove it yourself if it is no longer wanted)")
    else:
        _, rc = path_line(bindir, environ.get("SHELL"), environ)
        print(f"remove the PATH line for {bindir} from {rc} if you added it")
    return 0
