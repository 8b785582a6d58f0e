#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD_DIR for SECONDS each, on a scratch copy of its seed corpus (the committed
# corpus under tests/fuzz/corpus/ never grows). Crashing inputs land in BUILD_DIR/fuzz/artifacts/<target>/.
# A target's dictionary is dict/<name without fuzz_>.dict, or the one named below. Exits non-zero when any target
# fails. Used by `make fuzz`; targets may be named to run only those.
#   tests/fuzz/run_fuzzers.sh BUILD_DIR SECONDS [target...]
set -uo pipefail

build_dir=${1:?usage: run_fuzzers.sh BUILD_DIR SECONDS [target...]}
seconds=${2:?usage: run_fuzzers.sh BUILD_DIR SECONDS [target...]}
shift 2
here=$(cd "$(dirname "$0")" && pwd)
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then   # every tests/fuzz/fuzz_*.cpp is a target
  for source in "$here"/fuzz_*.cpp; do targets+=("$(basename "$source" .cpp)"); done
fi

declare -A dict=([fuzz_command]=smtp [fuzz_session]=smtp [fuzz_address]=address
                 [fuzz_content_decoder]=content_decoder [fuzz_config]=config [fuzz_envelope]=envelope [fuzz_header]=header
                 [fuzz_sasl]=sasl [fuzz_dsn]=dsn)

work="$build_dir/fuzz"
mkdir -p "$work"
summary=()
failed=0
for t in "${targets[@]}"; do
  bin="$build_dir/tests/fuzz/$t"
  if [ ! -x "$bin" ]; then
    echo "run_fuzzers: $bin is missing (build the fuzz_targets target first)" >&2
    exit 2
  fi
  if ! compgen -G "$here/corpus/$t/*" > /dev/null; then
    echo "run_fuzzers: tests/fuzz/corpus/$t/ has no seed inputs (every target needs a committed corpus)" >&2
    exit 2
  fi
  corpus="$work/corpus/$t"
  artifacts="$work/artifacts/$t/"
  log="$work/$t.log"
  rm -rf "$corpus" "$artifacts"
  mkdir -p "$corpus" "$artifacts"
  cp "$here/corpus/$t/"* "$corpus/"
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$artifacts")
  d=${dict[$t]:-${t#fuzz_}}
  [ -f "$here/dict/$d.dict" ] && args+=(-dict="$here/dict/$d.dict")
  echo "== $t: ${seconds}s (log: $log)"
  "$bin" "${args[@]}" "$corpus" >"$log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -aoE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
  if [ $rc -eq 0 ]; then
    line=$(printf '%-22s ok     %10s runs %8s exec/s  %s, corpus %s files' "$t" "${runs:-?}" "${rate:-?}" \
           "${cov:-?}" "$(ls "$corpus" | wc -l)")
  else
    failed=1
    line=$(printf '%-22s FAILED (exit %d) after %s runs; input in %s' "$t" "$rc" "${runs:-?}" "$artifacts")
    grep -aE 'ERROR: |invariant failed|runtime error|==ERROR|SUMMARY' "$log" | head -5 >&2
  fi
  echo "$line"
  summary+=("$line")
done
echo
echo "fuzz summary (${seconds}s per target):"
printf '  %s\n' "${summary[@]}"
exit $failed
