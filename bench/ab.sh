#!/usr/bin/env bash
# bench/ab.sh: A/B throughput of two Ferry binaries (e.g. before and after a change) in one run, interleaved,
# so that a shared, noisy machine slows both alike. Far shorter than `make bench` (bench/run) and compares
# Ferry with Ferry only (no Postfix/OpenSMTPD).
#
# usage: bench/ab.sh OLD_FERRY NEW_FERRY [OUT.md]        (as root, like bench/run)
#
# Each binary runs as its own `ferry serve` with bench/run's config (Maildir user u@example.test, default
# durability, [mailauth] verify = false, user = "ferry") on its own loopback port, started fresh on an empty
# data dir for every cell. Per cell and repetition both are driven by Postfix's smtp-source exactly as
# ../shared/peers/bench-peers.sh does (conn = one message per connection; reuse = smtp-source -d, all of a
# session's messages on one connection), one after the other, the order alternating; end to end = from the
# start of smtp-source until every message is in the Maildir's new/ and the spool queue is empty.
# Server CPU per message = utime+stime (+ reaped children) of the server from /proc/PID/stat over the same span.
#
# Environment: REPS (3), MSGS (1000, for 1 KiB), MSGS_LARGE (300, for 100 KiB), SIZES ("1024 102400"),
#   CONCS ("10 50"), MODES ("conn reuse"), PORT_OLD (2610), PORT_NEW (2611), BASE (/var/lib/ferry-ab),
#   WARMUP (100 messages per server and cell, not counted), MAX_RUN (120 s per smtp-source),
#   DRAIN_TIMEOUT (120 s), OLD_DESC / NEW_DESC (what each binary was built from, for the table; default: the
#   HEAD of the git checkout two directories above the binary, which is right only if built at that HEAD),
#   REPORT_ONLY=1 (run nothing: write the table again from the runs kept in $BASE).
# Every server it starts is stopped by PID on exit.
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,21p' "$0" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "ab: run as root (ferry serve drops to user ferry, like bench/run)" >&2; exit 1; }
command -v smtp-source >/dev/null || { echo "ab: smtp-source missing (scripts/setup installs postfix)" >&2; exit 1; }
BIN_OLD=$(realpath "$1"); BIN_NEW=$(realpath "$2")
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT_MD=${3:-$(cd "$(dirname "$0")" && pwd)/results/ab-$STAMP.md}
REPS=${REPS:-3}
MSGS=${MSGS:-1000}
MSGS_LARGE=${MSGS_LARGE:-300}
SIZES=${SIZES:-1024 102400}
CONCS=${CONCS:-10 50}
MODES=${MODES:-conn reuse}
PORT_OLD=${PORT_OLD:-2610}
PORT_NEW=${PORT_NEW:-2611}
BASE=${BASE:-/var/lib/ferry-ab}
WARMUP=${WARMUP:-100}
MAX_RUN=${MAX_RUN:-120}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-120}
HZ=$(getconf CLK_TCK)
log() { echo "[$(date +%T)] ab: $*" >&2; }

# bench/run raises the limit for its 10,000 idle sessions; the limits below (2000) fit the usual hard limit
# (current Ferry refuses connection limits that cannot fit RLIMIT_NOFILE).
ulimit -n "$(ulimit -Hn)"

RES=$BASE/results.tsv
LOADS=$BASE/loadavg.txt
if [ -z "${REPORT_ONLY:-}" ]; then
for p in "$PORT_OLD" "$PORT_NEW"; do
  if ss -ltnH "sport = :$p" | grep -q .; then echo "ab: port $p busy" >&2; exit 1; fi
done
rm -rf "$BASE"; mkdir -p "$BASE"
printf 'label\tmode\tsize\tconc\tmsgs\trep\tstatus\taccept_s\te2e_s\tdelivered\tsrv_ticks\n' > "$RES"
: > "$LOADS"
fi

declare -A PID=() PORT=([old]=$PORT_OLD [new]=$PORT_NEW) BIN=([old]=$BIN_OLD [new]=$BIN_NEW)

stop_server() { # label
  local pid=${PID[$1]:-} i
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { log "$1 (pid $pid) ignored TERM, KILL"; kill -KILL "$pid" 2>/dev/null || true; }
  fi
  wait "$pid" 2>/dev/null || true
  PID[$1]=
}
trap 'stop_server old; stop_server new' EXIT
trap 'exit 130' INT TERM

wait_banner() { # port
  local i
  for i in $(seq 100); do
    if timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1; head -c 3 <&3" 2>/dev/null | grep -q 220; then return 0; fi
    sleep 0.1
  done
  return 1
}

start_server() { # label: a fresh data dir, bench/run's config
  local l=$1 d=$BASE/$1
  rm -rf "$d"; mkdir -p "$d"
  cat > "$d/ferry.toml" <<TOML
hostname = "bench.example.test"
data_dir = "$d/data"
user = "ferry"
log_level = "warn"
[[listen]]
address = "127.0.0.1:${PORT[$l]}"
[domains]
local = ["example.test", "discard.example.test"]
[limits]
connections = 2000
connections_per_ip = 2000
[mailauth]
verify = false
TOML
  echo bench | "${BIN[$l]}" user add u@example.test --config "$d/ferry.toml" > /dev/null
  "${BIN[$l]}" serve --config "$d/ferry.toml" 2>> "$BASE/$l.log" &
  PID[$l]=$!
  wait_banner "${PORT[$l]}" || { tail -20 "$BASE/$l.log" >&2; echo "ab: $l did not come up" >&2; exit 1; }
}

ticks() { # utime+stime+cutime+cstime of PID (all its threads)
  local line rest
  read -r line < "/proc/$1/stat"; rest=${line##*) }
  # shellcheck disable=SC2086
  set -- $rest
  echo $(( ${12} + ${13} + ${14} + ${15} ))
}

# drain MAILDIR QUEUE NEED TIMEOUT -> "delivered ok|timeout epoch": waits until MAILDIR/new holds NEED files
# and QUEUE no regular file. Polls every 5 ms: new/ is emptied after every run, so a poll is a few syscalls.
# With GATE=1 it first waits for a line on fd 3: started before smtp-source, Python's start-up is not timed.
drain() {
  /usr/bin/python3 - "$@" <<'PY'
import os, sys, time
new, queue, need, tmo = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
if os.environ.get('GATE') == '1':
    os.fdopen(3).readline()   # fd 0 is this script (here-document)
def nfiles(d):
    n = 0
    try:
        with os.scandir(d) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False): n += nfiles(e.path)
                elif e.is_file(follow_symlinks=False): n += 1
    except FileNotFoundError:
        pass
    return n
end = time.monotonic() + tmo
while True:
    got = nfiles(new)
    if got >= need and nfiles(queue) == 0:
        print(got, 'ok', '%.6f' % time.time()); break
    if time.monotonic() > end:
        print(got, 'timeout', '%.6f' % time.time()); break
    time.sleep(0.005)
PY
}

run_one() { # label mode size conc n rep
  local l=$1 mode=$2 size=$3 conc=$4 n=$5 rep=$6 dflag= rc status=ok
  local new=$BASE/$l/data/mail/example.test/u/new queue=$BASE/$l/data/spool/queue
  [ "$mode" = reuse ] && dflag=-d
  local k0 k1 t0 t1 t2 delivered q
  coproc DRAIN { GATE=1 drain "$new" "$queue" "$n" "$DRAIN_TIMEOUT" 3<&0; }
  sleep 0.2   # let the poller start before the clock does
  k0=$(ticks "${PID[$l]}")
  t0=$(date +%s.%N)
  set +e
  timeout -s TERM "$MAX_RUN" smtp-source -4 -c $dflag -l "$size" -m "$n" -s "$conc" -M bench.example.test \
    -f a@example.test -t u@example.test "127.0.0.1:${PORT[$l]}" > "$BASE/.client_out" 2> "$BASE/.client_err"
  rc=$?
  set -e
  t1=$(date +%s.%N)
  [ "$rc" = 0 ] || { status=fail$rc; log "$l: smtp-source exit $rc: $(tail -c 300 "$BASE/.client_err")"; }
  echo go >&"${DRAIN[1]}"
  read -r delivered q t2 <&"${DRAIN[0]}"
  wait "$DRAIN_PID" 2>/dev/null || true
  k1=$(ticks "${PID[$l]}")
  [ "$q" = ok ] || status="$status,drain-timeout"
  [ "$delivered" = "$n" ] || status="$status,delivered=$delivered"
  awk -v l="$l" -v m="$mode" -v s="$size" -v c="$conc" -v n="$n" -v r="$rep" -v st="$status" \
      -v t0="$t0" -v t1="$t1" -v t2="$t2" -v d="$delivered" -v k=$(( k1 - k0 )) 'BEGIN {
        printf "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%.4f\t%.4f\t%s\t%d\n", l, m, s, c, n, r, st, t1 - t0, t2 - t0, d, k }' >> "$RES"
  tail -n1 "$RES" >&2
  find "$new" -type f -delete   # the server never touches a message once it is in new/
}

wait_idle() { # label: warm-up messages delivered, spool empty
  drain "$BASE/$1/data/mail/example.test/u/new" "$BASE/$1/data/spool/queue" 0 "$DRAIN_TIMEOUT" > /dev/null
}

if [ -z "${REPORT_ONLY:-}" ]; then
log "OLD=$BIN_OLD on :$PORT_OLD, NEW=$BIN_NEW on :$PORT_NEW, reps=$REPS, results in $RES"
START=$(date -u +%FT%TZ)
cell=0
for mode in $MODES; do
  for size in $SIZES; do
    n=$MSGS; [ "$size" -gt 10240 ] && n=$MSGS_LARGE
    for conc in $CONCS; do
      # every cell starts both servers on empty data dirs (no Maildir or spool left over from the last cell)
      for l in old new; do
        stop_server "$l"; start_server "$l"
        smtp-source -4 -l 1024 -m "$WARMUP" -s 5 -M bench.example.test -f a@example.test -t u@example.test \
          "127.0.0.1:${PORT[$l]}" > /dev/null 2>&1 || log "warm-up of $l failed"
      done
      for l in old new; do wait_idle "$l"; find "$BASE/$l/data/mail/example.test/u/new" -type f -delete; done
      for rep in $(seq "$REPS"); do
        # alternate who goes first, so that neither always runs right after the other's fsync burst
        if (( (cell + rep) % 2 )); then order="old new"; else order="new old"; fi
        for l in $order; do
          # load average, and how many compilers (other work on this shared machine) were running
          echo "$(date +%T) $mode $size $conc $rep $l $(cut -d' ' -f1-3 /proc/loadavg) $(pgrep -c -x cc1plus || true)" >> "$LOADS"
          run_one "$l" "$mode" "$size" "$conc" "$n" "$rep"
          sleep 1
        done
      done
      cell=$(( cell + 1 ))
    done
  done
done
END=$(date -u +%FT%TZ)
stop_server old; stop_server new
echo "$START $END $REPS" > "$BASE/meta"
fi
read -r START END REPS < "$BASE/meta"

mkdir -p "$(dirname "$OUT_MD")"
/usr/bin/python3 - "$RES" "$LOADS" "$HZ" "$BIN_OLD" "$BIN_NEW" "$START" "$END" "$REPS" > "$OUT_MD" <<'PY'
import csv, os, statistics as st, subprocess, sys
res, loads, hz, bold, bnew, start, end, reps = sys.argv[1:9]
hz = float(hz)
rows = list(csv.DictReader(open(res), delimiter='\t'))
def ident(b, desc):
    if desc:
        return desc
    d = os.path.dirname(os.path.dirname(b))
    try:
        return subprocess.run(['git', '-C', d, 'log', '-1', '--format=%h %s'], capture_output=True, text=True,
                              check=True).stdout.strip()[:90]
    except Exception:
        return '?'
cells = {}
for r in rows:
    cells.setdefault((r['mode'], int(r['size']), int(r['conc']), int(r['msgs'])), {}).setdefault(r['label'], []).append(r)
la = [float(l.split()[6]) for l in open(loads) if l.strip()]
cc = [int(l.split()[9]) for l in open(loads) if len(l.split()) > 9]
print('# Ferry A/B throughput (bench/ab.sh), %s to %s' % (start, end))
print()
print('- OLD: `%s` (%s)' % (bold, ident(bold, os.environ.get('OLD_DESC'))))
print('- NEW: `%s` (%s)' % (bnew, ident(bnew, os.environ.get('NEW_DESC'))))
print('- Machine: %d cores, kernel %s. 1-minute load average at the start of each run: min %.2f, median %.2f, '
      'max %.2f (%d samples); compilers (cc1plus) running at those moments: min %d, median %d, max %d.'
      % (os.cpu_count(), os.uname().release, min(la), st.median(la), max(la), len(la), min(cc), st.median(cc), max(cc)))
print('- %s repetitions per cell, OLD and NEW interleaved (order alternating); both servers fresh on empty data '
      'dirs per cell after a 1 KiB warm-up; config as bench/run (Maildir, default durability, '
      '`[mailauth] verify = false`) but `[limits] connections = 2000`.' % reps)
print()
print('msg/s = messages / seconds from the start of smtp-source until all are in Maildir new/ and the spool '
      'queue is empty (end to end); median (min-max) over the repetitions. NEW/OLD > 1 = NEW faster. '
      'cpu = server user+sys ms per message over the same span (median). "overlap" = the min-max ranges overlap.')
print()
print('paired = per repetition, OLD time / NEW time of its two back-to-back runs (they share the machine\'s '
      'state of that moment): median (min-max) over the repetitions; less noisy than the ratio of medians.')
print()
print('| mode | size | -s | msgs | OLD msg/s | NEW msg/s | NEW/OLD | paired NEW/OLD | OLD cpu ms/msg | NEW cpu ms/msg | NEW/OLD cpu | ranges |')
print('|---|---|---|---|---|---|---|---|---|---|---|---|')
bad = []
pairs_all = []
for (mode, size, conc, n), by in cells.items():
    def stats(rs):
        mps = [n / float(r['e2e_s']) for r in rs]
        cpu = [1000 * int(r['srv_ticks']) / hz / n for r in rs]
        return st.median(mps), min(mps), max(mps), st.median(cpu)
    o, w = stats(by.get('old', [])), stats(by.get('new', []))
    for r in by['old'] + by['new']:
        if r['status'] != 'ok': bad.append('%s %s %d -s %d rep %s: %s' % (r['label'], mode, size, conc, r['rep'], r['status']))
    byrep = {}
    for r in by['old'] + by['new']:
        byrep.setdefault(r['rep'], {})[r['label']] = float(r['e2e_s'])
    pairs = [v['old'] / v['new'] for v in byrep.values() if len(v) == 2]
    pairs_all += pairs
    ranges = 'overlap' if w[2] >= o[1] and o[2] >= w[1] else ('NEW slower' if w[2] < o[1] else 'NEW faster')
    print('| %s | %s | %d | %d | %.0f (%.0f-%.0f) | %.0f (%.0f-%.0f) | %.2f | %.2f (%.2f-%.2f) | %.2f | %.2f | %.2f | %s |' % (
        mode, '1 KiB' if size == 1024 else '%d KiB' % (size // 1024), conc, n, o[0], o[1], o[2], w[0], w[1], w[2],
        w[0] / o[0], st.median(pairs), min(pairs), max(pairs), o[3], w[3], w[3] / o[3] if o[3] else float('nan'), ranges))
print()
print('All %d pairs of all cells: NEW/OLD geometric mean %.3f, median %.3f.' % (
    len(pairs_all), st.geometric_mean(pairs_all), st.median(pairs_all)))
print()
print('Runs not ok: ' + ('; '.join(bad) if bad else 'none (every message delivered, spool empty, smtp-source exit 0).'))
print()
print('Raw per-run results:')
print()
print('```')
print(open(res).read().rstrip())
print('```')
PY
log "table: $OUT_MD"
cat "$OUT_MD"
