"""Seeds the demo's data, the same every time: PostgreSQL tables `demo_*` in
database `test` and Redis keys `demo:*`. Run before each recording (record.py
does), straight to the servers, not through the recording proxy.

    python3 seed.py [--pg CONNINFO] [--redis URL]
"""

import argparse
import random

import psycopg
import redis

USERS = 60
POSTS = 40
CONCERTS = 3
SEATS = 400  # per concert, more than a recording sells
ROOMS = 3
SYMBOLS = ["AAPL", "AMZN", "GOOG", "META", "MSFT", "NFLX", "NVDA", "TSLA"]
WORDS = """
alpine amber anchor apple arcade aspen atlas aurora autumn avalanche badger bamboo banjo barley basil
beacon birch bison blossom boulder bramble breeze bronze cactus canyon caramel cedar cello chestnut
cinder citrus clover cobalt comet copper coral cotton crimson crystal cypress dahlia delta desert
dolphin dune eagle ember falcon fennel fern fjord flint forest galaxy garnet glacier granite harbor
hazel heron hickory horizon indigo iris ivory jasmine juniper kestrel lagoon lantern lavender lemon
lilac linen lotus lunar maple marble meadow mercury mint monsoon mosaic nectar nutmeg oasis olive
onyx orchid osprey pebble pepper pine plum prairie quartz raven reef river saffron sage sierra
""".split()

SCHEMA = """
DROP TABLE IF EXISTS demo_users, demo_posts, demo_comments, demo_stock_prices, demo_stock_alerts,
  demo_stock_runs, demo_seats, demo_orders;
CREATE TABLE demo_users (id int PRIMARY KEY, name text NOT NULL, last_seen timestamptz);
CREATE TABLE demo_posts (id int PRIMARY KEY, author_id int NOT NULL, title text NOT NULL,
  created_at timestamptz NOT NULL);
CREATE TABLE demo_comments (id serial PRIMARY KEY, post_id int NOT NULL, author text NOT NULL, body text NOT NULL);
CREATE INDEX ON demo_comments (post_id);
CREATE INDEX ON demo_posts (author_id);
CREATE TABLE demo_stock_prices (symbol text, day int, price numeric(10, 2), PRIMARY KEY (symbol, day));
CREATE TABLE demo_stock_alerts (id serial PRIMARY KEY, symbol text NOT NULL, threshold numeric(10, 2), active bool);
CREATE TABLE demo_stock_runs (id serial PRIMARY KEY, ran_at timestamptz DEFAULT now(), symbols int, firing int);
CREATE TABLE demo_seats (id serial PRIMARY KEY, concert_id int NOT NULL, sold bool NOT NULL DEFAULT false);
CREATE INDEX ON demo_seats (concert_id, id) WHERE NOT sold;
CREATE TABLE demo_orders (id serial PRIMARY KEY, seat_id int NOT NULL, payment text NOT NULL,
  created_at timestamptz DEFAULT now());
"""


def seed_pg(conninfo):
    rnd = random.Random(19)
    with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(1919)")  # two seeders at once take turns
        cur.execute(SCHEMA)
        cur.executemany("INSERT INTO demo_users VALUES (%s, %s, NULL)", [(u, f"user{u}") for u in range(1, USERS + 1)])
        cur.executemany(
            "INSERT INTO demo_posts VALUES (%s, %s, %s, timestamptz '2026-01-01' + %s * interval '1 hour')",
            [(p, (p - 1) % 20 + 1, f"Post {p}: {rnd.choice(WORDS)} and {rnd.choice(WORDS)}", p) for p in range(1, POSTS + 1)],
        )
        cur.executemany(
            "INSERT INTO demo_comments (post_id, author, body) VALUES (%s, %s, %s)",
            [
                (p, f"user{rnd.randint(1, USERS)}", " ".join(rnd.choices(WORDS, k=8)))
                for p in range(1, POSTS + 1)
                for _ in range(rnd.randint(2, 6))
            ],
        )
        cur.executemany(
            "INSERT INTO demo_stock_prices VALUES (%s, %s, %s)",
            [(s, d, round(rnd.uniform(50, 500), 2)) for s in SYMBOLS for d in range(1, 31)],
        )
        cur.executemany(
            "INSERT INTO demo_stock_alerts (symbol, threshold, active) VALUES (%s, %s, %s)",
            [(s, round(rnd.uniform(50, 200), 2), i % 3 != 0) for i, s in enumerate(SYMBOLS * 2)],
        )
        cur.execute(
            "INSERT INTO demo_seats (concert_id) SELECT c FROM generate_series(1, %s) c, generate_series(1, %s) s ORDER BY c, s",
            (CONCERTS, SEATS),
        )


def seed_redis(url):
    rnd = random.Random(19)
    r = redis.Redis.from_url(url)
    old = list(r.scan_iter("demo:*", count=1000))
    pipe = r.pipeline(transaction=False)
    if old:
        pipe.delete(*old)
    for s in range(1, 21):
        pipe.set(f"demo:session:s{s}", s)
    for u in range(1, USERS + 1):
        # Everyone within a few km of one another.
        pipe.geoadd("demo:geo", (13.40 + rnd.uniform(-0.05, 0.05), 52.52 + rnd.uniform(-0.03, 0.03), f"u{u}"))
        pipe.set(f"demo:user:{u}:name", f"user{u}")
        if u % 2:
            pipe.set(f"demo:online:{u}", 1)
    for room in range(1, ROOMS + 1):
        ids = [room * 100 + i for i in range(14)]
        for i, mid in enumerate(ids):
            # Each message in a room by a different author.
            pipe.hset(f"demo:chat:msg:{mid}", mapping={"author": (room - 1) * 14 + i + 1, "text": " ".join(rnd.choices(WORDS, k=5))})
        pipe.rpush(f"demo:chat:room:{room}", *ids)
    pipe.zadd("demo:autocomplete", {w: 0 for w in WORDS})
    pipe.execute()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pg", default="host=127.0.0.1 port=5432 dbname=test user=postgres")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379")
    a = ap.parse_args()
    seed_pg(a.pg)
    seed_redis(a.redis)


if __name__ == "__main__":
    main()
