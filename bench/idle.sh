#!/usr/bin/env bash
# Memory per idling IMAP connection, side by side on this machine in one run: imap-bench idle
# opens N connections that LOGIN, SELECT INBOX (MESSAGES messages) and IDLE (each must get the
# "+" continuation), measures the server's memory while they idle, then ends every IDLE (each
# must get its tagged OK) and logs out:
#   (a) Debian's Dovecot (bench/peers/setup.sh): the sum of VmRSS and of PSS (smaps_rollup)
#       over the master process and all its children (one imap process per connection),
#   (b) Mailstead: VmRSS and PSS of its one process.
# Dovecot is measured with DOVECOT_CONNECTIONS (default: N, capped at 2000: a process per
# connection) and, when that is less than N, its cost is extrapolated linearly to N, and the
# output says so.
# Mailstead takes all N (100000 fits in 1 GiB): the client spreads its sockets over SOURCES
# loopback source addresses (127.0.0.2, 127.0.0.3, ...; default one per 25,000 connections, as
# one source address has about 28,000 ephemeral ports towards one server port), descriptor
# limits are raised for the run and Mailstead's connection limits ([limits] max_connections,
# [imap] max_connections_per_user and _per_ip) set to hold N.
# Usage: bench/idle.sh [N]   (as root; default 10000; 100000 for the 1 GiB check)
# Environment: USERS (default 50), MESSAGES (default 1000), DOVECOT_CONNECTIONS, SOURCES,
# SERVERS ("dovecot mailstead", the default, or one of them).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
USERS=${USERS:-50}
MESSAGES=${MESSAGES:-1000}
SERVERS=${SERVERS:-dovecot mailstead}
DN=${DOVECOT_CONNECTIONS:-$((N < 2000 ? N : 2000))}
SOURCES=${SOURCES:-$(((N + 24999) / 25000))}
[ "$USERS" -le 50 ] || { echo "USERS must be at most 50 (the peer's passdb)" >&2; exit 64; }
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
WORK=$(mktemp -d /tmp/mailstead-idle.XXXXXX)
chmod 755 "$WORK"
MAILSTEAD_PID=
OLD_INOTIFY=
cleanup() {
  if [ -n "$MAILSTEAD_PID" ]; then kill "$MAILSTEAD_PID" 2>/dev/null || true; wait "$MAILSTEAD_PID" 2>/dev/null || true; fi
  [ -d "$WORK/peer" ] && bench/peers/stop.sh "$WORK/peer"
  [ -n "$OLD_INOTIFY" ] && sysctl -q -w fs.inotify.max_user_instances="$OLD_INOTIFY" || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Descriptors: the client holds N sockets, Mailstead N, Dovecot's log and anvil processes one
# per imap process. The hard limit is raised if this host lets root do it.
FDS=$((N + 2000))
[ "$(ulimit -Hn)" = unlimited ] || [ "$(ulimit -Hn)" -ge "$FDS" ] || ulimit -Hn "$FDS" 2>/dev/null \
  || { echo "ulimit -n: $N connections need $FDS descriptors per process, the hard limit is $(ulimit -Hn)" >&2; exit 1; }
ulimit -n "$FDS"
# An IDLE watches the Maildir with inotify: one instance per idling connection in Dovecot, so
# the default 128 per user would switch most of them to polling. Raised for the run, restored.
OLD_INOTIFY=$(sysctl -n fs.inotify.max_user_instances)
[ "$OLD_INOTIFY" -ge $((N + 1000)) ] && OLD_INOTIFY= || sysctl -q -w fs.inotify.max_user_instances=$((N + 1000))

. bench/lib.sh

echo "building (release) ..." >&2
if [[ " $SERVERS " == *" mailstead "* ]]; then
  cargo build --release --locked -q -p mailstead -p mailstead-bench --bin mailstead --bin imap-bench
else
  cargo build --release --locked -q -p mailstead-bench --bin imap-bench
fi
BIN=$TARGET/release/mailstead
BENCH=$TARGET/release/imap-bench
"$BENCH" gen-data --dir "$WORK/data" --users "$USERS" --messages "$MESSAGES"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); $(dovecot --version 2>/dev/null | sed 's/^/Dovecot /')"
echo "idle: connections spread over $USERS users, INBOX of $MESSAGES messages each, from $SOURCES loopback source addresses (Mailstead); memory measured 3 s after the last IDLE continuation"
echo
status=0
DOVECOT_RESULT= MAILSTEAD_RESULT=

# (a) Dovecot, with limits for DN connections (a process each)
if [[ " $SERVERS " == *" dovecot "* ]]; then
  mkdir -p "$WORK/peer/dovecot"
  cat > "$WORK/peer/dovecot/extra.conf" <<CONF
default_process_limit = $((DN + 200))
default_client_limit = $((2 * DN + 1000))
mail_max_userip_connections = $((DN + 100))
service imap {
  process_limit = $((DN + 200))
}
CONF
  dovecot_start_with_data
  "$BENCH" warm --addr 127.0.0.1:14300 --users "$USERS" 2>&1
  master=$(cat "$WORK/peer/dovecot/run/master.pid")
  if out=$("$BENCH" idle --addr 127.0.0.1:14300 --connections "$DN" --users "$USERS" --pid "$master" --tree --label Dovecot); then
    echo "$out" | grep -v '^RESULT'
    DOVECOT_RESULT=$(echo "$out" | grep '^RESULT')
  else
    status=1
  fi
  if grep -qi 'inotify' "$WORK/peer/dovecot/dovecot.log" 2>/dev/null; then
    echo "Dovecot's log mentions inotify:"; grep -i inotify "$WORK/peer/dovecot/dovecot.log" | sort | uniq -c | head -3
  fi
  echo
  bench/peers/stop.sh "$WORK/peer"
  wait_port_free 14300
fi

# (b) Mailstead
if [[ " $SERVERS " == *" mailstead "* ]]; then
  mailstead_write_config "max_connections_per_user = $((N / USERS + 1000))
max_connections_per_ip = $((N + 20000))" "[limits]
max_connections = $((N + 1000))"
  if mailstead_load_users && mailstead_start; then
    "$BENCH" warm --addr 127.0.0.1:1143 --users "$USERS" 2>&1
    if out=$("$BENCH" idle --addr 127.0.0.1:1143 --connections "$N" --users "$USERS" --pid "$MAILSTEAD_PID" --sources "$SOURCES" --label Mailstead); then
      echo "$out" | grep -v '^RESULT'
      MAILSTEAD_RESULT=$(echo "$out" | grep '^RESULT')
    else
      status=1
    fi
    echo
  else
    status=1
  fi
fi

# Summary: memory for N idling connections (Dovecot extrapolated if it ran fewer).
python3 - "$N" "$DOVECOT_RESULT" "$MAILSTEAD_RESULT" <<'PY'
import sys
n = int(sys.argv[1])
def parse(line):
    if not line:
        return None
    f = line.split("\t")
    conns, rss0, pss0, rss1, pss1 = int(f[2]), int(f[4]), int(f[5]), int(f[7]), int(f[8])
    # The cost at n connections: the idle baseline plus n times the measured cost per connection.
    per_rss, per_pss = (rss1 - rss0) / conns, (pss1 - pss0) / conns
    procs0, procs1 = int(f[3]), int(f[6])
    return dict(conns=conns, rss=rss0 + per_rss * n, pss=pss0 + per_pss * n,
                per_rss=per_rss, per_pss=per_pss,
                procs=round(procs0 + (procs1 - procs0) / conns * n))
d, m = parse(sys.argv[2]), parse(sys.argv[3])
mib = lambda kib: f"{kib / 1024:,.0f} MiB"
print(f"memory with {n:,} idling connections")
print("| server | measured at | processes | RSS | PSS | per connection (RSS / PSS) |")
print("|---|---:|---:|---:|---:|---:|")
for name, r in (("Mailstead", m), ("Dovecot", d)):
    if r:
        how = f"{r['conns']:,}" + ("" if r["conns"] == n else f" (extrapolated to {n:,})")
        print(f"| {name} | {how} | {r['procs']:,} | {mib(r['rss'])} | {mib(r['pss'])} | {r['per_rss']:.1f} / {r['per_pss']:.1f} KiB |")
if d and m and m["pss"] > 0 and m["rss"] > 0:
    print(f"Dovecot / Mailstead memory at {n:,} connections: {d['rss'] / m['rss']:.1f}x (RSS), {d['pss'] / m['pss']:.1f}x (PSS)")
    if d["conns"] != n:
        print(f"(Dovecot measured with {d['conns']:,} connections, a process each, and extrapolated linearly: "
              f"its baseline plus {n:,} x the measured cost per connection)")
PY
exit $status
