"""For whom the shim chooses: this node, named node classes, or every class
of a Slurm job. Standard library only (job steps take this path on every
rank; the facts of named classes are read only on a decision-cache miss).

- This node (the default): its live facts (or ``$IMAGEFIT_FACTS``), its
  class name from ``[node_classes]`` hostname globs (for policy scopes).
- Named classes (``IMAGEFIT_NODE_CLASS=NAME[,NAME...]`` on a pull): each
  class's facts file. A runtime whose pull stores several images (podman)
  gets every class's build; one that makes one artifact (an apptainer SIF,
  a Sarus image) gets the one build that fits every named class.
- A job (``consistency = "job"`` inside a Slurm job): the node classes of
  every node in ``SLURM_JOB_NODELIST``; one build that fits all of them, so
  every rank runs the same digest. A job node in no class: a warning, and
  this node chooses for itself.
"""

from __future__ import annotations

from hostfacts import fingerprint
from shim.errors import ConfigError


class Target:
    """One choice to make.

    Attributes:
        classes: node class names it stands for (empty: this node, no class).
        files: facts files, one per class (empty: this node's live facts).
        common: one build must fit every class in `classes`.
        why: how the target was found, for messages (``this node``,
            ``node class zen4``, ``job 42 (classes zen4, spr)``).
    """

    __slots__ = ("classes", "files", "common", "why")

    def __init__(self, classes=(), files=(), common=False, why="this node"):
        self.classes = tuple(classes)
        self.files = tuple(files)
        self.common = common
        self.why = why

    @property
    def live(self) -> bool:
        return not self.files

    def __repr__(self) -> str:
        return f"Target(classes={self.classes!r}, common={self.common!r}, why={self.why!r})"


def read_class_facts(path: str) -> bytes:
    """The bytes of a node class's facts file, read once (bounded, never
    blocking: :func:`hostfacts.fingerprint.read_regular`).

    Raises:
        ConfigError: the file cannot be read, is not a regular file, or is too large.
    """
    try:
        return fingerprint.read_regular(path)
    except OSError as exc:
        raise ConfigError(f"cannot read node class facts {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"node class facts {path}: {exc}") from None


def file_fingerprint(path: str) -> str:
    """The fingerprint of a facts file's bytes (as :func:`fingerprint.live_fingerprint`
    gives for ``$IMAGEFIT_FACTS``).

    Raises:
        ConfigError: the file cannot be read.
    """
    return fingerprint.file_fingerprint(read_class_facts(path))


def live_fingerprint(environ, hostname: str, cpu_target: str | None) -> str | None:
    """This node's facts fingerprint, with the site's CPU target override in it."""
    fp = fingerprint.live_fingerprint(environ, hostname)
    if fp is not None and cpu_target:
        fp = fingerprint.digest({"facts": fp, "cpu_target": cpu_target})
    return fp


def choose_targets(
    settings,
    verb: str | None,
    many_images: bool,
    environ,
    hostname: str,
    warn,
    *,
    fetch: bool | None = None,
    job_scoped: bool | None = None,
):
    """The targets of one command.

    Args:
        settings: the effective :class:`shim.config.Settings`.
        verb: the intercepted verb (``run``, ``create``, ``pull``, ``build``).
        many_images: the runtime's pull stores one image per operand and
            takes several (podman): named classes each get their build.
        environ: the environment (``SLURM_JOB_ID``, ``SLURM_JOB_NODELIST``).
        hostname: this node's name.
        warn: called with one line for each warning.
        fetch: the verb fetches an image for later runs, here or on nodes of
            other classes (``IMAGEFIT_NODE_CLASS`` applies); default: the
            verb is ``pull`` or ``build`` (enroot: ``import``, ``digest``).
        job_scoped: inside a job the verb serves that job, so ``consistency
            = "job"`` applies; default: ``run``, ``create``, ``exec``,
            ``shell`` (enroot under pyxis: ``import``, ``load``, ``digest``,
            run in every node's job step).

    Returns:
        A list of :class:`Target` (one, or one per named class).

    Raises:
        ConfigError: an unknown class in ``IMAGEFIT_NODE_CLASS``.
    """
    if fetch is None:
        fetch = verb in ("pull", "build")
    if job_scoped is None:
        job_scoped = verb in ("run", "create", "exec", "shell")
    requested = settings.node_class_request
    if requested and not fetch:
        warn(
            f"IMAGEFIT_NODE_CLASS applies to pulls; this {verb} chooses for this node "
            "(it runs here)"
        )
    if requested:
        files = [settings.class_facts(name) for name in requested]
        if many_images:
            return [
                Target((name,), (path,), False, f"node class {name}")
                for name, path in zip(requested, files, strict=True)
            ]
        return [Target(requested, files, True, "node classes " + ", ".join(requested))]
    if settings.consistency == "job" and job_scoped:
        job = _job_target(settings, environ, hostname, warn)
        if job is not None:
            return [job]
    own = settings.node_class_for(hostname)
    return [Target((own,) if own else (), (), False, f"node class {own}" if own else "this node")]


def _job_target(settings, environ, hostname: str, warn) -> Target | None:
    job, nodelist = environ.get("SLURM_JOB_ID"), environ.get("SLURM_JOB_NODELIST")
    if not job or not nodelist:
        return None
    from shim import hostlist

    try:
        hosts = hostlist.expand(nodelist)
    except ValueError as exc:
        warn(f"cannot read SLURM_JOB_NODELIST ({exc}); choosing for this node alone")
        return None
    short = hostname.split(".", 1)[0]
    if short not in hosts and hostname not in hosts:
        # e.g. an salloc shell on the login node: the job's nodes are elsewhere
        warn(f"this node ({short}) is not in job {job}'s nodes; choosing for this node alone")
        return None
    classes: list[str] = []
    for host in hosts:
        name = settings.node_class_for(host)
        if name is None:
            warn(f"job node {host} is in no node class; choosing for this node alone")
            return None
        if name not in classes:
            classes.append(name)
    classes.sort()
    files = [settings.class_facts(name) for name in classes]
    return Target(classes, files, True, f"job {job} (node classes {', '.join(classes)})")
