// Mastra's Memory on ctxstore: one constructor changes, and the conversation, its working memory
// and its history live in ctxstore, readable from SQL and the other adapters.
//
//   cd clients/typescript && npm ci && npm run build   (or: npm install @ctxstore/mastra)
//   CTXSTORE_DSN="postgres://agent_app@localhost/app" CTXSTORE_TENANT=acme node examples/mastra_memory.mjs
import { randomUUID } from "node:crypto";

import { CtxstoreMemory } from "@ctxstore/mastra";
import { InMemoryStore, MastraCompositeStore } from "@mastra/core/storage";
import { Memory } from "@mastra/memory";
import pg from "pg";

const pool = new pg.Pool({
  connectionString: process.env.CTXSTORE_DSN,
  options: `-c ctxstore.tenant=${process.env.CTXSTORE_TENANT ?? "acme"}`,
});
const storage = new MastraCompositeStore({
  id: "app",
  default: new InMemoryStore(),                      // workflows, scores, ...: e.g. PostgresStore in production
  domains: { memory: new CtxstoreMemory({ pool }) }, // threads, messages, working memory: ctxstore
});
const memory = new Memory({ storage, options: { lastMessages: 4, workingMemory: { enabled: true } } });

const threadId = `support-${randomUUID()}`;
await memory.createThread({ threadId, resourceId: "user-42", title: "Billing question" });
const turns = ["My invoice is wrong.", "Which invoice?", "The one from March.", "I see a double charge.",
               "Can you refund it?", "Done: refunded."];
await memory.saveMessages({
  messages: turns.map((text, i) => ({
    id: `msg-${i}`, threadId, resourceId: "user-42", role: i % 2 ? "assistant" : "user",
    createdAt: new Date(Date.UTC(2026, 2, 1, 9, 0, i)),
    content: { format: 2, parts: [{ type: "text", text }], content: text },
  })),
});
const { messages } = await memory.recall({ threadId, resourceId: "user-42" });
console.log("last 4:", messages.map((m) => m.content.content));

await memory.updateWorkingMemory({ threadId, resourceId: "user-42", workingMemory: "# User\n- plan: gold" });
console.log("working memory:", JSON.stringify(await memory.getWorkingMemory({ threadId, resourceId: "user-42" })));

// an edit is a revision, a delete a tombstone: ctx.history keeps both
await memory.updateMessages({ messages: [{ id: "msg-5", content: { content: "Done: refunded 42 EUR." } }] });
await memory.deleteMessages(["msg-0"]);

// the same thread from SQL: a token window, and the history of the edited message
const { rows: window } = await pool.query(
  "SELECT w.role, w.content FROM ctx.get_thread($1) t, ctx.token_window(t.context_id, 25) w ORDER BY w.seq", [threadId]);
console.log("token window (25 tokens):", window.map((r) => `${r.role}: ${r.content}`));
const { rows: history } = await pool.query(
  `SELECT h.revision, h.current, h.deleted, h.content FROM ctx.get_thread($1) t, ctx.history(t.context_id) h
    WHERE h.message_id IN ('msg-0', 'msg-5') ORDER BY h.message_id, h.revision`, [threadId]);
for (const r of history) console.log("history:", r.revision, r.current ? "current" : "replaced", r.deleted ? "(deleted)" : r.content);
const threads = await memory.listThreads({ filter: { resourceId: "user-42" }, perPage: 10 });
console.log("threads of user-42:", threads.total >= 1);
await memory.deleteThread(threadId);
await pool.end();
