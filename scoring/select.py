"""Choosing: filter on hard requirements, rank the survivors.

Every input format is compiled into the rule model (:mod:`scoring.rules`)
and evaluated against the host's NFD features (``hostfacts.nfd.features``):

- the descriptor's platform (os/architecture, variant ladders, os.features);
- its annotations (:mod:`scoring.vocabulary`): one set, all rules required;
- its ``platform.features`` tokens (:mod:`scoring.tokens`): all required;
- NFD compatibility sets from artifacts attached to the manifest or to the
  index: the build fits when **any** of them fits (NFD: an image is
  compatible when any of its sets is), in addition to the above.

Ranking (DESIGN.md "Choosing"): policy (pin/prefer/avoid) > weight (the
weight annotation plus the best fitting NFD set's weight) > GPU build on a
fitting GPU host > build for the host's MPI > the most specific CPU target
(deeper in archspec's DAG) > index order (image-index.md: the first match
wins); see :class:`scoring.model.Score`. The same inputs always give the
same decision. An index with no compatibility data at all passes through
untouched: the runtime's own platform match applies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hostfacts import HostFacts
from scoring import cpu, platform, tokens, vocabulary
from scoring.explain import describe
from scoring.index import MANIFEST_MEDIA_TYPES, Candidate
from scoring.model import Check, Decision, Outcome, Score, Verdict
from scoring.policy import Policy
from scoring.rules import CompatibilitySet, SetResult, evaluate_set


def _has_compatibility_data(candidate: Candidate, sets: Sequence[CompatibilitySet]) -> bool:
    if vocabulary.REQUIREMENT_KEYS & candidate.annotations.keys() or sets:
        return True
    plat = candidate.platform
    if plat is None:
        return False
    return bool(
        platform.normalize_variant(plat.architecture, plat.variant)
        or plat.os_features
        or plat.features
    )


def _label(candidate: Candidate, target: str | None, tags: Sequence[str] = ()) -> str:
    """The build's short name: its CPU target, else its first NFD set tag,
    else its platform with a digest prefix (so builds stay apart)."""
    if target:
        return target
    if tags:
        return tags[0]
    short = candidate.digest.split(":", 1)[-1][:8]
    return f"{candidate.platform}@{short}" if candidate.platform else candidate.digest[:19]


def _gpu_label(annotations: dict[str, str]) -> str:
    a = annotations.get
    if a(vocabulary.AMD_GFX) or a(vocabulary.GPU_VENDOR, "").lower() == "amd":
        return "amd " + (a(vocabulary.AMD_GFX) or "any").replace(" ", "")
    if vocabulary.requires_gpu(annotations):
        parts = ["nvidia"]
        if a(vocabulary.COMPUTE_CAPABILITIES):
            parts.append("sm " + a(vocabulary.COMPUTE_CAPABILITIES).replace(" ", ""))
        if a(vocabulary.CUDA_VERSION):
            parts.append("cuda " + a(vocabulary.CUDA_VERSION).strip())
        return " ".join(parts)
    return "-"


def _mpi_label(annotations: dict[str, str]) -> str:
    a = annotations.get
    parts = [
        a(k, "").strip()
        for k in (vocabulary.MPI_IMPLEMENTATION, vocabulary.MPI_ABI, vocabulary.MPI_VERSION)
    ]
    return " ".join(p for p in parts if p) or "-"


def _rule_checks(result: SetResult, facts: HostFacts, target: str | None) -> list[Check]:
    checks = []
    for rule in result.rules:
        if rule.name == "cpu.target" and target:
            checks.append(cpu.check_target(target, facts.cpu))  # archspec's words for the same rule
        else:
            checks.append(
                Check(name=rule.name or "rule", passed=rule.is_match, detail=describe(rule, facts))
            )
    return checks


def evaluate(
    candidate: Candidate,
    facts: HostFacts,
    host: platform.HostPlatform,
    features: dict,
    artifact_sets: Sequence[CompatibilitySet] = (),
    policy: Policy | None = None,
    requested_platform: tuple[str, str, str | None] | None = None,
) -> Verdict:
    """Every check of one candidate against the host, and its score if it fits."""
    checks: list[Check] = []
    results: list[SetResult] = []
    if candidate.media_type not in MANIFEST_MEDIA_TYPES:
        checks.append(
            Check(
                name="media-type",
                passed=False,
                detail=f"{candidate.media_type} is not an image manifest",
            )
        )
    checks.append(platform.check_platform(candidate.platform, host))
    if requested_platform is not None:
        checks.append(platform.check_requested(candidate.platform, requested_platform))
    target = cpu.annotated_target(candidate.annotations)
    weight = 0
    try:
        required = [vocabulary.compile_annotations(candidate.annotations)]
        weight = vocabulary.weight(candidate.annotations)
    except vocabulary.InvalidAnnotation as exc:
        required = []
        checks.append(Check(name="annotation", passed=False, detail=f"invalid annotation {exc}"))
    if candidate.platform is not None:
        required.append(tokens.compile_tokens(candidate.platform.features))
    for cs in (s for s in required if s is not None):
        result = evaluate_set(cs, features)
        results.append(result)
        checks.extend(_rule_checks(result, facts, target))
    if not target and candidate.platform is not None:
        target = platform.variant_target(candidate.platform)
    tags: tuple[str, ...] = ()
    if artifact_sets:
        alternatives = [evaluate_set(cs, features) for cs in artifact_sets]
        results.extend(alternatives)
        matching = [r for r in alternatives if r.is_match]
        tags = tuple(r.tag for r in matching if r.tag)
        if matching:
            best = max(matching, key=lambda r: r.weight)
            weight += best.weight
            detail = f"NFD set {best.tag or '(untagged)'} matches ({best.source})"
            checks.append(Check(name="nfd", passed=True, detail=detail))
        else:
            first = next((r for r in alternatives), None)
            failed = next((rr for rr in first.rules if not rr.is_match), None) if first else None
            why = describe(failed, facts) if failed else "no set matches"
            checks.append(
                Check(
                    name="nfd",
                    passed=False,
                    detail=f"none of {len(alternatives)} NFD compatibility sets matches: {why}",
                )
            )
    build = _label(candidate, target, [s.tag for s in artifact_sets if s.tag])
    policy = policy or Policy()
    names = Policy.names(candidate.digest, build, tags)
    if policy.pinned_out(names):
        checks.append(Check(name="policy", passed=False, detail=f"site policy pins {policy.pin}"))
    fits = all(c.passed for c in checks)
    score = None
    if fits:
        score = Score(
            policy=policy.rank(names),
            weight=weight,
            gpu=int(vocabulary.requires_gpu(candidate.annotations)),
            mpi=int(vocabulary.names_mpi(candidate.annotations)),
            cpu=cpu.depth(target),
            position=candidate.position,
        )
    return Verdict(
        candidate=candidate,
        build=build,
        fits=fits,
        checks=tuple(checks),
        sets=tuple(results),
        score=score,
        gpu=_gpu_label(candidate.annotations),
        mpi=_mpi_label(candidate.annotations),
    )


def host_summary(facts: HostFacts) -> str:
    """One line naming the host as the decision saw it."""
    c = facts.cpu
    parts = [f"{platform.host_platform(facts)} {c.target} ({c.vendor}, {c.generic})"]
    gpus = facts.gpu.nvidia.devices
    if gpus:
        ccs = ",".join(sorted({d.compute_capability or "?" for d in gpus}))
        parts.append(
            f"{len(gpus)} NVIDIA GPU (sm {ccs}, CUDA {facts.gpu.nvidia.cuda_driver_version})"
        )
    if facts.gpu.amd.devices:
        parts.append("AMD " + ",".join(sorted({d.gfx_target for d in facts.gpu.amd.devices})))
    if facts.mpi.implementation:
        parts.append(f"{facts.mpi.implementation} {facts.mpi.version} ({facts.mpi.abi} ABI)")
    return ", ".join(parts)


def select(
    candidates: Sequence[Candidate],
    facts: HostFacts,
    *,
    artifact_sets: Mapping[str, Sequence[CompatibilitySet]] | None = None,
    index_digest: str | None = None,
    policy: Policy | None = None,
    requested_platform: tuple[str, str, str | None] | None = None,
) -> Decision:
    """Choose the build of an index for a host.

    Args:
        candidates: the index's descriptors, from :func:`scoring.parse_index`.
        facts: the host (or node class) to choose for.
        artifact_sets: NFD compatibility sets by subject digest (a candidate's
            manifest digest, or `index_digest` for sets that apply to every build).
        index_digest: digest of the index itself.
        policy: site/user policy for this image.
        requested_platform: (os, architecture, variant or None) the user asked
            for (``--platform``): only builds of that platform are considered.

    Returns:
        A Decision: SELECTED with ``chosen`` the best fitting candidate;
        PASSTHROUGH when no candidate carries compatibility data; REFUSED when
        the index carries compatibility data and no candidate fits (``closest``
        names the nearest build). The same inputs always give the same decision.
    """
    from hostfacts.nfd import features as nfd_features

    artifact_sets = artifact_sets or {}
    host = platform.host_platform(facts)
    summary = host_summary(facts)
    features = nfd_features(facts)
    common = tuple(artifact_sets.get(index_digest, ())) if index_digest else ()
    verdicts = tuple(
        evaluate(c, facts, host, features, (*artifact_sets.get(c.digest, ()), *common), policy)
        for c in candidates
    )
    if not any(
        _has_compatibility_data(c, (*artifact_sets.get(c.digest, ()), *common)) for c in candidates
    ):
        return Decision(
            outcome=Outcome.PASSTHROUGH,
            reason="the index carries no compatibility data; the runtime's own platform match applies",
            verdicts=verdicts,
            host=summary,
        )
    fitting = [v for v in verdicts if v.fits]
    if not fitting:
        near = [
            v
            for v in verdicts
            if v.checks and all(c.passed for c in v.checks if c.name in ("platform", "media-type"))
        ]
        closest = min(near, key=lambda v: (v.failed, v.candidate.position), default=None)
        return Decision(
            outcome=Outcome.REFUSED,
            reason=f"none of the {len(verdicts)} builds runs on this host ({summary})",
            verdicts=verdicts,
            host=summary,
            closest=closest.candidate if closest else None,
        )
    best = max(fitting, key=lambda v: v.score.key())
    if len(fitting) == 1:
        why = f"{best.build} is the only build that runs here"
    else:
        why = f"{best.build} ranks first of {len(fitting)} fitting builds ({_why_first(best, fitting)})"
    return Decision(
        outcome=Outcome.SELECTED, reason=why, chosen=best.candidate, verdicts=verdicts, host=summary
    )


def _why_first(best: Verdict, fitting: list[Verdict]) -> str:
    """Which score component put `best` ahead of the runner-up."""
    others = sorted(
        (v for v in fitting if v is not best), key=lambda v: v.score.key(), reverse=True
    )
    runner = others[0].score
    mine = best.score
    for field, text in (
        ("policy", "site policy"),
        ("weight", "higher weight"),
        ("gpu", "a GPU build for this GPU"),
        ("mpi", "built for this host's MPI"),
        ("cpu", "the most specific CPU target"),
    ):
        if getattr(mine, field) != getattr(runner, field):
            return text
    return "first in index order"
