//! The external forms of `ctx.embedding`, which are pgvector's `vector` forms: the text
//! `[1,2.5,-3]` and the binary (dimension int16, unused int16 = 0, float4 × dimension, all
//! big-endian). A value that one type prints or sends, the other reads.

use crate::error::{CtxError, CtxResult, ErrorKind};

/// pgvector's limit for a `vector` (its HNSW index takes at most 2,000), which recall's
/// checks of a query embedding share.
pub use super::knn::MAX_DIMS;

const TYPE: &str = "ctx.embedding";

fn syntax(input: &str, detail: &str) -> CtxError {
    CtxError::new(
        ErrorKind::InvalidTextRepresentation,
        format!("invalid input syntax for type {TYPE}: \"{input}\""),
    )
    .with_detail(detail)
    .with_hint("write an embedding as '[0.1,0.2,0.3]' (or the real[] form '{0.1,0.2,0.3}')")
}

fn too_many() -> CtxError {
    CtxError::new(
        ErrorKind::TooLarge,
        format!("{TYPE} cannot have more than {MAX_DIMS} dimensions"),
    )
    .with_hint("reduce the embedding's dimensions")
}

/// A dimension count a value may have: 1..=MAX_DIMS.
pub fn check_dims(dims: usize) -> CtxResult<()> {
    if dims == 0 {
        return Err(CtxError::new(
            ErrorKind::DataException,
            format!("{TYPE} must have at least 1 dimension"),
        )
        .with_hint("pass NULL for no embedding"));
    }
    if dims > MAX_DIMS {
        return Err(too_many());
    }
    Ok(())
}

/// A value's dimensions against the type modifier (`ctx.embedding(384)`; -1 = any).
pub fn check_typmod(typmod: i32, dims: usize) -> CtxResult<()> {
    if typmod >= 0 && typmod as usize != dims {
        return Err(CtxError::new(
            ErrorKind::DataException,
            format!("expected {typmod} dimensions, not {dims}"),
        )
        .with_hint("the column or cast declares the dimension; use the same embedding model"));
    }
    Ok(())
}

/// An element a stored embedding may hold: finite (a NaN or an infinity has no distance).
pub fn check_element(value: f32) -> CtxResult<()> {
    if value.is_nan() {
        return Err(CtxError::new(
            ErrorKind::DataException,
            format!("NaN not allowed in {TYPE}"),
        )
        .with_hint("embeddings hold finite numbers"));
    }
    if value.is_infinite() {
        return Err(CtxError::new(
            ErrorKind::DataException,
            format!("infinite value not allowed in {TYPE}"),
        )
        .with_hint("embeddings hold finite numbers"));
    }
    Ok(())
}

/// The type modifier of `ctx.embedding(n)`: one integer, 1..=MAX_DIMS.
pub fn typmod(modifiers: &[&str]) -> CtxResult<i32> {
    let [only] = modifiers else {
        return Err(
            CtxError::invalid("invalid type modifier").with_hint(format!(
                "{TYPE} takes one modifier, its dimension: {TYPE}(384)"
            )),
        );
    };
    let dims: i64 = only.trim().parse().map_err(|_| {
        CtxError::new(
            ErrorKind::InvalidTextRepresentation,
            format!("invalid input syntax for type integer: \"{only}\""),
        )
        .with_hint(format!("{TYPE}'s modifier is its dimension: {TYPE}(384)"))
    })?;
    if dims < 1 {
        return Err(CtxError::invalid(format!(
            "dimensions for type {TYPE} must be at least 1"
        )));
    }
    if dims > MAX_DIMS as i64 {
        return Err(CtxError::invalid(format!(
            "dimensions for type {TYPE} cannot exceed {MAX_DIMS}"
        )));
    }
    Ok(dims as i32)
}

/// Parses the text form. Besides pgvector's `[…]`, a flat `{…}` (a `real[]` literal) is read,
/// so text written for the `real[]` columns and arguments of 0.1.0 still works.
pub fn parse(input: &str) -> CtxResult<Vec<f32>> {
    let text = input.trim_start_matches(is_space);
    let close = match text.chars().next() {
        Some('[') => ']',
        Some('{') => '}',
        _ => return Err(syntax(input, "Embedding contents must start with \"[\".")),
    };
    let mut rest = &text[1..];
    let mut values = Vec::new();
    loop {
        rest = rest.trim_start_matches(is_space);
        if values.is_empty() && rest.starts_with(close) {
            return Err(check_dims(0).unwrap_err());
        }
        let end = rest
            .find(|c: char| c == ',' || c == close || is_space(c))
            .ok_or_else(|| syntax(input, "Unexpected end of input."))?;
        let token = &rest[..end];
        if values.len() == MAX_DIMS {
            return Err(too_many());
        }
        values.push(number(token, input)?);
        rest = rest[end..].trim_start_matches(is_space);
        match rest.chars().next() {
            Some(',') => rest = &rest[1..],
            Some(c) if c == close => {
                rest = &rest[1..];
                break;
            }
            Some(_) => return Err(syntax(input, "Elements must be separated by commas.")),
            None => return Err(syntax(input, "Unexpected end of input.")),
        }
    }
    if !rest.trim_start_matches(is_space).is_empty() {
        return Err(syntax(input, "Junk after closing right brace."));
    }
    Ok(values)
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// One element: a decimal float4 (what `strtof` reads, less hexadecimal and the spellings of
/// NaN and infinity, which an embedding may not hold).
fn number(token: &str, input: &str) -> CtxResult<f32> {
    let digits = token.strip_prefix(['+', '-']).unwrap_or(token);
    let decimal = !digits.is_empty()
        && digits
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || c == '.')
        && digits
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
    if !decimal {
        let lower = digits.to_ascii_lowercase();
        return match lower.as_str() {
            "nan" => Err(check_element(f32::NAN).unwrap_err()),
            "inf" | "infinity" => Err(check_element(f32::INFINITY).unwrap_err()),
            _ => Err(syntax(input, "Elements must be numbers.")),
        };
    }
    let value: f32 = token
        .parse()
        .map_err(|_| syntax(input, "Elements must be numbers."))?;
    if value.is_infinite() {
        return Err(CtxError::new(
            ErrorKind::NumericOutOfRange,
            format!("\"{token}\" is out of range for type {TYPE}"),
        )
        .with_hint("elements are float4: at most about 3.4e38 in magnitude"));
    }
    Ok(value)
}

/// The text form: shortest decimals that read back to the same bits.
pub fn format(values: &[f32]) -> String {
    let mut out = String::with_capacity(values.len() * 10 + 2);
    out.push('[');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        // Debug is the shortest round-trip form, with an exponent where it is shorter;
        // pgvector writes integral values without ".0"
        let text = format!("{v:?}");
        out.push_str(text.strip_suffix(".0").unwrap_or(&text));
    }
    out.push(']');
    out
}

/// The binary form (`COPY … BINARY`, the binary protocol).
pub fn encode(values: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + 4 * values.len());
    out.extend_from_slice(&(values.len() as i16).to_be_bytes());
    out.extend_from_slice(&0i16.to_be_bytes());
    for v in values {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out
}

/// Reads the binary form, checking what `parse` checks; `typmod` as in `check_typmod`. The
/// SQLSTATEs are those of pgvector and of Postgres's binary input: 08P01 for a value cut short,
/// 22P03 for bytes left over.
pub fn decode(bytes: &[u8], typmod: i32) -> CtxResult<Vec<f32>> {
    const LAYOUT: &str = "a binary ctx.embedding is dim int16, 0 int16, then dim float4 values";
    let short = || {
        CtxError::new(
            ErrorKind::ProtocolViolation,
            "insufficient data left in message",
        )
        .with_hint(LAYOUT)
    };
    if bytes.len() < 4 {
        return Err(short());
    }
    let dims = i16::from_be_bytes([bytes[0], bytes[1]]);
    let unused = i16::from_be_bytes([bytes[2], bytes[3]]);
    // (a negative int16 is no dimension at all, as pgvector reads it)
    let dims = usize::try_from(dims).unwrap_or(0);
    check_dims(dims)?;
    check_typmod(typmod, dims)?;
    if unused != 0 {
        return Err(CtxError::new(
            ErrorKind::DataException,
            format!("expected unused to be 0, not {unused}"),
        )
        .with_hint(LAYOUT));
    }
    let body = &bytes[4..];
    if body.len() < 4 * dims {
        return Err(short());
    }
    if body.len() > 4 * dims {
        return Err(CtxError::new(
            ErrorKind::InvalidBinaryRepresentation,
            "incorrect binary data format: bytes left after the last element",
        )
        .with_hint(LAYOUT));
    }
    body.chunks_exact(4)
        .map(|c| {
            let v = f32::from_be_bytes([c[0], c[1], c[2], c[3]]);
            check_element(v).map(|()| v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(r: CtxResult<Vec<f32>>) -> &'static str {
        r.unwrap_err().kind.sqlstate()
    }

    #[test]
    fn reads_pgvector_and_array_text() {
        assert_eq!(parse("[1,2.5,-3]").unwrap(), vec![1.0, 2.5, -3.0]);
        assert_eq!(parse(" [ 1 , 2e-3 ,+4 ] ").unwrap(), vec![1.0, 0.002, 4.0]);
        assert_eq!(parse("{0.5,0.25}").unwrap(), vec![0.5, 0.25]);
        assert_eq!(parse("[1e-50]").unwrap(), vec![0.0]); // underflow reads as zero, as strtof
    }

    #[test]
    fn rejects_malformed_text_with_pgvectors_sqlstates() {
        assert_eq!(kind(parse("1,2")), "22P02");
        assert_eq!(kind(parse("[1,2")), "22P02");
        assert_eq!(kind(parse("[1,,2]")), "22P02");
        assert_eq!(kind(parse("[1 2]")), "22P02");
        assert_eq!(kind(parse("[1,2] x")), "22P02");
        assert_eq!(kind(parse("[1,2}")), "22P02");
        // (pgvector's strtof reads hexadecimal; an embedding literal is decimal only)
        assert_eq!(kind(parse("[0x10]")), "22P02");
        assert_eq!(kind(parse("[]")), "22000");
        assert_eq!(kind(parse("[NaN]")), "22000");
        assert_eq!(kind(parse("[-Infinity]")), "22000");
        assert_eq!(kind(parse("[1e39]")), "22003");
        let long = format!("[{}]", vec!["0"; MAX_DIMS + 1].join(","));
        assert_eq!(kind(parse(&long)), "54000");
        let longest = format!("[{}]", vec!["0"; MAX_DIMS].join(","));
        assert_eq!(parse(&longest).unwrap().len(), MAX_DIMS);
    }

    #[test]
    fn prints_shortest_round_trip_text() {
        assert_eq!(
            format(&[1.0, -0.5, 0.1, 1e-7, 3.0e38]),
            "[1,-0.5,0.1,1e-7,3e38]"
        );
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let values: Vec<f32> = (0..16_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                f32::from_bits((state >> 32) as u32)
            })
            .filter(|v| v.is_finite())
            .collect();
        let back = parse(&format(&values)).unwrap();
        assert!(values
            .iter()
            .zip(&back)
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    #[test]
    fn binary_round_trips_and_checks() {
        let values = vec![1.0, -2.5, 3.25e-20];
        let bytes = encode(&values);
        assert_eq!(&bytes[..4], &[0, 3, 0, 0]);
        assert_eq!(decode(&bytes, -1).unwrap(), values);
        assert_eq!(decode(&bytes, 3).unwrap(), values);
        assert_eq!(kind(decode(&bytes, 4)), "22000");
        assert_eq!(kind(decode(&bytes[..7], -1)), "08P01");
        assert_eq!(kind(decode(&bytes[..3], -1)), "08P01");
        let mut extra = bytes.clone();
        extra.push(0);
        assert_eq!(kind(decode(&extra, -1)), "22P03");
        assert_eq!(kind(decode(&[0xff, 0xff, 0, 0], -1)), "22000"); // a negative dimension
        let mut unused = bytes.clone();
        unused[3] = 1;
        assert_eq!(kind(decode(&unused, -1)), "22000");
        assert_eq!(kind(decode(&encode(&[f32::NAN]), -1)), "22000");
        assert_eq!(kind(decode(&[0, 0, 0, 0], -1)), "22000");
    }

    #[test]
    fn type_modifier_is_one_dimension() {
        assert_eq!(typmod(&["384"]).unwrap(), 384);
        assert_eq!(typmod(&["0"]).unwrap_err().kind.sqlstate(), "22023");
        assert_eq!(typmod(&["16001"]).unwrap_err().kind.sqlstate(), "22023");
        assert_eq!(typmod(&["3", "4"]).unwrap_err().kind.sqlstate(), "22023");
        assert_eq!(typmod(&["x"]).unwrap_err().kind.sqlstate(), "22P02");
    }
}
