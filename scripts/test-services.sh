#!/usr/bin/env bash
# Make sure everything the test suite talks to is installed and running: PostgreSQL and
# MariaDB (backend tests), and Debian's Dovecot (with Pigeonhole's sieve-test), Postfix, mail
# clients (sieve-connect among them) and dkimpy (real peers).
# Idempotent; run as root. Used by .ci/run and by `scripts/test.sh`.
set -euo pipefail

need_packages=() need_tools=()
for pkg in postgresql mariadb-server dovecot-core dovecot-imapd dovecot-lmtpd dovecot-pop3d dovecot-sieve sieve-connect postfix swaks isync msmtp python3-dkim fetchmail; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_packages+=("$pkg")
done
# Tools only, without what they recommend: wrk (bench/http.sh), systemd (systemd-analyze verifies
# dist/mailstead.service), util-linux (prlimit), passwd (useradd), fail2ban (fail2ban-regex
# checks the filter in dist/fail2ban against a line the server logged), chromium (the web
# console's browser test, tests/console_browser.rs), bind9-utils (named-checkzone loads what
# `mailstead dns` prints).
for pkg in wrk systemd util-linux passwd fail2ban chromium bind9-utils; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_tools+=("$pkg")
done
if [ ${#need_packages[@]} -gt 0 ] || [ ${#need_tools[@]} -gt 0 ]; then
  echo "installing: ${need_packages[*]} ${need_tools[*]}"
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  echo "postfix postfix/mailname string localhost" | debconf-set-selections
  # Wait for another apt (unattended upgrades, a package install in progress) instead of failing.
  apt-get -o DPkg::Lock::Timeout=600 update -q
  if [ ${#need_packages[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q "${need_packages[@]}"
  fi
  if [ ${#need_tools[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${need_tools[@]}"
  fi
fi

# PostgreSQL on 127.0.0.1:5432 with trust auth for local TCP and a database `test`.
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  cluster_version=$(ls /etc/postgresql | sort -V | tail -n 1)
  pg_ctlcluster --skip-systemctl-redirect "$cluster_version" main start || true
fi
for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
pg_isready -h 127.0.0.1 -p 5432
if ! psql -h 127.0.0.1 -U postgres -d test -c 'SELECT 1' >/dev/null 2>&1; then
  su postgres -c "psql -c 'CREATE DATABASE test'" >/dev/null 2>&1 || true
fi
psql -h 127.0.0.1 -U postgres -d test -c 'SELECT 1' >/dev/null

# MariaDB on 127.0.0.1:3306, root without a password, database `test`.
if ! mariadb -h 127.0.0.1 -P 3306 -u root -e 'SELECT 1' >/dev/null 2>&1; then
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  for _ in $(seq 1 30); do mariadb -h 127.0.0.1 -P 3306 -u root -e 'SELECT 1' >/dev/null 2>&1 && break; sleep 1; done
fi
mariadb -h 127.0.0.1 -P 3306 -u root -e 'CREATE DATABASE IF NOT EXISTS test'
echo "test services: PostgreSQL and MariaDB are up"

# The tests run their own Dovecot and Postfix instances on ports they choose and touch no
# other: a system-wide Postfix or Dovecot (or a `mailstead serve`) may keep running beside them.

# The IMAP libraries webmails use (crates/mailstead/tests/webmail_libraries.rs), pinned:
# imapflow under the test's data directory (from its package-lock.json), imapclient for python3.
command -v node >/dev/null 2>&1 || \
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q nodejs npm
webmail_data="$(dirname "$0")/../crates/mailstead/tests/data"
# playwright-core (pinned there too) drives chromium for tests/console_browser.rs.
if ! node -e 'process.exit(require(process.argv[1]).version === "2.10.2" ? 0 : 1)' \
    "$webmail_data/node_modules/imapflow/package.json" 2>/dev/null ||
   ! node -e 'process.exit(require(process.argv[1]).version === "1.65.2" ? 0 : 1)' \
    "$webmail_data/node_modules/playwright-core/package.json" 2>/dev/null; then
  (cd "$webmail_data" && npm ci --no-audit --no-fund --loglevel=error)
fi
imapclient_version=4.1.0
if ! python3 -c "import imapclient, sys; sys.exit(imapclient.__version__ != '$imapclient_version')" 2>/dev/null; then
  # Debian's own python3 refuses a plain pip install (PEP 668).
  python3 -m pip install --quiet "imapclient==$imapclient_version" 2>/dev/null || \
    python3 -m pip install --quiet --break-system-packages "imapclient==$imapclient_version"
fi
# schemathesis checks the HTTP API against its OpenAPI document (crates/mailstead/tests/http_api.rs).
schemathesis_version=4.32.5
if ! python3 -m pip show schemathesis 2>/dev/null | grep -qx "Version: $schemathesis_version"; then
  python3 -m pip install --quiet "schemathesis==$schemathesis_version" 2>/dev/null || \
    python3 -m pip install --quiet --break-system-packages "schemathesis==$schemathesis_version"
fi
echo "test services: imapflow, imapclient and schemathesis are installed"
