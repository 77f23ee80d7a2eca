"""The fenced block after `<!-- snippet:NAME -->` in README.md: what the
README shows users is what the interop checks run."""

import pathlib


def snippet(name: str) -> str:
    readme = (pathlib.Path(__file__).resolve().parents[2] / "README.md").read_text()
    after = readme[readme.index(f"<!-- snippet:{name} -->"):]
    lines = iter(after.splitlines())
    for line in lines:
        if line.startswith("```"):
            break
    block = []
    for line in lines:
        if line.startswith("```"):
            break
        block.append(line)
    return "\n".join(block) + "\n"
