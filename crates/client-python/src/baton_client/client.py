"""A client of a Baton node (grpc.aio): plaintext, TLS or mTLS."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass
from typing import Sequence

import grpc

from baton.v1 import (
    events_pb2,
    ledger_pb2,
    ledger_pb2_grpc,
    provenance_pb2,
    provenance_pb2_grpc,
    revocation_pb2,
    revocation_pb2_grpc,
)

from .answers import Chain, CheckAnswer
from .events import Token, token_ref
from .ids import event_id_bytes, event_id_text
from .kinds import AppendOutcome


@dataclass(frozen=True)
class Appended:
    """What an append did: per event of the batch, in order, its id and
    outcome; and a consistency token covering the whole batch."""

    ids: list[str]
    """The events' ids, as Baton prints them (`ev:` and 64 hex digits)."""
    outcomes: list[AppendOutcome]
    """ACCEPTED (appended by this call) or DUPLICATE (already there)."""
    consistency_token: str
    """Covers the whole batch: pass it as `after=` to a later call, on any
    node."""

    @property
    def accepted(self) -> list[bool]:
        """Per event: whether this call appended it."""
        return [outcome is AppendOutcome.ACCEPTED for outcome in self.outcomes]

    @property
    def event_ids(self) -> list[bytes]:
        """The events' ids as 32 bytes each."""
        return [event_id_bytes(i) for i in self.ids]


def _target(server: str, ca: str | None) -> tuple[str, bool]:
    """The gRPC target and whether to use TLS: from `http://host:port` or
    `https://host:port` (what every other Baton tool takes), or any gRPC
    target as grpcio reads it (`host:port`, `unix:PATH`, `dns:///host:port`:
    TLS when a CA is given)."""
    if server.startswith("http://"):
        if ca:
            raise ValueError(f"server: {server} is http:// but a CA was given: use https://")
        return server.removeprefix("http://").rstrip("/"), False
    if server.startswith("https://"):
        return server.removeprefix("https://").rstrip("/"), True
    return server, bool(ca)


def _read(path: str | None) -> bytes | None:
    return pathlib.Path(path).read_bytes() if path else None


class Client:
    """Typed calls on one channel. `target` is `http://host:port`,
    `https://host:port` (TLS: the node's certificate chains to `ca`, or to
    the system's roots without one) or a gRPC target (`host:port`,
    `unix:PATH`: TLS when `ca` is given); `cert` and `key` (PEM files) make
    it mTLS."""

    def __init__(self, target: str, ca: str | None = None, cert: str | None = None, key: str | None = None) -> None:
        target, tls = _target(target, ca)
        if tls:
            credentials = grpc.ssl_channel_credentials(_read(ca), _read(key), _read(cert))
            self.channel = grpc.aio.secure_channel(target, credentials)
        elif cert or key:
            raise ValueError("cert/key need TLS (https:// or a ca): a client certificate goes over TLS only")
        else:
            self.channel = grpc.aio.insecure_channel(target)
        # The generated stubs, for calls this class does not wrap.
        self.ledger = ledger_pb2_grpc.LedgerServiceStub(self.channel)
        self.revocation = revocation_pb2_grpc.RevocationServiceStub(self.channel)
        self.provenance = provenance_pb2_grpc.ProvenanceServiceStub(self.channel)

    async def close(self) -> None:
        """Closes the channel (calls in flight are cancelled)."""
        await self.channel.close()

    async def append(self, events: Sequence[events_pb2.SignedEvent], after: str = "", timeout: float = 30) -> Appended:
        """Appends `events` as one batch (all or nothing), once the node has
        applied `after` (a consistency token). A call that fails with an
        unknown outcome may be retried: appends are idempotent."""
        response = await self.ledger.Append(
            ledger_pb2.AppendRequest(events=list(events), consistency_token=after), timeout=timeout
        )
        return Appended(
            [event_id_text(r.event_id) for r in response.results],
            [AppendOutcome.of(r.outcome) for r in response.results],
            response.consistency_token,
        )

    async def check(self, token: Token, presented_to: str = "", after: str = "", timeout: float = 10) -> CheckAnswer:
        """The status of `token` (`jti:…`, `b3:…`, a 32-byte digest) as
        presented to `presented_to` (a resource URI; empty: anywhere), once
        the node has applied `after`."""
        request = revocation_pb2.CheckRequest(presented_to=presented_to, consistency_token=after)
        request.token.CopyFrom(token_ref(token))
        return CheckAnswer.of(await self.revocation.Check(request, timeout=timeout))

    async def chain(self, token: Token, after: str = "", timeout: float = 10) -> Chain:
        """The chain of `token`, root grant to it, with what verifies it and
        its status, once the node has applied `after`."""
        request = provenance_pb2.GetChainRequest(consistency_token=after)
        request.token.CopyFrom(token_ref(token))
        return Chain.of(await self.provenance.GetChain(request, timeout=timeout))
