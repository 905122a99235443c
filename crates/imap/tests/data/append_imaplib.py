#!/usr/bin/env python3
"""Python's imaplib against MULTIAPPEND, REPLACE, SAVEDATE, OBJECTID and PREVIEW.

Usage: append_imaplib.py PORT USER PASSWORD

imaplib sends one literal per command itself; MULTIAPPEND and REPLACE go as raw arguments with
LITERAL+ literals (`{n+}`), the way a client that knows the extensions sends them. Prints each
check; exits 1 at the first mismatch.
"""

import imaplib
import re
import sys

imaplib.Commands.setdefault("REPLACE", ("SELECTED",))


def check(condition, what, got):
    if not condition:
        print(f"MISMATCH: {what}: {got!r}", flush=True)
        sys.exit(1)
    print(f"ok: {what}", flush=True)


def plus_literal(message):
    return "{%d+}\r\n%s" % (len(message.encode()), message)


def message(subject, body):
    return f"From: a@example.org\r\nSubject: {subject}\r\n\r\n{body}\r\n"


def main():
    port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    imap = imaplib.IMAP4("127.0.0.1", port)
    imap.login(user, password)
    caps = imap.capability()[1][0].decode().split()
    for cap in ("MULTIAPPEND", "REPLACE", "SAVEDATE", "OBJECTID", "PREVIEW"):
        check(cap in caps, f"{cap} advertised", caps)

    typ, data = imap.create("Py")
    check(typ == "OK", "CREATE", data)

    # MULTIAPPEND: two messages, each with its flags.
    args = "(\\Seen) " + plus_literal(message("one", "first body")) + " (\\Flagged) " + plus_literal(
        message("two", "second body")
    )
    typ, data = imap._simple_command("APPEND", "Py", args)
    check(typ == "OK", "MULTIAPPEND", data)
    code = imap.response("APPENDUID")[1][0]
    check(code is not None and code.split()[1] == b"1:2", "APPENDUID 1:2", code)

    typ, data = imap.select("Py")
    check(typ == "OK" and data[0] == b"2", "SELECT", data)
    mailboxid = imap.response("MAILBOXID")[1][0]
    check(mailboxid is not None and mailboxid.startswith(b"(F"), "MAILBOXID on SELECT", mailboxid)

    typ, data = imap.fetch("1:2", "(FLAGS EMAILID THREADID SAVEDATE PREVIEW)")
    check(typ == "OK", "FETCH", data)
    first, second = data[0], data[1]
    check(b"\\Seen" in first and b"\\Flagged" in second, "flags of each message", data)
    check(b"PREVIEW \"first body\"" in first, "PREVIEW", first)
    check(b"THREADID NIL" in first, "THREADID NIL", first)
    check(re.search(rb"SAVEDATE \"\d\d-\w{3}-\d{4} ", first) is not None, "SAVEDATE", first)
    emailid = re.search(rb"EMAILID \((M[0-9a-f]{16})\)", first).group(1)

    typ, data = imap.store("1", "+FLAGS", "(\\Answered)")
    typ, data = imap.fetch("1", "(EMAILID)")
    check(emailid in data[0], "EMAILID after STORE", data)
    typ, data = imap.search(None, "EMAILID", emailid.decode())
    check(data == [b"1"], "SEARCH EMAILID", data)
    typ, data = imap.search(None, "SAVEDATESUPPORTED")
    check(data == [b"1 2"], "SEARCH SAVEDATESUPPORTED", data)

    # REPLACE message 2 with a new version.
    typ, data = imap.uid("REPLACE", "2", "Py", "(\\Draft) " + plus_literal(message("two", "new body")))
    check(typ == "OK", "UID REPLACE", data)
    typ, data = imap.uid("FETCH", "1:*", "(UID BODY.PEEK[TEXT])")
    bodies = [part[1] for part in data if isinstance(part, tuple)]
    check(bodies == [b"first body\r\n", b"new body\r\n"], "after REPLACE", data)

    typ, data = imap.status("Py", "(MAILBOXID MESSAGES)")
    check(typ == "OK" and mailboxid in data[0] and b"MESSAGES 2" in data[0], "STATUS MAILBOXID", data)
    imap.logout()
    print("done", flush=True)


if __name__ == "__main__":
    main()
