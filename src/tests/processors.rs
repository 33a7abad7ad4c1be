//! The processor pipeline inside Postgres: the registry's built-in rows match the code, and
//! windows walked through read processors (in growing batches, over forks) agree with a model
//! that applies the same rules to the whole raw log.

use pgrx::prelude::*;
use pgrx::{JsonB, Uuid};
use serde_json::{json, Value};

use crate::core::processors::{apply_read_builtin, Config, Dedup, Level, ReadMessage, BUILTINS};
use crate::core::tokenizer::Encoding;

/// The newest messages that pass `config`, newest first until one does not fit: what
/// `ctx.token_window` must return (no summary here).
fn model(raw: &[(i64, ReadMessage)], config: &Config, budget: i64) -> Vec<i64> {
    let mut left = config
        .token_limit
        .map_or(budget, |l| budget.min(i64::from(l)));
    let mut dedup = Dedup::default();
    let mut kept = Vec::new();
    for (seq, message) in raw.iter().rev() {
        if config.dedup && dedup.repeats(&message.role, &message.content) {
            continue;
        }
        let mut m = message.clone();
        let pass = ["drop_roles", "drop_tool_messages", "truncate"]
            .iter()
            .all(|name| apply_read_builtin(name, config, &mut m, Encoding::O200kBase));
        if !pass {
            continue;
        }
        if m.tokens > left {
            break;
        }
        left -= m.tokens;
        kept.push(*seq);
    }
    kept.reverse();
    kept
}

#[pg_schema]
mod tests {
    use super::*;

    #[pg_test]
    fn builtin_rows_match_the_code() {
        let rows: Vec<(String, String, i32)> = Spi::connect(|client| {
            client
                .select(
                    "SELECT name, stage, priority FROM ctx.processor_registry
                      WHERE fn IS NULL AND tenant IS NULL ORDER BY stage DESC, priority",
                    None,
                    &[],
                )
                .unwrap()
                .map(|r| {
                    (
                        r.get::<String>(1).unwrap().unwrap(),
                        r.get::<String>(2).unwrap().unwrap(),
                        r.get::<i32>(3).unwrap().unwrap(),
                    )
                })
                .collect()
        });
        let code: Vec<(String, String, i32)> = BUILTINS
            .iter()
            .map(|b| (b.name.to_string(), b.stage.name().to_string(), b.priority))
            .collect();
        assert_eq!(rows, code);
    }

    #[pg_test]
    fn processed_windows_match_the_model() {
        let parent = Spi::get_one::<Uuid>("SELECT ctx.create_context('model')")
            .unwrap()
            .unwrap();
        let mut seed = 11u64;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        let mut batch = Vec::new();
        for i in 0..400 {
            let message = match next(6) {
                0 => {
                    json!({"role": "tool", "content": format!("result {}", next(5)), "metadata": {"tool_call_id": "c"}})
                }
                1 => json!({"role": "assistant", "content": "", "metadata": {"tool_calls": []}}),
                2 => json!({"role": "user", "content": "same again"}),
                3 => json!({"role": "system", "content": "note"}),
                _ => json!({"role": if i % 2 == 0 { "user" } else { "assistant" },
                            "content": "word ".repeat(1 + next(40) as usize)}),
            };
            batch.push(message);
        }
        Spi::run_with_args(
            "SELECT ctx.append_many($1, $2)",
            &[
                parent.into(),
                JsonB(Value::Array(batch[..250].to_vec())).into(),
            ],
        )
        .unwrap();
        // a fork sees the parent's first 250 and its own 150: the walk crosses segments
        let fork = Spi::get_one_with_args::<Uuid>("SELECT ctx.fork($1)", &[parent.into()])
            .unwrap()
            .unwrap();
        Spi::run_with_args(
            "SELECT ctx.append_many($1, $2)",
            &[
                fork.into(),
                JsonB(Value::Array(batch[250..].to_vec())).into(),
            ],
        )
        .unwrap();
        let raw: Vec<(i64, ReadMessage)> = Spi::connect(|client| {
            client
                .select(
                    "SELECT seq, role, content, metadata, tokens FROM ctx.messages($1)",
                    None,
                    &[fork.into()],
                )
                .unwrap()
                .map(|r| {
                    (
                        r.get::<i64>(1).unwrap().unwrap(),
                        ReadMessage {
                            role: r.get(2).unwrap().unwrap(),
                            content: r.get(3).unwrap().unwrap(),
                            metadata: r.get::<JsonB>(4).unwrap().unwrap().0,
                            tokens: i64::from(r.get::<i32>(5).unwrap().unwrap()),
                        },
                    )
                })
                .collect()
        });
        assert_eq!(raw.len(), 400);
        let configs = [
            json!({"drop_tool_messages": true}),
            json!({"dedup": true}),
            json!({"drop_roles": ["system", "tool"], "dedup": true}),
            json!({"truncate": 4}),
            json!({"truncate": 6, "token_limit": 150, "drop_tool_messages": true}),
        ];
        for doc in configs {
            let mut config = Config::default();
            config.overlay(&doc, Level::Context).unwrap();
            Spi::run_with_args(
                "SELECT ctx.configure_context_processors($1, $2)",
                &[fork.into(), JsonB(doc.clone()).into()],
            )
            .unwrap();
            for budget in [0i64, 7, 60, 333, 2000, 100_000] {
                let got: Vec<i64> = Spi::connect(|client| {
                    client
                        .select(
                            "SELECT seq FROM ctx.token_window($1, $2)",
                            None,
                            &[fork.into(), (budget as i32).into()],
                        )
                        .unwrap()
                        .map(|r| r.get::<i64>(1).unwrap().unwrap())
                        .collect()
                });
                assert_eq!(got, model(&raw, &config, budget), "{doc} budget {budget}");
            }
        }
    }
}
