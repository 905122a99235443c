#!/usr/bin/env bash
# COMPRESS=DEFLATE (RFC 4978), side by side on this machine in one run: imap-bench compress
# (bench/src/imap/compress.rs) logs in as user1, with and without COMPRESS DEFLATE, selects
# INBOX (MESSAGES messages, default 1000) and FETCHes every message, once (BODY.PEEK[]) and
# once (ENVELOPE), REPEAT times each after one untimed warm-up; it reports the bytes on the wire
# and the bytes they inflate to per FETCH, and the server's CPU per FETCH (its whole process
# tree, from /proc), against
#   (a) Debian's Dovecot (bench/peers/setup.sh) with its zlib and imap_zlib plugins (deflate
#       level 6, its default), then
#   (b) Mailstead (level 6 too).
# Then the memory an idle connection costs, with and without COMPRESS: IDLE (default 300)
# connections log in, (turn COMPRESS on,) SELECT INBOX, FETCH one message and wait; the
# server's RSS (its process tree's) per connection.
# Usage: bench/compress.sh   (as root)
# Environment: MESSAGES (default 1000), REPEAT (default 5), IDLE (default 300), SERVERS
# ("dovecot mailstead", the default, or one of them).
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=1
MESSAGES=${MESSAGES:-1000}
REPEAT=${REPEAT:-5}
IDLE=${IDLE:-300}
SERVERS=${SERVERS:-dovecot mailstead}
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
. bench/lib.sh
bench_workdir compress

echo "building (release) ..." >&2
if [[ " $SERVERS " == *" mailstead "* ]]; then
  cargo build --release --locked -q -p mailstead -p mailstead-bench --bin mailstead --bin imap-bench
else
  cargo build --release --locked -q -p mailstead-bench --bin imap-bench
fi
BIN=$TARGET/release/mailstead
BENCH=$TARGET/release/imap-bench
"$BENCH" gen-data --dir "$WORK/data" --users 1 --messages "$MESSAGES"

echo "machine: $(nproc) cores, $(uname -sr); $(dovecot --version 2>/dev/null | sed 's/^/Dovecot /'); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "data: 1 user x $MESSAGES messages; $REPEAT timed FETCHes of each kind"
printf 'server\tstream\tcommand\twire bytes\tinflated bytes\tserver CPU ms\n'

measure() { # LABEL PORT PID
  "$BENCH" compress --addr "127.0.0.1:$2" --pid "$3" --label "$1" --repeat "$REPEAT"
  "$BENCH" compress --addr "127.0.0.1:$2" --pid "$3" --label "$1" --repeat "$REPEAT" --compress
  "$BENCH" compress --addr "127.0.0.1:$2" --pid "$3" --label "$1" --idle "$IDLE"
  "$BENCH" compress --addr "127.0.0.1:$2" --pid "$3" --label "$1" --idle "$IDLE" --compress
}

status=0
if [[ " $SERVERS " == *" dovecot "* ]]; then
  mkdir -p "$WORK/peer/dovecot"
  cat > "$WORK/peer/dovecot/extra.conf" <<'CONF'
mail_plugins = $mail_plugins zlib
mail_max_userip_connections = 10000
default_process_limit = 10000
default_client_limit = 20000
service imap {
  process_limit = 10000
}
protocol imap {
  mail_plugins = $mail_plugins imap_zlib
}
CONF
  dovecot_start_with_data
  measure Dovecot 14300 "$(cat "$WORK/peer/dovecot/run/master.pid")" || status=1
  bench/peers/stop.sh "$WORK/peer"
  wait_port_free 14300
fi
if [[ " $SERVERS " == *" mailstead "* ]]; then
  mailstead_write_config "max_connections_per_user = 10000
max_connections_per_ip = 20000"
  if mailstead_load_users && mailstead_start; then
    measure Mailstead 1143 "$MAILSTEAD_PID" || status=1
  else
    status=1
  fi
fi
exit $status
