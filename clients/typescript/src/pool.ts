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
  return prepare ? { name: `ctxstore_${scope}_${key}`, text, values } : { text, values };
}
