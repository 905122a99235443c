#!/usr/bin/env bash
# Mail submission, side by side on this machine in one run: submission-bench
# (bench/src/submission) sends MESSAGES copies of one 4 KiB message from CLIENTS clients over
# STARTTLS + AUTH PLAIN to rcpt@remote.example, into
#   (a) Debian's Postfix (submission smtpd, SASL by Dovecot's auth service over a unix socket,
#       relayhost = the sink), then
#   (b) Mailstead ([submission], outbound queue with relay_host = the sink),
# one server at a time; both relay to the same smtp-sink (no fsync, dumps every message to a
# file). Both keep the message durable before their 250 (Postfix fsyncs its queue file,
# Mailstead its queue files and directory). Both check the SAME {ARGON2ID} hash string (the
# one `mailstead mailbox add` stored, copied into Dovecot's passwd-file), present the same
# ECDSA P-256 certificate, and refuse a MAIL FROM the login does not own.
# Two client modes, each measured on its own: "reconnect" (a whole session per message:
# connect, EHLO, STARTTLS, EHLO, AUTH PLAIN, MAIL, RCPT, DATA, QUIT) and "stay" (one session
# per client, AUTH once, then RSET, MAIL, RCPT, DATA per message).
# A message counts when the sink has it whole; messages/s = MESSAGES / (first connection to
# last message at the sink). Prints markdown tables: rates, the ratio Mailstead/Postfix, CPU
# per message, peak and idle RSS and PSS of each server's process tree.
# Usage: bench/submission.sh [MESSAGES]   (as root; default 2000)
# Environment: CLIENTS (default 20), MODES ("reconnect stay", the default, or one of them),
# SOURCES (0, the default: every client connects from 127.0.0.1; N: the clients spread over
# 127.0.0.10 .. 127.0.0.(9+N), as clients from N addresses).
set -euo pipefail
cd "$(dirname "$0")/.."
MESSAGES=${1:-2000}
CLIENTS=${CLIENTS:-20}
MODES=${MODES:-reconnect stay}
SOURCES=${SOURCES:-0}
PASSWORD=benchmark-password
USER_ADDR=user1@example.test
RCPT=rcpt@remote.example
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
. bench/lib.sh
bench_workdir submission
PEER=$WORK/peer
SINK_PID=
cleanup() {
  if [ -n "$SINK_PID" ]; then kill "$SINK_PID" 2>/dev/null || true; wait "$SINK_PID" 2>/dev/null || true; fi
  bench_cleanup
}
trap cleanup EXIT

if ! dpkg -s postfix dovecot-core >/dev/null 2>&1; then
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  echo "postfix postfix/mailname string localhost" | debconf-set-selections
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postfix dovecot-core
fi

echo "building (release) ..." >&2
cargo build --release --locked -q --bin mailstead
cargo build --release --locked -q -p mailstead-bench --bin submission-bench
BIN=$TARGET/release/mailstead
BENCH=$TARGET/release/submission-bench

# Three free loopback ports, taken at once so they differ.
read -r SINK_PORT POSTFIX_PORT MAILSTEAD_PORT < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')

# One certificate for both servers: ECDSA P-256, as Mailstead makes for itself.
mkdir -p "$WORK/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
  -keyout "$WORK/tls/key.pem" -out "$WORK/tls/cert.pem" -subj /CN=bench.test \
  -addext "subjectAltName=DNS:bench.test,IP:127.0.0.1" 2>/dev/null
chmod 600 "$WORK/tls/key.pem"

# The sink: one process, no fsync; every message dumped into its own file.
mkdir -p "$WORK/sink"
chown nobody "$WORK/sink"
smtp-sink -u nobody -d "$WORK/sink/%M." "127.0.0.1:$SINK_PORT" 256 </dev/null >"$WORK/sink.log" 2>&1 &
SINK_PID=$!
wait_port "$SINK_PORT" 10 || { echo "smtp-sink did not start" >&2; cat "$WORK/sink.log" >&2; exit 1; }

# Mailstead's data first: its stored password hash is what Dovecot gets too.
cat > "$WORK/mailstead.toml" <<CONF
[server]
hostname = "submission.bench.test"
data_dir = "$WORK/mailstead"
[tls]
cert = "$WORK/tls/cert.pem"
key = "$WORK/tls/key.pem"
[smtp]
listen = []
[imap]
listen = []
listen_tls = []
[submission]
listen = ["127.0.0.1:$MAILSTEAD_PORT"]
listen_tls = []
[pop3]
listen = []
listen_tls = []
[managesieve]
listen = []
[queue]
relay_host = "[127.0.0.1]:$SINK_PORT"
[log]
level = "warn"
CONF
export MAILSTEAD_CONFIG=$WORK/mailstead.toml
"$BIN" domain add example.test >/dev/null
echo "$PASSWORD" | "$BIN" mailbox add "$USER_ADDR" >/dev/null
HASH=$(sqlite3 "$WORK/mailstead/mailstead.db" "SELECT password FROM mailboxes LIMIT 1")
case "$HASH" in
  '{ARGON2ID}$argon2id$'*) ;;
  *) echo "unexpected stored password: $HASH" >&2; exit 1 ;;
esac

# Postfix (submission, relayhost = the sink) + Dovecot (SASL only), in the layout
# bench/peers/stop.sh knows.
mkdir -p "$PEER"/{dovecot/run,dovecot/state,postfix/conf,postfix/spool,postfix/data}
chmod 755 "$PEER" "$PEER/dovecot"
chown postfix:postfix "$PEER/postfix/data" && chmod 700 "$PEER/postfix/data"
echo "$USER_ADDR:$HASH::::::" > "$PEER/dovecot/users"
chmod 644 "$PEER/dovecot/users"
cat > "$PEER/dovecot/dovecot.conf" <<CONF
protocols =
listen = 127.0.0.1
base_dir = $PEER/dovecot/run
state_dir = $PEER/dovecot/state
instance_name = mailstead-submission-bench
log_path = $PEER/dovecot/dovecot.log
ssl = no
# Postfix refuses AUTH before STARTTLS itself (smtpd_tls_auth_only).
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {
  driver = passwd-file
  args = username_format=%u $PEER/dovecot/users
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=/nonexistent
}
service auth {
  unix_listener $PEER/postfix/spool/private/auth {
    mode = 0660
    user = postfix
    group = postfix
  }
}
CONF
cat > "$PEER/postfix/conf/main.cf" <<CONF
compatibility_level = 3.6
queue_directory = $PEER/postfix/spool
data_directory = $PEER/postfix/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = submission.peer.test
mydomain = peer.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
smtp_dns_support_level = disabled
relayhost = [127.0.0.1]:$SINK_PORT
alias_maps =
local_recipient_maps =
local_transport = error:local delivery disabled
smtpd_relay_restrictions = permit_sasl_authenticated, reject
message_size_limit = 52428800
smtpd_tls_chain_files = $WORK/tls/key.pem, $WORK/tls/cert.pem
smtpd_tls_session_cache_database =
maillog_file_prefixes = /var, $PEER
maillog_file = $PEER/postfix/maillog
CONF
echo "$USER_ADDR $USER_ADDR" > "$PEER/postfix/conf/senders"
cat > "$PEER/postfix/conf/master.cf" <<CONF
127.0.0.1:$POSTFIX_PORT inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_tls_auth_only=yes
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_sasl_type=dovecot
  -o smtpd_sasl_path=private/auth
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_sender_login_maps=texthash:$PEER/postfix/conf/senders
  -o smtpd_sender_restrictions=reject_sender_login_mismatch
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
  -o smtpd_recipient_restrictions=
CONF
cat >> "$PEER/postfix/conf/master.cf" <<'CONF'
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
CONF

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); Postfix $(postconf -d -h mail_version), Dovecot $(dovecot --version | cut -d' ' -f1); load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo "$MESSAGES messages x 4 KiB to $RCPT, $CLIENTS clients from $([ "$SOURCES" -gt 0 ] && echo "$SOURCES addresses" || echo 127.0.0.1), STARTTLS + AUTH PLAIN ({ARGON2ID} $(echo "$HASH" | cut -d'$' -f4)), one server at a time, both relaying to one smtp-sink"
echo

tree_pss_kib() { # PID: Pss (smaps_rollup) of PID and its descendants, KiB
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
        total += next(int(l.split()[1]) for l in open(f"/proc/{pid}/smaps_rollup") if l.startswith("Pss:"))
    except (OSError, StopIteration):
        pass
print(total)
PY
}

run_modes() { # LABEL PORT PIDS...
  local label=$1 port=$2; shift 2
  local pids=()
  for pid in "$@"; do pids+=(--server-pid "$pid"); done
  for mode in $MODES; do
    find "$WORK/sink" -mindepth 1 -delete
    echo "$label: $mode, $MESSAGES messages ..." >&2
    "$BENCH" --addr "127.0.0.1:$port" --user "$USER_ADDR" --password "$PASSWORD" \
      --from "$USER_ADDR" --to "$RCPT" --messages "$MESSAGES" --clients "$CLIENTS" --mode "$mode" \
      --sink-dir "$WORK/sink" --sink-pid "$SINK_PID" "${pids[@]}" --label "$label" --sources "$SOURCES" \
      >>"$WORK/results.jsonl"
    sleep 2
  done
}

# (a) Postfix + Dovecot
postfix -c "$PEER/postfix/conf" start </dev/null >>"$PEER/postfix/start.log" 2>&1 \
  || { echo "Postfix did not start; its log:" >&2; tail -20 "$PEER/postfix/maillog" >&2; exit 1; }
dovecot -c "$PEER/dovecot/dovecot.conf" </dev/null >>"$PEER/dovecot/start.log" 2>&1
wait_port "$POSTFIX_PORT" 10 || { echo "Postfix does not listen" >&2; exit 1; }
for _ in $(seq 1 50); do [ -S "$PEER/postfix/spool/private/auth" ] && break; sleep 0.1; done
postfix_master=$(tr -d ' ' <"$PEER/postfix/spool/pid/master.pid")
dovecot_master=$(cat "$PEER/dovecot/run/master.pid")
run_modes Postfix "$POSTFIX_PORT" "$postfix_master" "$dovecot_master"
sleep 5
postfix_idle=$(( $(tree_rss_kib "$postfix_master") + $(tree_rss_kib "$dovecot_master") ))
postfix_idle_pss=$(( $(tree_pss_kib "$postfix_master") + $(tree_pss_kib "$dovecot_master") ))
if grep -qE 'status=(deferred|bounced)' "$PEER/postfix/maillog"; then
  echo "Postfix deferred or bounced messages:" >&2; grep -E 'status=(deferred|bounced)' "$PEER/postfix/maillog" | head -5 >&2
fi
bench/peers/stop.sh "$PEER"

# (b) Mailstead
"$BIN" serve >"$WORK/mailstead.log" 2>&1 &
MAILSTEAD_PID=$!
wait_port "$MAILSTEAD_PORT" 30 || { echo "Mailstead does not listen; its log:" >&2; tail -20 "$WORK/mailstead.log" >&2; exit 1; }
mailstead_start=$(tree_rss_kib "$MAILSTEAD_PID")
run_modes Mailstead "$MAILSTEAD_PORT" "$MAILSTEAD_PID"
sleep 5
mailstead_idle=$(tree_rss_kib "$MAILSTEAD_PID")
mailstead_idle_pss=$(tree_pss_kib "$MAILSTEAD_PID")
mailstead_hwm=$(awk '/VmHWM/ {print $2}' "/proc/$MAILSTEAD_PID/status")
queued=$(find "$WORK/mailstead/queue" -name '*.env' 2>/dev/null | wc -l)
[ "$queued" -eq 0 ] || echo "Mailstead still has $queued messages queued" >&2

python3 - "$WORK/results.jsonl" "$postfix_idle" "$mailstead_idle" "$mailstead_start" "$mailstead_hwm" \
  "$postfix_idle_pss" "$mailstead_idle_pss" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
postfix_idle, mailstead_idle, mailstead_start, mailstead_hwm, postfix_idle_pss, mailstead_idle_pss = map(int, sys.argv[2:8])
by = {(r["label"], r["mode"]): r for r in rows}
mib = lambda kib: f"{kib / 1024:.1f}"
print("| mode | server | submitted msg/s | end-to-end msg/s | end-to-end s | ratio end-to-end | p50 / p99 ms per message | server CPU ms/msg | sink CPU ms/msg | peak RSS MiB |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for mode in dict.fromkeys(r["mode"] for r in rows):
    for label in ("Mailstead", "Postfix"):
        r = by.get((label, mode))
        if r is None:
            continue
        other = by.get(("Postfix", mode))
        ratio = f"{r['per_s'] / other['per_s']:.1f}x" if label == "Mailstead" and other else ""
        name = "Mailstead" if label == "Mailstead" else "Postfix + Dovecot auth"
        print(f"| {mode} | {name} | {r['submit_per_s']:.0f} | {r['per_s']:.0f} | {r['end_to_end_s']:.2f} | {ratio} "
              f"| {r['p50_ms']:.1f} / {r['p99_ms']:.1f} | {1000 * r['server_cpu_s'] / r['messages']:.2f} "
              f"| {1000 * r['sink_cpu_s'] / r['messages']:.2f} | {mib(r['peak_rss_kib'])} |")
print()
for mode in dict.fromkeys(r["mode"] for r in rows):
    m, p = by.get(("Mailstead", mode)), by.get(("Postfix", mode))
    if m and p:
        print(f"{mode}: Mailstead / Postfix = {m['per_s'] / p['per_s']:.1f}x end-to-end, "
              f"{m['submit_per_s'] / p['submit_per_s']:.1f}x submitted")
print()
peak = lambda label, key: max(r[key] for r in rows if r["label"] == label)
print("| server (process tree) | peak RSS MiB | peak PSS MiB | idle RSS MiB | idle PSS MiB |")
print("|---|---:|---:|---:|---:|")
print(f"| Mailstead | {mib(peak('Mailstead', 'peak_rss_kib'))} (VmHWM {mib(mailstead_hwm)}; {mib(mailstead_start)} at start) "
      f"| {mib(peak('Mailstead', 'peak_pss_kib'))} | {mib(mailstead_idle)} | {mib(mailstead_idle_pss)} |")
print(f"| Postfix (master, smtpd, cleanup, qmgr, smtp, ...) + Dovecot (master, auth, ...) "
      f"| {mib(peak('Postfix', 'peak_rss_kib'))} | {mib(peak('Postfix', 'peak_pss_kib'))} | {mib(postfix_idle)} | {mib(postfix_idle_pss)} |")
print()
print("peak: sampled every 100 ms during the runs (sum over the process tree); idle: 5 s after the last run")
PY
