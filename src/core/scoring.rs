//! Hybrid recall scoring: one score from vector similarity, full-text rank, recency and
//! importance, with documented default weights that a `weights` document overrides.
//!
//! score = similarity·w_sim + text·w_text + recency·w_recency + importance·w_importance
//!   text     = ts_rank_cd / (1 + ts_rank_cd), in [0, 1)
//!   recency  = 0.5 ^ (age / half_life), age since the memory was last recalled (or created)

use serde_json::Value;

use crate::core::conversation::json_type;
use crate::error::{CtxError, CtxResult};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    pub similarity: f64,
    pub text: f64,
    pub recency: f64,
    pub importance: f64,
    /// Half-life of the recency decay, in seconds.
    pub half_life_secs: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            similarity: 1.0,
            text: 0.5,
            recency: 0.2,
            importance: 0.2,
            half_life_secs: 7.0 * 86400.0,
        }
    }
}

fn bad_weights(message: String) -> CtxError {
    CtxError::invalid(format!("invalid weights: {message}")).with_hint(
        "weights look like {\"similarity\": 1, \"text\": 0.5, \"recency\": 0.2, \"importance\": 0.2, \"half_life\": \"7 days\"}",
    )
}

impl Weights {
    /// Defaults overridden by the keys present in `doc`. `half_life` is seconds (a number) or a
    /// duration such as "7 days", "12 hours", "90 minutes".
    pub fn from_json(doc: Option<&Value>) -> CtxResult<Weights> {
        let mut weights = Weights::default();
        let Some(doc) = doc.filter(|d| !d.is_null()) else {
            return Ok(weights);
        };
        let map = doc
            .as_object()
            .ok_or_else(|| bad_weights(format!("expected an object, not {}", json_type(doc))))?;
        for (key, value) in map {
            let slot = match key.as_str() {
                "similarity" => &mut weights.similarity,
                "text" => &mut weights.text,
                "recency" => &mut weights.recency,
                "importance" => &mut weights.importance,
                "half_life" => {
                    weights.half_life_secs = parse_duration(value)?;
                    continue;
                }
                other => return Err(bad_weights(format!("unknown key \"{other}\""))),
            };
            *slot = value
                .as_f64()
                .filter(|w| w.is_finite() && *w >= 0.0)
                .ok_or_else(|| {
                    bad_weights(format!("\"{key}\" must be a number >= 0, not {value}"))
                })?;
        }
        Ok(weights)
    }

    /// Whether the score orders as similarity alone does: every other weight is zero (the
    /// text's too, when there is a query text).
    pub fn similarity_only(&self, with_text: bool) -> bool {
        self.similarity > 0.0
            && (self.text == 0.0 || !with_text)
            && self.recency == 0.0
            && self.importance == 0.0
    }

    pub fn recency(&self, age_secs: f64) -> f64 {
        0.5f64.powf(age_secs.max(0.0) / self.half_life_secs)
    }

    pub fn score(&self, similarity: f64, text_rank: f64, age_secs: f64, importance: f64) -> f64 {
        self.similarity * similarity
            + self.text * (text_rank / (1.0 + text_rank))
            + self.recency * self.recency(age_secs)
            + self.importance * importance
    }
}

fn parse_duration(value: &Value) -> CtxResult<f64> {
    let seconds = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => {
            let mut parts = s.split_whitespace();
            let amount = parts.next().and_then(|a| a.parse::<f64>().ok());
            let unit = parts.next().unwrap_or("seconds");
            let scale = match unit.trim_end_matches('s') {
                "second" | "sec" => Some(1.0),
                "minute" | "min" => Some(60.0),
                "hour" => Some(3600.0),
                "day" => Some(86400.0),
                "week" => Some(7.0 * 86400.0),
                _ => None,
            };
            match (amount, scale, parts.next()) {
                (Some(a), Some(s), None) => Some(a * s),
                _ => None,
            }
        }
        _ => None,
    };
    seconds
        .filter(|s| s.is_finite() && *s > 0.0)
        .ok_or_else(|| {
            bad_weights(format!(
                "half_life must be a positive duration such as \"7 days\" or seconds, not {value}"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn similarity_only_when_every_other_weight_is_zero() {
        let only = |doc| {
            Weights::from_json(Some(&doc))
                .unwrap()
                .similarity_only(true)
        };
        assert!(only(json!({"text": 0, "recency": 0, "importance": 0})));
        assert!(!Weights::default().similarity_only(true));
        assert!(!Weights::default().similarity_only(false));
        // without a query text the text weight scores nothing
        let no_text = Weights::from_json(Some(&json!({"recency": 0, "importance": 0}))).unwrap();
        assert!(no_text.similarity_only(false) && !no_text.similarity_only(true));
        assert!(!only(json!({"text": 0, "recency": 0, "importance": 0.01})));
        assert!(!only(json!({"text": 0.01, "recency": 0, "importance": 0})));
        assert!(!only(json!({"text": 0, "recency": 1e-9, "importance": 0})));
        // nothing weighted: every score is 0 and the order is the ids', not the similarity's
        assert!(!only(
            json!({"similarity": 0, "text": 0, "recency": 0, "importance": 0})
        ));
    }

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(Weights::from_json(None).unwrap(), Weights::default());
        assert_eq!(
            Weights::from_json(Some(&json!({}))).unwrap(),
            Weights::default()
        );
        let w = Weights::from_json(Some(
            &json!({"similarity": 0, "text": 2, "half_life": "12 hours"}),
        ))
        .unwrap();
        assert_eq!(
            (w.similarity, w.text, w.recency, w.half_life_secs),
            (0.0, 2.0, 0.2, 43200.0)
        );
        assert_eq!(
            Weights::from_json(Some(&json!({"half_life": 60})))
                .unwrap()
                .half_life_secs,
            60.0
        );
        assert_eq!(
            Weights::from_json(Some(&json!({"half_life": "1 week"})))
                .unwrap()
                .half_life_secs,
            604800.0
        );
    }

    #[test]
    fn bad_weights_are_22023() {
        for doc in [
            json!([1]),
            json!({"similarity": -1}),
            json!({"text": "a lot"}),
            json!({"novelty": 1}),
            json!({"half_life": "soon"}),
            json!({"half_life": 0}),
            json!({"half_life": "3 fortnights"}),
        ] {
            let e = Weights::from_json(Some(&doc)).unwrap_err();
            assert_eq!(e.kind.sqlstate(), "22023", "{doc}");
            assert!(e.message.starts_with("invalid weights"), "{}", e.message);
        }
    }

    #[test]
    fn recency_halves_every_half_life() {
        let w = Weights {
            half_life_secs: 100.0,
            ..Weights::default()
        };
        assert_eq!(w.recency(0.0), 1.0);
        assert!((w.recency(100.0) - 0.5).abs() < 1e-12);
        assert!((w.recency(300.0) - 0.125).abs() < 1e-12);
        assert_eq!(w.recency(-5.0), 1.0, "clock skew never boosts above 1");
    }

    #[test]
    fn score_combines_components() {
        let w = Weights {
            similarity: 1.0,
            text: 1.0,
            recency: 0.0,
            importance: 0.5,
            half_life_secs: 1.0,
        };
        assert!((w.score(0.8, 1.0, 0.0, 0.4) - (0.8 + 0.5 + 0.2)).abs() < 1e-12);
        let text_only = Weights {
            similarity: 0.0,
            text: 1.0,
            recency: 0.0,
            importance: 0.0,
            half_life_secs: 1.0,
        };
        assert!(text_only.score(0.0, 3.0, 0.0, 0.0) > text_only.score(0.0, 1.0, 0.0, 0.0));
    }
}
