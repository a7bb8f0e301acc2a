"""The HTTP side shared by the demo worker (app.py) and its downstream
service (services.py): a keep-alive handler that answers JSON, and
`GET /shutdown`, which answers and then stops the server."""

import json
import threading
from http.server import BaseHTTPRequestHandler


class JsonHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a gateway's connections are
    disable_nagle_algorithm = True  # the head and the body are two writes: no 40 ms delayed-ACK stall between them

    def do_GET(self):
        if self.path == "/shutdown":
            self.close_connection = True
            self.reply(200, {"bye": True})
            threading.Thread(target=self.server.shutdown).start()
        else:
            self.reply(404, {"error": f"no route GET {self.path}"})

    def reply(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass  # a line per request would be noise (in the trace's log records, for the worker)
