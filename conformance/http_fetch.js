// Node's fetch (undici) against the small HTTP upstream through the proxy:
// three sequential GETs. Whether undici reuses the connection depends on
// timing (it was seen to open one, two or three), so this script counts
// exchanges in all, not per connection. Markers `mkNNN` go in what the
// response echoes. Prints {"exchanges": 3}. Env: HTTP_PORT.
const base = `http://127.0.0.1:${process.env.HTTP_PORT}`;
async function main() {
  const a = await (await fetch(`${base}/item/mk301`)).text();
  const b = await (await fetch(`${base}/item/mk302`)).text();
  const c = await (await fetch(`${base}/item/mk303`)).text();
  if (a !== "item mk301: v1" || b !== "item mk302: v1" || c !== "item mk303: v1") throw new Error([a, b, c].join("|"));
  console.log(JSON.stringify({ exchanges: 3 }));
}
main().catch((e) => { console.error(e); process.exit(1); });
