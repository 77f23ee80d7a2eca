"""The MCP authorization decision for a request to one resource, as the
node's gateway bridges and the Rust SDK's `BatonLayer` make it (ported from
crates/bridge: `Headers`, `Presented::read` and `tool_name` in request.rs;
`admit_to`, `conclude`, `challenge` and `quotable` in lib.rs), so a Python
MCP server behind `baton_client.asgi.BatonMiddleware` refuses what they
refuse. `proto/testvectors/sdk/gateway.json` is the specification both SDKs
run.

Pure functions: `admit` reads a request before its token is looked up (the
bearer token, or the denial), `conclude` judges the node's answer. Every
header decided on must arrive once, as visible ASCII with no white space
around it and, where its grammar has no comma, without one: a repeated
header is one the server may read in another copy. Denials are the MCP
authorization spec's: 401 `invalid_token` (no error code without a token),
403 `insufficient_scope` naming the scope or tool, 400 `invalid_request`.
"""

from __future__ import annotations

import base64
import binascii
import string
import unicodedata
from dataclasses import dataclass
from typing import Iterable

from baton.v1 import revocation_pb2

from ._text import echo
from .ids import event_id_bytes

# The longest bearer token looked up (16 KiB); longer is refused unread.
BEARER_BYTES_MAX = 16 * 1024
# The longest MCP method or tool name read (an encoded tool name: twice).
MCP_NAME_BYTES_MAX = 256
# The first MCP protocol version whose requests carry `Mcp-Method`.
MCP_HEADERS_SINCE = "2026-07-28"
# The MCP protocol versions Baton knows; a request naming another is refused.
MCP_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28")
# The MCP methods of those versions, for refusing another case of one (a
# server comparing without case would run it).
MCP_METHODS = (
    "initialize", "ping", "tools/list", "tools/call", "resources/list", "resources/templates/list",
    "resources/read", "resources/subscribe", "resources/unsubscribe", "prompts/list", "prompts/get",
    "completion/complete", "logging/setLevel", "tasks/get", "tasks/list", "tasks/result", "tasks/cancel",
    "notifications/initialized", "notifications/cancelled", "notifications/progress",
    "notifications/roots/list_changed",
)
# Methods that carry no MCP message a gateway would need to see.
BODILESS = ("GET", "HEAD", "DELETE", "OPTIONS")
HTTP_METHOD_CHARS_MAX = 20

# Headers the upstream gets with an allowed request.
SUBJECT, HOLDER, DEPTH, EVENT_ID = "x-baton-subject", "x-baton-holder", "x-baton-depth", "x-baton-event-id"
UPSTREAM_HEADERS = (SUBJECT, HOLDER, DEPTH, EVENT_ID)

# RFC 6750 §2.1 `b64token`, before its trailing `=`.
_B64TOKEN = frozenset(string.ascii_letters + string.digits + "-._~+/")
_METHOD_NAME = frozenset(string.ascii_letters + string.digits + "/_-.")
_BASE64_PREFIX, _BASE64_SUFFIX = "=?base64?", "?="

# (name, value) as received, every copy of a repeated header, in order;
# names are compared without regard to ASCII case.
Headers = Iterable[tuple[bytes, bytes]]


class Refusal(ValueError):
    """A request refused before its token was looked up: malformed or
    ambiguous, answered 400."""


@dataclass(frozen=True)
class Resource:
    """The resource a server is: the audience its tokens must carry, the
    scopes every request needs (besides a `tools/call`'s tool), its RFC 9728
    metadata URL (named in 401 answers), and whether it is an MCP endpoint
    (every request but GET, HEAD, DELETE and OPTIONS must say what it does)."""

    audience: str
    scopes: tuple[str, ...] = ()
    metadata_url: str | None = None
    mcp: bool = True

    def __post_init__(self) -> None:
        if not self.audience:
            raise ValueError("audience: is empty")
        # One order, as the Rust side's BTreeSet: a denial names the missing
        # scopes sorted.
        object.__setattr__(self, "scopes", tuple(sorted(set(self.scopes))))


@dataclass(frozen=True)
class Presented:
    """What a request's headers say, read once."""

    # The `Bearer` token of `Authorization`; None without one.
    bearer: str | None = None
    mcp_method: str | None = None
    # `Mcp-Name`, decoded when the client base64-encoded it.
    mcp_name: str | None = None
    mcp_protocol_version: str | None = None


@dataclass(frozen=True)
class Verdict:
    """200: let it through, with `headers` for the server. Else the denial:
    the status, the `WWW-Authenticate` challenge (None: none) and why."""

    status: int
    www_authenticate: str | None = None
    reason: str = ""
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def allowed(self) -> bool:
        return self.status == 200


def quotable(text: str) -> str:
    """`text` as the inside of a quoted-string: printable ASCII, no quote or
    backslash (anything else becomes `?`)."""
    return "".join(c if c == " " or ("!" <= c <= "~" and c not in '"\\') else "?" for c in text)


def header_value(text: str) -> str:
    """`text` as a header value: visible ASCII kept, everything else (and
    `%`) percent-encoded as UTF-8, so a subject in any script survives."""
    return "".join(chr(b) if 0x21 <= b <= 0x7E and b != 0x25 else f"%{b:02X}" for b in text.encode("utf-8"))


def is_invisible(c: str) -> bool:
    """Whether `c` renders as nothing, reorders text, or has no agreed
    glyph: `baton_core::is_invisible` (crates/core/src/ids.rs), the same
    code points."""
    return any(low <= ord(c) <= high for low, high in _INVISIBLE)


_INVISIBLE = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x0600, 0x0605), (0x061C, 0x061C), (0x06DD, 0x06DD),
    (0x070F, 0x070F), (0x0890, 0x0891), (0x08E2, 0x08E2), (0x115F, 0x1160), (0x17B4, 0x17B5),
    (0x180B, 0x180F), (0x200B, 0x200F), (0x2028, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
    (0xE000, 0xF8FF), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFFB),
    (0x110BD, 0x110BD), (0x110CD, 0x110CD), (0x13430, 0x1343F), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF), (0xF0000, 0x10FFFF),
)


# Reading the headers.


def _display(name: str) -> str:
    """A header name as documentation writes it (`mcp-name` → `Mcp-Name`)."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def one(headers: Headers, name: str) -> str | None:
    """The value of `name` (lower case) when it arrived once, as visible
    ASCII (spaces and tabs inside), none around it and not empty; absent:
    None. `Refusal` otherwise."""
    wanted = name.encode("ascii")
    values = [value for n, value in headers if n.lower() == wanted]
    if not values:
        return None
    shown = _display(name)
    if len(values) > 1:
        raise Refusal(f"{shown}: sent more than once; the upstream may read another copy")
    value = values[0]
    if not value:
        raise Refusal(f"{shown}: is empty")
    if value[:1] in (b" ", b"\t") or value[-1:] in (b" ", b"\t"):
        raise Refusal(f"{shown}: has white space around its value")
    bad = next((b for b in value if not (0x21 <= b <= 0x7E or b in (0x20, 0x09))), None)
    if bad is not None:
        raise Refusal(f"{shown}: byte 0x{bad:02x} is not visible ASCII")
    return value.decode("ascii")


def single(headers: Headers, name: str) -> str | None:
    """`one` for a header whose grammar has no comma: a comma is two values
    joined (as proxies join repeats) and refused."""
    value = one(headers, name)
    if value is not None and "," in value:
        raise Refusal(f"{_display(name)}: has a comma, so it may be two values joined; refused")
    return value


def _bearer(authorization: str | None) -> str | None:
    """The token of a `Bearer` credential (the scheme in any case); another
    scheme (Basic, DPoP …) is no bearer token."""
    if authorization is None or len(authorization) < 7 or authorization[:7].lower() != "bearer ":
        return None
    token = authorization[7:]
    body = token.rstrip("=")
    if not body or not _B64TOKEN.issuperset(body):
        raise Refusal("Authorization: a Bearer token is one run of RFC 6750 b64token characters after one space")
    return token


def _mcp_method(method: str | None) -> str | None:
    if method is None:
        return None
    if len(method) > MCP_NAME_BYTES_MAX or not _METHOD_NAME.issuperset(method):
        raise Refusal(f'Mcp-Method: "{quotable(echo(method))}" is not an MCP method name')
    known = next((k for k in MCP_METHODS if k.lower() == method.lower() and k != method), None)
    if known is not None:
        raise Refusal(f'Mcp-Method: "{method}" is "{known}" in another case; MCP method names are case-sensitive')
    return method


def tool_name(raw: str) -> str:
    """An `Mcp-Name` value: as sent (visible ASCII, no white space), or
    decoded when the client base64-encoded it (`=?base64?…?=`, canonical
    standard base64 of UTF-8). A value that starts like the encoding but is
    not one is refused, as is a decoded name that is empty or has control
    or invisible characters."""
    if len(raw) > 2 * MCP_NAME_BYTES_MAX:
        raise Refusal(f"Mcp-Name: longer than {2 * MCP_NAME_BYTES_MAX} bytes")
    if not raw.startswith("=?"):
        if " " in raw or "\t" in raw:
            raise Refusal("Mcp-Name: a name with white space")
        return raw
    name = _base64_text(raw)
    if name is None:
        raise Refusal("Mcp-Name: starts like =?base64?…?= but is not valid base64 of UTF-8")
    if not name or any(unicodedata.category(c) == "Cc" or is_invisible(c) for c in name):
        raise Refusal("Mcp-Name: a decoded name that is empty or has control or invisible characters")
    return name


def _base64_text(raw: str) -> str | None:
    """The text `=?base64?…?=` encodes, or None. Canonical only (padding
    required, no stray bits), as the Rust side's standard engine reads it."""
    rest = raw[len(_BASE64_PREFIX):] if raw.startswith(_BASE64_PREFIX) else None
    if rest is None or not rest.endswith(_BASE64_SUFFIX):
        return None
    encoded = rest[: -len(_BASE64_SUFFIX)]
    try:
        decoded = base64.b64decode(encoded, validate=True)
        if base64.b64encode(decoded).decode("ascii") != encoded:
            return None
        return decoded.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def read(headers: Headers) -> Presented:
    """Reads `Authorization`, `Mcp-Method`, `Mcp-Name` and
    `MCP-Protocol-Version`, each once and in its one form; `Refusal`
    otherwise."""
    headers = list(headers)
    bearer = _bearer(single(headers, "authorization"))
    mcp_method = _mcp_method(single(headers, "mcp-method"))
    raw_name = single(headers, "mcp-name")
    mcp_name = tool_name(raw_name) if raw_name is not None else None
    version = single(headers, "mcp-protocol-version")
    return Presented(bearer, mcp_method, mcp_name, version)


# The decision.


def challenge(resource: Resource, params: str) -> str:
    """A `Bearer` challenge: `params` (already quoted), and the resource's
    metadata URL when it has one (RFC 9728 §5.1)."""
    metadata = f'resource_metadata="{quotable(resource.metadata_url)}"' if resource.metadata_url else None
    parts = [p for p in (params, metadata) if p]
    return "Bearer " + ", ".join(parts) if parts else "Bearer"


def _invalid_token(resource: Resource, reason: str) -> Verdict:
    params = f'error="invalid_token", error_description="{quotable(reason)}"'
    return Verdict(401, challenge(resource, params), reason)


def _insufficient_scope(resource: Resource, scopes: str, reason: str) -> Verdict:
    params = f'error="insufficient_scope", scope="{quotable(scopes)}", error_description="{quotable(reason)}"'
    return Verdict(403, challenge(resource, params), reason)


def _invalid_request(resource: Resource, reason: str) -> Verdict:
    params = f'error="invalid_request", error_description="{quotable(reason)}"'
    return Verdict(400, challenge(resource, params), reason)


def _http_method(method: str) -> str | None:
    """Why `method` is refused (None: it is not). Methods are case-sensitive:
    a server that upper-cases `get` would read another method than Baton."""
    if 1 <= len(method) <= HTTP_METHOD_CHARS_MAX and all("A" <= c <= "Z" for c in method):
        return None
    return f'method "{quotable(echo(method))}" is not an upper-case HTTP method'


def _mcp_undescribed(method: str, presented: Presented) -> str | None:
    """Why an MCP request does not say unambiguously what it does (None: it
    does): a protocol version Baton does not know; a method carrying a
    message without `Mcp-Method` and a version of 2026-07-28 or later (older
    servers do not check the body against the headers); a `tools/call`
    without its tool."""
    version = presented.mcp_protocol_version
    if version is not None and version not in MCP_VERSIONS:
        return (f'MCP-Protocol-Version: "{quotable(echo(version))}" is not a version Baton knows '
                f'({", ".join(MCP_VERSIONS)})')
    described = presented.mcp_method is not None and version is not None and version >= MCP_HEADERS_SINCE
    if method not in BODILESS and not described:
        return (f"an MCP request must carry Mcp-Method and MCP-Protocol-Version {MCP_HEADERS_SINCE} or later, "
                "so that the gateway knows what it does")
    if presented.mcp_method == "tools/call" and presented.mcp_name is None:
        return "a tools/call without an Mcp-Name header"
    return None


def admit(resource: Resource, method: str, headers: Headers) -> Presented | Verdict:
    """Reads a request to `resource` before its token is looked up: what it
    presents (its `bearer` set), or the denial — a header not in its one
    form, no token, a token over the size bound, a method not in upper
    case, an MCP request that does not say unambiguously what it does."""
    try:
        presented = read(headers)
    except Refusal as refusal:
        return _invalid_request(resource, str(refusal))
    if presented.bearer is None:
        # RFC 6750 §3.1: no error code when no credentials were sent.
        return Verdict(401, challenge(resource, ""), "no bearer token")
    if len(presented.bearer) > BEARER_BYTES_MAX:
        return _invalid_token(resource, f"the token is longer than {BEARER_BYTES_MAX} bytes")
    why = _http_method(method) or (_mcp_undescribed(method, presented) if resource.mcp else None)
    if why is not None:
        return _invalid_request(resource, why)
    return presented


_NOT_ACTIVE: dict[int, str] = {
    revocation_pb2.TOKEN_STATUS_REVOKED: "the token is revoked",
    revocation_pb2.TOKEN_STATUS_EXPIRED: "the token is expired",
    revocation_pb2.TOKEN_STATUS_AUDIENCE_MISMATCH: "the token is not addressed to this resource",
}


def conclude(
    resource: Resource,
    presented: Presented,
    status: int,
    details: revocation_pb2.TokenDetails | None,
    event_id: str | bytes | None = None,
) -> Verdict:
    """The verdict once the token presented to `resource` was looked up:
    `status` (the wire `TokenStatus`), its details and its event's id
    (`ev:…` or 32 bytes; hex digits in `x-baton-event-id`) when known. Not
    ACTIVE: 401; a scope of the resource missing: 403 naming every missing
    one; a `tools/call` of a tool the token does not grant: 403 naming the
    tool."""
    if status != revocation_pb2.TOKEN_STATUS_ACTIVE or details is None:
        return _invalid_token(resource, _NOT_ACTIVE.get(status, "the token is not known"))
    missing = " ".join(scope for scope in resource.scopes if scope not in details.scopes)
    if missing:
        return _insufficient_scope(resource, missing, f"the token lacks scope {missing}")
    if presented.mcp_method == "tools/call":
        tool = presented.mcp_name or ""
        if not tool or tool not in details.tools:
            shown = quotable(echo(tool))
            why = f"the token does not grant tool {shown}" if tool else "a tools/call without an Mcp-Name header"
            return _insufficient_scope(resource, shown, why)
    return Verdict(200, headers=(
        (SUBJECT, header_value(details.subject)),
        (HOLDER, header_value(details.holder)),
        (DEPTH, str(details.depth)),
        (EVENT_ID, event_id_bytes(event_id).hex() if event_id else ""),
    ))
