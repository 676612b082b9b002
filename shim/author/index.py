"""``imagefit index create NAME --build REF=TARGET ...``: assemble an OCI image
index from existing images, annotate each build, push it.

For each build:

1. REF (``host/repo:tag``, ``host/repo@sha256:...``, or ``:tag`` /
   ``@sha256:...`` in NAME's repository) is fetched and verified. An image
   index is accepted when exactly one of its image manifests is of TARGET's
   architecture (that one is taken).
2. Its platform comes from its config blob (``architecture``, ``os``,
   ``os.version``, ``os.features``); for amd64 and arm64 the ``variant`` is
   TARGET's generic level (``haswell`` -> ``v3``, ``neoverse_v2`` -> ``v9``;
   docs/compatibility.md), for other architectures the config's.
3. Its annotations: the CPU target, plus the ``key=value`` pairs given (short
   names expanded: :mod:`shim.author.keys`), validated by
   ``scoring.vocabulary.compile_annotations`` and by ``imagefit lint``'s
   checks (:mod:`shim.author.satisfy`): a build no host can run is refused.
4. A build in another repository is brought into NAME's: config and layers
   by cross-repository blob mount (``POST /v2/<name>/blobs/uploads/?mount=
   <digest>&from=<repo>``), by copy (GET, verify, PUT) where the registry
   cannot mount or the build is on another registry; then its manifest, the
   exact bytes, by digest.

Order (decided here, docs/author.md): the most generic builds first, so a
runtime without imagefit, which takes the first platform match, runs a build
every host of that platform can run. Builds are sorted by (depth of the CPU
target in archspec's DAG, needs a GPU, names an MPI), ascending; equal keys
keep the order given. ``--keep-order`` keeps the given order.

Then the index is pushed (``PUT /v2/<name>/manifests/<tag>``, OCI index media
type), and the registry's ``Docker-Content-Digest`` must be the digest of the
bytes sent. ``--dry-run`` prints the index and pushes nothing.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from dataclasses import dataclass, field

from scoring import INDEX_MEDIA_TYPES, vocabulary
from scoring.index import MANIFEST_MEDIA_TYPES, OCI_INDEX
from shim.author import keys, satisfy
from shim.author.common import AuthorError, Registries, parse_reference, short_digest
from shim.reference import Reference
from shim.untrusted import loads_json, terminal_safe

#: A config blob larger than this is refused (configs are a few KiB).
MAX_CONFIG_BYTES = 8 * 1024 * 1024
#: A layer larger than this is refused when it must be copied.
MAX_LAYER_BYTES = 64 * 1024 * 1024 * 1024
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")


@dataclass
class BuildSpec:
    """One ``--build`` (or one ``builds`` entry of the file)."""

    ref: str
    target: str
    annotations: dict[str, str] = field(default_factory=dict)
    where: str = ""  # "--build #1", "FILE builds[0]": for messages


@dataclass
class IndexSpec:
    name: str
    annotations: dict[str, str]
    builds: list[BuildSpec]


@dataclass
class Build:
    """A build resolved: its manifest, where it lives, its descriptor."""

    spec: BuildSpec
    ref: Reference
    body: bytes
    media_type: str
    digest: str
    descriptor: dict
    transfer: str = ""  # what bringing it into NAME's repository did


# -- input -------------------------------------------------------------------------


def parse_build_option(text: str, where: str) -> BuildSpec:
    """``REF=TARGET[,key=value...]``. A comma-separated piece that is not
    ``key=value`` with a key-like name continues the previous value, so
    ``compute_capabilities=8.0,9.0`` and ``mpi.version=>=4.1,<5`` read as meant."""
    ref, eq, rest = text.partition("=")
    if not eq or not ref.strip():
        raise AuthorError(f"{where}: {text!r} is not REF=TARGET[,key=value...]")
    target, annotations = parse_target_option(rest, where, text, "REF=TARGET[,key=value...]")
    return BuildSpec(ref=ref.strip(), target=target, annotations=annotations, where=where)


def parse_target_option(
    rest: str, where: str, text: str | None = None, form: str = "TARGET[,key=value...]"
) -> tuple[str, dict[str, str]]:
    """``TARGET[,key=value...]`` as (target, annotations); `text` (the whole
    option) and `form` are for messages."""
    text = rest if text is None else text
    pieces = rest.split(",")
    target = pieces[0].strip()
    if "=" in target or not target:
        raise AuthorError(f"{where}: {text!r} names no CPU target ({form})")
    annotations: dict[str, str] = {}
    last = None
    for piece in pieces[1:]:
        key, eq, value = piece.partition("=")
        if eq and _KEY.match(key.strip()):
            last = key.strip()
            if last in annotations:
                raise AuthorError(f"{where}: {last} given twice")
            annotations[last] = value
        elif last is not None:
            annotations[last] += "," + piece
        else:
            raise AuthorError(f"{where}: {piece!r} is not key=value")
    return target, annotations


def parse_annotation_option(text: str) -> tuple[str, str]:
    key, eq, value = text.partition("=")
    if not eq or not key.strip():
        raise AuthorError(f"--annotation {text!r} is not key=value")
    return key.strip(), value


def _string_map(raw, where: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise AuthorError(f"{where}: expected a mapping of key: value")
    out = {}
    for key, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise AuthorError(f"{where}.{key}: expected a string or a number")
        out[str(key)] = str(value)
    return out


def load_file(path: str) -> tuple[str | None, dict[str, str], list[BuildSpec]]:
    """(name, index annotations, builds) of a YAML or TOML file::

        name: HOST/REPO:TAG          # optional when NAME is given
        annotations: {KEY: VALUE}    # index-level, optional
        builds:
          - ref: HOST/REPO:TAG       # or :TAG / @sha256:... in NAME's repository
            target: haswell
            annotations: {gpu.vendor: nvidia}   # optional

    (TOML: ``[[builds]]`` tables.) ``.toml`` files are read as TOML, anything
    else as YAML.
    """
    from shim.author.common import SPEC_FILE_LIMIT
    from shim.untrusted import read_bounded

    try:
        data = read_bounded(path, SPEC_FILE_LIMIT)  # a FIFO or /dev/zero: one line, no hang
    except OSError as exc:
        raise AuthorError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        if path.endswith(".toml"):
            import tomllib

            doc = tomllib.loads(data.decode("utf-8"))
        else:
            import yaml

            doc = yaml.safe_load(data)
    except Exception as exc:  # noqa: BLE001 (yaml/toml/unicode errors: one line)
        raise AuthorError(f"{path}: {' '.join(str(exc).split())[:300]}") from None
    if not isinstance(doc, dict):
        raise AuthorError(f"{path}: expected a mapping with name, annotations, builds")
    unknown = sorted(set(doc) - {"name", "annotations", "builds"})
    if unknown:
        raise AuthorError(f"{path}: unknown field {unknown[0]!r} (name, annotations, builds)")
    name = doc.get("name")
    if name is not None and not isinstance(name, str):
        raise AuthorError(f"{path}: name must be a string")
    builds = []
    raw_builds = doc.get("builds") or []
    if not isinstance(raw_builds, list):
        raise AuthorError(f"{path}: builds must be a list")
    for i, raw in enumerate(raw_builds):
        where = f"{path} builds[{i}]"
        if not isinstance(raw, dict):
            raise AuthorError(f"{where}: expected a mapping with ref, target, annotations")
        unknown = sorted(set(raw) - {"ref", "target", "annotations"})
        if unknown:
            raise AuthorError(f"{where}: unknown field {unknown[0]!r} (ref, target, annotations)")
        ref, target = raw.get("ref"), raw.get("target")
        if not isinstance(ref, str) or not ref or not isinstance(target, str) or not target:
            raise AuthorError(f"{where}: ref and target must be non-empty strings")
        builds.append(
            BuildSpec(
                ref, target, _string_map(raw.get("annotations"), f"{where}.annotations"), where
            )
        )
    return name, _string_map(doc.get("annotations"), f"{path} annotations"), builds


def make_spec(args) -> IndexSpec:
    """The index to create from the command line (and ``--from FILE``)."""
    name, annotations, builds = None, {}, []
    if args.from_file:
        name, annotations, builds = load_file(args.from_file)
    name = args.name or name
    if not name:
        raise AuthorError("name the index: NAME or `name:` in the --from file")
    for i, text in enumerate(args.build or []):
        builds.append(parse_build_option(text, f"--build #{i + 1}"))
    for text in args.annotation or []:
        key, value = parse_annotation_option(text)
        annotations[key] = value
    if not builds:
        raise AuthorError("no builds: give --build REF=TARGET (or builds in --from FILE)")
    return IndexSpec(name=name, annotations=annotations, builds=builds)


def build_annotations(spec: BuildSpec) -> dict[str, str]:
    """The descriptor annotations of one build: its CPU target first, then
    the given keys expanded, validated.

    Raises:
        AuthorError: unknown target, unknown key, a value the vocabulary
            cannot read (one line naming the build).
    """
    from archspec.cpu import TARGETS

    target = spec.target.strip().lower()
    if target not in TARGETS:
        hint = keys.suggest(target, TARGETS)
        raise AuthorError(
            f"{spec.where}: unknown CPU target {spec.target!r} (not an archspec name"
            + (f"; did you mean {hint}?)" if hint else ")")
        )
    out = {vocabulary.CPU_TARGET: target}
    for key, value in spec.annotations.items():
        try:
            full = keys.expand(key)
        except ValueError as exc:
            raise AuthorError(f"{spec.where}: {exc}") from None
        if full in (vocabulary.CPU_TARGET, vocabulary.CPU_TARGET_COMPSPEC):
            raise AuthorError(f"{spec.where}: the CPU target is TARGET, not {key}")
        if full in out:
            raise AuthorError(f"{spec.where}: {full} given twice")
        out[full] = value.strip()
    try:
        vocabulary.compile_annotations(out)
        vocabulary.weight(out)
    except vocabulary.InvalidAnnotation as exc:
        raise AuthorError(f"{spec.where}: invalid annotation {exc}") from None
    return out


# -- resolving builds --------------------------------------------------------------


def _build_reference(text: str, name: Reference, where: str) -> Reference:
    if text.startswith(":") or text.startswith("@"):
        text = name.name + text
    return parse_reference(text, f"{where}: build")


def _pick_from_index(body: bytes, where: str, target: str) -> dict:
    """The one image manifest of `target`'s architecture in an index."""
    from archspec.cpu import TARGETS

    family = TARGETS[target].family.name
    doc = loads_json(body)
    matching = [
        d
        for d in doc.get("manifests") or []
        if isinstance(d, dict)
        and d.get("mediaType") in MANIFEST_MEDIA_TYPES
        and isinstance(d.get("platform"), dict)
        and satisfy.family_of(str(d["platform"].get("architecture", ""))) == family
    ]
    if len(matching) != 1:
        raise AuthorError(
            f"{where}: an image index with {len(matching)} {family} manifests; "
            "name one image manifest (REPO@sha256:...)"
        )
    return matching[0]


def resolve_build(registries: Registries, name: Reference, spec: BuildSpec) -> Build:
    """Fetch one build's manifest and config; its descriptor for the index."""
    annotations = build_annotations(spec)
    target = annotations[vocabulary.CPU_TARGET]
    ref = _build_reference(spec.ref, name, spec.where)
    client = registries.client(ref)
    where = f"{spec.where} ({ref})"
    manifest = client.get_manifest(ref.path, ref.reference)
    body, media_type, digest = manifest.body, manifest.media_type, manifest.digest
    try:
        declared = loads_json(body).get("mediaType")
    except (ValueError, AttributeError):
        raise AuthorError(f"{where}: the manifest is not a JSON object") from None
    if media_type in INDEX_MEDIA_TYPES or declared in INDEX_MEDIA_TYPES:
        chosen = _pick_from_index(body, where, target)
        manifest = client.get_manifest(ref.path, chosen["digest"])
        body, media_type, digest = manifest.body, manifest.media_type, manifest.digest
        declared = loads_json(body).get("mediaType")
    media_type = declared or media_type
    if media_type not in MANIFEST_MEDIA_TYPES:
        raise AuthorError(f"{where}: {media_type} is not an image manifest")
    doc = loads_json(body)
    config = doc.get("config") if isinstance(doc.get("config"), dict) else {}
    if not isinstance(config.get("digest"), str):
        raise AuthorError(f"{where}: the manifest has no config")
    image = loads_json(client.get_blob(ref.path, config["digest"], max_bytes=MAX_CONFIG_BYTES))
    platform = _platform(image, target, where)
    descriptor = {
        "mediaType": media_type,
        "digest": digest,
        "size": len(body),
        "platform": platform,
        "annotations": annotations,
    }
    return Build(spec, ref, body, media_type, digest, descriptor)


def _platform(image, target: str, where: str) -> dict:
    """The index platform of a build from its image config and CPU target."""
    from archspec.cpu import TARGETS

    if not isinstance(image, dict) or not isinstance(image.get("architecture"), str):
        raise AuthorError(f"{where}: the image config names no architecture")
    arch = image["architecture"]
    family = TARGETS[target].family.name
    if satisfy.family_of(arch) != family:
        raise AuthorError(f"{where}: CPU target {target} is for {family}; the image is {arch}")
    platform = {"architecture": arch, "os": image.get("os") or "linux"}
    given = image.get("variant") if isinstance(image.get("variant"), str) else None
    if arch in ("amd64", "arm64"):
        variant = satisfy.variant_for(target)
        if given and (given or None) != variant:
            print(
                f"imagefit: note: {where}: the image config says variant {given}; "
                f"target {target} means {variant or 'none'}, which the index says",
                file=sys.stderr,
            )
    else:
        variant = given
    if variant:
        platform["variant"] = variant
    if isinstance(image.get("os.version"), str):
        platform["os.version"] = image["os.version"]
    if isinstance(image.get("os.features"), list):
        platform["os.features"] = image["os.features"]
    return platform


def order(builds: list[Build]) -> list[Build]:
    """Most generic first (see the module docstring); stable."""
    from scoring.cpu import depth

    def key(b: Build) -> tuple[int, int, int]:
        a = b.descriptor["annotations"]
        return (
            depth(a[vocabulary.CPU_TARGET]),
            int(vocabulary.requires_gpu(a)),
            int(vocabulary.names_mpi(a)),
        )

    return sorted(builds, key=key)


def index_document(builds: list[Build], annotations: dict[str, str]) -> bytes:
    doc: dict = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [b.descriptor for b in builds],
    }
    if annotations:
        doc["annotations"] = dict(annotations)
    return json.dumps(doc, indent=2).encode() + b"\n"


# -- bringing builds into NAME's repository ----------------------------------------


def transfer(registries: Registries, build: Build, name: Reference) -> str:
    """Make `build`'s manifest and blobs exist in NAME's repository; what it did."""
    if build.ref.domain == name.domain and build.ref.path == name.path:
        return "in place"
    src = registries.client(build.ref)
    dst = registries.client(name)
    same_registry = build.ref.domain == name.domain
    doc = loads_json(build.body)
    blobs = [doc["config"], *(doc.get("layers") or [])]
    counts = {"mounted": 0, "copied": 0, "present": 0}
    for blob in blobs:
        if not isinstance(blob, dict) or blob.get("urls"):
            continue  # a foreign layer: never in a registry
        digest, size = blob.get("digest"), blob.get("size")
        if not isinstance(digest, str) or not isinstance(size, int):
            raise AuthorError(f"{build.spec.where}: a blob descriptor without digest or size")
        if dst.blob_exists(name.path, digest):
            counts["present"] += 1
            continue
        location = None
        if same_registry:
            location = dst.mount_blob(name.path, digest, build.ref.path)
            if location is None:
                counts["mounted"] += 1
                continue
        with tempfile.TemporaryFile(prefix="imagefit-blob-") as fh:
            got = src.download_blob(
                build.ref.path, digest, fh, max_bytes=min(size, MAX_LAYER_BYTES)
            )
            if got != size:
                raise AuthorError(
                    f"{build.spec.where}: blob {short_digest(digest)} has {got} bytes, "
                    f"the manifest says {size}"
                )
            fh.seek(0)
            dst.put_blob(name.path, digest, fh, location=location)
        counts["copied"] += 1
    dst.put_manifest(name.path, build.digest, build.body, build.media_type)
    return ", ".join(f"{n} {what}" for what, n in counts.items() if n) or "no blobs"


# -- the command -------------------------------------------------------------------


def index_name(spec: IndexSpec) -> Reference:
    """NAME of `spec`, checked: a tag, and no compatibility key among the
    index annotations.

    Raises:
        AuthorError: NAME is not HOST/REPO:TAG, or an index annotation is a
            compatibility key (those belong on builds).
    """
    name = parse_reference(spec.name, "index name")
    if name.digest or not name.tag:
        raise AuthorError(f"index name {spec.name!r} must end in a tag (HOST/REPO:TAG)")
    for key in spec.annotations:
        if key.startswith(keys.P) or key in keys.SHORT:
            raise AuthorError(
                f"--annotation {key}: compatibility keys go on builds (--build REF=TARGET,{key}=...)"
            )
    return name


def publish(
    spec: IndexSpec, registries: Registries, *, keep_order: bool = False, dry_run: bool = False
) -> int:
    """Resolve `spec`'s builds, order them (most generic first unless
    `keep_order`), lint the index, then push it to NAME (``dry_run``: print
    the index JSON instead); what ``index create`` and ``index build`` do
    once the builds exist. Prints one line per build and ``pushed NAME
    DIGEST``; lint warnings go to stderr.

    Raises:
        AuthorError: a build that cannot be resolved, a lint error, a
            registry refusal (one line).
    """
    from scoring import parse_index
    from shim.author.lint import index_labels, lint_document

    name = index_name(spec)
    for build in spec.builds:  # every local check before any request
        build_annotations(build)
    builds = [resolve_build(registries, name, b) for b in spec.builds]
    if not keep_order:
        builds = order(builds)
    body = index_document(builds, spec.annotations)
    findings = lint_document(json.loads(body))
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        raise AuthorError(f"refusing to create {name}: " + "; ".join(f.line() for f in errors))
    for f in findings:
        print(f"imagefit: {terminal_safe(f.line(), 2000)}", file=sys.stderr)
    if dry_run:
        sys.stdout.write(body.decode())
        return 0
    dst = registries.client(name)
    for build in builds:
        build.transfer = transfer(registries, build, name)
    pushed = dst.put_manifest(name.path, name.tag, body, OCI_INDEX)
    labels = index_labels(parse_index(json.loads(body)))
    for i, b in enumerate(builds):
        plat = b.descriptor["platform"]
        shown = "/".join(p for p in (plat["os"], plat["architecture"], plat.get("variant")) if p)
        print(
            f"{i:>2}  {terminal_safe(labels[i], 80):<16} {shown:<18} "
            f"{short_digest(b.digest)}  {b.ref} ({b.transfer})"
        )
    print(f"pushed {name} {pushed.digest}")
    return 0


def run(args) -> int:
    from shim.author.common import tls_option

    spec = make_spec(args)
    index_name(spec)
    registries = Registries(
        tls_verify=tls_option(args.tls_verify), authfile=args.authfile, timeout=args.timeout
    )
    return publish(spec, registries, keep_order=args.keep_order, dry_run=args.dry_run)
