import { createHash } from "node:crypto";

import type { Pool, PoolClient, QueryConfig } from "pg";

/** Runs `work` in one transaction on one pooled connection: committed, or rolled back on error. */
export async function withTransaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    const result = await work(client);
    await client.query("COMMIT");
    return result;
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/**
 * A statement as node-postgres takes it. Named (the default), each pooled connection parses
 * and plans it once and then only binds and runs it; unnamed for a pooler that does not keep a
 * session per client (PgBouncer in transaction mode before 1.21), where a name would not
 * survive between transactions.
 */
export function statement(scope: string, key: string, text: string, values: unknown[] | undefined, prepare: boolean): QueryConfig {
  return prepare ? { name: statementName(scope, key, text), text, values } : { text, values };
}

const names = new Map<string, string>();

/** A statement's name: its key and a digest of its text, so that two versions of the adapter
 * sharing a pool never meet under one name with different texts. */
function statementName(scope: string, key: string, text: string): string {
  let name = names.get(text);
  if (name === undefined) {
    name = `ctxstore_${scope}_${key}_${createHash("sha256").update(text).digest("hex").slice(0, 12)}`;
    names.set(text, name);
  }
  return name;
}
