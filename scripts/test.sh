#!/usr/bin/env bash
# The whole test suite, as `make test` and CI run it: format, lints, unit tests, and the
# integration tests against a real Kafka broker and schema registry (started if not running).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

echo "== cargo fmt --all --check"
cargo fmt --all --check
echo "== cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
echo "== build"
cargo build --all-targets
echo "== offline checks"
./target/debug/syncline validate
./target/debug/syncline schemas check
./target/debug/syncline test tests/contracts
echo "== tests (unit + integration against the real stack)"
SYNCLINE_FRESH_STACK=1 scripts/with-stack.sh cargo test --no-fail-fast
