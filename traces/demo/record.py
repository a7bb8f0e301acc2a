#!/usr/bin/env python3
"""Re-records the demo traces: the demo worker (app.py) under `oltrace wrap`,
driven through its http route by a fixed, seeded mix of invocations.

    python3 traces/demo/record.py                 # writes traces/demo/{demo,demo-fixed}.mp
    DEMO_INVOCATIONS=40 python3 traces/demo/record.py --out-dir /tmp/d --only plain

For each recording it:
1. seeds the data (seed.py), straight to PostgreSQL and Redis;
2. starts the payment/notify service (services.py) and a relay that delays
   Redis's replies as a network would (netdelay.py);
3. runs `oltrace wrap` with an http route in front of the worker, routes to
   PostgreSQL and Redis behind it, the forward proxy for its outbound calls
   and --inject-traceparent, so the worker can propagate a trace id;
4. sends the invocations one at a time (so that the Redis commands, which
   carry no trace id, are still attributed, by the connection window);
5. stops the worker with GET /shutdown, and writes EXPECTED next to the trace:
   each lambda's planted patterns, invocations and calls per invocation.

Recordings: `demo.mp` (expected.json) and `demo-fixed.mp`
(expected-fixed.json), the same mix with the blog's N+1 fixed.
"""

import argparse
import collections
import http.client
import json
import os
import random
import socket
import subprocess
import sys
from pathlib import Path

import psycopg

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))
import app  # noqa: E402  (the lambdas' declared patterns and calls)
import seed  # noqa: E402

# How often each lambda is invoked, relative to the others.
WEIGHTS = {"blog": 15, "feed": 10, "stock_alert": 5, "nearby": 8, "chat": 10, "tickets": 7, "post": 20, "autocomplete": 25}
assert WEIGHTS.keys() == app.LAMBDAS.keys()

VARIANTS = {
    # name: (trace, expected labels, worker flags)
    "plain": ("demo.mp", "expected.json", []),
    "fixed": ("demo-fixed.mp", "expected-fixed.json", ["--fix-n-plus-one"]),
}


def args_for(name, rnd):
    """The JSON arguments of one invocation of `name`."""
    return {
        "blog": lambda: {},
        "feed": lambda: {"session": f"s{rnd.randint(1, 20)}"},
        "stock_alert": lambda: {},
        "nearby": lambda: {"user": rnd.randint(1, seed.USERS)},
        "chat": lambda: {"room": rnd.randint(1, seed.ROOMS), "user": rnd.randint(1, seed.USERS)},
        "tickets": lambda: {"concert": rnd.randint(1, seed.CONCERTS)},
        "post": lambda: {"post": rnd.randint(1, seed.POSTS)},
        "autocomplete": lambda: {"prefix": rnd.choice(seed.WORDS)[:2]},
    }[name]()


def mix(count, rnd_seed):
    """`count` invocations as (request id, lambda, args): every lambda once
    in turn, then a weighted draw; the same for the same seed."""
    rnd = random.Random(rnd_seed)
    names = list(WEIGHTS)[:count]
    names += rnd.choices(list(WEIGHTS), weights=list(WEIGHTS.values()), k=count - len(names))
    return [(f"demo-{i:04}-{name}", name, args_for(name, rnd)) for i, name in enumerate(names)]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ready_line(proc, prefix):
    """Reads `proc`'s stdout up to the line starting with `prefix`; returns
    the rest of that line."""
    for line in proc.stdout:
        if line.startswith(prefix):
            return line[len(prefix):].strip()
    sys.exit(f"record.py: {proc.args[0]} exited before printing {prefix!r} (exit {proc.wait()})")


def start(script, *args):
    """Starts one of the demo's helper processes; returns it and its port."""
    proc = subprocess.Popen([sys.executable, HERE / script, *args], stdout=subprocess.PIPE, text=True)
    return proc, int(ready_line(proc, "demo ").split("port=")[1])


DIRECT_PG = "host=127.0.0.1 port=5432 dbname=test user=postgres"


def record(oltrace, trace, flags, invocations, rnd_seed, redis_delay_ms):
    """Records one run; returns the invocations sent per lambda."""
    seed.seed_pg(DIRECT_PG)
    seed.seed_redis("redis://127.0.0.1:6379")
    helpers = []
    try:
        helpers.append(start("services.py"))
        helpers.append(start("netdelay.py", "--upstream", "127.0.0.1:6379", "--delay-ms", str(redis_delay_ms)))
        (_, services_port), (_, redis_port) = helpers
        worker_port = free_port()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("DATABASE_URL", None)
        env.pop("REDIS_URL", None)
        wrap = subprocess.Popen(
            [oltrace, "wrap", "-o", trace,
             "--route", f"http:0=127.0.0.1:{worker_port}",
             "--route", "postgres:0=127.0.0.1:5432",
             "--route", f"redis:0=127.0.0.1:{redis_port}",
             "--forward-proxy", "0", "--inject-traceparent", "--source", "demo-worker",
             "--", sys.executable, HERE / "app.py", "--port", str(worker_port),
             "--services", f"http://127.0.0.1:{services_port}", *flags],
            env=env, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            routes = ready_line(wrap, "demo worker ready routes=").split()
            gateway = next(r.rsplit("=", 1)[1] for r in routes if r.startswith("http:"))
            host, port = gateway.rsplit(":", 1)
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
            sent = collections.Counter()
            for request_id, name, args in mix(invocations, rnd_seed):
                conn.request("POST", f"/run/{name}", json.dumps(args), {"x-request-id": request_id, "Content-Type": "application/json"})
                resp = conn.getresponse()
                body = resp.read()
                if resp.status != 200:
                    sys.exit(f"record.py: {request_id}: {resp.status} {body.decode(errors='replace')}")
                sent[name] += 1
            conn.request("GET", "/shutdown")
            conn.getresponse().read()
            conn.close()
            for _ in wrap.stdout:  # the worker's last lines
                pass
            if (code := wrap.wait(timeout=30)) != 0:
                sys.exit(f"record.py: oltrace wrap exited {code}")
            return sent
        finally:
            if wrap.poll() is None:
                wrap.terminate()
                wrap.wait()
    finally:
        for proc, _ in helpers:
            proc.terminate()
            proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--invocations", type=int, default=int(os.environ.get("DEMO_INVOCATIONS", 300)))
    ap.add_argument("--seed", type=int, default=7, help="the mix's random seed")
    ap.add_argument("--out-dir", type=Path, default=HERE)
    ap.add_argument("--only", choices=VARIANTS, help="record one of the two traces")
    ap.add_argument("--oltrace", help="the oltrace binary (default: built here with cargo)")
    ap.add_argument("--redis-delay-ms", type=float, default=0.2, help="the network delay netdelay.py adds to Redis replies")
    a = ap.parse_args()
    if a.invocations < len(WEIGHTS):
        ap.error(f"--invocations must be at least {len(WEIGHTS)}, one per lambda")
    oltrace = a.oltrace
    if oltrace is None:
        subprocess.run(["cargo", "build", "--quiet", "--release", "--bin", "oltrace"], cwd=REPO, check=True)
        oltrace = REPO / "target" / "release" / "oltrace"
    a.out_dir.mkdir(parents=True, exist_ok=True)
    # Two recordings at once (two test runs on one machine) would reseed
    # each other's tables and keys mid-run: they take turns.
    lock = psycopg.connect(DIRECT_PG, autocommit=True)
    lock.execute("SELECT pg_advisory_lock(hashtext('oltrace traces/demo/record.py'))")
    for variant in [a.only] if a.only else VARIANTS:
        trace_name, expected_name, flags = VARIANTS[variant]
        trace = a.out_dir / trace_name
        trace.unlink(missing_ok=True)
        sent = record(oltrace, trace, flags, a.invocations, a.seed, a.redis_delay_ms)
        lambdas = app.lambdas(fix_n_plus_one="--fix-n-plus-one" in flags)
        expected = {
            "trace": trace_name,
            "recorded_with": f"traces/demo/record.py --invocations {a.invocations} --seed {a.seed} --redis-delay-ms {a.redis_delay_ms}",
            "invocations": sum(sent.values()),
            "lambdas": {name: spec["patterns"] for name, spec in lambdas.items()},
            "invocations_per_lambda": {name: sent[name] for name in lambdas},
            "calls_per_invocation": {name: spec["calls"] for name, spec in lambdas.items()},
        }
        (a.out_dir / expected_name).write_text(json.dumps(expected, indent=2) + "\n")
        print(f"record.py: {trace} ({trace.stat().st_size} bytes), {expected['invocations']} invocations", file=sys.stderr)


if __name__ == "__main__":
    main()
