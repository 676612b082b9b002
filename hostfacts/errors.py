"""Errors raised by :mod:`hostfacts`."""


class HostFactsError(ValueError):
    """Host facts could not be probed or loaded (unreadable or invalid facts file,
    unreadable cpuinfo dump, unknown architecture). The message is one line, fit
    to show the user as is."""
