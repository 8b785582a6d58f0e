#!/usr/bin/env bash
# bench/policy.sh: what the connection and envelope policy (issue 18: DNSBL, greylisting, rate limits) costs: Ferry
# with it against Ferry without it, on loopback, driven by smtp-source. bench/policy.py does the work (its --help
# says what is measured and how, and the goal: no more than 15% of throughput); this wrapper checks the
# prerequisites, runs it, and the report's paragraph goes into bench/results/latest.md (between markers).
#
# usage: bench/policy.sh [policy.py options]       (as root, like bench/run; `make bench` runs it after
#                                                   bench/filters.sh, SKIP_POLICY=1 skips it there)
# Environment (or the matching options): FERRY_BIN (build/ferry), REPS (3), CONCS ("10 50"), MODES ("conn reuse"),
#   COLD_MODES ("conn": where the uncached-DNS target runs too), COLD_DNS (dnslib | lean: its DNS server),
#   MSGS (3000), SIZE (1024), LOG_LEVEL (warn), POLICY_BASE
#   (/var/lib/ferry-policy-bench: the servers' data; removed at the start of each run).
# Ports 2650-2653 (Ferry), the DNS servers on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "policy: run as root (like bench/run)" >&2; exit 1; }
command -v smtp-source >/dev/null || { echo "policy: smtp-source missing (scripts/setup bench)" >&2; exit 1; }
[ -x "${FERRY_BIN:-build/ferry}" ] || { echo "policy: ${FERRY_BIN:-build/ferry} missing: build the ferry target" >&2; exit 1; }
/usr/bin/python3 -c 'import dnslib' 2>/dev/null || { echo "policy: python3-dnslib missing (scripts/setup)" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)"
md=$(/usr/bin/python3 bench/policy.py "$@")
echo "[$(date +%T)] policy: $md (and its note in bench/results/latest.md)" >&2
