#!/usr/bin/env bash
# IMAP under load, side by side on this machine in one run: imap-bench (bench/src/imap) against
#   (a) Debian's Dovecot (bench/peers/setup.sh, IMAP 127.0.0.1:14300), then
#   (b) Mailstead (127.0.0.1:1143, embedded SQLite directory),
# one server at a time, on the same generated Maildir files (USERS x MESSAGES, deterministic),
# both checking the same password hash strings: one {ARGON2ID} hash per user made once, as
# Mailstead makes new hashes (m = 19 MiB, t = 2), written to Dovecot's passwd-file and imported
# as is into Mailstead (HASH_SCHEME=PLAIN: {PLAIN}pass). Both keep their verified-login cache
# (Dovecot: auth_cache_size = 10M, auth_cache_ttl = 1 hour; Mailstead: [auth] cache_ttl = 1h),
# AUTH_CACHE=no turns both off.
# For each server:
#   1. the mixes, N clients each for DURATION seconds:
#      reconnect: each client repeats one session (connect, LOGIN, SELECT, FETCH flags /
#        envelopes / bodies, UID STORE, UID SEARCH, APPEND, STORE \Deleted + EXPUNGE, LOGOUT);
#      stay: each client logs in once and repeats the same commands, a NOOP, SELECT Archive,
#        a NOOP, and SELECT INBOX again on the same connection;
#      with the server's CPU time per command over the whole run;
#   2. server CPU per command type: each command alone CPU_COUNT times on one connection
#      (LOGIN: connect, LOGIN, LOGOUT), the CPU time of the server's whole process tree read
#      from /proc before and after (Dovecot's auth, login and imap processes included);
#   3. memory: RSS of the process tree at start, peak (sampled every second) and idle after.
# Prints per-command ops/s, p50/p99 and the ratio Mailstead/Dovecot for each mix and client
# count, then the CPU table (ms per command and Dovecot / Mailstead), then memory.
# Usage: bench/imap.sh [CLIENTS...]   (as root; default 10 50)
# Environment: DURATION (s, default 20), USERS (default 50, at most 50), MESSAGES (default
# 1000), MIXES ("reconnect stay", the default; "" for the CPU phase only), CPU_COUNT (default
# 500; 0 skips the phase), HASH_SCHEME (ARGON2ID, the default, or PLAIN), AUTH_CACHE (yes, the
# default, or no), SERVERS ("dovecot mailstead", the default, or one of them).
# Folder size: USERS=1 MESSAGES=100000 MIXES= bench/imap.sh gives the CPU per NOOP and SELECT
# of a 100,000-message INBOX, to hold against the default 1,000.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- 10 50
DURATION=${DURATION:-20}
USERS=${USERS:-50}
MESSAGES=${MESSAGES:-1000}
MIXES=${MIXES-reconnect stay}
CPU_COUNT=${CPU_COUNT:-500}
HASH_SCHEME=${HASH_SCHEME:-ARGON2ID}
AUTH_CACHE=${AUTH_CACHE:-yes}
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
# The passwd-file both servers read: every user of the peer's passdb (50), one hash each.
for i in $(seq 1 50); do echo "user$i@example.test:$("$BENCH" hash --scheme "$HASH_SCHEME")::::::"; done > "$WORK/users"
chmod 644 "$WORK/users"
export PEER_USERS=$WORK/users

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); $(dovecot --version 2>/dev/null | sed 's/^/Dovecot /'); load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo "data: $USERS users x $MESSAGES messages (same files for both); $DURATION s per run; client i logs in as user (i % $USERS)+1"
echo "passwords: the same $(head -1 "$WORK/users" | cut -d: -f2 | cut -c1-40)... strings on both sides (one per user); verified-login caches: $AUTH_CACHE"
echo

CLIENTS=("$@")
read -r -a MIX_LIST <<< "$MIXES"
status=0

# Runs the mixes and the CPU phase against LABEL on PORT, the server's process tree at PID.
run_server() { # LABEL PORT PID
  local label=$1 port=$2 pid=$3 before after
  "$BENCH" warm --addr "127.0.0.1:$port" --users "$USERS" 2>&1
  for mix in "${MIX_LIST[@]}"; do
    for clients in "${CLIENTS[@]}"; do
      echo "$label: mix $mix, $clients clients for $DURATION s ..." >&2
      before=$(tree_cpu_ms "$pid")
      "$BENCH" load --addr "127.0.0.1:$port" --clients "$clients" --users "$USERS" --mix "$mix" \
        --duration "$DURATION" --label "$label" --out "$WORK/$label-$mix-$clients.tsv" 2>"$WORK/$label-$mix-$clients.log" \
        || { cat "$WORK/$label-$mix-$clients.log" >&2; return 1; }
      after=$(tree_cpu_ms "$pid")
      echo "$((after - before))" > "$WORK/$label-$mix-$clients.cpu"
    done
  done
  if [ "$CPU_COUNT" -gt 0 ]; then
    echo "$label: server CPU per command, $CPU_COUNT of each ..." >&2
    "$BENCH" cpu --addr "127.0.0.1:$port" --pid "$pid" --count "$CPU_COUNT" --label "$label" \
      --out "$WORK/$label.cputsv" 2>"$WORK/$label-cpu.log" || { cat "$WORK/$label-cpu.log" >&2; return 1; }
  fi
}

# (a) Dovecot
if [[ " $SERVERS " == *" dovecot "* ]]; then
  mkdir -p "$WORK/peer/dovecot"
  if [ "$AUTH_CACHE" = yes ]; then
    printf 'auth_cache_size = 10M\nauth_cache_ttl = 1 hour\n' > "$WORK/peer/dovecot/extra.conf"
  fi
  dovecot_start_with_data
  master=$(cat "$WORK/peer/dovecot/run/master.pid")
  dovecot_start_rss=$(tree_rss_kib "$master")
  rss_peak_sampler "$master" "$WORK/dovecot.peak" & sampler=$!
  run_server Dovecot 14300 "$master" || status=1
  kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true
  sleep 5
  dovecot_idle_rss=$(tree_rss_kib "$master")
  bench/peers/stop.sh "$WORK/peer"
  wait_port_free 14300
fi

# (b) Mailstead
if [[ " $SERVERS " == *" mailstead "* ]]; then
  auth=
  [ "$AUTH_CACHE" = yes ] || auth=$'[auth]\ncache_ttl = "0s"'
  mailstead_write_config "max_connections_per_user = 1000
max_connections_per_ip = 20000" "$auth"
  if mailstead_load_users && mailstead_start; then
    mailstead_start_rss=$(tree_rss_kib "$MAILSTEAD_PID")
    rss_peak_sampler "$MAILSTEAD_PID" "$WORK/mailstead.peak" & sampler=$!
    run_server Mailstead 1143 "$MAILSTEAD_PID" || status=1
    kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true
    sleep 5
    mailstead_idle_rss=$(tree_rss_kib "$MAILSTEAD_PID")
    mailstead_peak_rss=$(awk '/VmHWM/ {print $2}' "/proc/$MAILSTEAD_PID/status")
  else
    status=1
  fi
  if [ -n "$MAILSTEAD_PID" ]; then
    kill "$MAILSTEAD_PID" 2>/dev/null || true; wait "$MAILSTEAD_PID" 2>/dev/null || true; MAILSTEAD_PID=
  fi
fi

# Server CPU per command over a whole mix: its CPU time over the commands the clients sent.
cpu_per_command() { # LABEL MIX CLIENTS
  local tsv=$WORK/$1-$2-$3.tsv cpu=$WORK/$1-$2-$3.cpu
  [ -f "$tsv" ] && [ -f "$cpu" ] || return 0
  awk -F'\t' -v cpu="$(cat "$cpu")" '$1 == "op" { n += $3 } END { if (n) printf "%.3f", cpu / n }' "$tsv"
}
for mix in "${MIX_LIST[@]}"; do
  for clients in "${CLIENTS[@]}"; do
    m=$WORK/Mailstead-$mix-$clients.tsv d=$WORK/Dovecot-$mix-$clients.tsv
    if [ -f "$m" ] && [ -f "$d" ]; then "$BENCH" compare "$m" "$d"
    elif [ -f "$d" ]; then "$BENCH" compare "$d"
    elif [ -f "$m" ]; then "$BENCH" compare "$m"
    fi
    mc=$(cpu_per_command Mailstead "$mix" "$clients") dc=$(cpu_per_command Dovecot "$mix" "$clients")
    line="server CPU per command over the whole mix:"
    [ -n "$mc" ] && line="$line Mailstead $mc ms"
    [ -n "$dc" ] && line="$line, Dovecot $dc ms"
    [ -n "$mc" ] && [ -n "$dc" ] && line="$line ($(awk -v a="$dc" -v b="$mc" 'BEGIN { if (b > 0) printf "%.1fx", a / b; else print "-" }') Dovecot / Mailstead)"
    echo "$line"
    echo
  done
done
if [ -f "$WORK/Mailstead.cputsv" ] && [ -f "$WORK/Dovecot.cputsv" ]; then "$BENCH" compare-cpu "$WORK/Mailstead.cputsv" "$WORK/Dovecot.cputsv"
elif [ -f "$WORK/Mailstead.cputsv" ]; then "$BENCH" compare-cpu "$WORK/Mailstead.cputsv"
elif [ -f "$WORK/Dovecot.cputsv" ]; then "$BENCH" compare-cpu "$WORK/Dovecot.cputsv"
fi
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
[ -n "${dovecot_start_rss:-}" ] && echo "Dovecot RSS (all processes): $(mib "$dovecot_start_rss") at start, $(mib "$(cat "$WORK/dovecot.peak" 2>/dev/null || echo 0)") peak (sampled each second), $(mib "$dovecot_idle_rss") idle 5 s after the load"
[ -n "${mailstead_start_rss:-}" ] && echo "Mailstead RSS: $(mib "$mailstead_start_rss") at start, $(mib "$mailstead_peak_rss") peak (VmHWM), $(mib "$mailstead_idle_rss") idle 5 s after the load"
echo "load average $(cut -d' ' -f1-3 /proc/loadavg) at end"
exit $status
