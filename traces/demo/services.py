"""The demo's downstream HTTP service: payments and notifications, on its
own port, reached by the worker's lambdas through oltrace's forward proxy.

    python3 services.py [--port PORT]    # prints "demo services ready port=N"

POST /pay            takes PAY_S (a card network's round trip), answers {"payment": id}
POST /notify/<user>  takes NOTIFY_S, answers {"notified": user}
GET  /shutdown       answers, then exits 0
"""

import argparse
import itertools
import time
import urllib.parse
from http.server import ThreadingHTTPServer

from jsonhttp import JsonHandler

PAY_S = 0.06
NOTIFY_S = 0.02
payments = itertools.count(1)


class Handler(JsonHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        # Through a forward proxy the target comes in absolute form.
        self.path = urllib.parse.urlsplit(self.path).path
        if self.path == "/pay":
            time.sleep(PAY_S)
            self.reply(200, {"payment": f"pay-{next(payments)}"})
        elif self.path.startswith("/notify/"):
            time.sleep(NOTIFY_S)
            self.reply(200, {"notified": self.path.removeprefix("/notify/")})
        else:
            self.reply(404, {"error": f"no route POST {self.path}"})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0)
    server = ThreadingHTTPServer(("127.0.0.1", ap.parse_args().port), Handler)
    server.daemon_threads = True
    print(f"demo services ready port={server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
