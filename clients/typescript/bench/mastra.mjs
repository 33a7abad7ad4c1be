// Mastra's memory on ctxstore vs @mastra/pg on one server (make bench, benches/peers.py section
// P9): the same data loaded into both, then the calls timed alternately. Prints one JSON object.
//   node bench/mastra.mjs '{"host": ..., "port": ..., "database": ..., "user": ..., "quick": false}'
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";

import { InMemoryStore, MastraCompositeStore } from "@mastra/core/storage";
import { Memory } from "@mastra/memory";
import { MemoryPG, PgVector } from "@mastra/pg";
import pg from "pg";

import { CtxstoreMemory, CtxstoreVector } from "../dist/index.js";

const cfg = JSON.parse(process.argv[2]);
const sizes = cfg.quick
  ? { thread: 1_000, table: 10_000, threads: 10, embedded: 1_000, calls: 10 }
  : { thread: 10_000, table: 100_000, threads: 100, embedded: 10_000, calls: 50 };
const DIM = 64;
const server = { host: cfg.host, port: cfg.port, database: cfg.database, user: cfg.user };
const schema = `mastra_bench_${randomUUID().replace(/-/g, "").slice(0, 8)}`;
// ctxstore as an application role under row-level security, as applications run it; the
// reference as the cluster owner (it creates its tables)
const refPool = new pg.Pool({ ...server, password: "unused", max: 4 });
await refPool.query(`CREATE SCHEMA ${schema}`);
await refPool.query(`DO $$ BEGIN
                       IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mastra_bench_app') THEN
                         CREATE ROLE mastra_bench_app LOGIN;
                       END IF;
                     END $$`);
await refPool.query("SELECT ctx.grant_access('mastra_bench_app')");
const ourPool = new pg.Pool({ ...server, user: "mastra_bench_app", options: "-c ctxstore.tenant=bench", max: 4 });
/** Both sides' tables analyzed after a load (the bench server runs without autovacuum). */
const analyze = async () => {
  await refPool.query("VACUUM ANALYZE ctx.messages, ctx.contexts, ctx.threads, ctx.memories, ctx.state");
  await refPool.query(`VACUUM ANALYZE ${schema}.mastra_messages, ${schema}.mastra_threads, ${schema}.mastra_resources`);
};

const stores = {
  "ctxstore": new CtxstoreMemory({ pool: ourPool }),
  "@mastra/pg": new MemoryPG({ pool: refPool, schemaName: schema }),
};
for (const s of Object.values(stores)) await s.init();

const words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau".split(" ");
let seed = 42;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const sentence = (n) => Array.from({ length: n }, () => words[Math.floor(rand() * words.length)]).join(" ");
function embed(text) {
  const v = new Array(DIM).fill(0);
  for (const w of text.split(" ")) {
    let h = 0;
    for (const c of w) h = (h * 31 + c.charCodeAt(0)) >>> 0;
    v[h % DIM] += 1;
    v[(h >>> 8) % DIM] += 0.5;
  }
  const n = Math.hypot(...v) || 1;
  return v.map((x) => x / n);
}
const embedder = {
  specificationVersion: "v2", provider: "bench", modelId: "bag-of-words", maxEmbeddingsPerCall: 1000, supportsParallelCalls: false,
  doEmbed: async ({ values }) => ({ embeddings: values.map(embed), usage: { tokens: values.length } }),
};

const T0 = Date.parse("2026-01-01T00:00:00Z");
function messages(threadId, resourceId, n, offset = 0) {
  return Array.from({ length: n }, (_, i) => {
    const text = sentence(12);
    return {
      id: `${threadId}-${i + offset}`, threadId, resourceId, role: i % 2 ? "assistant" : "user",
      createdAt: new Date(T0 + (i + offset) * 1000), content: { format: 2, parts: [{ type: "text", text }], content: text },
    };
  });
}
async function load(store, threadId, resourceId, n) {
  await store.saveThread({ thread: { id: threadId, resourceId, title: threadId, metadata: {}, createdAt: new Date(T0), updatedAt: new Date(T0) } });
  for (let i = 0; i < n; i += 1000) await store.saveMessages({ messages: messages(threadId, resourceId, Math.min(1000, n - i), i) });
}

/** Times the contenders' calls in alternation: {name: [ms...]} */
async function alternate(calls, fns) {
  const out = Object.fromEntries(Object.keys(fns).map((k) => [k, []]));
  for (const fn of Object.values(fns)) await fn(0); // warm
  for (let i = 0; i < calls; i++) {
    for (const [name, fn] of Object.entries(fns)) {
      const t = performance.now();
      await fn(i);
      out[name].push(performance.now() - t);
    }
  }
  return out;
}
const result = { sizes, workloads: {} };
const started = performance.now();

// 1. the last 40 of a long thread (with the total, as listMessages returns it by default, and
//    without, as Memory's history reads ask)
for (const s of Object.values(stores)) await load(s, "long", "r-long", sizes.thread);
await analyze();
for (const includeTotal of [true, false]) {
  result.workloads[`listMessages: last 40 of a ${sizes.thread.toLocaleString("en")}-message thread${includeTotal ? "" : ", includeTotal false"}`] =
    await alternate(sizes.calls, Object.fromEntries(Object.entries(stores).map(([k, s]) => [k, () =>
      s.listMessages({ threadId: "long", perPage: 40, orderBy: { field: "createdAt", direction: "DESC" }, includeTotal })])));
}

// 2. include windows (2 before, 2 after) around 10 messages of a large table, no page
const perThread = sizes.table / sizes.threads;
for (const s of Object.values(stores)) {
  for (let t = 0; t < sizes.threads; t++) await load(s, `t${t}`, "r-table", perThread);
}
await analyze();
const targets = Array.from({ length: sizes.calls + 1 }, () =>
  Array.from({ length: 10 }, () => `t${Math.floor(rand() * sizes.threads)}-${Math.floor(rand() * perThread)}`));
result.workloads[`listMessages: include windows around 10 messages of ${sizes.table.toLocaleString("en")}`] =
  await alternate(sizes.calls, Object.fromEntries(Object.entries(stores).map(([k, s]) => [k, (i) =>
    s.listMessages({ threadId: "t0", perPage: 0,
                     include: targets[i].map((id) => ({ id, withPreviousMessages: 2, withNextMessages: 2 })) })])));

// 3 and 4. Memory with semantic recall over a resource's embedded messages, then a whole turn
const memories = {
  "ctxstore": new Memory({
    storage: new MastraCompositeStore({ id: "ours", default: new InMemoryStore(), domains: { memory: stores.ctxstore } }),
    vector: new CtxstoreVector({ pool: ourPool }), embedder,
    options: { lastMessages: 10, semanticRecall: { topK: 4, messageRange: 2, scope: "resource" }, workingMemory: { enabled: true } },
  }),
  "@mastra/pg": new Memory({
    storage: new MastraCompositeStore({ id: "theirs", default: new InMemoryStore(), domains: { memory: stores["@mastra/pg"] } }),
    vector: new PgVector({ id: "pgvector", ...server, password: "unused", schemaName: schema }), embedder,
    options: { lastMessages: 10, semanticRecall: { topK: 4, messageRange: 2, scope: "resource",
                                                   indexConfig: { type: "hnsw", metric: "cosine" } }, workingMemory: { enabled: true } },
  }),
};
// ctxstore's HNSW index for these dimensions (PgVector builds its own for the index Memory makes)
await refPool.query("SELECT ctx.create_vector_index($1, 'cosine')", [DIM]);
const embeddedThreads = 10;
for (const m of Object.values(memories)) {
  for (let t = 0; t < embeddedThreads; t++) {
    const id = `e${t}`;
    await m.createThread({ threadId: id, resourceId: "r-embedded", title: id });
    const all = messages(id, "r-embedded", sizes.embedded / embeddedThreads);
    for (let i = 0; i < all.length; i += 500) await m.saveMessages({ messages: all.slice(i, i + 500) });
  }
  await m.updateWorkingMemory({ threadId: "e0", resourceId: "r-embedded", workingMemory: "# User\n- name: Ada" });
}
await analyze();
await refPool.query("VACUUM ANALYZE");
const queries = Array.from({ length: sizes.calls + 1 }, () => sentence(4));
result.workloads[`Memory.recall: semantic recall in a resource of ${sizes.embedded.toLocaleString("en")} embedded messages`] =
  await alternate(sizes.calls, Object.fromEntries(Object.entries(memories).map(([k, m]) => [k, (i) =>
    m.recall({ threadId: "e0", resourceId: "r-embedded", vectorSearchString: queries[i], threadConfig: { lastMessages: false } })])));
result.workloads["Memory turn: lastMessages 10 + semantic recall + working memory"] =
  await alternate(sizes.calls, Object.fromEntries(Object.entries(memories).map(([k, m]) => [k, async (i) => {
    await m.recall({ threadId: "e0", resourceId: "r-embedded", vectorSearchString: queries[i] });
    await m.getWorkingMemory({ threadId: "e0", resourceId: "r-embedded" });
  }])));

result.seconds = (performance.now() - started) / 1000;
await refPool.query(`DROP SCHEMA ${schema} CASCADE`);
await ourPool.end();
await refPool.end();
console.log(JSON.stringify(result));
