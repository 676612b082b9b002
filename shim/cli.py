"""``imagefit``: the management command (facts, explain, demo, install).

Exit status: 0 on success, 125 for imagefit's own errors and refusals (as the
shim), 2 for usage errors (argparse).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from importlib import resources

from shim import __version__
from shim.errors import EXIT_SHIM_ERROR, ShimError

RUNTIME_NAMES = ("podman", "docker", "apptainer", "singularity", "sarus")


def _facts(args):
    import hostfacts

    if args.cpuinfo:
        return hostfacts.facts_from_cpuinfo(args.cpuinfo, args.machine)
    if getattr(args, "facts", None):
        return hostfacts.load_facts(args.facts)
    return hostfacts.host_facts()


def cmd_facts(args) -> int:
    facts = _facts(args)
    if args.json:
        print(facts.model_dump_json(indent=2))
        return 0
    cpu = facts.cpu
    print(f"hostname:      {facts.hostname or '-'}")
    print(f"os:            {facts.os}")
    print(f"architecture:  {cpu.architecture}")
    print(f"cpu target:    {cpu.target}")
    print(f"vendor:        {cpu.vendor}")
    print(f"generic level: {cpu.generic}")
    print(f"runs targets:  {', '.join(cpu.ancestors) or '-'}")
    print(f"flags:         {len(cpu.flags)} ({cpu.source})")
    return 0


def _show(decision, reference, index_digest, rewritten, args) -> int:
    from shim import render

    if args.json:
        print(json.dumps(render.to_json(decision, reference, index_digest, rewritten), indent=2))
    else:
        print(render.to_text(decision, reference, rewritten, verbose=args.verbose))
    return EXIT_SHIM_ERROR if decision.outcome.value == "refused" else 0


def cmd_explain(args) -> int:
    from shim import config
    from shim.intercept import registry_operand
    from shim.resolve import registry_is_insecure, resolve

    found = registry_operand(args.reference)
    if found is None:
        raise ShimError(
            f"{args.reference!r} is not a fully qualified registry reference (host/repository[:tag])"
        )
    prefix, ref = found
    settings = config.load()
    tls = None if args.tls_verify is None else args.tls_verify == "true"
    resolution = resolve(
        ref,
        _facts(args),
        environ=os.environ,
        insecure=registry_is_insecure(ref, os.environ, settings.insecure_registries, tls),
        timeout=settings.registry_timeout,
        authfile=args.authfile,
    )
    decision = resolution.decision
    rewritten = prefix + str(ref.with_digest(decision.chosen.digest)) if decision.chosen else None
    return _show(decision, str(ref), resolution.digest, rewritten, args)


def cmd_demo(args) -> int:
    from scoring import parse_index, select

    text = resources.files("shim").joinpath("data/demo-index.json").read_text(encoding="utf-8")
    index = json.loads(text)
    reference = "registry.example.org/apps/gromacs:2024"
    facts = _facts(args)
    decision = select(parse_index(index), facts)
    rewritten = None
    if decision.chosen is not None:
        rewritten = f"registry.example.org/apps/gromacs@{decision.chosen.digest}"
    if not args.json:
        print("imagefit demo: an example index shipped with imagefit, one application built for")
        print(f"{len(index['manifests'])} CPU targets, resolved against this host's real facts.")
        print(
            "(Illustrative digests; nothing is pulled. `imagefit explain REF` does this for a real index.)"
        )
        print()
    return _show(decision, reference, None, rewritten, args)


def _shim_script() -> str:
    here = os.path.dirname(os.path.abspath(sys.argv[0]))
    candidate = os.path.join(here, "imagefit-shim")
    if os.path.isfile(candidate):
        return candidate
    import shutil

    found = shutil.which("imagefit-shim")
    if not found:
        raise ShimError("cannot find the imagefit-shim script; is imagefit installed?")
    return os.path.abspath(found)


def cmd_install(args) -> int:
    from shim.locate import find_runtime

    shim = _shim_script()
    bindir = os.path.join(os.path.abspath(args.prefix), "bin")
    os.makedirs(bindir, exist_ok=True)
    names = args.runtime or [n for n in RUNTIME_NAMES if _findable(find_runtime, n, shim)]
    if not names:
        raise ShimError("no container runtime found on PATH; name one with --runtime")
    for name in names:
        link = os.path.join(bindir, name)
        if os.path.lexists(link):
            if os.path.islink(link) and os.path.realpath(link) == os.path.realpath(shim):
                print(f"{link} -> {shim} (already there)")
                continue
            if not args.force:
                raise ShimError(
                    f"{link} exists and is not the imagefit shim; use --force to replace it"
                )
            os.unlink(link)
        os.symlink(shim, link)
        print(f"{link} -> {shim}")
    print(f'put it first on PATH:  export PATH="{bindir}:$PATH"')
    return 0


def _findable(find_runtime, name: str, shim: str) -> bool:
    try:
        find_runtime(name, os.environ, shim)
    except ShimError:
        return False
    return True


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imagefit", description="Run the best build of an image for this host."
    )
    parser.add_argument("--version", action="version", version=f"imagefit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def facts_options(p, with_file=True):
        p.add_argument(
            "--cpuinfo", metavar="FILE", help="compute CPU facts from a /proc/cpuinfo dump"
        )
        p.add_argument(
            "--machine", metavar="ARCH", help="machine of that dump (uname -m): x86_64, aarch64..."
        )
        if with_file:
            p.add_argument(
                "--facts", metavar="FILE", help="use a saved facts JSON (imagefit facts --json)"
            )

    p = sub.add_parser("facts", help="print this host's facts")
    p.add_argument(
        "--json", action="store_true", help="the facts as JSON (the IMAGEFIT_FACTS format)"
    )
    facts_options(p, with_file=False)
    p.set_defaults(func=cmd_facts)

    p = sub.add_parser("explain", help="show which build of REF this host gets, and why")
    p.add_argument("reference", metavar="REF")
    p.add_argument("--json", action="store_true", help="the decision as JSON")
    p.add_argument("-v", "--verbose", action="store_true", help="every check of every candidate")
    p.add_argument("--tls-verify", choices=("true", "false"), help="as podman's --tls-verify")
    p.add_argument("--authfile", metavar="FILE", help="credentials file, as podman's --authfile")
    facts_options(p)
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("demo", help="resolve the embedded example index against this host")
    p.add_argument("--json", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    facts_options(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("install", help="link the shim as podman (docker, ...) into PREFIX/bin")
    p.add_argument("--prefix", required=True, metavar="DIR")
    p.add_argument(
        "--runtime", action="append", choices=RUNTIME_NAMES, help="link this runtime (repeatable)"
    )
    p.add_argument("--force", action="store_true", help="replace existing files")
    p.set_defaults(func=cmd_install)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``imagefit``. Returns the exit status."""
    args = _parser().parse_args(argv)
    if getattr(args, "machine", None) and not getattr(args, "cpuinfo", None):
        print("imagefit: --machine needs --cpuinfo", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except ShimError as exc:
        print(f"imagefit: {exc}", file=sys.stderr)
        return exc.exit_code
    except ValueError as exc:  # HostFactsError, InvalidIndexError: bad input, one line
        print(f"imagefit: {exc}", file=sys.stderr)
        return EXIT_SHIM_ERROR
