"""Python's imaplib sort(), thread() and uid('SORT'/'THREAD') against a server on loopback
(plain port, login without TLS allowed there): prints one JSON object, each call's untagged
answer as imaplib returns it, for the Rust test to compare with Dovecot's answers."""

import argparse
import imaplib
import json

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--user", required=True)
parser.add_argument("--password", required=True)
args = parser.parse_args()

conn = imaplib.IMAP4("127.0.0.1", args.port)
conn.login(args.user, args.password)
typ, _ = conn.select("INBOX", readonly=True)
assert typ == "OK", typ
answers = {}
for name, call in [
    ("sort DATE", lambda: conn.sort("(DATE)", "UTF-8", "ALL")),
    ("uid SORT SUBJECT", lambda: conn.uid("SORT", "(SUBJECT)", "UTF-8", "ALL")),
    ("thread REFERENCES", lambda: conn.thread("REFERENCES", "UTF-8", "ALL")),
    ("uid THREAD REFS", lambda: conn.uid("THREAD", "REFS", "UTF-8", "ALL")),
]:
    typ, data = call()
    assert typ == "OK", (name, typ, data)
    answers[name] = (data[0] or b"").decode()
conn.logout()
print(json.dumps(answers))
