#!/usr/bin/env bash
# IMAP under load, side by side on this machine in one run: imap-bench (bench/src/imap) runs N
# clients, each repeating one session (LOGIN, SELECT, FETCH flags/envelopes/bodies, UID STORE,
# UID SEARCH, APPEND, STORE \Deleted + EXPUNGE, LOGOUT) for DURATION seconds, against
#   (a) Debian's Dovecot (bench/peers/setup.sh, IMAP 127.0.0.1:14300), then
#   (b) Mailstead (127.0.0.1:1143, embedded SQLite directory),
# one server at a time, on the same generated Maildir files (USERS x MESSAGES, deterministic).
# Both check the same {PLAIN} password (Dovecot's passwd-file, imported as is into Mailstead).
# Prints per-command ops/s, p50/p99 and the ratio Mailstead/Dovecot for each client count.
# Usage: bench/imap.sh [CLIENTS...]   (as root; default 10 50)
# Environment: DURATION (s, default 20), USERS (default 50, at most 50), MESSAGES (default
# 1000), SERVERS ("dovecot mailstead", the default, or one of them).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- 10 50
DURATION=${DURATION:-20}
USERS=${USERS:-50}
MESSAGES=${MESSAGES:-1000}
SERVERS=${SERVERS:-dovecot mailstead}
[ "$USERS" -le 50 ] || { echo "USERS must be at most 50 (the peer's passdb)" >&2; exit 64; }
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
. bench/lib.sh
bench_workdir imap

echo "building (release) ..." >&2
if [[ " $SERVERS " == *" mailstead "* ]]; then
  cargo build --release --locked -q -p mailstead -p mailstead-bench --bin mailstead --bin imap-bench
else
  cargo build --release --locked -q -p mailstead-bench --bin imap-bench
fi
BIN=$TARGET/release/mailstead
BENCH=$TARGET/release/imap-bench

"$BENCH" gen-data --dir "$WORK/data" --users "$USERS" --messages "$MESSAGES"

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); $(dovecot --version 2>/dev/null | sed 's/^/Dovecot /'); load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo "data: $USERS users x $MESSAGES messages (same files for both); $DURATION s per run; client i logs in as user (i % $USERS)+1"
echo

run_loads() { # LABEL PORT
  "$BENCH" warm --addr "127.0.0.1:$2" --users "$USERS" 2>&1
  for clients in "${CLIENTS[@]}"; do
    echo "$1: $clients clients for $DURATION s ..." >&2
    "$BENCH" load --addr "127.0.0.1:$2" --clients "$clients" --users "$USERS" \
      --duration "$DURATION" --label "$1" --out "$WORK/$1-$clients.tsv" 2>"$WORK/$1-$clients.log" \
      || { cat "$WORK/$1-$clients.log" >&2; return 1; }
  done
}
CLIENTS=("$@")
status=0

# (a) Dovecot
if [[ " $SERVERS " == *" dovecot "* ]]; then
  dovecot_start_with_data
  master=$(cat "$WORK/peer/dovecot/run/master.pid")
  dovecot_start_rss=$(tree_rss_kib "$master")
  run_loads Dovecot 14300 || status=1
  sleep 5
  dovecot_idle_rss=$(tree_rss_kib "$master")
  bench/peers/stop.sh "$WORK/peer"
  wait_port_free 14300
fi

# (b) Mailstead
if [[ " $SERVERS " == *" mailstead "* ]]; then
  mailstead_write_config "max_connections_per_user = 1000
max_connections_per_ip = 20000"
  if mailstead_load_users && mailstead_start; then
    mailstead_start_rss=$(tree_rss_kib "$MAILSTEAD_PID")
    "$BENCH" warm --addr 127.0.0.1:1143 --users "$USERS" >/dev/null 2>&1
    mailstead_warm_rss=$(tree_rss_kib "$MAILSTEAD_PID")
    run_loads Mailstead 1143 || status=1
    sleep 5
    mailstead_idle_rss=$(tree_rss_kib "$MAILSTEAD_PID")
    sleep 25
    mailstead_idle30_rss=$(tree_rss_kib "$MAILSTEAD_PID")
    mailstead_peak_rss=$(awk '/VmHWM/ {print $2}' "/proc/$MAILSTEAD_PID/status")
  else
    status=1
  fi
  if [ -n "$MAILSTEAD_PID" ]; then
    kill "$MAILSTEAD_PID" 2>/dev/null || true; wait "$MAILSTEAD_PID" 2>/dev/null || true; MAILSTEAD_PID=
  fi
fi

for clients in "${CLIENTS[@]}"; do
  m=$WORK/Mailstead-$clients.tsv d=$WORK/Dovecot-$clients.tsv
  if [ -f "$m" ] && [ -f "$d" ]; then "$BENCH" compare "$m" "$d"
  elif [ -f "$d" ]; then "$BENCH" compare "$d"
  elif [ -f "$m" ]; then "$BENCH" compare "$m"
  fi
done
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
[ -n "${dovecot_start_rss:-}" ] && echo "Dovecot RSS (all processes): $(mib "$dovecot_start_rss") at start, $(mib "$dovecot_idle_rss") idle 5 s after the load"
[ -n "${mailstead_start_rss:-}" ] && echo "Mailstead RSS: $(mib "$mailstead_start_rss") at start, $(mib "$mailstead_warm_rss") after opening every INBOX once, $(mib "$mailstead_peak_rss") peak, $(mib "$mailstead_idle_rss") idle 5 s after the load, $(mib "$mailstead_idle30_rss") 30 s after ($(awk -v a="$mailstead_idle30_rss" -v b="$mailstead_warm_rss" 'BEGIN { printf "%.1fx", a / b }') the RSS after opening every INBOX)"
echo "load average $(cut -d' ' -f1-3 /proc/loadavg) at end"
exit $status
