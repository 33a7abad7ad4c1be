"""Maximal marginal relevance: picks results that are close to the query and far from each
other. Pure Python over the few dozen candidates a search fetches (no numpy needed)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def _cosine(a: Sequence[float], b: Sequence[float], norm_a: float, norm_b: float) -> float:
    if norm_a == 0.0 or norm_b == 0.0:
        return 0.0
    return sum(x * y for x, y in zip(a, b)) / (norm_a * norm_b)


def maximal_marginal_relevance(
    query: Sequence[float],
    candidates: Sequence[Sequence[float]],
    k: int,
    lambda_mult: float = 0.5,
) -> list[int]:
    """Indexes of up to ``k`` candidates, in the order chosen: first the one most similar to
    the query, then each time the one maximising ``lambda_mult * sim(query) - (1 - lambda_mult)
    * max sim(chosen)`` (cosine similarities; ties go to the earlier candidate)."""
    if k <= 0 or not candidates:
        return []
    if not 0.0 <= lambda_mult <= 1.0:
        raise ValueError(f"lambda_mult must be between 0 and 1, not {lambda_mult}")
    norms = [math.sqrt(sum(x * x for x in c)) for c in candidates]
    query_norm = math.sqrt(sum(x * x for x in query))
    to_query = [_cosine(query, c, query_norm, n) for c, n in zip(candidates, norms)]
    chosen = [max(range(len(candidates)), key=lambda i: (to_query[i], -i))]
    # the highest similarity of each candidate to any chosen one, updated as choices are made
    closest = [_cosine(candidates[chosen[0]], c, norms[chosen[0]], n) for c, n in zip(candidates, norms)]
    while len(chosen) < min(k, len(candidates)):
        best, best_score = -1, -math.inf
        for i in range(len(candidates)):
            if i in chosen:
                continue
            score = lambda_mult * to_query[i] - (1 - lambda_mult) * closest[i]
            if score > best_score:
                best, best_score = i, score
        chosen.append(best)
        for i, (c, n) in enumerate(zip(candidates, norms)):
            closest[i] = max(closest[i], _cosine(candidates[best], c, norms[best], n))
    return chosen
