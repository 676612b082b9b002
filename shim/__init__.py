"""imagefit's shim: the wrapper that stands in front of the container runtimes.

This package is imported on the hot path of every ``podman run``: its
``__init__`` imports nothing.
"""

__version__ = "0.1.0"
