"""redis-py against Redis through the proxy: RESP2 and RESP3, a pipeline,
MULTI/EXEC (one clean, one with a queued error), BLPOP timing out, a
client-side caching invalidation (a RESP3 push between replies), pub/sub
in RESP2 and RESP3. Markers `mkNNN` only go in commands whose reply echoes
them (ECHO). Prints {"conns": [exchanges per connection...]}.
Env: REDIS_PORT, KEY_PREFIX."""
import json, os, redis

port, k = int(os.environ["REDIS_PORT"]), os.environ["KEY_PREFIX"]
# redis-py 8's handshake: CLIENT MAINT_NOTIFICATIONS (RESP3 only), CLIENT
# SETINFO LIB-NAME and LIB-VER, after HELLO 3 for RESP3.
HANDSHAKE = {2: 2, 3: 4}
conns = []


def client(protocol):
    c = redis.Redis(port=port, protocol=protocol, single_connection_client=True)
    conns.append(HANDSHAKE[protocol])
    return c, len(conns) - 1


r3, i3 = client(3)
r3.set(k + ":a", "v1")
assert r3.get(k + ":a") == b"v1"
assert r3.echo("mk001") == b"mk001"
conns[i3] += 3
# Pipelines take a connection of their own from the pool.
conns.append(HANDSHAKE[3])
ip = len(conns) - 1
p = r3.pipeline(transaction=False)
p.echo("mk002").set(k + ":b", "v2").get(k + ":b").echo("mk003")
assert p.execute() == [b"mk002", True, b"v2", b"mk003"]
conns[ip] += 4
p = r3.pipeline(transaction=True)
p.set(k + ":c", "v3").echo("mk004").get(k + ":c")
assert p.execute() == [True, b"mk004", b"v3"]
conns[ip] += 5  # MULTI, 3 queued, EXEC
p = r3.pipeline(transaction=True)
p.set(k + ":d", "v4").execute_command("NOSUCHCMD")
try:
    p.execute()
    raise SystemExit("no EXECABORT")
except redis.ResponseError:
    pass
conns[ip] += 4  # MULTI, SET, NOSUCHCMD (refused), EXEC (EXECABORT)
assert r3.blpop([k + ":empty"], timeout=0.1) is None
conns[i3] += 1
# Client-side caching: the client's own write invalidates the key it
# tracks, and the invalidation push arrives between replies (on one
# connection, so that replay keeps the order).
r3.execute_command("CLIENT", "TRACKING", "ON")
assert r3.get(k + ":a") == b"v1"
r3.set(k + ":a", "v1b")
assert r3.echo("mk005") == b"mk005"
r3.execute_command("CLIENT", "TRACKING", "OFF")
conns[i3] += 5
r2, i2 = client(2)
# Pub/sub in RESP2 and RESP3.
for proto in (2, 3):
    sub = redis.Redis(port=port, protocol=proto).pubsub()
    sub.subscribe(k + ":ch")
    assert sub.get_message(timeout=2)["type"] == "subscribe"
    assert r2.publish(k + ":ch", "hello%d" % proto) == 1
    m = sub.get_message(timeout=2)
    assert m and m["data"] == b"hello%d" % proto, m
    sub.unsubscribe()
    assert sub.get_message(timeout=2)["type"] == "unsubscribe"
    sub.close()
    conns.append(HANDSHAKE[proto] + 2)  # SUBSCRIBE, UNSUBSCRIBE
    conns[i2] += 1
assert r2.delete(k + ":a", k + ":b", k + ":c") == 3
conns[i2] += 1
print(json.dumps({"conns": conns}))
