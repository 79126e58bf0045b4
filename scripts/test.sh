#!/usr/bin/env bash
# Runs the whole test suite: every database test on SQLite, and on
# PostgreSQL when a server answers at TOCSIN_TEST_POSTGRES_URL
# (default postgres://postgres@127.0.0.1:5432/test). Without PostgreSQL the
# suite still runs on SQLite and says that the PostgreSQL tests were skipped,
# unless TOCSIN_REQUIRE_POSTGRES=1 (CI), which makes a missing server fail.
set -euo pipefail
cd "$(dirname "$0")/.."

export TOCSIN_TEST_POSTGRES_URL="${TOCSIN_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
hostport="${TOCSIN_TEST_POSTGRES_URL#*://}"; hostport="${hostport#*@}"; hostport="${hostport%%/*}"
pg_host="${hostport%%:*}"; pg_port="${hostport##*:}"; [ "$pg_port" = "$hostport" ] && pg_port=5432

if (exec 3<>"/dev/tcp/$pg_host/$pg_port") 2>/dev/null; then
    pg_state="PostgreSQL tests ran against $TOCSIN_TEST_POSTGRES_URL"
    export TOCSIN_REQUIRE_POSTGRES="${TOCSIN_REQUIRE_POSTGRES:-1}"
else
    if [ "${TOCSIN_REQUIRE_POSTGRES:-0}" = "1" ]; then
        echo "PostgreSQL is required but nothing answers at $pg_host:$pg_port" >&2
        exit 1
    fi
    pg_state="PostgreSQL tests were SKIPPED: nothing answers at $pg_host:$pg_port (SQLite only)"
    export TOCSIN_REQUIRE_POSTGRES=0
fi
echo "== $pg_state"

cargo test --locked --all-targets "$@"

# The opt-in jemalloc build (Cargo feature `jemalloc`, docs/self-hosting.md)
# still compiles; skipped with a chosen subset of the tests.
if [ "$#" -eq 0 ]; then
    cargo check --locked --bins --features jemalloc
fi

# The fuzz smoke run (docs/fuzzing-and-load.md): every cargo-fuzz target
# for TOCSIN_FUZZ_SECONDS (default 60) when cargo-fuzz is installed;
# TOCSIN_REQUIRE_FUZZ=1 (CI) makes a missing cargo-fuzz fail. Skipped when
# the command was given arguments (a chosen subset of the tests).
if [ "$#" -gt 0 ]; then
    fuzz_state="fuzz smoke run SKIPPED: the tests were filtered"
elif command -v cargo-fuzz >/dev/null 2>&1; then
    scripts/fuzz-smoke.sh "${TOCSIN_FUZZ_SECONDS:-60}"
    fuzz_state="fuzz smoke run: every target ${TOCSIN_FUZZ_SECONDS:-60}s, no crash"
elif [ "${TOCSIN_REQUIRE_FUZZ:-0}" = "1" ]; then
    echo "the fuzz smoke run is required but cargo-fuzz is not installed (cargo install cargo-fuzz)" >&2
    exit 1
else
    fuzz_state="fuzz smoke run SKIPPED: cargo-fuzz is not installed (cargo install cargo-fuzz)"
fi

echo "== $pg_state"
echo "== $fuzz_state"
