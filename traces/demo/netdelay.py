"""A TCP relay that holds each reply for a fixed delay: the demo's stand-in
for a network between the worker and Redis.

    python3 netdelay.py --upstream 127.0.0.1:6379 --delay-ms 0.2   # prints "demo netdelay ready port=N"

On one machine a Redis round trip takes some 30 us, less than redis-py's
own cost per command; across a data centre it takes a few hundred. The
chat lambda's many small round trips cost what they cost in production
only with that distance, so record.py puts this relay between the
recording proxy and Redis: the proxy sees each reply come DELAY later, as
it would from a Redis on another host. Bytes pass unchanged.
"""

import argparse
import socket
import threading
import time


def pump(src, dst, delay_s):
    """Copies src to dst, each chunk after `delay_s`, then passes on the end."""
    try:
        while data := src.recv(65536):
            if delay_s:
                time.sleep(delay_s)
            dst.sendall(data)
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        try:
            dst.shutdown(socket.SHUT_RDWR)  # one side failed: end both
        except OSError:
            pass


def relay(client, upstream, delay_s):
    with client, socket.create_connection(upstream) as server:
        for s in (client, server):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        requests = threading.Thread(target=pump, args=(client, server, 0))
        requests.start()
        pump(server, client, delay_s)
        requests.join()


def serve(listener, upstream, delay_s):
    while True:
        client, _ = listener.accept()
        threading.Thread(target=relay, args=(client, upstream, delay_s), daemon=True).start()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--upstream", default="127.0.0.1:6379")
    ap.add_argument("--delay-ms", type=float, default=0.2)
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    host, port = a.upstream.rsplit(":", 1)
    listener = socket.create_server(("127.0.0.1", a.port))
    print(f"demo netdelay ready port={listener.getsockname()[1]}", flush=True)
    serve(listener, (host, int(port)), a.delay_ms / 1000)


if __name__ == "__main__":
    main()
