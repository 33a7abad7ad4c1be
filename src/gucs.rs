//! Every `ctxstore.*` setting, defined in one place.

use std::ffi::CString;

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting, PostgresGucEnum};

use crate::core::tokenizer::Encoding;

/// `ctxstore.tokenizer`: the encoding new contexts count tokens with.
#[derive(PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum TokenizerSetting {
    #[name = c"o200k_base"]
    O200kBase,
    #[name = c"cl100k_base"]
    Cl100kBase,
}

impl TokenizerSetting {
    pub fn encoding(self) -> Encoding {
        match self {
            TokenizerSetting::O200kBase => Encoding::O200kBase,
            TokenizerSetting::Cl100kBase => Encoding::Cl100kBase,
        }
    }
}

pub static TOKENIZER: GucSetting<TokenizerSetting> =
    GucSetting::<TokenizerSetting>::new(TokenizerSetting::O200kBase);

/// `ctxstore.max_message_bytes`: the largest message content accepted (bytes of UTF-8).
pub static MAX_MESSAGE_BYTES: GucSetting<i32> = GucSetting::<i32>::new(1024 * 1024);

/// `ctxstore.exact_recall_max_candidates`: recall scans candidates exactly up to this estimate,
/// and uses the HNSW index (when one exists) above it; -1 (the default) weighs the two by
/// `core::knn::exact_scan_is_cheaper`.
pub static EXACT_RECALL_MAX_CANDIDATES: GucSetting<i32> = GucSetting::<i32>::new(-1);

/// `ctxstore.track_memory_access`: whether a recall records the access of what it returns
/// (`last_accessed_at`, `access_count`) — a write per recall, so off unless asked for.
pub static TRACK_MEMORY_ACCESS: GucSetting<bool> = GucSetting::<bool>::new(false);

/// `ctxstore.direct_reads`: whether counts and pages of a context's messages read its indexes
/// directly (services::direct_reads) or through SQL; both read the same rows.
pub static DIRECT_READS: GucSetting<bool> = GucSetting::<bool>::new(true);

/// `ctxstore.master_key`: the master keys (`id:hex`, first = current); superuser-only, hidden
/// from non-superusers. `ctxstore.master_key_file`: a file holding them instead.
pub static MASTER_KEY: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static MASTER_KEY_FILE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// `ctxstore.encrypt_new_contexts`: the default of `ctx.create_context(encrypted => …)`.
pub static ENCRYPT_NEW_CONTEXTS: GucSetting<bool> = GucSetting::<bool>::new(false);

/// `ctxstore.tenant`: the tenant of the session (row-level security compares rows with it).
pub static TENANT: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// `ctxstore.bound_tenant`: on a Citus cluster, the tenant of a role bound with
/// ctx.bind_role_to_tenant, kept as the role's own setting (ALTER ROLE … SET reaches every
/// node, and applies to the connections Citus opens as the role); superuser-only.
pub static BOUND_TENANT: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// `ctxstore.traceparent`: a W3C traceparent the audit log records with each change.
pub static TRACEPARENT: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// `ctxstore.metrics`: whether calls update the metrics (ctx.metrics).
pub static METRICS: GucSetting<bool> = GucSetting::<bool>::new(true);

/// `ctxstore.sweep_interval`: seconds between the background worker's sweeps (0: off).
pub static SWEEP_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(0);

/// `ctxstore.database`: the database the background worker sweeps.
pub static DATABASE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"postgres"));

/// `ctxstore.otlp_endpoint`: OTLP/HTTP base URL metrics and slow-call spans are pushed to.
pub static OTLP_ENDPOINT: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// `ctxstore.otlp_interval`: seconds between OTLP exports.
pub static OTLP_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(10);

/// `ctxstore.slow_call_ms`: calls slower than this are exported as spans (0: none).
pub static SLOW_CALL_MS: GucSetting<i32> = GucSetting::<i32>::new(100);

pub fn register() {
    GucRegistry::define_bool_guc(
        c"ctxstore.metrics",
        c"Whether ctxstore calls update the metrics (ctx.metrics, ctx.metrics_prometheus).",
        c"Counters live in shared memory when ctxstore is in shared_preload_libraries, else per session.",
        &METRICS,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"ctxstore.track_memory_access",
        c"Whether ctx.recall records an access of the memories it returns (last_accessed_at, access_count).",
        c"Off: recall only reads. On: one UPDATE per recall in read-write transactions; read-only transactions and standbys never record.",
        &TRACK_MEMORY_ACCESS,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"ctxstore.direct_reads",
        c"Whether counts, pages and windows of a context's messages read its indexes without a plan.",
        c"On: loops over the index entries (counts with an index-only scan's visibility check). Off: the same reads through SQL. Forks, Citus clusters and serializable transactions always read through SQL.",
        &DIRECT_READS,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"ctxstore.sweep_interval",
        c"Seconds between sweeps by the background worker (0 turns them off).",
        c"Needs ctxstore in shared_preload_libraries; each run calls ctx.sweep() in ctxstore.database until nothing is left.",
        &SWEEP_INTERVAL,
        0,
        86_400,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    // (a server-start setting can only be defined while the library is preloaded)
    if unsafe { pgrx::pg_sys::process_shared_preload_libraries_in_progress } {
        GucRegistry::define_string_guc(
            c"ctxstore.database",
            c"The database ctxstore's background worker connects to for sweeps.",
            c"",
            &DATABASE,
            GucContext::Postmaster,
            GucFlags::default(),
        );
    }
    GucRegistry::define_string_guc(
        c"ctxstore.otlp_endpoint",
        c"OTLP/HTTP endpoint (e.g. http://127.0.0.1:4318) the background worker pushes metrics and slow-call spans to.",
        c"Empty turns export off. Plain http only; the worker posts to <endpoint>/v1/metrics and /v1/traces.",
        &OTLP_ENDPOINT,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"ctxstore.otlp_interval",
        c"Seconds between OTLP exports.",
        c"",
        &OTLP_INTERVAL,
        1,
        3600,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"ctxstore.slow_call_ms",
        c"ctxstore calls slower than this many milliseconds are exported as OTLP spans (0: none).",
        c"",
        &SLOW_CALL_MS,
        0,
        3_600_000,
        GucContext::Suset,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_string_guc(
        c"ctxstore.master_key",
        c"Master keys that wrap the data keys of encrypted contexts and namespaces.",
        c"'key_id:<64 hex digits>' entries separated by commas; the first wraps new keys. Superuser only, hidden from others.",
        &MASTER_KEY,
        GucContext::Suset,
        GucFlags::SUPERUSER_ONLY | GucFlags::NO_SHOW_ALL | GucFlags::NO_RESET_ALL,
    );
    GucRegistry::define_string_guc(
        c"ctxstore.master_key_file",
        c"File holding the master keys (one 'key_id:hex' per line), used when ctxstore.master_key is empty.",
        c"Read by the server process; make it readable only by the server's OS user.",
        &MASTER_KEY_FILE,
        GucContext::Suset,
        GucFlags::SUPERUSER_ONLY,
    );
    GucRegistry::define_bool_guc(
        c"ctxstore.encrypt_new_contexts",
        c"Whether ctx.create_context encrypts new contexts by default.",
        c"",
        &ENCRYPT_NEW_CONTEXTS,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"ctxstore.tenant",
        c"The tenant of this session: row-level security limits every ctxstore table to it.",
        c"Set by the application per session or with SET LOCAL per transaction; a role bound with ctx.bind_role_to_tenant always has its tenant.",
        &TENANT,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"ctxstore.bound_tenant",
        c"On a Citus cluster: the tenant the role is bound to, as a setting of the role on every node.",
        c"Set by ctx.bind_role_to_tenant with ALTER ROLE ... SET when Citus is installed; a worker resolves a role's tenant from it (role OIDs differ between nodes). Superuser-only: a role cannot change it.",
        &BOUND_TENANT,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"ctxstore.traceparent",
        c"W3C traceparent of the current request, recorded in the audit log.",
        c"",
        &TRACEPARENT,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_enum_guc(
        c"ctxstore.tokenizer",
        c"Token encoding used by new contexts and by ctx.count_tokens.",
        c"o200k_base (GPT-4o and later) or cl100k_base (GPT-4, GPT-3.5). A context keeps the encoding it was created with.",
        &TOKENIZER,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"ctxstore.max_message_bytes",
        c"Largest message content ctxstore accepts, in bytes.",
        c"Appends above it fail with SQLSTATE 54000. Only superusers may change it.",
        &MAX_MESSAGE_BYTES,
        1,
        i32::MAX / 2,
        GucContext::Suset,
        GucFlags::UNIT_BYTE,
    );
    GucRegistry::define_int_guc(
        c"ctxstore.exact_recall_max_candidates",
        c"Largest estimated candidate set that recall scans exactly (-1: chosen by cost).",
        c"Above it, recall uses the HNSW index of ctx.create_vector_index when one exists. 0 always uses the index; -1 scans exactly while the candidates are fewer than the square root of 7 x k x the rows the index holds.",
        &EXACT_RECALL_MAX_CANDIDATES,
        -1,
        i32::MAX,
        GucContext::Userset,
        GucFlags::default(),
    );
    // SAFETY: called from _PG_init, after the variables above are defined.
    unsafe { pgrx::pg_sys::MarkGUCPrefixReserved(c"ctxstore".as_ptr()) };
}

pub fn max_message_bytes() -> usize {
    MAX_MESSAGE_BYTES.get().max(1) as usize
}

pub fn default_encoding() -> Encoding {
    TOKENIZER.get().encoding()
}

/// `ctxstore.traceparent` exactly as set, untrimmed: what `current_setting` gives SQL (the
/// audit log's trace id must be the one `ctx.current_trace_id()` reads).
pub fn traceparent_as_set() -> Option<String> {
    TRACEPARENT.get().map(|s| s.to_string_lossy().into_owned())
}

fn non_empty(setting: &GucSetting<Option<CString>>) -> Option<String> {
    setting
        .get()
        .map(|s| s.to_string_lossy().trim().to_string())
        .filter(|s| !s.is_empty())
}

pub fn master_key() -> Option<String> {
    non_empty(&MASTER_KEY)
}

pub fn master_key_file() -> Option<String> {
    non_empty(&MASTER_KEY_FILE)
}

pub fn otlp_endpoint() -> Option<String> {
    non_empty(&OTLP_ENDPOINT)
}

pub fn traceparent() -> Option<String> {
    non_empty(&TRACEPARENT)
}

pub fn database() -> String {
    non_empty(&DATABASE).unwrap_or_else(|| "postgres".to_string())
}

pub fn direct_reads() -> bool {
    DIRECT_READS.get()
}

pub fn encrypt_new_contexts() -> bool {
    ENCRYPT_NEW_CONTEXTS.get()
}
