"""docker's option grammar (docker/cli, cobra + spf13/pflag), as pure data.

Only one property of each flag matters here: whether it consumes the next
argv element. pflag rules: a value flag takes ``--name v``, ``--name=v``,
``-n v``, ``-nv`` or ``-n=v``; a bool flag (``NoOptDefVal = "true"``) never
takes the next word, only ``--name=false``. docker/cli sets no other
``NoOptDefVal`` on these commands, so ``OPTIONAL_VALUE`` is empty.

Every set holds flag spellings without dashes: long names, and one-letter
strings for short flags. Hidden and deprecated flags are included (they still
parse): ``--net``, ``--net-alias``, ``--dns-opt`` (aliases marked hidden in
opts.go) and ``--kernel-memory`` (deprecated no-op).

The levels of the grammar
-------------------------
``docker [GLOBAL] [container|image] VERB [VERB-FLAGS] IMAGE [COMMAND] [ARG...]``

1. Global flags (``GLOBAL_*``): ``cli/flags/options.go`` ``InstallFlags``
   plus ``--config`` and ``-v/--version`` from cmd/docker/docker.go, all on
   the root's ``Flags()`` (not persistent): accepted only before the command
   word (``docker run -D img`` is "unknown shorthand flag: 'D'"). docker
   parses them itself before cobra (cli/cobra.go ``HandleGlobalFlags``: a
   plain pflag FlagSet with ``SetInterspersed(false)``), so a bare ``--`` ends
   them cleanly (``docker -- run ...`` works) and bundles such as ``-Dl info``
   work -- unlike apptainer, cobra's ``Traverse`` guessing is not involved.
   ``-h``/``--help`` is a hidden persistent bool on the root (``-h`` prints a
   deprecation notice); it reaches ``pull`` but not run/create, which define
   their own ``--help`` without ``-h``.
2. Verb flags. ``run`` and ``create`` call ``SetInterspersed(false)``
   (cli/command/container/run.go, create.go): the first positional is IMAGE
   and everything after it belongs to the container. ``pull`` is interspersed
   (flags may follow the image) and takes exactly one image
   (``cli.ExactArgs(1)``).

Collisions: ``-c`` is ``--context`` at the root but ``--cpu-shares`` in
run/create; ``-v`` is ``--version`` at the root but ``--volume`` in
run/create; ``-l`` is ``--log-level`` at the root but ``--label`` in
run/create; ``-h`` is help at the root and in pull but ``--hostname`` (a
value) in run/create.

Sources read (search index of public repositories):

- docker/cli:cli/command/container/opts.go @143a7abe (``addFlags``: every
  container flag; ``MarkHidden`` on ``dns-opt``, ``net``, ``net-alias``;
  ``kernel-memory`` deprecated; Windows-only ``cpu-count``, ``cpu-percent``,
  ``io-maxbandwidth``, ``io-maxiops`` carry an ``ostype`` annotation but
  still parse).
- docker/cli:cli/command/container/run.go @26da5bf0 and a later (29.x-dev)
  revision (``SetInterspersed(false)``; run-only ``-d/--detach``,
  ``--sig-proxy``, ``--detach-keys``; ``--name``, ``--pull``, ``-q/--quiet``,
  ``--use-api-socket``, ``--platform``, ``--disable-content-trust``, and
  ``flags.Bool("help", ...)`` "that doesn't have a `-h`"; the
  ``aliases`` annotation "docker container run, docker run").
- docker/cli:cli/command/container/create.go @2ba7cb8b (``NewCreateCommand``:
  the same flags minus the run-only ones, ``SetInterspersed(false)``, its
  own ``--help``), cli/flags/options.go @3499669e (``InstallFlags``: the
  globals). cli/command/image/pull.go and cli/cobra.go
  (``HandleGlobalFlags``) were not opened: pull's flags and its one-image
  rule, and the global-flag behaviour, are taken from the client below.
- Cross-checked by running the installed docker client 28.2.2 (no daemon
  needed): every flag printed by ``docker --help``, ``docker run --help``,
  ``docker create --help``, ``docker pull --help`` and by the ``container``/
  ``image`` spellings of the verbs is here with the same kind (a bool prints
  no type word), the hidden names above were probed (``docker run --FLAG
  --help``: a bool prints help, a value flag swallows ``--help``), every
  letter a-zA-Z was probed as a short flag of run, create and pull, and the
  globals were probed with ``docker FLAG version --format ...``. The help of
  the two spellings of each verb is identical.

Standard library only; no imports.
"""

# --------------------------------------------------------------------------
# 1. Global flags: only before the command word.
# --------------------------------------------------------------------------

GLOBAL_VALUE: frozenset[str] = frozenset(
    {
        "H",  # --host (repeatable)
        "c",  # --context (in run/create, -c is --cpu-shares)
        "config",  # client config directory
        "context",
        "host",
        "l",  # --log-level (in run/create, -l is --label)
        "log-level",
        "tlscacert",
        "tlscert",
        "tlskey",
    }
)

GLOBAL_BOOL: frozenset[str] = frozenset(
    {
        "D",  # --debug
        "debug",
        "h",  # hidden persistent help; shorthand deprecated ("use --help")
        "help",
        "tls",
        "tlsverify",
        "v",  # --version (in run/create, -v is --volume)
        "version",
    }
)

# --------------------------------------------------------------------------
# 2. run / create: SetInterspersed(false), the first positional is IMAGE.
# --------------------------------------------------------------------------

_CREATE_RUN_VALUE: frozenset[str] = frozenset(
    {
        "a",  # --attach
        "add-host",
        "annotation",  # API 1.43+
        "attach",
        "blkio-weight",
        "blkio-weight-device",
        "c",  # --cpu-shares (at the root, -c is --context)
        "cap-add",
        "cap-drop",
        "cgroup-parent",
        "cgroupns",
        "cidfile",
        "cpu-count",  # Windows only (still parsed on Linux)
        "cpu-percent",  # Windows only
        "cpu-period",
        "cpu-quota",
        "cpu-rt-period",
        "cpu-rt-runtime",
        "cpu-shares",
        "cpus",
        "cpuset-cpus",
        "cpuset-mems",
        "device",
        "device-cgroup-rule",
        "device-read-bps",
        "device-read-iops",
        "device-write-bps",
        "device-write-iops",
        "dns",
        "dns-opt",  # hidden alias of --dns-option
        "dns-option",
        "dns-search",
        "domainname",
        "e",  # --env
        "entrypoint",
        "env",
        "env-file",
        "expose",
        "gpus",
        "group-add",
        "h",  # --hostname, not help (run/create register --help without -h)
        "health-cmd",
        "health-interval",
        "health-retries",
        "health-start-interval",  # API 1.44+
        "health-start-period",
        "health-timeout",
        "hostname",
        "io-maxbandwidth",  # Windows only
        "io-maxiops",  # Windows only
        "ip",
        "ip6",
        "ipc",
        "isolation",
        "kernel-memory",  # deprecated no-op, to be removed in v30
        "l",  # --label (at the root, -l is --log-level)
        "label",
        "label-file",
        "link",
        "link-local-ip",
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
        "net",  # hidden alias of --network
        "net-alias",  # hidden alias of --network-alias
        "network",
        "network-alias",
        "oom-score-adj",
        "p",  # --publish
        "pid",
        "pids-limit",
        "platform",  # default from DOCKER_DEFAULT_PLATFORM
        "publish",
        "pull",  # "always"|"missing"|"never": a value, not a bool
        "restart",
        "runtime",
        "security-opt",
        "shm-size",
        "stop-signal",
        "stop-timeout",
        "storage-opt",
        "sysctl",
        "tmpfs",
        "u",  # --user
        "ulimit",
        "user",
        "userns",
        "uts",
        "v",  # --volume (at the root, -v is --version)
        "volume",
        "volume-driver",
        "volumes-from",
        "w",  # --workdir
        "workdir",
    }
)

_CREATE_RUN_BOOL: frozenset[str] = frozenset(
    {
        "P",  # --publish-all
        "disable-content-trust",  # default true unless DOCKER_CONTENT_TRUST is set
        "help",  # own --help without -h (-h is --hostname)
        "i",  # --interactive
        "init",
        "interactive",
        "no-healthcheck",
        "oom-kill-disable",
        "privileged",
        "publish-all",
        "q",  # --quiet
        "quiet",
        "read-only",
        "rm",
        "t",  # --tty
        "tty",
        "use-api-socket",  # 28.x
    }
)

_RUN_ONLY_VALUE: frozenset[str] = frozenset(
    {
        "detach-keys",
    }
)

_RUN_ONLY_BOOL: frozenset[str] = frozenset(
    {
        "d",  # --detach
        "detach",
        "sig-proxy",  # default true; --sig-proxy=false to disable
    }
)

RUN_VALUE: frozenset[str] = _CREATE_RUN_VALUE | _RUN_ONLY_VALUE
RUN_BOOL: frozenset[str] = _CREATE_RUN_BOOL | _RUN_ONLY_BOOL
# create has no flag of its own: it is run minus the run-only flags.
CREATE_VALUE: frozenset[str] = _CREATE_RUN_VALUE
CREATE_BOOL: frozenset[str] = _CREATE_RUN_BOOL

# --------------------------------------------------------------------------
# 3. pull NAME[:TAG|@DIGEST]: interspersed, exactly one image.
# --------------------------------------------------------------------------

PULL_VALUE: frozenset[str] = frozenset(
    {
        "platform",  # default from DOCKER_DEFAULT_PLATFORM
    }
)

PULL_BOOL: frozenset[str] = frozenset(
    {
        "a",  # --all-tags
        "all-tags",
        "disable-content-trust",
        "h",  # the root's persistent help (deprecated shorthand)
        "help",
        "q",  # --quiet
        "quiet",
    }
)

# No flag takes its value only after "=" in these commands.
OPTIONAL_VALUE: frozenset[str] = frozenset()

# --------------------------------------------------------------------------
# Command paths that reach an intercepted verb.
# --------------------------------------------------------------------------

# The `container` and `image` group words take no flags of their own. The
# short top-level forms stay available when DOCKER_HIDE_LEGACY_COMMANDS is
# set (it only hides them from `docker --help`). No cobra prefix matching.
SUBCOMMAND_ALIASES: dict[tuple[str, ...], str] = {
    ("container", "create"): "create",
    ("container", "run"): "run",
    ("create",): "create",
    ("image", "pull"): "pull",
    ("pull",): "pull",
    ("run",): "run",
}

# --------------------------------------------------------------------------
# Environment variables that act like options (docker CLI documentation:
# "Environment variables" of the `docker` reference).
# --------------------------------------------------------------------------

ENV_OPTIONS: dict[str, str] = {
    "DOCKER_API_VERSION": "overrides the negotiated API version",
    "DOCKER_CERT_PATH": "directory of ca.pem/cert.pem/key.pem (default for --tlscacert etc.)",
    "DOCKER_CONFIG": "client config directory (like --config; holds credentials)",
    "DOCKER_CONTENT_TRUST": "content trust on: run/create/pull verify signatures",
    "DOCKER_CONTEXT": "context to use (like --context)",
    "DOCKER_DEFAULT_PLATFORM": "default --platform for run/create/pull",
    "DOCKER_HOST": "daemon socket (like -H); may point at a podman socket",
    "DOCKER_TLS": "like --tls",
    "DOCKER_TLS_VERIFY": "like --tlsverify",
}
