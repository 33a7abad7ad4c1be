//! Redaction of secrets and personal data in text, replaced by typed placeholders
//! (`[REDACTED:card]`). Pure: detectors are regular expressions plus checks a regex cannot do
//! (Luhn, card-network prefixes, digit counts), so near-misses survive: a 16-digit order number
//! that fails Luhn, a date, a version string, an IP address.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use regex::Regex;

/// What a placeholder says was there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A payment card number (Luhn-valid, known network prefix and length).
    Card,
    /// A private key block (PEM).
    PrivateKey,
    /// A JSON Web Token.
    Jwt,
    /// A provider API key or access token of a recognisable shape (OpenAI, Anthropic, AWS,
    /// GitHub, Slack, Google, Stripe) or a bearer token.
    ApiKey,
    /// The value of a `password=` / `api_key:` / `secret=`-style assignment.
    Credential,
    /// An email address (personal data).
    Email,
    /// A phone number written with separators or in E.164 form (personal data).
    Phone,
}

impl Kind {
    pub const SECRETS: [Kind; 5] = [
        Kind::PrivateKey,
        Kind::Jwt,
        Kind::ApiKey,
        Kind::Credential,
        Kind::Card,
    ];
    pub const PERSONAL: [Kind; 2] = [Kind::Email, Kind::Phone];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Card => "card",
            Kind::PrivateKey => "private_key",
            Kind::Jwt => "jwt",
            Kind::ApiKey => "api_key",
            Kind::Credential => "credential",
            Kind::Email => "email",
            Kind::Phone => "phone",
        }
    }

    pub fn parse(name: &str) -> Option<Kind> {
        Kind::SECRETS
            .into_iter()
            .chain(Kind::PERSONAL)
            .find(|k| k.name() == name)
    }

    pub fn placeholder(self) -> String {
        format!("[REDACTED:{}]", self.name())
    }
}

/// How many of each kind a redaction replaced.
pub type Counts = BTreeMap<&'static str, u64>;

/// Names of keys whose values are secrets, in `key=value` text and in JSON objects.
macro_rules! sensitive_keys {
    () => {
        "password|passwd|pwd|secret|api[_-]?key|access[_-]?key|auth[_-]?token|access[_-]?token|refresh[_-]?token|private[_-]?key|client[_-]?secret"
    };
}

struct Detector {
    kind: Kind,
    /// Finds candidates; when the pattern has groups, the first that took part is what gets
    /// replaced (a credential's value keeps its `password=`).
    pattern: Regex,
    /// The byte ranges of a candidate to replace: checks a pattern cannot express.
    spans: fn(&str) -> Vec<(usize, usize)>,
}

fn whole(candidate: &str) -> Vec<(usize, usize)> {
    vec![(0, candidate.len())]
}

fn detectors() -> &'static [Detector] {
    static DETECTORS: OnceLock<Vec<Detector>> = OnceLock::new();
    DETECTORS.get_or_init(|| {
        let d = |kind, pattern: &str, spans| Detector {
            kind,
            pattern: Regex::new(pattern).expect("detector patterns are valid"),
            spans,
        };
        vec![
            // Whole blocks first: a key's base64 body must not be picked apart by later detectors.
            // (a block cut off before its END line is redacted to the end of the text)
            d(
                Kind::PrivateKey,
                r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|[\s\S]*)",
                whole,
            ),
            d(
                Kind::Jwt,
                r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
                whole,
            ),
            d(
                Kind::ApiKey,
                concat!(
                    r"\b(?:",
                    r"sk-(?:proj-|ant-(?:api|admin)\d\d-|svcacct-)?[A-Za-z0-9_-]{20,}",
                    r"|(?:AKIA|ASIA)[0-9A-Z]{16}",
                    r"|gh[pousr]_[A-Za-z0-9]{36,}",
                    r"|github_pat_[A-Za-z0-9_]{22,}",
                    r"|xox[abposr]-[A-Za-z0-9-]{10,}",
                    r"|AIza[0-9A-Za-z_-]{35}",
                    r"|(?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z]{16,}",
                    r"|glpat-[0-9A-Za-z_-]{20,}",
                    r")\b",
                    r"|(?i:\bbearer\s+)([A-Za-z0-9._~+/-]{20,}=*)"
                ),
                whole,
            ),
            d(
                Kind::Credential,
                concat!(
                    // DB_PASSWORD=…, "api_key": "…", client-secret: '…'
                    r#"(?i)\b[a-z0-9_.-]*?(?:"#,
                    sensitive_keys!(),
                    r#")[a-z0-9_-]*["']?\s*[:=]\s*(?:"([^"\n]{4,})"|'([^'\n]{4,})'|([^\s"'&,;]{4,}))"#,
                    // the password of a connection URL: postgres://user:…@host
                    r"|\b[a-z][a-z0-9+.-]*://[^\s:/@]+:([^\s@/]+)@"
                ),
                not_a_placeholder,
            ),
            // digit runs (with single spaces or dashes); card numbers are found inside them
            d(Kind::Card, r"\b\d(?:[ -]?\d)*\b", card_numbers),
            d(
                Kind::Email,
                r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}\b",
                whole,
            ),
            d(
                Kind::Phone,
                concat!(
                    // E.164 and international: +CC then groups, 8 to 15 digits in all
                    r"\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}\b",
                    // North American: (555) 123-4567, 555-123-4567, 555.123.4567
                    r"|(?:\(\d{3}\)\s?|\b\d{3}[.-])\d{3}[.-]\d{4}\b"
                ),
                phone_number,
            ),
        ]
    })
}

/// Whether a JSON key names a secret (`password`, `DB_PASSWORD`, `apiKey`, `client_secret`).
pub fn is_sensitive_key(key: &str) -> bool {
    static PATTERN: OnceLock<Regex> = OnceLock::new();
    PATTERN
        .get_or_init(|| {
            Regex::new(concat!("(?i)(?:", sensitive_keys!(), ")"))
                .expect("the key pattern is valid")
        })
        .is_match(key)
}

fn not_a_placeholder(value: &str) -> Vec<(usize, usize)> {
    if value.starts_with("[REDACTED") {
        Vec::new()
    } else {
        whole(value)
    }
}

fn phone_number(candidate: &str) -> Vec<(usize, usize)> {
    if is_phone_number(candidate) {
        whole(candidate)
    } else {
        Vec::new()
    }
}

/// The card numbers inside a run of digit groups: `qty 2 4111 1111 1111 1111 123` holds one,
/// between group boundaries, even though the whole run is no card number.
fn card_numbers(run: &str) -> Vec<(usize, usize)> {
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let mut start = None;
    for (i, b) in run.bytes().enumerate() {
        match (b.is_ascii_digit(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                groups.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        groups.push((s, run.len()));
    }
    let mut found = Vec::new();
    let mut first = 0;
    while first < groups.len() {
        // the longest card number starting at this group
        let mut best = None;
        let mut digits = 0;
        for last in first..groups.len() {
            digits += groups[last].1 - groups[last].0;
            if digits > 19 {
                break;
            }
            let span = (groups[first].0, groups[last].1);
            if digits >= 13 && is_card_number(&run[span.0..span.1]) {
                best = Some((last, span));
            }
        }
        match best {
            Some((last, span)) => {
                found.push(span);
                first = last + 1;
            }
            None => first += 1,
        }
    }
    found
}

/// Luhn-valid, 13 to 19 digits, a known card network's prefix and length, and separators (if
/// any) used consistently: `4111 1111 1111 1111`, not a 16-digit order number that fails Luhn.
pub fn is_card_number(candidate: &str) -> bool {
    let digits: Vec<u8> = candidate
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect();
    let separators: Vec<u8> = candidate.bytes().filter(|b| !b.is_ascii_digit()).collect();
    if separators.windows(2).any(|w| w[0] != w[1]) {
        return false; // "4111-1111 1111-1111" is not how anyone writes a card number
    }
    luhn_valid(&digits) && known_network(&digits)
}

pub fn luhn_valid(digits: &[u8]) -> bool {
    if digits.len() < 2 {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn known_network(digits: &[u8]) -> bool {
    let prefix = |n: usize| {
        digits[..n.min(digits.len())]
            .iter()
            .fold(0u32, |acc, &d| acc * 10 + u32::from(d))
    };
    let len = digits.len();
    match digits[0] {
        4 => matches!(len, 13 | 16 | 19),                     // Visa
        5 => (51..=55).contains(&prefix(2)) && len == 16,     // Mastercard
        2 => (2221..=2720).contains(&prefix(4)) && len == 16, // Mastercard 2-series
        3 => {
            (matches!(prefix(2), 34 | 37) && len == 15) // Amex
                || ((3528..=3589).contains(&prefix(4)) && (16..=19).contains(&len)) // JCB
                || (((300..=305).contains(&prefix(3)) || matches!(prefix(2), 36 | 38))
                    && (14..=19).contains(&len)) // Diners
        }
        6 => {
            (prefix(4) == 6011 || prefix(2) == 65 || (644..=649).contains(&prefix(3))) // Discover
                && (16..=19).contains(&len)
                || (prefix(2) == 62 && (16..=19).contains(&len)) // UnionPay
        }
        _ => false,
    }
}

/// 8 to 15 digits (E.164 allows at most 15); rules out "+1.2.3" and long IDs.
fn is_phone_number(candidate: &str) -> bool {
    let digits = candidate.bytes().filter(u8::is_ascii_digit).count();
    (8..=15).contains(&digits)
}

/// Which detectors run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selection {
    pub kinds: Vec<Kind>,
}

impl Selection {
    pub fn new(secrets: bool, personal: &[Kind]) -> Selection {
        let mut kinds = Vec::new();
        if secrets {
            kinds.extend(Kind::SECRETS);
        }
        kinds.extend(personal.iter().copied());
        Selection { kinds }
    }

    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }
}

/// Replaces every detected secret (and personal datum, when selected) with its placeholder.
/// Returns `None` when nothing was found (the common case: no allocation).
pub fn redact(text: &str, selection: &Selection, counts: &mut Counts) -> Option<String> {
    let mut current: Option<String> = None;
    for detector in detectors() {
        if !selection.kinds.contains(&detector.kind) {
            continue;
        }
        let source = current.as_deref().unwrap_or(text);
        let mut out = String::new();
        let mut last = 0;
        let mut found = 0u64;
        for caps in detector.pattern.captures_iter(source) {
            let Some(m) = caps.iter().skip(1).flatten().next().or_else(|| caps.get(0)) else {
                continue;
            };
            for (from, to) in (detector.spans)(m.as_str()) {
                out.push_str(&source[last..m.start() + from]);
                out.push_str(&detector.kind.placeholder());
                last = m.start() + to;
                found += 1;
            }
        }
        if found > 0 {
            out.push_str(&source[last..]);
            *counts.entry(detector.kind.name()).or_default() += found;
            current = Some(out);
        }
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Selection {
        Selection::new(true, &Kind::PERSONAL)
    }

    fn run(text: &str, selection: &Selection) -> (String, Counts) {
        let mut counts = Counts::new();
        let out = redact(text, selection, &mut counts).unwrap_or_else(|| text.to_string());
        (out, counts)
    }

    #[test]
    fn luhn() {
        let digits = |s: &str| s.bytes().map(|b| b - b'0').collect::<Vec<_>>();
        assert!(luhn_valid(&digits("4111111111111111")));
        assert!(luhn_valid(&digits("79927398713")));
        assert!(!luhn_valid(&digits("4111111111111112")));
        assert!(!luhn_valid(&digits("7")));
    }

    #[test]
    fn redacts_secrets() {
        let cases: &[(&str, &str, &str)] = &[
            ("card 4111 1111 1111 1111 ok", "card [REDACTED:card] ok", "card"),
            ("pay 4111-1111-1111-1111.", "pay [REDACTED:card].", "card"),
            ("amex 378282246310005", "amex [REDACTED:card]", "card"),
            ("mc 5555555555554444", "mc [REDACTED:card]", "card"),
            ("mc2 2223003122003222", "mc2 [REDACTED:card]", "card"),
            ("disc 6011111111111117", "disc [REDACTED:card]", "card"),
            (
                "key sk-proj-abcdefghijklmnopqrstuvwxyz012345 end",
                "key [REDACTED:api_key] end",
                "api_key",
            ),
            (
                "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz_0123456789",
                "[REDACTED:api_key]",
                "api_key",
            ),
            ("aws AKIAIOSFODNN7EXAMPLE", "aws [REDACTED:api_key]", "api_key"),
            (
                "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
                "[REDACTED:api_key]",
                "api_key",
            ),
            (
                "Authorization: Bearer abcdefghijklmnopqrstuvwxyz.0123",
                "Authorization: Bearer [REDACTED:api_key]",
                "api_key",
            ),
            (
                "stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc",
                "stripe [REDACTED:api_key]",
                "api_key",
            ),
            (
                "xoxb-123456789012-abcdefghijkl",
                "[REDACTED:api_key]",
                "api_key",
            ),
            (
                "t=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
                "t=[REDACTED:jwt]",
                "jwt",
            ),
            (
                "password=hunter2hunter2 then",
                "password=[REDACTED:credential] then",
                "credential",
            ),
            (
                "{\"api_key\": \"abc123def456\"}",
                "{\"api_key\": \"[REDACTED:credential]\"}",
                "credential",
            ),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAK\n-----END RSA PRIVATE KEY-----\nafter",
                "[REDACTED:private_key]\nafter",
                "private_key",
            ),
            (
                "key: -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqh",
                "key: [REDACTED:private_key]",
                "private_key",
            ),
            (
                "-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF\n-----END PGP PRIVATE KEY BLOCK-----",
                "[REDACTED:private_key]",
                "private_key",
            ),
            // a card next to other digits: a CVV, an expiry, a quantity
            (
                "4111 1111 1111 1111 123",
                "[REDACTED:card] 123",
                "card",
            ),
            (
                "4111-1111-1111-1111 12/28",
                "[REDACTED:card] 12/28",
                "card",
            ),
            ("qty 2 4111 1111 1111 1111", "qty 2 [REDACTED:card]", "card"),
            (
                "DB_PASSWORD=s3cr3t! and more",
                "DB_PASSWORD=[REDACTED:credential] and more",
                "credential",
            ),
            (
                "aws_secret_access_key = wJalrXUtnFEMI",
                "aws_secret_access_key = [REDACTED:credential]",
                "credential",
            ),
            (
                "password: \"correct horse battery\"",
                "password: \"[REDACTED:credential]\"",
                "credential",
            ),
            (
                "/login?password=hunter22&user=bob",
                "/login?password=[REDACTED:credential]&user=bob",
                "credential",
            ),
            (
                "postgres://app:pa55word@db.internal:5432/x",
                "postgres://app:[REDACTED:credential]@db.internal:5432/x",
                "credential",
            ),
        ];
        for (input, expected, kind) in cases {
            let (out, counts) = run(input, &Selection::new(true, &[]));
            assert_eq!(&out, expected, "{input}");
            assert_eq!(counts.get(kind), Some(&1), "{input}: {counts:?}");
        }
    }

    #[test]
    fn leaves_near_misses_alone() {
        for input in [
            "order 4111 1111 1111 1112 shipped",    // fails Luhn
            "id 1234567890123452",                  // Luhn-valid but no card network
            "tracking 4111111111111111111111",      // part of a longer digit run
            "4111-1111 1111-1111",                  // mixed separators
            "on 2026-11-25 at 10:30",               // a date
            "version 1.2.3.4, ip 192.168.100.200",  // versions and addresses
            "ssn-like 123-45-6789",                 // not a phone shape
            "sk-short",                             // too short to be a key
            "the task-list and risk-assessment",    // words with sk-
            "AKIA is a prefix, AKIAshort",          // not an AWS key
            "password: [REDACTED:credential]",      // already redacted
            "my password is strong",                // no assignment
            "run pwd && ls",                        // a command, not a password
            "see https://example.com/a:b@c",        // a URL without credentials shape
            "ORD4111111111111111",                  // digits glued to letters
            "email me at support (at) example.com", // obfuscated, not an address
            "user@localhost",                       // no TLD
            "call +1.2.3",                          // too few digits
            "price 1,234,567.89 and 2^31-1",
            "eyJ not a jwt",
        ] {
            let (out, counts) = run(input, &all());
            assert_eq!(out, input, "{input} was changed: {counts:?}");
            assert!(counts.is_empty());
        }
    }

    #[test]
    fn personal_data_only_when_selected() {
        let text = "mail jane.doe+work@example.co.uk or call (555) 123-4567 / +44 20 7946 0958";
        let (out, counts) = run(text, &Selection::new(true, &[]));
        assert_eq!(out, text);
        assert!(counts.is_empty());
        let (out, counts) = run(text, &all());
        assert_eq!(
            out,
            "mail [REDACTED:email] or call [REDACTED:phone] / [REDACTED:phone]"
        );
        assert_eq!(counts.get("email"), Some(&1));
        assert_eq!(counts.get("phone"), Some(&2));
        let (out, _) = run("call 555-123-4567 or 555.987.6543", &all());
        assert_eq!(out, "call [REDACTED:phone] or [REDACTED:phone]");
        let (out, _) = run(text, &Selection::new(false, &[Kind::Email]));
        assert!(out.contains("[REDACTED:email]") && out.contains("(555) 123-4567"));
    }

    #[test]
    fn counts_accumulate_and_nothing_found_allocates_nothing() {
        let mut counts = Counts::new();
        assert!(redact("nothing to see", &all(), &mut counts).is_none());
        let out = redact(
            "4111111111111111 and 5555555555554444, a@b.io",
            &all(),
            &mut counts,
        )
        .unwrap();
        assert_eq!(out, "[REDACTED:card] and [REDACTED:card], [REDACTED:email]");
        assert_eq!(counts.get("card"), Some(&2));
        assert!(redact("x", &Selection::default(), &mut counts).is_none());
    }

    #[test]
    fn sensitive_keys() {
        for key in [
            "password",
            "DB_PASSWORD",
            "apiKey",
            "api-key",
            "client_secret",
            "refreshToken",
        ] {
            assert!(is_sensitive_key(key), "{key}");
        }
        for key in ["name", "tokens", "keyboard", "passage"] {
            assert!(!is_sensitive_key(key), "{key}");
        }
    }

    #[test]
    fn unicode_text_is_kept_intact() {
        let (out, _) = run("café 4111 1111 1111 1111 ☕ 你好", &all());
        assert_eq!(out, "café [REDACTED:card] ☕ 你好");
    }
}
