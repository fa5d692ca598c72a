#!/usr/bin/env bash
# Fuzzes the Salesforce and ERP parsers and the topology loader with cargo fuzz (libFuzzer).
#   scripts/fuzz.sh [SECONDS_PER_TARGET]      (default 60)
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). No sanitizer: librdkafka's
# configure cannot link with ASan, and the fuzzed code is safe Rust (a panic is the finding).
# Seeds come from samples/ and topology.toml. A crash leaves its input in fuzz/artifacts/<target>/: add it to
# tests/fuzz_regressions.rs and fix the code.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is not installed: cargo install cargo-fuzz" >&2; exit 1; }
mkdir -p fuzz/corpus/salesforce_event fuzz/corpus/erp_event fuzz/corpus/topology
cp samples/salesforce/*.json fuzz/corpus/salesforce_event/
cp samples/erp/*/*.json fuzz/corpus/erp_event/
cp topology.toml tests/contracts/*.toml fuzz/corpus/topology/ 2>/dev/null || true
for target in salesforce_event erp_event topology; do
  echo "== $target (${secs}s)"
  (cd fuzz && cargo +nightly fuzz run --sanitizer none "$target" "corpus/$target" -- -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536) \
    2>&1 | tail -n 4
done
