#!/usr/bin/env bash
# Starts Debian's Postfix and Dovecot as real peers on loopback, for end-to-end tests and
# benchmarks: Postfix MX on 127.0.0.1:2525 hands mail for example.test to Dovecot LMTP on
# 127.0.0.1:24024, which writes Maildir under $PEER/vmail/<domain>/<user>/Maildir; Dovecot
# IMAP on 127.0.0.1:14300. Users: user1..user50@example.test with password "pass", stored as
# {PLAIN}pass, or as the lines of the passwd-file $PEER_USERS if set (bench/imap.sh gives both
# servers the same hash strings that way).
# Usage: bench/peers/setup.sh PEER_DIR   (as root; bench/peers/stop.sh PEER_DIR stops it)
# Dovecot settings in PEER_DIR/dovecot/extra.conf, if the caller wrote one before, are
# included last (bench/idle.sh raises process and client limits there).
set -euo pipefail
PEER=${1:?usage: setup.sh PEER_DIR}
mkdir -p "$PEER"
PEER=$(cd "$PEER" && pwd)

if ! dpkg -s postfix dovecot-imapd dovecot-lmtpd >/dev/null 2>&1; then
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  echo "postfix postfix/mailname string localhost" | debconf-set-selections
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postfix dovecot-imapd dovecot-lmtpd
fi

getent group vmail >/dev/null || groupadd -g 5000 vmail
getent passwd vmail >/dev/null || useradd -u 5000 -g vmail -d "$PEER/vmail" -s /usr/sbin/nologin -M vmail
mkdir -p "$PEER"/{dovecot/run,dovecot/state,vmail,postfix/conf,postfix/spool,postfix/data}
chmod 755 "$PEER" "$PEER/dovecot"
chown vmail:vmail "$PEER/vmail"
chown postfix:postfix "$PEER/postfix/data" && chmod 700 "$PEER/postfix/data"

if [ -n "${PEER_USERS:-}" ]; then
  cp "$PEER_USERS" "$PEER/dovecot/users"
else
  for i in $(seq 1 50); do echo "user$i@example.test:{PLAIN}pass::::::"; done > "$PEER/dovecot/users"
fi
chmod 644 "$PEER/dovecot/users"

cat > "$PEER/dovecot/dovecot.conf" <<CONF
protocols = imap lmtp
listen = 127.0.0.1
base_dir = $PEER/dovecot/run
state_dir = $PEER/dovecot/state
instance_name = mailstead-peer-dovecot
log_path = $PEER/dovecot/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 5000
last_valid_uid = 5000
mail_uid = vmail
mail_gid = vmail
mail_location = maildir:~/Maildir
mail_max_userip_connections = 1000
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $PEER/dovecot/users
}
userdb {
  driver = static
  args = uid=vmail gid=vmail home=$PEER/vmail/%d/%n
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = 14300
  }
  inet_listener imaps {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = 24024
  }
}
protocol lmtp {
  postmaster_address = postmaster@example.test
}
!include_try $PEER/dovecot/extra.conf
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
myhostname = mx.peer.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtp_dns_support_level = disabled
alias_maps =
local_recipient_maps =
local_transport = error:local delivery disabled
virtual_mailbox_domains = example.test
virtual_mailbox_maps = texthash:$PEER/postfix/conf/vmailbox
virtual_transport = lmtp:inet:127.0.0.1:24024
smtpd_relay_restrictions = reject_unauth_destination
default_transport = error:outbound delivery disabled
relay_transport = error:outbound delivery disabled
message_size_limit = 52428800
maillog_file_prefixes = /var, $PEER
maillog_file = $PEER/postfix/maillog
CONF
for i in $(seq 1 50); do echo "user$i@example.test ok"; done > "$PEER/postfix/conf/vmailbox"
cat > "$PEER/postfix/conf/master.cf" <<'CONF'
127.0.0.1:2525 inet n   -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
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
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
CONF

# The daemons keep the caller's stdio open unless redirected.
dovecot -c "$PEER/dovecot/dovecot.conf" </dev/null >>"$PEER/dovecot/start.log" 2>&1
postfix -c "$PEER/postfix/conf" start </dev/null >>"$PEER/postfix/start.log" 2>&1
for _ in $(seq 1 100); do
  ss -ltn | grep -q '127.0.0.1:2525 ' && ss -ltn | grep -q '127.0.0.1:24024 ' \
    && ss -ltn | grep -q '127.0.0.1:14300 ' && exit 0
  sleep 0.1
done
echo "peers did not start; see $PEER/dovecot/dovecot.log and $PEER/postfix/maillog" >&2
exit 1
