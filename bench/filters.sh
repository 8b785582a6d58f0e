#!/usr/bin/env bash
# bench/filters.sh: Ferry + rspamd (HTTP) against Postfix + rspamd (milter) in one run, on loopback (issue 17,
# "Speed"), with Ferry and Postfix without a filter as references. bench/filters.py does the work (its --help
# says what is measured and how); this wrapper checks the prerequisites, runs it, and points
# bench/results/latest.md at the new report (a marked paragraph, the rest of latest.md untouched).
#
# usage: bench/filters.sh [filters.py options]      (as root, like bench/run; `make bench` runs it last,
#                                                    SKIP_FILTERS=1 skips it there)
# Environment (or the matching options): FERRY_BIN (build/ferry), PEERS_DIR (../shared/peers), REPS (3),
#   SIZES ("1024 102400"), CONCS ("10 50"), MODE (reuse | conn), MSGS (1000), MSGS_LARGE (300),
#   LAT_MSGS (500), LAT_MSGS_LARGE (300), TARGETS ("ferry-rspamd postfix-milter ferry-plain postfix-plain"),
#   FILTERS_BASE (/var/lib/ferry-filters-bench: the servers' data; removed at the start of each run).
# Ports 2640/2641 (Ferry), 2645/2646 (Postfix), rspamd on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "filters: run as root (like bench/run)" >&2; exit 1; }
command -v rspamd >/dev/null || { echo "filters: rspamd missing (scripts/setup installs it)" >&2; exit 1; }
command -v smtp-source >/dev/null || { echo "filters: smtp-source missing (scripts/setup bench)" >&2; exit 1; }
[ -x "${FERRY_BIN:-build/ferry}" ] || { echo "filters: ${FERRY_BIN:-build/ferry} missing: build the ferry target" >&2; exit 1; }
id smtpbench >/dev/null 2>&1 || { echo "filters: Postfix's peer set-up is missing: run ../shared/peers/install-peers.sh (bench/run does)" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)"
md=$(/usr/bin/python3 bench/filters.py "$@")
/usr/bin/python3 bench/filters_note.py "$md" bench/results/latest.md
echo "[$(date +%T)] filters: $md (and its note in bench/results/latest.md)" >&2
