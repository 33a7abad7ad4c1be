// Seeded random sequences of MemoryStorage calls, run step by step on CtxstoreMemory, on
// @mastra/pg's MemoryPG (same server, a schema of its own) and on @mastra/core's InMemoryStore;
// every answer must be equal. The sequences stay within what the two references agree on
// (Mastra's in-memory store keeps system messages, overwrites createdAt on a re-save, defaults
// the type to "text" and matches thread metadata by equality), so all three must agree.
import { randomUUID } from "node:crypto";

import type { MastraDBMessage, StorageThreadType } from "@mastra/core/memory";
import { InMemoryStore, type MemoryStorage } from "@mastra/core/storage";
import { MemoryPG } from "@mastra/pg";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { CtxstoreMemory } from "../src/memory.js";
import { referenceConfig, seeded, tenantPool } from "./db.js";

const SEEDS = [1, 2, 3, 4];
const STEPS = 60;
const T0 = Date.parse("2026-06-01T00:00:00.000Z");

function plain(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>)
      .filter(([k, v]) => v !== undefined && k !== "type")
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => [k, plain(v)]));
  }
  return value;
}
const msgs = (ms: MastraDBMessage[]) => ms.map((m) => plain({ ...m, createdAt: new Date(m.createdAt as Date) }));
const thr = (t: StorageThreadType | null) => {
  if (!t) return null;
  const { updatedAt: _u, ...rest } = t;
  return plain({ ...rest, metadata: t.metadata ?? {} });
};

type Outcome = { ok: unknown } | { error: true };
async function outcome(work: () => Promise<unknown>): Promise<Outcome> {
  try {
    return { ok: await work() };
  } catch {
    return { error: true };
  }
}

describe.each(SEEDS)("random sequence, seed %i", (seed) => {
  const pool = tenantPool();
  const refPool = new pg.Pool({ ...referenceConfig, max: 2 });
  const schema = `mastra_rand_${seed}_${randomUUID().replace(/-/g, "").slice(0, 8)}`;
  const stores: Record<string, MemoryStorage> = {};

  beforeAll(async () => {
    await refPool.query(`CREATE SCHEMA ${schema}`);
    stores.ctxstore = new CtxstoreMemory({ pool });
    stores.pg = new MemoryPG({ pool: refPool, schemaName: schema });
    stores.memory = (await new InMemoryStore().getStore("memory")) as MemoryStorage;
    for (const s of Object.values(stores)) await s.init();
  });
  afterAll(async () => {
    await refPool.query(`DROP SCHEMA ${schema} CASCADE`);
    await refPool.end();
    await pool.end();
  });

  it("gives the same answer on every store at every step", async () => {
    const rng = seeded(seed);
    const int = (n: number) => Math.floor(rng() * n);
    const pick = <T>(xs: T[]): T => xs[int(xs.length)] as T;
    const resources = ["ra", "rb", "rc"];
    const threads = Array.from({ length: 5 }, (_, i) => ({ id: `t${i}`, resourceId: resources[i % 3] as string }));
    let clock = 0;
    const ids: string[] = [];
    let compared = 0;
    // (Mastra's in-memory store counts hasMore with include windows its own way, which neither
    // Postgres store shares: with include and a page, hasMore is compared with MemoryPG only)
    const withoutHasMore = (o: Outcome): Outcome =>
      "ok" in o && o.ok && typeof o.ok === "object" ? { ok: { ...(o.ok as object), hasMore: undefined } } : o;
    const run = async (what: string, call: (s: MemoryStorage) => Promise<unknown>, view: (x: never) => unknown,
                       includeWithPage = false) => {
      const answers: Record<string, Outcome> = {};
      for (const [name, s] of Object.entries(stores)) {
        answers[name] = await outcome(async () => view((await call(s)) as never));
      }
      expect(answers.ctxstore, `${what} (vs MemoryPG)`).toEqual(answers.pg);
      const loose = includeWithPage ? withoutHasMore : (o: Outcome) => o;
      expect(loose(answers.ctxstore as Outcome), `${what} (vs InMemoryStore)`).toEqual(loose(answers.memory as Outcome));
      compared++;
    };
    for (const t of threads) {
      // (every draw before the calls: each store gets the same arguments)
      const thread = {
        ...t, title: `title ${t.id}`, metadata: { n: int(3), tag: pick(["a", "b"]) },
        createdAt: new Date(T0 - 1e6 + int(1e5) * 1000), updatedAt: new Date(T0),
      };
      await run("saveThread", (s) => s.saveThread({ thread }), thr);
    }
    for (let step = 0; step < STEPS; step++) {
      const t = pick(threads);
      const op = int(9);
      if (op <= 2 || ids.length < 3) {
        const batch = Array.from({ length: 1 + int(5) }, () => {
          clock += 1 + int(3);
          const id = `m${ids.length}-${seed}`;
          ids.push(id);
          const text = `text ${id} ${int(100)}`;
          return {
            id, threadId: t.id, resourceId: t.resourceId, role: pick(["user", "assistant"]), createdAt: new Date(T0 + clock * 1000),
            content: { format: 2, parts: [{ type: "text", text }], content: text, metadata: { k: pick(["x", "y"]) } },
          } as MastraDBMessage;
        });
        await run("saveMessages", (s) => s.saveMessages({ messages: batch }), (r: { messages: MastraDBMessage[] }) => msgs(r.messages));
      } else if (op === 3 || op === 4) {
        const perPage = pick<number | false>([false, 0, 1, 3, 5, 10]);
        const include = perPage === 0 || rng() < 0.3
          ? Array.from({ length: 1 + int(2) }, () => ({ id: pick(ids), withPreviousMessages: int(3), withNextMessages: int(3) }))
          : undefined;
        const args = {
          threadId: rng() < 0.8 ? t.id : [t.id, pick(threads).id],
          perPage,
          page: perPage === false ? 0 : int(3),
          orderBy: { field: "createdAt" as const, direction: pick(["ASC", "DESC"] as const) },
          ...(rng() < 0.3 ? { filter: { dateRange: { start: new Date(T0 + int(clock + 1) * 1000),
                                                     startExclusive: rng() < 0.5 } } } : {}),
          ...(include ? { include } : {}),
        };
        await run(`listMessages ${JSON.stringify(args)}`, (s) => s.listMessages(args),
          (r: { messages: MastraDBMessage[]; total: number; hasMore: boolean }) => ({ ...r, messages: msgs(r.messages) }),
          include !== undefined && perPage !== 0);
      } else if (op === 5) {
        const some = Array.from({ length: 1 + int(4) }, () => pick(ids));
        await run("listMessagesById", (s) => s.listMessagesById({ messageIds: [...some, "nope"] }),
          (r: { messages: MastraDBMessage[] }) => msgs(r.messages));
      } else if (op === 6) {
        const id = pick(ids);
        await run("updateMessages", async (s) => {
          await s.updateMessages({ messages: [{ id, content: { content: `edited ${step}` } }] });
          return s.listMessagesById({ messageIds: [id] });
        }, (r: { messages: MastraDBMessage[] }) => msgs(r.messages));
      } else if (op === 7) {
        const gone = [pick(ids)];
        await run("deleteMessages", async (s) => {
          await s.deleteMessages(gone);
          return s.listMessages({ threadId: t.id, perPage: false });
        }, (r: { messages: MastraDBMessage[] }) => msgs(r.messages));
      } else {
        const args = {
          perPage: pick<number | false>([false, 1, 2, 3]),
          page: int(2),
          orderBy: { field: "createdAt" as const, direction: pick(["ASC", "DESC"] as const) },
          filter: { ...(rng() < 0.6 ? { resourceId: pick(resources) } : {}), ...(rng() < 0.3 ? { metadata: { tag: pick(["a", "b"]) } } : {}) },
        };
        if (args.perPage === false) args.page = 0;
        await run(`listThreads ${JSON.stringify(args)}`, (s) => s.listThreads(args),
          (r: { threads: StorageThreadType[]; total: number; hasMore: boolean }) => ({ ...r, threads: r.threads.map(thr) }));
        await run("updateResource", async (s) => {
          await s.updateResource({ resourceId: t.resourceId, workingMemory: `wm ${step}`, metadata: { [`s${step}`]: step } });
          return s.getResourceById({ resourceId: t.resourceId });
        }, (r: Record<string, unknown> | null) => (r ? plain({ ...r, createdAt: undefined, updatedAt: undefined }) : null));
      }
    }
    expect(compared).toBeGreaterThan(STEPS);
  }, 120_000);
});
