"""Text quoted in messages, bounded as the Rust crates bound it
(`baton_core::echo`): a value a client chose may be megabytes long."""

ECHO_CHARS_MAX = 64


def echo(value: str) -> str:
    """`value` up to 64 characters, then how long it really was (UTF-8
    bytes)."""
    if len(value) <= ECHO_CHARS_MAX:
        return value
    return f"{value[:ECHO_CHARS_MAX]}…({len(value.encode('utf-8', 'surrogatepass'))} bytes)"
