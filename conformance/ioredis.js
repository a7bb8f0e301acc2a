// ioredis against Redis through the proxy: plain commands, an explicit
// pipeline, MULTI/EXEC, and auto-pipelining (commands issued in the same
// tick go out in one write). Markers `mkNNN` only go in ECHO. Prints
// {"conns": [exchanges per connection...]}. Env: REDIS_PORT, KEY_PREFIX.
const Redis = require("ioredis");
const port = Number(process.env.REDIS_PORT), k = process.env.KEY_PREFIX;
// ioredis's handshake: CLIENT SETINFO LIB-NAME and LIB-VER, then the
// ready check (INFO).
const HANDSHAKE = 3;

async function main() {
  const conns = [];
  const r = new Redis({ port, host: "127.0.0.1" });
  let n = HANDSHAKE;
  await r.set(k + ":a", "v1");
  if ((await r.echo("mk101")) !== "mk101") throw new Error("echo");
  n += 2;
  const res = await r.pipeline().echo("mk102").set(k + ":b", "v2").get(k + ":b").echo("mk103").exec();
  if (res[3][1] !== "mk103") throw new Error("pipeline " + JSON.stringify(res));
  n += 4;
  const tx = await r.multi().set(k + ":c", "v3").echo("mk104").exec();
  if (tx[1][1] !== "mk104") throw new Error("multi " + JSON.stringify(tx));
  n += 4; // MULTI, SET, ECHO, EXEC
  if ((await r.del(k + ":a", k + ":b", k + ":c")) !== 3) throw new Error("del");
  n += 1;
  r.disconnect(); // closes the socket: no QUIT
  conns.push(n);

  const auto = new Redis({ port, host: "127.0.0.1", enableAutoPipelining: true });
  const echoes = await Promise.all(["mk105", "mk106", "mk107", "mk108"].map((m) => auto.echo(m)));
  if (echoes.join(",") !== "mk105,mk106,mk107,mk108") throw new Error("auto " + echoes);
  await auto.quit();
  conns.push(HANDSHAKE + 4 + 1); // 4 ECHO, QUIT
  console.log(JSON.stringify({ conns }));
}
main().catch((e) => { console.error(e); process.exit(1); });
