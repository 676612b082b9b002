"""``imagefit index build NAME [CONTEXT] --compiler gcc@12.2 --target T ...``:
build one image per CPU target from one Containerfile, then publish them as
one annotated index, as ``imagefit index create`` does.

The Containerfile (``-f FILE``; default ``CONTEXT/Containerfile``, else
``CONTEXT/Dockerfile``) reads the target through build arguments::

    ARG IMAGEFIT_TARGET     # the archspec target: zen3, x86_64_v3, ...
    ARG IMAGEFIT_CFLAGS     # archspec's flags for it and the compiler named
                            # by --compiler: -march=znver3 -mtune=znver3

and a file that declares neither is refused (every target would get the
same build). For each target, most generic first (archspec depth, as
``index create`` orders builds; ``--keep-order`` keeps the given order):

1. its flags: ``archspec.cpu.TARGETS[T].optimization_flags(COMPILER,
   VERSION)`` (archspec/cpu/microarchitecture.py); a target the compiler
   version cannot do is refused before anything is built, with archspec's
   reason (``UnsupportedMicroarchitecture``), and so is a compiler archspec
   has no flags for;
2. ``podman build -f FILE --build-arg IMAGEFIT_TARGET=T --build-arg
   IMAGEFIT_CFLAGS=FLAGS [--build-arg ...] --label KEY=VALUE ... -t
   HOST/REPO:TAG-T CONTEXT`` with the real podman (never the shim:
   :func:`shim.locate.find_runtime`, ``IMAGEFIT_ACTIVE=1``); the labels are
   the build's compatibility annotations, so the image says what it needs
   on its own; a target of another architecture family than this host's is
   built with ``--platform linux/ARCH`` (podman needs emulation for it);
3. ``podman push --digestfile ... HOST/REPO:TAG-T``: the build's manifest
   digest, as the registry stores it.

Before step 2, the index the targets make is linted with placeholder
digests (:func:`shim.author.lint.lint_document`): errors refuse the list,
``--dry-run`` prints the warnings and the podman commands and runs nothing.
After the last push the builds, named ``HOST/REPO@DIGEST``, go to
:func:`shim.author.index.publish`: the same resolution, annotations, order,
lint and push as ``index create``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass

from scoring import vocabulary
from shim.author import index
from shim.author.common import AuthorError, Registries, tls_option
from shim.untrusted import read_bounded, terminal_safe

#: Seconds one ``podman build`` or ``podman push`` may take.
PODMAN_TIMEOUT = 4 * 3600.0
BUILD_ARGS = ("IMAGEFIT_TARGET", "IMAGEFIT_CFLAGS")
#: a comment in a --targets file: '#' after whitespace (one at a line's start is handled apart)
_COMMENT = re.compile(r"\s#")
_ARG_LINE = re.compile(r"^\s*ARG\s+(IMAGEFIT_TARGET|IMAGEFIT_CFLAGS)\b", re.I | re.M)
#: archspec family -> OCI architecture (the inverse of satisfy.ARCH_FAMILY's main entries).
OCI_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "ppc64le": "ppc64le", "riscv64": "riscv64"}


@dataclass
class TargetBuild:
    """One target to build: its archspec name, annotations, flags, tag."""

    target: str
    annotations: dict[str, str]
    where: str
    flags: str = ""
    tag: str = ""  # HOST/REPO:TAG-TARGET
    digest: str = ""


# -- input -------------------------------------------------------------------------


def parse_compiler(text: str) -> tuple[str, str]:
    """``NAME@VERSION`` (``gcc@12.2``) as (name, version), names as archspec
    spells them (gcc, clang, aocc, intel, oneapi, nvhpc, ...).

    Raises:
        AuthorError: not NAME@VERSION, a name archspec does not know, a
            version that is not dot-separated digits.
    """
    from archspec.cpu import TARGETS

    name, at, version = text.strip().partition("@")
    known = sorted({c for t in TARGETS.values() for c in t.compilers})
    if not at or not name or not version:
        raise AuthorError(f"--compiler {text!r} is not NAME@VERSION (gcc@12.2)")
    if name not in known:
        raise AuthorError(
            f"--compiler {text!r}: archspec knows no compiler {name!r} ({', '.join(known)})"
        )
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)*", version):
        raise AuthorError(f"--compiler {text!r}: the version must be dot-separated digits")
    return name, version


def read_targets(options: list[str], files: list[str]) -> list[TargetBuild]:
    """The targets of ``--targets FILE`` (one ``TARGET[,key=value...]`` a
    line; blank lines and comments skipped: ``#`` at the start of a line or
    after whitespace, so ``key=a#b`` keeps its ``#``), then of ``--target``.

    Raises:
        AuthorError: an unreadable file (not a regular file, such as a FIFO
            or a device; over :data:`shim.untrusted.MAX_CONFIG_FILE` bytes), a line that is not
            TARGET[,key=value...], a target given twice, no target.
    """
    found: list[TargetBuild] = []
    for path in files:
        try:  # a regular file of at most 1 MiB: never a FIFO waited on, never a device read
            lines = read_bounded(path).decode("utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise AuthorError(
                f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}"
            ) from None
        for n, line in enumerate(lines, 1):
            # a comment starts a line or follows whitespace (as in a shell):
            # a '#' inside a value (``key=a#b``) is the value's
            stripped = line.strip()
            text = "" if stripped.startswith("#") else _COMMENT.split(stripped, 1)[0].strip()
            if text:
                where = f"{path}:{n}"
                target, annotations = index.parse_target_option(text, where)
                found.append(TargetBuild(target.strip().lower(), annotations, where))
    for i, text in enumerate(options):
        where = f"--target #{i + 1}"
        target, annotations = index.parse_target_option(text, where)
        found.append(TargetBuild(target.strip().lower(), annotations, where))
    if not found:
        raise AuthorError("no targets: give --target TARGET (or --targets FILE)")
    seen: dict[str, str] = {}
    for t in found:
        if t.target in seen:
            raise AuthorError(
                f"{t.where}: target {t.target} given twice (also {seen[t.target]}): one build per target"
            )
        seen[t.target] = t.where
    return found


def containerfile(context: str, given: str | None) -> str:
    """The build file: `given`, else CONTEXT/Containerfile, else
    CONTEXT/Dockerfile (podman build's own choice); it must declare ``ARG
    IMAGEFIT_TARGET`` or ``ARG IMAGEFIT_CFLAGS``.

    Raises:
        AuthorError: no such file, or it reads neither build argument.
    """
    if not os.path.isdir(context):
        raise AuthorError(f"build context {context!r} is not a directory")
    candidates = (
        [given] if given else [os.path.join(context, n) for n in ("Containerfile", "Dockerfile")]
    )
    if given:
        path = given
    else:
        path = next((p for p in candidates if os.path.lexists(p)), None)
        if path is None:
            raise AuthorError(f"no {' or '.join(candidates)}: name the build file with -f FILE")
    try:  # a regular file, bounded: a FIFO or a device is one line, never a hang
        text = read_bounded(path, 4 * 1024 * 1024).decode("utf-8", "replace")
    except OSError as exc:
        raise AuthorError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not _ARG_LINE.search(text):
        raise AuthorError(
            f"{path} declares neither ARG IMAGEFIT_TARGET nor ARG IMAGEFIT_CFLAGS: "
            "every target would get the same build"
        )
    return path


def target_flags(t: TargetBuild, compiler: str, version: str) -> str:
    """archspec's optimisation flags for `t` with COMPILER@VERSION.

    Raises:
        AuthorError: unknown target, a target this compiler version cannot
            do (archspec's reason), no flags at all for this compiler.
    """
    from archspec.cpu import TARGETS, UnsupportedMicroarchitecture

    uarch = TARGETS[t.target]  # build_annotations checked the name
    try:
        flags = uarch.optimization_flags(compiler, version)
    except UnsupportedMicroarchitecture as exc:
        raise AuthorError(f"{t.where}: target {t.target}: {' '.join(str(exc).split())}") from None
    except ValueError as exc:  # InvalidCompilerVersion
        raise AuthorError(f"{t.where}: {compiler}@{version}: {exc}") from None
    if not flags.strip():
        raise AuthorError(
            f"{t.where}: archspec has no optimisation flags for {t.target} "
            f"({uarch.family.name}) with {compiler}"
        )
    return " ".join(flags.split())


def plan(args) -> tuple[index.IndexSpec, list[TargetBuild], str]:
    """Every local check, before podman runs: the index spec (builds not yet
    named), the targets in build order with their flags and tags, the build file."""
    from scoring.cpu import depth

    annotations = {}
    for text in args.annotation or []:
        key, value = index.parse_annotation_option(text)
        annotations[key] = value
    spec = index.IndexSpec(name=args.name, annotations=annotations, builds=[])
    name = index.index_name(spec)
    compiler, version = parse_compiler(args.compiler)
    targets = read_targets(args.target or [], args.targets or [])
    for t in targets:
        t.annotations = index.build_annotations(
            index.BuildSpec("", t.target, t.annotations, t.where)
        )
    for t in targets:
        t.flags = target_flags(t, compiler, version)
        t.tag = f"{name.name}:{name.tag}-{t.target}"
        if len(f"{name.tag}-{t.target}") > 128:
            raise AuthorError(f"{t.where}: tag {name.tag}-{t.target} is longer than 128 characters")
    if not args.keep_order:
        targets.sort(key=lambda t: depth(t.target))
    for text in args.build_arg or []:
        key = text.partition("=")[0].strip()
        if key in BUILD_ARGS:
            raise AuthorError(f"--build-arg {key}: imagefit sets it per target")
    return spec, targets, containerfile(args.context, args.file)


def lint_plan(targets: list[TargetBuild], annotations: dict[str, str]):
    """The lint findings of the index `targets` would make (placeholder
    digests, the platform each target's build will get)."""
    from archspec.cpu import TARGETS

    from shim.author import satisfy
    from shim.author.lint import lint_document

    manifests = []
    for t in targets:
        family = TARGETS[t.target].family.name
        platform = {"architecture": OCI_ARCH.get(family, family), "os": "linux"}
        variant = satisfy.variant_for(t.target)
        if variant:
            platform["variant"] = variant
        placeholder = "sha256:" + hashlib.sha256(t.target.encode()).hexdigest()
        manifests.append({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                          "digest": placeholder, "size": 1, "platform": platform,
                          "annotations": t.annotations})  # fmt: skip
    doc = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
           "manifests": manifests}  # fmt: skip
    if annotations:
        doc["annotations"] = annotations
    return lint_document(doc)


# -- podman ------------------------------------------------------------------------


def build_argv(args, t: TargetBuild, path: str) -> list[str]:
    """``podman build`` options for one target (without the podman path)."""
    from archspec.cpu import TARGETS, host

    argv = ["build", "-f", path,
            "--build-arg", f"IMAGEFIT_TARGET={t.target}",
            "--build-arg", f"IMAGEFIT_CFLAGS={t.flags}"]  # fmt: skip
    for text in args.build_arg or []:
        argv += ["--build-arg", text]
    for key, value in t.annotations.items():
        argv += ["--label", f"{key}={value}"]
    family = TARGETS[t.target].family.name
    if family != host().family.name:
        argv += ["--platform", f"linux/{OCI_ARCH.get(family, family)}"]
    argv += list(args.build_option or [])
    return [*argv, "-t", t.tag, args.context]


def push_argv(args, t: TargetBuild, digestfile: str) -> list[str]:
    argv = ["push", "--digestfile", digestfile]
    if args.tls_verify is not None:
        argv.append(f"--tls-verify={args.tls_verify}")
    if args.authfile:
        argv += ["--authfile", args.authfile]
    return [*argv, t.tag]


class Podman:
    """The real podman (never a shim) with the caller's global options."""

    def __init__(
        self, runtime: str, podman_args: list[str], quiet: bool, *, find: bool = True
    ) -> None:
        from shim.author.common import real_runtime

        # find=False (a dry run): only shown, so no podman is needed
        self.path = real_runtime(runtime) if find else runtime
        self.args = list(podman_args)
        self.quiet = quiet
        self.env = {**os.environ, "IMAGEFIT_ACTIVE": "1"}

    def command(self, argv: list[str]) -> str:
        return shlex.join([os.path.basename(self.path), *self.args, *argv])

    def __call__(self, argv: list[str], what: str) -> None:
        """Run podman; its output goes to stderr (captured with --quiet).

        Raises:
            AuthorError: podman cannot start, fails or times out (its last
                line of output in the message).
        """
        out = subprocess.PIPE if self.quiet else 2  # podman's log on our stderr
        try:
            done = subprocess.run(
                [self.path, *self.args, *argv], env=self.env, stdin=subprocess.DEVNULL,
                stdout=out, stderr=out, text=True, timeout=PODMAN_TIMEOUT, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise AuthorError(f"{what}: podman timed out after {PODMAN_TIMEOUT:g} s") from None
        except OSError as exc:
            raise AuthorError(f"cannot run {self.path}: {exc.strerror or exc}") from None
        if done.returncode != 0:
            last = [ln for ln in (done.stdout or "").splitlines() if ln.strip()][-1:]
            said = f": {terminal_safe(last[0], 300)}" if last else " (its output is above)"
            raise AuthorError(f"{what}: podman exited with {done.returncode}{said}")


# -- the command -------------------------------------------------------------------


def run(args) -> int:
    spec, targets, path = plan(args)
    findings = lint_plan(targets, spec.annotations)
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        raise AuthorError(f"refusing to build {spec.name}: " + "; ".join(f.line() for f in errors))
    podman = Podman(args.runtime, args.podman_arg or [], args.quiet, find=not args.dry_run)
    if args.dry_run:
        for f in findings:
            print(f"imagefit: {terminal_safe(f.line(), 2000)}", file=sys.stderr)
        for t in targets:
            print(f"# {t.target}: {t.flags}")
            print(podman.command(build_argv(args, t, path)))
            print(podman.command(push_argv(args, t, "FILE")))
        return 0
    with tempfile.TemporaryDirectory(prefix="imagefit-build-") as tmp:
        for n, t in enumerate(targets, 1):
            print(f"imagefit: [{n}/{len(targets)}] {t.target}: {t.flags}", file=sys.stderr)
            podman(build_argv(args, t, path), f"podman build of {t.target}")
            digestfile = os.path.join(tmp, f"{t.target}.digest")
            podman(push_argv(args, t, digestfile), f"podman push of {t.tag}")
            try:
                with open(digestfile, encoding="ascii") as fh:
                    t.digest = fh.read().strip()
            except (OSError, UnicodeDecodeError):
                t.digest = ""
            if not re.fullmatch(r"sha256:[0-9a-f]{64}", t.digest):
                raise AuthorError(f"podman push of {t.tag} wrote no manifest digest")
    name = index.index_name(spec).name
    spec.builds = [
        index.BuildSpec(f"{name}@{t.digest}", t.target, _short(t.annotations), t.where)
        for t in targets
    ]
    registries = Registries(
        tls_verify=tls_option(args.tls_verify), authfile=args.authfile, timeout=args.timeout
    )
    return index.publish(spec, registries, keep_order=True, dry_run=False)


def _short(annotations: dict[str, str]) -> dict[str, str]:
    """A build's annotations without its CPU target (``BuildSpec.target`` says it)."""
    return {k: v for k, v in annotations.items() if k != vocabulary.CPU_TARGET}
