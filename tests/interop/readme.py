"""The fenced block after `<!-- snippet:NAME -->` in README.md or one of
docs/*.md: what README or docs/ shows users is what the interop checks run."""

import pathlib


def snippet(name: str) -> str:
    root = pathlib.Path(__file__).resolve().parents[2]
    marker = f"<!-- snippet:{name} -->"
    files = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    found = []
    for path in files:
        text = path.read_text()
        if marker in text:
            found.append((path, text))
    if not found:
        raise LookupError(f"neither README.md nor docs/*.md has {marker}")
    if len(found) > 1:
        raise LookupError(f"{marker} is in more than one file: {[str(p) for p, _ in found]}")
    readme = found[0][1]
    after = readme[readme.index(marker):]
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
