"""``imagefit``: the management command (facts, explain, check, warm, pull, demo,
install, doctor).

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

RUNTIME_NAMES = ("podman", "docker", "apptainer", "singularity", "sarus", "ch-image")
#: what `imagefit install --runtime` links (shim.install.RUNTIME_NAMES): enroot has no `pull`
INSTALL_RUNTIMES = (*RUNTIME_NAMES, "enroot")


def _facts(args):
    import socket

    import hostfacts
    from shim import config

    if getattr(args, "cpuinfo", None):
        return hostfacts.facts_from_cpuinfo(args.cpuinfo, args.machine)
    if getattr(args, "facts", None):
        return hostfacts.load_facts(args.facts)
    settings = config.load()
    root = getattr(args, "root", None) or "/"
    hostname = socket.gethostname() if root == "/" else ""
    return hostfacts.host_facts(
        root=root,
        machine=getattr(args, "machine", None),
        refresh=getattr(args, "refresh", False),
        cpu_target=settings.cpu_target_for(hostname) if root == "/" else None,
    )


def _section_line(name: str, probe, summary: str) -> str:
    state = summary if probe.status == "ok" else f"{probe.status}: {probe.reason}"
    return f"{name + ':':<14}{state}"


def cmd_facts(args) -> int:
    facts = _facts(args)
    if args.nfd:
        from hostfacts import nfd

        text = json.dumps(nfd.features(facts), indent=2)
    elif args.json:
        text = facts.model_dump_json(indent=2)
    else:
        text = _facts_text(facts, args.verbose)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        print(text)
    return 0


def _facts_text(facts, verbose: bool) -> str:
    cpu, gpu, mpi, system, net = facts.cpu, facts.gpu, facts.mpi, facts.system, facts.interconnect
    target = cpu.target
    if cpu.target_source != "archspec":
        target += f"  (site config; archspec detected {cpu.detected_target})"
    lines = [
        f"{'hostname:':<14}{facts.hostname or '-'}",
        f"{'cpu target:':<14}{target}",
        f"{'vendor:':<14}{cpu.vendor}, family {cpu.model.family} model {cpu.model.model_id}"
        + (", virtual machine" if cpu.model.hypervisor else ""),
        f"{'generic:':<14}{cpu.generic} ({cpu.architecture})",
        f"{'runs targets:':<14}{', '.join(cpu.ancestors) or '-'}",
        f"{'cpu flags:':<14}{len(cpu.flags)}",
    ]
    nv = gpu.nvidia
    devices = ", ".join(f"{d.index}: {d.name} (sm {d.compute_capability})" for d in nv.devices)
    lines.append(
        _section_line(
            "nvidia gpu",
            nv.probe,
            f"driver {nv.driver_version}, CUDA {nv.cuda_driver_version}; {devices}",
        )
    )
    amd = gpu.amd
    lines.append(
        _section_line(
            "amd gpu", amd.probe, ", ".join(f"node {d.node}: {d.gfx_target}" for d in amd.devices)
        )
    )
    lines.append(
        _section_line(
            "mpi", mpi.probe, f"{mpi.implementation} {mpi.version} (ABI {mpi.abi}) {mpi.library}"
        )
    )
    release = system.os_release
    lines.append(
        _section_line(
            "system",
            system.probe,
            f"kernel {system.kernel_release}, {system.libc} {system.glibc_version or ''}".rstrip()
            + f", {release.id or '?'} {release.version_id or ''}".rstrip()
            + (f", inside {system.container}" if system.container else ""),
        )
    )
    lines.append(_section_line("interconnect", net.probe, ", ".join(net.fabrics) or "-"))
    if verbose:
        lines.append("")
        lines.append("evidence:")
        sections = [("cpu", cpu.probe), ("nvidia gpu", nv.probe), ("amd gpu", amd.probe), ("mpi", mpi.probe),
                    ("system", system.probe), ("interconnect", net.probe)]  # fmt: skip
        for name, probe in sections:
            lines.append(f"  {name} ({probe.status}, {probe.seconds * 1000:.1f} ms)")
            for ev in probe.evidence:
                lines.append(f"    {ev.kind} {ev.source}" + (f": {ev.detail}" if ev.detail else ""))
    return "\n".join(lines)


def _human(text: str) -> str:
    """Text for a person's terminal: the renderings escape and cut each
    registry string (shim.render); this escapes whatever got past them, line
    by line (:func:`shim.untrusted.terminal_lines`, no cut). JSON and CSV
    outputs are exact and do not pass here."""
    from shim.untrusted import terminal_lines

    return terminal_lines(text, 0)


def _err(text: str) -> None:
    """One message on stderr, terminal-safe, at most 40 lines of 2,000 characters."""
    from shim.untrusted import terminal_lines

    print(terminal_lines(text, 2000, 40), file=sys.stderr)


def _show(decision, reference, index_digest, rewritten, args, node_class=None, policy=None) -> int:
    from shim import render

    if args.json:
        doc = render.to_json(decision, reference, index_digest, rewritten, node_class, policy)
        print(json.dumps(doc, indent=2))
    else:
        print(_human(
            render.to_text(
                decision, reference, rewritten, verbose=args.verbose, node_class=node_class,
                policy=policy,
            )
        ))  # fmt: skip
    return EXIT_SHIM_ERROR if decision.outcome.value == "refused" else 0


def _registry_context(
    settings, ref, tls_verify: str | None, authfile: str | None, directory, shared
):
    """(Context, why_insecure) to read `ref` as the shim would (podman's
    rules for TLS and credentials, the index store in `directory`): for
    explain, check and warm.

    Raises:
        ShimError: options that do not parse.
    """
    from shim.choice import Context
    from shim.errors import ArgvError
    from shim.insecure import insecurity
    from shim.personality import get as get_personality

    personality = get_personality("podman")
    pull = ["pull"]
    if tls_verify is not None:
        pull.append(f"--tls-verify={tls_verify}")
    if authfile:
        pull += ["--authfile", authfile]
    try:
        inv = personality.parse([*pull, str(ref)])
    except ArgvError as exc:
        raise ShimError(f"cannot read {ref}: {exc}") from None
    ctx = Context(
        personality, inv, settings, os.environ, os.uname().nodename, None, directory, shared
    )
    verify = personality.tls_verify(inv, os.environ)
    why: list = []

    def why_insecure() -> str | None:
        if not why:
            why.append(insecurity(ref, os.environ, settings.insecure_registries, verify))
        return why[0]

    return ctx, why_insecure


def _fetch(args):
    """(prefix, reference, IndexData, settings) for the REF of explain/check:
    from the registry (what it says now; the index store is refreshed), or,
    when the registry cannot be reached, from the index store, with a warning
    (an offline compute node explains what its shim decides)."""
    from shim import config, decisions
    from shim.intercept import registry_operand

    found = registry_operand(args.reference)
    if found is None:
        raise ShimError(
            f"{args.reference!r} is not a fully qualified registry reference (host/repository[:tag])"
        )
    prefix, ref = found
    settings = config.load()
    directory, shared, _ = decisions.usable_dir(
        settings.decision_cache_dir, os.environ, settings.cache_trusted_uids
    )
    ctx, why_insecure = _registry_context(
        settings, ref, args.tls_verify, args.authfile, directory, shared
    )
    return prefix, ref, ctx.index_data(ref, why_insecure, refresh=True), settings


def cmd_explain(args) -> int:
    import socket

    import hostfacts
    from shim.choice import policy_entry, policy_of
    from shim.resolve import decide

    prefix, ref, data, settings = _fetch(args)
    if args.node_class:
        node_class = args.node_class
        facts = hostfacts.load_facts(settings.class_facts(node_class))
    else:
        # --facts/--cpuinfo describe some host, not this node: no class of its own
        own = not (args.facts or args.cpuinfo)
        node_class = settings.node_class_for(socket.gethostname()) if own else None
        facts = _facts(args)
    classes = (node_class,) if node_class else ()
    entry = policy_entry(settings, str(ref), classes)  # a policy may name a tag or digest
    requested = _requested_platform(args.platform, facts) if args.platform else None
    decision = decide(  # the job's GPUs: this command's visible-device variables
        data, facts, policy_of(settings, str(ref), classes), requested, visible=os.environ
    )
    rewritten = prefix + str(ref.with_digest(decision.chosen.digest)) if decision.chosen else None
    return _show(decision, str(ref), data.digest, rewritten, args, node_class, entry)


def _registry_flags(p) -> None:
    """``--tls-verify`` and ``--authfile``, as podman's, on subcommand parser `p`."""
    p.add_argument("--tls-verify", choices=("true", "false"), help="as podman's --tls-verify")
    p.add_argument("--authfile", metavar="FILE", help="credentials file, as podman's --authfile")


def _requested_platform(text: str, facts) -> tuple[str, str, str | None]:
    """``--platform OS[/ARCH[/VARIANT]]`` of ``imagefit explain`` as the shim
    reads a runtime's (:func:`shim.personality.platforms.split_specifier`,
    containerd's ``Parse``; names normalised by :func:`scoring.platform.normalize`),
    the architecture defaulting to the facts' own.

    Raises:
        ShimError: not a platform containerd's ``Parse`` reads (one line).
    """
    from scoring.platform import normalize
    from shim.personality import platforms

    split = platforms.split_specifier(text)
    if split == platforms.UNREADABLE:
        raise ShimError(f"--platform {text!r}: not OS[/ARCH[/VARIANT]] (e.g. linux/amd64/v3)")
    os_, arch, variant = normalize(*split)
    return os_, arch or normalize("", facts.cpu.architecture, None)[1], variant


def _check_rows(args, settings):
    """(node class or None, facts file) of each row of ``imagefit check``:
    the --facts files, else every configured node class."""
    if args.facts:
        return [(None, path) for path in args.facts]
    if not settings.node_classes:
        raise ShimError(
            "nothing to check against: give --facts FILE (repeat), or name node classes "
            "([node_classes.NAME] in the config)"
        )
    return [(name, path) for name, path, _ in settings.node_classes]


def cmd_check(args) -> int:
    import hostfacts
    from shim import render
    from shim.choice import policy_entry, policy_of
    from shim.resolve import decide

    prefix, ref, data, settings = _fetch(args)
    rows, paths, classes, entries, hosts = [], [], [], [], []
    unreadable = False
    for node_class, path in _check_rows(args, settings):
        try:
            facts = hostfacts.load_facts(path)
        except ValueError as exc:  # HostFactsError: this row, not the whole matrix
            if not node_class:
                raise
            _err(f"imagefit: node class {node_class}: {exc}")
            unreadable = True
            continue
        scope = (node_class,) if node_class else ()
        if node_class:
            name = node_class
        else:
            name = facts.hostname or os.path.splitext(os.path.basename(path))[0]
        entry = policy_entry(settings, str(ref), scope)
        rows.append((name, decide(data, facts, policy_of(settings, str(ref), scope))))
        hosts.append(render.host_cell(facts))
        paths.append(path)
        classes.append(node_class)
        entries.append(entry)
    if args.csv:
        import csv

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["node", "facts", "host", "outcome", "build", "digest", "reason"])
        for (name, d), path in zip(rows, paths, strict=True):
            chosen = next((v for v in d.verdicts if v.candidate == d.chosen), None)
            writer.writerow(
                [name, path, d.host, d.outcome.value, chosen.build if chosen else "",
                 d.chosen.digest if d.chosen else "", d.reason]
            )  # fmt: skip
    elif args.json:
        out = {
            "schema_version": 1,
            "reference": str(ref),
            "index_digest": data.digest,
            "nodes": [
                {
                    "node": name,
                    "facts": path,
                    **render.to_json(d, str(ref), data.digest, None, node_class, entry),
                }
                for (name, d), path, node_class, entry in zip(
                    rows, paths, classes, entries, strict=True
                )
            ],
        }
        print(json.dumps(out, indent=2))
    else:
        print(_human(render.matrix(rows, str(ref), hosts)))
    refused = any(d.outcome.value == "refused" for _, d in rows)
    return EXIT_SHIM_ERROR if refused or unreadable else 0


def _warm_settings(settings):
    """`settings` for ``imagefit warm``: what is past half its TTL is
    refreshed now (one HEAD per image), so a cron job every TTL/2 keeps
    every record and decision fresh; a failure is an error, never a
    pass-through warning."""
    from shim import config

    values = {name: getattr(settings, name) for name in config.Settings.__slots__}
    values.update(decision_cache_ttl=settings.decision_cache_ttl / 2, on_error="refuse")
    return config.Settings(**values)


def _warm_line(ref, who: str, entry) -> str:
    if entry.outcome == "selected":
        return f"{ref}: {who} -> {entry.build or '?'} ({entry.chosen})"
    if entry.outcome == "refused":
        return entry.refusal.splitlines()[0]
    return f"{ref}: {who} -> passed through (no compatibility data to choose by)"


def cmd_warm(args) -> int:
    """``imagefit warm REF...``: fill the site's index store with each image
    and make its decision for every node class, as this uid (a cron job as
    root or as a uid in ``cache_trusted_uids``)."""
    from shim import config, decisions
    from shim.choice import Context, warn
    from shim.errors import RegistryError
    from shim.intercept import registry_operand
    from shim.personality import get as get_personality
    from shim.targets import Target

    settings = config.load()
    for line in settings.warnings:
        warn(line)
    if settings.decision_cache_ttl <= 0:
        raise ShimError("the decision cache is off (decision_cache_ttl = 0): nothing to warm")
    refs = []
    for operand in args.references:
        found = registry_operand(operand)
        if found is None:
            raise ShimError(
                f"{operand!r} is not a fully qualified registry reference (host/repository[:tag])"
            )
        refs.append(found[1])
    directory, shared, dir_warning = decisions.usable_dir(
        settings.decision_cache_dir, os.environ, settings.cache_trusted_uids
    )
    if dir_warning:
        warn(dir_warning)
    if directory is None:
        raise ShimError(
            "no cache directory this user controls to warm (the per-user cache is in a "
            "directory another user can change); set decision_cache_dir"
        )
    if not dir_warning and not settings.decision_cache_dir:
        warn(
            f"no decision_cache_dir in the config: warming only the per-user cache of uid "
            f"{os.geteuid()} ({directory})"
        )
    uid = os.geteuid()
    if shared and uid != 0 and uid not in settings.cache_trusted_uids:
        warn(
            f"uid {uid} is neither root nor in cache_trusted_uids: other users will not use "
            "what this warms (run it as root or as a trusted uid)"
        )
    hostname = os.uname().nodename
    if settings.node_classes:
        targets = [
            (name, Target((name,), (path,), False, f"node class {name}"))
            for name, path, _ in settings.node_classes
        ]
    else:
        targets = [("this node", Target((), (), False, "this node"))]
    personality = get_personality("podman")
    warm_settings = _warm_settings(settings)
    failed = False
    usable = []
    probe = Context(personality, None, warm_settings, os.environ, hostname, None, directory, shared)
    for who, target in targets:
        try:
            probe.facts_of(target)
        except (ValueError, OSError, ShimError) as exc:  # HostFactsError is a ValueError
            _err(f"{who}: cannot read its facts: {exc}")
            failed = True
            continue
        usable.append((who, target))
    for ref in refs:
        ctx, why_insecure = _registry_context(
            warm_settings, ref, args.tls_verify, args.authfile, directory, shared
        )
        ctx.facts, ctx.identities = probe.facts, probe.identities  # loaded once for every image
        try:
            ctx.index_data(ref, why_insecure)
        except (RegistryError, ShimError, ValueError) as exc:
            _err(f"{ref}: cannot resolve: {exc}")
            failed = True
            continue
        for who, target in usable:
            try:
                entry = ctx.entry(ref, target, why_insecure)
            except (ShimError, ValueError, OSError) as exc:
                _err(f"{ref}: {who}: {exc}")
                failed = True
                continue
            if entry is None:  # not with on_error = "refuse"; kept for safety
                failed = True
                continue
            print(_human(_warm_line(ref, who, entry)))
    return EXIT_SHIM_ERROR if failed else 0


def cmd_pull(args) -> int:
    """``imagefit pull --node-class NAME... REF [-- OPTIONS]``: the shimmed
    pull for those classes (``IMAGEFIT_NODE_CLASS``), as ``podman pull``
    through the shim would run it."""
    from shim import config
    from shim import main as shim_main

    settings = config.load()
    classes = list(dict.fromkeys(args.node_class))
    for name in classes:
        settings.class_facts(name)  # ConfigError (exit 125) for an unknown class
    options = list(args.options)
    if options and options[0] == "--":
        options = options[1:]
    operand = args.reference
    if args.runtime in ("apptainer", "singularity") and "://" not in operand:
        operand = "docker://" + operand
    os.environ["IMAGEFIT_NODE_CLASS"] = ",".join(classes)
    # an argv[0] that names the runtime and is no file (the shim skips its own
    # file when it looks for the real runtime; a relative name could be one)
    return shim_main.main([f"/dev/null/{args.runtime}", "pull", *options, operand])


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
        host = f"the CPU of {args.cpuinfo}" if args.cpuinfo else "this host's real facts"
        if getattr(args, "facts", None):
            host = f"the facts in {args.facts}"
        print("imagefit demo: an example index shipped with imagefit, one application built for")
        print(f"{len(index['manifests'])} CPU targets, resolved against {host}.")
        print(
            "(Illustrative digests; nothing is pulled. `imagefit explain REF` does this for a real index.)"
        )
        print(
            "The score is the build's depth in archspec's CPU DAG: the deepest fitting build wins."
        )
        print()
    return _show(decision, reference, None, rewritten, args)


def cmd_install(args) -> int:
    from shim import install

    return install.run(args)


def cmd_doctor(args) -> int:
    from shim import doctor

    return doctor.run(args)


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
    p.add_argument(
        "--nfd", action="store_true", help="the facts as NFD features (`nfd export features` shape)"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="show the evidence of every probe")
    p.add_argument(
        "--root",
        metavar="DIR",
        help="probe a copied tree (DIR/proc, DIR/sys, DIR/etc) instead of /",
    )
    p.add_argument(
        "--refresh", action="store_true", help="probe again, ignoring the per-boot cache"
    )
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")
    facts_options(p, with_file=False)
    p.set_defaults(func=cmd_facts)

    p = sub.add_parser("explain", help="show which build of REF this host gets, and why")
    p.add_argument("reference", metavar="REF")
    p.add_argument("--json", action="store_true", help="the decision as JSON")
    p.add_argument("-v", "--verbose", action="store_true", help="every check of every candidate")
    _registry_flags(p)
    facts_options(p)
    p.add_argument(
        "--node-class", metavar="NAME",
        help="for that node class of the config (its facts file and policy scope)",
    )  # fmt: skip
    p.add_argument(
        "--platform", metavar="OS/ARCH[/VARIANT]",
        help="as `podman run --platform`: only builds that platform accepts (linux/amd64/v3)",
    )  # fmt: skip
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser(
        "check", help="which build of REF each node class gets (facts files), or why none"
    )
    p.add_argument("reference", metavar="REF")
    p.add_argument(
        "--facts",
        action="append",
        metavar="FILE",
        help="a node class's facts (repeat; default: every [node_classes] class of the config)",
    )
    output = p.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="the matrix as JSON")
    output.add_argument(
        "--csv", action="store_true", help="the matrix as CSV (one row per node class)"
    )
    _registry_flags(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser(
        "warm",
        help="resolve images into the site's index store and decide them for every node class",
        description="For a cron job (root or a uid in cache_trusted_uids): fetch each REF into "
        "the shared index store (decision_cache_dir) and store its decision for every "
        "[node_classes] class (this node's facts when none are configured). What is past half "
        "its decision_cache_ttl is refreshed: run it every decision_cache_ttl/2 seconds.",
    )
    p.add_argument("references", nargs="+", metavar="REF")
    _registry_flags(p)
    p.set_defaults(func=cmd_warm)

    p = sub.add_parser(
        "pull",
        help="pull REF for node classes (on a login node): the shimmed pull with IMAGEFIT_NODE_CLASS",
        description="Runs `RUNTIME pull [OPTIONS] REF` through the shim for the named node "
        "classes: podman stores every class's build (and tags the first as REF); apptainer, "
        "singularity, sarus, docker and ch-image get the one build that fits every named class.",
    )
    p.add_argument("reference", metavar="REF")
    p.add_argument(
        "options", nargs="*", metavar="OPTION",
        help="options for the runtime's pull, after --",
    )  # fmt: skip
    p.add_argument("--runtime", choices=RUNTIME_NAMES, default="podman", help="default: podman")
    p.add_argument(
        "--node-class", action="append", required=True, metavar="NAME",
        help="a node class of the config (repeat)",
    )  # fmt: skip
    p.set_defaults(func=cmd_pull)

    p = sub.add_parser("demo", help="resolve the embedded example index against this host")
    p.add_argument("--json", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    facts_options(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "install",
        help="link the shim as podman (docker, ...) ahead of the real runtimes",
        description="--user: links in $XDG_DATA_HOME/imagefit/bin; --prefix DIR: links in DIR/bin; "
        "--site --prefix DIR (root): root-owned links, /etc/imagefit/config.toml skeleton, "
        "DIR/etc/profile.d/imagefit.sh. Prints the PATH line; never edits shell rc files.",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--user", action="store_true", help="for yourself, in $XDG_DATA_HOME/imagefit/bin"
    )
    where.add_argument(
        "--site", action="store_true", help="for every user (as root; needs --prefix)"
    )
    p.add_argument("--prefix", metavar="DIR", help="link into DIR/bin")
    p.add_argument(
        "--runtime",
        action="append",
        choices=INSTALL_RUNTIMES,
        help="link this runtime (repeatable)",
    )
    p.add_argument("--force", action="store_true", help="replace existing files")
    p.add_argument(
        "--uninstall", action="store_true", help="remove the links (only links to an imagefit shim)"
    )
    p.set_defaults(func=cmd_install)

    p = sub.add_parser(
        "doctor", help="check the installation: PATH, real runtimes, config, caches, registries"
    )
    p.add_argument("--json", action="store_true", help="the report as JSON")
    p.add_argument(
        "--registry",
        action="append",
        metavar="HOST",
        help="also check that registry HOST[:PORT] answers (repeatable)",
    )
    p.add_argument(
        "--image", action="append", metavar="REF",
        help="check the config's [[policy]] for REF against its index: a pin that names no "
        "build is a problem (repeatable; its registry is checked too)",
    )  # fmt: skip
    p.set_defaults(func=cmd_doctor)

    from shim.author.cli import register as register_author  # index create, attach, lint, conform

    register_author(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``imagefit``. Returns the exit status: 125 with one
    terminal-safe line for the shim's errors, bad input and anything
    unexpected (never a traceback: :func:`shim.intercept.unexpected` names
    the exception and where it was raised); 130 on Ctrl-C."""
    args = _parser().parse_args(argv)
    if getattr(args, "machine", None) and not getattr(args, "cpuinfo", None):
        print("imagefit: --machine needs --cpuinfo", file=sys.stderr)
        return 2
    if (
        getattr(args, "node_class", None)
        and args.command == "explain"
        and (args.facts or args.cpuinfo)
    ):
        print("imagefit: --node-class takes its facts from the config: not with --facts or --cpuinfo",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        return args.func(args)
    except ShimError as exc:
        _err(f"imagefit: {exc}")
        return exc.exit_code
    except ValueError as exc:  # HostFactsError, InvalidIndexError: bad input, one line
        _err(f"imagefit: {exc}")
        return EXIT_SHIM_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug or an input no check foresaw: one line, no traceback
        from shim.intercept import unexpected

        _err(f"imagefit: {unexpected(exc)}")
        return EXIT_SHIM_ERROR
