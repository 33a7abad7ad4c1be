//! W3C trace context parsing, and the fixed-size ring of slow-call spans the OTLP exporter
//! drains (it lives in shared memory: no heap, bounded, the oldest overwritten when full).

use crate::core::metrics::{Call, CALLS};

/// (trace id, parent span id) of a `traceparent` header value: `00-<32 hex>-<16 hex>-<2 hex>`.
/// All-zero ids are invalid per the spec.
pub fn parse_traceparent(value: &str) -> Option<([u8; 16], [u8; 8])> {
    let parts: Vec<&str> = value.trim().split('-').collect();
    let [version, trace, span, flags] = parts.as_slice() else {
        return None;
    };
    if version.len() != 2
        || *version == "ff"
        || flags.len() != 2
        || !is_hex(version)
        || !is_hex(flags)
    {
        return None;
    }
    let trace: [u8; 16] = decode_hex(trace)?;
    let span: [u8; 8] = decode_hex(span)?;
    if trace == [0; 16] || span == [0; 8] {
        return None;
    }
    Some((trace, span))
}

/// The `traceparent='…'` a sqlcommenter-style client puts in a comment or application_name.
/// application_name is cut at 63 bytes: when only the trace id survived, the span id is zero
/// (the span becomes a root span of the client's trace).
pub fn traceparent_in_comment(text: &str) -> Option<([u8; 16], [u8; 8])> {
    let start = text.find("traceparent=")? + "traceparent=".len();
    let rest = text[start..].trim_start_matches(['\'', '"']);
    if let Some(full) = rest.get(..55).and_then(parse_traceparent) {
        return Some(full);
    }
    let trace: [u8; 16] = decode_hex(rest.get(3..35)?)?;
    let version_ok = rest
        .get(..3)
        .is_some_and(|v| v.ends_with('-') && is_hex(&v[..2]));
    (version_ok && trace != [0; 16]).then_some((trace, [0; 8]))
}

/// The trace id `ctx.current_trace_id()` gives (the SQL default of every `trace_id` column): the
/// 32 hex digits of `ctxstore.traceparent` when the whole setting is `xx-<32>-<16>-xx` in
/// lowercase hex, else of the first `traceparent=` in application_name followed by an optional
/// quote, two hex digits, a dash, 32 hex digits and a dash. Written rows and their audit rows
/// must carry the same id, so this follows the SQL's patterns exactly (no trimming, no
/// version or zero-id rules, unlike `parse_traceparent`).
pub fn current_trace_id(traceparent: Option<&str>, application_name: &str) -> Option<String> {
    // bytes, not str slices: a multi-byte character must not split a slice
    let lower_hex = |s: &[u8]| {
        s.iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    };
    let id_of = |digits: &[u8]| String::from_utf8(digits.to_vec()).ok();
    if let Some(b) = traceparent.map(str::as_bytes) {
        if b.len() == 55
            && b[2] == b'-'
            && b[35] == b'-'
            && b[52] == b'-'
            && [&b[..2], &b[3..35], &b[36..52], &b[53..]]
                .iter()
                .all(|part| lower_hex(part))
        {
            return id_of(&b[3..35]);
        }
    }
    const KEY: &[u8] = b"traceparent=";
    let name = application_name.as_bytes();
    let mut from = 0;
    while let Some(found) = name[from..].windows(KEY.len()).position(|w| w == KEY) {
        let start = from + found + KEY.len();
        let rest = &name[start..];
        let rest = rest.strip_prefix(b"'").unwrap_or(rest);
        if rest.len() >= 36
            && rest[2] == b'-'
            && rest[35] == b'-'
            && lower_hex(&rest[..2])
            && lower_hex(&rest[3..35])
        {
            return id_of(&rest[3..35]);
        }
        from = start;
    }
    None
}

fn is_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn decode_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !is_hex(s) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// One slow call, as exported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Span {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// all zero when the client sent no traceparent (the span is then a root)
    pub parent_span_id: [u8; 8],
    pub start_unix_ns: u64,
    pub end_unix_ns: u64,
    call: u8,
}

impl Span {
    const EMPTY: Span = Span {
        trace_id: [0; 16],
        span_id: [0; 8],
        parent_span_id: [0; 8],
        start_unix_ns: 0,
        end_unix_ns: 0,
        call: 0,
    };

    /// A span for `call` that ended at `end_unix_ns` after `micros`; ids not given by the
    /// client's traceparent come from `random`.
    pub fn new(
        call: Call,
        parent: Option<([u8; 16], [u8; 8])>,
        random: &[u8; 24],
        end_unix_ns: u64,
        micros: u64,
    ) -> Span {
        let mut span_id = [0u8; 8];
        span_id.copy_from_slice(&random[16..]);
        let (trace_id, parent_span_id) = parent.unwrap_or_else(|| {
            let mut trace = [0u8; 16];
            trace.copy_from_slice(&random[..16]);
            (trace, [0; 8])
        });
        Span {
            trace_id,
            span_id,
            parent_span_id,
            start_unix_ns: end_unix_ns.saturating_sub(micros * 1000),
            end_unix_ns,
            call: call as u8,
        }
    }

    /// `ctxstore.append`, `ctxstore.recall`, …
    pub fn name(&self) -> String {
        let call = CALLS
            .get(self.call as usize)
            .map_or("call", |(name, _)| name);
        format!("ctxstore.{call}")
    }
}

pub const RING_SLOTS: usize = 256;

/// The newest `RING_SLOTS` slow-call spans; `take` returns those not taken before.
#[repr(C)]
pub struct SpanRing {
    pushed: u64,
    taken: u64,
    slots: [Span; RING_SLOTS],
}

impl Default for SpanRing {
    fn default() -> Self {
        Self::new()
    }
}

impl SpanRing {
    pub const fn new() -> Self {
        SpanRing {
            pushed: 0,
            taken: 0,
            slots: [Span::EMPTY; RING_SLOTS],
        }
    }

    pub fn push(&mut self, span: Span) {
        self.slots[(self.pushed % RING_SLOTS as u64) as usize] = span;
        self.pushed += 1;
    }

    /// Spans pushed since the last take, oldest first (at most `RING_SLOTS`: older ones were
    /// overwritten).
    pub fn take(&mut self) -> Vec<Span> {
        let from = self
            .taken
            .max(self.pushed.saturating_sub(RING_SLOTS as u64));
        let spans = (from..self.pushed)
            .map(|i| self.slots[(i % RING_SLOTS as u64) as usize])
            .collect();
        self.taken = self.pushed;
        spans
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn current_trace_id_follows_the_sql_patterns() {
        let id = Some("4bf92f3577b34da6a3ce929d0e0e4736".to_string());
        assert_eq!(current_trace_id(Some(TRACE), ""), id);
        // the SQL takes any two hex digits of version and flags, and zero ids
        let ff = "ff-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-zz";
        assert_eq!(current_trace_id(Some(ff), ""), None, "flags not hex");
        let zero = "ff-00000000000000000000000000000000-0000000000000000-00";
        assert_eq!(current_trace_id(Some(zero), ""), Some("0".repeat(32)));
        // no trimming, no uppercase, the whole setting
        assert_eq!(current_trace_id(Some(&format!(" {TRACE}")), ""), None);
        assert_eq!(current_trace_id(Some(&TRACE.to_uppercase()), ""), None);
        assert_eq!(current_trace_id(Some(&format!("{TRACE}0")), ""), None);
        // application_name: the first traceparent= that matches, quoted or not
        assert_eq!(
            current_trace_id(None, &format!("app traceparent='{TRACE}'")),
            id
        );
        assert_eq!(
            current_trace_id(Some("bad"), &format!("traceparent={}", &TRACE[..36])),
            id
        );
        assert_eq!(
            current_trace_id(None, &format!("traceparent=xx traceparent={TRACE}")),
            id,
            "a later occurrence"
        );
        assert_eq!(
            current_trace_id(None, &format!("traceparent=\"{TRACE}")),
            None,
            "double quote"
        );
        assert_eq!(
            current_trace_id(None, &format!("traceparent=''{TRACE}")),
            None,
            "two quotes"
        );
        assert_eq!(
            current_trace_id(None, &format!("traceparent={}", &TRACE[..35])),
            None,
            "no dash after"
        );
        assert_eq!(
            current_trace_id(None, "traceparent=é4bf92f3577b34da6a3ce929d0e0e4736-"),
            None
        );
        assert_eq!(current_trace_id(None, ""), None);
    }

    #[test]
    fn traceparent_parsing() {
        let (trace, span) = parse_traceparent(TRACE).unwrap();
        assert_eq!(trace[0], 0x4b);
        assert_eq!(span, [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]);
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad}");
        }
        let app = format!("agent /*traceparent='{TRACE}'*/");
        assert_eq!(traceparent_in_comment(&app), parse_traceparent(TRACE));
        assert_eq!(traceparent_in_comment("agent"), None);
        // cut by application_name's 63-byte limit: the trace id is enough
        let cut = &format!("agent-x /*traceparent='{TRACE}'*/")[..63];
        let (trace, span) = traceparent_in_comment(cut).unwrap();
        assert_eq!((trace, span), (parse_traceparent(TRACE).unwrap().0, [0; 8]));
    }

    #[test]
    fn spans_keep_the_client_trace() {
        let random = [7u8; 24];
        let parent = parse_traceparent(TRACE);
        let span = Span::new(Call::Recall, parent, &random, 5_000_000, 2_000);
        assert_eq!(Some((span.trace_id, span.parent_span_id)), parent);
        assert_eq!(span.span_id, [7; 8]);
        assert_eq!(span.start_unix_ns, 3_000_000);
        assert_eq!(span.name(), "ctxstore.recall");
        let root = Span::new(Call::Append, None, &random, 10, 0);
        assert_eq!((root.trace_id, root.parent_span_id), ([7; 16], [0; 8]));
    }

    #[test]
    fn ring_is_bounded_and_takes_each_span_once() {
        let mut ring = SpanRing::new();
        let span = |n: u64| Span::new(Call::Append, None, &[1; 24], n, 0);
        ring.push(span(1));
        ring.push(span(2));
        assert_eq!(
            ring.take()
                .iter()
                .map(|s| s.end_unix_ns)
                .collect::<Vec<_>>(),
            [1, 2]
        );
        assert!(ring.take().is_empty());
        for n in 0..(RING_SLOTS as u64 + 10) {
            ring.push(span(n));
        }
        let taken = ring.take();
        assert_eq!(taken.len(), RING_SLOTS);
        assert_eq!(taken[0].end_unix_ns, 10);
        assert_eq!(taken.last().unwrap().end_unix_ns, RING_SLOTS as u64 + 9);
    }
}
