#!/usr/bin/env bash
# Victims under attack, side by side on this machine in one run: `imap-bench attack` runs
# VICTIMS clients repeating connect, LOGIN, SELECT INBOX, FETCH 20 ENVELOPEs (timed together),
# LOGOUT, while 2 attackers on 127.0.0.2 run one attack each phase (see bench/src/imap/attack.rs):
# none (baseline), login-literal, brute, list-pattern, search-text, fetch-sets, silent.
# Against (a) Debian's Dovecot (bench/peers/setup.sh, 127.0.0.1:14300) and (b) Mailstead
# (127.0.0.1:1143, embedded SQLite), the same Maildir files and the same {PLAIN} passwords.
# Prints per phase the victims' p50/p99/max, sessions/s, failed sessions, the server's memory
# after the phase, and the ratio of p99s; then Mailstead's peak (VmHWM) and idle RSS.
# Usage: bench/attack.sh   (as root). Environment: DURATION (s per phase, default 15),
# VICTIMS (default 10), KINDS (default all), SERVERS ("dovecot mailstead").
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-15}
VICTIMS=${VICTIMS:-10}
USERS=11 # user1..10 are the victims', user11 the attacker's own account
MESSAGES=${MESSAGES:-1000}
KINDS=${KINDS:-none login-literal brute list-pattern search-text fetch-sets silent}
SERVERS=${SERVERS:-dovecot mailstead}
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
. bench/lib.sh
bench_workdir attack

echo "building (release) ..." >&2
cargo build --release --locked -q -p mailstead -p mailstead-bench --bin mailstead --bin imap-bench
BIN=$TARGET/release/mailstead
BENCH=$TARGET/release/imap-bench
"$BENCH" gen-data --dir "$WORK/data" --users "$USERS" --messages "$MESSAGES"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); $(dovecot --version 2>/dev/null | sed 's/^/Dovecot /')"
echo "$VICTIMS victims, 2 attackers from 127.0.0.2, $DURATION s per phase, $USERS users x $MESSAGES messages"

phases() { # LABEL PORT PID [--tree]
  local label=$1 port=$2 pid=$3; shift 3
  "$BENCH" warm --addr "127.0.0.1:$port" --users "$USERS" >/dev/null 2>&1
  for kind in $KINDS; do
    echo "$label: $kind ..." >&2
    "$BENCH" attack --addr "127.0.0.1:$port" --victims "$VICTIMS" --users "$USERS" \
      --duration "$DURATION" --kind "$kind" --label "$label" --pid "$pid" "$@" >>"$WORK/results.tsv"
    sleep 2 # let the server settle between phases
  done
}

if [[ " $SERVERS " == *" dovecot "* ]]; then
  dovecot_start_with_data
  phases Dovecot 14300 "$(cat "$WORK/peer/dovecot/run/master.pid")" --tree
  bench/peers/stop.sh "$WORK/peer"
  wait_port_free 14300
fi

if [[ " $SERVERS " == *" mailstead "* ]]; then
  mailstead_write_config
  mailstead_load_users
  mailstead_start
  start_rss=$(awk '/VmRSS/ {print $2}' "/proc/$MAILSTEAD_PID/status")
  phases Mailstead 1143 "$MAILSTEAD_PID"
  sleep 5
  idle_rss=$(awk '/VmRSS/ {print $2}' "/proc/$MAILSTEAD_PID/status")
  peak_rss=$(awk '/VmHWM/ {print $2}' "/proc/$MAILSTEAD_PID/status")
  echo -e "memory\t$start_rss\t$peak_rss\t$idle_rss" >>"$WORK/results.tsv"
fi

python3 - "$WORK/results.tsv" <<'PY'
import sys
rows, memory = {}, None
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    if f[0] == "memory":
        memory = [int(x) / 1024 for x in f[1:]]
        continue
    rows.setdefault(f[1], {})[f[0]] = f
print()
print("| attack | server | sessions/s | p50 ms | p99 ms | max ms | failed sessions | attack commands answered | server RSS after, MiB |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
for kind, by in rows.items():
    for label in ("Dovecot", "Mailstead"):
        if label in by:
            f = by[label]
            print(f"| {kind} | {label} | {f[3]} | {f[4]} | {f[5]} | {f[6]} | {f[7]} | {f[8]} | {f[10]} |")
print()
for kind, by in rows.items():
    if "Dovecot" in by and "Mailstead" in by:
        d, m = float(by["Dovecot"][5]), float(by["Mailstead"][5])
        print(f"{kind}: victim p99 Dovecot / Mailstead = {d / m:.1f}x" if m > 0 else f"{kind}: no Mailstead sessions")
if memory:
    start, peak, idle = memory
    print(f"Mailstead RSS: {start:.1f} MiB at start, {peak:.1f} MiB peak, {idle:.1f} MiB idle after the run ({idle / start:.1f}x start)")
PY
