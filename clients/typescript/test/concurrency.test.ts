// Four Node processes update one resource's working memory (and a metadata key each time) 250
// times each, through ctxstore's storage and through @mastra/pg's on the same server. ctxstore
// merges under the value's row lock: all 1,000 updates must land. The reference reads, merges in
// the process and writes: what it loses (and the updates that fail) is reported
// (tmp/clients-ts-*/concurrency.json).
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { promisify } from "node:util";

import { MemoryPG } from "@mastra/pg";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { CtxstoreMemory } from "../src/memory.js";
import { referenceConfig, tenantPool } from "./db.js";

const run = promisify(execFile);
const PROCESSES = 4;
const UPDATES = 250;
const worker = new URL("./workers/resource-updates.mjs", import.meta.url).pathname;

/** Runs the processes; returns how many updates failed with an error. */
async function hammer(kind: "ctxstore" | "pg", space: string): Promise<number> {
  const outputs = await Promise.all(Array.from({ length: PROCESSES }, (_, p) =>
    run(process.execPath, [worker, kind, space, String(p), String(UPDATES)], { env: process.env })));
  return outputs.reduce((n, { stdout }) => n + (JSON.parse(stdout.trim().split("\n").pop() as string).failed as number), 0);
}

describe("working memory of one resource, 4 processes x 250 updates", () => {
  const refPool = new pg.Pool({ ...referenceConfig, max: 2 });
  const schema = `mastra_conc_${randomUUID().replace(/-/g, "").slice(0, 12)}`;
  beforeAll(async () => {
    await refPool.query(`CREATE SCHEMA ${schema}`);
    await new MemoryPG({ pool: refPool, schemaName: schema }).init();
  });
  afterAll(async () => {
    await refPool.query(`DROP SCHEMA ${schema} CASCADE`);
    await refPool.end();
  });

  it("loses no update on ctxstore (and reports what @mastra/pg loses)", async () => {
    const tenant = `ts-${randomUUID()}`;
    const ourErrors = await hammer("ctxstore", tenant);
    const pool = tenantPool(tenant);
    const ours = await new CtxstoreMemory({ pool }).getResourceById({ resourceId: "shared" });
    await pool.end();
    const theirErrors = await hammer("pg", schema);
    const theirs = await new MemoryPG({ pool: refPool, schemaName: schema }).getResourceById({ resourceId: "shared" });
    const kept = (r: typeof ours) => Object.keys(r?.metadata ?? {}).length;
    const total = PROCESSES * UPDATES;
    const report = {
      processes: PROCESSES, updates: total,
      ctxstore_lost: total - kept(ours), ctxstore_failed: ourErrors,
      mastra_pg_lost: total - kept(theirs), mastra_pg_failed: theirErrors,
    };
    console.log(`concurrency: ${JSON.stringify(report)}`);
    if (process.env.CTXSTORE_TS_REPORTS) writeFileSync(`${process.env.CTXSTORE_TS_REPORTS}/concurrency.json`, JSON.stringify(report));
    expect(ourErrors).toBe(0);
    expect(kept(ours)).toBe(total);
    expect(ours?.workingMemory).toMatch(/^# Notes\n- last writer: process \d, update 249$/);
  }, 300_000);
});
