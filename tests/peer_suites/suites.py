"""The peers' official test files run against ctxstore: which files, which definitions are
swapped (the fixtures that build the backend, and helpers that reach into its storage), and
which tests are excluded, each with its reason. Versions are pinned in
clients/python/requirements-peers.txt; the files come from the peers' source distributions."""

LANGGRAPH = "langgraph_checkpoint_postgres-3.2.0"
LANGCHAIN = "langchain_postgres-0.0.19"

# sdist directory -> {file: (backends module, [definitions swapped])}
SWAPS = {
    LANGGRAPH: {
        "tests/conftest.py": ("lg_conftest", ["conn", "clear_test_db"]),
        "tests/test_sync.py": ("lg_sync", ["_pool_saver", "_pipe_saver", "_base_saver", "_shallow_saver"]),
        "tests/test_async.py": ("lg_async", ["_pool_saver", "_pipe_saver", "_base_saver", "_shallow_saver"]),
        "tests/test_store.py": (
            "lg_store",
            ["store", "_create_vector_store", "_expire_now", "_row_exists", "_stored_expires_at"],
        ),
        "tests/test_async_store.py": (
            "lg_async_store",
            ["store", "_create_pool_store", "_create_vector_store",
             "_aexpire_now", "_arow_exists", "_astored_expires_at"],
        ),
    },
    LANGCHAIN: {
        "tests/utils.py": ("lc_utils", ["asyncpg_client", "syncpg_client"]),
        "tests/unit_tests/v1/test_chat_histories.py": ("lc_chat", ["import:PostgresChatMessageHistory"]),
        "tests/unit_tests/v2/test_pg_vectorstore_search.py": (
            "lc_search",
            ["TestVectorStoreSearch.engine", "TestVectorStoreSearch.vs",
             "TestVectorStoreSearch.engine_sync", "TestVectorStoreSearch.vs_custom",
             "TestVectorStoreSearch.vs_custom_filter", "TestVectorStoreSearch.vs_metadata_json",
             "TestVectorStoreSearchSync.engine_sync", "TestVectorStoreSearchSync.vs_custom",
             "TestVectorStoreSearchSync.vs_custom_filter_sync",
             "TestVectorStoreSearchSync.vs_metadata_json_sync"],
        ),
        "tests/unit_tests/v2/test_async_pg_vectorstore_search.py": (
            "lc_async_search",
            ["TestVectorStoreSearch.engine", "TestVectorStoreSearch.vs", "TestVectorStoreSearch.vs_custom",
             "TestVectorStoreSearch.vs_hybrid_search_with_tsv_column",
             "TestVectorStoreSearch.vs_custom_filter", "TestVectorStoreSearch.vs_metadata_json"],
        ),
    },
}

# sdist directory -> the test files that run (paths inside the sdist)
FILES = {
    LANGGRAPH: ["tests/test_sync.py", "tests/test_async.py", "tests/test_store.py", "tests/test_async_store.py"],
    LANGCHAIN: [
        "tests/unit_tests/v1/test_chat_histories.py",
        "tests/unit_tests/v2/test_pg_vectorstore_search.py",
        "tests/unit_tests/v2/test_async_pg_vectorstore_search.py",
    ],
}

_PEER_TABLE = "reaches into the peer's own table inside the test (store._cursor() and UPDATE store)"
_PEER_STORE = "builds the peer's own vector store inline (PGVectorStore.create on a PGEngine)"
_PEER_CODE = "tests only the peer's own code (its migrations or private helpers): it cannot fail on ctxstore"

# test node id (without parameters) -> why it does not run on ctxstore; each is also listed,
# with its reason, in clients/python/README.md
EXCLUDED: dict[str, str] = {
    "tests/test_sync.py::test_nonnull_migrations": _PEER_CODE,
    "tests/test_store.py::test_nonnull_migrations": _PEER_CODE,
    "tests/test_store.py::test_escape_like_literal": _PEER_CODE,
    "tests/test_store.py::test_namespace_match_pattern": _PEER_CODE,
    "tests/test_store.py::test_omit_expired_search_pagination": _PEER_TABLE,
    "tests/test_async_store.py::test_omit_expired_search_pagination": _PEER_TABLE,
    "tests/test_async_store.py::test_abatch_uses_single_pool_checkout":
        "counts checkouts by monkeypatching the peer's private connection helper (_ainternal.get_connection)",
    "tests/unit_tests/v2/test_pg_vectorstore_search.py::TestVectorStoreSearch::test_similarity_search_with_relevance_scores_threshold_euclidean": _PEER_STORE,
    "tests/unit_tests/v2/test_async_pg_vectorstore_search.py::TestVectorStoreSearch::test_similarity_search_with_relevance_scores_threshold_euclidean": _PEER_STORE,
    "tests/unit_tests/v2/test_async_pg_vectorstore_search.py::TestVectorStoreSearch::test_hybrid_search_without_tsv_column": _PEER_STORE,
    "tests/unit_tests/v2/test_async_pg_vectorstore_search.py::TestVectorStoreSearch::test_get_by_ids":
        "matches the peer's own error text for a sync call on its async-only class",
}
