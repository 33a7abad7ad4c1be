// ctx.import_mastra: @mastra/pg's own classes (MemoryPG, PgVector) write their tables in a schema
// of their own; an application role with read access imports them into its tenant; then
// CtxstoreMemory and CtxstoreVector read everything back and must answer what @mastra/pg answers
// from its tables.
import type { MastraDBMessage, StorageThreadType } from "@mastra/core/memory";
import type { MemoryStorage } from "@mastra/core/storage";
import { MemoryPG, PgVector } from "@mastra/pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { CtxstoreMemory } from "../src/memory.js";
import { CtxstoreVector } from "../src/vector.js";
import { hasPgvector, plain, referenceConfig, referenceSchema, tenantPool } from "./db.js";

const T0 = Date.parse("2026-02-01T08:00:00.000Z");
const at = (seconds: number) => new Date(T0 + seconds * 1000);

function text(id: string, threadId: string, resourceId: string, seconds: number, body: string,
              extra: Partial<MastraDBMessage> = {}): MastraDBMessage {
  return {
    id, threadId, resourceId, role: "user", createdAt: at(seconds),
    content: { format: 2, parts: [{ type: "text", text: body }], content: body } as MastraDBMessage["content"],
    ...extra,
  };
}

/** A turn with a tool call: the assistant's parts carry the invocation and its result. */
function toolTurn(id: string, threadId: string, resourceId: string, seconds: number): MastraDBMessage {
  return {
    id, threadId, resourceId, role: "assistant", createdAt: at(seconds), type: "v2",
    content: {
      format: 2,
      parts: [
        { type: "tool-invocation", toolInvocation: { state: "result", toolCallId: `call-${id}`, toolName: "weather",
                                                      args: { city: "Lyon" }, result: { temp: 21 } } },
        { type: "text", text: "21 °C in Lyon" },
      ],
      toolInvocations: [{ state: "result", toolCallId: `call-${id}`, toolName: "weather", args: { city: "Lyon" }, result: { temp: 21 } }],
    } as unknown as MastraDBMessage["content"],
  };
}

const { pool: owner, schema } = referenceSchema("mastra_import");
const reference = new MemoryPG({ pool: owner, schemaName: schema });
const app = tenantPool();
const ours = new CtxstoreMemory({ pool: app });

const threads: StorageThreadType[] = [
  { id: "it1", resourceId: "ada", title: "Trip", metadata: { topic: "travel", workingMemory: "# Ada\n- likes trains" },
    createdAt: at(-300), updatedAt: at(-300) },
  { id: "it2", resourceId: "ada", title: "Taxes", metadata: { topic: "money" }, createdAt: at(-200), updatedAt: at(-200) },
  { id: "it3", resourceId: "bob", title: "Hello", metadata: {}, createdAt: at(-100), updatedAt: at(-100) },
  { id: "gone", resourceId: "bob", title: "Pruned", metadata: {}, createdAt: at(-50), updatedAt: at(-50) },
];

async function importAll(): Promise<Record<string, [number, number]>> {
  const { rows } = await app.query("SELECT kind, imported, skipped FROM ctx.import_mastra($1, batch_size => 7)", [schema]);
  return Object.fromEntries(rows.map((r: { kind: string; imported: string; skipped: string }) =>
    [r.kind, [Number(r.imported), Number(r.skipped)]]));
}

beforeAll(async () => {
  await reference.init();
  for (const thread of threads) await reference.saveThread({ thread });
  const it1 = Array.from({ length: 23 }, (_, i) => i % 5 === 4
    ? toolTurn(`a${String(i).padStart(2, "0")}`, "it1", "ada", i)
    : text(`a${String(i).padStart(2, "0")}`, "it1", "ada", i, `turn ${i} ✓`, i % 2 ? { role: "assistant" } : {}));
  // two messages at the same instant: Mastra orders them by id
  const ties = [text("tie-b", "it2", "ada", 7, "second by id"), text("tie-a", "it2", "ada", 7, "first by id")];
  await reference.saveMessages({ messages: [...it1, ...ties, text("b1", "it3", "bob", 1, "hi bob"),
                                            text("g1", "gone", "bob", 2, "orphan to be")] });
  await reference.saveResource({ resource: { id: "ada", workingMemory: "# Ada\n- name: Ada", metadata: { plan: "gold" },
                                             createdAt: at(-400), updatedAt: at(-10) } });
  await reference.saveResource({ resource: { id: "bob", metadata: { plan: "free" }, createdAt: at(-400), updatedAt: at(-400) } });
  // @mastra/pg's prune deletes threads apart from their messages
  await owner.query(`DELETE FROM ${schema}.mastra_threads WHERE id = 'gone'`);
  if (hasPgvector) {
    const vectors = new PgVector({ id: "import-reference", ...referenceConfig, schemaName: schema });
    await vectors.createIndex({ indexName: "notes_l2", dimension: 3, metric: "euclidean", indexConfig: { type: "hnsw" } } as never);
    await vectors.upsert({ indexName: "notes_l2", vectors: [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]],
                           metadata: [{ k: 1 }, { k: 2, tag: "x" }, { k: 3 }, { k: 4, nested: { a: [1] } }], ids: ["n1", "n2", "n3", "n4"] });
    await vectors.createIndex({ indexName: "notes_cos", dimension: 2, metric: "cosine", indexConfig: { type: "hnsw" } } as never);
    await vectors.upsert({ indexName: "notes_cos", vectors: [[1, 0], [1, 1]], metadata: [{}, { k: 1 }], ids: ["c1", "c2"] });
    await vectors.disconnect();
  }
  // the application role reads the old tables
  const { rows } = await app.query("SELECT current_user AS me");
  await owner.query(`GRANT USAGE ON SCHEMA ${schema} TO ${rows[0].me}`);
  await owner.query(`GRANT SELECT ON ALL TABLES IN SCHEMA ${schema} TO ${rows[0].me}`);
});

afterAll(async () => {
  await app.query("SELECT ctx.delete_context(context_id) FROM ctx.list_threads(framework => 'mastra', max_rows => 100)");
  await app.end();
});

describe("ctx.import_mastra", () => {
  it("imports everything once, and nothing the second time", async () => {
    const first = await importAll();
    expect(first.threads).toEqual([3, 0]);
    expect(first.messages).toEqual([26, 0]);
    expect(first.resources).toEqual([2, 0]);
    expect(first.vector_indexes).toEqual(hasPgvector ? [2, 0] : [0, 0]);
    expect(first.vectors).toEqual(hasPgvector ? [6, 0] : [0, 0]);
    const again = await importAll();
    expect(again.threads).toEqual([0, 3]);
    expect(again.messages).toEqual([0, 26]);
    expect(again.resources).toEqual([0, 2]);
    expect(again.vectors).toEqual(hasPgvector ? [0, 6] : [0, 0]);
    const { rows } = await app.query("SELECT applied FROM ctx.import_mastra($1) WHERE kind = 'messages'", [schema]);
    expect(rows[0].applied.orphaned).toBe(1);
    expect(rows[0].applied.conflicts).toBe(0);
  });

  it("reads back what @mastra/pg reads from its tables", async () => {
    const same = async (call: (s: MemoryStorage) => Promise<unknown>) =>
      expect(plain(await call(ours))).toEqual(plain(await call(reference)));
    for (const t of threads.slice(0, 3)) await same((s) => s.getThreadById({ threadId: t.id }));
    await same((s) => s.listThreads({ filter: { resourceId: "ada" } }));
    await same((s) => s.listThreads({ filter: { resourceId: "ada" }, orderBy: { field: "updatedAt", direction: "ASC" } }));
    await same((s) => s.listThreads({ filter: { metadata: { topic: "travel" } } }));
    for (const threadId of ["it1", "it2", "it3"]) await same((s) => s.listMessages({ threadId, perPage: false }));
    await same((s) => s.listMessages({ threadId: "it1", perPage: 5, page: 2 }));
    await same((s) => s.listMessages({ threadId: "it1", perPage: 4, orderBy: { field: "createdAt", direction: "DESC" } }));
    await same((s) => s.listMessages({ threadId: "it1", perPage: 0,
                                         include: [{ id: "a10", withPreviousMessages: 2, withNextMessages: 2 }] }));
    await same((s) => s.listMessages({ threadId: "it1", filter: { dateRange: { start: at(3), end: at(9) } } }));
    await same((s) => s.listMessagesById({ messageIds: ["a04", "tie-a", "b1", "unknown"] }));
    // the orphan (its thread pruned) is not carried over: the import counted it
    expect((await ours.listMessagesById({ messageIds: ["g1"] })).messages).toEqual([]);
    // (a resource without working memory reads back without the key here, null there: the type
    // makes it optional)
    const resource = (resourceId: string) => (s: MemoryStorage) => s.getResourceById({ resourceId })
      .then((r) => r && { ...r, workingMemory: r.workingMemory ?? undefined, metadata: r.metadata ?? {} });
    await same(resource("ada"));
    await same(resource("bob"));
  });

  it.runIf(hasPgvector)("imports PgVector's indexes with their metric and vectors", async () => {
    const vectors = new PgVector({ id: "import-check", ...referenceConfig, schemaName: schema });
    const mine = new CtxstoreVector({ pool: app });
    try {
      for (const indexName of ["notes_l2", "notes_cos"]) {
        const theirs = await vectors.describeIndex({ indexName });
        const described = await mine.describeIndex({ indexName });
        expect({ ...described }).toEqual({ dimension: theirs.dimension, count: theirs.count, metric: theirs.metric });
      }
      for (const queryVector of [[1, 0.4, 0.1], [0.1, 0.2, 2], [-0.5, 2, 0.3]]) { // (no ties)
        const want = await vectors.query({ indexName: "notes_l2", queryVector, topK: 4, ef: 200 } as never);
        const got = await mine.query({ indexName: "notes_l2", queryVector, topK: 4 });
        expect(got.map((r) => r.id)).toEqual(want.map((r) => r.id));
        got.forEach((r, i) => {
          expect(r.score).toBeCloseTo(want[i]!.score, 5);
          expect(r.metadata).toEqual(want[i]!.metadata);
        });
      }
      const filtered = await mine.query({ indexName: "notes_l2", queryVector: [0, 1, 0], topK: 4, filter: { tag: "x" } });
      expect(filtered.map((r) => r.id)).toEqual(["n2"]);
    } finally {
      await vectors.disconnect();
    }
  });

  it("refuses a schema that is not @mastra/pg's", async () => {
    await expect(app.query("SELECT * FROM ctx.import_mastra('pg_catalog')")).rejects.toMatchObject({ code: "42P01" });
    await owner.query(`CREATE TABLE ${schema}.wrong (id int)`);
    await owner.query(`ALTER TABLE ${schema}.mastra_resources RENAME TO mastra_resources_old`);
    await owner.query(`ALTER TABLE ${schema}.wrong RENAME TO mastra_resources`);
    try {
      const { rows } = await app.query("SELECT current_user AS me");
      await owner.query(`GRANT SELECT ON ${schema}.mastra_resources TO ${rows[0].me}`);
      await expect(app.query("SELECT * FROM ctx.import_mastra($1)", [schema])).rejects.toMatchObject({ code: "42P16" });
    } finally {
      await owner.query(`DROP TABLE ${schema}.mastra_resources`);
      await owner.query(`ALTER TABLE ${schema}.mastra_resources_old RENAME TO mastra_resources`);
    }
  });
});
