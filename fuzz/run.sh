#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 30), one after the
# other, and prints per target: total execs, execs/s, coverage (cov: edges)
# and features (ft:), and the outcome. Exits non-zero if any target found a
# crash, a timeout, a leak or an OOM (or failed to build or run).
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# Needs a nightly toolchain; installs cargo-fuzz if it is missing. New corpus
# entries go to fuzz/corpus-gen/<target>/ (not committed); the committed seeds
# in fuzz/corpus/<target>/ are only read. Crash inputs land in
# fuzz/artifacts/<target>/ (see docs/FUZZING.md for what to do with them).
# Logs: fuzz/target/run-logs/<target>.log; summary: fuzz/target/run-logs/summary.txt.
#
# One libFuzzer process per target (no -jobs/-fork: those move the output
# into per-worker logs and lose the final stats). Environment: FUZZ_TIMEOUT
# (seconds per input before libFuzzer reports a timeout, default 10), FUZZ_RSS_MB
# (-rss_limit_mb, default 2048), FUZZ_MALLOC_MB (-malloc_limit_mb: a single
# allocation above this is reported as an OOM, default 256).
set -euo pipefail

seconds="${1:-30}"
shift || true
case "$seconds" in
'' | *[!0-9]*)
    echo "usage: fuzz/run.sh [SECONDS] [TARGET...]" >&2
    exit 2
    ;;
esac

fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$fuzz_dir"

if ! cargo +nightly --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

logs="$fuzz_dir/target/run-logs"
mkdir -p "$logs"

build_start=$(date +%s)
cargo +nightly fuzz build
build_secs=$(($(date +%s) - build_start))
echo "fuzz build: ${build_secs}s"

# Targets that parse JSON (REQ / EVENT) get the JSON dictionary.
uses_json_dict() {
    case "$1" in
    worker_commands | req_filter_parse) return 0 ;;
    *) return 1 ;;
    esac
}

stat() { # stat NAME LOG: a libFuzzer -print_final_stats value
    sed -n "s/^stat::$1: *//p" "$2" | tail -n 1
}

summary="$logs/summary.txt"
printf '%-24s %8s %14s %10s %7s %7s  %s\n' target seconds execs execs/s cov ft outcome >"$summary"
failed=0
for t in "${targets[@]}"; do
    mkdir -p "corpus-gen/$t" "corpus/$t"
    args=(
        "-max_total_time=$seconds"
        -print_final_stats=1
        "-timeout=${FUZZ_TIMEOUT:-10}"
        "-rss_limit_mb=${FUZZ_RSS_MB:-2048}"
        "-malloc_limit_mb=${FUZZ_MALLOC_MB:-256}"
    )
    if uses_json_dict "$t"; then
        args+=("-dict=$fuzz_dir/dict/json.dict")
    fi
    echo "=== $t: ${seconds}s"
    log="$logs/$t.log"
    start=$(date +%s)
    status=0
    cargo +nightly fuzz run "$t" "corpus-gen/$t" "corpus/$t" -- "${args[@]}" >"$log" 2>&1 || status=$?
    secs=$(($(date +%s) - start))

    execs=$(stat number_of_executed_units "$log")
    rate=$(stat average_exec_per_sec "$log")
    last=$(grep -E '^#[0-9]+.*cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\) .*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\) .*/\1/p' <<<"$last")

    outcome=ok
    if [ "$status" -ne 0 ]; then
        failed=1
        if grep -q 'ERROR: libFuzzer: timeout' "$log"; then
            outcome=TIMEOUT
        elif grep -qE 'ERROR: libFuzzer: (out-of-memory|malloc)' "$log"; then
            outcome=OOM
        elif grep -q 'LeakSanitizer' "$log"; then
            outcome=LEAK
        elif grep -qE 'ERROR: libFuzzer: deadly signal|panicked at' "$log"; then
            outcome=CRASH
        else
            outcome="FAILED(exit $status)"
        fi
        grep -E 'panicked at|^ERROR:|SUMMARY:|Test unit written to' "$log" | head -n 8 | sed 's/^/    /' || true
    fi
    printf '%-24s %8s %14s %10s %7s %7s  %s\n' "$t" "$secs" "${execs:--}" "${rate:--}" \
        "${cov:--}" "${ft:--}" "$outcome" | tee -a "$summary"
done

echo
echo "fuzz build: ${build_secs}s; per-target logs in $logs"
cat "$summary"
exit "$failed"
