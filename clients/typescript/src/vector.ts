/**
 * Mastra's `MastraVector` on ctxstore long-term memories.
 *
 * An index is a ctxstore namespace (`["mastra", "vectors", indexName]`) with its dimension and
 * metric registered in ctxstore's state (`["mastra", "vector_indexes"]`); each vector is a memory
 * whose metadata is the vector's metadata plus its Mastra id. A query is one `ctx.recall` under
 * the index's metric, scored as `@mastra/pg`'s `PgVector` scores: cosine similarity, `1 / (1 +
 * euclidean distance)`, or the inner product. Filters are translated to ctxstore's filter
 * language (see `filter.ts`). Tenancy, encryption, audit and retention are the database's.
 */

import { randomUUID } from "node:crypto";

import { MastraVector } from "@mastra/core/vector";
import type {
  CreateIndexParams,
  DeleteIndexParams,
  DeleteVectorParams,
  DeleteVectorsParams,
  DescribeIndexParams,
  IndexStats,
  QueryResult,
  QueryVectorParams,
  UpdateVectorParams,
  UpsertVectorParams,
} from "@mastra/core/vector";
import type { Pool, PoolClient, QueryConfig } from "pg";

import { ID_KEY, type Json, translate } from "./filter.js";
import { statement, withTransaction } from "./pool.js";

type Metric = "cosine" | "euclidean" | "dotproduct";
const METRICS: Record<Metric, string> = { cosine: "cosine", euclidean: "l2", dotproduct: "inner_product" };
const REGISTRY = ["mastra", "vector_indexes"];
const INDEX_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const UNLIMITED = 2 ** 31 - 1;
// rank by embedding similarity alone (recall's other score terms weighted 0)
const SIMILARITY_ONLY = JSON.stringify({ similarity: 1, text: 0, recency: 0, importance: 0 });

const SQL = {
  getIndex: "SELECT ctx.get($1::text[], $2) AS value",
  putIndex: "SELECT ctx.put($1::text[], $2, $3::jsonb, expected_version => 0) AS version",
  listIndexes: `SELECT key FROM ctx.search_state($1::text[], '{}', ${UNLIMITED}, 0, include_descendants => false) ORDER BY key`,
  deleteIndex: "SELECT ctx.delete_key($1::text[], $2)",
  count: `SELECT count(*)::int AS n FROM ctx.memories m
           WHERE m.tenant = ctx.current_tenant() AND m.namespace = $1::text[] AND m.valid_to IS NULL
             AND (m.expires_at IS NULL OR m.expires_at > now())`,
  // one writer per (index, id): replacing a vector is forget + remember
  lock: `SELECT count(pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(
           'ctxstore.mastra_vector' || chr(31) || ctx.current_tenant() || chr(31) || array_to_string($1::text[], chr(31)) || chr(31) || i, 0)))
           FROM (SELECT DISTINCT i FROM unnest($2::text[]) AS i ORDER BY i) AS ids`,
  forget: "SELECT ctx.forget($1::text[], $2::jsonb) AS n",
  remember: `SELECT ctx.remember($1::text[], d.id, d.embedding::real[], m.metadata)
               FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS d(id, embedding, n)
               JOIN jsonb_array_elements($4::jsonb) WITH ORDINALITY AS m(metadata, n) USING (n)`,
  query: `SELECT metadata, similarity, embedding
            FROM ctx.recall($1::text[], $2::ctx.embedding, k => $3, filter => $4::jsonb, weights => $5::jsonb,
                            include_descendants => false, metric => $6, include_embedding => $7)`,
  list: `SELECT metadata, embedding
           FROM ctx.recall($1::text[], k => $2, filter => $3::jsonb, include_descendants => false,
                           include_embedding => $4)`,
};

interface IndexInfo {
  dimension: number;
  metric: Metric;
}

export interface CtxstoreVectorConfig {
  /** A node-postgres pool whose connections are a ctxstore application role (and tenant). */
  pool: Pool;
  /** The store's id (Mastra's registry key). */
  id?: string;
  /**
   * Whether statements are prepared once per pooled connection (named statements; the
   * default). Turn off behind a pooler that does not keep a session per client.
   */
  prepare?: boolean;
}

export class CtxstoreVector extends MastraVector {
  readonly pool: Pool;
  readonly prepare: boolean;

  constructor({ pool, id = "ctxstore-vector", prepare = true }: CtxstoreVectorConfig) {
    super({ id });
    this.pool = pool;
    this.prepare = prepare;
  }

  private sql(key: keyof typeof SQL, values?: unknown[]): QueryConfig {
    return statement("mastra_vector", key, SQL[key], values, this.prepare);
  }

  private static namespace(indexName: string): string[] {
    return ["mastra", "vectors", indexName];
  }

  private async info(indexName: string): Promise<IndexInfo> {
    const { rows } = await this.pool.query(this.sql("getIndex", [REGISTRY, indexName]));
    const value = rows[0]?.value as IndexInfo | null | undefined;
    if (!value) throw new Error(`vector index "${indexName}" does not exist: create it with createIndex`);
    return value;
  }

  private transaction<T>(work: (client: PoolClient) => Promise<T>): Promise<T> {
    return withTransaction(this.pool, work);
  }

  private static checkVector(vector: unknown, dimension: number, what: string): number[] {
    if (!Array.isArray(vector) || vector.some((x) => typeof x !== "number" || !Number.isFinite(x))) {
      throw new Error(`${what} must be an array of finite numbers`);
    }
    // (sent as float4: a larger magnitude would arrive as infinity)
    if (vector.some((x) => Math.abs(x) > 3.4028234663852886e38)) {
      throw new Error(`${what} holds a number beyond float4's range (±3.4e38)`);
    }
    if (vector.length !== dimension) {
      throw new Error(`${what} has ${vector.length} dimensions; the index has ${dimension}`);
    }
    return vector as number[];
  }

  private static literal(vector: number[]): string {
    return `{${vector.join(",")}}`;
  }

  /** A query vector in ctx.embedding's binary form (pgvector's: dimensions, a reserved word,
   * big-endian float4s). node-postgres sends a Buffer as a binary parameter, and the statement's
   * cast names its type: no text to format here or to parse in the server. */
  private static binary(vector: number[]): Buffer {
    const out = Buffer.alloc(4 + 4 * vector.length);
    out.writeUInt16BE(vector.length, 0);
    vector.forEach((x, i) => out.writeFloatBE(x, 4 + 4 * i));
    return out;
  }

  private static idsFilter(namespace: string[], ids: string[]): string {
    return JSON.stringify({ namespace, [`$.${ID_KEY}`]: { $in: ids } });
  }

  private static scoped(namespace: string[], filter: unknown): string {
    const translated = translate(filter);
    return JSON.stringify(Object.keys(translated).length ? { namespace, $and: [translated] } : { namespace });
  }

  private static split(metadata: Record<string, Json>): { id: string; metadata: Record<string, Json> } {
    const { [ID_KEY]: id, ...rest } = metadata;
    return { id: String(id), metadata: rest };
  }

  private static userMetadata(metadata: unknown, where: string): Record<string, unknown> {
    if (metadata === undefined || metadata === null) return {};
    if (typeof metadata !== "object" || Array.isArray(metadata)) throw new Error(`${where} must be an object`);
    if (ID_KEY in (metadata as object)) throw new Error(`${where}: the key ${ID_KEY} is reserved`);
    return metadata as Record<string, unknown>;
  }

  async createIndex({ indexName, dimension, metric = "cosine" }: CreateIndexParams): Promise<void> {
    if (!INDEX_NAME.test(indexName)) {
      throw new Error(`invalid index name "${indexName}": letters, digits and _, not starting with a digit`);
    }
    if (!Number.isInteger(dimension) || dimension <= 0) {
      throw new Error(`dimension must be a positive integer, not ${dimension}`);
    }
    if (!(metric in METRICS)) throw new Error(`unknown metric "${metric}": use cosine, euclidean or dotproduct`);
    for (;;) {
      const existing = await this.info(indexName).catch(() => null);
      if (existing) {
        if (existing.dimension !== dimension) {
          throw new Error(
            `vector index "${indexName}" exists with ${existing.dimension} dimensions, not ${dimension}`,
          );
        }
        return;
      }
      try {
        await this.pool.query(this.sql("putIndex", [REGISTRY, indexName, JSON.stringify({ dimension, metric })]));
        return;
      } catch (error) {
        // created concurrently (ctx.put's expected_version 0 refused it): check what is there
        if ((error as { code?: string }).code !== "40001") throw error;
      }
    }
  }

  async listIndexes(): Promise<string[]> {
    const { rows } = await this.pool.query(this.sql("listIndexes", [REGISTRY]));
    return rows.map((r) => r.key as string);
  }

  async describeIndex({ indexName }: DescribeIndexParams): Promise<IndexStats> {
    const info = await this.info(indexName);
    const { rows } = await this.pool.query(this.sql("count", [CtxstoreVector.namespace(indexName)]));
    return { dimension: info.dimension, metric: info.metric, count: rows[0]?.n ?? 0 };
  }

  async deleteIndex({ indexName }: DeleteIndexParams): Promise<void> {
    const namespace = CtxstoreVector.namespace(indexName);
    await this.transaction(async (client) => {
      await client.query(this.sql("forget", [namespace, JSON.stringify({ namespace })]));
      await client.query(this.sql("deleteIndex", [REGISTRY, indexName]));
    });
  }

  async upsert({ indexName, vectors, metadata, ids, deleteFilter }: UpsertVectorParams): Promise<string[]> {
    const info = await this.info(indexName);
    if (!vectors?.length) throw new Error("upsert needs at least one vector");
    if (metadata?.length && metadata.length !== vectors.length) {
      throw new Error(`${vectors.length} vectors but ${metadata.length} metadata objects`);
    }
    if (ids && ids.length !== vectors.length) throw new Error(`${vectors.length} vectors but ${ids.length} ids`);
    const finalIds = vectors.map((_, i) => (ids?.[i] !== undefined ? String(ids[i]) : randomUUID()));
    const rows = vectors.map((vector, i) => ({
      id: finalIds[i] as string,
      embedding: CtxstoreVector.literal(CtxstoreVector.checkVector(vector, info.dimension, `vectors[${i}]`)),
      metadata: { ...CtxstoreVector.userMetadata(metadata?.[i], `metadata[${i}]`), [ID_KEY]: finalIds[i] },
    }));
    // one id given twice: the last one wins, as PgVector applies them in order
    const last = new Map(rows.map((row) => [row.id, row]));
    const unique = [...last.values()];
    const namespace = CtxstoreVector.namespace(indexName);
    await this.transaction(async (client) => {
      await client.query(this.sql("lock", [namespace, unique.map((r) => r.id)]));
      if (deleteFilter !== undefined && deleteFilter !== null) {
        await client.query(this.sql("forget", [namespace, CtxstoreVector.scoped(namespace, deleteFilter)]));
      }
      await client.query(this.sql("forget", [namespace, CtxstoreVector.idsFilter(namespace, unique.map((r) => r.id))]));
      await client.query(this.sql("remember", [
        namespace,
        unique.map((r) => r.id),
        unique.map((r) => r.embedding),
        JSON.stringify(unique.map((r) => r.metadata)),
      ]));
    });
    return finalIds;
  }

  async query({ indexName, queryVector, topK = 10, filter, includeVector = false, ...rest }: QueryVectorParams): Promise<QueryResult[]> {
    const info = await this.info(indexName);
    if (!Number.isInteger(topK) || topK <= 0) throw new Error(`topK must be a positive integer, not ${topK}`);
    const minScore = (rest as { minScore?: number }).minScore ?? -1;
    const namespace = CtxstoreVector.namespace(indexName);
    const where = CtxstoreVector.scoped(namespace, filter);
    if (queryVector === undefined) {
      if (!filter || Object.keys(filter).length === 0) throw new Error("a query without queryVector needs a filter");
      const { rows } = await this.pool.query(this.sql("list", [namespace, topK, where, includeVector]));
      return rows.map((r) => this.result(r, 0, includeVector));
    }
    const vector = CtxstoreVector.checkVector(queryVector, info.dimension, "queryVector");
    const { rows } = await this.pool.query(this.sql("query", [
      namespace, CtxstoreVector.binary(vector), topK, where, SIMILARITY_ONLY, METRICS[info.metric], includeVector,
    ]));
    return rows
      .map((r) => this.result(r, Number(r.similarity), includeVector))
      .filter((r) => r.score > minScore);
  }

  private result(row: { metadata: Record<string, Json>; embedding?: number[] | null }, score: number, includeVector: boolean): QueryResult {
    const { id, metadata } = CtxstoreVector.split(row.metadata);
    const result: QueryResult = { id, score, metadata };
    if (includeVector && row.embedding) result.vector = row.embedding.map(Number);
    return result;
  }

  async updateVector(params: UpdateVectorParams): Promise<void> {
    const { indexName, update } = params;
    const id = (params as { id?: string }).id;
    const filter = (params as { filter?: unknown }).filter;
    if (!update || (update.vector === undefined && update.metadata === undefined)) {
      throw new Error("No updates provided: give update.vector and/or update.metadata");
    }
    if (id !== undefined && filter !== undefined) throw new Error("give an id or a filter, not both");
    if (id === undefined && filter === undefined) throw new Error("give the id or a filter of the vectors to update");
    if (filter !== undefined && Object.keys(filter as object).length === 0) throw new Error("the filter is empty");
    const info = await this.info(indexName);
    const vector = update.vector === undefined ? undefined
      : CtxstoreVector.literal(CtxstoreVector.checkVector(update.vector, info.dimension, "update.vector"));
    const newMetadata = update.metadata === undefined ? undefined
      : CtxstoreVector.userMetadata(update.metadata, "update.metadata");
    const namespace = CtxstoreVector.namespace(indexName);
    const where = id !== undefined ? CtxstoreVector.idsFilter(namespace, [String(id)]) : CtxstoreVector.scoped(namespace, filter);
    await this.transaction(async (client) => {
      const targets = await client.query(this.sql("list", [namespace, UNLIMITED, where, true]));
      if (targets.rows.length === 0) return;
      const rows = targets.rows.map((r) => {
        const { id: vid, metadata } = CtxstoreVector.split(r.metadata);
        return {
          id: vid,
          embedding: vector ?? CtxstoreVector.literal((r.embedding as number[]).map(Number)),
          metadata: { ...(newMetadata ?? metadata), [ID_KEY]: vid },
        };
      });
      await client.query(this.sql("lock", [namespace, rows.map((r) => r.id)]));
      await client.query(this.sql("forget", [namespace, CtxstoreVector.idsFilter(namespace, rows.map((r) => r.id))]));
      await client.query(this.sql("remember", [
        namespace, rows.map((r) => r.id), rows.map((r) => r.embedding), JSON.stringify(rows.map((r) => r.metadata)),
      ]));
    });
  }

  async deleteVector({ indexName, id }: DeleteVectorParams): Promise<void> {
    await this.info(indexName);
    const namespace = CtxstoreVector.namespace(indexName);
    await this.transaction(async (client) => {
      await client.query(this.sql("lock", [namespace, [String(id)]]));
      await client.query(this.sql("forget", [namespace, CtxstoreVector.idsFilter(namespace, [String(id)])]));
    });
  }

  async deleteVectors({ indexName, ids, filter }: DeleteVectorsParams): Promise<void> {
    if (ids !== undefined && filter !== undefined) throw new Error("give ids or a filter, not both");
    if (ids === undefined && filter === undefined) throw new Error("give the ids or a filter of the vectors to delete");
    if (ids !== undefined && ids.length === 0) throw new Error("ids is empty");
    if (filter !== undefined && (filter === null || Object.keys(filter).length === 0)) throw new Error("the filter is empty");
    await this.info(indexName);
    const namespace = CtxstoreVector.namespace(indexName);
    const where = ids !== undefined ? CtxstoreVector.idsFilter(namespace, ids.map(String)) : CtxstoreVector.scoped(namespace, filter);
    await this.pool.query(this.sql("forget", [namespace, where]));
  }
}
