"""``imagefit lint REF``: what is wrong with an index's compatibility data.

Findings, one line each, ``SEVERITY: BUILD: MESSAGE``:

* error: a build no host can run, or whose data cannot be read
  (:func:`shim.author.satisfy.build_problems`: unknown archspec target, a
  target of another architecture than the platform, an impossible version
  range, an empty compute capability list, an unknown fabric, an invalid
  value; each build is then scored against a synthetic best host of its
  architecture with :func:`scoring.select` to prove some host can run it);
  an NFD artifact whose spec does not parse or has expressions NFD can
  never evaluate;
* warning: two builds that fit the same hosts and rank equally (same
  platform, same requirements, same weight, same NFD sets), so only index
  order decides; a key under ``org.supercontainers.`` that is not in the
  vocabulary, a vocabulary key or an ``org.opencontainers.`` key under a
  misspelt prefix; a platform's first build that is not its most generic one
  (runtimes without imagefit take the first match); an index without any
  compatibility data (imagefit passes it through).

With ``--policy`` it checks the effective config's ``[[policy]]`` entries
(and ``IMAGEFIT_PIN``) that apply to REF, on every node class and on nodes
in no class, against REF's index instead: a ``pin`` that names no build
(build label, manifest digest or NFD set tag) is an error (every node it
applies to would refuse the image), a ``prefer``/``avoid`` name that matches
no build a warning (it does nothing).

Exit status: 0 clean, 1 with findings, 125 when the index cannot be read.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass

from scoring import INDEX_MEDIA_TYPES, InvalidIndexError, parse_index, vocabulary
from scoring.index import MANIFEST_MEDIA_TYPES, Candidate
from scoring.platform import normalize_architecture, normalize_variant, variant_target
from shim.author import satisfy
from shim.author.keys import key_findings
from shim.untrusted import loads_json

ERROR, WARNING = satisfy.ERROR, satisfy.WARNING


@dataclass(frozen=True)
class Finding:
    """One finding: ``build`` is ``index`` or ``#POSITION LABEL``."""

    severity: str
    code: str
    build: str
    position: int | None
    message: str

    def line(self) -> str:
        return f"{self.severity}: {self.build}: {self.message}"


@dataclass(frozen=True)
class NfdArtifact:
    """The newest NFD artifact of one subject, decoded (or why it could not be)."""

    digest: str
    document: dict | None = None
    error: str = ""


def label(candidate: Candidate, names: dict[int, str] | None = None) -> str:
    """``#POSITION LABEL``: the build's label as ``imagefit explain`` shows it
    (:mod:`scoring.labels`; `names`: the labels of its index by position, from
    :func:`index_labels`), else its label without the rest of its index."""
    from scoring.labels import base_label

    if names is not None and candidate.position in names:
        return f"#{candidate.position} {names[candidate.position]}"
    return f"#{candidate.position} {base_label(candidate)}"


def index_labels(
    candidates: list[Candidate], sets: dict[str, tuple] | None = None
) -> dict[int, str]:
    """``{position: label}`` of every build, unique within the index
    (:func:`scoring.labels.name_builds`; `sets`: parsed NFD sets by subject
    digest, whose tags name builds that have no CPU target)."""
    from scoring.labels import name_builds

    sets = sets or {}
    index_digest = next((d for d in sets if not any(c.digest == d for c in candidates)), None)
    common = sets.get(index_digest, ()) if index_digest else ()
    tags = [[s.tag for s in (*sets.get(c.digest, ()), *common) if s.tag] for c in candidates]
    return {
        c.position: n.label for c, n in zip(candidates, name_builds(candidates, tags), strict=True)
    }


def lint_document(
    document, *, artifacts: dict[str, list[NfdArtifact]] | None = None
) -> list[Finding]:
    """The findings of one image index (decoded JSON), with the NFD artifacts
    found for the index and for each build, by subject digest (a subject that
    is no build's is the index's)."""
    artifacts = artifacts or {}
    try:
        candidates = parse_index(document)
    except InvalidIndexError as exc:
        return [Finding(ERROR, "invalid-index", "index", None, str(exc))]
    findings: list[Finding] = []
    names: dict[int, str] = {}
    annotations = document.get("annotations") if isinstance(document, dict) else None
    for key in sorted(annotations or {}):
        for message in key_findings(key):
            findings.append(Finding(WARNING, "key", "index", None, message))
    sets: dict[str, tuple] = {}
    problems_of: dict[str, list[str]] = {}
    for subject, found in artifacts.items():
        sets[subject], problems_of[subject] = _nfd(found)
    names.update(index_labels(candidates, sets))
    for subject, problems in problems_of.items():
        who = next((c for c in candidates if c.digest == subject), None)
        build, position = (label(who, names), who.position) if who else ("index", None)
        findings += [Finding(ERROR, "nfd", build, position, m) for m in problems]
    broken: set[int] = set()
    for c in candidates:
        for key in sorted(c.annotations):
            for message in key_findings(key):
                findings.append(Finding(WARNING, "key", label(c, names), c.position, message))
        for p in satisfy.build_problems(c):
            findings.append(Finding(p.severity, p.code, label(c, names), c.position, p.message))
            if p.severity == ERROR:
                broken.add(c.position)
    usable = [c for c in candidates if c.position not in broken]
    findings += _overlaps(usable, sets, names)
    if not _has_data(candidates, sets):
        findings.append(
            Finding(
                WARNING, "no-data", "index", None,
                "no compatibility data: imagefit passes it through, and runtimes take the "
                "first platform match",
            )
        )  # fmt: skip
    else:
        findings += _generic_first(usable, names)
    order = {ERROR: 0, WARNING: 1}
    return sorted(
        findings,
        key=lambda f: (-1 if f.position is None else f.position, order.get(f.severity, 2)),
    )


def _nfd(found: list[NfdArtifact]) -> tuple[tuple, list[str]]:
    """(the parsed sets, problems) of a subject's artifacts."""
    from scoring.rules import parse_nfd_spec

    sets: list = []
    problems = []
    for artifact in found:
        where = f"NFD artifact {artifact.digest[:19]}"
        if artifact.error:
            problems.append(f"{where}: {artifact.error}")
            continue
        try:
            parsed = parse_nfd_spec(artifact.document, f"nfd:{artifact.digest}")
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
            continue
        sets += parsed
        problems += [f"{where}: {line}" for line in satisfy.nfd_set_problems(parsed)]
    return tuple(sets), problems


def _has_data(candidates: list[Candidate], sets: dict[str, tuple]) -> bool:
    if any(sets.values()):
        return True
    for c in candidates:
        if vocabulary.REQUIREMENT_KEYS & c.annotations.keys():
            return True
        p = c.platform
        if p and (normalize_variant(p.architecture, p.variant) or p.os_features or p.features):
            return True
    return False


def _platform_key(c: Candidate) -> tuple:
    p = c.platform
    arch = normalize_architecture(p.architecture)
    return (p.os, arch, normalize_variant(arch, p.variant), p.os_version,
            tuple(sorted(p.os_features)), tuple(sorted(p.features)))  # fmt: skip


def _overlaps(
    candidates: list[Candidate], sets: dict[str, tuple], names: dict[int, str] | None = None
) -> list[Finding]:
    """Builds that fit the same hosts and rank equally: only index order decides."""
    groups: dict[tuple, list[Candidate]] = {}
    for c in candidates:
        if c.media_type not in MANIFEST_MEDIA_TYPES or c.platform is None:
            continue
        compiled = vocabulary.compile_annotations(c.annotations)
        requirements = compiled.model_dump_json(exclude={"source"}) if compiled else ""
        nfd = tuple(s.model_dump_json(exclude={"source"}) for s in sets.get(c.digest, ()))
        key = (_platform_key(c), requirements, vocabulary.weight(c.annotations), nfd)
        groups.setdefault(key, []).append(c)
    findings = []
    for group in groups.values():
        first = group[0]
        for other in group[1:]:
            same = "the same build" if other.digest == first.digest else "the same hosts"
            findings.append(
                Finding(
                    WARNING, "overlap", label(other, names), other.position,
                    f"fits {same} as {label(first, names)} (same platform, requirements and "
                    f"weight): only index order decides, so {label(first, names)} always wins; drop one, "
                    "or tell them apart (target, weight)",
                )
            )  # fmt: skip
    return findings


def _genericity(c: Candidate) -> tuple[int, int, int]:
    from scoring.cpu import annotated_target, depth

    target = annotated_target(c.annotations) or variant_target(c.platform)
    return (
        depth(target),
        int(vocabulary.requires_gpu(c.annotations)),
        int(vocabulary.names_mpi(c.annotations)),
    )


def _generic_first(
    candidates: list[Candidate], names: dict[int, str] | None = None
) -> list[Finding]:
    """Per os/architecture: is the first build the most generic one?"""
    groups: dict[tuple, list[Candidate]] = {}
    for c in candidates:
        if c.media_type in MANIFEST_MEDIA_TYPES and c.platform is not None:
            key = (c.platform.os, normalize_architecture(c.platform.architecture))
            groups.setdefault(key, []).append(c)
    findings = []
    for (os_name, arch), group in groups.items():
        first, rest = group[0], group[1:]
        mine = _genericity(first)
        better = [c for c in rest if _more_generic(_genericity(c), mine)]
        if better:
            best = min(better, key=lambda c: (_genericity(c), c.position))
            findings.append(
                Finding(
                    WARNING, "generic-first", label(first, names), first.position,
                    f"the first {os_name}/{arch} build, but {label(best, names)} is more generic: "
                    "runtimes without imagefit take the first match; put the generic build first",
                )
            )  # fmt: skip
    return findings


def _more_generic(other: tuple[int, int, int], mine: tuple[int, int, int]) -> bool:
    """`other` runs on every host `mine` runs on and more: shallower CPU, or
    no GPU/MPI where `mine` needs one, and needs nothing `mine` does not."""
    return all(o <= m for o, m in zip(other, mine, strict=True)) and other != mine


# -- policy against an index ------------------------------------------------------


def build_names(data) -> list[tuple[str, frozenset[str]]]:
    """(label, names) of each image build of `data` (:class:`shim.resolve.IndexData`):
    the names a policy's pin, prefer and avoid can use, exactly as
    :func:`scoring.select` gives them (:mod:`scoring.labels`: the unique
    label, the manifest digest, ``LABEL@XXXXXXXX``, the CPU target where no
    build's label is that target, the tags of every NFD set attached to the
    build or the index, whichever host they match)."""
    return [(label, names) for label, _, names in _builds(data)]


def _builds(data) -> list[tuple[str, str, frozenset[str]]]:
    """(label, digest, names) of each image build of `data`."""
    from scoring.labels import name_builds, policy_names

    if data.candidates is None:
        return []
    common = tuple(data.artifact_sets.get(data.digest, ()))
    tags = [
        [s.tag for s in (*data.artifact_sets.get(c.digest, ()), *common) if s.tag]
        for c in data.candidates
    ]
    out = []
    for c, n, t in zip(data.candidates, name_builds(data.candidates, tags), tags, strict=True):
        if c.media_type in MANIFEST_MEDIA_TYPES:
            out.append((n.label, c.digest, policy_names(c, n, t)))
    return out


def applicable_policies(settings, repository: str) -> list[tuple[dict, list[str]]]:
    """The policy entries in effect for `repository`, each with where it
    applies: ``node class NAME`` for every configured class, ``nodes in no
    class`` (:meth:`shim.config.Settings.policy_for` on each)."""
    scopes = [(None, "nodes in no class")]
    scopes += [(name, f"node class {name}") for name, _, _ in settings.node_classes]
    found: list[tuple[dict, list[str]]] = []
    for node_class, where in scopes:
        entry = settings.policy_for(repository, node_class)
        if entry is None:
            continue
        known = next((f for f in found if f[0] == entry), None)
        if known is None:
            found.append((entry, [where]))
        else:
            known[1].append(where)
    return found


def policy_origin(entry: dict, settings=None, environ=None) -> str:
    """Who set a policy entry, for one line: the config file and its
    ``[[policy]]`` table, or ``IMAGEFIT_PIN``."""
    import os

    if entry["source"] == "environment":
        return "IMAGEFIT_PIN"
    from shim import config

    environ = os.environ if environ is None else environ
    paths = config.config_paths(environ, os.geteuid())
    path = (
        paths[0] if entry["source"] == "site" else (paths[1] if len(paths) > 1 else "user config")
    )
    text = f'{entry["source"]} config {path}: [[policy]] image = "{entry["image"]}"'
    if entry.get("node_class"):
        text += f', node_class = "{entry["node_class"]}"'
    return text + (", lock = true" if entry["lock"] else "")


def policy_findings(settings, reference: str, data, environ=None) -> list[Finding]:
    """Findings of the policies in effect for `data`'s repository against its
    index: a pin that names no build (error), prefer/avoid names that match
    no build (warning)."""
    from scoring.policy import Policy

    builds = _builds(data)
    labels = ", ".join(name for name, _, _ in builds) or "none"
    known = frozenset().union(*(names for _, _, names in builds)) if builds else frozenset()
    findings = []
    for entry, where in applicable_policies(settings, str(data.reference)):
        origin = f"{policy_origin(entry, settings, environ)} (for {', '.join(where)})"
        if data.candidates is None:
            findings.append(
                Finding(
                    WARNING, "policy-no-index", "policy", None,
                    f"{origin}: {reference} is a single image manifest, not an index: "
                    "the policy has nothing to choose from",
                )
            )  # fmt: skip
            continue
        several = Policy(pin=entry["pin"], source=entry["source"]).pin_error(builds)
        if several:
            findings.append(
                Finding(
                    ERROR, "policy-pin", "policy", None,
                    f"{origin}: {several}: those nodes refuse {reference}",
                )
            )  # fmt: skip
        elif entry["pin"] is not None and entry["pin"] not in known:
            findings.append(
                Finding(
                    ERROR, "policy-pin", "policy", None,
                    f'{origin}: pin "{entry["pin"]}" matches no build of {reference} '
                    f"(builds: {labels}; or their digests): those nodes refuse the image",
                )
            )  # fmt: skip
        for kind in ("prefer", "avoid"):
            for name in entry[kind]:
                if name not in known:
                    findings.append(
                        Finding(
                            WARNING, "policy-name", "policy", None,
                            f'{origin}: {kind} "{name}" matches no build of {reference} '
                            f"(builds: {labels}): it changes nothing",
                        )
                    )  # fmt: skip
    return sorted(findings, key=lambda f: f.severity != ERROR)


def _run_policy(args, ref) -> tuple[str, list[Finding]]:
    """(index digest, findings) of ``lint --policy REF``."""
    import os

    from shim import config
    from shim.author.common import tls_option
    from shim.insecure import registry_is_insecure
    from shim.resolve import fetch

    settings = config.load()
    for line in settings.warnings:
        print(f"imagefit: {line}", file=sys.stderr)
    data = fetch(
        ref,
        environ=os.environ,
        insecure=registry_is_insecure(
            ref, os.environ, settings.insecure_registries, tls_option(args.tls_verify)
        ),
        timeout=args.timeout,
        authfile=args.authfile,
        nfd_artifacts=args.nfd and settings.nfd_artifacts,
    )
    if not applicable_policies(settings, str(ref)):
        print(
            f"imagefit: no [[policy]] entry (nor IMAGEFIT_PIN) applies to {ref.name}",
            file=sys.stderr,
        )
    return data.digest, policy_findings(settings, str(ref), data)


# -- the command -----------------------------------------------------------------


def fetch_artifacts(client, repository: str, subjects: list[str]) -> dict[str, list[NfdArtifact]]:
    """The newest NFD artifact of each subject, decoded; a subject whose
    artifact cannot be fetched or decoded gets an :class:`NfdArtifact` with
    the error (one subject at a time, so each error names its build)."""
    from shim.artifacts import fetch_nfd_specs
    from shim.errors import RegistryError

    found: dict[str, list[NfdArtifact]] = {}
    for subject in dict.fromkeys(subjects):
        try:
            specs = fetch_nfd_specs(client, repository, [subject], max_workers=1)[subject]
        except RegistryError as exc:
            text = str(exc)
            prefix = f"NFD artifact of {client.domain}/{repository}@{subject}: "
            found[subject] = [NfdArtifact(digest="?", error=text.removeprefix(prefix))]
            continue
        found[subject] = [NfdArtifact(digest=s.digest, document=s.document) for s in specs]
    return found


def run(args) -> int:
    from shim.author.common import Registries, parse_reference, tls_option

    ref = parse_reference(args.reference)
    if getattr(args, "policy", False):
        digest, findings = _run_policy(args, ref)
        return _report(args, ref, digest, findings)
    registries = Registries(
        tls_verify=tls_option(args.tls_verify), authfile=args.authfile, timeout=args.timeout
    )
    client = registries.client(ref)
    manifest = client.get_manifest(ref.path, ref.reference)
    try:
        document = loads_json(manifest.body)
    except ValueError as exc:
        from shim.errors import RegistryError

        raise RegistryError(f"{ref}: the registry sent invalid JSON: {exc}") from None
    declared = document.get("mediaType") if isinstance(document, dict) else None
    if manifest.media_type in INDEX_MEDIA_TYPES or declared in INDEX_MEDIA_TYPES:
        subjects = [manifest.digest]
        if isinstance(document.get("manifests"), list):
            subjects += [
                d["digest"]
                for d in document["manifests"]
                if isinstance(d, dict) and isinstance(d.get("digest"), str)
                and d.get("mediaType") in MANIFEST_MEDIA_TYPES
            ]  # fmt: skip
        artifacts = fetch_artifacts(client, ref.path, subjects) if args.nfd else {}
        findings = lint_document(document, artifacts=artifacts)
    else:
        findings = [
            Finding(
                WARNING, "not-an-index", "index", None,
                "a single image manifest, not an index: there is nothing to choose from",
            )
        ]  # fmt: skip
    return _report(args, ref, manifest.digest, findings)


def _report(args, ref, digest: str, findings: list[Finding]) -> int:
    if args.json:
        out = {
            "schema_version": 1,
            "reference": str(ref),
            "digest": digest,
            "findings": [asdict(f) for f in findings],
        }
        print(json.dumps(out, indent=2))
    else:
        from shim.untrusted import terminal_safe

        for f in findings:  # a finding may quote an annotation the registry holds
            print(terminal_safe(f.line(), 2000))
        errors = sum(f.severity == ERROR for f in findings)
        warnings = len(findings) - errors
        summary = f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
        print(f"{ref}: {summary if findings else 'clean'}", file=sys.stderr)
    return 1 if findings else 0
