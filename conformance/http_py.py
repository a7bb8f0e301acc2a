"""Python requests and httpx against the small HTTP upstream of the replayer
tests (GET /item/N answers `item N: v1`, POST /echo echoes the body),
through the proxy, each on one keep-alive connection. Markers `mkNNN` go in
what the response echoes. Prints {"conns": [exchanges per connection...]}.
Env: HTTP_PORT."""
import json, os
import httpx, requests

base = "http://127.0.0.1:%s" % os.environ["HTTP_PORT"]
conns = []
with requests.Session() as s:
    assert s.get(base + "/item/mk201").text == "item mk201: v1"
    assert s.post(base + "/echo", data=b"mk202").text == "mk202"
    assert s.get(base + "/item/mk203").text == "item mk203: v1"
    conns.append(3)
with httpx.Client() as c:
    assert c.get(base + "/item/mk204").text == "item mk204: v1"
    assert c.post(base + "/echo", content=b"mk205").text == "mk205"
    assert c.get(base + "/item/mk206").text == "item mk206: v1"
    conns.append(3)
print(json.dumps({"conns": conns}))
