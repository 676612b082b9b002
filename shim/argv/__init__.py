"""Command-line grammars of the container runtimes. Standard library only.

Each runtime module turns ``argv[1:]`` into an :class:`Invocation` that says
which subcommand runs and where its image operands are, without ever looking
past the image into the container's own command and arguments.
"""

from shim.argv.invocation import Invocation

__all__ = ["Invocation"]
