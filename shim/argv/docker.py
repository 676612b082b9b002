"""docker's command-line grammar: find the subcommand and the image operand.

Source: docker/cli (cobra + spf13/pflag); the flag tables, their sources and
how they were checked are in :mod:`shim.argv.docker_table`. The levels:

``docker [GLOBAL] [container|image] VERB [VERB-FLAGS] IMAGE [COMMAND] [ARG...]``

- Global flags (``-D``, ``-l/--log-level``, ``--config``, ``-H/--host``,
  ``-c/--context``, ``--tls*``...) come only before the command word. docker
  parses them itself with a non-interspersed pflag FlagSet (cli/cobra.go
  ``HandleGlobalFlags``), so bundles (``-Dl debug``) work and a bare ``--``
  ends them (``docker -- run IMG``); cobra then reads the rest and accepts
  global flags once more right after that ``--`` (``docker -- -D run IMG``
  runs IMG with the installed client 28.2.2).
- The group words ``container`` and ``image`` take no flags but the root's
  hidden persistent ``-h/--help``.
- ``run``/``create`` stop at the first positional (``SetInterspersed(false)``):
  it is IMAGE; everything after it belongs to the container. ``-h`` is
  ``--hostname`` there (their own ``--help`` has no ``-h``), and the root's
  ``--help`` does not reach them (``docker --help run IMG`` runs IMG).
- ``pull`` is interspersed and takes exactly one NAME; the root's (or the
  group's) ``--help``/``-h`` reaches it (``docker --help pull IMG`` prints
  help). A pull with no name or several is docker's own usage error: the
  shim reports no image and docker prints the error.

Checked against docker client 28.2.2 talking to a recording fake API socket:
the ``Image`` of ``POST /containers/create`` and ``fromImage`` of
``POST /images/create`` name the token docker took as the image.

Standard library only.
"""

from __future__ import annotations

from shim.argv import docker_table as T
from shim.argv.invocation import Invocation
from shim.argv.pflag import FlagTable, cobra_invocation, scan

_ROOT_ALIASES = {
    "H": "host", "c": "context", "l": "log-level", "D": "debug", "h": "help", "v": "version",
}  # fmt: skip
_RUN_ALIASES = {
    "a": "attach", "c": "cpu-shares", "d": "detach", "e": "env", "h": "hostname",
    "i": "interactive", "l": "label", "m": "memory", "p": "publish", "P": "publish-all",
    "q": "quiet", "t": "tty", "u": "user", "v": "volume", "w": "workdir",
    # hidden aliases (opts.go)
    "net": "network", "net-alias": "network-alias", "dns-opt": "dns-option",
}  # fmt: skip
_PULL_ALIASES = {"a": "all-tags", "q": "quiet", "h": "help"}

ROOT = FlagTable(T.GLOBAL_VALUE, T.GLOBAL_BOOL, T.OPTIONAL_VALUE, _ROOT_ALIASES)
#: what the group words accept: the root's hidden persistent help only
GROUP = FlagTable(frozenset(), frozenset({"h", "help"}), T.OPTIONAL_VALUE, {"h": "help"})
RUN = FlagTable(T.RUN_VALUE, T.RUN_BOOL, T.OPTIONAL_VALUE, _RUN_ALIASES)
CREATE = FlagTable(T.CREATE_VALUE, T.CREATE_BOOL, T.OPTIONAL_VALUE, _RUN_ALIASES)
PULL = FlagTable(T.PULL_VALUE, T.PULL_BOOL, T.OPTIONAL_VALUE, _PULL_ALIASES)

_GROUPS = frozenset(word for path in T.SUBCOMMAND_ALIASES for word in path[:-1])


def _command_word(args: tuple[str, ...], root: dict[str, list[str | None]]) -> int | None:
    """Position of the command word after the global flags, or None."""
    found = scan(args, 0, ROOT, root, interspersed=False)
    if found.dashdash is not None:
        # `docker [GLOBAL] -- [GLOBAL] CMD`: cobra reads global flags once more
        found = scan(args, found.stop, ROOT, root, interspersed=False)
        if found.dashdash is not None:
            return None
    return found.stop if found.stop < len(args) else None


def parse(args: list[str] | tuple[str, ...]) -> Invocation:
    """Parse a docker command line (argv without argv[0]).

    Returns:
        An Invocation. ``verb`` is None for every subcommand the shim does not
        intercept; then only the words up to the subcommand were read.
        ``global_flags`` holds the global flags (and a group word's help).

    Raises:
        ArgvError: a flag unknown to docker's tables, or a value flag with no
            value, anywhere the shim had to read (the caller passes the command
            through unchanged).
    """
    args = tuple(args)
    root: dict[str, list[str | None]] = {}
    at = _command_word(args, root)
    return cobra_invocation(
        args,
        at,
        root,
        aliases=T.SUBCOMMAND_ALIASES,
        group_table=GROUP,
        run=RUN,
        create=CREATE,
        pull=PULL,
        one_pull_image=True,
    )
