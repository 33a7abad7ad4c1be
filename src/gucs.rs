//! Every `ctxstore.*` setting, defined in one place.

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
/// and uses the HNSW index (when one exists) above it.
pub static EXACT_RECALL_MAX_CANDIDATES: GucSetting<i32> = GucSetting::<i32>::new(5000);

pub fn register() {
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
        c"Largest estimated candidate set that recall scans exactly.",
        c"Above it, recall uses the HNSW index of ctx.create_vector_index when one exists. 0 always uses the index.",
        &EXACT_RECALL_MAX_CANDIDATES,
        0,
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
