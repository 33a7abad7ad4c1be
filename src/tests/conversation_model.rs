//! Model-based test of the conversation store: random appends, batches, compactions, forks
//! (forks of forks, compaction on both sides), edits and deletes by message id (on either side
//! of a fork: each context's model is its own copy, so a fork's view must stay as it was), each
//! read function compared with a plain in-memory model after every step.

use pgrx::prelude::*;
use pgrx::{JsonB, Uuid};
use serde_json::json;

use crate::core::tokenizer::Encoding;

#[derive(Clone, Debug, PartialEq)]
struct Msg {
    seq: i64,
    role: String,
    content: String,
    tokens: i64,
    /// "" for a summary
    id: String,
    /// 0 for a summary
    revision: i32,
    deleted: bool,
}

impl Msg {
    fn message(seq: i64, role: &str, content: String, id: String) -> Msg {
        let tokens = Encoding::O200kBase.count(&content) as i64;
        Msg {
            seq,
            role: role.into(),
            content,
            tokens,
            id,
            revision: 1,
            deleted: false,
        }
    }
}

#[derive(Clone)]
struct ModelContext {
    id: Uuid,
    last_seq: i64,
    /// Every message of the view, oldest first.
    view: Vec<Msg>,
    /// Summaries, oldest first; the last one is current.
    summaries: Vec<Msg>,
}

impl ModelContext {
    fn through(&self) -> i64 {
        self.summaries.last().map_or(0, |s| s.seq)
    }
    fn active(&self) -> Vec<Msg> {
        self.view
            .iter()
            .filter(|m| m.seq > self.through() && !m.deleted)
            .cloned()
            .collect()
    }
    fn buffer(&self) -> Vec<Msg> {
        self.summaries
            .last()
            .cloned()
            .into_iter()
            .chain(self.active())
            .collect()
    }
    fn token_window(&self, mut budget: i64) -> Vec<Msg> {
        let mut out = Vec::new();
        if let Some(s) = self.summaries.last().filter(|s| s.tokens <= budget) {
            budget -= s.tokens;
            out.push(s.clone());
        }
        let active = self.active();
        let mut tail = Vec::new();
        for m in active.iter().rev() {
            if m.tokens > budget {
                break;
            }
            budget -= m.tokens;
            tail.push(m.clone());
        }
        tail.reverse();
        out.extend(tail);
        out
    }
    fn history(&self) -> Vec<Msg> {
        let mut out = Vec::new();
        let mut pending = self.summaries.iter().peekable();
        for m in &self.view {
            while pending.peek().is_some_and(|s| s.seq < m.seq) {
                out.push(pending.next().unwrap().clone());
            }
            out.push(m.clone());
        }
        out.extend(pending.cloned());
        out
    }
}

/// Deterministic pseudo-random numbers (no dependency, same run every time).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound.max(1)
    }
}

const WORDS: [&str; 12] = [
    "agent", "memory", "the", "tool", "call", "returned", "42", "é", "你好", "🌍", "\n", "context",
];
const ROLES: [&str; 4] = ["system", "user", "assistant", "tool"];

fn random_text(rng: &mut Lcg) -> String {
    let n = rng.next(12);
    (0..n)
        .map(|_| WORDS[rng.next(WORDS.len() as u64) as usize])
        .collect::<Vec<_>>()
        .join(" ")
}

// the columns every read below selects
macro_rules! columns {
    () => {
        "SELECT seq, role, coalesce(content, ''), tokens, coalesce(message_id, ''), coalesce(revision, 0), deleted "
    };
}

fn read(sql: &str, id: Uuid, arg: Option<i64>) -> Vec<Msg> {
    Spi::connect(|client| {
        let args = match arg {
            Some(a) => vec![id.into(), a.into()],
            None => vec![id.into()],
        };
        client
            .select(sql, None, &args)
            .unwrap()
            .map(|row| Msg {
                seq: row.get::<i64>(1).unwrap().unwrap(),
                role: row.get::<String>(2).unwrap().unwrap(),
                content: row.get::<String>(3).unwrap().unwrap(),
                tokens: row.get::<i32>(4).unwrap().unwrap() as i64,
                id: row.get::<String>(5).unwrap().unwrap(),
                revision: row.get::<i32>(6).unwrap().unwrap(),
                deleted: row.get::<bool>(7).unwrap().unwrap(),
            })
            .collect()
    })
}

fn check(model: &ModelContext, rng: &mut Lcg, step: usize) {
    let id = model.id;
    let ctx = format!("step {step}");
    assert_eq!(
        read(concat!(columns!(), "FROM ctx.messages($1)"), id, None),
        model.buffer(),
        "{ctx} messages"
    );
    let n = rng.next(8) as i64;
    let buffer = model.buffer();
    let expected: Vec<Msg> = buffer[buffer.len().saturating_sub(n as usize)..].to_vec();
    assert_eq!(
        read(
            concat!(columns!(), "FROM ctx.window($1, $2::int)"),
            id,
            Some(n)
        ),
        expected,
        "{ctx} window {n}"
    );
    let budget = rng.next(60) as i64;
    assert_eq!(
        read(
            concat!(columns!(), "FROM ctx.token_window($1, $2::int)"),
            id,
            Some(budget)
        ),
        model.token_window(budget),
        "{ctx} token_window {budget}"
    );
    let since = rng.next(model.last_seq as u64 + 2) as i64;
    let expected: Vec<Msg> = model
        .buffer()
        .into_iter()
        .filter(|m| m.seq > since)
        .collect();
    assert_eq!(
        read(
            concat!(columns!(), "FROM ctx.messages($1, $2)"),
            id,
            Some(since)
        ),
        expected,
        "{ctx} since {since}"
    );
    assert_eq!(
        read(
            concat!(
                columns!(),
                "FROM ctx.history($1) WHERE current OR message_id IS NULL"
            ),
            id,
            None
        ),
        model.history(),
        "{ctx} history"
    );
}

#[pg_schema]
mod tests {
    use super::*;

    #[pg_test]
    fn conversation_store_matches_model() {
        let mut rng = Lcg(0x5eed);
        let root = Spi::get_one::<Uuid>("SELECT ctx.create_context('model')")
            .unwrap()
            .unwrap();
        let mut contexts = vec![ModelContext {
            id: root,
            last_seq: 0,
            view: vec![],
            summaries: vec![],
        }];
        for step in 0..500 {
            let i = rng.next(contexts.len() as u64) as usize;
            match rng.next(13) {
                0..=4 => {
                    let (role, content) = (ROLES[rng.next(4) as usize], random_text(&mut rng));
                    let seq = Spi::get_one_with_args::<i64>(
                        "SELECT ctx.append($1, $2, $3, message_id => $4)",
                        &[
                            contexts[i].id.into(),
                            role.into(),
                            content.as_str().into(),
                            format!("m{step}").into(),
                        ],
                    )
                    .unwrap()
                    .unwrap();
                    let c = &mut contexts[i];
                    c.last_seq += 1;
                    assert_eq!(seq, c.last_seq, "step {step}: gap-free seq");
                    c.view
                        .push(Msg::message(seq, role, content, format!("m{step}")));
                }
                5..=6 => {
                    let batch: Vec<(String, String)> = (0..rng.next(5) + 1)
                        .map(|_| {
                            (
                                ROLES[rng.next(4) as usize].to_string(),
                                random_text(&mut rng),
                            )
                        })
                        .collect();
                    let payload = JsonB(json!(batch
                        .iter()
                        .enumerate()
                        .map(|(k, (r, c))| json!({"role": r, "content": c, "message_id": format!("m{step}-{k}")}))
                        .collect::<Vec<_>>()));
                    let seqs: Vec<i64> = Spi::connect(|client| {
                        client
                            .select(
                                "SELECT s FROM ctx.append_many($1, $2) s",
                                None,
                                &[contexts[i].id.into(), payload.into()],
                            )
                            .unwrap()
                            .map(|r| r.get::<i64>(1).unwrap().unwrap())
                            .collect()
                    });
                    let c = &mut contexts[i];
                    let expected: Vec<i64> =
                        (c.last_seq + 1..=c.last_seq + batch.len() as i64).collect();
                    assert_eq!(seqs, expected, "step {step}: batch seqs");
                    for (k, ((role, content), seq)) in batch.into_iter().zip(seqs).enumerate() {
                        c.view
                            .push(Msg::message(seq, &role, content, format!("m{step}-{k}")));
                    }
                    c.last_seq += expected.len() as i64;
                }
                7 => {
                    let keep = rng.next(4) as usize;
                    let active = contexts[i].active();
                    if active.len() <= keep {
                        continue; // the error path is covered by the regression tests
                    }
                    let summary = format!("summary at step {step}: {}", random_text(&mut rng));
                    let through = Spi::get_one_with_args::<i64>(
                        "SELECT ctx.compact($1, $2, $3::int)",
                        &[
                            contexts[i].id.into(),
                            summary.as_str().into(),
                            (keep as i64).into(),
                        ],
                    )
                    .unwrap()
                    .unwrap();
                    assert_eq!(
                        through,
                        active[active.len() - keep - 1].seq,
                        "step {step}: compaction boundary"
                    );
                    let mut summary = Msg::message(through, "summary", summary, String::new());
                    summary.revision = 0;
                    contexts[i].summaries.push(summary);
                }
                8..=10 => {
                    // an edit (or, one time in three, a delete) of a live message of the view
                    let live: Vec<usize> = (0..contexts[i].view.len())
                        .filter(|&k| !contexts[i].view[k].deleted)
                        .collect();
                    if live.is_empty() {
                        continue;
                    }
                    let k = live[rng.next(live.len() as u64) as usize];
                    let message_id = contexts[i].view[k].id.clone();
                    if rng.next(3) == 0 {
                        let deleted = Spi::get_one_with_args::<i32>(
                            "SELECT ctx.delete_messages($1, ARRAY[$2])",
                            &[contexts[i].id.into(), message_id.as_str().into()],
                        )
                        .unwrap();
                        let m = &mut contexts[i].view[k];
                        assert_eq!(deleted, Some(1), "step {step}: delete {message_id}");
                        m.deleted = true;
                        m.content = String::new();
                        m.tokens = 0;
                        m.revision += 1;
                    } else {
                        let content = format!("edited at step {step}: {}", random_text(&mut rng));
                        let revision = Spi::get_one_with_args::<i32>(
                            "SELECT ctx.update_message($1, $2, $3)",
                            &[
                                contexts[i].id.into(),
                                message_id.as_str().into(),
                                content.as_str().into(),
                            ],
                        )
                        .unwrap();
                        let m = &mut contexts[i].view[k];
                        m.revision += 1;
                        assert_eq!(revision, Some(m.revision), "step {step}: edit {message_id}");
                        m.tokens = Encoding::O200kBase.count(&content) as i64;
                        m.content = content;
                    }
                }
                _ => {
                    let parent = contexts[i].clone();
                    let at = rng.next(parent.last_seq as u64 + 1) as i64;
                    let id = Spi::get_one_with_args::<Uuid>(
                        "SELECT ctx.fork($1, $2)",
                        &[parent.id.into(), at.into()],
                    )
                    .unwrap()
                    .unwrap();
                    contexts.push(ModelContext {
                        id,
                        last_seq: at,
                        view: parent
                            .view
                            .iter()
                            .filter(|m| m.seq <= at)
                            .cloned()
                            .collect(),
                        summaries: parent
                            .summaries
                            .iter()
                            .filter(|s| s.seq <= at)
                            .cloned()
                            .collect(),
                    });
                }
            }
            check(&contexts[i], &mut rng, step);
        }
        assert!(
            contexts.len() > 10,
            "the walk should fork a family of contexts"
        );
        for (step, c) in contexts.iter().enumerate() {
            check(c, &mut rng, 1000 + step);
        }
    }

    #[pg_test]
    fn compaction_keeps_originals_compressed() {
        let id = Spi::get_one::<Uuid>("SELECT ctx.create_context()")
            .unwrap()
            .unwrap();
        let long = "the same long sentence again and again. ".repeat(50);
        for _ in 0..3 {
            Spi::get_one_with_args::<i64>(
                "SELECT ctx.append($1, 'user', $2)",
                &[id.into(), long.as_str().into()],
            )
            .unwrap();
        }
        Spi::get_one_with_args::<i64>("SELECT ctx.compact($1, 'short', 1)", &[id.into()]).unwrap();
        let (archived, stored): (Option<i64>, Option<i64>) = Spi::get_two_with_args(
            "SELECT count(*), sum(length(content_lz4)) FROM ctx.messages WHERE context_id = $1 AND content IS NULL",
            &[id.into()],
        )
        .unwrap();
        assert_eq!(archived, Some(2));
        assert!(
            stored.unwrap() * 10 < 2 * long.len() as i64,
            "lz4 should shrink repetitive text"
        );
        let intact = Spi::get_one_with_args::<i64>(
            "SELECT count(*) FROM ctx.history($1) WHERE role = 'user' AND content = $2",
            &[id.into(), long.as_str().into()],
        )
        .unwrap();
        assert_eq!(intact, Some(3));
    }

    #[pg_test(error = "context_id must not be NULL")]
    fn null_context_is_an_error() {
        Spi::run("SELECT ctx.append(NULL, 'user', 'x')").unwrap();
    }

    #[pg_test(error = "unknown message role \"narrator\"")]
    fn unknown_role_is_an_error() {
        let id = Spi::get_one::<Uuid>("SELECT ctx.create_context()")
            .unwrap()
            .unwrap();
        Spi::run_with_args("SELECT ctx.append($1, 'narrator', 'x')", &[id.into()]).unwrap();
    }
}
