"""ctxstore's side of the fixture swap: the backends the peers' test files run against.

Every backend is built on CTXSTORE_TEST_DSN as a tenant of its own (a fresh database per test
in the peers' fixtures; a fresh tenant here, isolated by row-level security).
"""
