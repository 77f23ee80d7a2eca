#!/usr/bin/env python3
"""Checks the Grafana dashboard against the metrics a Baton node exports:
every metric a query names is one of them (a typo would be an empty panel,
not an error), every family is on some panel, every panel queries the
${DS_PROMETHEUS} data source, panel ids are unique, and the `instance`
variable exists and filters every query. With --scrape, also that the list
below is exactly what a node's /metrics declares (its `# TYPE` lines): the
suite scrapes a node that served every bridge and passes it here, so a
metric added to the node and missing from the dashboard fails.

usage: dashboard.py DASHBOARD.json [--scrape METRICS.txt]
"""

import json
import re
import sys

# What the node exports (crates/server/src/metrics.rs): the names every
# query may use. A histogram's _sum and _count are allowed with its _bucket.
EXPORTED = {
    "grpc_server_started_total",
    "grpc_server_handled_total",
    "grpc_server_handling_seconds_bucket",
    "grpc_server_handling_seconds_sum",
    "grpc_server_handling_seconds_count",
    "baton_appends_total",
    "baton_checks_total",
    "baton_projector_events_total",
    "baton_projector_quarantined_total",
    "baton_projector_parked",
    "baton_projector_parked_retries_total",
    "baton_log_end_offset",
    "baton_projector_applied_offset",
    "baton_projector_lag_records",
    "baton_projector_seconds_behind",
    "baton_ready",
    "baton_log_reachable",
    "baton_fresh",
    "baton_log_end_confirmed_age_seconds",
    "baton_view_age_seconds",
    "baton_unapplied_seconds",
    "baton_max_staleness_seconds",
    "baton_http_requests_total",
    "baton_http_request_seconds_bucket",
    "baton_http_request_seconds_sum",
    "baton_http_request_seconds_count",
    "baton_bridge_decisions_total",
    "baton_watch_streams",
    "baton_watch_entries_total",
    "baton_log_append_seconds_bucket",
    "baton_log_append_seconds_sum",
    "baton_log_append_seconds_count",
    "baton_log_append_errors_total",
    "baton_projection_size_bytes",
    "process_resident_memory_bytes",
    "process_cpu_seconds_total",
    "process_open_fds",
    "process_max_fds",
    "process_start_time_seconds",
    "process_virtual_memory_bytes",
    "process_threads",
}
# Names some panel must use.
REQUIRED = EXPORTED - {
    "baton_log_append_seconds_sum", "baton_log_append_seconds_count",
    "baton_http_request_seconds_sum", "baton_http_request_seconds_count",
}

KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
    "and", "or", "unless", "offset", "inf", "nan",
}


def metric_names(expr):
    """The metric names in a PromQL expression: identifiers that are not
    functions, keywords, label names or inside strings, matchers or ranges."""
    e = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)          # strings
    e = re.sub(r"'(?:\\.|[^'\\])*'", "''", e)
    e = re.sub(r"\{[^{}]*\}", " ", e)                      # label matchers
    e = re.sub(r"\[[^\]]*\]", " ", e)                      # ranges
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        word = m.group(0)
        rest = e[m.end():].lstrip()
        if rest.startswith("("):                            # a function
            continue
        if word.lower() in KEYWORDS:
            continue
        names.add(word)
    return names


def declared(text):
    """The sample names a Prometheus text exposition declares: each `# TYPE`
    family (a histogram as its _bucket, _sum and _count)."""
    names = set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[:2] == ["#", "TYPE"]:
            name, kind = parts[2], parts[3]
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
            else:
                names.add(name)
    return names


def main(path, scrape=None):
    with open(path) as f:
        dashboard = json.load(f)
    problems = []
    ids = []
    used = set()

    def walk(panels):
        for panel in panels:
            ids.append(panel.get("id"))
            if panel.get("type") != "row":
                ds = panel.get("datasource", {})
                if ds.get("uid") != "${DS_PROMETHEUS}":
                    problems.append(f"panel {panel.get('title')!r}: datasource {ds!r} is not ${{DS_PROMETHEUS}}")
                if not panel.get("targets"):
                    problems.append(f"panel {panel.get('title')!r}: no queries")
                if "gridPos" not in panel:
                    problems.append(f"panel {panel.get('title')!r}: no gridPos")
            for target in panel.get("targets", []):
                expr = target.get("expr", "")
                if target.get("datasource", {}).get("uid") != "${DS_PROMETHEUS}":
                    problems.append(f"panel {panel.get('title')!r}: a query's datasource is not ${{DS_PROMETHEUS}}")
                if 'instance=~"$instance"' not in expr:
                    problems.append(f"panel {panel.get('title')!r}: {expr!r} is not filtered by $instance")
                for name in metric_names(expr):
                    used.add(name)
                    if name not in EXPORTED:
                        problems.append(f"panel {panel.get('title')!r}: {name} is not a metric Baton exports")
            walk(panel.get("panels", []))

    walk(dashboard.get("panels", []))
    variables = {v.get("name"): v for v in dashboard.get("templating", {}).get("list", [])}
    if variables.get("DS_PROMETHEUS", {}).get("type") != "datasource":
        problems.append("no DS_PROMETHEUS data source variable")
    instance = variables.get("instance")
    if instance is None:
        problems.append("no instance variable")
    else:
        query = instance.get("query")
        query = query.get("query", "") if isinstance(query, dict) else query or ""
        for name in re.findall(r"label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)", query):
            used.add(name)
            if name not in EXPORTED:
                problems.append(f"variable instance: {name} is not a metric Baton exports")
    duplicates = sorted({i for i in ids if ids.count(i) > 1}, key=str)
    if duplicates:
        problems.append(f"duplicate panel ids: {duplicates}")
    for name in sorted(REQUIRED - used):
        problems.append(f"{name} is on no panel")
    if not isinstance(dashboard.get("schemaVersion"), int):
        problems.append("no schemaVersion")
    if scrape is not None:
        with open(scrape) as f:
            served = declared(f.read())
        if not served:
            problems.append(f"{scrape}: declares no metric")
        for name in sorted(served - EXPORTED):
            problems.append(f"{name}: the node exports it, this check and the dashboard do not know it")
        for name in sorted(EXPORTED - served):
            problems.append(f"{name}: listed here, the node does not export it")
    for p in problems:
        print(f"{path}: {p}")
    if not problems:
        print(f"{path}: {len(ids)} panels, {len(used)} metric names, all exported")
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[2] == "--scrape":
        sys.exit(main(sys.argv[1], sys.argv[3]))
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
