"""A real OTLP/HTTP receiver: decodes every export with the official `opentelemetry-proto` definitions.

    python otlp_receiver.py [--port N] [--delay SECONDS] [--print-tree]

Accepts `POST /v1/traces` and `POST /v1/metrics` (protobuf), answers them as a collector does (an empty
Export*ServiceResponse), and serves what it decoded for tests: `GET /spans` and `GET /metrics` (JSON),
`GET /raw` (every request body and its headers, concatenated, for the check that no secret was exported).
`--delay` makes it a slow collector; `--print-tree` prints each trace's span tree as it arrives (what
`make dev-trace` shows). The first line on stdout is `listening <port>`.
"""

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

LOCK = threading.Lock()
SPANS = []
METRICS = []
RAW = []
KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


def value(any_value):
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [value(v) for v in any_value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: value(kv.value) for kv in any_value.kvlist_value.values}
    if kind == "bytes_value":
        return any_value.bytes_value.hex()
    return getattr(any_value, kind) if kind else None


def attributes(kvs):
    return {kv.key: value(kv.value) for kv in kvs}


def decode_traces(body):
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append({
                    "trace_id": span.trace_id.hex(),
                    "span_id": span.span_id.hex(),
                    "parent_span_id": span.parent_span_id.hex(),
                    "name": span.name,
                    "kind": KINDS.get(span.kind, str(span.kind)),
                    "start": span.start_time_unix_nano,
                    "end": span.end_time_unix_nano,
                    "attributes": attributes(span.attributes),
                    "status": {"code": span.status.code, "message": span.status.message},
                    "resource": resource,
                    "scope": scope_spans.scope.name,
                })
    return spans


def decode_metrics(body):
    request = ExportMetricsServiceRequest()
    request.ParseFromString(body)
    metrics = []
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                points = []
                for point in getattr(metric, kind).data_points:
                    entry = {"attributes": attributes(point.attributes)}
                    if kind == "histogram":
                        entry.update(count=point.count, sum=point.sum, bounds=list(point.explicit_bounds))
                    else:
                        entry["value"] = point.as_int if point.WhichOneof("value") == "as_int" else point.as_double
                    points.append(entry)
                metrics.append({"name": metric.name, "unit": metric.unit, "kind": kind, "points": points})
    return metrics


def print_tree(spans):
    """Each trace's spans as an indented tree, children in start order."""
    by_trace = {}
    for span in spans:
        by_trace.setdefault(span["trace_id"], []).append(span)
    for trace_id, members in by_trace.items():
        ids = {span["span_id"] for span in members}
        children = {}
        for span in sorted(members, key=lambda s: s["start"]):
            parent = span["parent_span_id"] if span["parent_span_id"] in ids else None
            children.setdefault(parent, []).append(span)

        def show(span, depth):
            millis = (span["end"] - span["start"]) / 1e6
            notes = [f"{k}={v}" for k, v in span["attributes"].items()
                     if k in ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "error.type",
                              "fc_agent.outcome", "fc_agent.cache.hit", "fc_agent.tool.denied", "mcp.session.id")]
            print(f"{'  ' * depth}{span['name']}  [{span['kind']}, {millis:.1f} ms] {' '.join(notes)}")
            for child in children.get(span["span_id"], []):
                show(child, depth + 1)

        print(f"trace {trace_id}")
        for root in children.get(None, []):
            show(root, 1)
    sys.stdout.flush()


class Handler(BaseHTTPRequestHandler):
    delay = 0.0
    tree = False

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.delay:
            time.sleep(self.delay)
        with LOCK:
            RAW.append(str(self.headers).encode() + body)
        if self.path == "/v1/traces":
            spans = decode_traces(body)
            with LOCK:
                SPANS.extend(spans)
            if self.tree:
                print_tree(spans)
            answer = ExportTraceServiceResponse().SerializeToString()
        elif self.path == "/v1/metrics":
            metrics = decode_metrics(body)
            with LOCK:
                METRICS.append(metrics)
            answer = ExportMetricsServiceResponse().SerializeToString()
        else:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def do_GET(self):
        with LOCK:
            if self.path == "/spans":
                body, kind = json.dumps(SPANS).encode(), "application/json"
            elif self.path == "/metrics":
                body, kind = json.dumps(METRICS).encode(), "application/json"
            elif self.path == "/raw":
                body, kind = b"".join(RAW), "application/octet-stream"
            else:
                self.send_response(404)
                self.end_headers()
                return
        self.send_response(200)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that gave up on a slow answer (the --delay mode) is expected, not an error.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--print-tree", action="store_true")
    args = parser.parse_args()
    Handler.delay = args.delay
    Handler.tree = args.print_tree
    server = Server(("127.0.0.1", args.port), Handler)
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
