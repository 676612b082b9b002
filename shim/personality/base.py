"""What every runtime personality provides; defaults shared by several."""

from __future__ import annotations

if False:  # for type checkers only: importing collections costs every shimmed command ~1.3 ms
    from collections.abc import Mapping

from shim import reference
from shim.argv import Invocation
from shim.errors import InvalidReference


class Resolved:
    """One image operand the shim resolved to a build.

    Attributes:
        position: index in the args of the operand.
        prefix: transport prefix kept in front of the reference (``docker://``).
        ref: the reference as the user gave it, normalised.
        digest: the chosen build's manifest digest.
        annotations: the chosen descriptor's annotations.
        cmd: the chosen build's own ``Cmd`` (its image config), ``[]`` when it
            has none, None when unknown (a decision cached before it was kept).
        gpu: the GPU the chosen build requires: ``nvidia``, ``amd`` or ""
            (:func:`shim.gpu_access.build_vendor`).
    """

    __slots__ = ("position", "prefix", "ref", "digest", "annotations", "cmd", "gpu")

    def __init__(
        self,
        position: int,
        prefix: str,
        ref: reference.Reference,
        digest: str,
        annotations: dict,
        cmd: list[str] | None = None,
        gpu: str = "",
    ) -> None:
        self.position = position
        self.prefix = prefix
        self.ref = ref
        self.digest = digest
        self.annotations = annotations
        self.cmd = cmd
        self.gpu = gpu


class Plan:
    """What the shim will run.

    Attributes:
        args: the final argv of the real runtime, without argv[0].
        before: commands to run first, each an argv without argv[0] for the
            same real runtime (``sarus pull IMAGE@DIGEST`` before ``sarus run``),
            with inherited stdin and stderr and its stdout sent to stderr (the
            container's output alone goes to stdout); a failing one ends the
            shim with its status.
        after: commands to run once the main command succeeded (``podman tag
            REPO@DIGEST REPO:TAG`` after a pull), the same way; the shim then
            runs the main command as a child instead of exec'ing it, and exits
            with its status (or the first failing step's).
    """

    __slots__ = ("args", "before", "after")

    def __init__(
        self,
        args: list[str],
        before: list[list[str]] | None = None,
        after: list[list[str]] | None = None,
    ) -> None:
        self.args = args
        self.before = before or []
        self.after = after or []


def split_transport(operand: str, transports: tuple[str, ...]) -> tuple[str, str] | None:
    """(prefix, rest) for an operand starting with one of `transports`, else None."""
    for prefix in transports:
        if operand.startswith(prefix):
            return prefix, operand[len(prefix) :]
    return None


def qualified_reference(text: str, *, allow_short: bool) -> reference.Reference | None:
    """The normalised reference of `text` if the shim may resolve it: fully
    qualified (or a short name when the runtime reads short names as
    docker.io, `allow_short`), not a local ``localhost/`` image, valid.
    Cheap refusals first (no regex for short names)."""
    if reference.could_be_image_id(text):
        return None
    name = text.partition("@")[0]
    slash, colon = name.rfind("/"), name.rfind(":")
    domain, _, qualified = reference.split_domain(name[:colon] if colon > slash else name)
    if (not qualified and not allow_short) or domain == "localhost":
        return None
    try:
        return reference.parse(text)
    except InvalidReference:
        return None


#: the CDI device kind of NVIDIA GPUs (``nvidia-ctk cdi generate``), as a prefix
CDI_NVIDIA = "nvidia.com/gpu="


def csv_record(text: str) -> list[str] | None:
    """The fields of the first CSV record of `text` as Go's encoding/csv
    ``Reader.Read`` returns them (RFC 4180: commas separate fields, a field
    may be quoted, ``""`` inside quotes is a quote, a line break outside
    quotes ends the record; a quote inside an unquoted field is an error):
    how docker's ``--gpus`` and pflag's string slices
    (``readAsCSV``: podman ``--device``) and string maps (apptainer
    ``--env``) read a value. None where Go would fail. Not the csv module:
    it imports ``re`` on the hot path."""
    fields: list[str] = []
    i, n = 0, len(text)
    while True:
        if i < n and text[i] == '"':
            parts, i = [], i + 1
            while True:
                j = text.find('"', i)
                if j < 0:
                    return None
                parts.append(text[i:j])
                if text[j + 1 : j + 2] == '"':
                    parts.append('"')
                    i = j + 2
                    continue
                i = j + 1
                break
            if i < n and text[i] not in ",\r\n":
                return None
            fields.append("".join(parts))
        else:
            j = min((k for k in (text.find(c, i) for c in ",\n") if k >= 0), default=n)
            field = text[i:j]
            if '"' in field:
                return None
            fields.append(field.removesuffix("\r") if j < n and text[j] == "\n" else field)
            i = j
        if i >= n or text[i] in "\r\n":
            return fields
        i += 1  # the comma


def command_env(values) -> dict[str, str | None]:
    """``{NAME: VALUE}`` of the ``-e/--env`` values of a podman or docker
    command line, the last one winning; ``NAME`` alone (the caller's value;
    podman also ``PREFIX*``) maps to None."""
    out: dict[str, str | None] = {}
    for value in values or ():
        if value:
            name, eq, text = value.partition("=")
            out[name] = text if eq else None
    return out


def env_settings(values, names, forwarded: bool = True) -> dict[str, str | None]:
    """``{NAME: VALUE}`` of the ``-e/--env NAME=VALUE`` values
    (:func:`command_env`) whose NAME is one of `names`. A bare ``NAME``
    (podman also ``PREFIX*``) passes the caller's value: left out. Without
    `forwarded` (nobody hands the caller's values on: the user gave GPU or
    device options of their own, or an ``--env-file``, and imagefit adds no
    ``--env=NAME``), every other name of `names` maps to None: the container
    will not have the caller's value."""
    given = command_env(values)
    out: dict[str, str | None] = {n: v for n, v in given.items() if n in names and v is not None}
    if not forwarded:
        passed = [p for p, v in given.items() if v is None]
        for name in names:
            if name in out or any(
                name == p or (p.endswith("*") and name.startswith(p[:-1])) for p in passed
            ):
                continue
            out[name] = None
    return out


class Personality:
    """A runtime's behaviour. Subclasses set ``name``, ``grammar`` and
    ``login_verbs`` and override what differs."""

    name = ""
    grammar = None  # a module with parse(args) -> Invocation
    login_verbs: frozenset[str] = frozenset()
    #: verbs that start a container: GPU access applies to them (:meth:`gpu_flags`)
    gpu_verbs: frozenset[str] = frozenset()
    #: verbs that fetch an image for later runs (``IMAGEFIT_NODE_CLASS``
    #: applies) and verbs that serve the job they run in (``consistency =
    #: "job"`` applies): None for the default of :func:`shim.targets.choose_targets`
    fetch_verbs: frozenset[str] | None = None
    job_verbs: frozenset[str] | None = None
    #: the personality knows how to tell the runtime to skip TLS verification
    #: for a registry only imagefit's config marks insecure
    tls_flag: str | None = None
    #: absolute path of the real runtime the shim will exec, set by
    #: :mod:`shim.main` before parsing (None: unknown, e.g. in unit tests).
    #: A personality may look at it (docker: is it podman-docker's script?).
    real: str | None = None

    def __init__(self, name: str) -> None:
        self.name = name

    def parse(self, args: list[str]) -> Invocation:
        """The invocation (raises ArgvError for a line it cannot read exactly)."""
        return self.grammar.parse(args)

    def operand(
        self, text: str, inv: Invocation, environ: Mapping[str, str]
    ) -> tuple[str, reference.Reference] | None:
        """(prefix, reference) for an operand naming a registry image the shim
        may resolve, or None to leave it alone."""
        raise NotImplementedError

    def passes_through(self, inv: Invocation, environ: Mapping[str, str]) -> bool:
        """True when the shim must not resolve this command's images at all."""
        return inv.enabled("help")

    def tls_verify(self, inv: Invocation, environ: Mapping[str, str]) -> bool | None:
        """The user's explicit TLS choice for the registry (False: skip
        verification), or None when they made none."""
        return None

    def authfile(self, inv: Invocation, environ: Mapping[str, str]) -> str | None:
        """A credentials file the user named for this command, if any."""
        return None

    def credentials(self, inv: Invocation, environ: Mapping[str, str]) -> tuple[str, str] | None:
        """Credentials the runtime takes from its own flags/environment, if any."""
        return None

    def requested_platform(
        self, inv: Invocation, environ: Mapping[str, str]
    ) -> tuple[str, str, str | None] | None:
        """The platform the user asked for on the command line, as (os, OCI
        architecture, variant or None), or None. Honoured as a constraint:
        only builds of that platform are considered; another architecture than
        the host's (emulation) leaves the runtime's own choice alone."""
        return None

    def wants_cmd(self, inv: Invocation) -> bool:
        """True when this command would run the image's own ``Cmd`` through
        the login shell (no command, no TTY: see :func:`shim.login.with_cmd`),
        so the decision must carry it (:class:`shim.decisions.Entry` ``cmd``).
        False by default."""
        return False

    def pulls_many(self, inv: Invocation) -> bool:
        """True when this command stores one image per operand and takes
        several (``podman pull``): a pull for several node classes then
        gets every class's build; otherwise the one build that fits them all."""
        return False

    def has_image(self, inv: Invocation, image: str) -> bool | None:
        """Whether `image` (``name@digest``) is in the runtime's local
        storage that this command uses; None when the personality cannot tell.
        Asked only when the shim decided without the registry and no pull
        source accepts a connection."""
        return None

    def storage_args(self, inv: Invocation) -> list[str]:
        """The options of this command line that select the runtime's local
        storage, for another command on the same storage (none by default)."""
        return []

    def pin(self, prefix: str, ref: reference.Reference, digest: str) -> str:
        """The operand rewritten to the chosen build: ``prefix`` + ``name@digest``."""
        return prefix + str(ref.with_digest(digest))

    def job_env(self, inv: Invocation, environ: Mapping[str, str]) -> dict[str, str | None]:
        """The container's visible-device variables
        (:data:`hostfacts.fingerprint.VISIBLE_ENV`) where the command line,
        or the runtime's own variables for the container, make them differ
        from the caller's environment: ``{NAME: VALUE}`` set,
        ``{NAME: None}`` the container will not have the caller's value
        (unset in it). ``{}`` by default: the caller's environment is the
        job's. The choice fits the GPUs these leave
        (:func:`hostfacts.visible.narrow`), and a decision is cached per
        these values. Standard library only (the hot path asks it)."""
        return {}

    def gpu_flags(
        self, inv: Invocation, vendor: str, environ: Mapping[str, str], euid: int
    ) -> list[str]:
        """The options that give the container the `vendor` GPU (``nvidia``,
        ``amd``) the chosen build requires, inserted right after the
        subcommand word; ``[]`` when the user gave a device or GPU option of
        their own, hid every GPU (:func:`shim.gpu_access.hidden`), or the
        runtime needs none (its hooks do it: Sarus, the default). Asked only
        for :attr:`gpu_verbs` with ``gpu_access = "auto"``."""
        return []

    def finish(
        self,
        args: list[str],
        inv: Invocation,
        resolved: list[Resolved],
        *,
        login: bool,
        insecure_by_config: bool,
        environ: Mapping[str, str],
        euid: int,
    ) -> Plan:
        """The final plan: `args` already has the pinned operands; add the
        login recipe (when `login`), runtime flags and steps."""
        return Plan(args)


def tag_steps(prefix: list[str], resolved: list[Resolved]) -> list[list[str]]:
    """``PREFIX tag REPO@DIGEST REF`` for each operand the user pulled by tag:
    podman and docker store a digest pull under no name, so the chosen build
    gets the tag the user pulled, as a plain pull would (an offline run of REF
    then finds it). `prefix`: the global flags that select the same storage
    or daemon."""
    return [
        [*prefix, "tag", str(r.ref.with_digest(r.digest)), str(r.ref)]
        for r in resolved
        if r.ref.tag and not r.ref.digest
    ]


def image_cmd(resolved: list[Resolved], position: int) -> list[str] | None:
    """The ``Cmd`` of the build resolved at `position` (None: unknown, or not resolved)."""
    return next((r.cmd for r in resolved if r.position == position), None)
