#!/usr/bin/env bash
# Benchmark (not part of the tests): builds the job in release mode and runs bench/run.py.
# Usage: bench/run.sh [--gib 1.0] [--seed 1] [--keep]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
cargo build --release -p unstoppable-job --no-default-features
job="${CARGO_TARGET_DIR:-target}/release/unstoppable-job"
exec python3 bench/run.py --job "$job" "$@"
