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

from .events import token_ref


@dataclass(frozen=True)
class Appended:
    event_ids: list[bytes]
    accepted: list[bool]
    consistency_token: str

    @property
    def ids(self) -> list[str]:
        """The event ids as Baton prints them (`ev:` and 64 hex digits)."""
        return ["ev:" + event_id.hex() for event_id in self.event_ids]


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


class Client:
    """Typed calls on one channel. `target` is `http://host:port`,
    `https://host:port` (TLS: the node's certificate chains to `ca`, or to
    the system's roots without one) or a gRPC target (`host:port`,
    `unix:PATH`: TLS when `ca` is given); `cert` and `key` (PEM files) make
    it mTLS."""

    def __init__(self, target: str, ca: str | None = None, cert: str | None = None, key: str | None = None):
        target, tls = _target(target, ca)
        if tls:
            read = lambda path: pathlib.Path(path).read_bytes() if path else None  # noqa: E731
            credentials = grpc.ssl_channel_credentials(read(ca), read(key), read(cert))
            self.channel = grpc.aio.secure_channel(target, credentials)
        elif cert or key:
            raise ValueError("cert/key need TLS (https:// or a ca): a client certificate goes over TLS only")
        else:
            self.channel = grpc.aio.insecure_channel(target)
        self.ledger = ledger_pb2_grpc.LedgerServiceStub(self.channel)
        self.revocation = revocation_pb2_grpc.RevocationServiceStub(self.channel)
        self.provenance = provenance_pb2_grpc.ProvenanceServiceStub(self.channel)

    async def close(self) -> None:
        await self.channel.close()

    async def append(self, events: Sequence[events_pb2.SignedEvent], after: str = "", timeout: float = 30) -> Appended:
        """Appends `events` as one batch (all or nothing). A call that fails
        with an unknown outcome may be retried: appends are idempotent."""
        response = await self.ledger.Append(
            ledger_pb2.AppendRequest(events=list(events), consistency_token=after), timeout=timeout
        )
        return Appended(
            [r.event_id for r in response.results],
            [r.outcome == ledger_pb2.APPEND_OUTCOME_ACCEPTED for r in response.results],
            response.consistency_token,
        )

    async def check(self, token, presented_to: str = "", after: str = "", timeout: float = 10) -> revocation_pb2.CheckResponse:
        request = revocation_pb2.CheckRequest(presented_to=presented_to, consistency_token=after)
        request.token.CopyFrom(token_ref(token))
        return await self.revocation.Check(request, timeout=timeout)

    async def chain(self, token, after: str = "", timeout: float = 10) -> provenance_pb2.GetChainResponse:
        request = provenance_pb2.GetChainRequest(consistency_token=after)
        request.token.CopyFrom(token_ref(token))
        return await self.provenance.GetChain(request, timeout=timeout)
