/**
 * Mastra's `MemoryStorage` domain on ctxstore: threads, messages and resources (working memory).
 *
 * A thread is a ctxstore context with a thread id (`ctx.save_thread` / `ctx.get_thread` /
 * `ctx.list_threads`): its title is the context's name, its resourceId the context's resource,
 * its metadata the context's metadata. A message is a message of that context under its Mastra
 * id: the context keeps a plain-text rendering as the message content (what token windows,
 * `ctx.build_context` and full-text recall read) and Mastra's structured content (format 2,
 * parts) in the message's metadata under `mastra`. An edit is a new revision and a delete a
 * tombstone (`ctx.history` keeps both). A resource is a state value in the namespace
 * `["mastra", "resources"]`. Tenancy, encryption, audit and retention are the database's.
 *
 * Plug it into a `MastraCompositeStore` as the `memory` domain; the other domains (workflows,
 * scores, observability, ...) come from another store given as `default`.
 */

import { randomUUID } from "node:crypto";

import { MessageList } from "@mastra/core/agent";
import type { MastraMessageContentV2 } from "@mastra/core/agent";
import { ErrorCategory, ErrorDomain, MastraError } from "@mastra/core/error";
import type { MastraDBMessage, StorageThreadType } from "@mastra/core/memory";
import { MemoryStorage } from "@mastra/core/storage";
import type {
  StorageCloneThreadInput,
  StorageCopyThreadOutput,
  StorageListMessagesInput,
  StorageListMessagesOutput,
  StorageListThreadsInput,
  StorageListThreadsOutput,
  StorageResourceType,
} from "@mastra/core/storage";
import type { Pool, PoolClient, QueryConfig } from "pg";

import { statement, withTransaction } from "./pool.js";

type Queryable = Pick<PoolClient, "query">;
type Row = Record<string, unknown>;

const RESOURCES = ["mastra", "resources"];
// ctx.threads.framework of Mastra's threads: no other adapter's thread is read, listed or cleared
const FRAMEWORK = "'mastra'";
const UNLIMITED = 2 ** 31 - 1;
/**
 * The columns a message is read from (of a table alias: "m.message_id, m.role, ..."). The
 * plain-text content only where Mastra's own content is not kept in the metadata: it would be
 * sent, and decoded, for nothing.
 */
const columnsOf = (alias?: string) => {
  const c = (name: string) => (alias ? `${alias}.${name}` : name);
  return `${c("message_id")}, ${c("role")}, CASE WHEN ${c("metadata")} -> 'mastra' ? 'content' THEN NULL ELSE ${c("content")} END AS content, ${c("metadata")}, ${c("created_at")}`;
};
const MESSAGE_COLUMNS = columnsOf();

const SQL = {
  extension: "SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'ctxstore'",
  getThread: `SELECT thread_id, context_id, title, resource, metadata, created_at, updated_at FROM ctx.get_thread($1, ${FRAMEWORK})`,
  // (creates the thread; the other statements below never do: a thread deleted meanwhile is 42704)
  saveThread: `SELECT ctx.save_thread($1, $2, $3, $4::jsonb, $5::timestamptz, $6::timestamptz, $7,
                                      framework => ${FRAMEWORK}) AS context_id`,
  updateThread: `SELECT ctx.save_thread($1, $2, NULL, $3::jsonb, framework => ${FRAMEWORK}, create_missing => false) AS context_id`,
  touchThread: `SELECT ctx.save_thread($1, framework => ${FRAMEWORK}, create_missing => false) AS context_id`,
  listThreads: `SELECT thread_id, context_id, title, resource, metadata, created_at, updated_at, total_count FROM ctx.list_threads($1, $2::jsonb, $3, $4, $5, $6, framework => ${FRAMEWORK})`,
  countThreads: `SELECT count(*)::int AS n FROM ctx.list_threads($1, $2::jsonb, max_rows => ${UNLIMITED}, framework => ${FRAMEWORK})`,
  deleteContext: "SELECT ctx.delete_context($1::uuid)",
  locate: `SELECT message_id, context_id, thread_id FROM ctx.locate_messages($1::text[], ${FRAMEWORK})`,
  // one writer per message id (a new id saved to two threads at once would be two messages), and
  // per new thread id (two copies to one id), in a fixed order
  lockMessages: `SELECT count(pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(
                   'ctxstore.mastra_message' || chr(31) || ctx.current_tenant() || chr(31) || i, 0)))
                   FROM (SELECT DISTINCT i FROM unnest($1::text[]) AS i ORDER BY i) AS ids`,
  // a thread's row lock, taken before its metadata is read and merged
  lockThreadRow: `SELECT 1 FROM ctx.threads t JOIN ctx.contexts c ON c.tenant = t.tenant AND c.id = t.context_id
                   WHERE t.tenant = ctx.current_tenant() AND t.thread_id = $1 AND t.framework = ${FRAMEWORK}
                     FOR NO KEY UPDATE OF c`,
  lockThread: `SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(
                 'ctxstore.thread' || chr(31) || ctx.current_tenant() || chr(31) || $1, 0))`,
  getMessages: `SELECT ${MESSAGE_COLUMNS} FROM ctx.get_messages($1::uuid, $2::text[])`,
  // (an exclusive bound moves by a microsecond: the database keeps microseconds, JavaScript milliseconds)
  page: `SELECT ${MESSAGE_COLUMNS}
           FROM ctx.list_messages($1::uuid,
                                  $2::timestamptz + CASE WHEN $7 THEN interval '1 microsecond' ELSE interval '0' END,
                                  $3::timestamptz - CASE WHEN $8 THEN interval '1 microsecond' ELSE interval '0' END,
                                  'created_at', $4, $5, $6)`,
  // the live messages with these ids, in the Mastra threads that hold them: one statement
  // (locate_messages gives each thread's resource: no ctx.get_thread per thread)
  byIds: `SELECT t.context_id, t.thread_id, t.resource AS thread_resource, ${columnsOf("m")}
            FROM (SELECT l.context_id, l.thread_id, l.resource, array_agg(DISTINCT l.message_id) AS ids
                    FROM ctx.locate_messages($1::text[], ${FRAMEWORK}) l GROUP BY 1, 2, 3) t
           -- (each context asked for its own ids only: a fork's inherited messages stay out)
           CROSS JOIN LATERAL ctx.get_messages(t.context_id, t.ids) m`,
  // include windows by createdAt around every target at once ($2 before and $3 after each):
  // the targets grouped by the context that holds them, one ctx.message_windows per context
  windows: `SELECT t.thread_id, t.resource AS thread_resource, ${columnsOf("w")}
              FROM (SELECT l.context_id, l.thread_id, l.resource, array_agg(i.id ORDER BY i.n) AS ids,
                           array_agg(i.before ORDER BY i.n) AS befores, array_agg(i.after ORDER BY i.n) AS afters
                      FROM unnest($1::text[], $2::int[], $3::int[]) WITH ORDINALITY AS i(id, before, after, n)
                      JOIN ctx.locate_messages($1::text[], ${FRAMEWORK}) l ON l.message_id = i.id
                     GROUP BY 1, 2, 3) t
             CROSS JOIN LATERAL ctx.message_windows(t.context_id, t.ids, t.befores, t.afters, 'created_at') w`,
  // one thread's page with its resource (and, with $9, its total): one call, no row when the
  // thread is missing, one row with no message when the page is empty
  threadPage: `SELECT resource AS thread_resource, total::int AS total, ${MESSAGE_COLUMNS}
                 FROM ctx.thread_page($1, ${FRAMEWORK},
                      $2::timestamptz + CASE WHEN $7 THEN interval '1 microsecond' ELSE interval '0' END,
                      $3::timestamptz - CASE WHEN $8 THEN interval '1 microsecond' ELSE interval '0' END,
                      'created_at', $4, $5, $6, $9)`,
  save: "SELECT message_id FROM ctx.save_messages($1::uuid, $2::jsonb)",
  update: "SELECT ctx.update_message($1::uuid, $2, $3, $4::jsonb, $5) AS revision",
  delete: "SELECT ctx.delete_messages($1::uuid, $2::text[]) AS n",
  purge: "SELECT ctx.purge_messages($1::uuid, $2::text[]) AS n",
  getResource: "SELECT ctx.get($1::text[], $2) AS value",
  insertResource: "SELECT ctx.put($1::text[], $2, $3::jsonb, expected_version => 0) AS version",
  // (an empty patch locks the value for the rest of the transaction, creating {} when absent)
  lockResource: "SELECT ctx.patch($1::text[], $2, '{}') AS value",
  putResource: "SELECT ctx.put($1::text[], $2, $3::jsonb) AS version",
  listResources: `SELECT key FROM ctx.search_state($1::text[], '{}', ${UNLIMITED}, 0, include_descendants => false)`,
  deleteResource: "SELECT ctx.delete_key($1::text[], $2)",
};

/** What a message keeps of Mastra's in its metadata (under `mastra`). */
interface Kept {
  role: MastraDBMessage["role"];
  content: MastraMessageContentV2;
  type?: string;
  resourceId?: string;
}

interface Located {
  message_id: string;
  context_id: string;
  thread_id: string | null;
}

export interface CtxstoreMemoryConfig {
  /** A node-postgres pool whose connections are a ctxstore application role (and tenant). */
  pool: Pool;
  /**
   * What `deleteMessages` does: `"tombstone"` (the default) writes a tombstone revision, and
   * `ctx.history` keeps what the message was; `"purge"` removes every revision for good, as
   * Mastra's Postgres store deletes the row.
   */
  deleteMode?: "tombstone" | "purge";
  /**
   * Whether new threads are encrypted contexts (their messages sealed under the thread's data
   * key; needs `ctxstore.master_key` on the server). Default: the server's
   * `ctxstore.encrypt_new_contexts`.
   */
  encrypted?: boolean;
  /**
   * Whether statements are prepared once per pooled connection (named statements; the
   * default). Turn off behind a pooler that does not keep a session per client.
   */
  prepare?: boolean;
}

function fail(operation: string, status: string, text: string, category: `${ErrorCategory}` = "USER", cause?: unknown): MastraError {
  return new MastraError(
    {
      id: `MASTRA_STORAGE_CTXSTORE_${operation}_${status}`.toUpperCase() as Uppercase<string>,
      domain: ErrorDomain.STORAGE,
      category: category as ErrorCategory,
      text,
    },
    cause,
  );
}

/** The text ctxstore counts, searches and windows: the message's text, else its parts as JSON. */
export function plainText(content: MastraMessageContentV2 | string): string {
  if (typeof content === "string") return content;
  if (typeof content.content === "string" && content.content !== "") return content.content;
  const texts = (content.parts ?? [])
    .map((part) => (part as { type?: string; text?: unknown }).type === "text" ? (part as { text?: unknown }).text : undefined)
    .filter((text): text is string => typeof text === "string" && text !== "");
  if (texts.length) return texts.join("\n");
  return JSON.stringify(content.parts ?? []);
}

/** What a message keeps of Mastra's (its metadata's `mastra`). */
function kept(message: MastraDBMessage): Kept {
  const k: Kept = { role: message.role, content: structured(message.content) };
  if (message.type !== undefined) k.type = message.type;
  if (message.resourceId !== undefined) k.resourceId = message.resourceId;
  return k;
}

/** A message as ctx.save_messages takes it: plain text to count and search, Mastra's content kept
 * in the metadata; with `createdAt`, the time to store (none: an existing message keeps its own). */
function saveItem(message: MastraDBMessage, createdAt?: Date): Record<string, unknown> {
  const item: Record<string, unknown> = {
    message_id: message.id,
    role: ctxRole(message.role),
    content: plainText(message.content),
    metadata: { mastra: kept(message) },
  };
  if (createdAt) item.created_at = createdAt.toISOString();
  return item;
}

function ctxRole(role: string): string {
  return role === "system" || role === "assistant" ? role : "user";
}

function structured(content: unknown): MastraMessageContentV2 {
  if (typeof content === "string") {
    return { format: 2, content, parts: [{ type: "text", text: content }] } as MastraMessageContentV2;
  }
  return content as MastraMessageContentV2;
}

function toDate(value: unknown): Date {
  return value instanceof Date ? value : new Date(String(value));
}

export class CtxstoreMemory extends MemoryStorage {
  readonly pool: Pool;
  readonly deleteMode: "tombstone" | "purge";
  readonly encrypted: boolean | null;
  readonly prepare: boolean;
  override readonly supportsPartialThreadUpdate = true;

  constructor({ pool, deleteMode = "tombstone", encrypted, prepare = true }: CtxstoreMemoryConfig) {
    super();
    this.pool = pool;
    this.deleteMode = deleteMode;
    this.encrypted = encrypted ?? null;
    this.prepare = prepare;
  }

  private sql(key: keyof typeof SQL, values?: unknown[]): QueryConfig {
    return statement("mastra_memory", key, SQL[key], values, this.prepare);
  }

  override async init(): Promise<void> {
    const { rows } = await this.pool.query(this.sql("extension"));
    if (!rows.length) {
      throw fail("INIT", "FAILED", "the ctxstore extension is not installed in this database: run CREATE EXTENSION ctxstore", "SYSTEM");
    }
  }

  // ---- threads ---------------------------------------------------------------------------

  private static thread(row: Row): StorageThreadType {
    return {
      id: row.thread_id as string,
      title: (row.title as string | null) ?? "",
      resourceId: (row.resource as string | null) ?? "",
      metadata: (row.metadata as Record<string, unknown> | null) ?? {},
      createdAt: toDate(row.created_at),
      updatedAt: toDate(row.updated_at),
    };
  }

  private async readThread(db: Queryable, threadId: string): Promise<Row | undefined> {
    const { rows } = await db.query(this.sql("getThread", [threadId]));
    return rows[0];
  }

  async getThreadById({ threadId, resourceId }: { threadId: string; resourceId?: string }): Promise<StorageThreadType | null> {
    const row = await this.readThread(this.pool, threadId);
    if (!row) return null;
    if (resourceId !== undefined && row.resource !== resourceId) return null;
    return CtxstoreMemory.thread(row);
  }

  async saveThread({ thread }: { thread: StorageThreadType }): Promise<StorageThreadType> {
    if (!thread?.id) throw fail("SAVE_THREAD", "INVALID_ARGS", "a thread needs an id");
    if (!thread.resourceId) throw fail("SAVE_THREAD", "INVALID_ARGS", `thread ${thread.id} needs a resourceId`);
    this.validateMetadataKeys(thread.metadata);
    const now = new Date();
    await this.pool.query(this.sql("saveThread", [
      thread.id,
      thread.title ?? "",
      thread.resourceId,
      JSON.stringify(thread.metadata ?? {}),
      (thread.createdAt ? toDate(thread.createdAt) : now).toISOString(),
      (thread.updatedAt ? toDate(thread.updatedAt) : now).toISOString(),
      this.encrypted,
    ]));
    return { ...thread };
  }

  async updateThread({ id, title, metadata }: { id: string; title?: string; metadata?: Record<string, unknown> }): Promise<StorageThreadType> {
    this.validateMetadataKeys(metadata);
    return withTransaction(this.pool, async (client) => {
      const existing = await this.readThread(client, id);
      if (!existing) throw fail("UPDATE_THREAD", "FAILED", `Thread ${id} not found`);
      // the row lock first, then the metadata it guards
      await client.query(this.sql("lockThreadRow", [id]));
      const locked = (await this.readThread(client, id)) as Row;
      const merged = { ...((locked.metadata as Record<string, unknown>) ?? {}), ...(metadata ?? {}) };
      await client.query(this.sql("updateThread", [id, title ?? null, JSON.stringify(merged)]));
      return CtxstoreMemory.thread((await this.readThread(client, id)) as Row);
    });
  }

  /** The metadata update of one thread under its row lock: atomic across processes. */
  override async updateThreadMetadata({ id, resourceId, update }: {
    id: string;
    resourceId?: string;
    update: (thread: StorageThreadType) => Record<string, unknown> | undefined;
  }): Promise<StorageThreadType | null> {
    return withTransaction(this.pool, async (client) => {
      const existing = await this.readThread(client, id);
      if (!existing || (resourceId !== undefined && existing.resource !== resourceId)) return null;
      // (locks the thread without changing it; updatedAt moves only with a change below)
      await client.query(this.sql("lockThreadRow", [id]));
      const thread = CtxstoreMemory.thread((await this.readThread(client, id)) as Row);
      const metadata = update(thread);
      if (metadata === undefined) return thread;
      this.validateMetadataKeys(metadata);
      // merged, as Mastra's stores patch the thread with what the update returns
      await client.query(this.sql("updateThread", [id, null, JSON.stringify({ ...(thread.metadata ?? {}), ...metadata })]));
      return CtxstoreMemory.thread((await this.readThread(client, id)) as Row);
    });
  }

  async deleteThread({ threadId }: { threadId: string }): Promise<void> {
    await withTransaction(this.pool, async (client) => {
      const row = await this.readThread(client, threadId);
      if (!row) return;
      try {
        await client.query("SAVEPOINT gone");
        await client.query(this.sql("deleteContext", [row.context_id]));
      } catch (error) {
        // deleted meanwhile by another call: as if this one had
        if ((error as { code?: string }).code !== "42704") throw error;
        await client.query("ROLLBACK TO SAVEPOINT gone");
      }
    });
  }

  async listThreads(args: StorageListThreadsInput): Promise<StorageListThreadsOutput> {
    const { page = 0, perPage: perPageInput, orderBy, filter } = args ?? {};
    const perPage = perPageInput === undefined ? 100 : perPageInput;
    try {
      this.validatePaginationInput(page, perPage);
    } catch (error) {
      throw fail("LIST_THREADS", "INVALID_PAGE", (error as Error).message);
    }
    try {
      this.validateMetadataKeys(filter?.metadata);
    } catch (error) {
      throw fail("LIST_THREADS", "INVALID_METADATA_KEY", (error as Error).message);
    }
    const { field, direction } = this.parseOrderBy(orderBy);
    const limit = perPage === false ? UNLIMITED : perPage;
    const offset = perPage === false ? 0 : page * perPage;
    const resource = filter?.resourceId ?? null;
    const contains = JSON.stringify(filter?.metadata ?? {});
    const { rows } = await this.pool.query(this.sql("listThreads", [
      resource, contains, field === "updatedAt" ? "updated_at" : "created_at", direction === "DESC", limit, offset,
    ]));
    let total = rows.length ? Number(rows[0].total_count) : 0;
    if (!rows.length && offset > 0) {
      total = (await this.pool.query(this.sql("countThreads", [resource, contains]))).rows[0].n as number;
    }
    return {
      threads: rows.map(CtxstoreMemory.thread),
      total,
      page,
      perPage,
      hasMore: perPage === false ? false : offset + perPage < total,
    };
  }

  // ---- messages --------------------------------------------------------------------------

  private static message(row: Row, threadId: string | null, threadResource?: string | null): MastraDBMessage {
    const metadata = (row.metadata as Record<string, unknown> | null) ?? {};
    const stored = metadata.mastra as Kept | undefined;
    const message: MastraDBMessage = {
      id: row.message_id as string,
      role: (stored?.role ?? row.role) as MastraDBMessage["role"],
      content: stored?.content ?? structured(row.content as string),
      createdAt: toDate(row.created_at),
    };
    if (threadId !== null) message.threadId = threadId;
    const resourceId = stored?.resourceId ?? threadResource ?? undefined;
    if (resourceId !== undefined) message.resourceId = resourceId;
    if (stored?.type !== undefined && stored.type !== "v2") message.type = stored.type;
    return message;
  }

  /** Messages as Mastra's stores return them: no system messages, one per id, by createdAt. */
  private static normalized(messages: MastraDBMessage[]): MastraDBMessage[] {
    return new MessageList().add(messages, "memory").get.all.db();
  }

  private static sorted(messages: MastraDBMessage[], direction: "ASC" | "DESC"): MastraDBMessage[] {
    const sign = direction === "ASC" ? 1 : -1;
    return messages.sort((a, b) => {
      const byTime = toDate(a.createdAt).getTime() - toDate(b.createdAt).getTime();
      return byTime !== 0 ? sign * byTime : sign * a.id.localeCompare(b.id);
    });
  }

  private async locate(db: Queryable, ids: string[]): Promise<Located[]> {
    if (!ids.length) return [];
    const { rows } = await db.query(this.sql("locate", [ids]));
    return rows as Located[];
  }

  /** The live messages with these ids in Mastra's threads, with their context: one statement. */
  private async readByIds(db: Queryable, ids: string[]): Promise<{ message: MastraDBMessage; contextId: string }[]> {
    if (!ids.length) return [];
    const { rows } = await db.query(this.sql("byIds", [[...new Set(ids)]]));
    return rows.map((row) => ({
      message: CtxstoreMemory.message(row, row.thread_id as string, row.thread_resource as string | null),
      contextId: row.context_id as string,
    }));
  }

  async listMessagesById({ messageIds }: { messageIds: string[] }): Promise<{ messages: MastraDBMessage[] }> {
    if (!messageIds?.length) return { messages: [] };
    const found = await this.readByIds(this.pool, messageIds);
    return { messages: CtxstoreMemory.normalized(found.map((f) => f.message)) };
  }

  async listMessages(args: StorageListMessagesInput): Promise<StorageListMessagesOutput> {
    const { threadId, resourceId, include, filter, perPage: perPageInput, page = 0, orderBy, includeTotal = true } = args;
    const threadIds = (Array.isArray(threadId) ? threadId : [threadId]).filter((t): t is string => typeof t === "string");
    if (!threadIds.length || threadIds.some((t) => t.trim() === "")) {
      throw fail("LIST_MESSAGES", "INVALID_THREAD_ID", "threadId must be a non-empty string or array of non-empty strings", "THIRD_PARTY");
    }
    if (!Number.isInteger(page) || page < 0) throw fail("LIST_MESSAGES", "INVALID_PAGE", "page must be >= 0");
    const perPage = perPageInput === undefined ? 40 : perPageInput;
    if (perPage !== false && (!Number.isInteger(perPage) || perPage < 0)) throw new Error("perPage must be >= 0");
    const { field, direction } = this.parseOrderBy(orderBy, "ASC");
    if (field !== "createdAt") throw fail("LIST_MESSAGES", "INVALID_ORDER", "messages are ordered by createdAt");
    const offset = perPage === false ? 0 : page * perPage;
    const range = filter?.dateRange;
    const from = range?.start ? toDate(range.start).toISOString() : null;
    const to = range?.end ? toDate(range.end).toISOString() : null;
    const bounds = [from, to];
    const exclusive = [Boolean(range?.startExclusive), Boolean(range?.endExclusive)];
    const metadataFilter = filter?.metadata && Object.keys(filter.metadata).length ? filter.metadata : undefined;

    let pageMessages: MastraDBMessage[] = [];
    let total = 0;
    let hasMore = false;
    const matches = (m: MastraDBMessage) =>
      (resourceId === undefined || m.resourceId === resourceId)
      && (!metadataFilter || Object.entries(metadataFilter).every(([k, v]) => {
        const meta = (m.content as { metadata?: Record<string, unknown> }).metadata;
        return meta !== undefined && k in meta && meta[k] === v;
      }));
    const unique = [...new Set(threadIds)];
    let paged = false;
    if (perPage !== 0 && unique.length === 1 && !metadataFilter) {
      // one thread: a page off the (tenant, context, created_at, seq) index, thread and page in
      // one statement (a missing thread is an empty page)
      const id = unique[0] as string;
      const limit = perPage === false ? UNLIMITED : includeTotal ? perPage : perPage + 1;
      const counted = includeTotal && perPage !== false;
      const { rows } = await this.pool.query(this.sql("threadPage",
        [id, ...bounds, direction === "DESC", limit, offset, ...exclusive, counted]));
      // (a thread's messages are its resource's: a resourceId equal to the thread's needs no filter)
      if (resourceId === undefined || !rows.length || rows[0].thread_resource === resourceId) {
        paged = true;
        pageMessages = rows.filter((r) => r.message_id !== null)
          .map((r) => CtxstoreMemory.message(r, id, r.thread_resource as string | null));
        if (perPage === false) {
          total = pageMessages.length;
        } else if (includeTotal) {
          total = (rows[0]?.total as number | null) ?? 0;
        } else {
          hasMore = pageMessages.length > perPage;
          pageMessages = pageMessages.slice(0, perPage);
          total = offset + pageMessages.length;
        }
      }
    }
    if (perPage !== 0 && !paged) {
      // several threads or a filter on what the database does not index: every match, then a page
      const all: MastraDBMessage[] = [];
      for (const id of unique) {
        const t = await this.readThread(this.pool, id);
        if (!t) continue;
        const { rows } = await this.pool.query(this.sql("page", [t.context_id, ...bounds, false, UNLIMITED, 0, ...exclusive]));
        all.push(...rows.map((r) => CtxstoreMemory.message(r, id, t.resource as string | null)).filter(matches));
      }
      CtxstoreMemory.sorted(all, direction);
      total = all.length;
      pageMessages = perPage === false ? all : all.slice(offset, offset + perPage);
      if (!includeTotal && perPage !== false) hasMore = offset + perPage < total;
    }

    const included: MastraDBMessage[] = [];
    if (include?.length) {
      const { rows } = await this.pool.query(this.sql("windows", [
        include.map((i) => i.id), include.map((i) => Math.max(0, i.withPreviousMessages ?? 0)),
        include.map((i) => Math.max(0, i.withNextMessages ?? 0)),
      ]));
      for (const row of rows) {
        const m = CtxstoreMemory.message(row, row.thread_id as string, row.thread_resource as string | null);
        if (resourceId === undefined || m.resourceId === resourceId) included.push(m);
      }
    }
    if (perPage === 0) {
      const only = CtxstoreMemory.sorted(CtxstoreMemory.normalized(included), direction);
      return { messages: only, total: 0, page, perPage, hasMore: false };
    }
    const seen = new Set(pageMessages.map((m) => m.id));
    const merged = [...pageMessages, ...included.filter((m) => !seen.has(m.id) && (seen.add(m.id), true))];
    const messages = CtxstoreMemory.sorted(CtxstoreMemory.normalized(merged), direction);
    if (includeTotal && perPage !== false) {
      const fromThreads = messages.filter((m) => m.threadId !== undefined && threadIds.includes(m.threadId)).length;
      hasMore = !(fromThreads >= total) && offset + perPage < total;
    }
    return { messages, total, page, perPage, hasMore };
  }

  async saveMessages({ messages }: { messages: MastraDBMessage[] }): Promise<{ messages: MastraDBMessage[] }> {
    if (!messages?.length) return { messages: [] };
    for (const m of messages) {
      if (!m.threadId) throw fail("SAVE_MESSAGES", "FAILED", "Thread ID is required", "THIRD_PARTY");
      if (!m.resourceId) throw fail("SAVE_MESSAGES", "FAILED", `message ${m.id} needs a resourceId`, "THIRD_PARTY");
    }
    // one id given twice: the last payload, at the first one's time
    const byId = new Map<string, MastraDBMessage>();
    for (const m of messages) {
      const first = byId.get(m.id);
      byId.set(m.id, first ? { ...m, createdAt: first.createdAt } : m);
    }
    const unique = [...byId.values()];
    await withTransaction(this.pool, async (client) => {
      await client.query(this.sql("lockMessages", [unique.map((m) => m.id)]));
      const contexts = new Map<string, string>();
      for (const threadId of new Set(unique.map((m) => m.threadId as string))) {
        const row = await this.readThread(client, threadId);
        if (!row) throw fail("SAVE_MESSAGES", "FAILED", `Thread ${threadId} not found`, "THIRD_PARTY");
        contexts.set(threadId, row.context_id as string);
      }
      const where = new Map((await this.locate(client, unique.map((m) => m.id))).filter((l) => l.thread_id !== null)
        .map((l) => [l.message_id, l]));
      // a message saved to another thread moves there, keeping its first time
      const firstTime = new Map<string, Date>();
      const moving = unique.filter((m) => where.has(m.id) && where.get(m.id)?.context_id !== contexts.get(m.threadId as string));
      for (const [contextId, ids] of group(moving, (m) => (where.get(m.id) as Located).context_id)) {
        const { rows } = await client.query(this.sql("getMessages", [contextId, ids.map((m) => m.id)]));
        for (const row of rows) firstTime.set(row.message_id as string, toDate(row.created_at));
        await client.query(this.sql("purge", [contextId, ids.map((m) => m.id)]));
      }
      for (const [threadId, batch] of group(unique, (m) => m.threadId as string)) {
        const contextId = contexts.get(threadId) as string;
        // (an existing message keeps its time, as Mastra's stores keep createdAt)
        const payload = batch.map((m) => saveItem(m, where.get(m.id)?.context_id === contextId
          ? undefined : firstTime.get(m.id) ?? toDate(m.createdAt ?? new Date())));
        await client.query(this.sql("save", [contextId, JSON.stringify(payload)]));
        await client.query(this.sql("touchThread", [threadId]));
      }
    });
    return { messages: CtxstoreMemory.normalized(messages) };
  }

  async updateMessages({ messages }: {
    messages: (Partial<Omit<MastraDBMessage, "createdAt">> & {
      id: string;
      content?: { metadata?: MastraMessageContentV2["metadata"]; content?: MastraMessageContentV2["content"] };
    })[];
  }): Promise<MastraDBMessage[]> {
    if (!messages?.length) return [];
    return withTransaction(this.pool, async (client) => {
      const existing = new Map((await this.readByIds(client, messages.map((m) => m.id))).map((f) => [f.message.id, f]));
      const touched = new Set<string>();
      for (const update of messages) {
        const found = existing.get(update.id);
        if (!found) continue;
        const { id, content, threadId, ...fields } = update;
        if (content === undefined && threadId === undefined && Object.keys(fields).length === 0) continue;
        const old = found.message;
        const merged: MastraDBMessage = { ...old, ...fields, id, createdAt: old.createdAt } as MastraDBMessage;
        if (content) {
          const oldContent = old.content as MastraMessageContentV2;
          merged.content = { ...oldContent, ...content } as MastraMessageContentV2;
          if (oldContent.metadata && content.metadata) {
            merged.content.metadata = { ...oldContent.metadata, ...content.metadata };
          }
        }
        touched.add(old.threadId as string);
        if (threadId !== undefined && threadId !== old.threadId) {
          const target = await this.readThread(client, threadId);
          if (!target) throw fail("UPDATE_MESSAGES", "FAILED", `Thread ${threadId} not found`);
          await client.query(this.sql("purge", [found.contextId, [id]]));
          await client.query(this.sql("save", [target.context_id, JSON.stringify([saveItem(merged, toDate(old.createdAt))])]));
          touched.add(threadId);
        } else {
          const item = saveItem(merged);
          await client.query(this.sql("update", [found.contextId, id, item.content, JSON.stringify(item.metadata), item.role]));
        }
      }
      for (const t of touched) await client.query(this.sql("touchThread", [t]));
      // (as Mastra's Postgres store returns its rows: the type column, 'v2' unless given)
      return (await this.readByIds(client, messages.map((m) => m.id))).map((f) => ({ ...f.message, type: f.message.type ?? "v2" }));
    });
  }

  override async deleteMessages(messageIds: string[]): Promise<void> {
    if (!messageIds?.length) return;
    await withTransaction(this.pool, async (client) => {
      const located = (await this.locate(client, messageIds)).filter((l) => l.thread_id !== null);
      for (const [contextId, ids] of group(located, (l) => l.context_id)) {
        await client.query(this.sql(this.deleteMode === "purge" ? "purge" : "delete", [contextId, ids.map((l) => l.message_id)]));
        await client.query(this.sql("touchThread", [(ids[0] as Located).thread_id]));
      }
    });
  }

  override async copyThread(args: StorageCloneThreadInput): Promise<StorageCopyThreadOutput> {
    const { sourceThreadId, newThreadId, resourceId, title, metadata, options } = args;
    return withTransaction(this.pool, async (client) => {
      const source = await this.readThread(client, sourceThreadId);
      if (!source) throw fail("CLONE_THREAD", "SOURCE_NOT_FOUND", `Source thread with id ${sourceThreadId} not found`);
      const targetId = newThreadId ?? randomUUID();
      await client.query(this.sql("lockThread", [targetId]));
      if (await this.readThread(client, targetId)) {
        throw fail("CLONE_THREAD", "THREAD_EXISTS", `Thread with id ${targetId} already exists`);
      }
      const filter = options?.messageFilter;
      const { rows } = await client.query(this.sql("page", [
        source.context_id,
        filter?.startDate ? toDate(filter.startDate).toISOString() : null,
        filter?.endDate ? toDate(filter.endDate).toISOString() : null,
        false, UNLIMITED, 0, false, false,
      ]));
      let copied = rows.map((r) => CtxstoreMemory.message(r, sourceThreadId, source.resource as string | null));
      if (filter?.messageIds?.length) {
        const wanted = new Set(filter.messageIds);
        copied = copied.filter((m) => wanted.has(m.id));
      }
      if (options?.messageLimit !== undefined && options.messageLimit > 0) copied = copied.slice(-options.messageLimit);
      const now = new Date();
      const last = copied[copied.length - 1];
      const clone: Record<string, unknown> = { sourceThreadId, clonedAt: now };
      if (last) clone.lastMessageId = last.id;
      const thread: StorageThreadType = {
        id: targetId,
        title: title ?? (source.title ? `Clone of ${source.title as string}` : ""),
        resourceId: resourceId ?? (source.resource as string),
        metadata: { ...(metadata ?? {}), clone },
        createdAt: now,
        updatedAt: now,
      };
      const { rows: saved } = await client.query(this.sql("saveThread", [
        thread.id, thread.title, thread.resourceId, JSON.stringify(thread.metadata), now.toISOString(), now.toISOString(),
        this.encrypted,
      ]));
      const messageIdMap: Record<string, string> = {};
      if (copied.length) {
        const payload = copied.map((m) => {
          const newId = randomUUID();
          messageIdMap[m.id] = newId;
          return saveItem({ ...m, id: newId, threadId: targetId, resourceId: thread.resourceId }, toDate(m.createdAt));
        });
        await client.query(this.sql("save", [saved[0].context_id, JSON.stringify(payload)]));
        await client.query(this.sql("touchThread", [thread.id]));
      }
      return { thread, messageIdMap };
    });
  }

  // ---- resources (working memory of resource scope) ---------------------------------------

  private static resource(id: string, value: Row): StorageResourceType {
    const resource: StorageResourceType = {
      id,
      metadata: (value.metadata as Record<string, unknown> | undefined) ?? {},
      createdAt: toDate(value.createdAt),
      updatedAt: toDate(value.updatedAt),
    };
    if (typeof value.workingMemory === "string") resource.workingMemory = value.workingMemory;
    return resource;
  }

  private static stored(resource: StorageResourceType): string {
    return JSON.stringify({
      workingMemory: resource.workingMemory ?? null,
      metadata: resource.metadata ?? {},
      createdAt: toDate(resource.createdAt).toISOString(),
      updatedAt: toDate(resource.updatedAt).toISOString(),
    });
  }

  override async getResourceById({ resourceId }: { resourceId: string }): Promise<StorageResourceType | null> {
    const { rows } = await this.pool.query(this.sql("getResource", [RESOURCES, resourceId]));
    const value = rows[0]?.value as Row | null | undefined;
    return value ? CtxstoreMemory.resource(resourceId, value) : null;
  }

  override async saveResource({ resource }: { resource: StorageResourceType }): Promise<StorageResourceType> {
    this.validateMetadataKeys(resource.metadata);
    try {
      await this.pool.query(this.sql("insertResource", [RESOURCES, resource.id, CtxstoreMemory.stored(resource)]));
    } catch (error) {
      if ((error as { code?: string }).code === "40001") {
        throw fail("SAVE_RESOURCE", "EXISTS", `resource ${resource.id} already exists: use updateResource`, "USER", error);
      }
      throw error;
    }
    return resource;
  }

  override async updateResource({ resourceId, workingMemory, metadata }: {
    resourceId: string;
    workingMemory?: string;
    metadata?: Record<string, unknown>;
  }): Promise<StorageResourceType> {
    this.validateMetadataKeys(metadata);
    // under the value's row lock: concurrent updates from any number of processes apply in turn
    return withTransaction(this.pool, async (client) => {
      const { rows } = await client.query(this.sql("lockResource", [RESOURCES, resourceId]));
      const value = (rows[0]?.value ?? {}) as Row;
      const now = new Date();
      const exists = value.createdAt !== undefined;
      const current: StorageResourceType = exists
        ? CtxstoreMemory.resource(resourceId, value)
        : { id: resourceId, metadata: {}, createdAt: now, updatedAt: now };
      const next: StorageResourceType = {
        ...current,
        metadata: { ...(current.metadata ?? {}), ...(metadata ?? {}) },
        updatedAt: now,
      };
      if (workingMemory !== undefined) next.workingMemory = workingMemory;
      await client.query(this.sql("putResource", [RESOURCES, resourceId, CtxstoreMemory.stored(next)]));
      return next;
    });
  }

  // ---- maintenance -----------------------------------------------------------------------

  /** Deletes every Mastra thread (with its messages) and resource of the connection's tenant. */
  async dangerouslyClearAll(): Promise<void> {
    await withTransaction(this.pool, async (client) => {
      const { rows } = await client.query(this.sql("listThreads", [null, "{}", "created_at", true, UNLIMITED, 0]));
      for (const row of rows) await client.query(this.sql("deleteContext", [row.context_id]));
      const resources = await client.query(this.sql("listResources", [RESOURCES]));
      for (const row of resources.rows) await client.query(this.sql("deleteResource", [RESOURCES, row.key]));
    });
  }
}

function group<T>(items: T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = groups.get(k) ?? [];
    list.push(item);
    groups.set(k, list);
  }
  return groups;
}
