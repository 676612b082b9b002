"""How the real ``ch-image`` (Debian's charliecloud) reads command lines,
without running anything: :func:`read_lines` loads /usr/bin/ch-image in
Debian's own python3 (which has python3-lark and python3-requests), lets its
``main`` build its argparse parsers and parse each line, and records what
``ch-image pull`` would have been asked to do (source, destination,
architecture, ``--tls-no-verify``) in place of pulling; other subcommands
are recorded by their function's name: ``main`` is stopped at its first
step after parsing (``ch.init``), so nothing is initialised (no storage,
no network).
"""

from __future__ import annotations

import json
import os
import subprocess

CH_IMAGE = "/usr/bin/ch-image"
PYTHON = "/usr/bin/python3"

_RUNNER = r"""
import io, json, runpy, sys
lines = json.load(sys.stdin)
mod = runpy.run_path(CH_IMAGE, run_name="ch_image")
class Done(Exception):
    pass
def init(cli):  # ch-image's main calls ch.init(cli) right after parsing: stop there
    if getattr(cli.func, "__module__", None) == "pull":
        raise Done({"verb": "pull", "source": cli.source_ref, "dest": cli.dest_ref,
                    "arch": cli.arch, "tls_no_verify": cli.tls_no_verify, "auth": cli.auth,
                    "parse_only": cli.parse_only})
    raise Done({"verb": getattr(cli.func, "__name__", "?")})
mod["ch"].init = init
out = []
for line in lines:
    sys.argv = ["ch-image", *line]
    err, sys.stderr = sys.stderr, io.StringIO()
    stdout, sys.stdout = sys.stdout, io.StringIO()
    try:
        mod["main"]()
        got = {"verb": None}
    except Done as d:
        got = d.args[0]
    except SystemExit as e:
        got = {"exit": e.code if isinstance(e.code, int) else 1}
    except Exception as e:  # ch-image's own bug (pull --dependencies: AttributeError)
        got = {"exit": "crash " + type(e).__name__}
    finally:
        sys.stderr, sys.stdout = err, stdout
    out.append(got)
json.dump(out, sys.stdout)
"""


def available() -> bool:
    """True when Debian's ch-image and its python3 are installed."""
    return os.access(CH_IMAGE, os.X_OK) and os.access(PYTHON, os.X_OK)


def read_lines(lines: list[list[str]]) -> list[dict]:
    """For each ch-image command line (argv without argv[0]): ``{"exit":
    status}`` when argparse refused it or an option printed and exited
    (help, version, dependencies), ``{"exit": "crash TYPE"}`` where ch-image
    itself fails with an exception, ``{"verb": "pull", "source", "dest",
    "arch", "tls_no_verify", ...}`` for a pull, ``{"verb": NAME}`` for
    another subcommand. One python3 process for all lines."""
    env = {"PATH": "/usr/bin:/bin", "USER": "root", "HOME": "/nonexistent", "LC_ALL": "C.UTF-8"}
    done = subprocess.run(
        [PYTHON, "-c", f"CH_IMAGE = {CH_IMAGE!r}\n" + _RUNNER],
        input=json.dumps(lines), capture_output=True, text=True, timeout=120, env=env,
        check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"ch-image argparse runner failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)
