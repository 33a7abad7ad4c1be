//! Recall's exact path against a brute-force ranking computed here, with filters and
//! namespaces, on any server (no pgvector needed).

use pgrx::prelude::*;
use pgrx::Uuid;

use crate::core::knn::Metric;

fn vector(seed: &mut u64, dims: usize) -> Vec<f32> {
    (0..dims)
        .map(|_| {
            *seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((*seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect()
}

#[pg_schema]
mod tests {
    use super::*;

    /// Every built-in column a filter may address is compiled as its real type: a `real` column
    /// compared as `float8` can never equal the value it stores (0.9::real is 0.8999999762).
    #[pg_test]
    fn filter_columns_have_their_table_types() {
        use crate::core::filter::{ColumnType, FilterTarget};
        let targets: [(&FilterTarget, &str); 2] = [
            (&crate::services::recall::MEMORY_FILTER, "ctx.memories"),
            (&crate::api::state::STATE_FILTER, "ctx.state"),
        ];
        for (target, table) in targets {
            for (name, sql, kind) in target.columns {
                let column = sql.split('.').nth(1).expect("alias.column");
                let pg_type: String = Spi::get_one_with_args(
                    "SELECT format_type(atttypid, NULL) FROM pg_attribute
                      WHERE attrelid = $1::regclass AND attname = $2 AND NOT attisdropped",
                    &[table.into(), column.into()],
                )
                .unwrap()
                .unwrap_or_else(|| panic!("{table}.{column} does not exist"));
                let expected: &[&str] = match kind {
                    ColumnType::Text => &["text"],
                    ColumnType::Number => &["bigint", "integer", "double precision", "smallint"],
                    ColumnType::Real => &["real"],
                    ColumnType::Timestamp => &["timestamp with time zone"],
                    ColumnType::Uuid => &["uuid"],
                    ColumnType::TextArray => &["text[]"],
                };
                assert!(
                    expected.contains(&pg_type.as_str()),
                    "filter column \"{name}\" ({table}.{column}) is {pg_type}, compiled as {kind:?}"
                );
            }
        }
    }

    #[pg_test]
    fn exact_recall_matches_brute_force() {
        let mut seed = 7u64;
        let mut stored: Vec<(Uuid, Vec<f32>, i64, bool)> = Vec::new();
        for i in 0..600i64 {
            let v = vector(&mut seed, 24);
            let namespace = if i % 3 == 0 {
                vec!["t", "a"]
            } else {
                vec!["t", "b", "deep"]
            };
            let id = Spi::get_one_with_args::<Uuid>(
                "SELECT ctx.remember($1, 'm' || $2, $3, jsonb_build_object('bucket', $2 % 10))",
                &[namespace.into(), i.into(), v.clone().into()],
            )
            .unwrap()
            .unwrap();
            stored.push((id, v, i % 10, i % 3 == 0));
        }
        for q in 0..10 {
            let query = vector(&mut seed, 24);
            let bucket = q % 10;
            for (prefix, only_a) in [(vec!["t"], false), (vec!["t", "a"], true)] {
                let mut expected: Vec<(Uuid, f32)> = stored
                    .iter()
                    .filter(|(_, _, b, in_a)| *b == bucket && (!only_a || *in_a))
                    .map(|(id, v, _, _)| (*id, Metric::Cosine.similarity(&query, v)))
                    .collect();
                expected.sort_by(|a, b| b.1.total_cmp(&a.1));
                let expected: Vec<Uuid> = expected.into_iter().take(5).map(|(id, _)| id).collect();
                let got: Vec<Uuid> = Spi::connect(|client| {
                    client
                        .select(
                            "SELECT id FROM ctx.recall($1, $2, k => 5, filter => jsonb_build_object('bucket', $3),
                                                       weights => '{\"recency\": 0, \"importance\": 0}')",
                            None,
                            &[prefix.clone().into(), query.clone().into(), bucket.into()],
                        )
                        .unwrap()
                        .map(|row| row.get::<Uuid>(1).unwrap().unwrap())
                        .collect()
                });
                assert_eq!(got, expected, "query {q}, prefix {prefix:?}");
            }
        }
    }

    #[pg_test]
    fn forget_erases_every_version() {
        let id = Spi::get_one::<Uuid>("SELECT ctx.remember('{f}', 'v1', '{1,0}')")
            .unwrap()
            .unwrap();
        Spi::run_with_args("SELECT ctx.update_memory($1, 'v2')", &[id.into()]).unwrap();
        Spi::run_with_args("SELECT ctx.update_memory($1, 'v3')", &[id.into()]).unwrap();
        let versions = Spi::get_one_with_args::<i64>(
            "SELECT count(*) FROM ctx.memories WHERE id = $1",
            &[id.into()],
        )
        .unwrap();
        assert_eq!(versions, Some(3));
        assert_eq!(
            Spi::get_one_with_args::<bool>("SELECT ctx.forget($1::uuid)", &[id.into()]).unwrap(),
            Some(true)
        );
        let left = Spi::get_one_with_args::<i64>(
            "SELECT count(*) FROM ctx.memories WHERE id = $1",
            &[id.into()],
        )
        .unwrap();
        assert_eq!(left, Some(0));
    }
}
