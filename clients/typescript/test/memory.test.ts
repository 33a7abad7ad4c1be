// CtxstoreMemory side by side with @mastra/pg's MemoryPG (Mastra's own Postgres backend, the
// reference: Mastra publishes no storage test suite) on the same server: the same sequence of
// calls on both, every answer compared after normalization (Dates as ISO strings; a thread saved
// without metadata reads back {} here and null there). ctxstore runs as an application role of a
// tenant of its own; the reference as the cluster owner, in a schema of its own.
import { randomUUID } from "node:crypto";

import type { MastraDBMessage, StorageThreadType } from "@mastra/core/memory";
import type { MemoryStorage } from "@mastra/core/storage";
import { MemoryPG } from "@mastra/pg";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { CtxstoreMemory, plainText } from "../src/memory.js";
import { plain, referenceConfig, tenantPool } from "./db.js";

const T0 = Date.parse("2026-03-01T10:00:00.000Z");
const at = (seconds: number) => new Date(T0 + seconds * 1000);

function message(id: string, threadId: string, resourceId: string, seconds: number, text: string,
                 extra: Partial<MastraDBMessage> = {}, meta?: Record<string, unknown>): MastraDBMessage {
  const content: Record<string, unknown> = { format: 2, parts: [{ type: "text", text }], content: text };
  if (meta) content.metadata = meta;
  return {
    id, threadId, resourceId, role: seconds % 2 === 0 ? "user" : "assistant", createdAt: at(seconds),
    content: content as unknown as MastraDBMessage["content"], ...extra,
  };
}

function thread(t: StorageThreadType | null): unknown {
  if (!t) return null;
  const { updatedAt: _u, ...rest } = t;
  return plain({ ...rest, metadata: t.metadata ?? {} });
}

function messages(ms: MastraDBMessage[]): unknown {
  return ms.map((m) => plain({ ...m, createdAt: new Date(m.createdAt as Date) }));
}

type Outcome = { ok: unknown } | { error: string };
async function outcome(work: () => Promise<unknown>): Promise<Outcome> {
  try {
    return { ok: await work() };
  } catch (error) {
    return { error: (error as { id?: string }).id ? "MastraError" : "Error" };
  }
}

describe("CtxstoreMemory vs @mastra/pg MemoryPG", () => {
  const ours = new CtxstoreMemory({ pool: tenantPool() });
  const refPool = new pg.Pool({ ...referenceConfig, max: 4 });
  const schema = `mastra_ref_${randomUUID().replace(/-/g, "").slice(0, 12)}`;
  const ref = new MemoryPG({ pool: refPool, schemaName: schema });
  const stores: [string, MemoryStorage][] = [["ctxstore", ours], ["pg", ref]];

  /** Runs the same call on both stores and expects the same answer: a value, or (for the calls
   * marked `fails`) an error on both. */
  async function same<T>(call: (s: MemoryStorage) => Promise<T>, view: (x: T) => unknown = plain,
                         { fails = false } = {}): Promise<unknown> {
    const [a, b] = [await outcome(async () => view(await call(ours))), await outcome(async () => view(await call(ref)))];
    expect(a).toEqual(b);
    expect("error" in a).toBe(fails);
    return "ok" in a ? a.ok : undefined;
  }
  const FAILS = { fails: true };

  beforeAll(async () => {
    await refPool.query(`CREATE SCHEMA ${schema}`);
    await ours.init();
    await ref.init();
  });
  afterAll(async () => {
    await refPool.query(`DROP SCHEMA ${schema} CASCADE`);
    await refPool.end();
    await ours.pool.end();
  });

  const threads: StorageThreadType[] = [
    { id: "t1", resourceId: "r1", title: "First", metadata: { topic: "billing", n: 1 }, createdAt: at(-100), updatedAt: at(-100) },
    { id: "t2", resourceId: "r1", title: "Second", metadata: { topic: "sales", nested: { a: 1 } }, createdAt: at(-90), updatedAt: at(-90) },
    { id: "t3", resourceId: "r2", title: "Third", metadata: {}, createdAt: at(-80), updatedAt: at(-80) },
  ];

  it("saves, reads and updates threads alike", async () => {
    for (const t of threads) await same((s) => s.saveThread({ thread: t }), thread);
    for (const t of threads) await same((s) => s.getThreadById({ threadId: t.id }), thread);
    await same((s) => s.getThreadById({ threadId: "t1", resourceId: "r2" }), thread);
    await same((s) => s.getThreadById({ threadId: "missing" }), thread);
    await same((s) => s.updateThread({ id: "t1", title: "First, renamed", metadata: { n: 2, extra: true } }), thread);
    await same((s) => s.updateThread({ id: "t2", metadata: { topic: "support" } }), thread);
    await same((s) => s.updateThread({ id: "missing", title: "x" }), thread, FAILS);
    // the token limiter's update: what it returns is merged into the metadata
    await same((s) => s.updateThreadMetadata({ id: "t1", update: () => ({ memoryTokenLimiter: { tokens: 7 } }) }), thread);
    await same((s) => s.updateThreadMetadata({ id: "t1", update: () => undefined }), thread);
    await same((s) => s.updateThreadMetadata({ id: "missing", update: () => ({ x: 1 }) }), thread);
    await same((s) => s.getThreadById({ threadId: "t1" }), thread);
    // a full re-save replaces the metadata (title generation re-saves the thread)
    await same((s) => s.saveThread({ thread: { ...threads[2] as StorageThreadType, title: "Third (titled)", metadata: { k: "v" } } }), thread);
    await same((s) => s.getThreadById({ threadId: "t3" }), thread);
  });

  it("saves messages and lists them with every option alike", async () => {
    const t1 = Array.from({ length: 30 }, (_, i) =>
      message(`m${String(i).padStart(2, "0")}`, "t1", "r1", i, `message ${i} of t1`, {}, { tag: i % 3 === 0 ? "x" : "y", i }));
    const t2 = Array.from({ length: 5 }, (_, i) => message(`n${i}`, "t2", "r1", 100 + i, `message ${i} of t2`));
    const t3 = Array.from({ length: 3 }, (_, i) => message(`o${i}`, "t3", "r2", 200 + i, `message ${i} of t3`));
    const system = message("sys", "t1", "r1", 50, "you are helpful", { role: "system" });
    await same((s) => s.saveMessages({ messages: [...t1, system] }), (r) => messages(r.messages));
    await same((s) => s.saveMessages({ messages: t2 }), (r) => messages(r.messages));
    await same((s) => s.saveMessages({ messages: t3 }), (r) => messages(r.messages));
    await same((s) => s.saveMessages({ messages: [message("q", "missing", "r1", 1, "to nowhere")] }), (r) => messages(r.messages), FAILS);

    const list = (args: Parameters<MemoryStorage["listMessages"]>[0]) =>
      same((s) => s.listMessages(args), (r) => plain({ ...r, messages: messages(r.messages) }));
    await list({ threadId: "t1" });
    await list({ threadId: "t1", resourceId: "r1" });
    for (const page of [0, 1, 2, 3]) await list({ threadId: "t1", perPage: 8, page });
    await list({ threadId: "t1", perPage: 8, page: 1, orderBy: { field: "createdAt", direction: "DESC" } });
    await list({ threadId: "t1", perPage: 5, orderBy: { field: "createdAt", direction: "DESC" }, includeTotal: false });
    await list({ threadId: "t1", perPage: 5, page: 5, orderBy: { field: "createdAt", direction: "DESC" }, includeTotal: false });
    await list({ threadId: "t1", perPage: false });
    await list({ threadId: "t1", filter: { dateRange: { start: at(5), end: at(10) } } });
    await list({ threadId: "t1", filter: { dateRange: { start: at(5), end: at(10), startExclusive: true, endExclusive: true } } });
    await list({ threadId: "t1", filter: { dateRange: { start: at(20) } }, perPage: 4, page: 1 });
    await list({ threadId: "t1", filter: { metadata: { tag: "x" } } });
    await list({ threadId: "t1", filter: { metadata: { tag: "x" } }, perPage: 3, page: 1 });
    await list({ threadId: ["t1", "t2"], perPage: 10, page: 3 });
    await list({ threadId: ["t1", "t2", "t3"], resourceId: "r1", perPage: false });
    await list({ threadId: "t1", resourceId: "r2" });
    await list({ threadId: "missing" });
    await same((s) => s.listMessages({ threadId: "" }), plain, FAILS);
    await same((s) => s.listMessages({ threadId: "t1", page: -1 }), plain, FAILS);
    // include windows: around recalled messages, in the page, beyond it and in other threads
    await list({ threadId: "t1", perPage: 0, include: [{ id: "m10", withPreviousMessages: 2, withNextMessages: 1 }] });
    await list({ threadId: "t1", perPage: 0, include: [{ id: "n2", threadId: "t2", withPreviousMessages: 1, withNextMessages: 1 }] });
    await list({ threadId: "t1", perPage: 0, resourceId: "r1",
                 include: [{ id: "o1", withPreviousMessages: 1, withNextMessages: 1 }, { id: "m00", withNextMessages: 2 }] });
    await list({ threadId: "t1", perPage: 3, orderBy: { field: "createdAt", direction: "DESC" },
                 include: [{ id: "m05", withPreviousMessages: 1, withNextMessages: 1 }, { id: "m28", withPreviousMessages: 3 }] });
    await list({ threadId: "t1", perPage: 0 });
    await same((s) => s.listMessagesById({ messageIds: ["m03", "n1", "o2", "sys", "unknown"] }), (r) => messages(r.messages));
    await same((s) => s.listMessagesById({ messageIds: [] }), (r) => messages(r.messages));
  });

  it("upserts, moves, updates and deletes messages alike", async () => {
    const list = (threadId: string) => same((s) => s.listMessages({ threadId, perPage: false }), (r) => messages(r.messages));
    // a re-save keeps the first createdAt; the same id in another thread moves the message
    await same((s) => s.saveMessages({ messages: [message("m01", "t1", "r1", 999, "message 1, edited")] }), (r) => messages(r.messages));
    await same((s) => s.saveMessages({ messages: [message("m02", "t2", "r1", 2, "message 2, moved")] }), (r) => messages(r.messages));
    await same((s) => s.saveMessages({ messages: [message("dup", "t3", "r2", 300, "first"), message("dup", "t3", "r2", 301, "second")] }),
      (r) => messages(r.messages));
    await list("t1");
    await list("t2");
    await list("t3");
    await same((s) => s.updateMessages({ messages: [
      { id: "m04", content: { content: "message 4, updated" } },
      { id: "m06", content: { metadata: { reviewed: true } } },
      { id: "m07", role: "user" },
      { id: "m08", threadId: "t2" },
      { id: "unknown", content: { content: "nothing" } },
    ] }), (r) => messages([...r].sort((a, b) => a.id.localeCompare(b.id))));
    await list("t1");
    await list("t2");
    await same((s) => s.deleteMessages(["m09", "m10", "n0", "unknown"]));
    await list("t1");
    await list("t2");
    await same((s) => s.deleteMessages([]));
  });

  it("lists threads alike", async () => {
    await same((s) => s.saveThread({ thread: { id: "t4", resourceId: "r1", title: "Fourth", metadata: { topic: "billing", level: 2 },
                                               createdAt: at(-70), updatedAt: at(-70) } }), thread);
    const list = (args: Parameters<MemoryStorage["listThreads"]>[0]) =>
      same((s) => s.listThreads(args), (r) => plain({ ...r, threads: r.threads.map(thread) }));
    await list({});
    await list({ filter: { resourceId: "r1" } });
    await list({ filter: { resourceId: "r1" }, perPage: 2, page: 1 });
    await list({ filter: { resourceId: "r1" }, perPage: 2, page: 5 });
    await list({ filter: { resourceId: "r1" }, orderBy: { field: "createdAt", direction: "ASC" } });
    await list({ filter: { resourceId: "r1" }, orderBy: { field: "updatedAt", direction: "DESC" } });
    await list({ filter: { metadata: { topic: "billing" } } });
    await list({ filter: { resourceId: "r1", metadata: { topic: "billing", level: 2 } } });
    await list({ perPage: false });
    await same((s) => s.listThreads({ perPage: 2, page: -1 }), plain, FAILS);
    await same((s) => s.listThreads({ filter: { metadata: { "bad key": 1 } } }), plain, FAILS);
  });

  it("keeps resources and their working memory alike", async () => {
    const resource = (r: unknown) => {
      if (!r) return null;
      const { createdAt: _c, updatedAt: _u, ...rest } = r as Record<string, unknown>;
      return plain(rest);
    };
    await same((s) => s.getResourceById({ resourceId: "r1" }), resource);
    await same((s) => s.updateResource({ resourceId: "r1", workingMemory: "# User\n- name: Ada" }), resource);
    await same((s) => s.getResourceById({ resourceId: "r1" }), resource);
    await same((s) => s.updateResource({ resourceId: "r1", metadata: { plan: "gold", nested: { a: 1 } } }), resource);
    await same((s) => s.updateResource({ resourceId: "r1", metadata: { nested: { b: 2 } } }), resource);
    await same((s) => s.getResourceById({ resourceId: "r1" }), resource);
    const fresh = { id: "r9", workingMemory: "wm", metadata: { k: 1 }, createdAt: at(0), updatedAt: at(0) };
    await same((s) => s.saveResource({ resource: fresh }), resource);
    await same((s) => s.saveResource({ resource: fresh }), resource, FAILS);
    await same((s) => s.getResourceById({ resourceId: "r9" }), (r) => plain(r));
  });

  it("clones and deletes threads alike", async () => {
    const cloned = async (s: MemoryStorage, args: Parameters<MemoryStorage["cloneThread"]>[0]) => {
      const r = await s.cloneThread(args);
      const meta = { ...(r.thread.metadata ?? {}) } as Record<string, unknown>;
      const clone = { ...(meta.clone as Record<string, unknown>) };
      delete clone.clonedAt;
      meta.clone = clone;
      // new ids are random on both sides: compare the messages by the ids they were cloned from
      const back = Object.fromEntries(Object.entries(r.messageIdMap ?? {}).map(([k, v]) => [v, k]));
      if (clone.lastMessageId) clone.lastMessageId = back[clone.lastMessageId as string];
      return plain({
        thread: { ...thread({ ...r.thread, createdAt: at(0), metadata: meta }) as object },
        messages: r.clonedMessages.map((m) => ({ ...plain(m) as object, id: back[m.id] })),
      });
    };
    await same((s) => cloned(s, { sourceThreadId: "t1", newThreadId: "c1" }));
    await same((s) => cloned(s, { sourceThreadId: "t1", newThreadId: "c2", title: "Copy", resourceId: "r2",
                                  metadata: { copied: true }, options: { messageLimit: 4 } }));
    await same((s) => cloned(s, { sourceThreadId: "t1", newThreadId: "c3",
                                  options: { messageFilter: { startDate: at(10), endDate: at(20) } } }));
    await same((s) => cloned(s, { sourceThreadId: "t1", newThreadId: "c1" }), plain, FAILS);
    await same((s) => cloned(s, { sourceThreadId: "missing", newThreadId: "c9" }), plain, FAILS);
    await same((s) => s.deleteThread({ threadId: "t2" }));
    await same((s) => s.getThreadById({ threadId: "t2" }), thread);
    await same((s) => s.listMessages({ threadId: "t2" }), (r) => plain({ ...r, messages: messages(r.messages) }));
    await same((s) => s.listMessagesById({ messageIds: ["n1", "m02", "m08"] }), (r) => messages(r.messages));
    await same((s) => s.deleteThread({ threadId: "missing" }));
  });
});

describe("CtxstoreMemory in the database", () => {
  it("keeps a plain-text rendering for token windows, and Mastra's parts beside it", async () => {
    expect(plainText({ format: 2, parts: [{ type: "text", text: "a" }, { type: "text", text: "b" }] } as never)).toBe("a\nb");
    expect(plainText({ format: 2, content: "c", parts: [] } as never)).toBe("c");
    const toolOnly = { format: 2, parts: [{ type: "tool-invocation", toolInvocation: { toolName: "t" } }] };
    expect(plainText(toolOnly as never)).toBe(JSON.stringify(toolOnly.parts));
    const pool = tenantPool();
    const store = new CtxstoreMemory({ pool });
    try {
      await store.saveThread({ thread: { id: "w", resourceId: "r", title: "", metadata: {}, createdAt: at(0), updatedAt: at(0) } });
      await store.saveMessages({ messages: [message("a", "w", "r", 1, "hello there"), message("b", "w", "r", 2, "general kenobi")] });
      const { rows } = await pool.query(
        "SELECT w.content FROM ctx.get_thread('w') t, ctx.token_window(t.context_id, 1000) w ORDER BY w.seq");
      expect(rows.map((r) => r.content)).toEqual(["hello there", "general kenobi"]);
      await store.updateMessages({ messages: [{ id: "a", content: { content: "hello again" } }] });
      const history = await pool.query(
        "SELECT h.revision, h.current, h.content FROM ctx.get_thread('w') t, ctx.history(t.context_id) h WHERE h.message_id = 'a' ORDER BY h.revision");
      expect(history.rows).toEqual([
        { revision: 1, current: false, content: "hello there" },
        { revision: 2, current: true, content: "hello again" },
      ]);
      await store.deleteMessages(["b"]);
      const tomb = await pool.query(
        "SELECT h.deleted FROM ctx.get_thread('w') t, ctx.history(t.context_id) h WHERE h.message_id = 'b' ORDER BY h.revision");
      expect(tomb.rows.map((r) => r.deleted)).toEqual([false, true]);
    } finally {
      await pool.end();
    }
  });

  it("prepares its statements once per connection, or not at all with prepare: false", async () => {
    // (one tenant, calls one at a time: each pool runs them on its one connection)
    const tenant = `ts-${randomUUID()}`;
    const prepared = new CtxstoreMemory({ pool: tenantPool(tenant) });
    const unprepared = new CtxstoreMemory({ pool: tenantPool(tenant), prepare: false });
    const names = async (store: CtxstoreMemory) =>
      (await store.pool.query("SELECT name FROM pg_prepared_statements WHERE name LIKE 'ctxstore%' ORDER BY name")).rows.map((r) => r.name);
    try {
      await prepared.saveThread({ thread: { id: "prep", resourceId: "r", title: "", metadata: {}, createdAt: at(0), updatedAt: at(0) } });
      await prepared.saveMessages({ messages: Array.from({ length: 12 }, (_, i) => message(`p${i}`, "prep", "r", i, `message ${i}`)) });
      const calls = [
        (s: CtxstoreMemory) => s.listMessages({ threadId: "prep", perPage: 5, orderBy: { field: "createdAt", direction: "DESC" } }),
        (s: CtxstoreMemory) => s.listMessages({ threadId: "prep", perPage: 5, page: 1, includeTotal: false }),
        (s: CtxstoreMemory) => s.listMessages({ threadId: "prep", perPage: 0, include: [{ id: "p5", withPreviousMessages: 2, withNextMessages: 2 }] }),
      ];
      // (generic plans from the first run, as a named statement gets them after its fifth: the
      // session setting holds on each pool's one connection)
      for (const store of [prepared, unprepared]) await store.pool.query("SET plan_cache_mode = force_generic_plan");
      for (const call of [...calls, ...calls]) {
        expect(plain(await call(prepared))).toEqual(plain(await call(unprepared)));
      }
      const prefixes = (await names(prepared)).map((n: string) => n.replace(/_[0-9a-f]{12}$/, ""));
      expect(prefixes).toEqual(expect.arrayContaining(
        ["ctxstore_mastra_memory_threadPage", "ctxstore_mastra_memory_windows"]));
      expect(await names(unprepared)).toEqual([]);
    } finally {
      await prepared.pool.end();
      await unprepared.pool.end();
    }
  });

  it("sees only Mastra's threads, never another adapter's in the same tenant", async () => {
    const pool = tenantPool();
    const store = new CtxstoreMemory({ pool });
    try {
      // a LangGraph / LangChain thread (an id-mapping adapter's), with a message id Mastra also uses
      await pool.query("SELECT ctx.append(ctx.thread_context('lg-thread'), 'user', 'a checkpointed turn', message_id => 'same-id')");
      await store.saveThread({ thread: { id: "mastra-thread", resourceId: "r", title: "", metadata: {}, createdAt: at(0), updatedAt: at(0) } });
      await store.saveMessages({ messages: [message("same-id", "mastra-thread", "r", 1, "a Mastra turn")] });
      expect(await store.getThreadById({ threadId: "lg-thread" })).toBeNull();
      expect((await store.listThreads({})).threads.map((t) => t.id)).toEqual(["mastra-thread"]);
      const byId = await store.listMessagesById({ messageIds: ["same-id"] });
      expect(byId.messages.map((m) => [m.threadId, (m.content as { content?: string }).content])).toEqual([["mastra-thread", "a Mastra turn"]]);
      await expect(store.saveThread({ thread: { id: "lg-thread", resourceId: "r", title: "", metadata: {}, createdAt: at(0), updatedAt: at(0) } }))
        .rejects.toMatchObject({ code: "23505" });
      await store.dangerouslyClearAll();
      const { rows } = await pool.query("SELECT count(*)::int AS n FROM ctx.window(ctx.thread_context('lg-thread', create_missing => false), 10)");
      expect(rows[0].n).toBe(1);
      expect((await store.listThreads({})).total).toBe(0);
    } finally {
      await pool.end();
    }
  });

  it("seals the messages of threads it creates with encrypted: true", async () => {
    const pool = tenantPool();
    const store = new CtxstoreMemory({ pool, encrypted: true });
    try {
      await store.saveThread({ thread: { id: "sealed", resourceId: "r", title: "", metadata: {}, createdAt: at(0), updatedAt: at(0) } });
      await store.saveMessages({ messages: [message("s1", "sealed", "r", 1, "a sealed secret")] });
      const read = await store.listMessages({ threadId: "sealed" });
      expect((read.messages[0]?.content as { content?: string }).content).toBe("a sealed secret");
      const { rows } = await pool.query(
        `SELECT c.encrypted, m.content IS NULL AS no_plain_text, m.content_enc IS NOT NULL AS sealed,
                m.metadata = '{}'::jsonb AS no_plain_metadata
           FROM ctx.get_thread('sealed') t JOIN ctx.contexts c ON c.tenant = ctx.current_tenant() AND c.id = t.context_id
           JOIN ctx.messages m ON m.tenant = c.tenant AND m.context_id = c.id`);
      expect(rows).toEqual([{ encrypted: true, no_plain_text: true, sealed: true, no_plain_metadata: true }]);
    } finally {
      await pool.end();
    }
  });

  it("purges deleted messages for good with deleteMode purge", async () => {
    const pool = tenantPool();
    const store = new CtxstoreMemory({ pool, deleteMode: "purge" });
    try {
      await store.saveThread({ thread: { id: "p", resourceId: "r", title: "", metadata: {}, createdAt: at(0), updatedAt: at(0) } });
      await store.saveMessages({ messages: [message("gone", "p", "r", 1, "secret"), message("kept", "p", "r", 2, "fine")] });
      await store.deleteMessages(["gone"]);
      const { rows } = await pool.query("SELECT h.message_id FROM ctx.get_thread('p') t, ctx.history(t.context_id) h ORDER BY h.seq");
      expect(rows.map((r) => r.message_id)).toEqual(["kept"]);
    } finally {
      await pool.end();
    }
  });

  it("applies concurrent working-memory updates of one resource in turn, from separate pools", async () => {
    const tenant = `ts-${randomUUID()}`;
    const pools = Array.from({ length: 4 }, () => tenantPool(tenant));
    const stores = pools.map((pool) => new CtxstoreMemory({ pool }));
    try {
      await Promise.all(stores.flatMap((store, p) => Array.from({ length: 10 }, (_, i) =>
        store.updateResource({ resourceId: "shared", metadata: { [`k${p}_${i}`]: i } }))));
      const r = await stores[0]?.getResourceById({ resourceId: "shared" });
      expect(Object.keys(r?.metadata ?? {}).length).toBe(40);
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
  });
});
