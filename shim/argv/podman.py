"""podman's command-line grammar: find the subcommand and the image operands.

Source: containers/podman cmd/podman/root.go (root-local vs persistent flags),
cmd/podman/containers/run.go and create.go (``SetInterspersed(false)``: the
first positional is IMAGE, everything after it belongs to the container),
cmd/podman/images/pull.go (interspersed, several images); the flag tables are
in :mod:`shim.argv.podman_table`. Root-local flags (``--connection``,
``--url``...) may only precede the subcommand; persistent flags (``--root``,
``--log-level``...) may also follow it. ``-c`` is ``--connection`` at the root
but ``--cpu-shares`` in run; ``-h`` is ``--hostname`` in run/create and help
elsewhere.

Standard library only.
"""

from __future__ import annotations

from shim.argv import podman_table as T
from shim.argv.invocation import Invocation
from shim.argv.pflag import FlagTable, cobra_invocation, find_subcommand

#: Short spellings, per level, that the shim needs by their long name.
_ROOT_ALIASES = {
    "c": "connection",
    "H": "host",
    "r": "remote",
    "D": "debug",
    "h": "help",
    "v": "version",
}
_RUN_ALIASES = {
    "a": "attach", "c": "cpu-shares", "d": "detach", "e": "env", "h": "hostname",
    "i": "interactive", "l": "label", "m": "memory", "p": "publish", "P": "publish-all",
    "q": "quiet", "t": "tty", "u": "user", "v": "volume", "w": "workdir", "net": "network",
    # utils.AliasFlags spellings of flags the shim reads (platform, credentials)
    "override-arch": "arch", "override-os": "os", "override-variant": "variant", "auth-file": "authfile",
}  # fmt: skip
_PULL_ALIASES = {
    "a": "all-tags", "q": "quiet", "h": "help",
    "override-arch": "arch", "override-os": "os", "override-variant": "variant", "auth-file": "authfile",
}  # fmt: skip

ROOT = FlagTable(
    T.ROOT_LOCAL_VALUE | T.PERSISTENT_VALUE,
    T.ROOT_LOCAL_BOOL | T.PERSISTENT_BOOL,
    T.OPTIONAL_VALUE,
    _ROOT_ALIASES,
)
PERSISTENT = FlagTable(T.PERSISTENT_VALUE, T.PERSISTENT_BOOL, T.OPTIONAL_VALUE)
RUN = FlagTable(T.RUN_VALUE, T.RUN_BOOL, T.OPTIONAL_VALUE, _RUN_ALIASES) | PERSISTENT
CREATE = FlagTable(T.CREATE_VALUE, T.CREATE_BOOL, T.OPTIONAL_VALUE, _RUN_ALIASES) | PERSISTENT
PULL = FlagTable(T.PULL_VALUE, T.PULL_BOOL, T.OPTIONAL_VALUE, _PULL_ALIASES) | PERSISTENT


def parse(args: list[str] | tuple[str, ...]) -> Invocation:
    """Parse a podman command line (argv without argv[0]).

    Returns:
        An Invocation. ``verb`` is None for every subcommand the shim does not
        intercept; then only the words up to the subcommand were read.

    Raises:
        ArgvError: a flag unknown to podman's tables, or a value flag with no
            value, anywhere the shim had to read (the caller passes the command
            through unchanged).
    """
    args = tuple(args)
    root: dict[str, list[str | None]] = {}
    at = find_subcommand(args, 0, ROOT, root)
    return cobra_invocation(
        args,
        at,
        root,
        aliases=T.SUBCOMMAND_ALIASES,
        group_table=PERSISTENT,
        run=RUN,
        create=CREATE,
        pull=PULL,
        one_pull_image=False,
    )
