#!/usr/bin/env bash
# Every test Mailstead has: unit tests, the directory suite on SQLite, PostgreSQL and MariaDB,
# the seed's Postfix/Dovecot queries on MariaDB, and the CLI end to end with real peers
# (Debian's doveadm for password vectors, MariaDB for MUM imports). Backend tests fail, never
# skip, when their database cannot be reached.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/test-services.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked 2>&1 | tee "$log"
# One closing line for the whole run (cargo's last line is the doc-tests' own count).
awk '/^test result:/ { passed += $4; failed += $6; ignored += $8 }
     END { printf "tests: %d passed, %d failed, %d skipped\n", passed, failed, ignored }' "$log"
