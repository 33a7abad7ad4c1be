"""Assertions on ctxstore's exports, with real parsers.
    observability_check.py prometheus FILE NAME{LABELS}=VALUE ...
        parses FILE (ctx.metrics_prometheus()) with prometheus_client's parser and checks samples
    observability_check.py otlp FILE TRACE_ID NAME=VALUE ...
        checks the receiver's decoded payloads: the latest metrics export has these values, and a
        span of the given trace id was received"""
import base64
import json
import sys


def fail(message):
    print("FAILED: " + message, file=sys.stderr)
    sys.exit(1)


def parse_expectation(text):
    name, _, value = text.rpartition("=")
    labels = {}
    if "{" in name:
        name, _, rest = name.partition("{")
        for pair in rest.rstrip("}").split(","):
            k, _, v = pair.partition(":")
            labels[k] = v
    return name, labels, float(value)


def prometheus(path, expectations):
    from prometheus_client.parser import text_string_to_metric_families

    text = open(path).read()
    families = list(text_string_to_metric_families(text))  # raises on invalid exposition text
    kinds = {f.name: f.type for f in families}
    for required, kind in [("ctxstore_messages_appended", "counter"),
                           ("ctxstore_call_duration_seconds", "histogram"),
                           ("ctxstore_errors", "counter"), ("ctxstore_metrics_shared", "gauge")]:
        if kinds.get(required) != kind:
            fail(f"family {required} should be a {kind}, got {kinds.get(required)}")
    samples = [s for f in families for s in f.samples]
    for f in families:
        if f.type == "histogram":
            for call in {s.labels["call"] for s in f.samples}:
                buckets = [s.value for s in f.samples if s.name.endswith("_bucket") and s.labels["call"] == call]
                count = [s.value for s in f.samples if s.name.endswith("_count") and s.labels["call"] == call][0]
                if buckets != sorted(buckets) or buckets[-1] != count:
                    fail(f"histogram {f.name}{{call={call}}} buckets not cumulative or +Inf != count")
    for text_expectation in expectations:
        name, labels, value = parse_expectation(text_expectation)
        found = [s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
        if not found:
            fail(f"no sample {text_expectation.rpartition('=')[0]}")
        if found[0] != value:
            fail(f"{text_expectation.rpartition('=')[0]} is {found[0]}, expected {value}")
    print(f"prometheus: {len(families)} families, {len(samples)} samples parsed; {len(expectations)} values as expected")


def otlp(path, trace_id, parent_id, expectations):
    exports = [json.loads(line) for line in open(path)]
    metrics = [e["payload"] for e in exports if e["path"] == "/v1/metrics"]
    traces = [e["payload"] for e in exports if e["path"] == "/v1/traces"]
    if not metrics:
        fail("the receiver got no metrics export")
    latest = metrics[-1]["resourceMetrics"][0]
    attributes = {a["key"]: a["value"]["stringValue"] for a in latest["resource"]["attributes"]}
    if attributes.get("service.name") != "ctxstore":
        fail(f"resource attributes: {attributes}")
    by_name = {m["name"]: m for m in latest["scopeMetrics"][0]["metrics"]}
    for text_expectation in expectations:
        name, labels, value = parse_expectation(text_expectation)
        metric = by_name.get(name)
        if metric is None:
            fail(f"metric {name} not exported (have {sorted(by_name)})")
        points = metric.get("sum", metric.get("histogram", {})).get("dataPoints", [])
        for p in points:
            point_labels = {a["key"]: a["value"]["stringValue"] for a in p.get("attributes", [])}
            if all(point_labels.get(k) == v for k, v in labels.items()):
                got = float(p.get("asInt", p.get("count", 0)))
                if got != value:
                    fail(f"OTLP {text_expectation.rpartition('=')[0]} is {got}, expected {value}")
                break
        else:
            fail(f"OTLP {name} has no point with {labels}")
    spans = [s for t in traces for rs in t["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    ours = [s for s in spans if base64.b64decode(s["traceId"]).hex() == trace_id]
    if not ours:
        fail(f"no span of trace {trace_id} among {len(spans)} spans")
    # the parent of each span is the caller's span: the parent-id of its traceparent
    parents = {base64.b64decode(s.get("parentSpanId", "")).hex() for s in ours}
    if parents != {parent_id} or not all(s["name"].startswith("ctxstore.") for s in ours):
        fail(f"spans of trace {trace_id} must be named ctxstore.* with parent {parent_id}, got {ours}")
    print(f"otlp: {len(metrics)} metrics exports, {len(spans)} spans decoded; {len(ours)} span(s) of the client's trace")


if __name__ == "__main__":
    if sys.argv[1] == "prometheus":
        prometheus(sys.argv[2], sys.argv[3:])
    elif sys.argv[1] == "otlp":
        otlp(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
    else:
        fail("usage: observability_check.py prometheus|otlp ...")
