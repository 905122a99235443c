#!/usr/bin/env bash
# The HTTP listener under wrk: requests per second and latency for GET /metrics, GET
# /mail/config-v1.1.xml (Thunderbird autoconfig, one directory lookup per request) and GET
# /healthz, each for DURATION seconds with CONNECTIONS keep-alive connections on THREADS wrk
# threads, against `mailstead serve` with only its HTTP listener on loopback (plain HTTP).
# The server's RSS is read from /proc before, after each run, and its peak at the end.
# Dovecot and Postfix serve no HTTP, so there is nothing to run beside it.
# Usage: bench/http.sh   (as root, or any user: the server stays that user)
# Environment: DURATION (default 10), CONNECTIONS (default 50), THREADS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-2}
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
PORT=${PORT:-18080}
. bench/lib.sh
bench_workdir http
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk (scripts/test-services.sh does)" >&2; exit 1; }

echo "building (release) ..." >&2
cargo build --release --locked -q -p mailstead --bin mailstead
BIN=$TARGET/release/mailstead

export MAILSTEAD_CONFIG=$WORK/mailstead.toml
cat > "$MAILSTEAD_CONFIG" <<EOF
[server]
hostname = "mail.example.test"
data_dir = "$WORK/mailstead"
user = "nobody"
group = "nogroup"
[smtp]
listen = []
[lmtp]
listen = []
[submission]
listen = ["127.0.0.1:10587"]
listen_tls = []
[imap]
listen = ["127.0.0.1:10143"]
listen_tls = ["127.0.0.1:10993"]
[pop3]
listen = []
listen_tls = []
[managesieve]
listen = []
[http]
listen = ["127.0.0.1:$PORT"]
max_connections_per_ip = 1000
[log]
level = "warn"
EOF
"$BIN" domain add example.test >/dev/null
"$BIN" serve >"$WORK/serve.log" 2>&1 &
MAILSTEAD_PID=$!
wait_port "$PORT" 60 || { cat "$WORK/serve.log" >&2; exit 1; }

rss() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$MAILSTEAD_PID/status"; }
echo "machine: $(nproc) cores, $(uname -sr), $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk: $THREADS threads, $CONNECTIONS connections, ${DURATION}s per path; RSS at start $(rss) MiB"
printf 'path\trequests/s\tlatency avg\tlatency p99\terrors\tRSS after (MiB)\n'
for path in /metrics "/mail/config-v1.1.xml?emailaddress=user1@example.test" /healthz; do
  url="http://127.0.0.1:$PORT$path"
  curl -fsS -o /dev/null "$url" || { echo "GET $path failed" >&2; exit 1; }
  out=$(wrk --latency -t "$THREADS" -c "$CONNECTIONS" -d "${DURATION}s" "$url")
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  avg=$(awk '/^ +Latency/ {print $2; exit}' <<<"$out")
  p99=$(awk '/^ +99%/ {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx|Socket errors/ {sub(/^ +/, ""); printf "%s; ", $0}' <<<"$out")
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$path" "$rps" "$avg" "$p99" "${errors:-none}" "$(rss)"
done
echo "peak RSS: $(awk '/^VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$MAILSTEAD_PID/status") MiB"
