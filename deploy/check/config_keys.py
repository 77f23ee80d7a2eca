#!/usr/bin/env python3
"""Checks a rendered `baton serve` configuration file against the keys the
node accepts. The node refuses unknown keys (serde's deny_unknown_fields), so
a key the chart writes that the node does not know stops every pod at start.
The known keys are read from the structs in crates/cli/src/config.rs, so a
renamed field fails here, not in a cluster.

usage: config_keys.py CONFIG_RS MANIFESTS.yaml
  MANIFESTS.yaml: `helm template` output; each ConfigMap key ending in
  .toml is parsed (TOML, Python's tomllib) and checked.
"""

import re
import sys
import tomllib

# TOML table -> the struct that reads it, and whether it is an array of tables.
TABLES = {
    "": ("Config", False),
    "kafka": ("Kafka", False),
    "tls": ("Tls", False),
    "rules": ("Rules", False),
    "limits": ("Limits", False),
    "freshness": ("Freshness", False),
    "revocation": ("Revocation", False),
    "access": ("AccessGrant", True),
    "resource": ("ResourceConfig", True),
    "jwt_issuer": ("JwtIssuerConfig", True),
}


def struct_fields(source):
    """Field names of each `pub struct` in config.rs, skipping #[serde(skip)]."""
    fields = {}
    for m in re.finditer(r"pub struct (\w+) \{(.*?)\n\}", source, re.S):
        names = []
        skip = False
        for line in m.group(2).splitlines():
            line = line.strip()
            if line.startswith("#[serde(") and "skip" in line:
                skip = True
                continue
            f = re.match(r"pub (\w+):", line)
            if f:
                if not skip:
                    names.append(f.group(1))
                skip = False
        fields[m.group(1)] = set(names)
    return fields


def configs(manifests):
    """(name, text) of every *.toml entry in a ConfigMap, from YAML text,
    without a YAML library: the chart writes them as `key.toml: |` blocks."""
    out = []
    lines = manifests.splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)([\w.-]+\.toml): \|[-+]?\s*$", lines[i])
        if not m:
            i += 1
            continue
        indent = None
        block = []
        i += 1
        while i < len(lines):
            line = lines[i]
            if line.strip() == "":
                block.append("")
                i += 1
                continue
            lead = len(line) - len(line.lstrip(" "))
            if indent is None:
                indent = lead
            if lead < indent:
                break
            block.append(line[indent:])
            i += 1
        out.append((m.group(2), "\n".join(block) + "\n"))
    return out


def main(config_rs, manifests_path):
    with open(config_rs) as f:
        fields = struct_fields(f.read())
    missing = [s for s, _ in TABLES.values() if s not in fields]
    if missing:
        print(f"{config_rs}: no struct {', '.join(missing)}")
        return 1
    with open(manifests_path) as f:
        found = configs(f.read())
    if not found:
        print(f"{manifests_path}: no *.toml in any ConfigMap")
        return 1
    problems = []
    for name, text in found:
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            problems.append(f"{name}: not TOML: {e}")
            continue
        for key, value in doc.items():
            if isinstance(value, dict) or (isinstance(value, list) and value and all(isinstance(v, dict) for v in value)):
                if key not in TABLES:
                    problems.append(f"{name}: [{key}] is not a table the node reads")
                    continue
                struct, array = TABLES[key]
                entries = value if isinstance(value, list) else [value]
                if array != isinstance(value, list):
                    problems.append(f"{name}: {key} must be {'[[' + key + ']]' if array else '[' + key + ']'}")
                for entry in entries:
                    for sub in entry:
                        if sub not in fields[struct]:
                            problems.append(f"{name}: {key}.{sub} is not a key the node knows ({struct} in {config_rs})")
            elif key not in fields["Config"]:
                problems.append(f"{name}: {key} is not a key the node knows (Config in {config_rs})")
        if not problems:
            print(f"{name}: {len(doc)} top-level keys, all known to the node")
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
