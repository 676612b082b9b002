"""apptainer's and SingularityCE's option grammar, as pure data.

Both are cobra + spf13/pflag programs built on the same ``pkg/cmdline``
flag manager (apptainer is the Linux Foundation fork of Singularity 3.8;
SingularityCE is Sylabs' continuation), so one table serves ``apptainer``,
the ``singularity`` compatibility link apptainer installs, and SingularityCE's
``singularity``. Only one property of each flag matters here: whether it
consumes the next argv element. pkg/cmdline registers every flag with a plain
``Flags().<Type>Var[P]`` (string, stringSlice, stringArray, stringToString,
int, uint32, bool) and never sets ``NoOptDefVal``: a bool takes no value
(only ``--name=false``), every other flag takes ``--name v``, ``--name=v``,
``-n v``, ``-nv`` or ``-n=v``. There is no optional-value flag.

Every set holds flag spellings without dashes: long names, and one-letter
strings for short flags. Hidden and deprecated flags are included (they still
parse). The sets are the union over apptainer 1.0 .. 1.4.x and SingularityCE
3.9 .. 4.x, so a command line valid for any of them tokenizes the same way;
no flag is a bool in one of them and takes a value in another. A flag one
version lacks only makes that version reject the command line, which the
runtime then reports itself.

The levels of the grammar
-------------------------
``apptainer [GLOBAL] VERB [VERB-FLAGS] IMAGE [ARGS...]``

1. Global flags (``GLOBAL_*``): registered with ``RegisterFlagForCmd`` on the
   root command, i.e. on ``apptainerCmd.Flags()`` -- local, NOT persistent.
   They are accepted only before the command word: ``apptainer exec -d img``
   is "unknown shorthand flag: 'd'" (checked with apptainer 1.4.5).
   Flags defined next to them in apptainer.go (``-F/--force``,
   ``--no-https``, ``--docker-login``, ``--docker-host``,
   ``--passphrase``, ``--pem-path``, ``--tmpdir``...) are *not* global: each
   command registers the ones it wants.
2. Command flags. ``CommandManager.RegisterCmd`` / ``RegisterSubCmd``
   (pkg/cmdline/cmd.go) call ``cmd.Flags().SetInterspersed(false)`` on every
   command, and Init() does the same on the root's Flags and PersistentFlags:
   the first positional ends option parsing everywhere. For
   exec/run/shell/test/inspect/run-help/instance start/instance run the first
   positional is the image and everything after it belongs to the container.
   ``pull [opts] [output file] <URI>`` takes 1 or 2 positionals
   (``cobra.RangeArgs(1, 2)``) and pulls ``args[len(args)-1]``: the URI is the
   *last* positional, and no flag may follow the first positional.
   ``build [opts] <IMAGE PATH> <BUILD SPEC>`` (``ExactArgs(2)``): the spec,
   which may be a ``docker://`` URI, is the second positional.

Root-level parsing quirks (cobra ``Command.Traverse``; the root has
``TraverseChildren: true``). Traverse walks the words before the command to
find it, guessing which flags take a value, and is cruder than pflag:

* a bare ``--`` before the command is taken as a long flag with an empty
  name that takes a value, so it swallows the command word:
  ``apptainer -- exec img`` fails ("invalid command"). Do not insert one.
* a bundle of short flags whose last letter takes a value is not seen as
  taking the next word: ``apptainer -qc FILE exec img`` fails (FILE is taken
  as the command word), while ``-q -c FILE``, ``-qcFILE`` and ``-c=FILE``
  work. (All checked with apptainer 1.4.5.)

Help: cobra adds ``-h/--help`` (bool) to every command, as no apptainer
command uses ``h`` for anything else (``inspect -H`` is ``--helpfile``);
``--version`` (bool, no shorthand: ``-v`` is ``--verbose``) exists only at the
root.

Short-flag collisions (documented where they occur below):

* ``-s``: ``--silent`` (bool) globally; ``--shell PATH`` (value) in
  ``shell``; ``--sandbox`` (bool) in ``build``.
* ``-c``: ``--config FILE`` (value) globally; ``--contain`` (bool) in the
  action and instance commands.
* ``-d``: ``--debug`` (bool) globally; ``--detached`` (bool) in
  SingularityCE's ``build``.
* ``-u``: ``--userns`` in actions, ``--update`` in build (both bool).
* ``-e``: ``--cleanenv`` in actions, ``--encrypt`` in build (both bool).

Environment: before running a command, ``PersistentPreRunE`` walks the root's
and the command's flags and, for each flag not given on the command line,
reads ``<PREFIX><KEY>`` for each of the flag's ``EnvKeys``
(``updateCmdFlagFromEnv`` in pkg/cmdline/flag.go; the prefixes are
``env.ApptainerPrefixes`` = APPTAINER_ then SINGULARITY_, the first one found
winning; SingularityCE reads SINGULARITY_ only). So options can be in force
without appearing in argv: see ``ENV_KEYS`` and ``ENV_OPTIONS``.

Sources read (search index of public repositories):

- apptainer/apptainer:cmd/internal/cli/apptainer.go @7a5a4012 (root flags:
  ``singDebugFlag``.. ``singBuildConfigFlag``; the shared flag definitions
  ``dockerUsernameFlag`` .. ``commonTmpDirFlag``; ``Init``:
  ``SetInterspersed(false)``, ``TraverseChildren: true``) and the older
  revision @041f3b82 (no ``--build-config``, no ``--docker-host``).
- apptainer/apptainer:cmd/internal/cli/action_flags.go @df5d92b5 (every
  action flag with its EnvKeys; registration on ``actions`` =
  exec/shell/run/test vs ``actions_instance`` = those + instance start/run;
  ``--shell`` and ``--syos`` on ShellCmd only; ``--vm*`` on actions only).
- apptainer/apptainer:cmd/internal/cli/pull.go @8ea66fc6 (pull flags,
  ``RangeArgs(1, 2)``, ``pullFrom := args[len(args)-1]``).
- apptainer/apptainer:pkg/cmdline/cmd.go @16908a7e (``RegisterCmd`` /
  ``RegisterSubCmd`` set ``SetInterspersed(false)``), pkg/cmdline/flag.go
  @1cfe1697 (flag types, ``updateCmdFlagFromEnv``), pkg/cmdline/env.go
  @22523aea (``EnvSetValue``/``EnvAppendValue``),
  internal/pkg/util/env/env.go @da74c7a6 (``ApptainerPrefixes``).
- apptainer/apptainer:internal/pkg/util/uri/uri.go @c7183cde (``validURIs``,
  ``Split``) and CHANGELOG.md @cb71bcf1 (1.1.x: DOCKER_USERNAME/PASSWORD
  accepted without prefix, ``--nohttps`` deprecated, ``--nonet`` removed).
- sylabs/singularity:cmd/internal/cli/action_flags.go, 4.x revision
  (copyright 2018-2024; the index gave no commit for it): adds ``--data``,
  ``--device``, ``--cdi-dirs``, ``--netns-path``, ``--no-pid``,
  ``--no-compat``, ``--no-setgroups``, ``--sif-fuse``, hidden ``--proot``,
  ``--oci``/``--no-oci``, ``--keep-layers``, ``--tmp-sandbox``/
  ``--no-tmp-sandbox``, ``--authfile``; ``--cwd`` with ``--pwd`` hidden.
  The 3.x revision @41befa96 (``--vm*``, ``--syos``).
- sylabs/singularity:cmd/internal/cli/pull.go and build.go, 4.x revisions
  (copyright 2018-2023; no commit given): pull adds ``--oci``, ``--no-oci``,
  ``--keep-layers``, ``--arch``, ``--platform``; build adds ``-r/--remote``,
  ``-d/--detached``, ``--builder``, ``--no-setgroups``.
- sylabs/singularity:cmd/internal/cli/singularity.go @5c3dcbb5 (3.x root
  flags, ``envPrefix = "SINGULARITY_"``), instance_start_linux.go @c6088cf0
  (``--pid-file``), internal/pkg/util/uri/uri.go @4cb98c1c.
- Release notes in the docs corpus: SingularityCE 4.0.0/4.1.0 (``--oci``,
  ``--no-tmp-sandbox``, ``--keep-layers``, ``--authfile``, ``--device``).
- Cross-checked by running apptainer 1.4.5 (Debian sid package
  apptainer_1.4.5-2, run from an unpacked .deb): every flag printed by
  ``--help`` of the root, exec, run, shell, test, instance start, instance
  run, pull, build, inspect and run-help is here with the same kind (bools
  print no type word); every hidden name above that 1.4.5 knows was probed
  (``apptainer CMD --FLAG --help``: a bool prints help, a value flag swallows
  ``--help``), as was every letter a-zA-Z as a short flag; every EnvKey in
  ``ENV_KEYS`` was confirmed by setting ``APPTAINER_<KEY>`` and reading the
  ``Updated flag 'NAME'`` debug line (except ``DEBUG``, whose flag the probe
  itself set). The binaries of SingularityCE and older apptainer were not
  available; their extra entries come from the sources above only.

Standard library only; no imports.
"""

# --------------------------------------------------------------------------
# 1. Global flags: root-local, only before the command word.
# --------------------------------------------------------------------------

GLOBAL_VALUE: frozenset[str] = frozenset(
    {
        "c",  # --config (in exec/run/shell/test/instance, -c is --contain, a bool)
        "config",  # EnvKeys CONFIG_FILE; needs root or an unprivileged install
    }
)

GLOBAL_BOOL: frozenset[str] = frozenset(
    {
        "build-config",  # newer apptainer (seen in 1.4.5; not in @041f3b82 nor SingularityCE)
        "d",  # --debug (SingularityCE build: -d is --detached, also a bool)
        "debug",
        "h",  # cobra's help flag
        "help",
        "nocolor",
        "q",  # --quiet
        "quiet",
        "s",  # --silent (in `shell`, -s is --shell PATH; in `build`, --sandbox)
        "silent",
        "v",  # --verbose (so --version has no shorthand)
        "verbose",
        "version",  # cobra's version flag, root only
    }
)

# --------------------------------------------------------------------------
# 2. Action commands: exec, run, shell, test (and, minus a few, instance
#    start/run). SetInterspersed(false): the first positional is IMAGE.
# --------------------------------------------------------------------------

# Flags registered on all four of exec/run/shell/test.
ACTION_VALUE: frozenset[str] = frozenset(
    {
        "B",  # --bind
        "H",  # --home
        "S",  # --scratch
        "W",  # --workdir
        "add-caps",
        "app",
        "apply-cgroups",
        "authfile",  # newer apptainer (seen in 1.4.5), SingularityCE >= 4.1
        "bind",
        "blkio-weight",  # int
        "blkio-weight-device",
        "cdi-dirs",  # SingularityCE 4.x (exec/run/shell only)
        "containlibs",  # hidden (APPTAINER_CONTAINLIBS)
        "cpu-shares",  # int
        "cpus",
        "cpuset-cpus",
        "cpuset-mems",
        "cwd",  # seen in apptainer 1.4.5 and SingularityCE 4.x; exec/run/shell/test only
        "data",  # SingularityCE 4.x data containers
        "device",  # SingularityCE 4.x CDI devices (exec/run/shell/test only)
        "dns",
        "docker-host",  # apptainer after 1.1.3 (CHANGELOG: DOCKER_HOST for docker-daemon:)
        "docker-password",  # hidden
        "docker-username",  # hidden
        "drop-caps",
        "env",  # stringToString
        "env-file",
        "fusemount",
        "home",
        "hostname",
        "memory",
        "memory-reservation",
        "memory-swap",
        "mount",
        "netns-path",  # seen in apptainer 1.4.5 and SingularityCE 4.x
        "network",
        "network-args",
        "no-mount",  # takes a list (not a bool despite the name)
        "o",  # --overlay
        "overlay",
        "pem-path",
        "pids-limit",  # int
        "proot",  # SingularityCE, hidden (exec/run/shell/test only)
        "pwd",  # hidden once --cwd exists (its synonym); exec/run/shell/test only
        "scratch",
        "security",
        "tmpdir",  # hidden (APPTAINER_TMPDIR)
        "vm-cpu",  # Singularity 3.x / apptainer 1.0 (exec/run/shell/test only)
        "vm-ip",  # idem
        "vm-ram",  # idem
        "workdir",
    }
)

ACTION_BOOL: frozenset[str] = frozenset(
    {
        "C",  # --containall
        "allow-setuid",
        "c",  # --contain (globally, -c is --config FILE)
        "cleanenv",
        "compat",
        "contain",
        "containall",
        "disable-cache",
        "docker-login",
        "e",  # --cleanenv
        "f",  # --fakeroot
        "fakeroot",
        "h",  # cobra's help flag
        "help",
        "i",  # --ipc
        "ignore-fakeroot-command",  # hidden, apptainer >= 1.1
        "ignore-subuid",  # hidden, apptainer >= 1.1
        "ignore-userns",  # hidden, apptainer >= 1.1
        "ipc",
        "keep-layers",  # SingularityCE >= 4.1
        "keep-privs",
        "n",  # --net
        "net",
        "no-compat",  # SingularityCE 4.x
        "no-eval",
        "no-home",
        "no-https",
        "no-init",
        "no-nv",  # hidden
        "no-oci",  # SingularityCE 4.x
        "no-pid",  # seen in apptainer 1.4.5 and SingularityCE 4.x; exec/run/shell/test only
        "no-privs",
        "no-rocm",  # hidden
        "no-setgroups",  # SingularityCE 4.x
        "no-tmp-sandbox",  # SingularityCE 4.x
        "no-umask",
        "nohttps",  # deprecated spelling of --no-https
        "nonet",  # Singularity 3.x VM flag, removed before apptainer 1.0
        "nv",
        "nvccli",
        "oci",  # SingularityCE >= 3.11 (OCI mode)
        "oom-kill-disable",
        "p",  # --pid (exec/run/shell/test only)
        "passphrase",
        "pid",  # exec/run/shell/test only
        "rocm",
        "sharens",  # seen in apptainer 1.4.5; exec/run/shell/test only
        "sif-fuse",  # SingularityCE 3.11+, deprecated in 4.x (exec/run/shell/test only)
        "tmp-sandbox",  # SingularityCE 4.x
        "u",  # --userns
        "underlay",  # hidden in 1.4.5, apptainer >= 1.1
        "unsquash",  # apptainer >= 1.1
        "userns",
        "uts",
        "vm",  # Singularity 3.x / apptainer 1.0 (exec/run/shell/test only)
        "vm-err",  # idem
        "w",  # --writable
        "writable",
        "writable-tmpfs",
    }
)

# `shell` alone: -s/--shell PATH (EnvKeys SHELL, i.e. APPTAINER_SHELL is read
# by `shell` only) and the old SyOS shell switch.
SHELL_ONLY_VALUE: frozenset[str] = frozenset({"s", "shell"})
SHELL_ONLY_BOOL: frozenset[str] = frozenset({"syos"})  # Singularity 3.x / apptainer 1.0

# `run` (and `instance run`) alone: apptainer 1.4.
RUN_ONLY_VALUE: frozenset[str] = frozenset({"runscript-timeout"})

EXEC_VALUE: frozenset[str] = ACTION_VALUE
EXEC_BOOL: frozenset[str] = ACTION_BOOL
TEST_VALUE: frozenset[str] = ACTION_VALUE
TEST_BOOL: frozenset[str] = ACTION_BOOL
RUN_VALUE: frozenset[str] = ACTION_VALUE | RUN_ONLY_VALUE
RUN_BOOL: frozenset[str] = ACTION_BOOL
SHELL_VALUE: frozenset[str] = ACTION_VALUE | SHELL_ONLY_VALUE
SHELL_BOOL: frozenset[str] = ACTION_BOOL | SHELL_ONLY_BOOL

# --------------------------------------------------------------------------
# 3. instance start / instance run: <image> <instance name> [args...].
# --------------------------------------------------------------------------

# Registered on actionsCmd (exec/run/shell/test) but not on the instance
# commands.
_ACTIONS_NOT_INSTANCE_VALUE: frozenset[str] = frozenset(
    {"cdi-dirs", "cwd", "device", "proot", "pwd", "vm-cpu", "vm-ip", "vm-ram"}
)
_ACTIONS_NOT_INSTANCE_BOOL: frozenset[str] = frozenset(
    {"no-pid", "nonet", "p", "pid", "sharens", "sif-fuse", "vm", "vm-err"}
)

INSTANCE_START_VALUE: frozenset[str] = (ACTION_VALUE - _ACTIONS_NOT_INSTANCE_VALUE) | frozenset(
    {
        "dmtcp-launch",  # apptainer >= 1.1 (checkpointing), instance commands only
        "dmtcp-restart",  # idem
        "pid-file",
    }
)
INSTANCE_START_BOOL: frozenset[str] = (ACTION_BOOL - _ACTIONS_NOT_INSTANCE_BOOL) | frozenset(
    {
        "boot",  # instance commands only
    }
)
INSTANCE_RUN_VALUE: frozenset[str] = INSTANCE_START_VALUE | RUN_ONLY_VALUE  # apptainer 1.4
INSTANCE_RUN_BOOL: frozenset[str] = INSTANCE_START_BOOL

# --------------------------------------------------------------------------
# 4. pull [output file] <URI>: the URI is the last positional.
# --------------------------------------------------------------------------

PULL_VALUE: frozenset[str] = frozenset(
    {
        "arch",  # APPTAINER_PULL_ARCH
        "arch-variant",  # apptainer
        "authfile",
        "dir",  # APPTAINER_PULLDIR / PULLFOLDER
        "docker-host",
        "docker-password",  # hidden
        "docker-username",  # hidden
        "library",
        "name",  # hidden: output file name (APPTAINER_PULL_NAME)
        "platform",  # SingularityCE 4.x
        "tmpdir",  # hidden
    }
)

PULL_BOOL: frozenset[str] = frozenset(
    {
        "F",  # --force
        "U",  # --allow-unsigned (deprecated, still parsed)
        "allow-unauthenticated",  # hidden
        "allow-unsigned",
        "disable-cache",
        "docker-login",
        "force",
        "h",
        "help",
        "keep-layers",  # SingularityCE >= 4.1
        "no-cleanup",
        "no-https",
        "no-oci",  # SingularityCE 4.x
        "nohttps",  # Singularity 3.x name of --no-https (apptainer 1.4.5 pull rejects it)
        "oci",  # SingularityCE >= 3.11
        "sandbox",  # apptainer (no short form on pull)
    }
)

# --------------------------------------------------------------------------
# 5. build <IMAGE PATH> <BUILD SPEC>: the spec is the second positional.
# --------------------------------------------------------------------------

BUILD_VALUE: frozenset[str] = frozenset(
    {
        "B",  # --bind
        "arch",  # APPTAINER_BUILD_ARCH
        "arch-variant",
        "authfile",
        "bind",
        "build-arg",
        "build-arg-file",
        "builder",  # SingularityCE remote build service
        "docker-host",
        "docker-password",  # hidden
        "docker-username",  # hidden
        "library",
        "mksquashfs-args",
        "mount",
        "pem-path",
        "platform",  # SingularityCE 4.x OCI builds
        "section",
        "tmpdir",  # hidden
    }
)

BUILD_BOOL: frozenset[str] = frozenset(
    {
        "F",  # --force
        "T",  # --notest
        "d",  # --detached (SingularityCE; globally -d is --debug)
        "detached",  # SingularityCE
        "disable-cache",
        "docker-login",
        "e",  # --encrypt (in actions, -e is --cleanenv)
        "encrypt",
        "f",  # --fakeroot
        "fakeroot",
        "fix-perms",
        "force",
        "h",
        "help",
        "ignore-fakeroot-command",  # hidden
        "ignore-subuid",  # hidden
        "ignore-userns",  # hidden
        "json",
        "keep-layers",  # SingularityCE
        "no-cleanup",
        "no-https",
        "no-oci",  # SingularityCE
        "no-setgroups",  # SingularityCE
        "nohttps",
        "notest",
        "nv",
        "nvccli",
        "oci",  # SingularityCE
        "passphrase",
        "r",  # --remote (SingularityCE)
        "remote",  # SingularityCE; hidden no-op kept by apptainer 1.4.5
        "rocm",
        "s",  # --sandbox (globally -s is --silent)
        "sandbox",
        "u",  # --update
        "update",
        "userns",
        "warn-unused-build-args",
        "writable-tmpfs",
    }
)

# --------------------------------------------------------------------------
# 6. inspect / run-help: <image>.
# --------------------------------------------------------------------------

INSPECT_VALUE: frozenset[str] = frozenset({"app"})
INSPECT_BOOL: frozenset[str] = frozenset(
    {
        "H",  # --helpfile (not --home)
        "all",
        "d",  # --deffile
        "deffile",
        "e",  # --environment
        "environment",
        "h",
        "help",
        "helpfile",
        "j",  # --json
        "json",
        "l",  # --labels
        "labels",
        "list-apps",
        "r",  # --runscript
        "runscript",
        "s",  # --startscript
        "startscript",
        "t",  # --test
        "test",
    }
)
RUN_HELP_VALUE: frozenset[str] = frozenset({"app"})
RUN_HELP_BOOL: frozenset[str] = frozenset({"h", "help"})

# pkg/cmdline never sets NoOptDefVal: no flag takes its value only after "=".
OPTIONAL_VALUE: frozenset[str] = frozenset()

# --------------------------------------------------------------------------
# 7. Command words.
# --------------------------------------------------------------------------

# Top-level command words (apptainer 1.4.5 `--help`, plus SingularityCE and
# older spellings). No cobra Aliases are set on any of them, and cobra prefix
# matching is off (`apptainer exe` is "invalid command").
SUBCOMMANDS: frozenset[str] = frozenset(
    {
        "build",
        "cache",
        "capability",
        "checkpoint",  # apptainer >= 1.1
        "completion",
        "config",
        "data",  # SingularityCE 4.x
        "delete",
        "exec",
        "help",
        "inspect",
        "instance",  # group: list, run (apptainer 1.4), start, stats, stop
        "key",
        "keyserver",
        "oci",  # group: attach, create, delete, exec, kill, mount, pause, resume,
        #         run, start, state, umount, update -- all take a bundle or a
        #         container ID, never an image
        "overlay",
        "plugin",
        "pull",
        "push",
        "registry",
        "remote",
        "run",
        "run-help",
        "search",
        "shell",
        "sif",
        "siftool",  # Singularity 3.x name of `sif`
        "sign",
        "tag",  # apptainer development branch (tag.go)
        "test",
        "verify",
        "version",
    }
)

# Command paths that take an image operand, mapped to the verb name.
IMAGE_COMMANDS: dict[tuple[str, ...], str] = {
    ("build",): "build",
    ("exec",): "exec",
    ("inspect",): "inspect",
    ("instance", "run"): "instance run",
    ("instance", "start"): "instance start",
    ("pull",): "pull",
    ("run",): "run",
    ("run-help",): "run-help",
    ("shell",): "shell",
    ("test",): "test",
}

# Index of the image among the verb's positionals (-1: the last one).
IMAGE_POSITION: dict[str, int] = {
    "build": 1,  # <IMAGE PATH> <BUILD SPEC>: the spec
    "exec": 0,
    "inspect": 0,
    "instance run": 0,  # <image> <instance name> [args]
    "instance start": 0,
    "pull": -1,  # [output file] <URI>
    "run": 0,
    "run-help": 0,
    "shell": 0,
    "test": 0,
}

# Per-verb flag sets, for a scanner that looks a verb up by name.
VERB_FLAGS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "build": (BUILD_VALUE, BUILD_BOOL),
    "exec": (EXEC_VALUE, EXEC_BOOL),
    "inspect": (INSPECT_VALUE, INSPECT_BOOL),
    "instance run": (INSTANCE_RUN_VALUE, INSTANCE_RUN_BOOL),
    "instance start": (INSTANCE_START_VALUE, INSTANCE_START_BOOL),
    "pull": (PULL_VALUE, PULL_BOOL),
    "run": (RUN_VALUE, RUN_BOOL),
    "run-help": (RUN_HELP_VALUE, RUN_HELP_BOOL),
    "shell": (SHELL_VALUE, SHELL_BOOL),
    "test": (TEST_VALUE, TEST_BOOL),
}

# --------------------------------------------------------------------------
# 8. Image URIs (internal/pkg/util/uri/uri.go Split).
# --------------------------------------------------------------------------

# Split(uri): no ":" -> a path; "scheme://..." -> a transport whatever the
# scheme; "scheme:ref" -> a transport only for the schemes in validURIs;
# anything else (e.g. "ubuntu:18.04.img") is a file path. Local images are
# SIF / squashfs / ext3 files or sandbox directories.
TRANSPORTS: dict[str, str] = {
    "buildkit": "build source, apptainer development branch (validURIs)",
    "docker": "registry image via containers/image (docker://REF)",
    "docker-archive": "docker save tarball on disk",
    "docker-daemon": "image in a local Docker daemon (DOCKER_HOST / --docker-host)",
    "dockerfile": "build source, apptainer development branch (validURIs)",
    "http": "direct download of an image file",
    "https": "direct download of an image file",
    "instance": "a running instance (instance://NAME); exec/run/shell/test only",
    "ipfs": "SIF from an IPFS gateway (apptainer >= 1.3; ipfs://CID)",
    "library": "Sylabs-style library (library://[host/]path[:tag])",
    "oci": "OCI layout directory on disk",
    "oci-archive": "OCI layout tarball on disk",
    "oras": "SIF stored as an OCI artifact (oras://REF)",
    "shub": "Singularity Hub (retired service)",
}

# Schemes that Split accepts without "//" (validURIs); the others need "://".
COLON_FORM_TRANSPORTS: frozenset[str] = frozenset(
    {
        "buildkit",  # apptainer development branch only
        "docker",
        "docker-archive",
        "docker-daemon",
        "dockerfile",  # apptainer development branch only
        "http",
        "https",
        "library",
        "oci",
        "oci-archive",
        "oras",
        "shub",
    }
)

# The only transports whose reference names a registry image the shim may
# pin to a digest: docker:// (containers/image; rejects tag+digest together)
# and oras:// (go-containerregistry; the digest is the ORAS artifact's).
REWRITABLE_TRANSPORTS: frozenset[str] = frozenset({"docker", "oras"})

# --------------------------------------------------------------------------
# 9. Environment.
# --------------------------------------------------------------------------

# apptainer reads APPTAINER_<KEY> then SINGULARITY_<KEY> (APPTAINER_ wins and
# a differing SINGULARITY_ value only draws a warning); SingularityCE reads
# SINGULARITY_<KEY> only. A value set on the command line wins over both.
ENV_PREFIXES: tuple[str, ...] = ("APPTAINER_", "SINGULARITY_")

# Passed into the container rather than read as options.
CONTAINER_ENV_PREFIXES: tuple[str, ...] = ("APPTAINERENV_", "SINGULARITYENV_")

# Read *without* a prefix (Flag.WithoutPrefix, apptainer >= 1.1.4): plain
# DOCKER_USERNAME / DOCKER_PASSWORD / DOCKER_HOST set these flags for every
# command that has them. Credentials: never log their values.
ENV_UNPREFIXED: dict[str, str] = {
    "DOCKER_HOST": "docker-host",
    "DOCKER_PASSWORD": "docker-password",
    "DOCKER_USERNAME": "docker-username",
}

# EnvKeys (without prefix) -> the flag they set. Confirmed against apptainer
# 1.4.5 unless marked; the flag exists only on the commands listed with it
# above (e.g. SHELL only affects `shell`, PULL_* only `pull`).
ENV_KEYS: dict[str, str] = {
    "ADD_CAPS": "add-caps",
    "ALLOW_SETUID": "allow-setuid",
    "ALLOW_UNAUTHENTICATED": "allow-unauthenticated",
    "ALLOW_UNSIGNED": "allow-unsigned",
    "APP": "app",
    "APPLY_CGROUPS": "apply-cgroups",
    "APPNAME": "app",
    "BIND": "bind",  # appended to --bind, not replaced by it
    "BINDPATH": "bind",  # idem
    "BLKIO_WEIGHT": "blkio-weight",
    "BLKIO_WEIGHT_DEVICE": "blkio-weight-device",
    "BOOT": "boot",
    "BUILD_ARCH": "arch",  # build
    "CLEANENV": "cleanenv",
    "COMPAT": "compat",
    "CONFIG_FILE": "config",
    "CONTAIN": "contain",
    "CONTAINALL": "containall",
    "CONTAINLIBS": "containlibs",
    "CPUSET_CPUS": "cpuset-cpus",
    "CPUSET_MEMS": "cpuset-mems",
    "CPU_SHARES": "cpu-shares",  # also (a source bug) sets --cpus
    "CWD": "cwd",
    "DEBUG": "debug",  # apptainer >= 1.1 (from source; not probed)
    "DISABLE_CACHE": "disable-cache",
    "DMTCP_LAUNCH": "dmtcp-launch",
    "DMTCP_RESTART": "dmtcp-restart",
    "DNS": "dns",
    "DOCKER_HOST": "docker-host",
    "DOCKER_LOGIN": "docker-login",
    "DOCKER_PASSWORD": "docker-password",
    "DOCKER_USERNAME": "docker-username",
    "DROP_CAPS": "drop-caps",
    "ENV_FILE": "env-file",
    "FAKEROOT": "fakeroot",
    "FIXPERMS": "fix-perms",
    "FORCE": "force",
    "FUSESPEC": "fusemount",
    "HOME": "home",
    "HOSTNAME": "hostname",
    "IGNORE_FAKEROOT_COMMAND": "ignore-fakeroot-command",
    "IGNORE_SUBUID": "ignore-subuid",
    "IGNORE_USERNS": "ignore-userns",
    "IPC": "ipc",
    "JSON": "json",
    "KEEP_PRIVS": "keep-privs",
    "LIBRARY": "library",
    "MEMORY": "memory",
    "MEMORY_RESERVATION": "memory-reservation",
    "MEMORY_SWAP": "memory-swap",
    "MKSQUASHFS_ARGS": "mksquashfs-args",
    "MOUNT": "mount",  # appended
    "NET": "net",
    "NETNS_PATH": "netns-path",
    "NETWORK": "network",
    "NETWORK_ARGS": "network-args",
    "NOCOLOR": "nocolor",
    "NOHTTPS": "no-https",
    "NOSHIMINIT": "no-init",
    "NOTEST": "notest",
    "NO_CLEANUP": "no-cleanup",
    "NO_COMPAT": "no-compat",  # SingularityCE (source)
    "NO_EVAL": "no-eval",
    "NO_HOME": "no-home",
    "NO_HTTPS": "no-https",
    "NO_MOUNT": "no-mount",
    "NO_NV": "no-nv",
    "NO_PID": "no-pid",
    "NO_PRIVS": "no-privs",
    "NO_ROCM": "no-rocm",
    "NO_SETGROUPS": "no-setgroups",  # SingularityCE (source)
    "NO_UMASK": "no-umask",
    "NV": "nv",
    "NVCCLI": "nvccli",
    "NV_OFF": "no-nv",
    "OOM_KILL_DISABLE": "oom-kill-disable",
    "OVERLAY": "overlay",
    "OVERLAYIMAGE": "overlay",
    "PID": "pid",
    "PIDS_LIMIT": "pids-limit",
    "PID_FILE": "pid-file",
    "PROOT": "proot",  # SingularityCE (source)
    "PULLDIR": "dir",
    "PULLFOLDER": "dir",
    "PULL_ARCH": "arch",  # pull
    "PULL_ARCH_VARIANT": "arch-variant",
    "PULL_NAME": "name",
    "PWD": "pwd",
    "QUIET": "quiet",
    "ROCM": "rocm",
    "ROCM_OFF": "no-rocm",
    "RUNSCRIPT_TIMEOUT": "runscript-timeout",
    "SANDBOX": "sandbox",
    "SCRATCH": "scratch",
    "SCRATCHDIR": "scratch",
    "SECTION": "section",
    "SECURITY": "security",
    "SHARENS": "sharens",
    "SHELL": "shell",
    "SIF_FUSE": "sif-fuse",  # SingularityCE (source)
    "SILENT": "silent",
    "SYOS": "syos",  # old (source)
    "TARGET_CWD": "cwd",
    "TARGET_PWD": "pwd",
    "TMPDIR": "tmpdir",
    "UNDERLAY": "underlay",
    "UNSHARE_IPC": "ipc",
    "UNSHARE_NET": "net",
    "UNSHARE_PID": "pid",
    "UNSHARE_USERNS": "userns",
    "UNSHARE_UTS": "uts",
    "UNSQUASH": "unsquash",
    "UPDATE": "update",
    "USERNS": "userns",
    "UTS": "uts",
    "VERBOSE": "verbose",
    "VM": "vm",  # old (source)
    "VMERROR": "vm-err",  # old (source)
    "VM_CPU": "vm-cpu",  # old (source)
    "VM_IP": "vm-ip",  # old (source)
    "VM_RAM": "vm-ram",  # old (source)
    "WORKDIR": "workdir",
    "WRITABLE": "writable",
    "WRITABLE_TMPFS": "writable-tmpfs",
}

# The EnvKeys (without prefix) that change what the shim must know or do.
ENV_OPTIONS: dict[str, str] = {
    "APP": "runs an app's runscript instead of the image's",
    "APPNAME": "idem",
    "BIND": "extra bind mounts (appended to --bind)",
    "BINDPATH": "idem",
    "CLEANENV": "host environment not passed in",
    "COMPAT": "OCI-like defaults (--containall --no-init --no-umask --no-eval --writable-tmpfs)",
    "CONFIG_FILE": "another apptainer.conf",
    "CONTAIN": "empty /tmp and $HOME instead of host ones",
    "CONTAINALL": "contain files, PID, IPC and environment",
    "CWD": "initial working directory in the container",
    "DISABLE_CACHE": "docker:// / oras:// blobs not cached; pull/build/actions",
    "DOCKER_HOST": "docker-daemon: endpoint (also read unprefixed)",
    "DOCKER_LOGIN": "interactive registry login prompt",
    "DOCKER_PASSWORD": "registry credential -- never log (also read unprefixed)",
    "DOCKER_USERNAME": "registry credential -- never log (also read unprefixed)",
    "ENV_FILE": "environment file injected into the container",
    "FAKEROOT": "runs as uid 0 in a user namespace",
    "FORCE": "pull/build overwrite the output file",
    "HOME": "home directory spec (src[:dest])",
    "LIBRARY": "library:// endpoint",
    "MOUNT": "extra --mount specs (appended)",
    "NOHTTPS": "plain HTTP to registries for docker:// oras:// library://host/",
    "NO_EVAL": "env vars and OCI CMD/ENTRYPOINT not shell-evaluated",
    "NO_HOME": "home not mounted",
    "NO_HTTPS": "idem (newer spelling)",
    "NO_MOUNT": "disables configured mounts",
    "NV": "NVIDIA libraries bound in",
    "NVCCLI": "nvidia-container-cli GPU setup",
    "PULLDIR": "pull output directory",
    "PULLFOLDER": "idem",
    "PULL_ARCH": "pull architecture",
    "PULL_ARCH_VARIANT": "pull architecture variant",
    "PULL_NAME": "pull output file name",
    "PWD": "initial working directory in the container",
    "ROCM": "ROCm libraries bound in",
    "SANDBOX": "pull/build a sandbox directory instead of a SIF",
    "SHELL": "the program `shell` starts (default /bin/bash --norc)",
    "TARGET_CWD": "initial working directory in the container",
    "TARGET_PWD": "idem",
    "TMPDIR": "temporary directory for conversions",
    "UNSQUASH": "SIF extracted to a temporary sandbox",
    "USERNS": "user-namespace mode",
    "WORKDIR": "host directory for /tmp and /var/tmp with --contain",
    "WRITABLE": "writable image",
    "WRITABLE_TMPFS": "writable tmpfs overlay",
}

# Read directly (not flags) but relevant: <prefix>CACHEDIR (where docker://
# and oras:// pulls are cached and converted), <prefix>MESSAGELEVEL (log
# level), and the CONTAINER_ENV_PREFIXES pass-through.
ENV_NON_FLAG: tuple[str, ...] = ("CACHEDIR", "MESSAGELEVEL")
