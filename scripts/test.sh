#!/usr/bin/env bash
# Runs every check and every test of the workspace: formatting, lints, unit, store (SQLite and
# PostgreSQL), end-to-end. PostgreSQL is expected at 127.0.0.1:5432 (user postgres, trust), or at
# DROPWATCH_TEST_PG_URL; without it the PostgreSQL half of the store suite is skipped with a
# message, except under CI=true, where it fails.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

echo "== fuzz targets compile"
cargo check --quiet --manifest-path fuzz/Cargo.toml --bins

echo "== cargo test"
cargo test --workspace
