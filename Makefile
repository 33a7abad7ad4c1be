# ctxstore — the two README commands, and helpers.
.PHONY: demo demo-stop test setup lint bench bench-quick bench-kernels bench-sql package

demo:        ## build, install into PG 18, start a cluster and run the quickstart
	scripts/demo.sh

demo-stop:
	scripts/cluster.sh stop pg18 tmp/demo18

test:        ## every test tier on PG 15 and PG 18
	scripts/test.sh

setup:       ## prerequisites only (idempotent)
	scripts/setup.sh

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

bench:       ## ctxstore against the peers (langchain-postgres, LangGraph, raw pgvector) + criterion kernels: writes benches/BENCHMARKS.md and charts
	scripts/bench.sh

bench-quick: ## the same at smoke sizes (CI): writes tmp/bench-quick/BENCHMARKS.md
	scripts/bench.sh --quick

bench-kernels: ## criterion benchmarks of the pure kernels only
	cargo bench --bench kernels

package:     ## release artifacts in target/dist: a tarball per server, a .deb for Debian's PG 15, PGXN zip + META.json
	scripts/setup.sh
	scripts/package.sh

bench-sql:   ## SQL macro benchmarks against plain-SQL baselines on a throwaway PG 18 cluster
	scripts/setup.sh
	benches/macro.sh
