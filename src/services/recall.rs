//! Hybrid recall of long-term memories: the tenant's scope, candidates from the vector index
//! (HNSW when one fits, else an exact scan), text and filters, ranked by `core::scoring`. Used by
//! ctx.recall and by the context assembly (ctx.build_context).

use std::collections::HashMap;

use pgrx::datum::{DatumWithOid, TimestampWithTimeZone};
use pgrx::pg_sys;
use pgrx::pg_sys::BuiltinOid::*;
use pgrx::spi::SpiClient;
use pgrx::{JsonB, Uuid};
use serde_json::{json, Value};

use crate::core::crypto::Key;
use crate::core::filter::{self, ColumnType, FilterTarget, Param};
use crate::core::knn::{self, Metric};
use crate::core::metrics::Counter;
use crate::core::namespace;
use crate::core::scoring::Weights;
use crate::error::{required, CtxError, CtxResult, ErrorKind};
use crate::plans::{
    explain_json, first_value, param_datum, prepared_shape, with_settings, Statement,
};
use crate::services::embedding_datum::Embedding;
use crate::services::keys;
use crate::services::memory_sealing::{memory_aad, open_memory_metadata};
use crate::services::metrics;

/// What filters over memories may address.
pub const MEMORY_FILTER: FilterTarget = FilterTarget {
    document: "m.metadata",
    columns: &[
        ("id", "m.id", ColumnType::Uuid),
        ("content", "m.content", ColumnType::Text),
        ("namespace", "m.namespace", ColumnType::TextArray),
        ("importance", "m.importance", ColumnType::Real),
        ("access_count", "m.access_count", ColumnType::Number),
        ("created_at", "m.created_at", ColumnType::Timestamp),
        (
            "last_accessed_at",
            "m.last_accessed_at",
            ColumnType::Timestamp,
        ),
        ("expires_at", "m.expires_at", ColumnType::Timestamp),
        ("source_context", "m.source_context", ColumnType::Uuid),
    ],
};

/// The rows a recall may return, as a SQL predicate over `ctx.memories m` and its arguments.
pub(crate) struct Scope {
    pub(crate) predicate: String,
    pub(crate) params: Vec<ScopeParam>,
    /// whether a caller's filter is part of the predicate
    filtered: bool,
}

pub(crate) enum ScopeParam {
    Filter(Param),
    Timestamp(TimestampWithTimeZone),
}

impl Scope {
    pub(crate) fn new(
        prefix: &[String],
        include_descendants: bool,
        as_of: Option<TimestampWithTimeZone>,
        filter: Option<&Value>,
    ) -> CtxResult<Scope> {
        let mut params = Vec::new();
        let mut parts = Vec::new();
        let (key_parts, key_params) =
            namespace::key_conditions("m.ns_key", prefix, include_descendants, 1);
        parts.extend(key_parts);
        params.extend(
            key_params
                .into_iter()
                .map(|k| ScopeParam::Filter(Param::Text(k))),
        );
        match as_of {
            None => parts.push("m.valid_to IS NULL".into()),
            Some(ts) => {
                params.push(ScopeParam::Timestamp(ts));
                let n = params.len();
                parts.push(format!("m.valid_from <= ${n}::timestamptz AND (m.valid_to IS NULL OR m.valid_to > ${n}::timestamptz)"));
            }
        }
        parts.push("(m.expires_at IS NULL OR m.expires_at > now())".into());
        let compiled = filter::compile(
            filter.unwrap_or(&Value::Null),
            &MEMORY_FILTER,
            params.len() + 1,
        )?;
        let filtered = compiled.sql != "true";
        if filtered {
            parts.push(format!("({})", compiled.sql));
        }
        params.extend(compiled.params.into_iter().map(ScopeParam::Filter));
        // The caller's tenant, a parameter (a cluster distributed by tenant routes on it):
        // row-level security says the same for application roles; an owner or BYPASSRLS role
        // acts in the tenant it set, as every other function does.
        params.push(ScopeParam::Filter(Param::Text(
            crate::services::tenant::current()?,
        )));
        parts.insert(0, format!("m.tenant = ${}", params.len()));
        Ok(Scope {
            predicate: parts.join(" AND "),
            params,
            filtered,
        })
    }

    /// The plan mode for a statement over this scope: generic (planned once) unless filtered —
    /// a filter's selectivity depends on values a generic plan does not see (it then guesses,
    /// and can pick a GIN index that reads every tenant's matches), so it is planned per call.
    fn plan_mode(&self) -> (&'static str, &'static str) {
        let mode = if self.filtered {
            "force_custom_plan"
        } else {
            crate::services::cluster::generic_plan_mode()
        };
        ("plan_cache_mode", mode)
    }

    /// The scope's predicate and argument values: equal keys, equal candidate sets.
    fn cache_key(&self) -> String {
        let mut key = self.predicate.clone();
        for p in &self.params {
            match p {
                ScopeParam::Filter(param) => key.push_str(&format!("\u{1f}{param:?}")),
                ScopeParam::Timestamp(ts) => key.push_str(&format!("\u{1f}{ts:?}")),
            }
        }
        key
    }

    fn next_param(&self) -> usize {
        self.params.len() + 1
    }

    /// The parameter holding the caller's tenant, e.g. `$3`.
    pub(crate) fn tenant_param(&self) -> String {
        format!("${}", self.params.len())
    }

    pub(crate) fn args(&self) -> Vec<DatumWithOid<'static>> {
        self.params
            .iter()
            .map(|p| match p {
                ScopeParam::Filter(param) => param_datum(param),
                ScopeParam::Timestamp(ts) => (*ts).into(),
            })
            .collect()
    }
}

/// A memory being ranked.
pub(crate) struct Candidate {
    pub(crate) id: Uuid,
    pub(crate) namespace: Vec<String>,
    pub(crate) content: String,
    pub(crate) metadata: Value,
    pub(crate) importance: f32,
    pub(crate) created_at: TimestampWithTimeZone,
    pub(crate) age_secs: f64,
    /// to the query, when there is one and this memory has an embedding of its dimension
    pub(crate) similarity: Option<f32>,
    /// read only when the caller asked for it
    pub(crate) embedding: Option<Vec<f32>>,
    pub(crate) text_rank: f64,
}

pub(crate) struct RecallRequest {
    pub(crate) scope: Scope,
    pub(crate) query: Option<Vec<f32>>,
    pub(crate) text: Option<String>,
    pub(crate) k: usize,
    pub(crate) weights: Weights,
    pub(crate) historical: bool,
    /// the caller's metric; None: the one registered for the query's dimension, else cosine
    pub(crate) metric: Option<Metric>,
    /// whether the answer carries each memory's embedding
    pub(crate) with_embedding: bool,
}

/// Vector and text candidates are over-fetched so the hybrid score can reorder them.
pub(crate) fn pool_size(k: usize) -> usize {
    (k * 4).max(40)
}

pub(crate) type Ranked = (Candidate, Option<f32>, f64);

pub(crate) fn run_recall(
    client: &mut SpiClient<'_>,
    request: &RecallRequest,
) -> CtxResult<Vec<Ranked>> {
    // Every statement of a recall is prepared (per shape when built at run time) and keeps one
    // generic plan — a recall plans nothing per call — except those whose selectivity depends
    // on the caller's values (a filter, a query text): they are planned per call.
    with_settings(
        &[(
            "plan_cache_mode",
            crate::services::cluster::generic_plan_mode(),
        )],
        || rank(client, request),
    )
}

fn rank(client: &mut SpiClient<'_>, request: &RecallRequest) -> CtxResult<Vec<Ranked>> {
    if request.k == 0 {
        return Ok(Vec::new());
    }
    let mut keys: Vec<(Uuid, i32)> = Vec::new();
    // the vector search's winners with their rows, when they are the whole answer
    let mut found_rows: Option<Vec<Candidate>> = None;
    // Ranked by similarity alone, the vector search's own best are the answer: no pool for the
    // hybrid score. Otherwise candidates are over-fetched so the hybrid score can reorder them.
    let want = if request.weights.similarity_only(request.text.is_some()) {
        request.k
    } else {
        pool_size(request.k)
    };
    let metric = match &request.query {
        Some(query) => {
            let registered = kept_index_metric(client, query.len())?;
            let metric = request
                .metric
                .or(registered.map(|index| index.metric))
                .unwrap_or(Metric::Cosine);
            match vector_candidates(client, request, query, metric, registered, want)? {
                Found::Keys(found) => keys.extend(found),
                Found::Rows(rows) => found_rows = Some(rows),
            }
            metric
        }
        None => Metric::Cosine,
    };
    if let Some(text) = &request.text {
        metrics::count(Counter::RecallsText, 1);
        let sql = format!(
            "SELECT m.id, m.version FROM ctx.memories m, websearch_to_tsquery('english', ${q}) q
              WHERE {} AND m.fts @@ q ORDER BY ts_rank_cd(m.fts, q) DESC, m.created_at DESC, m.id LIMIT {}",
            request.scope.predicate,
            pool_size(request.k),
            q = request.scope.next_param(),
        );
        let mut args = request.scope.args();
        args.push(text.clone().into());
        // (the query text's selectivity decides the plan: planned per call)
        keys.extend(memory_keys(
            client,
            &sql,
            &args,
            &[("plan_cache_mode", "force_custom_plan")],
        )?);
    }
    if request.query.is_none() && request.text.is_none() {
        // filter-only: the most recent matches
        let sql = format!(
            "SELECT m.id, m.version FROM ctx.memories m WHERE {} ORDER BY m.created_at DESC, m.id LIMIT {}",
            request.scope.predicate, request.k
        );
        keys.extend(memory_keys(
            client,
            &sql,
            &request.scope.args(),
            &[request.scope.plan_mode()],
        )?);
    }
    let candidates = match found_rows {
        Some(rows) => rows,
        None => {
            keys.sort();
            keys.dedup();
            load_candidates(
                client,
                &keys,
                request.text.as_deref(),
                request.query.as_deref().map(|q| (q, metric)),
                request.with_embedding,
            )?
        }
    };

    let mut ranked: Vec<Ranked> = candidates
        .into_iter()
        .map(|c| {
            // (no stored embedding, or one of another dimension: 0)
            let similarity = request.query.as_ref().map(|_| c.similarity.unwrap_or(0.0));
            let score = request.weights.score(
                similarity.unwrap_or(0.0) as f64,
                c.text_rank,
                c.age_secs,
                c.importance as f64,
            );
            (c, similarity, score)
        })
        .collect();
    if request.query.is_none() && request.text.is_none() {
        ranked.sort_by(|a, b| {
            b.0.created_at
                .cmp(&a.0.created_at)
                .then(a.0.id.as_bytes().cmp(b.0.id.as_bytes()))
        });
    } else {
        ranked.sort_by(|a, b| {
            b.2.total_cmp(&a.2)
                .then(a.0.id.as_bytes().cmp(b.0.id.as_bytes()))
        });
    }
    ranked.truncate(request.k);

    if !request.historical && !ranked.is_empty() && access_tracked() {
        static TOUCH: Statement = Statement {
            sql: "UPDATE ctx.memories SET last_accessed_at = now(), access_count = access_count + 1
                   WHERE tenant = $2 AND id = ANY($1) AND valid_to IS NULL",
            args: &[UUIDARRAYOID, TEXTOID],
            writes: true,
        };
        let ids: Vec<Uuid> = ranked.iter().map(|(c, _, _)| c.id).collect();
        let plan = TOUCH.plan(client)?;
        client.update(
            &*plan,
            None,
            &[ids.into(), crate::services::tenant::current()?.into()],
        )?;
    }
    Ok(ranked)
}

/// Whether this recall records an access of what it returns: only when
/// `ctxstore.track_memory_access` asks for it, and never in a read-only transaction or on a
/// standby (a read stays a read).
fn access_tracked() -> bool {
    crate::gucs::TRACK_MEMORY_ACCESS.get() && !crate::services::transaction::read_only()
}

/// The columns a candidate is read from, in `candidates_of`'s order, over `ctx.memories` as
/// `$m`; the similarity, the embedding and the text rank are the statement's expressions.
macro_rules! candidate_columns {
    ($m:literal, $similarity:literal, $embedding:literal, $text_rank:literal) => {
        concat!(
            $m,
            ".id, ",
            $m,
            ".version, ",
            $m,
            ".namespace, ",
            $m,
            ".content, ",
            $m,
            ".metadata, ",
            $m,
            ".importance, ",
            $m,
            ".created_at, extract(epoch FROM now() - ",
            $m,
            ".last_accessed_at)::float8, ",
            $similarity,
            ", ",
            $embedding,
            ", (",
            $text_rank,
            ")::float8, ",
            $m,
            ".content_enc, ",
            $m,
            ".metadata_enc"
        )
    };
}

/// The candidates' rows, with their similarity to `query` under its metric, scored in the
/// statement from the stored bytes (no embedding leaves it).
pub(crate) fn load_candidates(
    client: &SpiClient<'_>,
    keys: &[(Uuid, i32)],
    text: Option<&str>,
    query: Option<(&[f32], Metric)>,
    with_embedding: bool,
) -> CtxResult<Vec<Candidate>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    static LOAD: Statement = Statement {
        sql: concat!(
            "SELECT ",
            candidate_columns!(
                "m",
                "CASE WHEN $5::real[] IS NOT NULL
                      THEN ctx.embedding_similarity(m.embedding, $5::real[]::ctx.embedding, $6::text) END",
                "CASE WHEN $7 THEN m.embedding END",
                "CASE WHEN $3::text IS NULL THEN 0
                      ELSE ts_rank_cd(m.fts, websearch_to_tsquery('english', $3::text)) END"
            ),
            " FROM unnest($1::uuid[], $2::int[]) AS k(id, version)
              JOIN ctx.memories m ON m.tenant = $4 AND m.id = k.id AND m.version = k.version"
        ),
        args: &[
            UUIDARRAYOID,
            INT4ARRAYOID,
            TEXTOID,
            TEXTOID,
            FLOAT4ARRAYOID,
            TEXTOID,
            BOOLOID,
        ],
        writes: false,
    };
    let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
    let versions: Vec<i32> = keys.iter().map(|k| k.1).collect();
    let plan = LOAD.plan(client)?;
    let table = client.select(
        &*plan,
        None,
        &[
            ids.into(),
            versions.into(),
            text.into(),
            crate::services::tenant::current()?.into(),
            query.map(|(q, _)| q.to_vec()).into(),
            query.map(|(_, metric)| metric.name()).into(),
            with_embedding.into(),
        ],
    )?;
    candidates_of(client, table)
}

/// Candidates from a statement's rows (the columns of `candidate_columns!`), sealed ones opened.
fn candidates_of(
    client: &SpiClient<'_>,
    table: pgrx::spi::SpiTupleTable<'_>,
) -> CtxResult<Vec<Candidate>> {
    // encrypted namespaces' keys, looked up once per namespace
    let mut data_keys: HashMap<Vec<String>, Key> = HashMap::new();
    table
        .map(|row| {
            let id: Uuid = required(row.get(1)?, "id")?;
            let namespace: Vec<String> = required(row.get(3)?, "namespace")?;
            let (content, metadata) = match row.get::<Vec<u8>>(12)? {
                Some(sealed) => {
                    let data_key = match data_keys.get(&namespace) {
                        Some(k) => *k,
                        None => {
                            let scope =
                                keys::namespace_scope(client, &namespace)?.ok_or_else(|| {
                                    CtxError::new(
                                        ErrorKind::DataCorrupted,
                                        format!(
                                            "memory {id} is encrypted but its namespace has no key"
                                        ),
                                    )
                                })?;
                            let k = keys::data_key(client, &scope)?;
                            data_keys.insert(namespace.clone(), k);
                            k
                        }
                    };
                    let content = keys::open_text(
                        &data_key,
                        &sealed,
                        &memory_aad(id, "memories.content"),
                        &format!("memory {id}"),
                    )?;
                    let metadata = match row.get::<Vec<u8>>(13)? {
                        Some(m) => open_memory_metadata(&data_key, id, &m)?,
                        None => json!({}),
                    };
                    (content, metadata)
                }
                None => (
                    required(row.get(4)?, "content")?,
                    row.get::<JsonB>(5)?.map_or(json!({}), |j| j.0),
                ),
            };
            Ok(Candidate {
                id,
                namespace,
                content,
                metadata,
                importance: required(row.get(6)?, "importance")?,
                created_at: required(row.get(7)?, "created_at")?,
                age_secs: row.get(8)?.unwrap_or(0.0),
                similarity: row.get(9)?,
                embedding: row.get::<Embedding>(10)?.map(|e| e.0),
                text_rank: row.get(11)?.unwrap_or(0.0),
            })
        })
        .collect()
}

/// The vector index registered for one embedding dimension (ctx.create_vector_index).
#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) struct VectorIndex {
    pub(crate) metric: Metric,
    /// the rows the index holds (its statistics), None when the index does not exist: after a
    /// restore the registry can list an index the database lacks, and recall then scans
    /// exactly, under the registered metric all the same
    pub(crate) rows: Option<f64>,
}

/// The vector index registered for vectors of `dims` dimensions, if any.
pub(crate) fn index_metric(client: &SpiClient<'_>, dims: usize) -> CtxResult<Option<VectorIndex>> {
    static INDEX: Statement = Statement {
        sql: "SELECT v.metric, (SELECT greatest(c.reltuples, 0)::float8 FROM pg_catalog.pg_class c
                                  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                                 WHERE c.relname = v.index_name AND n.nspname = 'ctx')
                FROM ctx.vector_indexes v WHERE v.dims = $1",
        args: &[INT4OID],
        writes: false,
    };
    let plan = INDEX.plan(client)?;
    let table = client.select(&*plan, Some(1), &[(dims as i32).into()])?;
    match table.into_iter().next() {
        Some(row) => {
            let metric: String = required(row.get(1)?, "metric")?;
            Ok(Some(VectorIndex {
                metric: Metric::parse(&metric)?,
                rows: row.get(2)?,
            }))
        }
        None => Ok(None),
    }
}

/// The schema pgvector is installed in, if it is.
pub(crate) fn vector_schema(client: &SpiClient<'_>) -> CtxResult<Option<String>> {
    static SCHEMA: Statement = Statement {
        sql:
            "SELECT quote_ident(n.nspname) FROM pg_catalog.pg_extension e
                JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector'",
        args: &[],
        writes: false,
    };
    let plan = SCHEMA.plan(client)?;
    first_value(client.select(&*plan, Some(1), &[])?)
}

/// What recall reads of the catalog on every call — the vector index of a dimension and
/// pgvector's schema — kept per backend: until any relcache or type invalidation (an index
/// created or dropped, an ANALYZE's new statistics, an extension moved or dropped) and at most
/// a minute (a registry row written directly).
struct CatalogAnswer<T> {
    at: std::time::Instant,
    value: T,
}

thread_local! {
    static INDEXES: std::cell::RefCell<HashMap<usize, CatalogAnswer<Option<VectorIndex>>>> =
        std::cell::RefCell::new(HashMap::new());
    static SCHEMA: std::cell::RefCell<Option<CatalogAnswer<Option<String>>>> =
        const { std::cell::RefCell::new(None) };
}

/// Relcache invalidation callback (registered in `_PG_init`).
pub(crate) unsafe extern "C-unwind" fn forget_catalog(_arg: pg_sys::Datum, _relid: pg_sys::Oid) {
    let _ = INDEXES.try_with(|k| k.try_borrow_mut().map(|mut k| k.clear()));
    let _ = SCHEMA.try_with(|k| k.try_borrow_mut().map(|mut k| *k = None));
}

/// Syscache callback on types (registered in `_PG_init`): pgvector's types moved or dropped.
pub(crate) unsafe extern "C-unwind" fn forget_catalog_types(
    arg: pg_sys::Datum,
    _cache: std::ffi::c_int,
    _hash: u32,
) {
    unsafe { forget_catalog(arg, pg_sys::Oid::INVALID) };
}

fn fresh<T>(answer: &CatalogAnswer<T>) -> bool {
    answer.at.elapsed() < ESTIMATE_LIFETIME
}

/// [`index_metric`], kept (see [`CatalogAnswer`]).
fn kept_index_metric(client: &SpiClient<'_>, dims: usize) -> CtxResult<Option<VectorIndex>> {
    if let Some(value) =
        INDEXES.with(|k| k.borrow().get(&dims).filter(|a| fresh(a)).map(|a| a.value))
    {
        return Ok(value);
    }
    let value = index_metric(client, dims)?;
    INDEXES.with(|k| {
        let mut kept = k.borrow_mut();
        if kept.len() >= 64 {
            kept.clear();
        }
        kept.insert(
            dims,
            CatalogAnswer {
                at: std::time::Instant::now(),
                value,
            },
        );
    });
    Ok(value)
}

/// [`vector_schema`], kept (see [`CatalogAnswer`]).
fn kept_vector_schema(client: &SpiClient<'_>) -> CtxResult<Option<String>> {
    if let Some(value) = SCHEMA.with(|k| {
        k.borrow()
            .as_ref()
            .filter(|a| fresh(a))
            .map(|a| a.value.clone())
    }) {
        return Ok(value);
    }
    let value = vector_schema(client)?;
    SCHEMA.with(|k| {
        *k.borrow_mut() = Some(CatalogAnswer {
            at: std::time::Instant::now(),
            value: value.clone(),
        })
    });
    Ok(value)
}

/// What a vector search found: the keys of its best matches, or, when those are the whole
/// answer (ranked by similarity alone, no text), the winners' rows read by the same statement.
enum Found {
    Keys(Vec<(Uuid, i32)>),
    Rows(Vec<Candidate>),
}

/// The best vector matches: through HNSW when an index of this metric exists and the candidate
/// set is large, else (or when the index yields too few rows) by an exact scan.
fn vector_candidates(
    client: &mut SpiClient<'_>,
    request: &RecallRequest,
    query: &[f32],
    metric: Metric,
    registered: Option<VectorIndex>,
    want: usize,
) -> CtxResult<Found> {
    // an index ordered by another metric would return another top-k: scan exactly instead
    let indexed_rows = registered
        .filter(|index| index.metric == metric)
        .and_then(|index| index.rows);
    if let (false, Some(indexed_rows)) = (request.historical, indexed_rows) {
        if let Some(schema) = kept_vector_schema(client)? {
            let ef_search = (want * 3).clamp(100, 1000);
            let threshold = crate::gucs::EXACT_RECALL_MAX_CANDIDATES.get();
            let exact_for = |candidates: f64| match threshold {
                t if t < 0 => knn::exact_scan_is_cheaper(candidates, want, indexed_rows, ef_search),
                t => candidates <= f64::from(t),
            };
            let mut exact = exact_for(estimated_candidates(client, request)?);
            if exact && request.scope.filtered {
                // The planner has no statistics for a metadata filter (jsonb containment): it
                // guesses a fraction of a percent, even for a filter every row matches, and the
                // exact scan would then read them all. Count them, as far as it matters.
                let bound = match threshold {
                    t if t < 0 => knn::exact_scan_bound(want, indexed_rows, ef_search),
                    t => t as usize + 1,
                };
                exact = exact_for(counted_candidates(client, request, bound)?);
            }
            if !exact {
                // (the index returns rows in relaxed order: the walk's `want` are re-ranked
                // exactly in the statement. Fetching twice k instead cost a filtered recall a
                // second round of the iterative scan: at 10 % of 100k, 2.59 against 2.07 ms
                // for recall@10 0.970 against 0.960.)
                let found =
                    hnsw_candidates(client, request, query, metric, &schema, want, ef_search)?;
                if found.len() >= want.min(request.k) {
                    metrics::count(Counter::RecallsHnsw, 1);
                    return Ok(found.into_found());
                }
            }
        }
    }
    metrics::count(Counter::RecallsExact, 1);
    // pgvector's operator needs the casts to its type, made with the index of this metric
    let scored_by_pgvector = match indexed_rows {
        Some(_) => kept_vector_schema(client)?,
        None => None,
    };
    exact_candidates(client, request, query, metric, want, scored_by_pgvector).map(Found::Keys)
}

/// The planner's estimate of the candidate rows (a namespace holds one embedding dimension),
/// kept per backend for a minute per scope: a recall plans nothing it has planned recently.
pub(crate) fn estimated_candidates(
    client: &mut SpiClient<'_>,
    request: &RecallRequest,
) -> CtxResult<f64> {
    let key = request.scope.cache_key();
    let now = std::time::Instant::now();
    if let Some(rows) = cached_estimate(&key, now) {
        return Ok(rows);
    }
    let sql = format!(
        "SELECT 1 FROM ctx.memories m WHERE {}",
        request.scope.predicate
    );
    let plan = explain_json(client, &sql, &request.scope.args())?;
    let rows = plan
        .and_then(|p| serde_json::from_str::<Value>(&p).ok())
        .and_then(|p| p.pointer("/0/Plan/Plan Rows").and_then(Value::as_f64))
        .unwrap_or(f64::MAX);
    keep_estimate(key, rows, now);
    Ok(rows)
}

fn cached_estimate(key: &str, now: std::time::Instant) -> Option<f64> {
    ESTIMATES.with(|e| {
        e.borrow()
            .get(key)
            .filter(|(_, at)| now.duration_since(*at) < ESTIMATE_LIFETIME)
            .map(|(rows, _)| *rows)
    })
}

fn keep_estimate(key: String, rows: f64, now: std::time::Instant) {
    ESTIMATES.with(|e| {
        let mut e = e.borrow_mut();
        if e.len() >= ESTIMATES_KEPT {
            e.retain(|_, (_, at)| now.duration_since(*at) < ESTIMATE_LIFETIME);
            if e.len() >= ESTIMATES_KEPT {
                e.clear();
            }
        }
        e.insert(key, (rows, now));
    });
}

/// The candidate rows of a filtered scope, counted up to `bound` (a count at the bound means
/// "at least"), kept like the estimates: a minute per scope and bound.
fn counted_candidates(
    client: &mut SpiClient<'_>,
    request: &RecallRequest,
    bound: usize,
) -> CtxResult<f64> {
    let key = format!("{}\u{1e}{bound}", request.scope.cache_key());
    let now = std::time::Instant::now();
    if let Some(rows) = cached_estimate(&key, now) {
        return Ok(rows);
    }
    let sql = format!(
        "SELECT count(*) FROM (SELECT FROM ctx.memories m WHERE {} LIMIT {bound}) c",
        request.scope.predicate
    );
    let table = client.select(sql.as_str(), Some(1), &request.scope.args())?;
    let rows = first_value::<i64>(table)?.unwrap_or(0) as f64;
    keep_estimate(key, rows, now);
    Ok(rows)
}

/// How long a scope's estimate is trusted (statistics change at ANALYZE, not per row), and how
/// many scopes a backend keeps.
const ESTIMATE_LIFETIME: std::time::Duration = std::time::Duration::from_secs(60);
const ESTIMATES_KEPT: usize = 1024;

thread_local! {
    static ESTIMATES: std::cell::RefCell<HashMap<String, (f64, std::time::Instant)>> =
        std::cell::RefCell::new(HashMap::new());
}

/// What an HNSW walk returned, with its length (a short walk falls back to the exact scan).
enum Walked {
    Keys(Vec<(Uuid, i32)>),
    Rows(Vec<Candidate>),
}

impl Walked {
    fn len(&self) -> usize {
        match self {
            Walked::Keys(keys) => keys.len(),
            Walked::Rows(rows) => rows.len(),
        }
    }

    fn into_found(self) -> Found {
        match self {
            Walked::Keys(keys) => Found::Keys(keys),
            Walked::Rows(rows) => Found::Rows(rows),
        }
    }
}

fn hnsw_candidates(
    client: &mut SpiClient<'_>,
    request: &RecallRequest,
    query: &[f32],
    metric: Metric,
    schema: &str,
    want: usize,
    ef_search: usize,
) -> CtxResult<Walked> {
    let dims = query.len();
    let (_, operator) = metric.pgvector_opclass();
    let q = request.scope.next_param();
    // When the walk's re-ranked best are the answer (ranked by similarity alone, no text to
    // merge), the walk reads the winners' rows too: one statement, where a second would look
    // them up again.
    let whole_answer = request.text.is_none() && request.weights.similarity_only(false);
    let columns = if whole_answer {
        "m.id, m.version, m.namespace, m.content, m.metadata, m.importance, m.created_at,
         m.last_accessed_at, m.embedding, m.content_enc, m.metadata_enc"
    } else {
        "m.id, m.version, m.embedding"
    };
    let walk = format!(
        "SELECT {columns} FROM ctx.memories m
          WHERE {} AND ctx.embedding_dims(m.embedding) = {dims} AND m.valid_to IS NULL
          ORDER BY (m.embedding::{schema}.vector({dims})) OPERATOR({schema}.{operator}) (${q}::{schema}.vector({dims}))
          LIMIT {want}",
        request.scope.predicate,
    );
    let similarity = format!(
        "ctx.embedding_similarity(c.embedding, ${q}, '{metric}')",
        metric = metric.name()
    );
    // the walk's rows re-ranked by their exact similarity, read in place
    let sql = if whole_answer {
        format!(
            concat!(
                "SELECT ",
                candidate_columns!("c", "{similarity}", "{embedding}", "0"),
                " FROM ({walk}) c ORDER BY 9 DESC NULLS LAST, c.id"
            ),
            similarity = similarity,
            embedding = if request.with_embedding {
                "c.embedding"
            } else {
                "NULL::ctx.embedding"
            },
            walk = walk,
        )
    } else {
        format!("SELECT c.id, c.version FROM ({walk}) c")
    };
    let mut args = request.scope.args();
    args.push(Embedding(query.to_vec()).into());
    // Iterative scans keep walking the graph until enough rows pass the filter. The plan is
    // generic (made once per shape, never per call) and, with sorting off, it is the index's
    // order: the path was chosen already. The settings are restored when this returns.
    let ef_search = ef_search.to_string();
    let settings = [
        ("hnsw.iterative_scan", "relaxed_order"),
        ("hnsw.ef_search", ef_search.as_str()),
        ("enable_sort", "off"),
    ];
    if whole_answer {
        let plan = prepared_shape(client, &sql, &args)?;
        with_settings(&settings, || {
            candidates_of(client, client.select(&*plan, None, &args)?)
        })
        .map(Walked::Rows)
    } else {
        memory_keys(client, &sql, &args, &settings).map(Walked::Keys)
    }
}

/// The (id, version) keys a statement over `ctx.memories m` selects, its plan kept per shape
/// and run under `settings`.
fn memory_keys(
    client: &SpiClient<'_>,
    sql: &str,
    args: &[DatumWithOid<'static>],
    settings: &[(&str, &str)],
) -> CtxResult<Vec<(Uuid, i32)>> {
    let plan = prepared_shape(client, sql, args)?;
    with_settings(settings, || {
        client
            .select(&*plan, None, args)?
            .map(|row| {
                Ok((
                    required(row.get(1)?, "id")?,
                    required(row.get(2)?, "version")?,
                ))
            })
            .collect()
    })
}

/// The best matches by an exact scan: the executor walks the scope's candidates (through the
/// namespace index) and keeps the top `want` by `ctx.embedding_similarity`, which reads each
/// stored value in place — nothing is copied out to Rust but the winners' keys.
fn exact_candidates(
    client: &SpiClient<'_>,
    request: &RecallRequest,
    query: &[f32],
    metric: Metric,
    want: usize,
    pgvector_schema: Option<String>,
) -> CtxResult<Vec<(Uuid, i32)>> {
    let (dims, q) = (query.len(), request.scope.next_param());
    // With pgvector and an index of this metric (whose casts it needs), pgvector's operator
    // scores the rows (a C call per row: a third less than ours through the extension's
    // function layer, measured on 1,000 rows); `+ 0` keeps the vector index out of an exact
    // scan. Both order by the same distance (a zero vector aside: NaN for pgvector, last).
    let order = match pgvector_schema {
        Some(schema) => format!(
            "((m.embedding::{schema}.vector({dims})) OPERATOR({schema}.{operator}) (${q}::{schema}.vector({dims}))) OPERATOR(pg_catalog.+) 0::pg_catalog.float8",
            operator = metric.pgvector_opclass().1,
        ),
        None => format!(
            "ctx.embedding_similarity(m.embedding, ${q}, '{metric}') DESC NULLS LAST",
            metric = metric.name()
        ),
    };
    let sql = format!(
        "SELECT m.id, m.version FROM ctx.memories m
          WHERE {} AND ctx.embedding_dims(m.embedding) = {dims}
          ORDER BY {order}, m.id
          LIMIT {want}",
        request.scope.predicate,
    );
    let mut args = request.scope.args();
    args.push(Embedding(query.to_vec()).into());
    let found = memory_keys(client, &sql, &args, &[request.scope.plan_mode()])?;
    if found.is_empty() {
        // nothing of the query's dimension: say which dimension the scope's embeddings have
        let sql = format!(
            "SELECT ctx.embedding_dims(m.embedding) FROM ctx.memories m
              WHERE {} AND m.embedding IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1",
            request.scope.predicate
        );
        let other: Option<i32> =
            first_value(client.select(sql.as_str(), Some(1), &request.scope.args())?)?;
        if let Some(dims) = other {
            return Err(CtxError::invalid(format!(
                "query_embedding has {} dimensions but the memories searched have {dims}",
                query.len()
            ))
            .with_hint("embed the query with the model used for these memories"));
        }
    }
    Ok(found)
}

/// A memory recalled for context assembly.
pub(crate) struct Recalled {
    pub id: Uuid,
    pub namespace: Vec<String>,
    pub content: String,
    pub score: f64,
}

/// Recall with default weights under `namespace` (descendants included), for `ctx.build_context`.
pub(crate) fn recall_for_assembly(
    client: &mut SpiClient<'_>,
    namespace: &[String],
    query: Option<Vec<f32>>,
    text: Option<String>,
    k: usize,
) -> CtxResult<Vec<Recalled>> {
    let request = RecallRequest {
        scope: Scope::new(namespace, true, None, None)?,
        query,
        text,
        k,
        weights: Weights::default(),
        historical: false,
        metric: None,
        with_embedding: false,
    };
    Ok(run_recall(client, &request)?
        .into_iter()
        .map(|(c, _, score)| Recalled {
            id: c.id,
            namespace: c.namespace,
            content: c.content,
            score,
        })
        .collect())
}
