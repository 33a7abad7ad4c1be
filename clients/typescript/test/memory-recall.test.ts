// Mastra's Memory with ctxstore as storage and vector (CtxstoreMemory + CtxstoreVector) and a
// deterministic mock embedder: semantic recall in resource and thread scope with message ranges,
// working memory with a template and with a schema (through Memory's own tool), and Mastra's
// TokenLimiter and ToolCallFilter over what is recalled. Each answer is asserted; on PG 18 the
// same flow over @mastra/pg (MemoryPG + PgVector, in a schema of their own) must answer alike.
import { MessageList } from "@mastra/core/agent";
import type { MastraDBMessage } from "@mastra/core/memory";
import { TokenLimiterProcessor, ToolCallFilter } from "@mastra/core/processors";
import type { MastraCompositeStore } from "@mastra/core/storage";
import type { MastraEmbeddingModel, MastraVector } from "@mastra/core/vector";
import { Memory } from "@mastra/memory";
import { MemoryPG, PgVector } from "@mastra/pg";
import { afterAll, describe, expect, it } from "vitest";

import { CtxstoreMemory } from "../src/memory.js";
import { CtxstoreVector } from "../src/vector.js";
import { composite, hasPgvector, referenceConfig, referenceSchema, tenantPool } from "./db.js";

const DIM = 16;
/** A bag-of-words hash embedding, L2-normalised: equal words, near vectors. */
function embed(text: string): number[] {
  const v = new Array<number>(DIM).fill(0);
  for (const w of text.toLowerCase().split(/\W+/).filter(Boolean)) {
    let h = 0;
    for (const c of w) h = (h * 31 + c.charCodeAt(0)) >>> 0;
    v[h % DIM] = (v[h % DIM] as number) + 1;
  }
  const n = Math.hypot(...v) || 1;
  return v.map((x) => x / n);
}
const embedder: MastraEmbeddingModel<string> = {
  specificationVersion: "v2", provider: "mock", modelId: "bag-of-words", maxEmbeddingsPerCall: 100, supportsParallelCalls: false,
  doEmbed: async ({ values }: { values: string[] }) => ({ embeddings: values.map(embed), usage: { tokens: values.length } }),
} as unknown as MastraEmbeddingModel<string>;

const T0 = Date.parse("2026-07-01T09:00:00.000Z");
let clock = 0;
function turn(threadId: string, text: string, role: "user" | "assistant" = clock % 2 ? "assistant" : "user"): MastraDBMessage {
  clock++;
  return {
    id: `${threadId}-${clock}`, threadId, resourceId: "u1", role, createdAt: new Date(T0 + clock * 1000),
    content: { format: 2, parts: [{ type: "text", text }], content: text },
  } as MastraDBMessage;
}

const semantic = { topK: 1, messageRange: { before: 1, after: 1 }, scope: "resource" as const,
                   indexConfig: { type: "hnsw" as const, metric: "cosine" as const } };

async function flow(storage: MastraCompositeStore, vector: MastraVector): Promise<Record<string, unknown>> {
  clock = 0;
  const out: Record<string, unknown> = {};
  const memory = new Memory({ storage, vector, embedder, options: { lastMessages: 2, semanticRecall: semantic } });
  await memory.createThread({ threadId: "t1", resourceId: "u1", title: "zoo" });
  await memory.createThread({ threadId: "t2", resourceId: "u1", title: "weather" });
  await memory.saveMessages({ messages: [
    turn("t1", "hello there"), turn("t1", "tell me about animals"),
    turn("t1", "purple elephants dance at midnight"), turn("t1", "that is surprising"),
    turn("t1", "indeed very rare"), turn("t1", "goodbye now"),
  ] });
  await memory.saveMessages({ messages: [
    turn("t2", "is it raining today"), turn("t2", "light rain expected"), turn("t2", "should I take an umbrella"),
    turn("t2", "yes take one"),
  ] });
  const ids = (ms: MastraDBMessage[]) => ms.map((m) => m.id);
  // resource scope: the window around the match in t1 (before 1, after 1), then t2's last 2
  out.resourceScope = ids((await memory.recall({ threadId: "t2", resourceId: "u1", vectorSearchString: "purple elephants" })).messages);
  // thread scope: only t2's own messages are searched (the words of both threads: t2's win here)
  out.threadScope = ids((await memory.recall({
    threadId: "t2", resourceId: "u1", vectorSearchString: "purple elephants raining today",
    threadConfig: { semanticRecall: { ...semantic, scope: "thread" } },
  })).messages);
  out.wider = ids((await memory.recall({
    threadId: "t2", resourceId: "u1", vectorSearchString: "umbrella rain",
    threadConfig: { lastMessages: false, semanticRecall: { ...semantic, topK: 2, messageRange: 0, scope: "thread" } },
  })).messages);
  // an edited message is found by its new words, a deleted one no more
  await memory.updateMessages({ messages: [{ id: "t1-5", content: { content: "indeed green giraffes are rare" } } as never] });
  out.edited = ids((await memory.recall({
    threadId: "t2", resourceId: "u1", vectorSearchString: "green giraffes",
    threadConfig: { lastMessages: false, semanticRecall: { ...semantic, messageRange: 0 } },
  })).messages);
  await memory.deleteMessages(["t1-3"]);
  await memory.settled?.();
  // (which message comes next is a tie among unrelated ones: only whether the deleted one is found)
  const afterDelete = ids((await memory.recall({
    threadId: "t2", resourceId: "u1", vectorSearchString: "purple elephants dance at midnight",
    threadConfig: { lastMessages: false, semanticRecall: { ...semantic, messageRange: 0 } },
  })).messages);
  out.deleted = { found: afterDelete.includes("t1-3"), count: afterDelete.length };

  // working memory with a template, in both scopes
  const template = "# Profile\n- name:\n- city:";
  const wm = new Memory({ storage, options: { workingMemory: { enabled: true, template } } });
  out.template = await wm.getWorkingMemoryTemplate({});
  await wm.updateWorkingMemory({ threadId: "t1", resourceId: "u1", workingMemory: "# Profile\n- name: Ada\n- city: Turin" });
  out.resourceWm = await wm.getWorkingMemory({ threadId: "t2", resourceId: "u1" });
  const threadScope = { workingMemory: { enabled: true, scope: "thread" as const, template } };
  await wm.updateWorkingMemory({ threadId: "t1", resourceId: "u1", workingMemory: "# Profile\n- name: thread-only", memoryConfig: threadScope });
  out.threadWm = [await wm.getWorkingMemory({ threadId: "t1", resourceId: "u1", memoryConfig: threadScope }),
                  await wm.getWorkingMemory({ threadId: "t2", resourceId: "u1", memoryConfig: threadScope })];
  // with a schema, through Memory's own tool: objects merge, the stored form is compact JSON
  const schema = { type: "object", properties: { name: { type: "string" }, prefs: { type: "object",
    properties: { color: { type: "string" }, tags: { type: "array", items: { type: "string" } } } } } };
  const sm = new Memory({ storage, options: { workingMemory: { enabled: true, schema } as never } });
  const tool = (sm.listTools() as Record<string, { execute: (input: unknown, ctx: unknown) => Promise<unknown> }>).updateWorkingMemory;
  const ctx = { agent: { threadId: "s1", resourceId: "u2" }, memory: sm };
  await tool?.execute({ memory: { name: "Ada", prefs: { color: "red" } } }, ctx);
  await tool?.execute({ memory: { prefs: { tags: ["x"] } } }, ctx);
  out.schemaWm = await sm.getWorkingMemory({ threadId: "s1", resourceId: "u2" });

  // TokenLimiter and ToolCallFilter over a recalled history with a tool call
  const tools = new Memory({ storage, options: { lastMessages: 10 } });
  await tools.createThread({ threadId: "t3", resourceId: "u1", title: "tools" });
  const long = "word ".repeat(150).trim();
  // (in the order they were said: createdAt follows)
  const history = [turn("t3", long, "user"), turn("t3", long, "assistant"), turn("t3", "weather in Turin?", "user")];
  const call = turn("t3", "", "assistant");
  call.content = { format: 2, parts: [
    { type: "tool-invocation", toolInvocation: { state: "result", toolCallId: "c1", toolName: "weather", args: { city: "Turin" }, result: { sky: "clear" } } },
    { type: "text", text: "It is clear in Turin." },
  ] } as MastraDBMessage["content"];
  history.push(call, turn("t3", "thanks", "user"));
  await tools.saveMessages({ messages: history });
  const { messages } = await tools.recall({ threadId: "t3", resourceId: "u1" });
  const prompt = await new MessageList({ threadId: "t3", resourceId: "u1" }).add(messages, "memory").get.all.aiV5.llmPrompt();
  const roles = (p: { role: string }[]) => p.map((m) => m.role);
  const filtered = ((await new ToolCallFilter().processLLMRequest({ prompt, state: {} } as never)) as { prompt?: typeof prompt } | undefined)?.prompt ?? prompt;
  const limited = ((await new TokenLimiterProcessor({ limit: 200 }).processLLMRequest({ prompt: filtered } as never)) as { prompt?: typeof prompt } | undefined)?.prompt ?? filtered;
  out.prompt = roles(prompt as never);
  out.filtered = roles(filtered as never);
  out.limited = roles(limited as never);
  return out;
}

describe("Memory's recall, working memory and processors on ctxstore", () => {
  const pool = tenantPool();
  const { pool: refPool, schema } = referenceSchema("mastra_recall");
  let ours: Record<string, unknown>;

  afterAll(async () => {
    await pool.end();
  });

  it("recalls, keeps working memory and feeds the processors as expected", async () => {
    ours = await flow(composite(new CtxstoreMemory({ pool })), new CtxstoreVector({ pool }));
    expect(ours.resourceScope).toEqual(["t1-2", "t1-3", "t1-4", "t2-9", "t2-10"]);
    expect(ours.threadScope).toEqual(["t2-7", "t2-8", "t2-9", "t2-10"]);
    // "umbrella rain": the two t2 messages with those words, and no window around them
    expect(ours.wider).toEqual(["t2-8", "t2-9"]);
    expect(ours.edited).toEqual(["t1-5"]);
    expect(ours.deleted).toEqual({ found: false, count: 1 });
    expect(ours.template).toEqual({ format: "markdown", content: "# Profile\n- name:\n- city:" });
    expect(ours.resourceWm).toBe("# Profile\n- name: Ada\n- city: Turin");
    expect(ours.threadWm).toEqual(["# Profile\n- name: thread-only", null]);
    expect(JSON.parse(ours.schemaWm as string)).toEqual({ name: "Ada", prefs: { color: "red", tags: ["x"] } });
    expect(ours.prompt).toEqual(["user", "assistant", "user", "assistant", "tool", "assistant", "user"]);
    expect(ours.filtered).toEqual(["user", "assistant", "user", "assistant", "user"]);
    expect(ours.limited).toEqual(["user", "assistant", "user"]);
  }, 120_000);

  it.runIf(hasPgvector)("answers as Memory over @mastra/pg (MemoryPG and PgVector) does", async () => {
    const theirs = await flow(composite(new MemoryPG({ pool: refPool, schemaName: schema })),
      new PgVector({ id: "reference", ...referenceConfig, schemaName: schema } as never));
    expect(ours).toEqual(theirs);
  }, 120_000);
});
