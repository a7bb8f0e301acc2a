// node-postgres (pg) through the proxy with its default settings: simple
// queries, a named prepared statement run twice (Parse once, then Bind/
// Execute), an unnamed parameterised query, an error, a transaction.
// SELECTs echo a marker `mkNNN`. Prints {"conns": [exchanges]}.
// Env: PGHOST, PGPORT, PGUSER (node-postgres reads them), database test.
const { Client } = require("pg");

async function main() {
  const c = new Client({ database: "test" });
  await c.connect();
  const one = async (q) => (await c.query(q)).rows[0];
  if ((await one("select 'mk801' as m")).m !== "mk801") throw new Error("mk801");
  const named = (v) => ({ name: "fidelity_named", text: "select 'mk802-' || $1::text as m", values: [v] });
  if ((await one(named("a"))).m !== "mk802-a" || (await one(named("b"))).m !== "mk802-b") throw new Error("named");
  if ((await one({ text: "select $1::text || ' mk803' as m", values: ["x"] })).m !== "x mk803") throw new Error("mk803");
  try {
    await c.query("select 1/0");
    throw new Error("no error");
  } catch (e) {
    if (e.code !== "22012") throw e;
  }
  if ((await one("select 'mk804' as m")).m !== "mk804") throw new Error("mk804");
  await c.query("create temp table fidelity_node(a int)");
  await c.query("begin");
  await c.query({ text: "insert into fidelity_node values ($1)", values: [1] });
  await c.query("commit");
  await c.end();
  // Startup; mk801; the named statement twice; mk803; 1/0; mk804; create;
  // begin, insert, commit; Terminate.
  console.log(JSON.stringify({ conns: [12] }));
}
main().catch((e) => { console.error(e); process.exit(1); });
