// Answers every request with Valle's JSON 404 after one D1 batch holding one idempotent
// insert, so the load generator's `floor` target measures one D1 round trip and nothing
// else: no validation, no model, no rate limit. /healthz answers 200 without writing.
let ready;

export default {
  async fetch(request, env) {
    if (new URL(request.url).pathname === "/healthz") {
      return new Response('{"status":"ok"}', { headers: { "content-type": "application/json" } });
    }
    ready ??= env.DB.exec(
      "CREATE TABLE IF NOT EXISTS writes (id TEXT PRIMARY KEY NOT NULL, at INTEGER NOT NULL)",
    );
    await ready;
    await env.DB.batch([
      env.DB.prepare("INSERT INTO writes (id, at) VALUES (?1, ?2) ON CONFLICT(id) DO NOTHING")
        .bind(crypto.randomUUID(), Date.now()),
    ]);
    return new Response('{"error":{"code":"E_NOT_FOUND"}}', {
      status: 404,
      headers: { "content-type": "application/json; charset=utf-8" },
    });
  },
};
