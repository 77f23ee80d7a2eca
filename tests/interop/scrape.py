"""Reads a Prometheus text exposition on stdin with the Prometheus project's
own Python parser (prometheus_client.parser) and prints every sample as one
JSON array of [name, labels, value]. The metrics test asserts on this, so the
node's /metrics is read by a parser we did not write; a line it cannot parse
fails here."""

import json
import sys

from prometheus_client.parser import text_string_to_metric_families


def main() -> None:
    text = sys.stdin.read()
    samples = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.append([sample.name, dict(sample.labels), sample.value])
    json.dump(samples, sys.stdout)


if __name__ == "__main__":
    main()
