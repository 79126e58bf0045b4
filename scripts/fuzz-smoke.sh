#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS seconds each (default 60) and
# fails if any of them finds a crash. Needs cargo-fuzz (`cargo install
# cargo-fuzz`). On a stable toolchain the nightly-only flags cargo-fuzz
# passes to rustc are allowed with RUSTC_BOOTSTRAP=1 (set here unless the
# caller set it). See docs/fuzzing-and-load.md for the long run.
#
#   scripts/fuzz-smoke.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shift || true
export RUSTC_BOOTSTRAP="${RUSTC_BOOTSTRAP:-1}"
# No sanitizer: the code under test is safe Rust, and without ASan the
# build is several times faster; panics and overflows still abort.
sanitizer="${FUZZ_SANITIZER:-none}"
# The smoke run builds unoptimised (--dev: minutes, against an hour for
# cargo-fuzz's default single-codegen-unit release build on 2 cores);
# FUZZ_RELEASE=1 builds optimised, for the long runs. FUZZ_TARGET_DIR keeps
# the build between runs (CI points it at a cache outside the clone).
flags=(-s "$sanitizer")
if [ "${FUZZ_RELEASE:-0}" = "1" ]; then
    flags+=(-O --codegen-units 16)
else
    flags+=(--dev)
fi
if [ -n "${FUZZ_TARGET_DIR:-}" ]; then
    flags+=(--target-dir "$FUZZ_TARGET_DIR")
fi

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: cargo install cargo-fuzz" >&2
    exit 1
fi

targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi

cargo fuzz build "${flags[@]}"

for target in "${targets[@]}"; do
    echo "== fuzzing $target for ${seconds}s"
    # Seeds from the fixtures give the fuzzer real payloads to mutate.
    corpus="fuzz/corpus/$target"
    mkdir -p "$corpus"
    if [ -d "fuzz/seeds/$target" ]; then
        cp -n fuzz/seeds/"$target"/* "$corpus"/ || true
    fi
    if [ "$target" = inbox_activity ]; then
        # Real payloads of every server we have fixtures of.
        while IFS= read -r f; do
            cp "$f" "$corpus/fixture_$(echo "${f#tests/fixtures/}" | tr / _)"
        done < <(find tests/fixtures -name '*.json' -size -64k)
    fi
    cargo fuzz run "${flags[@]}" "$target" "$corpus" -- \
        -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1
done
echo "== fuzz smoke: ${#targets[@]} targets, ${seconds}s each, no crash"
