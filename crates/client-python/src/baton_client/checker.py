"""A local cache of token answers kept current by Watch — the same design
and rules as the Rust SDK's `Checker` (crates/client/src/checker.rs):

- an ACTIVE answer is kept with the revocation targets the node says it
  depends on (`depends_on`); a Watch message naming one evicts it. Targets
  are compared parsed (`targets.parse`), never as bytes; an answer that
  depends on a target the cache cannot read is not kept, and a revocation
  it cannot read clears the cache;
- REVOKED and EXPIRED never change and stay until the LRU drops them;
  UNKNOWN is never kept;
- expiry and the audience a token is presented to are judged locally;
- a miss asks the node for an answer at least as recent as the feed's
  position, and an answer that a revocation delivered meanwhile may concern
  is asked again;
- with no checkpoint for `staleness_s`, every answer is UNKNOWN (source
  "stale"): the caller denies;
- with `max_view_age_s`, every answer is also held to the age of the node's
  view of the log: the latest checkpoint's `view_age_ms` plus the time since
  it arrived (cached answers), or the answer's plus the time since it was
  asked (a miss); no wall clock is compared;
- freshness and expiry read `clock` (`SystemClock()` unless a test injects
  a `ManualClock`).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import grpc

from baton.v1 import revocation_pb2

from . import consistency, targets
from .client import Client
from .events import Token, token_ref, token_text
from .ids import event_id_text
from .kinds import TokenStatus as TokenStatus  # its home before `kinds`
from .signing import token_digest
from .targets import Target

log = logging.getLogger("baton_client.checker")

ACTIVE = TokenStatus.ACTIVE
REVOKED = TokenStatus.REVOKED
EXPIRED = TokenStatus.EXPIRED
UNKNOWN = TokenStatus.UNKNOWN
AUDIENCE_MISMATCH = TokenStatus.AUDIENCE_MISMATCH

STATUS_NAMES = {status: status.name for status in TokenStatus}

RECENT_MAX = 4096
ATTEMPTS = 3


class Clock(Protocol):
    """What a `Checker` reads time from: `monotonic()` for freshness,
    `time()` (Unix seconds) for expiry."""

    def monotonic(self) -> float: ...

    def time(self) -> float: ...


class SystemClock:
    """The process's clocks: `monotonic()` for freshness, `time()` (Unix
    seconds) for expiry."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told (for tests): both readings start
    at the process's and advance together."""

    def __init__(self) -> None:
        self._monotonic, self._time, self._advanced = time.monotonic(), time.time(), 0.0

    def advance(self, seconds: float) -> None:
        self._advanced += seconds

    def monotonic(self) -> float:
        return self._monotonic + self._advanced

    def time(self) -> float:
        return self._time + self._advanced


@dataclass(frozen=True)
class TokenInfo:
    """A token the node knows, as a `Checker` keeps it."""

    token: str
    """The token as Baton prints it (`jti:…` or `b3:…`); never a bearer."""
    expires_at_s: int
    """When it expires (Unix seconds)."""
    audience: str
    """The resource it is bound to."""
    event_id: str | None
    """The event that recorded it, as Baton prints it (`ev:` and 64 hex
    digits); None if the node did not say."""
    details: revocation_pb2.TokenDetails | None
    """Its scopes, tools, holder, subject, issuer and chain (the node's
    `TokenDetails`), when the node sent them."""

    @property
    def id(self) -> str | None:
        """`event_id` (its earlier name)."""
        return self.event_id


@dataclass(frozen=True)
class Answer:
    """A `Checker`'s answer: the status, where it came from, and the token
    when the node knows it."""

    status: TokenStatus
    """The token's status as presented (a wire number given is read as
    one)."""
    source: str
    """"cache", "node", "stale" (UNKNOWN: the feed is stale) or
    "unavailable" (UNKNOWN: the node did not answer)."""
    token: TokenInfo | None = None
    """The token, when the node knows it."""

    def __post_init__(self) -> None:
        # Answers built from wire values carry a `TokenStatus` all the same.
        object.__setattr__(self, "status", TokenStatus.of(self.status))

    @property
    def allows(self) -> bool:
        """Whether the token may be used: ACTIVE, and nothing else."""
        return self.status == ACTIVE


@dataclass
class _Entry:
    status: TokenStatus
    info: TokenInfo | None
    depends_on: list[Target] = field(default_factory=list)


def expired(expires_at_s: int, now_s: int) -> bool:
    return expires_at_s <= now_s


def presented_elsewhere(audience: str, presented_to: str | None) -> bool:
    return presented_to is not None and presented_to != audience


def _judge(entry: _Entry, presented_to: str | None, now_s: int) -> TokenStatus:
    if entry.status != ACTIVE:
        return entry.status
    if entry.info is None:  # never kept so (`_entry_of`): fail closed
        return UNKNOWN
    if expired(entry.info.expires_at_s, now_s):
        return EXPIRED
    if presented_elsewhere(entry.info.audience, presented_to):
        return AUDIENCE_MISMATCH
    return ACTIVE


def _revoked_target(message: revocation_pb2.WatchResponse) -> Target:
    """What a Watch message about a revocation revokes; `ValueError` when
    this cache cannot read it (no `revoked`, or a target `targets.parse`
    refuses)."""
    if not message.HasField("revoked"):
        raise ValueError("revoked: a revocation message without its revocation")
    return targets.parse(message.revoked)


def _covering(token: str) -> str:
    """`token` as the consistency token to ask misses at, or one covering
    nothing when the node sent one this SDK cannot read (as the Rust SDK's
    `parse(..).unwrap_or_default()`): a later message's position or resume
    token moves it on."""
    try:
        return consistency.format(consistency.parse(token))
    except ValueError as error:
        log.warning("the node's position is no consistency token: %s", error)
        return consistency.format([])


class Checker:
    """Use `await Checker(client).start()`; `await checker.close()` stops the
    feed. The client must be a checker not bound to audiences."""

    def __init__(
        self,
        client: Client,
        capacity: int = 10_000,
        staleness_s: float = 2.0,
        checkpoint_interval_ms: int = 250,
        request_timeout_s: float = 2.0,
        max_view_age_s: float | None = None,
        clock: Clock | None = None,
    ) -> None:
        if not 100 <= checkpoint_interval_ms <= 60_000:
            raise ValueError(f"checkpoint_interval_ms: {checkpoint_interval_ms} is not in 100..=60000")
        if staleness_s * 1000 < 2 * checkpoint_interval_ms:
            raise ValueError(f"staleness_s: {staleness_s} is less than twice the checkpoint interval")
        if max_view_age_s is not None and max_view_age_s * 1000 < 2 * checkpoint_interval_ms:
            raise ValueError(f"max_view_age_s: {max_view_age_s} is less than twice the checkpoint interval")
        if capacity < 1:
            raise ValueError("capacity: must be at least 1")
        self.client = client
        self.capacity = capacity
        self.staleness_s = staleness_s
        self.checkpoint_interval_ms = checkpoint_interval_ms
        self.request_timeout_s = request_timeout_s
        self.max_view_age_s = max_view_age_s
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._entries: collections.OrderedDict[str, _Entry] = collections.OrderedDict()
        self._index: dict[Target, set[str]] = {}
        self._recent: collections.deque[tuple[int, Target]] = collections.deque()
        self._sequence = 0
        self._fresh_at: float | None = None
        # When the latest checkpoint's view was confirmed: its arrival less
        # its view age (None: it did not say).
        self._view_at: float | None = None
        # The feed's position: the resume token, as the node sent it.
        self.position = ""
        # A consistency token covering every delivered revocation's record:
        # what a miss is asked at.
        self._covered = consistency.format([])
        self.stats: collections.Counter[str] = collections.Counter()
        self._delivered = asyncio.Condition()
        self._feed: asyncio.Task[None] | None = None

    async def start(self) -> Checker:
        probe = await self.client.check("jti:baton-checker-position", timeout=self.request_timeout_s)
        self.position = probe.consistency_token
        self._covered = _covering(self.position)
        self._feed = asyncio.create_task(self._run_feed())
        try:
            await asyncio.wait_for(self.wait_for(self.is_fresh), self.staleness_s)
        except TimeoutError:
            await self.close()
            raise TimeoutError(f"no Watch checkpoint within {self.staleness_s} s") from None
        return self

    async def close(self) -> None:
        if self._feed is not None:
            self._feed.cancel()
            try:
                await self._feed
            except (asyncio.CancelledError, Exception):
                pass
            self._feed = None

    def is_fresh(self) -> bool:
        now = self.clock.monotonic()
        if self._fresh_at is None or now - self._fresh_at > self.staleness_s:
            return False
        return self.max_view_age_s is None or (
            self._view_at is not None and now - self._view_at <= self.max_view_age_s
        )

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Waits until `predicate()` holds, re-tested on each delivered
        message."""
        async with self._delivered:
            await self._delivered.wait_for(predicate)

    # The cache.

    def _unindex(self, key: str, entry: _Entry) -> None:
        for target in entry.depends_on:
            keys = self._index.get(target)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._index[target]

    def _insert(self, key: str, entry: _Entry) -> None:
        current = self._entries.get(key)
        if current is not None and current.status != ACTIVE and entry.status == ACTIVE:
            # A settled answer (REVOKED, EXPIRED) never goes back: an older
            # ACTIVE that raced it in loses.
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        for target in entry.depends_on:
            self._index.setdefault(target, set()).add(key)
        self._entries[key] = entry
        while len(self._entries) > self.capacity:
            evicted_key, evicted = self._entries.popitem(last=False)
            self._unindex(evicted_key, evicted)

    def _revoked(self, target: Target) -> None:
        self._sequence += 1
        self.stats["revocations"] += 1
        for key in self._index.pop(target, set()):
            entry = self._entries.pop(key, None)
            if entry is not None:
                self._unindex(key, entry)
                self.stats["invalidations"] += 1
        self._recent.append((self._sequence, target))
        while len(self._recent) > RECENT_MAX:
            self._recent.popleft()

    def _revoked_since(self, since: int, depends_on: list[Target]) -> bool:
        if since == self._sequence:
            return False
        if not self._recent or self._recent[0][0] > since + 1:
            return True
        wanted = set(depends_on)
        return any(seq > since and target in wanted for seq, target in self._recent)

    def cached(self, key: str, presented_to: str | None = None) -> Answer | None:
        """The cached answer for a token's text reference (no network):
        UNKNOWN when the feed is stale, None on a miss."""
        if not self.is_fresh():
            return Answer(UNKNOWN, "stale")
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        self.stats["hits"] += 1
        return Answer(_judge(entry, presented_to, int(self.clock.time())), "cache", entry.info)

    async def check(self, token: Token, presented_to: str | None = None) -> Answer:
        """The token's status presented to `presented_to` (this server's
        resource URI): from the cache, else from the node (and cached)."""
        ref = token_ref(token)
        key = token_text(ref)
        answer = self.cached(key, presented_to)
        if answer is not None:
            return answer
        request = revocation_pb2.IntrospectRequest(with_dependencies=True)
        request.token.CopyFrom(ref)
        return await self._fetch(key, request, presented_to)

    async def check_bearer(self, bearer: bytes, presented_to: str | None = None) -> Answer:
        """`check` of a bearer token as presented: cached by its digest (the
        token itself is never kept)."""
        key = token_text(token_ref(token_digest(bearer)))
        answer = self.cached(key, presented_to)
        if answer is not None:
            return answer
        return await self._fetch(key, revocation_pb2.IntrospectRequest(bearer=bearer, with_dependencies=True), presented_to)

    async def _fetch(self, key: str, request: revocation_pb2.IntrospectRequest, presented_to: str | None) -> Answer:
        for _ in range(ATTEMPTS):
            if not self.is_fresh():
                return Answer(UNKNOWN, "stale")
            self.stats["misses"] += 1
            # Everything delivered so far: past the resume token, which
            # stays on a batch record until its last revocation is sent.
            request.consistency_token = self._covered
            since = self._sequence
            asked = self.clock.monotonic()
            try:
                response = await self.client.revocation.Introspect(request, timeout=self.request_timeout_s)
            except grpc.aio.AioRpcError as error:
                log.debug("check: the node refused: %s %s", error.code(), error.details())
                return Answer(UNKNOWN, "unavailable")
            # Its view's age now is at most its age when the node answered
            # plus the time since it was asked.
            if self.max_view_age_s is not None and (
                not response.check.HasField("view_age_ms")
                or response.check.view_age_ms / 1000 + (self.clock.monotonic() - asked) > self.max_view_age_s
            ):
                return Answer(UNKNOWN, "stale")
            entry = _entry_of(key, response)
            if entry is None:
                return Answer(UNKNOWN, "node")
            if entry.status == ACTIVE and self._revoked_since(since, entry.depends_on):
                continue  # Asked again: the feed's position now covers it.
            status = _judge(entry, presented_to, int(self.clock.time()))
            if entry.status != UNKNOWN:
                self._insert(key, entry)
            return Answer(status, "node", entry.info)
        return Answer(UNKNOWN, "unavailable")

    # The feed.

    def _clear(self) -> None:
        """Drops every entry: a revocation this cache cannot read could
        revoke any of them."""
        self._entries.clear()
        self._index.clear()
        self._recent.clear()
        self._sequence += 1

    async def _deliver(self, message: revocation_pb2.WatchResponse) -> None:
        covered = self._covered
        if message.HasField("position"):
            # A position no token can name (a partition past 4096, an offset
            # at the u64 bound): a broken node. The cache is cleared and the
            # error reopens the feed from the last position; while that
            # repeats, the feed goes stale (fail closed), as in the Rust SDK.
            try:
                covered = consistency.include(covered, message.position.partition, message.position.offset)
            except ValueError:
                self._clear()
                raise
        if message.HasField("revoked") or message.revocation_event_id:
            try:
                target = _revoked_target(message)
            except ValueError as error:
                log.warning("an unreadable revocation on the feed (%s): cache cleared", error)
                self._clear()
            else:
                self._revoked(target)
        self._covered = covered
        if message.resume_token:
            self.position = message.resume_token
            try:
                self._covered = consistency.merge(self._covered, message.resume_token)
            except ValueError as error:
                # As the Rust SDK: kept as the position to resume from (the
                # node reads its own tokens), not counted as covered.
                log.warning("a resume token this SDK cannot read: %s", error)
        if message.HasField("checkpoint"):
            now = self.clock.monotonic()
            self._fresh_at = now
            checkpoint = message.checkpoint
            self._view_at = now - checkpoint.view_age_ms / 1000 if checkpoint.HasField("view_age_ms") else None
            self.stats["checkpoints"] += 1
        async with self._delivered:
            self._delivered.notify_all()

    async def _run_feed(self) -> None:
        backoff = 0.05
        while True:
            request = revocation_pb2.WatchRequest(
                resume_token=self.position, checkpoint_interval_ms=self.checkpoint_interval_ms
            )
            call = self.client.revocation.Watch(request)
            try:
                while True:
                    message = await asyncio.wait_for(call.read(), self.staleness_s)
                    if message is grpc.aio.EOF:
                        break
                    await self._deliver(message)
                    # Only a message taken in resets the backoff: one that
                    # cannot be taken is sent again on every reopening.
                    backoff = 0.05
            except TimeoutError:
                log.debug("watch silent past the staleness bound: reopening")
            except grpc.aio.AioRpcError as error:
                log.debug("watch ended: %s %s", error.code(), error.details())
            except asyncio.CancelledError:
                raise
            except ValueError as error:
                log.warning("a Watch message no cache can take (%s): cache cleared, reopening", error)
            except Exception:  # never let the feed die: reopen it
                log.exception("the watch feed failed; reopening")
            finally:
                call.cancel()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 1.0)


def _entry_of(key: str, response: revocation_pb2.IntrospectResponse) -> _Entry | None:
    check = response.check
    status = TokenStatus.of(check.status)
    info = None
    if check.expires_at_unix_s:
        info = TokenInfo(
            token=key,
            expires_at_s=check.expires_at_unix_s,
            audience=check.audience,
            event_id=event_id_text(check.event_id) if check.event_id else None,
            details=response.details if response.HasField("details") else None,
        )
    if status == ACTIVE:
        try:
            depends_on = [targets.parse(t) for t in check.depends_on]
        except ValueError as error:
            # An active answer depending on a target this cache cannot read
            # could not be evicted when that target is revoked: not kept,
            # not trusted (the Rust SDK's `.collect::<Result<..>>().ok()?`).
            log.warning("an answer depending on an unreadable target: %s", error)
            return None
        # An active answer with nothing to watch could never be
        # invalidated: not kept, not trusted.
        if not depends_on or info is None:
            return None
        return _Entry(ACTIVE, info, depends_on)
    if status in (REVOKED, EXPIRED):
        return _Entry(status, info)
    return _Entry(UNKNOWN, None)
