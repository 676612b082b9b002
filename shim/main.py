"""The shim: started as ``podman`` (a symlink named after the runtime), it
finds the image operand, resolves the best build, rewrites and execs the real
runtime.

Hot path (pass-through, or a command that is not intercepted): standard
library and the shim's own small modules only; :mod:`shim.intercept` (requests,
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

ACTIVE_ENV = "IMAGEFIT_ACTIVE"


#: Lines and characters per line of one message at most (a refusal has one
#: line per build, at most ``shim.choice.REFUSAL_BUILDS`` of them).
SAY_LINES = 40
SAY_LINE_LIMIT = 2000


def _say(message: str) -> None:
    """`message` on stderr after ``imagefit:``, made safe line by line
    (:func:`shim.untrusted.terminal_lines`: control characters escaped, lines
    cut, at most :data:`SAY_LINES` lines): the last defence should a
    registry's words reach a message unescaped."""
    from shim.untrusted import terminal_lines

    print(f"imagefit: {terminal_lines(message, SAY_LINE_LIMIT, SAY_LINES)}", file=sys.stderr)


def _interrupted() -> int:
    """Ctrl-C while the shim resolved: the user wants to stop, not to have
    the command run unchanged (fail-open would start the container they
    interrupted). Die of SIGINT as the runtime would have (the shell sees a
    death by signal and stops a script's loop), without a traceback; 130 where
    the signal cannot be re-raised."""
    import signal

    sys.stderr.flush()
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    except (OSError, ValueError):  # pragma: no cover  (not the main thread)
        pass
    return 130


def _plan(runtime: str, args: list[str], settings: config.Settings, real: str | None = None):
    """The Plan to run (shim.personality.Plan), or None to run `args` unchanged.
    `real` is the runtime the shim will exec (``Personality.real``)."""
    if os.environ.get("IMAGEFIT_DISABLE") == "1" or os.environ.get(ACTIVE_ENV):
        return None
    from shim import personality as personalities

    personality = personalities.get(runtime)
    if personality is None:
        return None
    personality.real = real
    try:
        inv = personality.parse(args)
    except ArgvError as exc:
        _say(f"cannot read this {runtime} command line exactly ({exc}); running it unchanged")
        return None
    if inv.verb is None:
        return None
    from shim import intercept

    return intercept.plan(personality, inv, settings, os.environ)


def _final_args(
    runtime: str, args: list[str], settings: config.Settings, real: str | None = None
) -> list[str]:
    """The final argv (without argv[0]) the shim would exec (no pre-steps)."""
    plan = _plan(runtime, args, settings, real)
    return args if plan is None else plan.args


def _run_step(real: str, runtime: str, args: list[str], stdout: int | None = 2) -> int:
    """Run one pre-step (``sarus pull``) with inherited stdin and stderr, and
    its stdout sent to stderr (`stdout` 2; None: inherited): the progress a pull
    prints must not mix with the container's own output (``sarus run IMG cmd > out``). SIGINT goes to
    the whole foreground group anyway, so the shim ignores it while waiting.
    Returns the exit status (128+N when killed by signal N)."""
    import signal
    import subprocess

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        done = subprocess.run([real, *args], executable=real, check=False, stdout=stdout)
    finally:
        signal.signal(signal.SIGINT, previous)
    return 128 - done.returncode if done.returncode < 0 else done.returncode


def main(argv: list[str] | None = None) -> int:
    """Entry point of the shim. Returns an exit status only when it does not exec.

    Exit 125 (one line on stderr) for the shim's own errors and refusals.
    Never a traceback: an unexpected exception while reading the config or
    finding the runtime is exit 125 with one line naming it (no runtime to
    run: nothing to fail open to); one while planning (``shim.intercept.plan``
    handles those of resolution itself) is the documented fail-open (one
    warning, the command unchanged) or exit 125 with ``on_error = "refuse"``.
    Ctrl-C before the exec: :func:`_interrupted`.
    """
    argv = list(sys.argv if argv is None else argv)
    runtime = os.path.basename(argv[0])
    if runtime in ("imagefit-shim", "__main__.py"):
        _say(
            "this is the imagefit shim: run it through a link named podman (see `imagefit install`)"
        )
        return EXIT_SHIM_ERROR
    # Re-entry (IMAGEFIT_ACTIVE, e.g. rootless podman re-running itself inside
    # its user namespace, where root's files appear owned by nobody) or
    # IMAGEFIT_DISABLE: the shim only finds the runtime; config problems are
    # not this invocation's to report.
    standing_aside = os.environ.get("IMAGEFIT_DISABLE") == "1" or bool(os.environ.get(ACTIVE_ENV))
    try:
        try:
            settings = config.load()
        except ShimError:
            if not standing_aside:
                raise
            settings = config.Settings()
        if not standing_aside:
            for line in settings.warnings:
                _say(line)
        real = find_runtime(runtime, os.environ, argv[0], settings.runtimes.get(runtime))
    except ShimError as exc:
        _say(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        return _interrupted()
    except Exception as exc:  # a bug or an input no check foresaw: one line, no traceback
        from shim.intercept import unexpected

        _say(f"cannot start {runtime}: {unexpected(exc)}")
        return EXIT_SHIM_ERROR
    try:
        plan = _plan(runtime, argv[1:], settings, real)
    except ShimError as exc:
        _say(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        return _interrupted()
    except Exception as exc:  # the last resort: shim.intercept.plan has its own boundary
        from shim.intercept import unexpected

        if settings.on_error == "refuse":
            _say(f"cannot plan this {runtime} command: {unexpected(exc)}")
            return EXIT_SHIM_ERROR
        _say(f"cannot plan this {runtime} command ({unexpected(exc)}); running it unchanged")
        plan = None
    final = argv[1:] if plan is None else plan.args
    before = [] if plan is None else plan.before
    after = [] if plan is None else plan.after
    if os.environ.get("IMAGEFIT_DRY_RUN") == "1":
        import json

        for step in before:
            print(json.dumps([real, *step]))
        print(json.dumps([real, *final]))
        for step in after:
            print(json.dumps([real, *step]))
        return 0
    os.environ[ACTIVE_ENV] = "1"
    for step in before:
        status = _run_step(real, runtime, step)
        if status != 0:
            return status
    if after:
        # steps after the command: it runs as a child (same stdio), then they do
        status = _run_step(real, runtime, final, stdout=None)
        for step in after:
            if status != 0:
                break
            status = _run_step(real, runtime, step)
        return status
    try:
        # argv[0] is the real path: a runtime that re-runs itself by its argv[0]
        # (rootless podman) then finds itself, not the shim again
        os.execv(real, [real, *final])
    except OSError as exc:
        _say(f"cannot execute {real}: {exc.strerror}")
        return 126
    return 0  # pragma: no cover  (execv does not return)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
