#!/usr/bin/env python3
"""Drives WITHIN (RFC 5032), SEARCHRES (RFC 5182) and CONTEXT=SEARCH (RFC 5267) with Python's
imaplib over TLS, on mail delivered through SMTP (or LMTP), with a second session changing
flags while the first keeps a search updated.

Usage:
  search_extensions.py --host H --imaps-port P --imap-port P2 --cafile CERT
                       --user U --password PW --deliver smtp://H:PORT|lmtp://H:PORT

The helpers (connections, raw commands, delivery, the first-mismatch report) are the imaplib
suite's. The same script runs against Dovecot (MAILSTEAD_IMAP_TEST_TARGET=dovecot) to check it.
"""

import argparse
import imaplib
import re
import smtplib
import ssl
import sys
import time
import traceback

from imaplib_suite import (
    CONNECTIONS,
    STEP,
    Mismatch,
    check,
    crlf,
    deliver,
    fresh_caps,
    login,
    ok,
    raw,
    step,
    text,
)


def message(rcpt, subject):
    return crlf(
        f"""From: Alice Example <alice@client.test>
To: <{rcpt}>
Subject: {subject}
Date: Mon, 02 Mar 2026 10:00:00 +0000
Message-ID: <{subject.replace(' ', '-')}@client.test>

The message called {subject}.
"""
    )


def uids_of(data):
    return sorted(int(u) for u in re.findall(r"UID (\d+)", text(data)))


def search_uids(conn, *criteria):
    data = ok(conn.uid("SEARCH", *criteria), f"UID SEARCH {criteria}")
    return sorted(int(u) for u in text(data).split())


def esearch(lines, tag):
    found = [line for line in lines if line.startswith(f'* ESEARCH (TAG "{tag}")')]
    check(len(found) == 1, f"one ESEARCH for {tag} expected, got {lines!r}")
    return found[0]


def tag_of(tagged):
    return tagged.split(" ", 1)[0]


def run(args):
    step("deliver four messages through " + args.deliver)
    for subject in ["alpha", "beta", "gamma", "delta"]:
        deliver(args.deliver, args.user, message(args.user, subject))

    step("log in two sessions and select INBOX")
    first = login(args)
    second = login(args)
    caps = fresh_caps(first)
    for capability in ["WITHIN", "SEARCHRES", "CONTEXT=SEARCH", "ESEARCH"]:
        check(capability in caps, f"{capability} advertised: {sorted(caps)}")
    # Delivery may be a moment behind the SMTP reply's OK on some servers.
    for _ in range(50):
        count = int(ok(first.select("INBOX"), "SELECT")[0])
        if count == 4:
            break
        time.sleep(0.1)
    check(count == 4, f"4 messages in INBOX, found {count}")
    ok(second.select("INBOX"), "SELECT")
    every = search_uids(first, "ALL")
    check(len(every) == 4, f"four UIDs: {every}")
    alpha, beta, gamma, delta = every

    step("WITHIN: everything arrived within the hour, nothing before it")
    check(search_uids(first, "YOUNGER", "3600") == every, "YOUNGER 3600 finds all")
    check(search_uids(first, "OLDER", "3600") == [], "OLDER 3600 finds none")

    step("SEARCHRES: SAVE answers nothing, FETCH $ and STORE $ use the result")
    status, lines, _ = raw(first, "UID SEARCH RETURN (SAVE) OR SUBJECT beta SUBJECT delta")
    check(status == "OK" and lines == [], f"SAVE alone: only OK, got {status} {lines!r}")
    data = ok(first.fetch("$", "(UID FLAGS)"), "FETCH $")
    check(uids_of(data) == [beta, delta], f"FETCH $ gives beta and delta: {text(data)}")
    ok(first.store("$", "+FLAGS", "(\\Flagged)"), "STORE $")
    check(search_uids(first, "FLAGGED") == [beta, delta], "STORE $ flagged beta and delta")
    check(search_uids(first, "UID", "$", "SUBJECT", "beta") == [beta], "UID $ with a key")

    step("SEARCHRES: SAVE with MIN keeps the MIN message; a NO empties $")
    status, lines, tagged = raw(first, "UID SEARCH RETURN (SAVE MIN) FLAGGED")
    check(status == "OK", f"SAVE MIN: {tagged}")
    check(f"MIN {beta}" in esearch(lines, tag_of(tagged)), f"MIN {beta}: {lines!r}")
    check(search_uids(first, "UID", "$") == [beta], "$ holds the MIN message")
    status, _, tagged = raw(first, "UID SEARCH RETURN (SAVE) CHARSET X-NO-SUCH ALL")
    check(status == "NO" and "BADCHARSET" in tagged, f"unknown charset: {tagged}")
    data = ok(first.fetch("$", "(UID)"), "FETCH $ after a failed SAVE")
    check(uids_of(data) == [], f"$ is empty after the NO: {text(data)}")

    step("CONTEXT=SEARCH: PARTIAL returns a window of the results")
    status, lines, tagged = raw(first, "UID SEARCH RETURN (PARTIAL 2:3) ALL")
    check(status == "OK", f"PARTIAL: {tagged}")
    line = esearch(lines, tag_of(tagged))
    check(line.endswith(f"PARTIAL (2:3 {beta}:{gamma})"), f"PARTIAL (2:3 ...): {line}")

    step("CONTEXT=SEARCH: UPDATE reports another session's flag changes")
    status, lines, tagged = raw(first, "UID SEARCH RETURN (ALL UPDATE) FLAGGED")
    check(status == "OK", f"UPDATE: {tagged}")
    update_tag = tag_of(tagged)
    check(
        esearch(lines, update_tag).endswith(f"ALL {beta},{delta}"),
        f"the initial result: {lines!r}",
    )
    ok(second.uid("STORE", str(alpha), "+FLAGS", "(\\Flagged)"), "the other session flags")
    ok(second.uid("STORE", str(beta), "-FLAGS", "(\\Flagged)"), "the other session unflags")
    _, lines, _ = raw(first, "NOOP")
    updates = [line for line in lines if line.startswith("* ESEARCH")]
    joined = " ".join(updates)
    check(updates, f"updates after the other session's STORE: {lines!r}")
    check(f"ADDTO (0 {alpha})" in joined, f"alpha added: {updates!r}")
    check(f"REMOVEFROM (0 {beta})" in joined, f"beta removed: {updates!r}")

    step("CONTEXT=SEARCH: an expunged match leaves before the EXPUNGE is told")
    ok(second.uid("STORE", str(delta), "+FLAGS", "(\\Deleted)"), "STORE \\Deleted")
    ok(second.expunge(), "EXPUNGE")
    _, lines, _ = raw(first, "NOOP")
    removal = [i for i, l in enumerate(lines) if l.startswith("* ESEARCH") and "REMOVEFROM" in l]
    expunge = [i for i, l in enumerate(lines) if l.endswith(" EXPUNGE")]
    check(removal and expunge, f"REMOVEFROM and EXPUNGE: {lines!r}")
    check(removal[0] < expunge[0], f"REMOVEFROM first: {lines!r}")
    check(f"REMOVEFROM (0 {delta})" in lines[removal[0]], f"delta removed: {lines!r}")

    step("CONTEXT=SEARCH: CANCELUPDATE stops the updates")
    status, _, tagged = raw(first, f'CANCELUPDATE "{update_tag}"')
    check(status == "OK", f"CANCELUPDATE: {tagged}")
    ok(second.uid("STORE", str(gamma), "+FLAGS", "(\\Flagged)"), "flag gamma")
    _, lines, _ = raw(first, "NOOP")
    check(not any(l.startswith("* ESEARCH") for l in lines), f"no more updates: {lines!r}")

    for conn in (first, second):
        conn.logout()
    print("search extensions: all steps passed", flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--imaps-port", type=int, required=True)
    parser.add_argument("--imap-port", type=int, required=True)
    parser.add_argument("--cafile", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--deliver", required=True)
    args = parser.parse_args()
    try:
        run(args)
    except (Mismatch, imaplib.IMAP4.error, OSError, ssl.SSLError, smtplib.SMTPException) as err:
        print(f"\nFAILED at step '{STEP[0]}': {type(err).__name__}: {err}", flush=True)
        traceback.print_exc(file=sys.stdout)
        for conn in CONNECTIONS[-2:]:
            print(f"\nlast lines of connection {id(conn):x}:")
            log = getattr(conn, "_cmd_log", {})
            for i in range(conn._cmd_log_len):
                idx = (getattr(conn, "_cmd_log_idx", 0) + i) % conn._cmd_log_len
                if idx in log:
                    print("   ", log[idx][0])
        sys.exit(1)


if __name__ == "__main__":
    main()
