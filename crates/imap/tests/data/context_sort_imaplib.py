#!/usr/bin/env python3
"""Python's imaplib against CONTEXT=SORT (RFC 5267).

Usage: context_sort_imaplib.py PORT USER PASSWORD

One session keeps `UID SORT RETURN (UPDATE ALL) (SUBJECT) UTF-8 UNSEEN` updated; a second one
appends and flags. The first reads the ADDTO/REMOVEFROM from imaplib's untagged ESEARCH
responses, applies them in order and compares with a fresh UID SORT. Prints each check;
exits 1 at the first mismatch.
"""

import imaplib
import re
import sys

def check(condition, what, got):
    if not condition:
        print(f"MISMATCH: {what}: {got!r}", flush=True)
        sys.exit(1)
    print(f"ok: {what}", flush=True)


def message(subject):
    return f"From: a@example.org\r\nSubject: {subject}\r\n\r\nbody\r\n".encode()


def expand(text):
    numbers = []
    for part in text.split(","):
        if ":" in part:
            a, b = (int(n) for n in part.split(":"))
            numbers.extend(range(min(a, b), max(a, b) + 1))
        else:
            numbers.append(int(part))
    return numbers


def apply(results, data):
    """Applies the ADDTO and REMOVEFROM pairs of ESEARCH responses, in order."""
    for response in data:
        text = response.decode()
        for item, pairs in re.findall(r"(ADDTO|REMOVEFROM) \(([^)]*)\)", text):
            words = pairs.split()
            for position, numbers in zip(words[0::2], words[1::2]):
                at = int(position) - 1
                numbers = expand(numbers)
                if item == "ADDTO":
                    results[at:at] = numbers
                else:
                    run = results[at : at + len(numbers)]
                    check(run == numbers, "REMOVEFROM finds its run", (text, results))
                    del results[at : at + len(numbers)]
    return results


def fresh_sort(imap):
    typ, data = imap.uid("SORT", "(SUBJECT)", "UTF-8", "UNSEEN")
    return [int(n) for n in data[0].split()]


def main():
    port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    watcher = imaplib.IMAP4("127.0.0.1", port)
    watcher.login(user, password)
    writer = imaplib.IMAP4("127.0.0.1", port)
    writer.login(user, password)
    for subject in ["delta", "bravo", "foxtrot"]:
        writer.append("INBOX", None, None, message(subject))
    typ, data = watcher.capability()
    check(b"CONTEXT=SORT" in data[0].split(), "CONTEXT=SORT advertised after login", data)
    watcher.select("INBOX")
    writer.select("INBOX")

    typ, data = watcher.uid("SORT", "RETURN", "(UPDATE ALL)", "(SUBJECT)", "UTF-8", "UNSEEN")
    check(typ == "OK", "UID SORT RETURN (UPDATE ALL)", data)
    typ, esearch = watcher._untagged_response(typ, data, "ESEARCH")
    results = expand(esearch[0].decode().split(" ALL ")[1])
    check(results == [2, 1, 3], "the first answer is in subject order", results)

    # Two arrivals: alpha goes first, echo between delta and foxtrot; then bravo is read.
    writer.append("INBOX", None, None, message("alpha"))
    writer.append("INBOX", None, None, message("echo"))
    writer.uid("STORE", "2", "+FLAGS", "(\\Seen)")
    typ, data = watcher.noop()
    typ, esearch = watcher._untagged_response(typ, data, "ESEARCH")
    apply(results, esearch)
    check(results == [4, 1, 5, 3], "ADDTO and REMOVEFROM keep the order", (esearch, results))
    check(results == fresh_sort(watcher), "the copy equals a fresh UID SORT", results)

    # bravo unread again comes back to its place.
    writer.uid("STORE", "2", "-FLAGS", "(\\Seen)")
    typ, data = watcher.noop()
    typ, esearch = watcher._untagged_response(typ, data, "ESEARCH")
    apply(results, esearch)
    check(results == fresh_sort(watcher) == [4, 2, 1, 5, 3], "a message returns to its place", esearch)

    watcher.logout()
    writer.logout()
    print("done", flush=True)


main()
