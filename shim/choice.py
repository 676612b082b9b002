"""Choosing for one command: the decision for each image operand on each
target (:mod:`shim.targets`), from the decision cache, the index store
(:mod:`shim.store`) or the registry (:mod:`shim.resolve`), with single
flight across the cluster, offline fallbacks and the audit log.

:class:`Context` holds what the operands of one command share. The policy
helpers say which ``[[policy]]`` entry applies on which node classes. Heavy
imports (requests, pydantic, archspec) happen only on a decision-cache miss.
"""

from __future__ import annotations

from shim.config import Settings
from shim.errors import Refusal, RegistryError, ShimError
from shim.intercept import warn


def policy_entry(settings: Settings, repository: str, classes: tuple[str, ...]) -> dict | None:
    """The config's policy entry for `repository` on a node in no class
    (``()``) or of one class; for several classes see :func:`class_policies`."""
    return settings.policy_for(repository, classes[0] if classes else None)


def class_policies(settings: Settings, repository: str, classes) -> dict:
    """``{class: policy entry or None}`` for each of `classes` (a job's)."""
    return {name: settings.policy_for(repository, name) for name in sorted(classes)}


def _entries(settings: Settings, repository: str, classes: tuple[str, ...]):
    """The entry (no class, one class) or ``{class: entry}`` (several)."""
    if len(classes) > 1:
        return class_policies(settings, repository, classes)
    return policy_entry(settings, repository, classes)


def _policy(entry: dict | None):
    if entry is None:
        return None
    from scoring.policy import Policy

    return Policy(
        pin=entry["pin"], prefer=entry["prefer"], avoid=entry["avoid"], source=entry["source"]
    )


def _as_policy(entries, classes: tuple[str, ...]):
    """The scoring Policy of :func:`_entries`' result (``{class: Policy}`` for several)."""
    if len(classes) > 1:
        return {n: _policy(e) for n, e in entries.items()}
    return _policy(entries)


def policy_of(settings: Settings, repository: str, classes: tuple[str, ...] = ()):
    """The scoring Policy the config gives `repository` on `classes`: one
    Policy or None, or for several classes ``{class: Policy or None}``."""
    return _as_policy(_entries(settings, repository, classes), classes)


#: Builds a refusal lists one per line at most (the closest ones); the rest
#: are counted in one line that points to ``imagefit explain``.
REFUSAL_BUILDS = 10


def _refusal(ref, decision, target=None) -> Refusal:
    """The refusal of `decision` (no build of `ref` runs here) as shown to a
    person: the reason, one line per build (at most :data:`REFUSAL_BUILDS`,
    the closest first by failed checks, shown in index order; then a count),
    then the closest build and what it lacks. Every string the registry chose
    (build labels from annotations, check details quoting annotation values,
    media types, platforms) is made terminal-safe and cut
    (:func:`shim.untrusted.terminal_safe`), so the message has at most
    ``REFUSAL_BUILDS + 3`` lines of bounded length whatever the index holds."""
    from shim.untrusted import terminal_safe as safe

    scope = f" [{target.why}]" if target is not None and not target.live else ""
    if decision.policy_error:  # the policy, not the host: one line, no build list
        return Refusal(f"{ref}: {safe(decision.policy_error, 600)}{scope}")
    lines = [f"{ref}: {safe(decision.reason, 400)}{scope}"]
    verdicts = list(decision.verdicts)
    closest = None
    if decision.closest is not None:  # by identity first: == compares models field by field
        closest = next((v for v in verdicts if v.candidate is decision.closest), None) or next(
            (v for v in verdicts if v.candidate == decision.closest), None
        )
    if len(verdicts) > REFUSAL_BUILDS:
        ranked = sorted(verdicts, key=lambda v: (v is not closest, v.failed, v.candidate.position))
        shown = sorted(ranked[:REFUSAL_BUILDS], key=lambda v: v.candidate.position)
    else:
        shown = verdicts
    lines += [f"  {safe(v.build, 80)}: {safe(v.why_not)}" for v in shown]
    if len(verdicts) > len(shown):
        lines.append(
            f"  ... and {len(verdicts) - len(shown):,} more builds; "
            f"`imagefit explain {ref}` lists them"
        )
    if closest is not None:
        lacks = "; ".join(safe(c.detail) for c in closest.checks if not c.passed)
        lines.append(f"closest: {safe(closest.build, 80)}, which lacks: {safe(lacks, 600)}")
    return Refusal("\n".join(lines))


def job_visible(personality, inv, environ) -> dict[str, str]:
    """``{NAME: VALUE}`` of the visible-device variables
    (:data:`hostfacts.fingerprint.VISIBLE_ENV`) the job's container will
    have: what the command line sets (:meth:`Personality.job_env`) over the
    caller's environment; a variable the container will not have is left
    out. `inv` None (``imagefit warm``): the caller's."""
    from hostfacts.fingerprint import VISIBLE_ENV

    given = personality.job_env(inv, environ) if inv is not None else {}
    out: dict[str, str] = {}
    for name in VISIBLE_ENV:
        value = given[name] if name in given else environ.get(name)
        if value is not None:
            out[name] = value
    return out


class Context:
    """What resolving the operands of one command shares: settings, the cache
    directory, the facts and index data already loaded."""

    def __init__(self, personality, inv, settings, environ, hostname, requested, directory, shared):
        self.personality = personality
        self.inv = inv
        self.settings = settings
        self.environ = environ
        self.hostname = hostname
        self.requested = requested
        self.directory = directory
        self.shared = shared
        self.trusted = settings.cache_trusted_uids
        #: the job's visible-device variables (the command line's over the caller's)
        self.visible = job_visible(personality, inv, environ)
        self.cpu_target = settings.cpu_target_for(hostname)
        self.facts: dict = {}  # "live" or a facts file's path -> HostFacts
        self.identities: dict[str, str] = {}  # the same keys -> class identity
        self.data: dict = {}
        #: references the registry was found unreachable for (age of what was
        #: used instead, the error), and those it answered for
        self.offline: dict[str, tuple[float, str]] = {}
        self.reached: set[str] = set()
        #: how each reference's last decision was had (hit, miss, waited, ...)
        self.states: dict[str, str] = {}

    # -- identities and facts ------------------------------------------------

    def _live_facts(self):
        if "live" not in self.facts:
            from hostfacts import host_facts
            from hostfacts.fingerprint import class_identity, record_identity
            from shim.targets import live_fingerprint

            facts = host_facts(self.environ, cpu_target=self.cpu_target)
            self.facts["live"] = facts
            self.identities["live"] = class_identity(facts.model_dump(mode="json"))
            fp = live_fingerprint(self.environ, self.hostname, self.cpu_target)
            if fp is not None:
                record_identity(self.environ, fp, self.identities["live"])
        return self.facts["live"]

    def _file_facts(self, path: str):
        if path not in self.facts:
            from hostfacts.api import parse_facts
            from hostfacts.fingerprint import class_identity, file_fingerprint, record_identity
            from shim.targets import read_class_facts

            raw = read_class_facts(path)  # read once: the facts and their fingerprint agree
            facts = parse_facts(raw, path)
            self.facts[path] = facts
            self.identities[path] = class_identity(facts.model_dump(mode="json"))
            record_identity(self.environ, file_fingerprint(raw), self.identities[path])
        return self.facts[path]

    def identity(self, target) -> str | None:
        """The class identity of `target` (for several classes, of all of
        them), read from the per-node record when known, else from the facts
        (probed or loaded now, and recorded). None: facts that cannot be tied
        to anything (no boot id), so no cache."""
        from hostfacts.fingerprint import cached_identity
        from shim.targets import file_fingerprint, live_fingerprint

        if target.live:
            fp = live_fingerprint(self.environ, self.hostname, self.cpu_target)
            if fp is None:
                return None
            found = cached_identity(self.environ, fp)
            if found is None:
                self._live_facts()
                found = self.identities["live"]
            return found
        parts = []
        for path in target.files:
            found = cached_identity(self.environ, file_fingerprint(path))
            if found is None:
                self._file_facts(path)
                found = self.identities[path]
            parts.append(found)
        return parts[0] if len(parts) == 1 else "common-" + ",".join(sorted(parts))

    def facts_of(self, target):
        """The facts to choose for: one HostFacts, or ``{class: HostFacts}``
        for a common choice."""
        if target.live:
            return self._live_facts()
        if not target.common:
            return self._file_facts(target.files[0])
        pairs = zip(target.classes, target.files, strict=True)
        return {name: self._file_facts(path) for name, path in pairs}

    # -- one decision ----------------------------------------------------------

    def entry(self, ref, target, why_insecure):
        """The decision for `ref` on `target`: from the cache, revalidated,
        or made now (single flight). None after a fail-open warning."""
        import time

        from shim import decisions

        settings = self.settings
        start = time.monotonic()
        policy = _entries(settings, str(ref), target.classes)  # with its tag/digest
        if len(target.classes) <= 1:
            _pin_ignored(settings, ref, policy)
        from hostfacts.fingerprint import VISIBLE_ENV

        material = {
            "policy": policy,
            "nfd": settings.nfd_artifacts,
            "requested": self.requested,
            "common": target.common,
            # the job's GPUs: never a decision for one visible set served for another
            "visible": {name: self.visible.get(name) for name in VISIBLE_ENV},
        }
        key = None
        if settings.decision_cache_ttl > 0 and self.directory is not None:
            try:
                identity = self.identity(target)
            except (ShimError, ValueError, OSError) as exc:  # ConfigError, HostFactsError
                return self._failed(ref, exc, start)
            key = decisions.key(str(ref), identity, material) if identity else None
        entry = decisions.load(self.directory, key, self.trusted) if key else None
        state = "miss"
        if entry is not None and entry.age() <= settings.decision_cache_ttl:
            state = "hit"
        elif entry is not None:
            entry, state = self._revalidate(entry, ref, why_insecure)
            if entry is not None and state == "revalidated":
                decisions.store(self.directory, key, entry, self.shared)
        if entry is None:
            if key is not None:
                # the leader may probe facts and wait on the reference's own flight
                with decisions.single_flight(
                    self.directory, key, 2 * _flight_wait(settings), self.trusted, self.shared
                ) as flight:
                    entry = flight.entry
                    state = "waited" if entry is not None else "miss"
                    if entry is None:
                        entry = self._decide(ref, target, why_insecure, start, policy)
                        if entry is not None:
                            decisions.store(self.directory, key, entry, self.shared)
            else:
                entry = self._decide(ref, target, why_insecure, start, policy)
        if entry is None:
            return None
        if (
            entry.outcome == "selected"
            and entry.cmd is None
            and self.personality.wants_cmd(self.inv)
        ):
            entry.cmd = self.image_cmd(ref, entry.chosen, why_insecure)  # then kept: hits need none
            if entry.cmd is not None and key is not None:
                decisions.store(self.directory, key, entry, self.shared)
        reason = entry.refusal.splitlines()[0] if entry.refusal else ""
        _audit(settings, self.personality, ref, entry, entry.outcome, reason, state, start)
        self.states[str(ref)] = state
        return entry

    def _failed(self, ref, exc, start):
        """A resolution that failed with `exc`: audited with its cause, then
        the one-line refusal (``on_error = "refuse"``: ShimError, exit 125)
        or the fail-open warning (None: the command runs unchanged)."""
        refuse = self.settings.on_error == "refuse"
        _audit(
            self.settings, self.personality, ref, None, "refused" if refuse else "error",
            f"resolution failed ({exc}); " + ("refused (on_error = refuse)" if refuse else "ran unchanged"),
            "miss", start,
        )  # fmt: skip
        if refuse:
            raise ShimError(f"cannot resolve {ref}: {exc}") from None
        warn(f"cannot resolve {ref} ({exc}); running the command unchanged")
        return None

    def _decide(self, ref, target, why_insecure, start, entries):
        """Resolve `ref` now (the cold path) under the policy `entries`
        (:func:`_entries`): a decisions.Entry, or None after a fail-open
        warning. Raises ShimError when on_error = "refuse"."""
        from hostfacts import HostFactsError
        from scoring import Outcome
        from shim import decisions
        from shim.resolve import decide

        try:
            facts = self.facts_of(target)
            data = self.index_data(ref, why_insecure)
        except (RegistryError, HostFactsError, ShimError) as exc:
            return self._failed(ref, exc, start)
        decision = decide(
            data, facts, _as_policy(entries, target.classes), self.requested, visible=self.visible
        )
        if decision.outcome == Outcome.REFUSED:
            return decisions.Entry(
                str(ref), data.digest, "refused", refusal=str(_refusal(ref, decision, target))
            )
        if decision.outcome == Outcome.SELECTED and decision.chosen is not None:
            from shim.gpu_access import build_vendor

            chosen = decision.chosen
            build = next((v.build for v in decision.verdicts if v.candidate == chosen), "")
            return decisions.Entry(
                str(ref), data.digest, "selected", chosen.digest, dict(chosen.annotations),
                build=build, gpu=build_vendor(chosen),
            )  # fmt: skip
        return decisions.Entry(str(ref), data.digest, "passthrough")

    def image_cmd(self, ref, digest: str, why_insecure) -> list[str] | None:
        """The ``Cmd`` of the build `digest` of `ref` from its image config
        (the manifest by digest, then its ``config`` blob: two requests, each
        bounded and digest-verified by :class:`shim.registry.RegistryClient`,
        from the same pull sources as the index, within 2 s when this command
        has not reached the registry). Asked by :meth:`entry` only for a
        command that runs it (``Personality.wants_cmd``) when the decision
        does not hold it yet; then kept with the decision, so that a cache
        hit needs no request. ``[]`` when the config has none; None when it
        cannot be had (the registry unreachable, a failure, a Cmd beyond
        :func:`shim.decisions.valid_cmd`): the login shell then starts as
        when there is no Cmd."""
        from shim.decisions import valid_cmd
        from shim.resolve import _first_source
        from shim.untrusted import loads_json

        if str(ref) in self.offline:
            return None

        def config(client, source):
            manifest = loads_json(client.get_manifest(source.path, digest).body, "a manifest")
            blob = manifest.get("config") if isinstance(manifest, dict) else None
            config_digest = blob.get("digest") if isinstance(blob, dict) else None
            if not isinstance(config_digest, str):
                return None
            document = loads_json(client.get_blob(source.path, config_digest), "an image config")
            inner = document.get("config") if isinstance(document, dict) else None
            return (inner or {}).get("Cmd") if isinstance(inner, dict) or inner is None else None

        args = self._client_args(why_insecure)
        if str(ref) not in self.reached:  # a decision from the cache or the store: maybe offline
            args["timeout"] = min(2.0, args["timeout"])
        try:
            cmd = _first_source(ref, config, **args)[0]
        except Exception:  # noqa: BLE001 - unknown Cmd: the shell starts, as before
            return None
        cmd = [] if cmd is None else cmd
        return cmd if valid_cmd(cmd) else None

    # -- the index, from the store or the registry -------------------------------

    def _client_args(self, why_insecure) -> dict:
        return {
            "environ": self.environ,
            "insecure": why_insecure() is not None,
            "timeout": self.settings.registry_timeout,
            "authfile": self.personality.authfile(self.inv, self.environ),
            "credentials": self.personality.credentials(self.inv, self.environ),
            # the user's --tls-verify applies to every pull source, mirrors included,
            # as containers/image applies it
            "tls_verify": self.personality.tls_verify(self.inv, self.environ),
        }

    def index_data(self, ref, why_insecure, *, quiet: bool = False, refresh: bool = False):
        """What the registry says about `ref`: from the index store when its
        record is fresh (no request); else one process on the whole cluster
        (single flight on the reference) asks the registry, one HEAD when the
        store holds a stale record (the same index: the record is refreshed),
        a fetch otherwise, and stores it, while every other process waits for
        the fresh record. When the registry cannot be reached: the store,
        whatever its age, with one warning naming the age (unless `quiet`:
        the caller says it; ``offline`` records the age and the error).
        With `refresh` (``imagefit explain``: what the registry says now, NFD
        artifacts attached since included), the registry is asked in any
        case and the store refreshed; the store serves only when it fails.

        Raises:
            RegistryError: the registry failed and the store has nothing.
        """
        from shim import decisions, store
        from shim.resolve import fetch

        name = str(ref)
        if name in self.data:
            return self.data[name]
        ttl = self.settings.decision_cache_ttl
        directory, shared = self.directory, self.shared
        if not (ttl > 0 and directory is not None):
            data = fetch(
                ref, nfd_artifacts=self.settings.nfd_artifacts, **self._client_args(why_insecure)
            )
            self.reached.add(name)
            self.data[name] = data
            return data

        def stored(max_age=None):
            record = store.load_record(directory, name, self.trusted)
            if record is None or (max_age is not None and record.age() > max_age):
                return None
            try:
                data = store.index_data(directory, record, ref, self.trusted)
            except RegistryError:
                return None
            return (record, data) if data is not None else None

        found = stored()
        if found is not None and found[0].age() <= ttl and not refresh:
            self.data[name] = found[1]
            return found[1]
        try:
            if refresh:
                data = self._ask_registry(ref, None, why_insecure)
                self.data[name] = data
                return data
            with decisions.single_flight(
                directory,
                "ref-" + store.ref_key(name),
                _flight_wait(self.settings),
                self.trusted,
                shared=shared,
                check=lambda: (lambda f: f[1] if f else None)(stored(ttl)),
            ) as flight:
                data = flight.entry
                if data is None:
                    # the leader before us may have saved the record between our
                    # read and our taking the lock: read it again, now that no one
                    # else can be asking (else a late node asks a second time)
                    again = stored(ttl)
                    data = again[1] if again else self._ask_registry(ref, found, why_insecure)
        except RegistryError as exc:
            if found is None:
                raise
            self.offline[name] = (found[0].age(), str(exc))
            if not quiet:
                warn(
                    f"cannot reach the registry for {ref} ({exc}); "
                    f"deciding from the index stored {_age_words(found[0].age())} ago"
                )
            data = found[1]
        self.data[name] = data
        return data

    def _ask_registry(self, ref, found, why_insecure):
        """The single-flight leader's request: one HEAD when the store holds a
        (stale) record of `ref` and the tag still names that index (the record
        is refreshed for everyone); else the fetch, stored.

        Raises:
            RegistryError: the registry failed.
        """
        import time

        from shim import store
        from shim.resolve import fetch, head

        name = str(ref)
        if found is not None:
            current = head(ref, **self._client_args(why_insecure))
            self.reached.add(name)
            record = found[0]
            if current == record.index_digest:
                store.save_record(
                    self.directory,
                    store.Record(record.reference, record.index_digest, record.media_type,
                                 record.artifacts, time.time(), record.source),
                    self.shared,
                )  # fmt: skip
                return found[1]
        data = fetch(
            ref, nfd_artifacts=self.settings.nfd_artifacts, **self._client_args(why_insecure)
        )
        self.reached.add(name)
        store.save(self.directory, data, self.shared, self.trusted)
        return data

    def _revalidate(self, entry, ref, why_insecure):
        """A stale decision: is the index it was made from still the one the
        tag names? Asked of the index store (:meth:`index_data`: a fresh
        record, or one HEAD for the whole cluster). Same index digest:
        (entry, "revalidated"); another: (None, "miss"); registry unreachable:
        (entry, "stale") with a warning naming the decision's age."""
        import time

        name = str(ref)
        try:
            data = self.index_data(ref, why_insecure, quiet=True)
            error = self.offline.get(name, (0, None))[1]
        except RegistryError as exc:
            data, error = None, str(exc)
            self.offline[name] = (entry.age(), error)
        if error is not None:
            if data is not None and data.digest != entry.index_digest:
                return None, "miss"  # the store knows a newer index: decide from it
            warn(
                f"cannot check {ref} ({error}); using the decision made {_age_words(entry.age())} ago"
            )
            return entry, "stale"
        if data.digest != entry.index_digest:
            return None, "miss"
        entry.decided_at = time.time()
        return entry, "revalidated"

    def check_local(self, ref, entry, target) -> None:
        """Before the runtime tries to pull a build the registry cannot
        serve: when this command decided without reaching the registry (the
        registry failed, or the decision came from the store), a pull source
        must accept a TCP connection (no request) or the chosen build be in
        local storage (asked of the runtime only then). A cached decision (a
        hit) is not checked: the hot path execs the runtime at once.

        Raises:
            ShimError: one line naming the build this node needs and how to get
                it: for a node class, the pull for that class (which also tags
                REF); for a job's common build, the pull of that digest.
        """
        name = str(ref)
        state = self.states.get(name)
        if name not in self.offline and (state == "hit" or name in self.reached):
            return
        if name not in self.offline and self._reachable(ref):
            return
        pinned = self.personality.pin("", ref, entry.chosen)
        if self.personality.has_image(self.inv, pinned) is not False:
            return
        classes = ",".join(target.classes)
        who = f"{target.why} needs" if target.common else (
            f"node class {classes} needs" if classes else "this node needs"
        )  # fmt: skip
        storage = " ".join(self.personality.storage_args(self.inv))
        pull = f"{self.personality.name} {storage + ' ' if storage else ''}pull"
        if target.common:
            how = f"{pull} {pinned}"
        elif classes:
            how = f"IMAGEFIT_NODE_CLASS={classes} {pull} {ref}"
        else:
            how = f"{pull} {ref} on a node like this one"
        error = ShimError(
            f"{ref}: {who} build {entry.build or entry.chosen} ({entry.chosen}), "
            f"which is not in local storage, and the registry cannot be reached; "
            f"on a node that reaches it run: {how}"
        )
        import time

        _audit(self.settings, self.personality, ref, entry, "refused", str(error),
               state or "miss", time.monotonic())  # fmt: skip
        raise error

    def _reachable(self, ref) -> bool:
        """False only when every place the runtime would pull `ref` from (its
        mirrors, then the registry; at most 16) refused a TCP connection or has
        no route, within 2 s (or the registry timeout) for all of them, name
        lookups included; a source that does not answer in time might still
        serve the pull, so it counts as reachable. No request is made. The
        sources are tried at once, each on a daemon thread."""
        import socket
        import threading

        from shim import registries_conf

        try:
            sources = registries_conf.pull_sources(ref.name, True, self.environ)
        except Exception:  # an unreadable registries.conf: the registry alone
            sources = []
        domains = list(dict.fromkeys([s.domain for s in sources] or [ref.domain]))[:16]
        deadline = min(2.0, self.settings.registry_timeout)
        failed: list[str] = []
        answered = threading.Event()

        def probe(domain: str) -> None:
            host, sep, port = domain.rpartition(":")
            if not sep or not port.isdigit():
                host, port = domain, ""
            host = "registry-1.docker.io" if host == "docker.io" else host.strip("[]")
            for number in [int(port)] if port else [443, 80]:
                try:
                    socket.create_connection((host, number), timeout=deadline).close()
                    answered.set()
                    return
                except (OSError, ValueError):
                    continue
            failed.append(domain)
            if len(failed) == len(domains):
                answered.set()

        for domain in domains:
            threading.Thread(target=probe, args=(domain,), daemon=True).start()
        answered.wait(deadline)
        return len(failed) < len(domains)


def _pin_ignored(settings, ref, entry) -> None:
    """One warning when IMAGEFIT_PIN loses to a site lock."""
    if (
        settings.pin is not None
        and entry is not None
        and entry["lock"]
        and entry["pin"] != settings.pin
    ):
        what = f"pin {entry['pin']}" if entry["pin"] else "policy"
        warn(f"IMAGEFIT_PIN={settings.pin} ignored for {ref}: the site locks its {what}")


def _flight_wait(settings) -> float:
    """How long a process waits for another's resolution (and the lease of a
    lock): the registry deadline plus the holder's start-up and scoring, which
    on a loaded node (hundreds of ranks starting at once) take seconds."""
    return settings.registry_timeout + 10.0


def _age_words(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def _audit(settings, personality, ref, entry, outcome, reason, state, start) -> None:
    if not settings.audit_log:
        return
    import time

    from shim import audit

    audit.record(
        settings.audit_log,
        light=state in ("hit", "waited"),
        facility=getattr(settings, "audit_facility", "authpriv"),
        runtime=personality.name,
        reference=str(ref),
        index_digest=entry.index_digest if entry else None,
        chosen=entry.chosen if entry else None,
        build=(entry.build or None) if entry else None,
        outcome=outcome,
        reason=reason,
        cache=state,
        duration_ms=round((time.monotonic() - start) * 1000, 1),
    )
