"""The demo worker: an OpenLambda-style worker whose lambdas each plant one
call pattern for `olanalyze` to find, or none.

    python3 app.py --port PORT --services http://127.0.0.1:SPORT [--fix-n-plus-one]

It serves `POST /run/<lambda>` (a JSON body holds the lambda's arguments),
`GET /shutdown` (answers, then exits 0). Run it under `oltrace wrap` (see
record.py): PostgreSQL is reached through PGHOST/PGPORT (database `test`,
user `postgres`), Redis through REDIS_URL, and the payment/notify service
(services.py) through HTTP_PROXY, so that every call is recorded.

Attribution by proof: each lambda takes the `traceparent` of its request and
passes its trace id on, as a sqlcommenter comment on every SQL statement
(BEGIN and COMMIT included, so the connection runs in autocommit mode and
sends them itself) and as a `traceparent` header on every outbound HTTP
call. Each call gets a new span id, as a tracing library would give each
call its own span; this also keeps psycopg from preparing statements, which
would add Parse and DEALLOCATE round trips of its own. Redis commands carry
no context: they are attributed by the connection window, which holds
because the driver sends one invocation at a time.

LAMBDAS below lists each lambda, the pattern it plants and the calls it
makes per invocation, per protocol; record.py writes them to
expected.json, and the test checks the recording against them.
"""

import argparse
import json
import os
import queue
import secrets
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import ThreadingHTTPServer

import psycopg
import redis
from jsonhttp import JsonHandler

# --- what each lambda plants, and the calls it makes per invocation ---------

BLOG_POSTS = 10  # the blog page lists this many posts, each with its comments
COMMENTS_QUERY_S = 0.006  # what one comments query costs (pg_sleep)
CHAT_MESSAGES = 14  # a chat room shows this many messages
NEARBY_FRIENDS = 4  # nearby pings this many friends at once
STOCK_QUERIES = 5  # the stock-alert cron's independent slow queries
SLOW_QUERY_S = 0.04  # each of them takes this long (pg_sleep)

LAMBDAS = {
    "blog": {"patterns": ["n_plus_one"], "calls": {"postgres": 1 + BLOG_POSTS, "redis": 0, "http": 0}},
    "feed": {"patterns": ["repeated_call"], "calls": {"postgres": 3, "redis": 2, "http": 0}},
    "stock_alert": {"patterns": ["serial_calls"], "calls": {"postgres": STOCK_QUERIES + 1, "redis": 0, "http": 0}},
    "nearby": {"patterns": ["fan_out"], "calls": {"postgres": 1, "redis": 1, "http": NEARBY_FRIENDS}},
    "chat": {"patterns": ["chatty"], "calls": {"postgres": 0, "redis": 2 + 3 * CHAT_MESSAGES, "http": 0}},
    "tickets": {"patterns": ["txn_across_wait"], "calls": {"postgres": 5, "redis": 0, "http": 1}},
    "post": {"patterns": [], "calls": {"postgres": 1, "redis": 1, "http": 0}},
    "autocomplete": {"patterns": [], "calls": {"postgres": 0, "redis": 1, "http": 0}},
}
# With --fix-n-plus-one the blog fetches every post's comments in one query.
FIXED_BLOG = {"patterns": [], "calls": {"postgres": 2, "redis": 0, "http": 0}}


def lambdas(fix_n_plus_one=False):
    """LAMBDAS as the worker runs them, with or without the N+1 fix."""
    return {**LAMBDAS, "blog": FIXED_BLOG} if fix_n_plus_one else LAMBDAS


# --- an invocation's context: its trace id, and calls that carry it ----------


class Invocation:
    """One invocation's downstream calls, each carrying its trace id."""

    def __init__(self, worker, name, traceparent):
        self.worker, self.name = worker, name
        parts = (traceparent or "").split("-")
        # No usable traceparent: start a trace of our own.
        self.trace_id = parts[1] if len(parts) == 4 and len(parts[1]) == 32 else secrets.token_hex(16)
        self.pg = None

    def traceparent(self):
        """A child span's traceparent: our trace id, a new span id."""
        return f"00-{self.trace_id}-{secrets.token_hex(8)}-01"

    def sql(self, query, params=None):
        """Runs one statement with a sqlcommenter comment; returns its rows."""
        commented = f"{query} /*action='{self.name}',traceparent='{self.traceparent()}'*/"
        cur = self.pg.execute(commented, params)
        return cur.fetchall() if cur.description else []

    def http(self, path, body):
        """POSTs JSON to the payment/notify service through HTTP_PROXY."""
        req = urllib.request.Request(
            self.worker.services + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "traceparent": self.traceparent()},
        )
        with self.worker.http_opener.open(req, timeout=10) as resp:
            return json.load(resp)


# --- the lambdas -------------------------------------------------------------


def blog(inv, args):
    """N+1: the front page lists the latest posts, then asks for each post's
    comments in a query of its own, BLOG_POSTS round trips of one statement.
    pg_sleep stands in for what a real comments query costs (a join to the
    authors, a sort), so the N+1 shows in time as well as in count."""
    posts = inv.sql("SELECT id, title FROM demo_posts ORDER BY created_at DESC, id LIMIT %s", (BLOG_POSTS,))
    if inv.worker.fix_n_plus_one:
        rows = inv.sql(
            "SELECT post_id, author, body FROM demo_comments, pg_sleep(%s) WHERE post_id = ANY(%s) ORDER BY id",
            (COMMENTS_QUERY_S, [p[0] for p in posts]),
        )
        comments = {p[0]: [r[1:] for r in rows if r[0] == p[0]] for p in posts}
    else:
        comments = {
            p[0]: inv.sql(
                "SELECT author, body FROM demo_comments, pg_sleep(%s) WHERE post_id = %s ORDER BY id",
                (COMMENTS_QUERY_S, p[0]),
            )
            for p in posts
        }
    return {"posts": [{"title": t, "comments": len(comments[i])} for i, t in posts]}


def feed(inv, args):
    """Repeated calls: the auth middleware reads the session and loads the
    user, then the handler does both again (same key, same statement and
    parameter) before it reads the user's posts."""
    r = inv.worker.redis
    session = f"demo:session:{args['session']}"
    user_id = int(r.get(session))
    inv.sql("SELECT id, name FROM demo_users WHERE id = %s", (user_id,))
    # The handler, written separately, asks again.
    user_id = int(r.get(session))
    name = inv.sql("SELECT id, name FROM demo_users WHERE id = %s", (user_id,))[0][1]
    posts = inv.sql("SELECT title FROM demo_posts WHERE author_id = %s ORDER BY id LIMIT 5", (user_id,))
    return {"user": name, "posts": [p[0] for p in posts]}


# Each stands in for a slow scan: pg_sleep in FROM runs once per query.
STOCK_SQL = [
    "SELECT symbol, max(price) FROM demo_stock_prices, pg_sleep(%s) GROUP BY symbol",
    "SELECT symbol, min(price) FROM demo_stock_prices, pg_sleep(%s) GROUP BY symbol",
    "SELECT symbol, threshold FROM demo_stock_alerts, pg_sleep(%s) WHERE active",
    "SELECT symbol, avg(price) FROM demo_stock_prices, pg_sleep(%s) WHERE day > 20 GROUP BY symbol",
    "SELECT max(day) FROM demo_stock_prices, pg_sleep(%s)",
]
assert len(STOCK_SQL) == STOCK_QUERIES


def stock_alert(inv, args):
    """Serial independent calls: a cron job runs STOCK_QUERIES slow queries
    (SLOW_QUERY_S each) one after another, though none needs another's
    result, then logs its run."""
    highs, lows, alerts, _, _ = [inv.sql(q, (SLOW_QUERY_S,)) for q in STOCK_SQL]
    low = dict(lows)
    firing = [s for s, threshold in alerts if low.get(s, threshold) < threshold]
    inv.sql("INSERT INTO demo_stock_runs (symbols, firing) VALUES (%s, %s)", (len(highs), len(firing)))
    return {"symbols": len(highs), "firing": firing}


def nearby(inv, args):
    """Fan-out: finds the user's nearest friends, then pings them all at
    once, NEARBY_FRIENDS notify calls outstanding together."""
    user = args["user"]
    inv.sql("UPDATE demo_users SET last_seen = now() WHERE id = %s", (user,))
    friends = inv.worker.redis.geosearch(
        "demo:geo", member=f"u{user}", radius=50, unit="km", sort="ASC", count=NEARBY_FRIENDS + 1
    )
    friends = [f.decode() for f in friends if f.decode() != f"u{user}"][:NEARBY_FRIENDS]
    with ThreadPoolExecutor(NEARBY_FRIENDS) as pool:
        sent = list(pool.map(lambda f: inv.http(f"/notify/{f[1:]}", {"from": user}), friends))
    return {"pinged": len(sent)}


def chat(inv, args):
    """Chatty: opening a room reads each message, its author's name and
    presence with one small Redis command each, 2 + 3 * CHAT_MESSAGES round
    trips of a few bytes, where a pipeline or one script would do."""
    r = inv.worker.redis
    room = args["room"]
    shown = []
    for mid in r.lrange(f"demo:chat:room:{room}", 0, CHAT_MESSAGES - 1):
        msg = r.hgetall(f"demo:chat:msg:{mid.decode()}")
        author = msg[b"author"].decode()
        name = r.get(f"demo:user:{author}:name")
        online = r.exists(f"demo:online:{author}")
        shown.append({"from": name.decode(), "online": bool(online), "text": msg[b"text"].decode()})
    r.set(f"demo:chat:seen:{args['user']}:{room}", len(shown))
    return {"messages": len(shown)}


def tickets(inv, args):
    """A transaction held across a wait: the seat is locked, then the
    payment service is called (about 60 ms) before the transaction commits,
    so the row lock and the connection are held for the whole call."""
    inv.sql("BEGIN")
    try:
        seat = inv.sql(
            "SELECT id FROM demo_seats WHERE concert_id = %s AND NOT sold ORDER BY id LIMIT 1 FOR UPDATE",
            (args["concert"],),
        )[0][0]
        paid = inv.http("/pay", {"seat": seat, "card": "4242"})
        inv.sql("UPDATE demo_seats SET sold = true WHERE id = %s", (seat,))
        inv.sql("INSERT INTO demo_orders (seat_id, payment) VALUES (%s, %s)", (seat, paid["payment"]))
        inv.sql("COMMIT")
    except BaseException:
        inv.sql("ROLLBACK")
        raise
    return {"seat": seat}


def post(inv, args):
    """Clean: one blog post with its comment count, and a view counter."""
    row = inv.sql(
        "SELECT p.title, count(c.id) FROM demo_posts p LEFT JOIN demo_comments c ON c.post_id = p.id"
        " WHERE p.id = %s GROUP BY p.id",
        (args["post"],),
    )[0]
    views = inv.worker.redis.incr(f"demo:views:{args['post']}")
    return {"title": row[0], "comments": row[1], "views": views}


def autocomplete(inv, args):
    """Clean: one ZRANGEBYLEX over a sorted set of words."""
    prefix = args["prefix"]
    words = inv.worker.redis.zrangebylex("demo:autocomplete", f"[{prefix}", f"[{prefix}\xff", start=0, num=8)
    return {"words": [w.decode() for w in words]}


HANDLERS = {f.__name__: f for f in (blog, feed, stock_alert, nearby, chat, tickets, post, autocomplete)}
assert HANDLERS.keys() == LAMBDAS.keys()


# --- the worker --------------------------------------------------------------


class Worker:
    """Connections shared by the lambdas, opened before the first request
    (so no invocation pays for, or is charged with, a connection's setup)."""

    def __init__(self, services, fix_n_plus_one, pg_connections):
        self.services = services.rstrip("/")
        self.fix_n_plus_one = fix_n_plus_one
        # Default settings (sslmode included); autocommit, so that BEGIN and
        # COMMIT are statements the lambda sends, with their comment.
        self.pg_pool = queue.Queue()
        for _ in range(pg_connections):
            self.pg_pool.put(psycopg.connect("dbname=test user=postgres", autocommit=True))
        self.redis = redis.Redis.from_url(os.environ["REDIS_URL"])
        self.redis.ping()
        proxy = os.environ.get("http_proxy") or os.environ.get("HTTP_PROXY")
        # Every outbound call goes through the recording forward proxy,
        # whatever NO_PROXY says.
        self.http_opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy} if proxy else {}))

    @contextmanager
    def pg(self):
        conn = self.pg_pool.get()
        try:
            yield conn
        finally:
            self.pg_pool.put(conn)

    def invoke(self, name, traceparent, args):
        inv = Invocation(self, name, traceparent)
        with self.pg() as inv.pg:
            return HANDLERS[name](inv, args)


class Handler(JsonHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        name = self.path.removeprefix("/run/")
        if not self.path.startswith("/run/") or name not in HANDLERS:
            return self.reply(404, {"error": f"no lambda {self.path}"})
        try:
            result = self.server.worker.invoke(name, self.headers.get("traceparent"), json.loads(body or b"{}"))
        except Exception as e:  # the lambda's failure is its response
            return self.reply(500, {"error": repr(e)})
        self.reply(200, result)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--services", required=True, help="base URL of services.py")
    ap.add_argument("--fix-n-plus-one", action="store_true", help="the blog batches its comment query")
    ap.add_argument("--pg-connections", type=int, default=2)
    a = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    server.daemon_threads = True
    server.worker = Worker(a.services, a.fix_n_plus_one, a.pg_connections)
    print(f"demo worker ready routes={os.environ.get('OLTRACE_ROUTES', '')}", flush=True)
    server.serve_forever()
    print("demo worker stopped", flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
