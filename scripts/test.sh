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

echo "== $pg_state"
