"""``platform.features`` tokens, best effort.

The image-spec reserves ``platform.features`` (image-index.md) and defines
no value; early HPC patches used it (moby/moby#38715, image-spec PR #761,
qnib MetaHub: shared/reference/spec-landscape.md section 3). Tokens read:

- ``cpu:<archspec target>`` (MetaHub) or a bare archspec target name
  (``haswell``, ``skylake``): the host must run that target;
- ``nv-compute-capability-<X>-<Y>``: code (SASS) for compute capability
  X.Y; the tokens of a descriptor together list its code and compile into
  one rule, ``platform.features nv-compute-capability``, judged and ranked
  as the compute capability annotation (:mod:`scoring.gpu`);
- ``nvidia-<major>-<minor>``: an NVIDIA driver of at least that version.

Any other token is unsatisfied (it compiles to a rule on a feature no host
has), never an error.
"""

from __future__ import annotations

import re

from scoring.rules import CompatibilitySet, FeatureMatcher, MatchExpression, Rule

_CC = re.compile(r"^nv-compute-capability-(\d+)-(\d+)$")
_DRIVER = re.compile(r"^nvidia-(\d+)-(\d+)$")
#: The one rule all ``nv-compute-capability-X-Y`` tokens of a descriptor compile into.
CC_RULE = "platform.features nv-compute-capability"


def _token_rule(token: str) -> Rule:
    from archspec.cpu import TARGETS

    name = f"platform.features {token}"
    target = token[4:] if token.startswith("cpu:") else token
    if target in TARGETS:
        expr = {target: MatchExpression(op="Exists")}
        return Rule(
            name=name,
            matchFeatures=(FeatureMatcher(feature="archspec.compatible", matchExpressions=expr),),
        )
    if match := _DRIVER.match(token):
        expr = {
            "driver_version": MatchExpression(
                op="Ge", value=(f"{match[1]}.{match[2]}",), type="version"
            )
        }
        return Rule(
            name=name, matchFeatures=(FeatureMatcher(feature="gpu.nvidia", matchExpressions=expr),)
        )
    expr = {token: MatchExpression(op="Exists")}  # no host has this feature: unsatisfied
    return Rule(
        name=name,
        matchFeatures=(FeatureMatcher(feature="platform.features", matchExpressions=expr),),
    )


def token_target(tokens: tuple[str, ...]) -> str | None:
    """The CPU target the tokens name (``cpu:zen4``, or a bare archspec name
    such as ``icelake``): the deepest in archspec's DAG when several do
    (the one the build needs most), the first of those on a tie; None when
    no token names one. Ranks and limits a build exactly as the CPU target
    annotation does (:mod:`scoring.select`)."""
    from archspec.cpu import TARGETS

    named = [t[4:] if t.startswith("cpu:") else t for t in tokens]
    known = [TARGETS[n] for n in named if n in TARGETS]
    if not known:
        return None
    return max(known, key=lambda u: len(u.ancestors)).name


def names_gpu(tokens: tuple[str, ...]) -> bool:
    """True when a token requires an NVIDIA GPU (``nv-compute-capability-X-Y``,
    ``nvidia-MAJOR-MINOR``): such a build ranks as a GPU build, as one with
    the GPU annotations does."""
    return any(_CC.match(t) or _DRIVER.match(t) for t in tokens)


def compile_tokens(tokens: tuple[str, ...]) -> CompatibilitySet | None:
    """The tokens as one CompatibilitySet (source ``platform.features``), or None if there are none."""
    if not tokens:
        return None
    rules = [_token_rule(t) for t in tokens if not _CC.match(t)]
    capabilities = [f"{m[1]}.{m[2]}" for t in tokens if (m := _CC.match(t))]
    if capabilities:
        from scoring.vocabulary import capability_rule

        rules.append(capability_rule(CC_RULE, list(dict.fromkeys(capabilities))))
    return CompatibilitySet(rules=tuple(rules), source="platform.features")
