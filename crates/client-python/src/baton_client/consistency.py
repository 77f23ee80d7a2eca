"""Consistency tokens, read and written exactly as the node and the Rust SDK
do (crates/log/src/consistency.rs): `ct1.` and, per partition, the offset
after the last record covered, in lowercase hex (empty for 0),
`-`-separated; at most 4096 partitions, each offset a u64.

There is one spelling of each token: `int(part, 16)` alone would also take
`0x1f`, `+1f`, ` 1f`, `1_f` and non-ASCII digits, which the Rust SDK
refuses, so the two SDKs would disagree on what a token covers.
`proto/testvectors/sdk/consistency.json` is the specification both run.
"""

from __future__ import annotations

from ._text import echo

PREFIX = "ct1."
# More partitions than any deployment has; bounds what a token may claim.
PARTITIONS_MAX = 4096
OFFSET_MAX = 2**64 - 1
# 16 hex digits always fit a u64.
_DIGITS_MAX = 16
_HEX = frozenset("0123456789abcdef")


def _offset(part: str) -> int:
    if not part:
        return 0
    if len(part) > _DIGITS_MAX or not _HEX.issuperset(part):
        raise ValueError(f"offset {echo(part)!r} is not 1 to 16 lowercase hex digits")
    return int(part, 16)


def parse(text: str) -> list[int]:
    """The offsets `text` names, per partition; `ValueError` naming the
    rule it breaks."""
    if not text.startswith(PREFIX):
        raise ValueError(f"consistency token {echo(text)!r} does not start with {PREFIX!r}")
    parts = text[len(PREFIX):].split("-")
    if len(parts) > PARTITIONS_MAX:
        raise ValueError(f"consistency token names {len(parts)} partitions, more than {PARTITIONS_MAX}")
    return [_offset(part) for part in parts]


def format(offsets: list[int]) -> str:  # noqa: A001 (the module's verb, as `parse`)
    """The token naming `offsets`; `ValueError` for what `parse` would
    refuse (an offset outside u64, more than 4096 partitions)."""
    if len(offsets) > PARTITIONS_MAX:
        raise ValueError(f"offsets: {len(offsets)} partitions, more than {PARTITIONS_MAX}")
    for partition, offset in enumerate(offsets):
        if not 0 <= offset <= OFFSET_MAX:
            raise ValueError(f"offsets[{partition}]: {offset} is not a u64")
    return PREFIX + "-".join(f"{offset:x}" if offset else "" for offset in offsets)


def covers(applied: str, token: str) -> bool:
    """Whether the position `applied` has reached every partition of
    `token`; `ValueError` if either does not parse."""
    have, need = parse(applied), parse(token)
    return all(n == 0 or (p < len(have) and have[p] >= n) for p, n in enumerate(need))


def merge(a: str, b: str) -> str:
    """A token covering what `a` or `b` covers; `ValueError` if either does
    not parse."""
    x, y = parse(a), parse(b)
    n = max(len(x), len(y))
    x, y = x + [0] * (n - len(x)), y + [0] * (n - len(y))
    return format([max(p, q) for p, q in zip(x, y)])


def include(token: str, partition: int, offset: int) -> str:
    """`token` extended to cover the record at (`partition`, `offset`);
    `ValueError` if `token` does not parse or the result could not be
    written (a partition past 4096, an offset at the u64 bound)."""
    offsets = parse(token)
    if not 0 <= partition < PARTITIONS_MAX:
        raise ValueError(f"partition: {partition} is not below {PARTITIONS_MAX}")
    if not 0 <= offset < OFFSET_MAX:
        raise ValueError(f"offset: {offset} is not below the u64 bound")
    offsets += [0] * (partition + 1 - len(offsets))
    offsets[partition] = max(offsets[partition], offset + 1)
    return format(offsets)
