// CtxstoreVector against @mastra/pg's PgVector (the reference, PG 18 with pgvector, exact search)
// and against a brute-force reference in this file (every server, PG 15's exact path too): the
// same seeded data, the same queries under every metric and filter operator; top-k ids must be
// equal and scores within 1e-5.
import { randomUUID } from "node:crypto";

import { PgVector } from "@mastra/pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { CtxstoreVector } from "../src/vector.js";
import { hasPgvector, referenceConfig, seeded, tenantPool } from "./db.js";

type Metric = "cosine" | "euclidean" | "dotproduct";
type Meta = Record<string, unknown>;
const DIM = 8;
const N = 60;
const NAMES = ["alpha", "Alpine", "beta", "gamma", "delta"];
const TAGS = ["a", "b", "c", "d"];

function dataset(seed: number) {
  const rng = seeded(seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rng() * xs.length)] as T;
  return Array.from({ length: N }, (_, i) => ({
    id: `v${i}`,
    vector: Array.from({ length: DIM }, () => Math.round((rng() * 2 - 1) * 1000) / 1000),
    metadata: {
      thread_id: `t${i % 3}`,
      resource_id: `r${i % 2}`,
      n: i,
      price: Math.round(rng() * 10000) / 100,
      name: pick(NAMES),
      flag: rng() < 0.5,
      tags: TAGS.filter(() => rng() < 0.5),
      items: [{ sku: pick(["s1", "s2", "s3"]), qty: Math.floor(rng() * 5) }],
    } as Meta,
  }));
}

// filters whose meaning is the same in Mastra's Postgres translator and in ctxstore: every
// document has every field (no missing-field three-valued logic), values are typed alike,
// $all compares strings, $elemMatch matches objects, $or elements have one key each
const FILTERS: Array<Record<string, unknown> | undefined> = [
  undefined,
  { thread_id: "t1" },
  { n: { $gt: 10, $lte: 40 } },
  { price: { $gte: 20, $lt: 70 } },
  { name: { $in: ["alpha", "gamma"] } },
  { name: { $nin: ["alpha", "gamma"] } },
  { n: { $ne: 3 } },
  { flag: false },
  { tags: { $all: ["a", "b"] } },
  { items: { $elemMatch: { sku: "s1", qty: { $gt: 1 } } } },
  { name: { $regex: "^al", $options: "i" } },
  { name: { $regex: "^al" } },
  { $or: [{ thread_id: "t0" }, { n: { $lt: 5 } }] },
  { $and: [{ resource_id: "r1" }, { price: { $lt: 50 } }] },
  { $nor: [{ thread_id: "t0" }, { flag: true }] },
  { $not: { resource_id: "r0" } },
  { tags: { $size: 2 } },
  { name: { $exists: true } },
  { n: { $not: { $gt: 30 } } },
];

/** The brute-force reference: Mongo-style semantics of the operators above. */
function matches(meta: Meta, filter: Record<string, unknown> | undefined): boolean {
  if (!filter) return true;
  return Object.entries(filter).every(([key, cond]) => {
    if (key === "$and") return (cond as Meta[]).every((f) => matches(meta, f));
    if (key === "$or") return (cond as Meta[]).some((f) => matches(meta, f));
    if (key === "$nor") return !(cond as Meta[]).some((f) => matches(meta, f));
    if (key === "$not") return !matches(meta, cond as Meta);
    return holds(meta[key], cond);
  });
}

function holds(value: unknown, cond: unknown): boolean {
  if (typeof cond !== "object" || cond === null || Array.isArray(cond)) return value === cond;
  const ops = cond as Record<string, unknown>;
  return Object.entries(ops).every(([op, operand]) => {
    switch (op) {
      case "$gt": return (value as number) > (operand as number);
      case "$gte": return (value as number) >= (operand as number);
      case "$lt": return (value as number) < (operand as number);
      case "$lte": return (value as number) <= (operand as number);
      case "$ne": return value !== operand;
      case "$in": return (operand as unknown[]).includes(value);
      case "$nin": return !(operand as unknown[]).includes(value);
      case "$all": return (operand as unknown[]).every((x) => (value as unknown[]).includes(x));
      case "$size": return Array.isArray(value) && value.length === operand;
      case "$exists": return (value !== undefined) === operand;
      case "$not": return !holds(value, operand);
      case "$options": return true;
      case "$regex": return new RegExp(operand as string, (ops.$options as string) ?? "").test(value as string);
      case "$elemMatch":
        return (value as Meta[]).some((element) => matches(element, operand as Meta));
      default: throw new Error(`reference lacks ${op}`);
    }
  });
}

function score(metric: Metric, a: number[], b: number[]): number {
  const dot = a.reduce((s, x, i) => s + x * (b[i] as number), 0);
  if (metric === "dotproduct") return dot;
  if (metric === "euclidean") {
    return 1 / (1 + Math.sqrt(a.reduce((s, x, i) => s + (x - (b[i] as number)) ** 2, 0)));
  }
  const norm = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  return dot / (norm(a) * norm(b));
}

const METRICS: Metric[] = ["cosine", "euclidean", "dotproduct"];
const data = dataset(7);
const queries = dataset(99).slice(0, 4).map((d) => d.vector);
const pool = tenantPool();
const ours = new CtxstoreVector({ pool });
const suffix = randomUUID().replace(/-/g, "").slice(0, 8);
const reference = hasPgvector ? new PgVector({ id: "reference", ...referenceConfig }) : undefined;

beforeAll(async () => {
  for (const metric of METRICS) {
    const indexName = `idx_${metric}_${suffix}`;
    const upsert = { indexName, vectors: data.map((d) => d.vector), metadata: data.map((d) => d.metadata), ids: data.map((d) => d.id) };
    await ours.createIndex({ indexName, dimension: DIM, metric });
    await ours.upsert(upsert);
    if (reference) {
      // the reference keeps an index's metric only in its HNSW index (a flat one scores cosine);
      // on 60 rows, queried with ef 200 below, its search is exact
      await reference.createIndex({ indexName, dimension: DIM, metric, indexConfig: { type: "hnsw" } } as never);
      await reference.upsert(upsert);
    }
  }
});

afterAll(async () => {
  for (const metric of METRICS) {
    const indexName = `idx_${metric}_${suffix}`;
    await ours.deleteIndex({ indexName });
    await reference?.deleteIndex({ indexName });
  }
  await pool.end();
  await reference?.disconnect();
});

describe.each(METRICS)("query under %s", (metric) => {
  const indexName = `idx_${metric}_${suffix}`;

  it.each(FILTERS.map((f, i) => [i, f] as const))("filter #%i: the brute-force top-k", async (_, filter) => {
    for (const [q, query] of queries.entries()) {
      const got = await ours.query({ indexName, queryVector: query, topK: 7, filter: filter as never });
      const expected = data
        .filter((d) => matches(d.metadata, filter))
        .map((d) => ({ id: d.id, score: score(metric, query, d.vector) }))
        .filter((r) => r.score > -1)
        .sort((a, b) => b.score - a.score)
        .slice(0, 7);
      expect(got.map((r) => r.id), `query ${q}`).toEqual(expected.map((r) => r.id));
      got.forEach((r, i) => expect(r.score).toBeCloseTo(expected[i]!.score, 5));
      for (const r of got) expect(r.metadata).toEqual(data.find((d) => d.id === r.id)!.metadata);
    }
  });

  it.runIf(hasPgvector).each(FILTERS.map((f, i) => [i, f] as const))("filter #%i: PgVector's top-k and scores", async (_, filter) => {
    for (const query of queries) {
      const params = { indexName, queryVector: query, topK: 7, filter: filter as never, includeVector: true };
      const got = await ours.query(params);
      const want = await reference!.query({ ...params, ef: 200 } as never);
      expect(got.map((r) => r.id)).toEqual(want.map((r) => r.id));
      got.forEach((r, i) => {
        expect(r.score).toBeCloseTo(want[i]!.score, 5);
        expect(r.metadata).toEqual(want[i]!.metadata);
        r.vector!.forEach((x, j) => expect(x).toBeCloseTo(want[i]!.vector![j]!, 5));
      });
    }
  });
});

describe("index lifecycle and writes, side by side", () => {
  it("describes, lists, updates and deletes like PgVector", async () => {
    const indexName = `life_${suffix}`;
    const stores = reference ? [ours, reference] : [ours];
    const results = [];
    for (const store of stores) {
      await store.createIndex({ indexName, dimension: 3, metric: "euclidean", ...(store === reference ? { indexConfig: { type: "hnsw" } } : {}) } as never);
      await store.createIndex({ indexName, dimension: 3, metric: "euclidean" } as never); // idempotent
      const ids = await store.upsert({ indexName, vectors: [[1, 0, 0], [0, 1, 0], [0, 0, 1]], metadata: [{ k: 1 }, { k: 2 }, { k: 3 }], ids: ["a", "b", "c"] });
      await store.upsert({ indexName, vectors: [[1, 1, 0]], metadata: [{ k: 10 }], ids: ["a"] }); // replaces a
      await store.updateVector({ indexName, id: "b", update: { metadata: { k: 20 } } }); // metadata replaced
      await store.updateVector({ indexName, id: "c", update: { vector: [0, 0, 2] } });
      await store.updateVector({ indexName, filter: { k: 20 }, update: { vector: [0, 3, 0] } } as never);
      const described = await store.describeIndex({ indexName });
      const all = await store.query({ indexName, queryVector: [0, 0, 0], topK: 10, includeVector: true, ef: 200 } as never);
      await store.deleteVector({ indexName, id: "c" });
      await store.deleteVectors({ indexName, filter: { k: 10 } } as never);
      const left = await store.query({ indexName, queryVector: [0, 0, 0], topK: 10, ef: 200 } as never);
      const listed = (await store.listIndexes()).includes(indexName);
      await store.deleteIndex({ indexName });
      const gone = !(await store.listIndexes()).includes(indexName);
      results.push({
        ids,
        described: { dimension: described.dimension, count: described.count, metric: described.metric },
        all: all.map((r) => ({ id: r.id, score: Number(r.score.toFixed(5)), metadata: r.metadata, vector: r.vector })),
        left: left.map((r) => r.id),
        listed,
        gone,
      });
    }
    expect(results[0]).toEqual({
      ids: ["a", "b", "c"],
      described: { dimension: 3, count: 3, metric: "euclidean" },
      all: [
        { id: "a", score: Number((1 / (1 + Math.SQRT2)).toFixed(5)), metadata: { k: 10 }, vector: [1, 1, 0] },
        { id: "c", score: Number((1 / 3).toFixed(5)), metadata: { k: 3 }, vector: [0, 0, 2] },
        { id: "b", score: 0.25, metadata: { k: 20 }, vector: [0, 3, 0] },
      ],
      left: ["b"],
      listed: true,
      gone: true,
    });
    if (reference) expect(results[1]).toEqual(results[0]);
  });

  it("refuses bad input clearly", async () => {
    const indexName = `bad_${suffix}`;
    await expect(ours.createIndex({ indexName: "1bad", dimension: 3 })).rejects.toThrow(/invalid index name/);
    await expect(ours.createIndex({ indexName, dimension: 0 })).rejects.toThrow(/positive integer/);
    await ours.createIndex({ indexName, dimension: 3 });
    await expect(ours.createIndex({ indexName, dimension: 4 })).rejects.toThrow(/exists with 3 dimensions/);
    await expect(ours.upsert({ indexName, vectors: [[1, 2]] })).rejects.toThrow(/2 dimensions; the index has 3/);
    await expect(ours.upsert({ indexName, vectors: [[1, Number.NaN, 2]] })).rejects.toThrow(/finite/);
    await expect(ours.query({ indexName, queryVector: [1, 0, 0], topK: 0 })).rejects.toThrow(/topK/);
    await expect(ours.query({ indexName, queryVector: [1, 0, 0], filter: { a: { $bogus: 1 } } as never })).rejects.toThrow(/unsupported operator/);
    await expect(ours.deleteVectors({ indexName, ids: ["a"], filter: { k: 1 } } as never)).rejects.toThrow(/not both/);
    await expect(ours.query({ indexName: "missing_index", queryVector: [1, 0, 0] })).rejects.toThrow(/does not exist/);
    await ours.deleteIndex({ indexName });
  });

  it("keeps tenants apart: another tenant sees none of an index", async () => {
    const indexName = `tenant_${suffix}`;
    await ours.createIndex({ indexName, dimension: 2 });
    await ours.upsert({ indexName, vectors: [[1, 0]], ids: ["mine"] });
    const otherPool = tenantPool();
    const other = new CtxstoreVector({ pool: otherPool });
    await expect(other.query({ indexName, queryVector: [1, 0] })).rejects.toThrow(/does not exist/);
    await other.createIndex({ indexName, dimension: 2 });
    expect(await other.query({ indexName, queryVector: [1, 0] })).toEqual([]);
    await otherPool.end();
    await ours.deleteIndex({ indexName });
  });
});
