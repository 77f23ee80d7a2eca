#!/usr/bin/env python3
"""Builds the JSON schemas kubeconform validates the Helm chart against,
offline, from what the package registries serve:

- Kubernetes: the strict schemas PyPI's `kubernetes-validate` wheel ships
  (generated from Kubernetes' OpenAPI spec, one directory per minor version,
  kinds referring to a shared `_definitions.json` by an absolute URL under
  https://kubernetes.io/). Each kind's `$id` is dropped and its references
  made relative, so they resolve to the `_definitions.json` beside it on
  disk, and kubeconform's file loader never goes to the network.
- Custom resources (the ServiceMonitor): a CustomResourceDefinition in JSON
  (the prometheus-operator Go module ships its CRDs as JSON for jsonnet),
  converted the way kubeconform's scripts/openapi2jsonschema.py does it:
  every object with `properties` refuses other properties (strict), and
  int-or-string fields accept a string or an integer.

Writes OUT/vX.Y.Z/<kind>[-<group>]-<version>.json, the layout of kubeconform's
`-schema-location 'OUT/{{ .NormalizedKubernetesVersion }}/{{ .ResourceKind }}{{ .KindSuffix }}.json'`.

usage: schemas.py --wheel WHEEL --out OUT --version 1.30.0 [--version ...] [--crd CRD.json ...]
"""

import argparse
import json
import os
import sys
import zipfile

DEFINITIONS_URL = "/api/_definitions.json#"


def relative_refs(node):
    """Rewrites the wheel's absolute references to the definitions file beside it."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(DEFINITIONS_URL):
                value = "_definitions.json#" + value[len(DEFINITIONS_URL):]
            out[key] = relative_refs(value)
        return out
    if isinstance(node, list):
        return [relative_refs(v) for v in node]
    return node


def strict(node, preserve_unknown=False):
    """kubectl's (and openapi2jsonschema's) strictness, and int-or-string."""
    if isinstance(node, list):
        return [strict(v) for v in node]
    if not isinstance(node, dict):
        return node
    if node.get("x-kubernetes-int-or-string") or node.get("format") == "int-or-string":
        return {"oneOf": [{"type": "string"}, {"type": "integer"}]}
    out = {key: strict(value) for key, value in node.items()}
    if ("properties" in out and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


def kubernetes(wheel, version, out_dir):
    prefix = f"kubernetes_validate/kubernetes-json-schema/v{version}-local-strict/"
    count = 0
    with zipfile.ZipFile(wheel) as z:
        names = [n for n in z.namelist() if n.startswith(prefix) and n.endswith(".json")]
        if not names:
            sys.exit(f"schemas.py: {wheel} has no schemas for Kubernetes {version}")
        for name in names:
            schema = json.loads(z.read(name))
            schema.pop("$id", None)
            schema = relative_refs(schema)
            with open(os.path.join(out_dir, os.path.basename(name)), "w") as f:
                json.dump(schema, f)
            count += 1
    return count


def crd(path, out_dir):
    with open(path) as f:
        doc = json.load(f)
    if doc.get("kind") != "CustomResourceDefinition":
        sys.exit(f"schemas.py: {path} is not a CustomResourceDefinition")
    spec = doc["spec"]
    kind = spec["names"]["kind"].lower()
    group = spec["group"].split(".")[0]
    written = []
    for version in spec["versions"]:
        schema = strict(version["schema"]["openAPIV3Schema"])
        # The root too: a misspelt top-level field is an error, as the API server has it.
        schema["additionalProperties"] = False
        name = f"{kind}-{group}-{version['name']}.json"
        with open(os.path.join(out_dir, name), "w") as f:
            json.dump(schema, f)
        written.append(name)
    return written


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--wheel", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--version", action="append", required=True)
    parser.add_argument("--crd", action="append", default=[])
    args = parser.parse_args()
    for version in args.version:
        out_dir = os.path.join(args.out, f"v{version}")
        os.makedirs(out_dir, exist_ok=True)
        count = kubernetes(args.wheel, version, out_dir)
        extra = [name for path in args.crd for name in crd(path, out_dir)]
        print(f"schemas: Kubernetes {version}: {count} kinds, and {', '.join(extra) or 'no CRDs'}")


if __name__ == "__main__":
    main()
