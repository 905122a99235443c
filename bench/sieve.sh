#!/usr/bin/env bash
# Delivery through a Sieve script, side by side on this machine in one run: Postfix's
# smtp-source sends MESSAGES messages of 4 KiB over 20 sessions to user1@example.test, whose
# active script (the same file on both sides, Roundcube's layout: 20 rules that do not match,
# then one that flags the message and files it into "Filtered") decides where each goes:
#   (a) Mailstead's SMTP listener (127.0.0.1:2526): Sieve runs in its own delivery, and
#   (b) Debian's Postfix (127.0.0.1:2525) -> Dovecot LMTP with Pigeonhole -> Maildir.
# Only messages found whole in the Filtered folder count (bench/maildir_timer.py). Prints
# messages/s for each, the ratio, and Mailstead's idle and peak RSS.
# Usage: bench/sieve.sh [MESSAGES]   (as root; default 3000)
set -euo pipefail
cd "$(dirname "$0")/.."
MESSAGES=${1:-3000}
SESSIONS=20
WORK=$(mktemp -d /tmp/mailstead-sieve.XXXXXX)
chmod 755 "$WORK"
MAILSTEAD_PID=
cleanup() {
  [ -n "$MAILSTEAD_PID" ] && kill "$MAILSTEAD_PID" 2>/dev/null && wait "$MAILSTEAD_PID" 2>/dev/null
  bench/peers/stop.sh "$WORK/peer"
  rm -rf "$WORK"
}
trap cleanup EXIT

if ! command -v sievec >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q dovecot-sieve >/dev/null
fi
cargo build --release --locked -q --bin mailstead
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/mailstead

# The one script both sides run.
{
  echo 'require ["fileinto", "mailbox", "imap4flags", "envelope"];'
  for i in $(seq 1 20); do
    echo "# rule:[rule $i]"
    echo "if anyof (header :contains \"subject\" \"project-$i\", address :is \"from\" \"boss$i@example.net\") {"
    echo "  fileinto :create \"Projects/p$i\";"
    echo "  stop;"
    echo "}"
  done
  echo '# rule:[bench]'
  echo 'if allof (header :contains "subject" "bench", address :domain :is "from" "example.org") {'
  echo '  addflag "\\Flagged";'
  echo '  fileinto :create "Filtered";'
  echo '  stop;'
  echo '}'
} > "$WORK/bench.sieve"

install_script() { # HOME_DIR OWNER
  mkdir -p "$1/sieve"
  cp "$WORK/bench.sieve" "$1/sieve/bench.sieve"
  ln -sfn sieve/bench.sieve "$1/.dovecot.sieve"
  chown -R "$2" "$1"
}

# (b) Postfix + Dovecot LMTP + Pigeonhole
mkdir -p "$WORK/peer/dovecot"
cat > "$WORK/peer/dovecot/extra.conf" <<CONF
protocol lmtp {
  mail_plugins = \$mail_plugins sieve
}
plugin {
  sieve = file:~/sieve;active=~/.dovecot.sieve
}
CONF
bench/peers/setup.sh "$WORK/peer"
install_script "$WORK/peer/vmail/example.test/user1" vmail:vmail
postfix_result=$(bench/maildir_timer.py "$WORK/peer/vmail/example.test/user1/Maildir/.Filtered" "$MESSAGES" 600 -- \
  smtp-source -s "$SESSIONS" -m "$MESSAGES" -l 4096 -S "bench message" -f sender@example.org -t user1@example.test 127.0.0.1:2525)

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
read -r home filtered < <("$BIN" --json mailbox show user1@example.test | python3 -c '
import json, sys
location = json.load(sys.stdin)["location"]
sep = "/" if location["layout"] == "Fs" else "/."
print(location["home"], location["maildir"] + sep + "Filtered")')
install_script "$home" "$(stat -c %U:%G "$WORK/mailstead")"
idle_rss_kib=$(awk '/VmRSS/ {print $2}' "/proc/$MAILSTEAD_PID/status")
mailstead_result=$(bench/maildir_timer.py "$filtered" "$MESSAGES" 600 -- \
  smtp-source -s "$SESSIONS" -m "$MESSAGES" -l 4096 -S "bench message" -f sender@example.org -t user1@example.test 127.0.0.1:2526)
peak_rss_kib=$(awk '/VmHWM/ {print $2}' "/proc/$MAILSTEAD_PID/status")

python3 - "$postfix_result" "$mailstead_result" "$idle_rss_kib" "$peak_rss_kib" "$MESSAGES" "$SESSIONS" <<'PY'
import json, sys
postfix, mailstead = json.loads(sys.argv[1]), json.loads(sys.argv[2])
idle, peak, messages, sessions = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
print(f"delivery through a 21-rule Sieve script: {messages} messages x 4 KiB, {sessions} sessions (smtp-source), whole in Filtered")
print("| server | end-to-end s | messages/s |")
print("|---|---:|---:|")
print(f"| Mailstead (SMTP -> Sieve -> Maildir) | {mailstead['end_to_end_s']} | {mailstead['per_second']} |")
print(f"| Postfix -> Dovecot LMTP + Pigeonhole -> Maildir | {postfix['end_to_end_s']} | {postfix['per_second']} |")
print(f"ratio Mailstead / Postfix+Dovecot: {mailstead['per_second'] / postfix['per_second']:.1f}x")
print(f"Mailstead RSS: idle {idle / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB")
PY
