"""podman's option grammar, podman 4.x through 6.x, as pure data.

Only one property of each flag matters here: whether it consumes the next argv
element. spf13/pflag rules (containers/podman:vendor/github.com/spf13/pflag):
a value flag takes ``--name v``, ``--name=v``, ``-n v``, ``-nv`` or ``-n=v``; a
boolean flag (pflag sets ``NoOptDefVal = "true"``) never takes the next token,
only ``--name=false``; a flag whose ``NoOptDefVal`` is some other string
behaves like a boolean for tokenizing (a value only with ``=``).

Every set holds flag spellings without dashes: long names, and one-letter
strings for short flags. Hidden flags (``MarkHidden``) are included, since
they still parse. The sets are the union over podman 4.0 .. 6.x: flags added
in 5.x/6.x and flags removed since 4.x are both present, so a command line
valid for any of those versions tokenizes the same way. Names that a
version's ``SetNormalizeFunc`` maps onto a real flag (``--net`` ->
``--network``) are listed as spellings of their own.

The four levels of the grammar
------------------------------
``podman [ROOT] [GROUP [PERSISTENT]] VERB [VERB-FLAGS|PERSISTENT] IMAGE ...``

1. Root-local flags (``ROOT_LOCAL_*``): registered on ``rootCmd.Flags()``
   (``lFlags`` in root.go). Accepted only before the subcommand word; after
   it pflag answers "unknown flag". ``-c`` is ``--connection`` here but
   ``--cpu-shares`` in run/create; ``-v`` is ``--version`` here but
   ``--volume`` in run/create.
2. Persistent flags (``PERSISTENT_*``): registered on
   ``rootCmd.PersistentFlags()`` (``pFlags``). cobra merges them into every
   subcommand's flag set, so they may appear before the subcommand, between
   a group word and its verb (``podman container --root X run`` works: cobra
   ``Traverse`` parses flags at each level), and after the verb, up to the
   image (run/create stop at the first positional).
3. Verb flags (``RUN_*``, ``CREATE_*``, ``PULL_*``): registered on the verb's
   own ``cmd.Flags()``. run and create call ``SetInterspersed(false)``: the
   first positional is IMAGE and everything after it belongs to the
   container. pull is interspersed and takes several images.
4. Optional-value flags (``OPTIONAL_VALUE``): any flag, at any level, whose
   ``NoOptDefVal`` is set to something other than ``"true"``. None exists
   in root/run/create/pull of podman 4.0 .. 6.x (see the note there).

Help: root registers a persistent ``--help`` bool without a shorthand; run
and create register their own ``--help`` bool (``common/create.go``) and
use ``-h`` for ``--hostname`` (Docker compatibility, containers/podman issue
#1367). Where no ``h`` shorthand is registered (the root, the group words,
pull), pflag itself treats ``-h`` as a help request (``parseSingleShortArg``
returns ``ErrHelp``): it takes no value. So ``h`` is a root-level bool, a
pull bool, and a run/create value (checked against podman 4.3.1:
``podman -h``, ``podman pull -h``, ``podman run -h`` wants an argument).

Sources read (search index of public repositories):

- containers/podman:cmd/podman/root.go @98e26278 (4.x, ``rootFlags``:
  ``lFlags`` vs ``pFlags``); the 5.x root.go (import path
  ``github.com/containers/podman/v5``, has ``--db-backend``, ``--module``,
  ``--out``, ``--imagestore``, ``--pull-option``); and
  podman-container-tools/podman:cmd/podman/root.go @02fba5ab (6.0-dev,
  ``go.podman.io/podman/v6``: adds ``--tls-cert/--tls-key/--tls-ca/
  --tls-details``, ``--cdi-spec-dir``; drops ``--network-cmd-path`` and
  ``--db-backend``; keeps ``--network-backend`` hidden).
- containers/podman:cmd/podman/common/create.go @02a77d27 (4.x,
  ``DefineCreateFlags``) and podman-container-tools/podman:
  cmd/podman/common/create.go @00f43b99 (6.0-dev: adds ``--rdt-class``,
  ``--retry``, ``--retry-delay``, ``--cert-dir``, ``--creds``, ``--gpus``,
  ``--health-log-destination``, ``--health-max-log-count``,
  ``--health-max-log-size``).
- containers/podman:cmd/podman/common/netflags.go @aa47e05a (4.x,
  ``DefineNetFlags``) and the 5.x version (dmikushin/podman fork
  @5d58c38f, same file: adds ``--hosts-file``, ``--no-hostname``).
- podman-container-tools/podman:cmd/podman/containers/run.go @2e29ec43
  (``runFlags``: ``--sig-proxy --rmi --preserve-fds --preserve-fd -d/--detach
  --detach-keys --passwd``) and cmd/podman/containers/create.go @1eda9ca6
  (``createFlags``: ``--init-ctr``; both ``SetInterspersed(false)`` and
  ``SetNormalizeFunc(utils.AliasFlags)``).
- containers/podman:cmd/podman/images/pull.go @04e5c51c (4.x, has
  ``--userns``) and podman-container-tools/podman:cmd/podman/images/pull.go
  @5ef81475 (6.0-dev: ``--auth-file``, ``--policy``, ``--retry``,
  ``--retry-delay``, ``SetNormalizeFunc(utils.AliasFlags)``).
- containers/podman:cmd/podman/utils/alias.go @053b0966 (older: has
  ``purge`` -> ``rm``) and podman-container-tools/podman:
  cmd/podman/utils/alias.go @1eda9ca6 (6.0-dev: ``authfile`` ->
  ``auth-file``, ``dns-opt`` -> ``dns-option``, ``healthcheck-*`` ->
  ``health-*``, ``net`` -> ``network``, ``namespace`` -> ``ns``,
  ``override-{arch,os,variant}``).
- containers/podman:cmd/podman/containers/container.go and
  cmd/podman/images/image.go @0b683141 (5.x: the ``container`` and ``image``
  groups have no cobra ``Aliases``; nor do run, create, pull).
- podman-container-tools/podman:docs/source/markdown/options/
  health-start-interval.md @ec31366f (6.x: ``--health-start-interval``, a
  Docker-compatible alias of ``--health-startup-interval``).
- Cross-checked by running the installed podman 4.3.1 (Debian): every flag
  it prints in ``--help`` for the root, run, create and pull is here with
  the same kind; every entry here that 4.3.1 knows (hidden and alias
  spellings included) tokenizes as stated (``podman run --FLAG --help``: a
  bool prints help, a value flag swallows ``--help``); every short letter
  4.3.1 accepts in run/create/pull is here; root-local flags are rejected
  after ``run`` and ``pull``; run-only flags are rejected by ``create`` and
  ``--init-ctr`` by ``run``. Entries 4.3.1 rejects as unknown are the
  later additions marked with a version below.

Standard library only; no imports.
"""

# --------------------------------------------------------------------------
# 1. Root-local flags: only before the subcommand word.
# --------------------------------------------------------------------------

ROOT_LOCAL_VALUE: frozenset[str] = frozenset(
    {
        "H",  # --host, hidden Docker-compatibility spelling of --url
        "c",  # --connection
        "cni-config-dir",  # root NormalizeFunc alias of --network-config-dir, set on rootCmd.Flags() only: works only here
        "config",  # hidden in 4.x, visible (docker config dir) in 5.x+
        "connection",
        "context",  # hidden Docker-compatibility no-op
        "host",  # hidden
        "identity",
        "module",  # newer than 4.3.1 (seen in 5.x/6.x root.go); containers.conf module
        "out",  # newer than 4.3.1 (seen in 5.x/6.x root.go)
        "ssh",  # lFlags in root.go, so root-local despite being a global option
        "tls-ca",  # 6.x
        "tls-cert",  # 6.x
        "tls-details",  # 6.x
        "tls-key",  # 6.x
        "url",
    }
)

ROOT_LOCAL_BOOL: frozenset[str] = frozenset(
    {
        "D",  # --debug
        "debug",  # hidden; lFlags (root-local): `podman run -D` is "unknown shorthand flag" in 4.3.1
        "h",  # pflag's built-in help shorthand (no "h" registered here); run/create use -h for --hostname
        "noout",  # hidden since 5.x (superseded by --out)
        "r",  # --remote
        "remote",
        "v",  # --version: cobra adds it only when the root itself runs, so `podman -v run` is an error
        "version",  # idem
    }
)

# --------------------------------------------------------------------------
# 2. Persistent flags: before the subcommand, between a group word and its
#    verb, or after the verb (up to the image for run/create).
# --------------------------------------------------------------------------

PERSISTENT_VALUE: frozenset[str] = frozenset(
    {
        "cdi-spec-dir",  # 6.x
        "cgroup-manager",
        "conmon",
        "cpu-profile",  # hidden
        "db-backend",  # hidden; newer than 4.3.1, in 5.x root.go, gone from 6.x root.go
        "default-mounts-file",  # hidden
        "events-backend",
        "hooks-dir",
        "imagestore",  # newer than 4.3.1 (seen in 5.x/6.x root.go)
        "log-level",
        "max-workers",  # hidden
        "memory-profile",  # hidden
        "namespace",  # hidden since 5.x
        "network-backend",  # hidden; kept (no-op) in 6.x for 5.x cleanup commands
        "network-cmd-path",  # 4.x and 5.x; gone from 6.x root.go
        "network-config-dir",
        "pull-option",  # hidden; newer than 4.3.1 (seen in 5.x/6.x root.go)
        "registries-conf",  # hidden
        "root",
        "runroot",
        "runtime",
        "runtime-flag",
        "storage-driver",
        "storage-opt",
        "tmpdir",
        "volumepath",
    }
)

PERSISTENT_BOOL: frozenset[str] = frozenset(
    {
        "help",  # root overrides cobra's --help with a persistent bool, no shorthand
        "syslog",
        "trace",  # hidden
        "transient-store",  # newer than 4.3.1 (seen in 5.x/6.x root.go)
    }
)

# --------------------------------------------------------------------------
# 3. Verb flags.
# --------------------------------------------------------------------------

# Flags shared by `podman run` and `podman create`:
# common/create.go DefineCreateFlags(CreateMode) + common/netflags.go
# DefineNetFlags + utils/alias.go normalized spellings.
_CREATE_RUN_VALUE: frozenset[str] = frozenset(
    {
        "a",  # --attach
        "add-host",
        "annotation",
        "arch",
        "attach",
        "auth-file",  # 6.x: AliasFlags maps authfile -> auth-file; both spellings parse
        "authfile",
        "blkio-weight",
        "blkio-weight-device",
        "c",  # --cpu-shares (at the root, -c is --connection)
        "cap-add",
        "cap-drop",
        "cert-dir",  # run/create: seen only in 6.x create.go
        "cgroup-conf",
        "cgroup-parent",
        "cgroupns",
        "cgroups",
        "chrootdirs",
        "cidfile",
        "conmon-pidfile",
        "cpu-period",
        "cpu-quota",
        "cpu-rt-period",
        "cpu-rt-runtime",
        "cpu-shares",
        "cpus",
        "cpuset-cpus",
        "cpuset-mems",
        "creds",  # run/create: seen only in 6.x create.go
        "decryption-key",  # newer than 4.3.1
        "device",
        "device-cgroup-rule",
        "device-read-bps",
        "device-read-iops",
        "device-write-bps",
        "device-write-iops",
        "dns",
        "dns-opt",  # alias of --dns-option
        "dns-option",
        "dns-search",
        "e",  # --env
        "entrypoint",
        "env",
        "env-file",
        "env-merge",
        "expose",
        "gidmap",
        "gpus",  # 4.3.1: hidden, run only (create rejects it); 5.x/6.x: run and create
        "group-add",
        "group-entry",  # newer than 4.3.1
        "h",  # --hostname, not help (Docker compatibility)
        "health-cmd",
        "health-interval",
        "health-log-destination",  # 5.x/6.x
        "health-max-log-count",  # 5.x/6.x
        "health-max-log-size",  # 5.x/6.x
        "health-on-failure",
        "health-retries",
        "health-start-interval",  # 6.x docs: Docker-compatible alias of --health-startup-interval
        "health-start-period",
        "health-startup-cmd",  # newer than 4.3.1 (as are the other health-startup-*)
        "health-startup-interval",
        "health-startup-retries",
        "health-startup-success",
        "health-startup-timeout",
        "health-timeout",
        "healthcheck-command",  # alias of --health-cmd
        "healthcheck-interval",  # alias of --health-interval
        "healthcheck-retries",  # alias of --health-retries
        "healthcheck-start-period",  # alias of --health-start-period
        "healthcheck-timeout",  # alias of --health-timeout
        "hostname",
        "hosts-file",  # 5.x/6.x netflags.go
        "hostuser",
        "image-volume",
        "init-path",
        "ip",
        "ip6",
        "ipc",
        "kernel-memory",  # hidden, deprecated no-op
        "l",  # --label
        "label",
        "label-file",
        "log-driver",
        "log-opt",
        "m",  # --memory
        "mac-address",
        "memory",
        "memory-reservation",
        "memory-swap",
        "memory-swappiness",
        "mount",
        "name",
        "net",  # alias of --network
        "network",
        "network-alias",
        "ns",  # AliasFlags maps the persistent --namespace to "ns", so --ns parses too
        "oom-score-adj",
        "os",
        "override-arch",  # alias of --arch
        "override-os",  # alias of --os
        "override-variant",  # alias of --variant
        "p",  # --publish
        "passwd-entry",
        "personality",
        "pid",
        "pidfile",
        "pids-limit",
        "platform",
        "pod",
        "pod-id-file",
        "publish",
        "pull",  # plain string (policy); needs a value, no NoOptDefVal
        "rdt-class",  # 5.x/6.x
        "requires",
        "restart",
        "retry",  # 5.x/6.x
        "retry-delay",  # 5.x/6.x
        "sdnotify",
        "seccomp-policy",
        "secret",
        "security-opt",
        "shm-size",
        "shm-size-systemd",  # newer than 4.3.1
        "signature-policy",  # hidden
        "stop-signal",
        "stop-timeout",
        "subgidname",
        "subuidname",
        "sysctl",
        "systemd",  # takes "true"|"false"|"always" as a value: not a bool
        "timeout",
        "tmpfs",
        "tz",
        "u",  # --user
        "uidmap",
        "ulimit",
        "umask",
        "unsetenv",
        "user",
        "userns",
        "uts",
        "v",  # --volume (at the root, -v is --version)
        "variant",
        "volume",
        "volumes-from",
        "w",  # --workdir
        "workdir",
    }
)

_CREATE_RUN_BOOL: frozenset[str] = frozenset(
    {
        "P",  # --publish-all
        "disable-content-trust",  # Docker no-op
        "env-host",
        "help",  # create.go registers its own --help bool without -h
        "http-proxy",  # default true; --http-proxy=false to disable
        "i",  # --interactive
        "init",
        "interactive",
        "no-healthcheck",
        "no-hostname",  # 5.x/6.x netflags.go
        "no-hosts",
        "oom-kill-disable",
        "privileged",
        "publish-all",
        "purge",  # older alias.go: purge -> rm (accepted by 4.3.1 run/create; gone in 6.x)
        "q",  # --quiet
        "quiet",
        "read-only",
        "read-only-tmpfs",  # default true; --read-only-tmpfs=false to disable
        "replace",
        "rm",
        "rootfs",
        "t",  # --tty
        "tls-verify",  # OptionalBoolFlag: NoOptDefVal "true", a bool for tokenizing
        "tty",
        "unsetenv-all",
    }
)

# containers/run.go runFlags: flags only `podman run` has.
_RUN_ONLY_VALUE: frozenset[str] = frozenset(
    {
        "detach-keys",
        "preserve-fd",  # newer than 4.3.1 (seen in 6.x run.go)
        "preserve-fds",
    }
)

_RUN_ONLY_BOOL: frozenset[str] = frozenset(
    {
        "d",  # --detach
        "detach",
        "passwd",  # default true; --passwd=false to disable (run only)
        "rmi",
        "sig-proxy",  # default true; --sig-proxy=false to disable
    }
)

# containers/create.go createFlags: flags only `podman create` has.
_CREATE_ONLY_VALUE: frozenset[str] = frozenset(
    {
        "init-ctr",  # pod init container type ("always"|"once")
    }
)

RUN_VALUE: frozenset[str] = _CREATE_RUN_VALUE | _RUN_ONLY_VALUE
RUN_BOOL: frozenset[str] = _CREATE_RUN_BOOL | _RUN_ONLY_BOOL
CREATE_VALUE: frozenset[str] = _CREATE_RUN_VALUE | _CREATE_ONLY_VALUE
CREATE_BOOL: frozenset[str] = _CREATE_RUN_BOOL

PULL_VALUE: frozenset[str] = frozenset(
    {
        "arch",
        "auth-file",  # 6.x name; "authfile" normalizes to it
        "authfile",
        "cert-dir",
        "creds",
        "decryption-key",  # newer than 4.3.1 in pull
        "ns",  # 6.x: pull uses AliasFlags, which maps the persistent --namespace to "ns"
        "os",
        "override-arch",  # 6.x (pull uses AliasFlags); unknown in 4.x pull
        "override-os",  # idem
        "override-variant",  # idem
        "platform",
        "policy",  # newer than 4.3.1 (seen in 6.x pull.go)
        "retry",  # newer than 4.3.1 (seen in 6.x pull.go)
        "retry-delay",  # idem
        "signature-policy",  # hidden
        "userns",  # some 4.x pull.go versions (@04e5c51c); not in 4.3.1 nor 6.x
        "variant",
    }
)

PULL_BOOL: frozenset[str] = frozenset(
    {
        "a",  # --all-tags
        "all-tags",
        "disable-content-trust",  # Docker no-op
        "h",  # pflag's built-in help shorthand (pull registers no "h"); `podman pull -h` prints help
        "help",
        "q",  # --quiet
        "quiet",
        "tls-verify",  # plain BoolVar in pull (default true)
    }
)

# --------------------------------------------------------------------------
# 4. Optional-value flags (pflag NoOptDefVal other than "true").
# --------------------------------------------------------------------------

# Such a flag never consumes the next argv element; a value is given only as
# --name=value. podman's root, run, create and pull define none in 4.0 ..
# 6.x: the only NoOptDefVal there is the "true" that pflag's Bool* and
# containers/common pkg/flag.OptionalBoolFlag (--tls-verify in run/create)
# set, which makes a plain boolean. (podman build's --pull and friends do use
# NoOptDefVal, but build is not intercepted.) Kept as a set so a future
# version's flag can be added without changing the scanner.
OPTIONAL_VALUE: frozenset[str] = frozenset()

# --------------------------------------------------------------------------
# Command paths that reach an intercepted verb.
# --------------------------------------------------------------------------

# No cobra Aliases on run, create, pull, or the container/image groups, and
# podman does not enable cobra prefix matching.
SUBCOMMAND_ALIASES: dict[tuple[str, ...], str] = {
    ("container", "create"): "create",
    ("container", "run"): "run",
    ("create",): "create",
    ("image", "pull"): "pull",
    ("pull",): "pull",
    ("run",): "run",
}
