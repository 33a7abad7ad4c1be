"""A loopback OTLP/HTTP receiver for tests: decodes each protobuf export with the official
OpenTelemetry classes and appends it as one JSON line to OUTFILE.
    otlp_receiver.py PORTFILE OUTFILE   (binds 127.0.0.1 on a free port, writes it to PORTFILE)"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

KINDS = {"/v1/metrics": ExportMetricsServiceRequest, "/v1/traces": ExportTraceServiceRequest}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        kind = KINDS.get(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if kind is None or self.headers.get("Content-Type") != "application/x-protobuf":
            self.send_response(404)
            self.end_headers()
            return
        message = kind()
        message.ParseFromString(body)  # raises on a malformed payload: the test then fails
        with open(sys.argv[2], "a") as out:
            out.write(json.dumps({"path": self.path, "payload": MessageToDict(message)}) + "\n")
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[3]) if len(sys.argv) > 3 else 0), Handler)
with open(sys.argv[1], "w") as f:
    f.write(str(server.server_address[1]))
server.serve_forever()
