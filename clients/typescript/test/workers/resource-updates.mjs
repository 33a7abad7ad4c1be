// One process of the concurrency test (test/concurrency.test.ts): `count` updates of one
// resource's working memory and metadata, through ctxstore's storage or @mastra/pg's.
//   node resource-updates.mjs ctxstore|pg <tenant or schema> <process number> <count>
import { MemoryPG } from "@mastra/pg";
import pg from "pg";

import { CtxstoreMemory } from "../../dist/index.js";

const [kind, space, proc, count] = process.argv.slice(2);
const server = {
  host: process.env.CTXSTORE_PG_HOST,
  port: Number(process.env.CTXSTORE_PG_PORT),
  database: process.env.CTXSTORE_PG_DATABASE,
};
const pool = kind === "ctxstore"
  ? new pg.Pool({ ...server, user: process.env.CTXSTORE_PG_APP_USER, options: `-c ctxstore.tenant=${space}`, max: 2 })
  : new pg.Pool({ ...server, user: process.env.CTXSTORE_PG_ADMIN_USER, password: "unused", max: 2 });
const store = kind === "ctxstore" ? new CtxstoreMemory({ pool }) : new MemoryPG({ pool, schemaName: space });
// (an update that fails is counted and the next one tried: @mastra/pg's first updates race to
// insert the resource, and the losers fail with a duplicate key)
let failed = 0;
try {
  for (let i = 0; i < Number(count); i++) {
    try {
      await store.updateResource({
        resourceId: "shared",
        workingMemory: `# Notes\n- last writer: process ${proc}, update ${i}`,
        metadata: { [`p${proc}_${i}`]: i },
      });
    } catch (error) {
      failed++;
      if (failed === 1) console.error(String(error));
    }
  }
} finally {
  await pool.end();
}
console.log(JSON.stringify({ failed }));
