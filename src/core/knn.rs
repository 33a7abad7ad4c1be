//! Similarity metrics and exact top-k over embeddings: the scores of recall (its exact scan
//! calls them per row through `ctx.embedding_similarity`) and the nearest-duplicate search of
//! `ctx.remember`. The distance loops run over fixed-width chunks with independent
//! accumulators so the compiler vectorises them.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::error::{CtxError, CtxResult};

/// pgvector's HNSW limit for `vector`; embeddings above it could never be indexed.
pub const MAX_DIMS: usize = 16000;

/// How vectors are compared; each maps to a similarity where higher is closer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// cosine similarity, in [-1, 1]
    Cosine,
    /// 1 / (1 + euclidean distance), in (0, 1]
    L2,
    /// inner product
    InnerProduct,
}

impl Metric {
    /// Case-insensitive, surrounding spaces ignored; allocation-free, since
    /// `ctx.embedding_similarity` parses its argument once per row.
    pub fn parse(name: &str) -> CtxResult<Metric> {
        let trimmed = name.trim();
        let name_is =
            |spellings: &[&str]| spellings.iter().any(|s| trimmed.eq_ignore_ascii_case(s));
        if name_is(&["cosine"]) {
            Ok(Metric::Cosine)
        } else if name_is(&["l2", "euclidean"]) {
            Ok(Metric::L2)
        } else if name_is(&["ip", "inner_product", "dot"]) {
            Ok(Metric::InnerProduct)
        } else {
            Err(
                CtxError::invalid(format!("unknown vector metric \"{name}\""))
                    .with_hint("use cosine, l2 or inner_product"),
            )
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::L2 => "l2",
            Metric::InnerProduct => "inner_product",
        }
    }

    /// pgvector operator class and distance operator for this metric.
    pub fn pgvector_opclass(self) -> (&'static str, &'static str) {
        match self {
            Metric::Cosine => ("vector_cosine_ops", "<=>"),
            Metric::L2 => ("vector_l2_ops", "<->"),
            Metric::InnerProduct => ("vector_ip_ops", "<#>"),
        }
    }

    pub fn similarity(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Metric::Cosine => {
                let (dot, na, nb) = dot_and_norms(a, b);
                if na == 0.0 || nb == 0.0 {
                    0.0
                } else {
                    // the division in f64 and a clamp: a vector compared with itself scores
                    // exactly 1 (f32 rounding gave 1.0000001, a cosine distance below 0)
                    let cosine = f64::from(dot) / (f64::from(na).sqrt() * f64::from(nb).sqrt());
                    cosine.clamp(-1.0, 1.0) as f32
                }
            }
            Metric::L2 => 1.0 / (1.0 + squared_l2(a, b).sqrt()),
            Metric::InnerProduct => dot(a, b),
        }
    }
}

/// How many exact row reads one tuple an HNSW scan visits costs: its neighbours' distances and
/// the visibility and filter checks of its heap row. Measured on pgvector 0.8.5 (100k × 384-d,
/// m = 16): an iterative scan filtered to 1 % visited ~1,000 tuples in ~12 ms, an exact scan of
/// the same 1,000 rows through the btree took ~1.7 ms.
const GRAPH_VISIT_COST: f64 = 7.0;

/// Whether recall should scan `candidates` rows exactly rather than walk the HNSW index over
/// `indexed` rows for the best `want`, searching `ef_search` wide. An exact scan reads each
/// candidate once; a filtered iterative scan visits about `want · indexed / candidates` tuples
/// (the matches are that sparse in the graph), and never fewer than `ef_search`.
pub fn exact_scan_is_cheaper(candidates: f64, want: usize, indexed: f64, ef_search: usize) -> bool {
    let candidates = candidates.max(1.0);
    let indexed = indexed.max(candidates);
    let visited = (want as f64 * indexed / candidates).max(ef_search as f64);
    candidates <= GRAPH_VISIT_COST * visited
}

/// A candidate count above which the HNSW walk is cheaper than the exact scan whatever the
/// exact count: with C of N rows the walk visits max(want · N / C, ef_search) tuples (at least
/// max(want, ef_search) when C exceeds N), so the scan is cheaper only while
/// C² ≤ GRAPH_VISIT_COST · want · N or C ≤ GRAPH_VISIT_COST · max(ef_search, want). Counting the
/// candidates up to this bound settles `exact_scan_is_cheaper` with the true count.
pub fn exact_scan_bound(want: usize, indexed: f64, ef_search: usize) -> usize {
    let sparse = (GRAPH_VISIT_COST * want as f64 * indexed.max(1.0)).sqrt();
    let dense = GRAPH_VISIT_COST * ef_search.max(want) as f64;
    sparse.max(dense).ceil() as usize + 1
}

/// Checks an embedding: non-empty, finite, at most MAX_DIMS values.
pub fn validate(embedding: &[f32], what: &str) -> CtxResult<()> {
    if embedding.is_empty() {
        return Err(CtxError::invalid(format!("{what} is empty"))
            .with_hint("pass NULL for no embedding, or an array of floats such as '{0.1,0.2}'"));
    }
    if embedding.len() > MAX_DIMS {
        return Err(CtxError::invalid(format!(
            "{what} has {} dimensions, above the limit of {MAX_DIMS}",
            embedding.len()
        ))
        .with_hint("reduce the embedding's dimensions"));
    }
    if let Some(i) = embedding.iter().position(|v| !v.is_finite()) {
        return Err(CtxError::invalid(format!(
            "{what} has a non-finite value ({}) at position {}",
            embedding[i],
            i + 1
        ))
        .with_hint("embeddings must not contain NaN or Infinity"));
    }
    Ok(())
}

const LANES: usize = 8;

/// A kernel compiled twice: for the build's baseline CPU and, on x86-64, for AVX2 (eight lanes
/// in one register), chosen at run time. Both do the same IEEE operations in the same order
/// (LANES accumulators, no fused multiply-add), so every machine computes the same bits.
macro_rules! dispatched {
    ($(#[$doc:meta])* $vis:vis fn $name:ident -> $ret:ty = $portable:ident) => {
        $(#[$doc])*
        $vis fn $name(a: &[f32], b: &[f32]) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                unsafe fn wide(a: &[f32], b: &[f32]) -> $ret {
                    $portable(a, b)
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: this CPU has AVX2 (std caches the check).
                    return unsafe { wide(a, b) };
                }
            }
            $portable(a, b)
        }
    };
}

dispatched!(
    /// Σ aᵢbᵢ over the shorter length.
    pub fn dot -> f32 = dot_portable
);
dispatched!(fn dot_and_norms -> (f32, f32, f32) = dot_and_norms_portable);
dispatched!(fn squared_l2 -> f32 = squared_l2_portable);

#[inline(always)]
fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; LANES];
    let chunks = n / LANES * LANES;
    for (ca, cb) in a[..chunks]
        .chunks_exact(LANES)
        .zip(b[..chunks].chunks_exact(LANES))
    {
        for i in 0..LANES {
            acc[i] += ca[i] * cb[i];
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for i in chunks..n {
        sum += a[i] * b[i];
    }
    sum
}

#[inline(always)]
fn dot_and_norms_portable(a: &[f32], b: &[f32]) -> (f32, f32, f32) {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let (mut d, mut na, mut nb) = ([0f32; LANES], [0f32; LANES], [0f32; LANES]);
    let chunks = n / LANES * LANES;
    for (ca, cb) in a[..chunks]
        .chunks_exact(LANES)
        .zip(b[..chunks].chunks_exact(LANES))
    {
        for i in 0..LANES {
            d[i] += ca[i] * cb[i];
            na[i] += ca[i] * ca[i];
            nb[i] += cb[i] * cb[i];
        }
    }
    let (mut d, mut na, mut nb): (f32, f32, f32) =
        (d.iter().sum(), na.iter().sum(), nb.iter().sum());
    for i in chunks..n {
        d += a[i] * b[i];
        na += a[i] * a[i];
        nb += b[i] * b[i];
    }
    (d, na, nb)
}

#[inline(always)]
fn squared_l2_portable(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; LANES];
    let chunks = n / LANES * LANES;
    for (ca, cb) in a[..chunks]
        .chunks_exact(LANES)
        .zip(b[..chunks].chunks_exact(LANES))
    {
        for i in 0..LANES {
            let diff = ca[i] - cb[i];
            acc[i] += diff * diff;
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for i in chunks..n {
        let diff = a[i] - b[i];
        sum += diff * diff;
    }
    sum
}

/// A candidate with its similarity; ordered so the heap's top is the worst kept.
struct Scored<T> {
    similarity: f32,
    order: usize,
    item: T,
}

impl<T> PartialEq for Scored<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl<T> Eq for Scored<T> {}
impl<T> PartialOrd for Scored<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Scored<T> {
    // "greater" = worse: lower similarity, then later arrival (ties keep the earlier one)
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .similarity
            .total_cmp(&self.similarity)
            .then(self.order.cmp(&other.order))
    }
}

/// Streaming top-k: feed candidates, keep the k most similar (ties: first seen wins).
pub struct TopK<T> {
    k: usize,
    query: Vec<f32>,
    metric: Metric,
    heap: BinaryHeap<Scored<T>>,
    seen: usize,
}

impl<T> TopK<T> {
    pub fn new(query: &[f32], metric: Metric, k: usize) -> Self {
        TopK {
            k,
            query: query.to_vec(),
            metric,
            heap: BinaryHeap::with_capacity(k + 1),
            seen: 0,
        }
    }

    pub fn push(&mut self, embedding: &[f32], item: T) {
        let similarity = self.metric.similarity(&self.query, embedding);
        self.push_scored(similarity, item);
    }

    pub fn push_scored(&mut self, similarity: f32, item: T) {
        self.seen += 1;
        if self.k == 0 {
            return;
        }
        let candidate = Scored {
            similarity,
            order: self.seen,
            item,
        };
        if self.heap.len() < self.k {
            self.heap.push(candidate);
        } else if self.heap.peek().is_some_and(|worst| candidate < *worst) {
            self.heap.pop();
            self.heap.push(candidate);
        }
    }

    /// The kept candidates, most similar first.
    pub fn into_sorted(self) -> Vec<(T, f32)> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|s| (s.item, s.similarity))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_cos(a: &[f32], b: &[f32]) -> f32 {
        let d: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
        d / (na * nb)
    }

    fn pseudo_random(seed: u64, n: usize) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
            })
            .collect()
    }

    #[test]
    fn exact_scans_small_or_sparse_candidate_sets() {
        // the measured cases: 100k rows indexed, top 10, ef_search 100
        assert!(exact_scan_is_cheaper(1_000.0, 10, 100_000.0, 100)); // 1 %
        assert!(!exact_scan_is_cheaper(10_000.0, 10, 100_000.0, 100)); // 10 %
        assert!(!exact_scan_is_cheaper(100_000.0, 10, 100_000.0, 100)); // all

        // a small table: the index as soon as the candidates outnumber what ef_search visits
        assert!(!exact_scan_is_cheaper(5_000.0, 10, 5_000.0, 100));
        assert!(exact_scan_is_cheaper(50.0, 10, 5_000.0, 100));
        // the break-even point grows with the square root of k · rows
        let breaks_at = |want, rows: f64| {
            (1..=rows as usize)
                .find(|&c| !exact_scan_is_cheaper(c as f64, want, rows, 100))
                .unwrap_or(usize::MAX)
        };
        assert_eq!(breaks_at(10, 100_000.0), 2_646);
        assert!(breaks_at(40, 100_000.0) > 2 * breaks_at(10, 100_000.0) - 2);
        // an index missing its statistics (0 rows) counts the candidates themselves
        assert!(!exact_scan_is_cheaper(10_000.0, 10, 0.0, 100));
    }

    #[test]
    fn above_the_bound_the_walk_is_always_cheaper() {
        for want in [1, 4, 10, 40, 200] {
            for indexed in [0.0, 10.0, 1_000.0, 10_000.0, 100_000.0, 1_000_000.0] {
                for ef_search in [100, 120, 600, 1000] {
                    let bound = exact_scan_bound(want, indexed, ef_search);
                    for c in [bound, bound + 1, 2 * bound, 10 * bound] {
                        assert!(
                            !exact_scan_is_cheaper(c as f64, want, indexed, ef_search),
                            "want {want}, indexed {indexed}, ef {ef_search}, {c} candidates"
                        );
                    }
                }
            }
        }
        // and it is the break-even point itself: 10 of 100k rows break at 2,646
        assert_eq!(exact_scan_bound(10, 100_000.0, 100), 2_647);
        assert_eq!(exact_scan_bound(4, 10_000.0, 100), 701);
        assert_eq!(exact_scan_bound(10, 1_000_000.0, 100), 8_368);
    }

    #[test]
    fn every_cpu_computes_the_same_bits() {
        // the dispatched kernels (AVX2 where the CPU has it) against the baseline build
        for n in [1, 7, 8, 9, 383, 384, 1536] {
            let (a, b) = (pseudo_random(n as u64, n), pseudo_random(n as u64 + 7, n));
            assert_eq!(
                dot(&a, &b).to_bits(),
                dot_portable(&a, &b).to_bits(),
                "n={n}"
            );
            let (d, na, nb) = dot_and_norms(&a, &b);
            let (pd, pna, pnb) = dot_and_norms_portable(&a, &b);
            assert_eq!(
                (d.to_bits(), na.to_bits(), nb.to_bits()),
                (pd.to_bits(), pna.to_bits(), pnb.to_bits()),
                "n={n}"
            );
            assert_eq!(
                squared_l2(&a, &b).to_bits(),
                squared_l2_portable(&a, &b).to_bits(),
                "n={n}"
            );
        }
    }

    #[test]
    fn chunked_kernels_match_naive_loops() {
        for n in [1, 7, 8, 9, 384, 1001] {
            let (a, b) = (pseudo_random(n as u64, n), pseudo_random(n as u64 + 99, n));
            assert!(
                (Metric::Cosine.similarity(&a, &b) - naive_cos(&a, &b)).abs() < 1e-4,
                "n={n}"
            );
            let naive_dot: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - naive_dot).abs() < 1e-3, "n={n}");
            let naive_l2: f32 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x - y) * (x - y))
                .sum::<f32>()
                .sqrt();
            assert!(
                (Metric::L2.similarity(&a, &b) - 1.0 / (1.0 + naive_l2)).abs() < 1e-5,
                "n={n}"
            );
        }
        assert_eq!(
            Metric::Cosine.similarity(&[0.0, 0.0], &[1.0, 0.0]),
            0.0,
            "zero vector"
        );
        assert!((Metric::Cosine.similarity(&[1.0, 0.0], &[1.0, 0.0]) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn a_vector_is_exactly_as_similar_to_itself_as_can_be() {
        for seed in 0..200 {
            let v = pseudo_random(seed, 768);
            assert_eq!(Metric::Cosine.similarity(&v, &v), 1.0, "seed {seed}");
            let opposite: Vec<f32> = v.iter().map(|x| -x).collect();
            assert_eq!(
                Metric::Cosine.similarity(&v, &opposite),
                -1.0,
                "seed {seed}"
            );
        }
    }

    #[test]
    fn top_k_matches_a_full_sort() {
        let query = pseudo_random(1, 64);
        let vectors: Vec<Vec<f32>> = (0..500).map(|i| pseudo_random(1000 + i, 64)).collect();
        let mut top = TopK::new(&query, Metric::Cosine, 10);
        for (i, v) in vectors.iter().enumerate() {
            top.push(v, i);
        }
        let got: Vec<usize> = top.into_sorted().into_iter().map(|(i, _)| i).collect();
        let mut all: Vec<(usize, f32)> = vectors
            .iter()
            .enumerate()
            .map(|(i, v)| (i, naive_cos(&query, v)))
            .collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1));
        let expected: Vec<usize> = all[..10].iter().map(|(i, _)| *i).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn top_k_edge_cases() {
        let mut top = TopK::new(&[1.0], Metric::Cosine, 0);
        top.push(&[1.0], 'a');
        assert!(top.into_sorted().is_empty());
        let mut top = TopK::new(&[1.0, 0.0], Metric::Cosine, 5);
        top.push(&[1.0, 0.0], 'a');
        top.push(&[1.0, 0.0], 'b');
        top.push(&[-1.0, 0.0], 'c');
        let got: Vec<char> = top.into_sorted().into_iter().map(|(c, _)| c).collect();
        assert_eq!(got, vec!['a', 'b', 'c'], "ties keep arrival order");
    }

    #[test]
    fn validation() {
        validate(&[0.1, 0.2], "embedding").unwrap();
        for (v, text) in [
            (vec![], "is empty"),
            (vec![0.1, f32::NAN], "non-finite value (NaN) at position 2"),
            (vec![f32::INFINITY], "non-finite value (inf) at position 1"),
            (vec![0.0; MAX_DIMS + 1], "above the limit"),
        ] {
            let e = validate(&v, "embedding").unwrap_err();
            assert_eq!(e.kind.sqlstate(), "22023");
            assert!(e.message.contains(text), "{}", e.message);
        }
        assert_eq!(Metric::parse("COSINE").unwrap(), Metric::Cosine);
        assert!(Metric::parse("hamming").is_err());
    }
}
