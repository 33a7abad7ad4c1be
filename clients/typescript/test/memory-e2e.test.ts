// Mastra's Memory (@mastra/memory) on a MastraCompositeStore whose memory domain is ctxstore,
// the other domains coming from Mastra's in-memory store: the same conversation flow as on
// Memory over @mastra/pg's MemoryPG must give the same answers (recall windows, working memory
// of both scopes, thread updates and lists, deletes).
import type { MastraDBMessage } from "@mastra/core/memory";
import { Memory } from "@mastra/memory";
import { MemoryPG } from "@mastra/pg";
import { afterAll, describe, expect, it } from "vitest";

import { CtxstoreMemory } from "../src/memory.js";
import { composite, referenceSchema, tenantPool } from "./db.js";

const T0 = Date.parse("2026-05-01T08:00:00.000Z");

function conversation(threadId: string, resourceId: string): MastraDBMessage[] {
  return Array.from({ length: 12 }, (_, i) => ({
    id: `${threadId}-m${i}`,
    threadId,
    resourceId,
    role: i % 2 === 0 ? "user" : "assistant",
    createdAt: new Date(T0 + i * 1000),
    content: { format: 2, parts: [{ type: "text", text: `turn ${i}` }], content: `turn ${i}` },
  }) as MastraDBMessage);
}

const view = (ms: MastraDBMessage[]) =>
  ms.map((m) => ({ id: m.id, role: m.role, text: (m.content as { content?: string }).content, threadId: m.threadId }));

async function flow(memory: Memory): Promise<unknown[]> {
  const out: unknown[] = [];
  await memory.createThread({ threadId: "e1", resourceId: "u1", title: "E2E" });
  await memory.createThread({ threadId: "e2", resourceId: "u1", title: "Other" });
  await memory.saveMessages({ messages: conversation("e1", "u1") });
  await memory.saveMessages({ messages: conversation("e2", "u1").slice(0, 3) });
  out.push(view((await memory.recall({ threadId: "e1", resourceId: "u1" })).messages));
  out.push(view((await memory.recall({ threadId: "e1", resourceId: "u1", perPage: 4 })).messages));
  out.push(view((await memory.recall({ threadId: "e1", resourceId: "u1", perPage: 4, page: 1 })).messages));
  await memory.updateWorkingMemory({ threadId: "e1", resourceId: "u1", workingMemory: "# User\n- name: Ada" });
  out.push(await memory.getWorkingMemory({ threadId: "e2", resourceId: "u1" }));
  const threadScope = { workingMemory: { enabled: true, scope: "thread" as const } };
  await memory.updateWorkingMemory({ threadId: "e2", resourceId: "u1", workingMemory: "thread notes", memoryConfig: threadScope });
  out.push(await memory.getWorkingMemory({ threadId: "e2", resourceId: "u1", memoryConfig: threadScope }));
  out.push(await memory.getWorkingMemory({ threadId: "e1", resourceId: "u1", memoryConfig: threadScope }));
  await memory.updateThread({ id: "e1", title: "E2E (renamed)", metadata: { topic: "tests" } });
  const thread = await memory.getThreadById({ threadId: "e1" });
  out.push({ title: thread?.title, metadata: thread?.metadata });
  const list = await memory.listThreads({ filter: { resourceId: "u1" }, orderBy: { field: "createdAt", direction: "ASC" } });
  out.push({ ids: list.threads.map((t) => t.id), total: list.total });
  await memory.deleteMessages(["e1-m10", "e1-m11"]);
  out.push(view((await memory.recall({ threadId: "e1", resourceId: "u1", perPage: 3 })).messages));
  await memory.deleteThread("e2");
  out.push(await memory.getThreadById({ threadId: "e2" }));
  return out;
}

describe("Memory on a composite store with ctxstore as its memory domain", () => {
  const pool = tenantPool();
  const { pool: refPool, schema } = referenceSchema("mastra_e2e");
  const options = { lastMessages: 10, workingMemory: { enabled: true } };

  afterAll(async () => {
    await pool.end();
  });

  it("answers as Memory over Mastra's Postgres store does", async () => {
    const ours = composite(new CtxstoreMemory({ pool }));
    const reference = composite(new MemoryPG({ pool: refPool, schemaName: schema }));
    const a = await flow(new Memory({ storage: ours, options }));
    const b = await flow(new Memory({ storage: reference, options }));
    expect(a).toEqual(b);
    // and the answers are the conversation's, not two equal failures
    expect(a[1]).toEqual(["e1-m8", "e1-m9", "e1-m10", "e1-m11"].map((id, i) => ({
      id, role: i % 2 === 0 ? "user" : "assistant", text: `turn ${8 + i}`, threadId: "e1",
    })));
    expect(a[3]).toContain("name: Ada");
    expect(a[4]).toContain("thread notes");
    expect(a[9]).toBeNull();
  });

  it("keeps the thread's messages in the database's token windows", async () => {
    const { rows } = await pool.query(
      "SELECT count(*)::int AS n FROM ctx.get_thread('e1') t, ctx.token_window(t.context_id, 100000) w");
    expect(rows[0].n).toBe(10);
  });
});
