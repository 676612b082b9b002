"""The shim's error tree. Standard library only (imported on the hot path).

::

    ShimError                 exit 125, one line on stderr
     +-- ArgvError            a command line the shim cannot read exactly
     +-- InvalidReference     an image reference that is not valid (also ValueError)
     +-- ConfigError          an unreadable or invalid config file
     +-- RegistryError        registry I/O failed (unreachable, auth, 404, bad data)
     |    +-- DigestMismatch  content whose sha256 differs from the digest asked for
     +-- RuntimeNotFound      no real runtime to exec
     +-- Refusal              compatibility data says no build runs on this host
"""

#: Exit status for the shim's own errors and refusals, as podman and docker use it.
EXIT_SHIM_ERROR = 125


class ShimError(Exception):
    """Base of every error the shim reports itself (exit 125, one line)."""

    exit_code = EXIT_SHIM_ERROR


class ArgvError(ShimError):
    """The command line cannot be parsed exactly (unknown flag, missing value).
    Control characters of the user's tokens are escaped: the message is one line."""

    def __init__(self, message: str) -> None:  # it quotes the user's words: keep it one line
        super().__init__("".join(c if c.isprintable() else repr(c)[1:-1] for c in message))


class InvalidReference(ShimError, ValueError):
    """Not a valid image reference (distribution/reference grammar)."""


class ConfigError(ShimError):
    """A config file could not be read or holds invalid values."""


class RegistryError(ShimError):
    """Registry I/O failed: unreachable, timed out, denied, not found, bad content."""


class DigestMismatch(RegistryError):
    """Fetched content does not hash to the digest asked for or announced."""


class RuntimeNotFound(ShimError):
    """The real runtime is not on PATH (apart from the shim) nor configured."""


class Refusal(ShimError):
    """No build of the image runs on this host; the message lists why per build."""
