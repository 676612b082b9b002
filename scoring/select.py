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
fitting GPU host, graded by how its code runs on every visible GPU (native
for the exact compute capability or gfx target > native for a lower minor,
or a generic gfx target > PTX, the newest first: :mod:`scoring.gpu`) >
build for the host's MPI > the most specific CPU target (deeper in
archspec's DAG) > index order (image-index.md: the first match wins);
see :class:`scoring.model.Score`. The same inputs always give the same
decision. An index with no compatibility data at all passes through
untouched: the runtime's own platform match applies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hostfacts import HostFacts
from scoring import cpu, gpu, labels, platform, tokens, vocabulary
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
    """The build's label without the rest of its index (:func:`scoring.labels.base_label`;
    :func:`select` makes labels unique with :func:`scoring.labels.name_builds`)."""
    return labels.base_label(candidate, tags)


def _names(
    candidates: Sequence[Candidate],
    artifact_sets: Mapping[str, Sequence[CompatibilitySet]],
    common: Sequence[CompatibilitySet],
) -> tuple[labels.BuildName, ...]:
    """Each candidate's unique label and policy aliases (:mod:`scoring.labels`)."""
    tags = [
        [s.tag for s in (*artifact_sets.get(c.digest, ()), *common) if s.tag] for c in candidates
    ]
    return labels.name_builds(candidates, tags)


def _pin_error(
    candidates: Sequence[Candidate],
    names: Sequence[labels.BuildName],
    artifact_sets: Mapping[str, Sequence[CompatibilitySet]],
    common: Sequence[CompatibilitySet],
    policy: Policy | None,
) -> str | None:
    """One line when `policy` pins a name that several builds answer to."""
    if policy is None or policy.pin is None:
        return None
    builds = [
        (
            n.label,
            c.digest,
            labels.policy_names(
                c, n, [s.tag for s in (*artifact_sets.get(c.digest, ()), *common) if s.tag]
            ),
        )
        for c, n in zip(candidates, names, strict=True)
        if c.media_type in MANIFEST_MEDIA_TYPES
    ]
    return policy.pin_error(builds)


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


def _gpu_fits(annotations: dict[str, str], plat_tokens, facts: HostFacts) -> dict[str, gpu.Fit]:
    """The every-visible-GPU fit of the build's own GPU code, by the name of
    the rule it stands in for (``gpu.compute_capability``, the CC tokens'
    rule, ``gpu.amd``): :mod:`scoring.gpu` over the visible devices."""
    fits: dict[str, gpu.Fit] = {}
    notes = facts.gpu.visibility
    code = gpu.parse_capabilities(annotations.get(vocabulary.COMPUTE_CAPABILITIES, ""))
    if code is not None and (code.native or code.ptx):
        fits["gpu.compute_capability"] = gpu.nvidia_fit(code, facts.gpu.nvidia.devices, notes)
    code = gpu.token_capabilities(plat_tokens)
    if code is not None:
        fits[tokens.CC_RULE] = gpu.nvidia_fit(code, facts.gpu.nvidia.devices, notes)
    targets = gpu.amd_targets(annotations.get(vocabulary.AMD_GFX, ""))
    if targets:
        fits["gpu.amd"] = gpu.amd_fit(targets, facts.gpu.amd.devices, notes)
    return fits


def _rule_checks(
    result: SetResult, facts: HostFacts, target: str | None, gpu_fits: dict[str, gpu.Fit]
) -> list[Check]:
    checks = []
    for rule in result.rules:
        if rule.name in gpu_fits:  # every visible GPU, not NFD's any instance
            fit = gpu_fits[rule.name]
            checks.append(Check(name=rule.name, passed=fit.fits, detail=fit.detail))
        elif rule.name == "cpu.target" and target:
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
    name: labels.BuildName | None = None,
) -> Verdict:
    """Every check of one candidate against the host, and its score if it fits.
    `name`: the candidate's label and aliases within its index
    (:func:`scoring.labels.name_builds`); without it, its label alone."""
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
    target = cpu.annotated_target(candidate.annotations)
    plat_tokens = candidate.platform.features if candidate.platform is not None else ()
    # a cpu:TARGET token stands for the target annotation: it ranks and limits alike
    cpu_target = target or tokens.token_target(plat_tokens)
    if requested_platform is not None:
        checks.append(
            platform.check_requested(candidate.platform, requested_platform, host, cpu_target)
        )
    weight = 0
    try:
        required = [vocabulary.compile_annotations(candidate.annotations)]
        weight = vocabulary.weight(candidate.annotations)
    except vocabulary.InvalidAnnotation as exc:
        required = []
        checks.append(Check(name="annotation", passed=False, detail=f"invalid annotation {exc}"))
    if candidate.platform is not None:
        required.append(tokens.compile_tokens(candidate.platform.features))
    gpu_fits = _gpu_fits(candidate.annotations, plat_tokens, facts)
    for cs in (s for s in required if s is not None):
        result = evaluate_set(cs, features)
        results.append(result)
        checks.extend(_rule_checks(result, facts, target, gpu_fits))
    if not target and candidate.platform is not None:
        target = cpu_target or platform.variant_target(candidate.platform)
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
            # a readable set's reason first: it says what the host lacks
            first = next((r for r in alternatives if not r.error), None) or next(
                iter(alternatives), None
            )
            failed = next((rr for rr in first.rules if not rr.is_match), None) if first else None
            why = describe(failed, facts) if failed else "no set matches"
            if first is not None and first.tag:
                why = f"set {first.tag}: {why}"
            checks.append(
                Check(
                    name="nfd",
                    passed=False,
                    detail=f"none of {len(alternatives)} NFD compatibility sets matches: {why}",
                )
            )
    if name is not None:
        build, aliases = name.label, name.aliases
    else:
        build, aliases = (
            _label(candidate, target, [s.tag for s in artifact_sets if s.tag]),
            frozenset(),
        )
    policy = policy or Policy()
    names = Policy.names(candidate.digest, build, tags, aliases)
    if policy.pinned_out(names):
        checks.append(
            Check(name="policy", passed=False, detail=f"{policy.who()} pins {policy.pin}")
        )
    fits = all(c.passed for c in checks)
    score = None
    grade, gpu_code = 0, ""
    if vocabulary.requires_gpu(candidate.annotations) or tokens.names_gpu(plat_tokens):
        stated = [f for f in gpu_fits.values() if f.fits]
        worst = min(stated, key=lambda f: f.grade, default=None)
        grade, gpu_code = (
            (worst.grade, worst.summary) if worst else (gpu.UNSTATED, "a GPU build naming no code")
        )
    if fits:
        score = Score(
            policy=policy.rank(names),
            weight=weight,
            gpu=grade,
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
        gpu_code=gpu_code if fits else "",
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
            for (``--platform``, ``--arch``...), any spelling: only the builds
            the runtime would take for it are considered
            (:func:`scoring.platform.check_requested`: containerd/platforms
            compare.go ``Only``, and no CPU target above the level asked for).

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
    names = _names(candidates, artifact_sets, common)
    verdicts = tuple(
        evaluate(
            c,
            facts,
            host,
            features,
            (*artifact_sets.get(c.digest, ()), *common),
            policy,
            requested_platform=requested_platform,
            name=n,
        )  # fmt: skip
        for c, n in zip(candidates, names, strict=True)
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
    pin_error = _pin_error(candidates, names, artifact_sets, common, policy)
    if pin_error:
        return Decision(
            outcome=Outcome.REFUSED, reason=pin_error, verdicts=verdicts, host=summary,
            policy_error=pin_error,
        )  # fmt: skip
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
            reason=f"none of the {len(verdicts)} builds runs on this host ({summary})"
            + (
                f" as the platform asked for ({platform.requested_text(requested_platform, host)})"
                if requested_platform is not None
                else ""
            ),
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
            if field == "gpu" and runner.gpu:  # two GPU builds: say how their code differs
                return f"{best.gpu_code}; {others[0].build} has {others[0].gpu_code}"
            return text
    return "first in index order"


def select_common(
    candidates: Sequence[Candidate],
    facts_by_class: Mapping[str, HostFacts],
    *,
    artifact_sets: Mapping[str, Sequence[CompatibilitySet]] | None = None,
    index_digest: str | None = None,
    policy: Policy | Mapping[str, Policy | None] | None = None,
    requested_platform: tuple[str, str, str | None] | None = None,
) -> Decision:
    """Choose ONE build of an index for every node class of a job (DESIGN.md
    "A cluster, not a node": every MPI rank must run the same digest).

    Args:
        candidates: the index's descriptors, from :func:`scoring.parse_index`.
        facts_by_class: node class name -> its facts, e.g.
            ``{"zen4": HostFacts(...), "neoverse_v2": HostFacts(...)}``; at
            least one class.
        artifact_sets, index_digest, requested_platform: as for
            :func:`select`, and passed to it for each class.
        policy: one Policy for every class, or each class's own
            (``{class: Policy or None}``: a class's pin keeps the builds
            that class may run, so the job gets a build every class's
            policy allows).

    Rules:
        - Each candidate is judged for each class by :func:`select` (no scoring
          of its own); it fits the job when it fits every class.
        - The common builds are ranked by the :class:`~scoring.model.Score`
          order (policy > weight > gpu > mpi > cpu depth > index order), each
          component taken as its *worst* (minimum) value over the classes: a
          build that is specific on one class but generic on another does not
          beat one that is good everywhere. Index order breaks the last tie.
        - The result does not depend on the order of `facts_by_class` (classes
          are read in sorted name order); one class gives the build
          :func:`select` gives.

    Returns:
        A Decision whose ``verdicts`` hold one Verdict per candidate in index
        order: ``fits`` on every class, ``checks`` those of every class in
        class-name order with the class named at the head of each detail
        (``"zen4: ..."``), ``sets`` likewise (class at the head of ``source``),
        ``score`` the component-wise minimum; ``host`` is
        ``"CLASS: summary; CLASS: summary"``. SELECTED: ``chosen`` is the common
        build and ``reason`` names the classes. PASSTHROUGH: the index carries
        no compatibility data (as :func:`select`). REFUSED: no build fits every
        class; ``reason`` says which builds fit each class (``no build runs on
        every one of these node classes: neoverse_v2 fits neoverse_v2; zen4 fits zen4,
        x86_64_v3``), ``closest`` is the build that fits the most classes (then
        the fewest failed checks, then index order), or None when none fits any.

    Raises:
        ValueError: `facts_by_class` is empty.
    """
    if not facts_by_class:
        raise ValueError("select_common needs at least one node class")
    names = sorted(facts_by_class)
    policies = policy if isinstance(policy, Mapping) else dict.fromkeys(names, policy)
    decisions = {
        name: select(
            candidates,
            facts_by_class[name],
            artifact_sets=artifact_sets,
            index_digest=index_digest,
            policy=policies.get(name),
            requested_platform=requested_platform,
        )
        for name in names
    }
    host = "; ".join(f"{name}: {decisions[name].host}" for name in names)
    broken = next((n for n in names if decisions[n].policy_error), None)
    if broken is not None:
        error = f"node class {broken}: {decisions[broken].policy_error}"
        return Decision(
            outcome=Outcome.REFUSED, reason=error, host=host, policy_error=error,
            verdicts=tuple(
                _common_verdict([(name, decisions[name].verdicts[i]) for name in names])
                for i in range(len(candidates))
            ),
        )  # fmt: skip
    verdicts = tuple(
        _common_verdict([(name, decisions[name].verdicts[i]) for name in names])
        for i in range(len(candidates))
    )
    if any(d.outcome is Outcome.PASSTHROUGH for d in decisions.values()):
        return Decision(
            outcome=Outcome.PASSTHROUGH,
            reason=decisions[names[0]].reason,
            verdicts=verdicts,
            host=host,
        )
    label = ("class " if len(names) == 1 else "classes ") + ", ".join(names)
    fitting = [v for v in verdicts if v.fits]
    if not fitting:
        per_class = "; ".join(
            f"{name} fits "
            + (", ".join(v.build for v in decisions[name].verdicts if v.fits) or "none")
            for name in names
        )
        fits_on = {
            v.candidate.position: sum(decisions[n].verdicts[i].fits for n in names)
            for i, v in enumerate(verdicts)
        }
        near = [v for v in verdicts if fits_on[v.candidate.position]]
        closest = min(
            near,
            key=lambda v: (-fits_on[v.candidate.position], v.failed, v.candidate.position),
            default=None,
        )
        return Decision(
            outcome=Outcome.REFUSED,
            reason=f"no build runs on every one of these node classes: {per_class}",
            verdicts=verdicts,
            host=host,
            closest=closest.candidate if closest else None,
        )
    best = max(fitting, key=lambda v: v.score.key())
    if len(fitting) == 1:
        why = f"{best.build} is the common build for {label}: the only build that runs on all"
    else:
        why = (
            f"{best.build} is the common build for {label}: first of {len(fitting)} builds"
            f" that run on all ({_why_first(best, fitting)})"
        )
    return Decision(
        outcome=Outcome.SELECTED, reason=why, chosen=best.candidate, verdicts=verdicts, host=host
    )


def _common_verdict(per_class: list[tuple[str, Verdict]]) -> Verdict:
    """One candidate's verdicts on several classes as one: it fits when it fits
    every class; each score component is its minimum over the classes."""
    first = per_class[0][1]
    fits = all(v.fits for _, v in per_class)
    score = None
    gpu_code = ""
    if fits:
        gpu_code = min((v for _, v in per_class), key=lambda v: v.score.gpu).gpu_code
        scores = [v.score for _, v in per_class]
        score = Score(
            **{
                field: min(getattr(s, field) for s in scores)
                for field in ("policy", "weight", "gpu", "mpi", "cpu")
            },
            position=first.candidate.position,
        )
    return Verdict(
        candidate=first.candidate,
        build=first.build,
        fits=fits,
        checks=tuple(
            c.model_copy(update={"detail": f"{name}: {c.detail}"})
            for name, v in per_class
            for c in v.checks
        ),
        sets=tuple(
            s.model_copy(update={"source": f"{name}: {s.source}" if s.source else name})
            for name, v in per_class
            for s in v.sets
        ),
        score=score,
        gpu=first.gpu,
        mpi=first.mpi,
        gpu_code=gpu_code,
    )
