"""Rotating ENCRYPTION_KEY or SESSION_SECRET_KEY on a deployed service, every credential and session readable at each
moment, each step safe to run again.

The keys live in one Secret Manager secret as a comma-separated list, newest first (the backend's format: the first
key encrypts or signs, every key decrypts or verifies), and each revision reads one version of it (doki's deploys
pin the number `latest` names then). A rotation is these steps, each a version of the secret, a revision reading it,
or the store:

1. learn: "old,new", and a revision reading it. Every instance can read what the new key writes before anything is
   written with it, so an instance of the revision before, still finishing its requests as traffic moves, never
   meets a value it cannot read.
2. adopt: "new,old", and a revision reading it: the new key writes.
3. ENCRYPTION_KEY: every stored credential re-encrypted under the new key, by the backend's own pass
   (`doki.crypto.reencrypt_store`) against the store the service is configured with. SESSION_SECRET_KEY: the 15
   minutes a session lives, from the adopt deploy, so no session the old key signed is still alive.
4. forget: "new"; for ENCRYPTION_KEY a second pass for what an instance of step 1 wrote as traffic moved, while the
   service still reads the old key; then a revision reading it.
5. the versions that hold a dropped key are disabled, so Secret Manager no longer hands it out.

Where a rotation stands is read from the world on each run and never kept on this machine: the secret's enabled
versions (the newest against the one before it) and the version the serving revision reads. So a run stopped
anywhere (an error, Ctrl-C) is resumed by running it again, and a dry run says what the next run would do; a `doki
deploy` in between deploys the newest version, which is always the one the rotation deploys next. `read` only
reads; `steps` turns what it read into plain data; `Rotator` makes the writes.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal, Protocol

from doki_cli.deploy.ports import ServiceUpdater
from doki_cli.errors import Code, DokiError, service_not_found
from doki_cli.model import Edit, LiveService, RevisionInfo
from doki_cli.waiting import DEFAULT_TIMEOUT, WAITING, duration_text, sleep_in_sight

if TYPE_CHECKING:
    from doki.crypto import Reencryption
    from doki.storage.base import CredentialStore
    from doki_cli.gcp.secretmanager import VersionInfo

# How long a session lives (doki.app.SESSION_MAX_AGE_SECONDS), and a minute more for the clocks of Cloud Run's
# instances against Secret Manager's.
SESSION_GRACE = timedelta(seconds=15 * 60 + 60)

# A wait up to this long is waited out in the run (a request timeout's); a longer one (a session's 16 minutes) ends
# the run, saying when to run it again.
INLINE_WAIT = timedelta(minutes=10)

Stage = Literal["idle", "learning", "adopting", "forgetting"]


@dataclass(frozen=True)
class KeyKind:
    """One of the backend's key lists: its variable and what rotating it involves."""

    name: str  # as the command takes it
    variable: str  # the backend's name for it
    reencrypts: bool  # stored values are written with it (ENCRYPTION_KEY); else they only live 15 minutes
    grace: timedelta  # how long after the adopt deploy the old key is still needed

    def new_key(self) -> str:
        if self.reencrypts:
            from doki.crypto import generate_key

            return generate_key()
        import secrets

        return secrets.token_urlsafe(48)

    def problem(self, key: str) -> str | None:
        """What keeps `key` from being one of this list's keys; None when it is one."""
        if self.reencrypts:
            from doki.crypto import fernet_key_defect

            return fernet_key_defect(key)
        from doki.settings import MIN_SESSION_SECRET_LENGTH

        if len(key) < MIN_SESSION_SECRET_LENGTH:
            return f"it is {len(key)} characters, and production needs at least {MIN_SESSION_SECRET_LENGTH}"
        return None


KINDS = {
    "encryption": KeyKind("encryption", "ENCRYPTION_KEY", reencrypts=True, grace=timedelta(0)),
    "session": KeyKind("session", "SESSION_SECRET_KEY", reencrypts=False, grace=SESSION_GRACE),
}


def fingerprint(key: str) -> str:
    """A key's name in plans and output: the start of its SHA-256, which says which key it is and nothing of it."""
    return hashlib.sha256(key.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class Version:
    """An enabled version of the secret and what it holds, split at the commas; `valid`: each part is a key."""

    number: int
    created: datetime | None
    keys: tuple[str, ...] = field(repr=False)
    valid: bool = True


class RunReader(Protocol):
    def path(self, name: str) -> str: ...

    def get(self, name: str) -> LiveService | None: ...

    def revisions(
        self, name: str, limit: int | None = None, *, live: LiveService | None = None
    ) -> list[RevisionInfo]: ...


class RunWriter(RunReader, ServiceUpdater, Protocol): ...


class SecretsReader(Protocol):
    def versions(self, secret_id: str) -> list[VersionInfo]: ...

    def access(self, secret_id: str, version: str = "latest") -> bytes: ...


class SecretsWriter(SecretsReader, Protocol):
    def add_version(self, secret_id: str, data: bytes) -> int: ...

    def disable(self, secret_id: str, number: int) -> None: ...


# The store the service is configured with, opened on the service's own settings: None when doki cannot reach it
# (SQLite on each instance's disk), with why.
StoreOpener = Callable[[], AbstractContextManager["tuple[CredentialStore | None, str]"]]


@dataclass(frozen=True)
class Rotation:
    """Where the rotation of one key list of one service stands, as read."""

    kind: KeyKind
    service: str  # its resource name
    uri: str
    variable: str  # the variable the service reads the list from (ENCRYPTION_KEY, or the guide's *_NAME)
    secret: str
    # Every variable of the serving container that reads the secret (an alias beside it, say): a deploy points them
    # all at the new version, as the old versions end up disabled.
    readers: tuple[str, ...]
    latest: Version
    stage: Stage
    new: str | None = field(repr=False)  # the key a rotation in progress brings in (None: idle)
    old: tuple[str, ...] = field(repr=False)  # the keys it drops (idle: the one in use)
    current: bool = False  # every revision serving traffic was made after the newest version
    serving_since: datetime | None = None  # when the newest of them was made
    # Enabled versions other than the newest that hold a key the newest does not: what step 5 disables.
    stale: tuple[int, ...] = ()
    credentials: int | None = None  # stored credentials, when the store is reachable (ENCRYPTION_KEY)
    store: str = ""  # which store, as the plan names it, or why none is reached
    # How long a request may run on the service (its timeout): after the deploy that makes the new key write, a
    # request still running on the revision before may write with the old key for that long.
    settle: timedelta = timedelta(0)


@dataclass(frozen=True)
class Step:
    """One write of a rotation, as plain data: what the plan shows and the executor does."""

    action: Literal["learn", "adopt", "forget", "deploy", "reencrypt", "wait", "disable"]
    text: str


def variable_of(kind: KeyKind, live: LiveService) -> str | None:
    """The variable the live service reads `kind`'s list from, as the backend picks it: the first of its names that
    is set (plain or from a secret), the backend's own name before the guide's *_NAME."""
    from doki_cli.devcloud import backend_aliases

    names = next((group for group in backend_aliases() if group[0] == kind.variable), [kind.variable])
    return next((name for name in names if name in live.spec.secrets or name in live.spec.env), None)


def read(
    kind: KeyKind,
    run: RunReader,
    secrets: SecretsReader,
    name: str,
    *,
    declared: Mapping[str, str],
    open_store: StoreOpener | None,
    now: datetime,
) -> Rotation:
    """Where the rotation stands, read without a write; DokiError, before any write, for what stops a rotation.

    `declared`: doki.toml's secret references by variable ("secret:version"), which the next deploy writes."""
    live = run.get(name)
    if live is None:
        error = service_not_found(run.path(name))
        error.hint = "deploy it first (`doki deploy`); a rotation changes a deployed service's keys"
        raise error
    path = run.path(name)
    variable = variable_of(kind, live)
    if variable is None or variable not in live.spec.secrets:
        where = "is a plain variable" if variable is not None else "is not set"
        raise DokiError(
            Code.ROTATION_REFUSED,
            f"{kind.variable} {where} on {path}: a rotation writes the key list to Secret Manager",
            f'declare it under [service.secrets] in doki.toml (`{kind.variable} = "SECRET"`), push it with `doki '
            "secrets push` and deploy (`doki deploy`), then rotate",
        )
    planned = declared.get(variable)
    if planned is not None and planned.rpartition(":")[2] != "latest":
        raise DokiError(
            Code.ROTATION_REFUSED,
            f"doki.toml pins {variable} to {planned}: the next `doki deploy` would bring back that version's keys",
            f'reference it as "{planned.rpartition(":")[0]}:latest" in doki.toml\'s [service.secrets], then rotate',
        )
    _check_serving(live, path, now)
    secret = _secret_of(live, variable)
    readers = tuple(v for v in live.spec.secrets if _secret_of(live, v) == secret)
    legacy = [v for v in readers if v.startswith("LEGACY_")]
    if legacy:
        raise DokiError(
            Code.ROTATION_REFUSED,
            f"{legacy[0]} reads {secret} too: the original backend's rows are read with its keys, and a rotation drops "
            "the old one",
            f"give {legacy[0]} a secret of its own holding today's key (`doki secrets push`) and deploy, then rotate",
        )
    versions = _enabled_versions(kind, secrets, secret)
    latest = versions[0]
    # The newest version before it that holds other keys (a version pushed twice says nothing), and is a key list.
    previous = next((v for v in versions[1:] if v.keys != latest.keys), None)
    stage, new, old = _stage(latest, previous if previous is not None and previous.valid else None)
    # The revision that serves, which is not the newest when that one never became Ready (a deploy that failed).
    revisions = run.revisions(name)
    serving = next((r for r in revisions if r.name == live.latest_ready), None)
    _check_stuck(live, serving, readers, path)
    pinned = (serving.secrets if serving is not None else live.spec.secrets).get(variable, ":")
    served = _served(pinned.rpartition(":")[2], versions, serving, secret, path)
    # What the service holds must stay readable: every key it serves with is in the list it will be deployed with
    # next (the newest), except the old ones a rotation drops once the store is moved.
    keeps = set(latest.keys) | (set(old) if stage == "forgetting" else set())
    if not set(served.keys) <= keeps or (stage == "forgetting" and new not in served.keys):
        raise DokiError(
            Code.ROTATION_REFUSED,
            f"{path} runs with version {served.number} of {secret} ({_listed(served.keys)}), and version "
            f"{latest.number}, the newest, does not hold {'those keys' if len(served.keys) > 1 else 'that key'} "
            f"({_listed(latest.keys)}): deploying it would leave what the service stored unreadable",
            f"if version {latest.number} replaced the key by mistake, disable it (gcloud secrets versions disable "
            f"{latest.number} --secret {secret}); to rotate, push the new key before the old one (NEW,OLD), or let "
            "`doki keys rotate` do it",
        )
    stale = tuple(sorted(v.number for v in versions[1:] if holds_other(v.keys, new))) if new is not None else ()
    rotation = Rotation(
        kind,
        path,
        live.uri,
        variable,
        secret,
        readers,
        latest,
        stage,
        new,
        old,
        current=served.number == latest.number,
        serving_since=serving.created if serving is not None else None,
        stale=stale,
        settle=timedelta(seconds=live.spec.timeout_seconds) if kind.reencrypts else timedelta(0),
    )
    if kind.reencrypts and open_store is not None:
        return _with_store(rotation, open_store)
    return rotation


def _check_serving(live: LiveService, path: str, now: datetime) -> None:
    """Refuse a service whose newest revision does not take all the traffic: the revisions a rotation makes would not
    serve, or would not become Ready either; or one a release holds."""
    from doki_cli.deploy.lock import blocked_by_release
    from doki_cli.deploy.preview import preview_holds_template

    held = preview_holds_template(live, "a rotation's deploy")
    if held is not None:
        raise held
    if not live.traffic_to_latest:
        raise DokiError(
            Code.ROTATION_REFUSED,
            f"traffic to {path} is pinned ({live.traffic_text}): the revisions a rotation makes would serve nothing",
            "finish the rollout first: `doki deploy` (or `doki release`) sends traffic to the newest revision",
        )
    if live.latest_ready is None:
        raise DokiError(
            Code.ROTATION_REFUSED,
            f"no revision of {path} has become Ready: a rotation's revisions, made from the same configuration, would "
            "not either",
            "deploy a revision that serves first (`doki deploy`; `doki logs` says why this one did not), then rotate",
        )
    blocked = blocked_by_release(live, now.timestamp(), "a rotation")
    if blocked is not None:
        raise blocked


def _secret_of(live: LiveService, variable: str) -> str:
    """The secret a variable of the serving container reads: its id, or another project's full name."""
    return live.foreign_secrets.get(variable, live.spec.secrets[variable].rpartition(":")[0])


def _check_stuck(live: LiveService, serving: RevisionInfo | None, readers: Sequence[str], path: str) -> None:
    """A newest revision that never became Ready is what the rotation's deploys would be made from: only a revision
    of a rotation's own (what serves, another version of the key list) is made again; anything else is refused."""
    if live.stuck is None or serving is None:
        return

    def others(secrets: Mapping[str, str]) -> dict[str, str]:
        # As the template reads them (doki_cli.gcp.run.to_live): the secret's id, "latest" when no version is named.
        refs = {name: ref.rpartition(":") for name, ref in secrets.items() if name not in readers}
        return {
            name: f"{secret.rsplit('/', 1)[-1]}:{version or 'latest'}" for name, (secret, _, version) in refs.items()
        }

    ours = serving.image == live.spec.image and others(serving.secrets) == others(live.spec.secrets)
    if not ours:
        raise DokiError(
            Code.ROTATION_REFUSED,
            f"the newest revision of {path}, {live.stuck}, never became Ready, and it is not a rotation's: the "
            "rotation's revisions would be made from its configuration",
            "deploy a revision that becomes Ready first (`doki deploy`; `doki logs` says what went wrong), then rotate",
        )


def _listed(keys: Sequence[str]) -> str:
    return ", ".join(fingerprint(key) for key in keys)


def _served(pinned: str, versions: Sequence[Version], serving: RevisionInfo | None, secret: str, path: str) -> Version:
    """The version the serving revision's instances read: the number doki deploys pin, or, for `latest` (a service
    gcloud deployed), the newest version made before the revision was, which Cloud Run resolved as it started."""
    if pinned.isdigit():
        found = next((v for v in versions if v.number == int(pinned)), None)
    elif pinned == "latest" and serving is not None and serving.created is not None:
        made = serving.created
        found = next((v for v in versions if v.created is not None and v.created <= made), None)
    else:
        found = None
    if found is None:
        raise DokiError(
            Code.ROTATION_REFUSED,
            f"{path} reads {secret} at {pinned}, which is not an enabled version doki can match to the revision that "
            "serves",
            "deploy it with doki (`doki deploy` pins the version it reads), then rotate",
        )
    return found


def _enabled_versions(kind: KeyKind, secrets: SecretsReader, secret: str) -> list[Version]:
    """The secret's enabled versions, newest first, with their keys; DokiError when the newest is not a list of keys
    or is not enabled (then the service cannot start an instance)."""
    listed = secrets.versions(secret)
    if not listed:
        raise DokiError(
            Code.ROTATION_REFUSED,
            f"secret {secret} has no version",
            f"push the key first: `doki secrets push` ({kind.variable} in .env)",
        )
    if listed[0].state != "ENABLED":
        raise DokiError(
            Code.ROTATION_REFUSED,
            f"version {listed[0].number} of {secret}, the newest, is {listed[0].state.lower()}: `latest` names it, so "
            "no instance of the service can start",
            f"enable it (gcloud secrets versions enable {listed[0].number} --secret {secret}) or push the key again "
            "(`doki secrets push`), then rotate",
        )
    versions = []
    for info in listed:
        if info.state != "ENABLED":
            continue
        keys = _keys(secrets.access(secret, str(info.number)))
        problems = [kind.problem(key) for key in keys]
        if info is listed[0] and (not keys or any(problems)):
            index = next((i for i, p in enumerate(problems, start=1) if p), 1)
            raise DokiError(
                Code.ROTATION_REFUSED,
                f"version {info.number} of {secret} does not hold a list of {kind.variable} keys: key #{index} "
                f"{'is empty' if not keys else 'is not one: ' + str(problems[index - 1])}",
                "push a good value (`doki keys generate` makes one; `doki secrets push`) and deploy, then rotate",
            )
        versions.append(Version(info.number, info.created, keys, valid=bool(keys) and not any(problems)))
    return versions


def holds_other(keys: Sequence[str], new: str) -> bool:
    """Whether a version holding `keys` hands out anything but the new key: a dropped key (or an old value)."""
    return any(key != new for key in keys)


def _keys(data: bytes) -> tuple[str, ...]:
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return ()
    return tuple(key.strip() for key in text.split(",") if key.strip())


def _stage(latest: Version, previous: Version | None) -> tuple[Stage, str | None, tuple[str, ...]]:
    """Where a rotation stands from the newest version against the one before it: (stage, new key, old keys).

    "old,new" after "old" is a rotation learning its new key; a longer list otherwise is one adopting its first
    key (also a "new,old" a person pushed); one key after "new,old..." is one forgetting the rest; one key after
    anything else is no rotation at all."""
    keys, before = latest.keys, previous.keys if previous is not None else ()
    if len(keys) == 1:
        if len(before) >= 2 and before[0] == keys[0]:
            return "forgetting", keys[0], before[1:]
        return "idle", None, keys
    if before and before[0] == keys[0] and keys[-1] not in before:
        return "learning", keys[-1], keys[:-1]
    return "adopting", keys[0], keys[1:]


def _with_store(rotation: Rotation, open_store: StoreOpener) -> Rotation:
    """The rotation with the count of what its store holds (so a store doki cannot reach stops it before a write)."""
    from dataclasses import replace

    from doki.storage.base import StoreError

    try:
        with open_store() as (store, where):
            if store is None:
                return replace(rotation, store=where)
            count = sum(1 for _ in store.iter_all())
    except StoreError as exc:
        raise DokiError(
            Code.STORE_UNAVAILABLE,
            f"the service's credential store did not answer: {exc}; nothing was changed",
            "check that the store answers (a paused Supabase project does not), then run the rotation again",
        ) from None
    return replace(rotation, credentials=count, store=where)


def steps(rotation: Rotation, *, now: datetime, skip_grace: bool = False) -> list[Step]:
    """What the rotation still has to do, in order, from where it stands (never nothing: idle starts one)."""
    kind, stage, secret = rotation.kind, rotation.stage, rotation.secret
    verb = "encrypts" if kind.reencrypts else "signs"
    deploy = Step("deploy", "deploy a new revision of the live configuration, which reads the newest version")
    plan: list[Step] = []
    if stage == "forgetting":
        if not rotation.current:
            if kind.reencrypts and rotation.credentials is not None:
                # The service still reads the old key: anything written with it since the last pass moves first.
                plan.append(Step("reencrypt", "re-encrypt what was written with the old key since the last pass"))
            plan.append(deploy)
        listed = ", ".join(map(str, rotation.stale))
        plural = "s" if len(rotation.stale) > 1 else ""
        plan.append(Step("disable", f"disable version{plural} {listed} of {secret}, which hold a dropped key"))
        return plan
    if stage == "idle":
        learn = (
            f"add a version of {secret}: the key in use, then a new one (every instance can read what the new key "
            f"{verb} before anything is written with it)"
        )
        plan += [Step("learn", learn), deploy]
    elif not rotation.current:
        plan.append(deploy)  # the version added last is not what the service runs yet
    if stage in ("idle", "learning"):
        plan += [Step("adopt", f"add a version of {secret}: the new key first, so it {verb} from now on"), deploy]
    plan.append(_wait(rotation, now, skip_grace))
    if kind.reencrypts:
        plan.append(Step("reencrypt", _reencrypt_text(rotation)))
    plan += [Step("forget", f"add a version of {secret}: the new key alone"), deploy]
    plan.append(Step("disable", f"disable the older versions of {secret}, oldest first: they hold the old key"))
    return plan


def grace(rotation: Rotation) -> timedelta:
    """How long after the deploy that makes the new key write the old one is still needed: a session's life, or the
    longest a request still running on the revision before may take (and write with the old key)."""
    return rotation.kind.grace if not rotation.kind.reencrypts else rotation.settle


def _wait(rotation: Rotation, now: datetime, skip_grace: bool) -> Step:
    what = (
        "every session signed with the old secret has expired"
        if not rotation.kind.reencrypts
        else "no request that began before it is still running (the service's request timeout, "
        f"{duration_text(grace(rotation).total_seconds())})"
    )
    if skip_grace:
        return Step("wait", "drop the old secret without waiting (--now): the sessions it signed end")
    if rotation.stage == "adopting" and rotation.current and rotation.serving_since is not None:
        until = rotation.serving_since + grace(rotation)
        if until <= now:
            return Step("wait", f"since that deploy, {what}")
        return Step("wait", f"wait until {clock_text(until)}, when {what}")
    return Step("wait", f"wait after that deploy until {what}")


def _reencrypt_text(rotation: Rotation) -> str:
    if rotation.credentials is None:
        return f"re-encrypt the stored credentials: nothing doki can reach ({rotation.store})"
    return f"re-encrypt the {rotation.credentials} stored credentials under the new key ({rotation.store})"


def clock_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def notice(kind: KeyKind, *, now: bool = False) -> str:
    """What the service's users notice of a rotation."""
    if kind.reencrypts:
        return (
            "users notice nothing: every credential stays readable at each step; each deploy starts new instances "
            "(a cold start or two)"
        )
    if now:
        return (
            "with --now, whoever began a Google sign-in in the last 15 minutes gets oauth_session_missing and starts "
            "again (a connect from a signed-in account waits for their confirmation instead); nobody is signed out"
        )
    return (
        "users notice nothing: sessions (a Google sign-in in progress) signed with the old secret stay valid until "
        "they expire, 15 minutes, before it is dropped; nobody is signed out, as sign-in is Supabase's token"
    )


@dataclass
class Outcome:
    """What a run did: the steps done, the re-encryption's counts, and, when it stopped to wait, until when."""

    done: list[str] = field(default_factory=list)
    reencrypted: list[Reencryption] = field(default_factory=list)
    resume_after: datetime | None = None
    versions: list[int] = field(default_factory=list)  # added
    disabled: list[int] = field(default_factory=list)
    revisions: list[str] = field(default_factory=list)  # made
    new_key: str = ""  # the fingerprint of the key brought in

    @property
    def complete(self) -> bool:
        return self.resume_after is None


class Rotator:
    """Makes the writes of `steps`, in order: the secret's versions, deploys of the live configuration (each
    health-checked at the service's URL), the waits, the store's re-encryption and the old versions disabled."""

    def __init__(
        self,
        run: RunWriter,
        secrets: SecretsWriter,
        *,
        open_store: StoreOpener | None,
        health: Callable[[str], None],
        on_progress: Callable[[str], None],
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._run = run
        self._secrets = secrets
        self._open_store = open_store
        self._health = health
        self._progress = on_progress
        self._clock = clock
        self._sleep = sleep
        self._timeout = timeout
        self.outcome = Outcome()

    def execute(self, rotation: Rotation, plan: Sequence[Step], *, skip_grace: bool = False) -> Outcome:
        """Make the plan's writes in order; what was done is `outcome` as it goes (what an interrupt had done)."""
        self.outcome = outcome = Outcome()
        new = rotation.new or rotation.kind.new_key()
        outcome.new_key = fingerprint(new)
        old = rotation.old
        serving_since = rotation.serving_since if rotation.current else None
        version = rotation.latest.number  # what a deploy points the service at: the newest version
        name = rotation.service.rsplit("/", 1)[-1]
        for step in plan:
            self._progress(step.text)
            if step.action in ("learn", "adopt", "forget"):
                keys = {"learn": (*old, new), "adopt": (new, *old), "forget": (new,)}[step.action]
                number = version = self._secrets.add_version(rotation.secret, ",".join(keys).encode())
                outcome.versions.append(number)
                outcome.done.append(f"added version {number} of {rotation.secret}: {_shown_keys(keys, new)}")
            elif step.action == "deploy":
                live = self._deploy(name, rotation, version)
                serving_since = self._now()
                outcome.revisions.append(live.latest_ready or "")
                outcome.done.append(f"deployed {live.latest_ready}")
            elif step.action == "reencrypt":
                report = self._reencrypt((new, *old))
                if report is not None:
                    outcome.reencrypted.append(report)
                    outcome.done.append(_report_text(report))
            elif step.action == "wait" and not skip_grace:
                until = (serving_since or self._now()) + grace(rotation)
                left = (until - self._now()).total_seconds()
                if left > INLINE_WAIT.total_seconds():
                    outcome.resume_after = until
                    return outcome
                if left > 0:
                    doing = WAITING + step.text.removeprefix("wait ")
                    sleep_in_sight(left, doing=doing, sleep=self._sleep, on_progress=self._progress)
            elif step.action == "disable":
                # Read now: the versions this run added are among them. Oldest first, so a run stopped part-way
                # still finds the version before the newest enabled, and reads the rotation as forgetting.
                stale = self._stale(rotation, new)
                for number in stale:
                    self._secrets.disable(rotation.secret, number)
                    outcome.disabled.append(number)
                if stale:
                    outcome.done.append(f"disabled versions {', '.join(map(str, stale))} of {rotation.secret}")
        return outcome

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def _deploy(self, name: str, rotation: Rotation, version: int) -> LiveService:
        """A revision of the live configuration whose readers of the key list read `version`, health-checked once it
        serves."""

        def decide(live: LiveService) -> Edit:
            # Checked again on the service as written: a rollback or a release may have pinned traffic meanwhile.
            if not live.traffic_to_latest:
                raise DokiError(
                    Code.ROTATION_REFUSED,
                    f"traffic to {name} was pinned meanwhile ({live.traffic_text}): the new revision would serve "
                    "nothing; the rotation stopped with every key still readable",
                    "finish the rollout (`doki deploy`)",
                )
            # Another run, or a `doki secrets push`, may have added a version since this one read the secret.
            newest = max(info.number for info in self._secrets.versions(rotation.secret))
            if newest != version:
                raise DokiError(
                    Code.ROTATION_REFUSED,
                    f"version {newest} of {rotation.secret} was added meanwhile, by another rotation or a push: this "
                    f"one, which would deploy version {version}, stopped with every key still readable",
                    "let the other finish; `doki keys rotate --dry-run` then says where things stand",
                )
            # A revision that never became Ready may read this version already: its template, unchanged, would
            # make no new revision.
            versions = {reader: str(version) for reader in rotation.readers}
            return Edit(secret_versions=versions, new_revision=live.stuck is not None)

        live = self._run.update(name, decide, on_progress=self._progress, timeout=self._timeout)
        self._health(live.uri)
        return live

    def _reencrypt(self, keys: tuple[str, ...]) -> Reencryption | None:
        from doki.crypto import CredentialCipher, reencrypt_store
        from doki.storage.base import StoreError

        if self._open_store is None:
            return None
        with self._open_store() as (store, _):
            if store is None:
                return None
            seen = [0]

            def tell(report: Reencryption) -> None:
                seen[0] = report.seen
                if report.seen % 100 == 0:
                    self._progress(f"re-encrypted {report.moved} of {report.seen} credentials read so far")

            try:
                return reencrypt_store(store, CredentialCipher.from_keys(keys), on_row=tell)
            except StoreError as exc:
                raise DokiError(
                    Code.REENCRYPTION_INTERRUPTED,
                    f"the re-encryption stopped after {seen[0]} credentials: {exc}; every credential is still "
                    "readable (each is under the new key or an old one, and the service reads both)",
                    "check that the store answers (a paused Supabase project does not)",
                ) from None

    def _stale(self, rotation: Rotation, new: str) -> list[int]:
        """The enabled versions other than the newest that hold anything but the new key, oldest first."""
        listed = self._secrets.versions(rotation.secret)[1:]
        enabled = sorted(info.number for info in listed if info.state == "ENABLED")
        return [n for n in enabled if holds_other(_keys(self._secrets.access(rotation.secret, str(n))), new)]


def _shown_keys(keys: Sequence[str], new: str) -> str:
    return ", ".join(f"{fingerprint(k)}{' (new)' if k == new else ''}" for k in keys)


def _report_text(report: Reencryption) -> str:
    text = f"re-encrypted {report.moved} credentials; {report.current} were under the new key already"
    if report.unreadable:
        text += f"; {len(report.unreadable)} no key decrypts were left as they were (unusable already)"
    if report.changing:
        text += f"; {len(report.changing)} kept changing under the pass"
    return text


def unreadable_rows(reports: Sequence[Reencryption]) -> Iterator[tuple[str, str]]:
    seen: set[tuple[str, str]] = set()
    for report in reports:
        for row in report.unreadable:
            if row not in seen:
                seen.add(row)
                yield row


@contextmanager
def service_store(run: RunReader, secrets: SecretsReader, name: str) -> Iterator[tuple[CredentialStore | None, str]]:
    """The credential store the live service `name` is configured with, opened by the backend's own code on the
    service's own settings (its variables, its secrets' values read from Secret Manager): (None, why) when doki
    cannot reach it. DokiError when the settings do not load, or when dropping a key would strand the original
    backend's rows (LEGACY_CREDENTIALS_TABLE read with ENCRYPTION_KEY's keys)."""
    from doki.settings import ConfigError, declared_settings
    from doki.storage import build_store
    from doki_cli import devcloud

    cloud = devcloud.read(run, secrets, name)
    try:
        settings = declared_settings(cloud.values)
    except ConfigError as exc:
        raise DokiError(
            Code.ROTATION_REFUSED,
            f"the settings of {cloud.service} do not load: {'; '.join(exc.problems)}",
            "fix the service's configuration (`doki deploy` checks it), then rotate",
        ) from None
    if settings.legacy_credentials_table and settings.legacy_encryption_key is None:
        raise DokiError(
            Code.ROTATION_REFUSED,
            f"{cloud.service} reads the original backend's rows ({settings.legacy_credentials_table}) with "
            "ENCRYPTION_KEY's keys: once the old key is dropped, the connections not carried over yet could not be "
            "read",
            "set LEGACY_ENCRYPTION_KEY to the key in use today (a secret of its own in [service.secrets]) and deploy, "
            "or carry every connection over first (the backend's doki.migrate), then rotate",
        )
    if settings.store_kind == "sqlite":
        yield None, "the service keeps credentials in SQLite on each instance's own disk, which starts empty"
        return
    store = build_store(settings)
    try:
        yield store, f"Supabase table {settings.credentials_table} at {settings.supabase_url}"
    finally:
        store.close()


def describe(rotation: Rotation) -> str:
    """Where the rotation stands, in a line: the secret, its newest version and what that holds."""
    latest, keys = rotation.latest, rotation.latest.keys
    held = f"{len(keys)} key{'s' if len(keys) > 1 else ''}: {_listed(keys)}"
    verb = "encrypts" if rotation.kind.reencrypts else "signs"
    to = f"a rotation to key {fingerprint(rotation.new or '')} in progress"
    stage = {
        "idle": "no rotation in progress: this starts one",
        "learning": f"{to} (every instance reads the new key; the old one {verb})",
        "adopting": f"{to} (the new key {verb}; the old one is still read)",
        "forgetting": f"{to} (the old key is being dropped)",
    }[rotation.stage]
    deployed = "" if rotation.current else "; not deployed yet"
    return f"secret {rotation.secret}, version {latest.number} ({held}){deployed}; {stage}"


def plan_data(rotation: Rotation, plan: Sequence[Step]) -> dict[str, object]:
    """The plan as --json gives it: keys by fingerprint only."""
    return {
        "service": rotation.service,
        "key": rotation.kind.variable,
        "variable": rotation.variable,
        "secret": rotation.secret,
        "version": rotation.latest.number,
        "keys": [fingerprint(k) for k in rotation.latest.keys],
        "stage": rotation.stage,
        "new_key": fingerprint(rotation.new) if rotation.new else None,
        "deployed": rotation.current,
        "credentials": rotation.credentials,
        "steps": [{"action": step.action, "text": step.text} for step in plan],
    }


def outcome_data(outcome: Outcome) -> dict[str, object]:
    moved = sum(r.moved for r in outcome.reencrypted)
    return {
        "done": outcome.done,
        "versions_added": outcome.versions,
        "versions_disabled": outcome.disabled,
        "revisions": outcome.revisions,
        "reencrypted": moved,
        "unreadable": [{"user": user, "provider": provider} for user, provider in unreadable_rows(outcome.reencrypted)],
        "complete": outcome.complete,
        "resume_after": outcome.resume_after.isoformat(timespec="seconds") if outcome.resume_after else None,
    }
