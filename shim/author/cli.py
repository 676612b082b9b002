"""Argument parsers of the author commands (``index create``, ``index build``, ``attach``,
``lint``, ``conform``), registered on ``imagefit``'s subparsers by
:func:`register`. Only argparse here: each command's module loads when it runs."""

from __future__ import annotations

from shim.author.common import DEFAULT_TIMEOUT


def _registry_options(p) -> None:
    p.add_argument("--tls-verify", choices=("true", "false"), help="as podman's --tls-verify")
    p.add_argument("--authfile", metavar="FILE", help="credentials file, as podman's --authfile")
    p.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
        help=f"for all registry requests (default {DEFAULT_TIMEOUT:g})",
    )  # fmt: skip


def _index_create(args) -> int:
    from shim.author import index

    return index.run(args)


def _index_build(args) -> int:
    from shim.author import build

    return build.run(args)


def _attach(args) -> int:
    from shim.author import attach

    return attach.run(args)


def _lint(args) -> int:
    from shim.author import lint

    return lint.run(args)


def _conform(args) -> int:
    from shim.author import conform

    return conform.run(args)


def register(sub) -> None:
    """Add ``index``, ``attach``, ``lint`` and ``conform`` to `sub`."""
    p = sub.add_parser(
        "index", help="image authors: assemble an annotated index (index create, index build)"
    )
    index_sub = p.add_subparsers(dest="index_command", required=True)
    p = index_sub.add_parser(
        "create",
        help="assemble an OCI index from existing images, with compatibility annotations, and push it",
    )
    p.add_argument("name", metavar="NAME", nargs="?", help="HOST/REPO:TAG of the index")
    p.add_argument(
        "--build", action="append", metavar="REF=TARGET[,KEY=VALUE...]",
        help="a build: an image manifest (HOST/REPO:TAG, HOST/REPO@DIGEST, :TAG or @DIGEST in "
        "NAME's repository), its archspec CPU target, more annotations (gpu.vendor=nvidia...)",
    )  # fmt: skip
    p.add_argument(
        "--from", dest="from_file", metavar="FILE",
        help="YAML or TOML file: {name, annotations, builds: [{ref, target, annotations}]}",
    )  # fmt: skip
    p.add_argument(
        "--annotation", action="append", metavar="KEY=VALUE", help="an index-level annotation"
    )
    p.add_argument(
        "--keep-order", action="store_true",
        help="keep the builds in the order given (default: most generic first)",
    )  # fmt: skip
    p.add_argument("--dry-run", action="store_true", help="print the index JSON, push nothing")
    _registry_options(p)
    p.set_defaults(func=_index_create)

    p = index_sub.add_parser(
        "build",
        help="build one image per CPU target from a Containerfile (ARG IMAGEFIT_TARGET, "
        "IMAGEFIT_CFLAGS) with podman build, push them, and create their annotated index",
    )
    p.add_argument("name", metavar="NAME", help="HOST/REPO:TAG of the index (builds: TAG-TARGET)")
    p.add_argument(
        "context", metavar="CONTEXT", nargs="?", default=".", help="build context (default .)"
    )
    p.add_argument(
        "-f",
        "--file",
        metavar="FILE",
        help="Containerfile (default CONTEXT/Containerfile, else Dockerfile)",
    )
    p.add_argument(
        "--compiler", required=True, metavar="NAME@VERSION",
        help="the compiler the build uses (gcc@12.2): archspec's flags for it go in IMAGEFIT_CFLAGS",
    )  # fmt: skip
    p.add_argument(
        "--target", action="append", metavar="TARGET[,KEY=VALUE...]",
        help="an archspec CPU target to build, with more annotations (repeatable)",
    )  # fmt: skip
    p.add_argument(
        "--targets", action="append", metavar="FILE",
        help="a file of targets, one TARGET[,KEY=VALUE...] a line (# comments)",
    )  # fmt: skip
    p.add_argument(
        "--build-arg", action="append", metavar="KEY=VALUE", help="another podman build --build-arg"
    )
    p.add_argument(
        "--build-option", action="append", metavar="OPTION",
        help="another podman build option, e.g. --build-option=--network=none (repeatable)",
    )  # fmt: skip
    p.add_argument(
        "--podman-arg", action="append", metavar="ARG",
        help="a global podman option, e.g. --podman-arg=--root=/tmp/store (repeatable)",
    )  # fmt: skip
    p.add_argument(
        "--runtime",
        default="podman",
        metavar="podman|PATH",
        help="the real podman (default: on PATH)",
    )
    p.add_argument(
        "--annotation", action="append", metavar="KEY=VALUE", help="an index-level annotation"
    )
    p.add_argument(
        "--keep-order", action="store_true",
        help="build and list the targets in the order given (default: most generic first)",
    )  # fmt: skip
    p.add_argument(
        "--dry-run", action="store_true",
        help="print each target's flags and podman commands, build and push nothing",
    )  # fmt: skip
    p.add_argument("-q", "--quiet", action="store_true", help="do not show podman's output")
    _registry_options(p)
    p.set_defaults(func=_index_build)

    p = sub.add_parser("attach", help="attach an NFD image-compatibility artifact to REF")
    p.add_argument("reference", metavar="REF", help="the index (or image) to attach to")
    p.add_argument("--nfd", required=True, metavar="SPEC", help="NFD spec (YAML, v1alpha1)")
    p.add_argument(
        "--build", metavar="TARGET|DIGEST",
        help="attach to this build of the index (its CPU target or manifest digest)",
    )  # fmt: skip
    p.add_argument(
        "--created", metavar="RFC3339",
        help="org.opencontainers.image.created (default: now); the newest artifact counts",
    )  # fmt: skip
    _registry_options(p)
    p.set_defaults(func=_attach)

    p = sub.add_parser(
        "lint",
        help="find compatibility data no host satisfies, ambiguous builds, unknown keys "
        "(--policy: the config's pins and preferences that name no build)",
    )
    p.add_argument("reference", metavar="REF")
    p.add_argument("--json", action="store_true", help="the findings as JSON")
    p.add_argument("--no-nfd", dest="nfd", action="store_false", help="do not fetch NFD artifacts")
    p.add_argument(
        "--policy", action="store_true",
        help="check the config's [[policy]] entries for REF (every node class) against its index "
        "instead: a pin that names no build, prefer/avoid names that match none",
    )  # fmt: skip
    _registry_options(p)
    p.set_defaults(func=_lint)

    p = sub.add_parser("conform", help="check the HPC container expectations with the real podman")
    p.add_argument("reference", metavar="REF")
    p.add_argument(
        "--runtime",
        default="podman",
        metavar="podman|PATH",
        help="the real podman (default: on PATH)",
    )
    p.add_argument(
        "--podman-arg", action="append", metavar="ARG",
        help="a global podman option, e.g. --podman-arg=--root=/tmp/store (repeatable)",
    )  # fmt: skip
    p.add_argument("--no-pull", action="store_true", help="use the local image, do not pull")
    p.add_argument("--tls-verify", choices=("true", "false"), help="for the pull")
    p.add_argument("--authfile", metavar="FILE", help="for the pull")
    p.add_argument(
        "--timeout", type=float, default=300.0, metavar="SECONDS", help="per podman command"
    )
    p.add_argument("--json", action="store_true", help="the checks as JSON")
    p.set_defaults(func=_conform)
