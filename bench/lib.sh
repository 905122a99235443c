# Shell functions the IMAP benchmarks share; sourced by bench/imap.sh, bench/idle.sh and bench/attack.sh.
# They expect BIN (the mailstead binary), WORK (the run's temp dir), USERS and, for the data,
# $WORK/data/user<i>/Maildir written by `imap-bench gen-data`.

# Makes the run's temp dir (WORK, readable by the servers' users) and, on exit, stops what the
# run started there (MAILSTEAD_PID, the Dovecot/Postfix peer) and removes it.
bench_workdir() { # NAME
  WORK=$(mktemp -d "/tmp/mailstead-$1.XXXXXX")
  chmod 755 "$WORK"
  MAILSTEAD_PID=
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
  ulimit -n 65536 2>/dev/null || true
}

bench_cleanup() {
  if [ -n "$MAILSTEAD_PID" ]; then kill "$MAILSTEAD_PID" 2>/dev/null || true; wait "$MAILSTEAD_PID" 2>/dev/null || true; fi
  [ -d "$WORK/peer" ] && bench/peers/stop.sh "$WORK/peer"
  rm -rf "$WORK"
}

wait_port() { # PORT SECONDS: until something listens on 127.0.0.1:PORT
  for _ in $(seq 1 $(($2 * 10))); do ss -ltn | grep -q "127.0.0.1:$1 " && return 0; sleep 0.1; done
  return 1
}

wait_port_free() { # PORT: until nothing listens on 127.0.0.1:PORT (10 s)
  for _ in $(seq 1 100); do ss -ltn | grep -q "127.0.0.1:$1 " || return 0; sleep 0.1; done
  echo "port $1 still in use" >&2; return 1
}

# Creates user1..USERS@example.test in Mailstead's directory from the passwd-file $WORK/users
# (written here as the Dovecot peer's own, {PLAIN}pass, unless the caller wrote one: imported
# as is, so both servers check the same hash strings) and copies the generated Maildirs into
# their mailboxes. MAILSTEAD_CONFIG must be set.
mailstead_load_users() {
  [ -f "$WORK/users" ] || for i in $(seq 1 "$USERS"); do echo "user$i@example.test:{PLAIN}pass::::::"; done > "$WORK/users"
  if ! "$BIN" domain add example.test >/dev/null \
    || ! "$BIN" import passwd-file "$WORK/users" >"$WORK/import.log"; then
    echo "could not create Mailstead's users" >&2; cat "$WORK/import.log" >&2
    return 1
  fi
  for i in $(seq 1 "$USERS"); do
    maildir=$("$BIN" --json mailbox show "user$i@example.test" \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["location"]["maildir"])')
    mkdir -p "$maildir"
    cp -a "$WORK/data/user$i/Maildir/." "$maildir/"
  done
}

# Starts Debian's Dovecot (bench/peers/setup.sh, IMAP 127.0.0.1:14300) with the generated
# Maildirs of user1..USERS copied in as its own; PEER settings in $WORK/peer/dovecot/extra.conf,
# written before, are included.
dovecot_start_with_data() {
  bench/peers/setup.sh "$WORK/peer"
  mkdir -p "$WORK/peer/vmail/example.test"
  for i in $(seq 1 "$USERS"); do cp -a "$WORK/data/user$i" "$WORK/peer/vmail/example.test/"; done
  chown -R vmail:vmail "$WORK/peer/vmail"
  chmod 755 "$WORK/peer/vmail" "$WORK/peer/vmail/example.test"
}

# Writes $WORK/mailstead.toml: IMAP on 127.0.0.1:1143 without TLS, no SMTP, data under
# $WORK/mailstead; EXTRA lines go into [imap], SECTIONS (whole sections) at the end. Exports
# MAILSTEAD_CONFIG.
mailstead_write_config() { # [EXTRA] [SECTIONS]
  cat > "$WORK/mailstead.toml" <<CONF
[server]
hostname = "bench.test"
data_dir = "$WORK/mailstead"
[imap]
listen = ["127.0.0.1:1143"]
listen_tls = []
login_on_loopback_without_tls = true
${1:-}
[smtp]
listen = []
[submission]
listen = []
listen_tls = []
[pop3]
listen = []
listen_tls = []
[managesieve]
listen = []
[log]
level = "warn"
${2:-}
CONF
  export MAILSTEAD_CONFIG=$WORK/mailstead.toml
}

# Starts `mailstead serve` (MAILSTEAD_PID) and waits for its IMAP port 1143.
mailstead_start() {
  "$BIN" serve >"$WORK/mailstead.log" 2>&1 &
  MAILSTEAD_PID=$!
  if ! wait_port 1143 30; then
    echo "Mailstead did not listen on 127.0.0.1:1143; its log:" >&2; tail -20 "$WORK/mailstead.log" >&2
    return 1
  fi
}

# CPU time in ms (user + system, reaped children included) of PID and all its descendants.
tree_cpu_ms() {
  python3 - "$1" <<'PY'
import os, sys
root = int(sys.argv[1]); stats = {}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        stat = open(f"/proc/{pid}/stat").read()
        stats[int(pid)] = stat[stat.rfind(")") + 2:].split()
    except OSError:
        pass
todo, ticks = [root], 0
while todo:
    pid = todo.pop()
    todo += [child for child, f in stats.items() if int(f[1]) == pid]
    if pid in stats:
        ticks += sum(int(x) for x in stats[pid][11:15])
print(ticks * 1000 // os.sysconf("SC_CLK_TCK"))
PY
}

# Samples the RSS of PID's tree every second into FILE (the largest so far) until killed.
rss_peak_sampler() { # PID FILE
  local peak=0 now
  while now=$(tree_rss_kib "$1") && [ "$now" -gt 0 ]; do
    [ "$now" -gt "$peak" ] && peak=$now && echo "$peak" > "$2"
    sleep 1
  done
}

# Resident memory in KiB of PID and all its descendants (VmRSS summed; Dovecot is a tree).
tree_rss_kib() {
  python3 - "$1" <<'PY'
import os, sys
root = int(sys.argv[1]); parents = {}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        stat = open(f"/proc/{pid}/stat").read()
        parents[int(pid)] = int(stat[stat.rfind(")") + 2:].split()[1])
    except OSError:
        pass
todo, total = [root], 0
while todo:
    pid = todo.pop()
    todo += [child for child, parent in parents.items() if parent == pid]
    try:
        total += next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS:"))
    except (OSError, StopIteration):
        pass
print(total)
PY
}
