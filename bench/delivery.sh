#!/usr/bin/env bash
# Incoming delivery, side by side on this machine in one run: Postfix's smtp-source sends
# MESSAGES messages of 4 KiB over 20 sessions into
#   (a) Mailstead's SMTP listener (127.0.0.1:2526), which delivers into Maildir itself, and
#   (b) Debian's Postfix (127.0.0.1:2525) -> Dovecot LMTP -> Maildir (bench/peers/setup.sh),
# both durable (Mailstead fsyncs file and directory before 250; Postfix fsyncs its queue file,
# Dovecot saves with mail_fsync=optimized). Only messages found whole in the Maildir count
# (bench/maildir_timer.py). Prints messages/s for each, the ratio, and Mailstead's peak RSS.
# Usage: bench/delivery.sh [MESSAGES]   (as root; default 5000)
set -euo pipefail
cd "$(dirname "$0")/.."
MESSAGES=${1:-5000}
SESSIONS=20
WORK=$(mktemp -d /tmp/mailstead-delivery.XXXXXX)
# The peers run as vmail and postfix: they must be able to reach their directories.
chmod 755 "$WORK"
MAILSTEAD_PID=
cleanup() {
  [ -n "$MAILSTEAD_PID" ] && kill "$MAILSTEAD_PID" 2>/dev/null && wait "$MAILSTEAD_PID" 2>/dev/null
  bench/peers/stop.sh "$WORK/peer"
  rm -rf "$WORK"
}
trap cleanup EXIT

cargo build --release --locked -q --bin mailstead
BIN=$PWD/target/release/mailstead

# (b) Postfix + Dovecot
bench/peers/setup.sh "$WORK/peer"
postfix_result=$(bench/maildir_timer.py "$WORK/peer/vmail/example.test/user1/Maildir" "$MESSAGES" 600 -- \
  smtp-source -s "$SESSIONS" -m "$MESSAGES" -l 4096 -f sender@example.org -t user1@example.test 127.0.0.1:2525)

# (a) Mailstead, embedded SQLite directory, same disk
cat > "$WORK/mailstead.toml" <<CONF
[server]
hostname = "mx.mailstead.test"
data_dir = "$WORK/mailstead"
[smtp]
listen = ["127.0.0.1:2526"]
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
CONF
export MAILSTEAD_CONFIG=$WORK/mailstead.toml
"$BIN" domain add example.test >/dev/null
echo "benchmark-password" | "$BIN" mailbox add user1@example.test >/dev/null
"$BIN" serve >"$WORK/mailstead.log" 2>&1 &
MAILSTEAD_PID=$!
for _ in $(seq 1 100); do ss -ltn | grep -q '127.0.0.1:2526 ' && break; sleep 0.1; done
maildir=$("$BIN" --json mailbox show user1@example.test | python3 -c 'import json,sys; print(json.load(sys.stdin)["location"]["maildir"])')
mailstead_result=$(bench/maildir_timer.py "$maildir" "$MESSAGES" 600 -- \
  smtp-source -s "$SESSIONS" -m "$MESSAGES" -l 4096 -f sender@example.org -t user1@example.test 127.0.0.1:2526)
peak_rss_kib=$(awk '/VmHWM/ {print $2}' "/proc/$MAILSTEAD_PID/status")

python3 - "$postfix_result" "$mailstead_result" "$peak_rss_kib" "$MESSAGES" "$SESSIONS" <<'PY'
import json, sys
postfix, mailstead = json.loads(sys.argv[1]), json.loads(sys.argv[2])
rss, messages, sessions = int(sys.argv[3]), sys.argv[4], sys.argv[5]
print(f"incoming delivery: {messages} messages x 4 KiB, {sessions} sessions (smtp-source), whole in Maildir")
print(f"| server | end-to-end s | messages/s |")
print(f"|---|---:|---:|")
print(f"| Mailstead (SMTP -> Maildir) | {mailstead['end_to_end_s']} | {mailstead['per_second']} |")
print(f"| Postfix -> Dovecot LMTP -> Maildir | {postfix['end_to_end_s']} | {postfix['per_second']} |")
print(f"ratio Mailstead / Postfix+Dovecot: {mailstead['per_second'] / postfix['per_second']:.1f}x")
print(f"Mailstead peak RSS: {rss / 1024:.1f} MiB")
PY
