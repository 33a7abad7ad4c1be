// The database under test (tests/clients_ts.sh starts one): an application role as a tenant of
// its own per pool, and the cluster owner for @mastra/pg, the reference, on the same server.
import { randomUUID } from "node:crypto";

import { InMemoryStore, MastraCompositeStore, type MemoryStorage } from "@mastra/core/storage";
import pg from "pg";
import { afterAll, beforeAll } from "vitest";

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run tests/clients_ts.sh from the repository root`);
  return value;
}

export const server = {
  host: env("CTXSTORE_PG_HOST"),
  port: Number(env("CTXSTORE_PG_PORT")),
  database: env("CTXSTORE_PG_DATABASE"),
};

/** Whether pgvector is installed (PG 18 here; PG 15 has only ctxstore's exact path). */
export const hasPgvector = process.env.CTXSTORE_PG_VECTOR === "1";

export function tenantPool(tenant = `ts-${randomUUID()}`): pg.Pool {
  return new pg.Pool({
    ...server,
    user: env("CTXSTORE_PG_APP_USER"),
    options: `-c ctxstore.tenant=${tenant}`,
    max: 4,
  });
}

/** The reference's connection settings (it creates its own tables: the cluster owner). The
 * test cluster trusts local connections; PgVector insists on a password all the same. */
export const referenceConfig = {
  host: server.host,
  port: server.port,
  database: server.database,
  user: env("CTXSTORE_PG_ADMIN_USER"),
  password: "unused-the-test-cluster-trusts-local-connections",
};

/** A JSON-comparable view: Dates as ISO strings, keys sorted, undefined dropped. */
export function plain(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

/** A small deterministic generator (mulberry32), so every run draws the same data. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A pool of the cluster owner and a schema of its own for @mastra/pg, the reference: created
 * before the calling suite's tests and dropped (with the pool) after them. */
export function referenceSchema(prefix: string): { pool: pg.Pool; schema: string } {
  const pool = new pg.Pool({ ...referenceConfig, max: 4 });
  const schema = `${prefix}_${randomUUID().replace(/-/g, "").slice(0, 12)}`;
  beforeAll(async () => {
    await pool.query(`CREATE SCHEMA ${schema}`);
  });
  afterAll(async () => {
    await pool.query(`DROP SCHEMA ${schema} CASCADE`);
    await pool.end();
  });
  return { pool, schema };
}

/** A MastraCompositeStore whose memory domain is `memory`, the rest Mastra's in-memory store. */
export function composite(memory: MemoryStorage): MastraCompositeStore {
  return new MastraCompositeStore({ id: `c-${randomUUID()}`, default: new InMemoryStore(), domains: { memory } });
}
