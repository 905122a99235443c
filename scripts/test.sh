#!/usr/bin/env bash
# Every test Mailstead has: unit tests, the directory suite on SQLite, PostgreSQL and MariaDB,
# and the end-to-end tests with real peers. Backend tests fail, never skip, when their
# database cannot be reached.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/test-services.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
