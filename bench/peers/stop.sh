#!/usr/bin/env bash
# Stops the peers started by bench/peers/setup.sh PEER_DIR.
PEER=${1:?usage: stop.sh PEER_DIR}
postfix -c "$PEER/postfix/conf" stop >/dev/null 2>&1 || true
doveadm -c "$PEER/dovecot/dovecot.conf" stop >/dev/null 2>&1 || true
