#!/usr/bin/env python3
"""Bytes per exchange of a tcpdump pcap, for the trace-vs-pcap comparison.

Sends N small keep-alive HTTP exchanges over loopback, byte for byte the
exchange `oltrace generate --mix small-http` writes (request and response as
wrk and a small server send them), while tcpdump captures the port with
default options (full packets). Prints the pcap's size per exchange.

    python3 benches/pcap_size.py --exchanges 10000 --conns 4
"""
import argparse, os, socket, subprocess, tempfile, threading, time

REQ = b"GET /run/hello HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\n\r\n"
RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, world!"


def serve(srv):
    while True:
        try:
            c, _ = srv.accept()
        except OSError:
            return
        threading.Thread(target=handle, args=(c,), daemon=True).start()


def handle(c):
    buf = b""
    while True:
        d = c.recv(65536)
        if not d:
            c.close()
            return
        buf += d
        while REQ in buf:
            buf = buf[len(REQ):]
            c.sendall(RESP)


def client(port, n):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for _ in range(n):
        s.sendall(REQ)
        got = b""
        while len(got) < len(RESP):
            got += s.recv(65536)
    s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--exchanges", type=int, default=10000)
    ap.add_argument("--conns", type=int, default=4)
    a = ap.parse_args()
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    port = srv.getsockname()[1]
    threading.Thread(target=serve, args=(srv,), daemon=True).start()
    out = tempfile.mktemp(suffix=".pcap")
    dump = subprocess.Popen(["tcpdump", "-i", "lo", "-w", out, "-U", f"tcp port {port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    per = a.exchanges // a.conns
    ts = [threading.Thread(target=client, args=(port, per)) for _ in range(a.conns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    time.sleep(1.0)
    dump.terminate()
    dump.wait()
    size = os.path.getsize(out)
    n = per * a.conns
    print(f"pcap: {size} bytes for {n} exchanges on {a.conns} connections: {size / n:.1f} bytes/exchange")
    os.unlink(out)


if __name__ == "__main__":
    main()
