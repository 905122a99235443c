#!/usr/bin/env bash
# Benchmarks Mailstead's directory on SQLite, PostgreSQL and MariaDB, side by side with
# Dovecot's SQL auth on the same MariaDB data. The one command:
#
#   bench/directory.sh [directory-bench options]      (--help lists them)
#
# Starts PostgreSQL and MariaDB if they are down, installs dovecot-mysql if missing, builds in
# release and runs. Prints markdown tables on stdout (progress on stderr); writes nothing into
# the repository. Every database it creates (mstbench_<pid>) is dropped at the end.
# Needs root (it starts the databases and a private Dovecot instance).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    echo "starting PostgreSQL" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
fi

if ! mysqladmin --protocol=tcp -h 127.0.0.1 -P 3306 -u root ping >/dev/null 2>&1; then
    echo "starting MariaDB" >&2
    mkdir -p /run/mysqld
    chown mysql:mysql /run/mysqld
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
fi

for _ in $(seq 1 100); do
    if pg_isready -q -h 127.0.0.1 -p 5432 &&
        mysqladmin --protocol=tcp -h 127.0.0.1 -P 3306 -u root ping >/dev/null 2>&1; then
        break
    fi
    sleep 0.2
done

# doveadm makes the BLF-CRYPT hash; Dovecot with its MySQL driver is the comparison.
if [ ! -x /usr/bin/doveadm ] || [ ! -e /usr/lib/dovecot/modules/libdriver_mysql.so ]; then
    echo "installing dovecot-core and dovecot-mysql" >&2
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q dovecot-core dovecot-mysql >&2
fi

exec cargo run --release -p mailstead-bench --bin directory-bench -- "$@"
