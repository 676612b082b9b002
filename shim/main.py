"""The shim: started as ``podman`` (a symlink named after the runtime), it
finds the image operand, resolves the best build, rewrites and execs the real
runtime.

Hot path (pass-through, or a command that is not intercepted): standard
library and the shim's own small modules only; :mod:`shim.intercept` (oras,
pydantic, archspec) is imported only when an image must be resolved.

Environment: ``IMAGEFIT_DISABLE=1`` pure pass-through; ``IMAGEFIT_DRY_RUN=1``
print the final argv as one JSON array on stdout and do not exec;
``IMAGEFIT_ACTIVE`` (set by the shim on the runtime it execs) marks re-entry,
e.g. the shim as ``docker`` in front of podman's ``docker`` script, which runs
``podman``, itself shimmed: the second shim passes through.
"""

from __future__ import annotations

import os
import sys

from shim import config
from shim.errors import EXIT_SHIM_ERROR, ArgvError, ShimError
from shim.locate import find_runtime

#: Personalities whose grammar the shim reads; other names pass through.
PARSERS = {"podman": "shim.argv.podman"}
ACTIVE_ENV = "IMAGEFIT_ACTIVE"


def _say(message: str) -> None:
    print(f"imagefit: {message}", file=sys.stderr)


def _final_args(runtime: str, args: list[str], settings: config.Settings) -> list[str]:
    module = PARSERS.get(runtime)
    if module is None or os.environ.get("IMAGEFIT_DISABLE") == "1" or os.environ.get(ACTIVE_ENV):
        return args
    import importlib

    parser = importlib.import_module(module)
    try:
        inv = parser.parse(args)
    except ArgvError as exc:
        _say(f"cannot read this {runtime} command line exactly ({exc}); running it unchanged")
        return args
    if inv.verb is None:
        return args
    from shim import intercept

    return intercept.rewrite(runtime, inv, settings, os.environ)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the shim. Returns an exit status only when it does not exec.

    Exit 125 (one line on stderr) for the shim's own errors and refusals.
    """
    argv = list(sys.argv if argv is None else argv)
    runtime = os.path.basename(argv[0])
    if runtime in ("imagefit-shim", "__main__.py"):
        _say(
            "this is the imagefit shim: run it through a link named podman (see `imagefit install`)"
        )
        return EXIT_SHIM_ERROR
    try:
        settings = config.load()
        for line in settings.warnings:
            _say(line)
        real = find_runtime(runtime, os.environ, argv[0], settings.runtimes.get(runtime))
        final = _final_args(runtime, argv[1:], settings)
    except ShimError as exc:
        _say(str(exc))
        return exc.exit_code
    if os.environ.get("IMAGEFIT_DRY_RUN") == "1":
        import json

        print(json.dumps([real, *final]))
        return 0
    os.environ[ACTIVE_ENV] = "1"
    try:
        os.execv(real, [runtime, *final])
    except OSError as exc:
        _say(f"cannot execute {real}: {exc.strerror}")
        return 126
    return 0  # pragma: no cover  (execv does not return)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
