#!/usr/bin/env python3
"""Regenerates doveadm-vectors.txt with Dovecot's `doveadm pw`.

Needs Debian's dovecot-core (`apt-get install dovecot-core`); run from any
directory: python3 make-doveadm-vectors.py > doveadm-vectors.txt

Every stored value is doveadm's output. Some lines are re-labelled copies
(scheme prefix removed for bare crypt strings, `{DES-CRYPT}` shown as
`{CRYPT}`, scheme name in lower case); each such line except the bare ones
is checked with `doveadm pw -t` before it is written, and every generated
line is checked the same way, so the file only holds values Dovecot accepts.
"""

import subprocess
import sys

PASSWORDS = [
    "secret",
    "",
    "x",
    "pässwörd €uro 日本語",
    # 92 bytes: past bcrypt's 72-byte and DES's 8-byte cut-off.
    "Tr0ub4dor&3 correct horse battery staple, then 0123456789 and more to pass 72 bytes!!",
]

# (doveadm -s argument, expected scheme_name(), extra doveadm args)
CHEAP = [
    ("BLF-CRYPT", "BLF-CRYPT", []),
    ("SHA512-CRYPT", "SHA512-CRYPT", []),
    ("SHA256-CRYPT", "SHA256-CRYPT", []),
    ("MD5-CRYPT", "MD5-CRYPT", []),
    ("MD5", "MD5-CRYPT", []),
    ("CRYPT", "BLF-CRYPT", []),  # Dovecot 2.3 writes bcrypt for {CRYPT}
    ("DES-CRYPT", "DES-CRYPT", []),
    ("SSHA", "SSHA", []),
    ("SSHA256", "SSHA256", []),
    ("SSHA512", "SSHA512", []),
    ("SMD5", "SMD5", []),
    ("SHA", "SHA1", []),
    ("SHA1", "SHA1", []),
    ("SHA256", "SHA256", []),
    ("SHA512", "SHA512", []),
    ("PLAIN", "PLAIN", []),
    ("CLEAR", "PLAIN", []),
    ("CLEARTEXT", "PLAIN", []),
    ("PLAIN-MD5", "PLAIN-MD5", []),
    ("LDAP-MD5", "PLAIN-MD5", []),
    ("SSHA.HEX", "SSHA", []),
    ("SSHA256.HEX", "SSHA256", []),
    ("SSHA512.HEX", "SSHA512", []),
    ("SMD5.HEX", "SMD5", []),
    ("SHA.HEX", "SHA1", []),
    ("SHA256.HEX", "SHA256", []),
    ("SHA512.HEX", "SHA512", []),
    ("SHA512.B64", "SHA512", []),
    ("PLAIN-MD5.B64", "PLAIN-MD5", []),
    ("PLAIN.HEX", "PLAIN", []),
    ("PLAIN.B64", "PLAIN", []),
]

# Costlier ones, for fewer passwords.
SELECTED = [
    ("SHA512-CRYPT", "SHA512-CRYPT", ["-r", "10000"], ["secret", "pässwörd €uro 日本語"]),
    ("SHA256-CRYPT", "SHA256-CRYPT", ["-r", "1000"], ["secret"]),
    # $2y$10$: what MUM and PHP's password_hash() write.
    ("BLF-CRYPT", "BLF-CRYPT", ["-r", "10"], ["secret", "pässwörd €uro 日本語"]),
    # Argon2 at Dovecot's defaults costs seconds in a debug build: keep few.
    ("ARGON2ID", "ARGON2ID", [], ["pässwörd €uro 日本語"]),
    ("ARGON2I", "ARGON2I", [], ["secret"]),
]

# Crypt schemes whose output is also written without its prefix.
BARE = {"BLF-CRYPT", "SHA512-CRYPT", "SHA256-CRYPT", "MD5-CRYPT", "DES-CRYPT", "ARGON2ID"}


def doveadm(*args):
    return subprocess.run(
        ["doveadm", "pw", *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def checked(stored, password):
    out = subprocess.run(
        ["doveadm", "pw", "-t", stored, "-p", password], capture_output=True, text=True
    )
    if out.returncode != 0:
        sys.exit(f"doveadm pw -t rejected {stored!r} for {password!r}: {out.stderr}")
    return stored


def main():
    version = subprocess.run(
        ["dovecot", "--version"], check=True, capture_output=True, text=True
    ).stdout.strip()
    rows = []

    def emit(name, password, stored):
        rows.append(f"{name}\t{password}\t{stored}")

    def generate(scheme, name, extra, passwords, bare_count):
        for i, pw in enumerate(passwords):
            stored = checked(doveadm("-s", scheme, "-p", pw, *extra), pw)
            emit(name, pw, stored)
            if scheme in BARE and i < bare_count:
                emit(name, pw, stored.split("}", 1)[1])

    for scheme, name, extra in CHEAP:
        generate(scheme, name, extra, PASSWORDS, bare_count=3)
    for scheme, name, extra, passwords in SELECTED:
        generate(scheme, name, extra, passwords, bare_count=1)

    # Same doveadm output under another name Dovecot also accepts.
    des = doveadm("-s", "DES-CRYPT", "-p", "secret").split("}", 1)[1]
    emit("DES-CRYPT", "secret", checked("{CRYPT}" + des, "secret"))
    sha = doveadm("-s", "SHA512-CRYPT", "-p", "secret").split("}", 1)[1]
    emit("SHA512-CRYPT", "secret", checked("{CRYPT}" + sha, "secret"))
    md5 = doveadm("-s", "MD5-CRYPT", "-p", "secret").split("}", 1)[1]
    emit("MD5-CRYPT", "secret", checked("{crypt}" + md5, "secret"))
    ssha = doveadm("-s", "SSHA256", "-p", "secret").split("}", 1)[1]
    emit("SSHA256", "secret", checked("{ssha256}" + ssha, "secret"))
    blf = doveadm("-s", "BLF-CRYPT", "-p", "secret").split("}", 1)[1]
    emit("BLF-CRYPT", "secret", checked("{Blf-Crypt}" + blf, "secret"))

    package = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", "dovecot-core"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    print(f"# Password test vectors made by Dovecot {version} (Debian dovecot-core")
    print(f"# {package}) with `doveadm pw -s <SCHEME> -p <password>`")
    print("# (plus `-r <rounds>` where the stored value shows a cost), by")
    print("# make-doveadm-vectors.py beside this file. Every line but the bare")
    print("# ones was checked with `doveadm pw -t <stored> -p <password>`; bare")
    print("# lines are a checked line's value with its {SCHEME} prefix removed.")
    print("#")
    print("# Format: expected scheme_name() <TAB> password (UTF-8, may be empty)")
    print("# <TAB> stored value. Lines starting with '#' are comments.")
    for row in rows:
        print(row)


main()
