"""The interop check scripts' tally: each check prints `ok: NAME` or
`FAILED: NAME: DETAIL`; `summary(NAME)` prints the closing
`NAME: N passed, M failed` line the Rust tests read, and exits non-zero if
any failed."""

import sys

passed, failed = 0, 0


def check(name: str, ok: bool, detail: object = "") -> None:
    global passed, failed
    if ok:
        passed += 1
        print(f"ok: {name}", flush=True)
    else:
        failed += 1
        print(f"FAILED: {name}: {detail}", flush=True)


def summary(name: str) -> None:
    print(f"{name}: {passed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed else 0)
