//! The processor pipeline at run time: loads the registry and the configuration that applies,
//! runs built-ins and user functions in priority order. The rules themselves (configuration,
//! scopes, transforms) are in `core::processors`; the SQL functions that manage processors in
//! `api::processors`.

use std::cell::RefCell;
use std::collections::HashMap;

use pgrx::pg_sys::panic::{CaughtError, ErrorReport};
use pgrx::pg_sys::BuiltinOid::*;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::{JsonB, PgMemoryContexts, Uuid};
use serde_json::{json, Value};

use crate::core::namespace;
use crate::core::processors::{
    self as rules, apply_read_builtin, Config, Kind, Level, ReadMessage, Scope, Stage, Target,
};
use crate::core::redact::{self, Counts};
use crate::core::tokenizer::Encoding;
use crate::error::{required, CtxError, CtxResult, ErrorKind};
use crate::plans::Statement;

/// One step of a stage, in priority order.
enum Step {
    Builtin(&'static str),
    User(UserFunction),
}

/// A user processor's function, looked up once per pipeline.
struct UserFunction {
    name: String,
    flinfo: Box<pg_sys::FmgrInfo>,
}

#[derive(Clone)]
struct Registered {
    name: String,
    function: Option<pg_sys::Oid>,
    scope: Value,
    enabled: bool,
    /// Registered by one tenant (not for every tenant).
    tenant_scoped: bool,
}

thread_local! {
    /// The registry rows of each stage (write, read) as one tenant sees them, read once per
    /// backend and tenant: every append and window needs them, and they change rarely.
    /// Cleared by any relcache invalidation, which the functions that change the registry send
    /// for its table.
    static REGISTRY_CACHE: RefCell<HashMap<(usize, String), Vec<Registered>>> = RefCell::new(HashMap::new());
}

/// Relcache invalidation callback (registered in `_PG_init`).
pub(crate) unsafe extern "C-unwind" fn forget_registry(_arg: pg_sys::Datum, _relid: pg_sys::Oid) {
    REGISTRY_CACHE.with(|cache| cache.borrow_mut().clear());
}

/// Tells every backend (this one at the next command, others at commit) to reload the registry.
pub(crate) fn registry_changed(client: &SpiClient<'_>) -> CtxResult<()> {
    let table: Option<pg_sys::Oid> = crate::plans::first_value(client.select(
        "SELECT 'ctx.processor_registry'::regclass::oid",
        Some(1),
        &[],
    )?)?;
    if let Some(oid) = table {
        unsafe { pg_sys::CacheInvalidateRelcacheByRelid(oid) };
    }
    Ok(())
}

// A tenant's own row of a name (a built-in switched for that tenant) wins over the row for
// every tenant (tenant NULL) — but never over a user processor registered for every tenant,
// whatever rows a direct INSERT put beside it.
static REGISTRY: Statement = Statement {
    sql: "SELECT r.name, r.fn::oid, r.scope, r.enabled, r.tenant IS NOT NULL
            FROM (SELECT DISTINCT ON (p.name) p.* FROM ctx.processor_registry p
                   WHERE p.stage = $1 AND (p.tenant IS NULL OR p.tenant = $2)
                   ORDER BY p.name, (p.tenant IS NULL AND p.fn IS NOT NULL) DESC, p.tenant NULLS LAST) r
           ORDER BY r.priority, r.name",
    args: &[TEXTOID, TEXTOID],
    writes: false,
};

fn registry(client: &SpiClient<'_>, stage: Stage, tenant: &str) -> CtxResult<Vec<Registered>> {
    let slot = (stage as usize, tenant.to_string());
    if let Some(rows) = REGISTRY_CACHE.with(|cache| cache.borrow().get(&slot).cloned()) {
        return Ok(rows);
    }
    let plan = REGISTRY.plan(client)?;
    let rows = client
        .select(&*plan, None, &[stage.name().into(), tenant.into()])?
        .map(|row| {
            Ok(Registered {
                name: required(row.get(1)?, "name")?,
                function: row.get(2)?,
                scope: row.get::<JsonB>(3)?.map_or(Value::Null, |j| j.0),
                enabled: row.get(4)?.unwrap_or(false),
                tenant_scoped: row.get(5)?.unwrap_or(false),
            })
        })
        .collect::<CtxResult<Vec<_>>>()?;
    REGISTRY_CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        // (tenants seen by one backend are few; a pooled backend serving many starts afresh)
        if cache.len() >= 1024 {
            cache.clear();
        }
        cache.insert(slot, rows.clone());
    });
    Ok(rows)
}

/// Whether a user processor's function still exists, and whether the current role may run it
/// (checked at each use: functions are dropped and privileges change without touching the
/// registry).
fn usable(client: &SpiClient<'_>, name: &str, function: pg_sys::Oid) -> CtxResult<()> {
    // (the signature too: a row written directly into the registry was never checked, and a
    // function of another signature called with a jsonb could crash the server)
    static CHECK: Statement = Statement {
        sql: "SELECT has_function_privilege(p.oid, 'EXECUTE'),
                     p.pronargs = 1 AND p.proargtypes[0] = 'jsonb'::regtype AND p.prorettype = 'jsonb'::regtype
                     AND NOT p.proretset AND p.prokind = 'f'
                FROM pg_catalog.pg_proc p WHERE p.oid = $1",
        args: &[OIDOID],
        writes: false,
    };
    let plan = CHECK.plan(client)?;
    let row = client.select(&*plan, Some(1), &[function.into()])?.next();
    let executable = match row {
        None => None,
        Some(row) => {
            if !row.get::<bool>(2)?.unwrap_or(false) {
                return Err(CtxError::new(
                    ErrorKind::UndefinedFunction,
                    format!("processor \"{name}\": its function does not take one jsonb and return jsonb"),
                )
                .with_hint("ctx.unregister_processor() it, and register a function jsonb -> jsonb"));
            }
            row.get::<bool>(1)?
        }
    };
    match executable {
        None => Err(CtxError::new(
            ErrorKind::UndefinedFunction,
            format!("processor \"{name}\": its function no longer exists"),
        )
        .with_hint(
            "ctx.unregister_processor() it, or register it again with an existing function",
        )),
        Some(false) => Err(CtxError::new(
            ErrorKind::InsufficientPrivilege,
            format!("processor \"{name}\": permission denied to execute its function"),
        )
        .with_hint("GRANT EXECUTE on the function to this role, or narrow the processor's scope")),
        Some(true) => Ok(()),
    }
}

/// The context whose messages a pipeline processes: its tenant's processors act on them.
pub(crate) struct ContextTarget<'a> {
    pub tenant: &'a str,
    pub id: Uuid,
    pub metadata: &'a Value,
}

/// A tenant's user processor runs with the privileges of whoever writes or reads: it must never
/// run in a session that bypasses row-level security (a superuser's maintenance of that tenant's
/// data) unless a superuser or that role owns its function, or a tenant's administrator would
/// run code as the superuser.
fn refuse_if_escalating(
    client: &SpiClient<'_>,
    name: &str,
    function: pg_sys::Oid,
) -> CtxResult<()> {
    static ESCALATES: Statement = Statement {
        sql: "SELECT ctx.bypasses_rls() AND NOT EXISTS (
                  SELECT 1 FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_roles o ON o.oid = p.proowner
                   WHERE p.oid = $1
                     AND (o.rolsuper OR o.oid = pg_catalog.to_regrole(pg_catalog.quote_ident(current_user))))",
        args: &[OIDOID],
        writes: false,
    };
    let plan = ESCALATES.plan(client)?;
    let escalates: Option<bool> =
        crate::plans::first_value(client.select(&*plan, Some(1), &[function.into()])?)?;
    if escalates.unwrap_or(true) {
        return Err(CtxError::new(
            ErrorKind::InsufficientPrivilege,
            format!("processor \"{name}\" was registered by a tenant, and its function's owner is not trusted to run as a role that bypasses row-level security"),
        )
        .with_hint("SET ROLE to the tenant's application role for this call, or ctx.disable_processor() it for the tenant"));
    }
    Ok(())
}

/// The processors of one stage for one item, ready to run.
pub(crate) struct Pipeline {
    stage: Stage,
    kind: Kind,
    config: Config,
    steps: Vec<Step>,
    encoding: Encoding,
    context_id: Option<Uuid>,
    namespace: Vec<String>,
    /// Where user functions run; reset after each call so a long walk does not grow memory.
    scratch: Option<RefCell<PgMemoryContexts>>,
}

impl Pipeline {
    fn build(
        client: &SpiClient<'_>,
        stage: Stage,
        tenant: &str,
        config: Config,
        target: &Target<'_>,
        encoding: Encoding,
    ) -> CtxResult<Pipeline> {
        let mut disabled = Vec::new();
        let mut steps = Vec::new();
        for r in registry(client, stage, tenant)? {
            match (r.function, rules::builtin(&r.name)) {
                (None, Some(b)) if r.enabled => steps.push(Step::Builtin(b.name)),
                (None, _) => disabled.push(r.name),
                (Some(function), _) if r.enabled => {
                    // checked at registration; parsing again keeps one definition of a scope
                    let scope = Scope::parse(&r.scope)?;
                    if !scope.matches(target) {
                        continue;
                    }
                    usable(client, &r.name, function)?;
                    if r.tenant_scoped {
                        refuse_if_escalating(client, &r.name, function)?;
                    }
                    let mut flinfo = Box::new(pg_sys::FmgrInfo::default());
                    unsafe { pg_sys::fmgr_info(function, &mut *flinfo) };
                    steps.push(Step::User(UserFunction {
                        name: r.name,
                        flinfo,
                    }));
                }
                (Some(_), _) => {}
            }
        }
        let scratch = steps
            .iter()
            .any(|s| matches!(s, Step::User(_)))
            .then(|| RefCell::new(PgMemoryContexts::new("ctxstore processors")));
        Ok(Pipeline {
            stage,
            kind: target.kind,
            config: config.without(&disabled),
            steps,
            encoding,
            context_id: None,
            namespace: target.namespace.map(<[String]>::to_vec).unwrap_or_default(),
            scratch,
        })
    }

    /// The pipeline of a context's messages: its stored configuration, then `overlay` (one
    /// build_context call's `processors` option).
    pub fn for_context(
        client: &SpiClient<'_>,
        stage: Stage,
        context: &ContextTarget<'_>,
        stored: &Value,
        overlay: Option<&Value>,
        encoding: Encoding,
    ) -> CtxResult<Pipeline> {
        let mut config = Config::default();
        config.overlay(stored, Level::Context)?;
        if let Some(overlay) = overlay {
            config.overlay(overlay, Level::Call)?;
        }
        let id = context.id.to_string();
        let target = Target {
            kind: Kind::Message,
            context_id: Some(&id),
            namespace: None,
            metadata: Some(context.metadata),
        };
        let mut pipeline =
            Pipeline::build(client, stage, context.tenant, config, &target, encoding)?;
        pipeline.context_id = Some(context.id);
        Ok(pipeline)
    }

    /// The write pipeline of a memory or state entry in `namespace`.
    pub fn for_namespace(
        client: &SpiClient<'_>,
        kind: Kind,
        namespace: &[String],
        metadata: Option<&Value>,
    ) -> CtxResult<Pipeline> {
        static CONFIGS: Statement = Statement {
            sql: "SELECT config FROM ctx.namespace_processors
                   WHERE tenant = $2 AND ns_key = ANY($1)
                   ORDER BY cardinality(namespace)",
            args: &[TEXTARRAYOID, TEXTOID],
            writes: false,
        };
        let prefixes: Vec<String> = (1..=namespace.len())
            .map(|n| namespace::key(&namespace[..n]))
            .collect();
        let plan = CONFIGS.plan(client)?;
        let mut config = Config::default();
        for row in client.select(
            &*plan,
            None,
            &[prefixes.into(), crate::services::tenant::current()?.into()],
        )? {
            if let Some(doc) = row.get::<JsonB>(1)? {
                config.overlay(&doc.0, Level::Namespace)?;
            }
        }
        let target = Target {
            kind,
            context_id: None,
            namespace: Some(namespace),
            metadata,
        };
        let tenant = crate::services::tenant::current()?;
        Pipeline::build(
            client,
            Stage::Write,
            &tenant,
            config,
            &target,
            crate::gucs::default_encoding(),
        )
    }

    /// Whether reads through this pipeline equal the stored rows (no step would act).
    pub fn reads_unchanged(&self) -> bool {
        self.config.reads_unchanged() && self.scratch.is_none()
    }

    pub fn dedup(&self) -> bool {
        self.config.dedup
    }

    pub fn token_limit(&self) -> Option<i64> {
        self.config.token_limit.map(i64::from)
    }

    /// Runs the write stage over one item; `None` when a user processor dropped it.
    pub fn write(&self, mut item: WriteItem) -> CtxResult<Option<WriteItem>> {
        debug_assert_eq!(self.stage, Stage::Write);
        let mut counts = Counts::new();
        for step in &self.steps {
            match step {
                Step::Builtin("normalize") if self.config.normalize => {
                    if let Some(content) = &item.content {
                        if let std::borrow::Cow::Owned(clean) = rules::normalize(content) {
                            item.content = Some(clean);
                        }
                    }
                }
                Step::Builtin("size_limit") => {
                    if let (Some(limit), Some(content)) = (self.config.size_limit, &item.content) {
                        let tokens = self.encoding.count(content);
                        if tokens > limit as usize {
                            return Err(CtxError::new(
                                ErrorKind::TooLarge,
                                format!(
                                    "the {} has {tokens} tokens, above the size_limit processor's {limit}",
                                    self.kind.name()
                                ),
                            )
                            .with_hint("split it, summarise it, or raise size_limit in the processor configuration"));
                        }
                    }
                }
                Step::Builtin("redact_secrets") if self.config.redact_secrets => {
                    item.redact(&redact::Selection::new(true, &[]), &mut counts);
                }
                Step::Builtin("redact_pii") if !self.config.redact_pii.is_empty() => {
                    item.redact(
                        &redact::Selection::new(false, &self.config.redact_pii),
                        &mut counts,
                    );
                }
                Step::Builtin(_) => {}
                Step::User(function) => {
                    let doc = item.document(self.kind, self.context_id, &self.namespace);
                    match self.call(function, doc)? {
                        None => return Ok(None),
                        Some(out) => item.take(self.kind, &function.name, out)?,
                    }
                }
            }
        }
        item.redacted = (!counts.is_empty()).then_some(counts);
        Ok(Some(item))
    }

    /// Runs the per-message read steps over one message; `None` drops it. The set-level
    /// built-ins (dedup, token_limit) are the caller's: they depend on the other messages.
    pub fn read(&self, seq: i64, message: ReadMessage) -> CtxResult<Option<ReadMessage>> {
        debug_assert_eq!(self.stage, Stage::Read);
        let mut message = message;
        for step in &self.steps {
            match step {
                Step::Builtin(name) => {
                    if !apply_read_builtin(name, &self.config, &mut message, self.encoding) {
                        return Ok(None);
                    }
                }
                Step::User(function) => {
                    let doc = json!({
                        "kind": "message", "stage": "read",
                        "context_id": self.context_id.map(|id| id.to_string()),
                        "seq": seq, "role": message.role, "content": message.content,
                        "metadata": message.metadata, "tokens": message.tokens,
                    });
                    let Some(out) = self.call(function, doc)? else {
                        return Ok(None);
                    };
                    let mut item =
                        WriteItem::message(message.role, message.content, message.metadata);
                    item.take(Kind::Message, &function.name, out)?;
                    let content = item.content.unwrap_or_default();
                    message = ReadMessage {
                        tokens: self.encoding.count(&content) as i64,
                        role: item.role.unwrap_or_default(),
                        content,
                        metadata: item.metadata,
                    };
                }
            }
        }
        Ok(Some(message))
    }
}

/// What a write stores, as the processors see and change it.
pub(crate) struct WriteItem {
    pub role: Option<String>,
    pub content: Option<String>,
    pub metadata: Value,
    /// State entries: the JSON value.
    pub value: Option<Value>,
    /// What the redaction built-ins replaced, by kind (filled by `Pipeline::write`).
    pub redacted: Option<Counts>,
}

impl WriteItem {
    pub fn message(role: String, content: String, metadata: Value) -> WriteItem {
        WriteItem {
            role: Some(role),
            content: Some(content),
            metadata,
            value: None,
            redacted: None,
        }
    }

    pub fn memory(content: Option<String>, metadata: Value) -> WriteItem {
        WriteItem {
            role: None,
            content,
            metadata,
            value: None,
            redacted: None,
        }
    }

    pub fn state(value: Value) -> WriteItem {
        WriteItem {
            role: None,
            content: None,
            metadata: Value::Null,
            value: Some(value),
            redacted: None,
        }
    }

    fn redact(&mut self, selection: &redact::Selection, counts: &mut Counts) {
        if let Some(content) = &self.content {
            if let Some(clean) = redact::redact(content, selection, counts) {
                self.content = Some(clean);
            }
        }
        rules::redact_json(&mut self.metadata, selection, counts);
        if let Some(value) = &mut self.value {
            rules::redact_json(value, selection, counts);
        }
    }

    /// The metadata to store: the item's, with this write's redaction counts added to
    /// `metadata.redacted`.
    pub fn stamped_metadata(&self) -> Value {
        let mut metadata = self.metadata.clone();
        if let (Some(counts), Some(map)) = (&self.redacted, metadata.as_object_mut()) {
            let merged = rules::record_counts(map.get("redacted"), counts);
            map.insert("redacted".into(), merged);
        }
        metadata
    }

    fn document(&self, kind: Kind, context_id: Option<Uuid>, namespace: &[String]) -> Value {
        let mut doc = json!({"kind": kind.name(), "stage": "write"});
        match kind {
            Kind::Message => {
                doc["context_id"] = json!(context_id.map(|id| id.to_string()));
                doc["role"] = json!(self.role);
                doc["content"] = json!(self.content);
                doc["metadata"] = self.metadata.clone();
            }
            Kind::Memory => {
                doc["namespace"] = json!(namespace);
                doc["content"] = json!(self.content);
                doc["metadata"] = self.metadata.clone();
            }
            Kind::State => {
                doc["namespace"] = json!(namespace);
                doc["value"] = self.value.clone().unwrap_or(Value::Null);
            }
        }
        doc
    }

    /// Takes back what a user processor returned, checking its shape.
    fn take(&mut self, kind: Kind, processor: &str, out: Value) -> CtxResult<()> {
        let bad = |what: String| {
            CtxError::new(
                ErrorKind::ExternalRoutine,
                format!("processor \"{processor}\" returned {what}"),
            )
            .with_hint(
                "a processor returns the document it was given, changed, or NULL to drop the item",
            )
        };
        let Value::Object(mut map) = out else {
            return Err(bad(format!("{out}, not an object")));
        };
        if kind == Kind::State {
            self.value = Some(
                map.remove("value")
                    .ok_or_else(|| bad("no \"value\"".into()))?,
            );
            return Ok(());
        }
        if self.content.is_some() {
            match map.remove("content") {
                Some(Value::String(s)) => self.content = Some(s),
                Some(other) => return Err(bad(format!("a content that is {other}, not a string"))),
                None => return Err(bad("no \"content\"".into())),
            }
        }
        if let Some(metadata) = map.remove("metadata") {
            crate::core::conversation::check_metadata(&metadata, "metadata")
                .map_err(|e| bad(e.message))?;
            self.metadata = metadata;
        }
        if kind == Kind::Message {
            if let Some(role) = map.remove("role") {
                let role = role
                    .as_str()
                    .filter(|r| crate::core::conversation::check_role(r).is_ok())
                    .ok_or_else(|| bad(format!("the role {role}")))?;
                self.role = Some(role.to_string());
            }
        }
        Ok(())
    }
}

impl Pipeline {
    /// Runs a user function in the scratch memory context, which is reset afterwards.
    fn call(&self, function: &UserFunction, doc: Value) -> CtxResult<Option<Value>> {
        let scratch = self
            .scratch
            .as_ref()
            .ok_or_else(|| CtxError::internal("a user processor without a scratch context"))?;
        let mut scratch = scratch.borrow_mut();
        let flinfo: *const pg_sys::FmgrInfo = &*function.flinfo;
        let result = unsafe {
            scratch.switch_to(|_| call_processor(&function.name, flinfo.cast_mut(), doc))
        };
        unsafe { scratch.reset() };
        Ok(result)
    }
}

/// Calls a user processor (jsonb -> jsonb, NULL drops). Its errors abort the call with the
/// processor's name in the message, their SQLSTATE, detail and hint kept.
fn call_processor(name: &str, flinfo: *mut pg_sys::FmgrInfo, doc: Value) -> Option<Value> {
    PgTryBuilder::new(|| unsafe { call_jsonb_function(flinfo, doc.clone()) })
        .catch_others(|caught| {
            let report = match caught {
                CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) => r,
                CaughtError::RustPanic { ereport, .. } => ereport,
            };
            let mut again = ErrorReport::new(
                report.sql_error_code(),
                format!("processor \"{name}\" failed: {}", report.message()),
                "ctxstore processor",
            );
            if let Some(detail) = report.detail() {
                again = again.set_detail(detail.to_string());
            }
            if let Some(hint) = report.hint() {
                again = again.set_hint(hint.to_string());
            }
            again.report(PgLogLevel::ERROR);
            unreachable!("ERROR does not return")
        })
        .execute()
}

/// fmgr call of a one-argument jsonb function that may return NULL (OidFunctionCall cannot).
unsafe fn call_jsonb_function(flinfo: *mut pg_sys::FmgrInfo, doc: Value) -> Option<Value> {
    unsafe {
        let fcinfo = pg_sys::palloc0(
            std::mem::size_of::<pg_sys::FunctionCallInfoBaseData>()
                + std::mem::size_of::<pg_sys::NullableDatum>(),
        ) as *mut pg_sys::FunctionCallInfoBaseData;
        let call = &mut *fcinfo;
        call.flinfo = flinfo;
        call.fncollation = pg_sys::DEFAULT_COLLATION_OID;
        call.nargs = 1;
        let args = call.args.as_mut_slice(1);
        args[0].value = JsonB(doc).into_datum().expect("jsonb is never NULL");
        args[0].isnull = false;
        let entry = (*flinfo).fn_addr.expect("fmgr_info sets fn_addr");
        let datum = pg_sys::ffi::pg_guard_ffi_boundary(|| entry(fcinfo));
        let result = JsonB::from_datum(datum, call.isnull).map(|j| j.0);
        pg_sys::pfree(fcinfo.cast());
        result
    }
}
