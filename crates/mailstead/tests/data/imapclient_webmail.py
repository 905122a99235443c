"""What a Python webmail does through imapclient, against the server named in the JSON
argument ({host, port, ca, user, password}): implicit TLS with the certificate verified,
NAMESPACE, GETQUOTAROOT, STATUS, UID SORT and UID THREAD, SEARCH with a charset, FETCH of
BODY.PEEK and ENVELOPE, MULTIAPPEND, IDLE until a new message arrives (prints DELIVER and
waits), and ENABLE UTF8=ACCEPT with a UTF-8 folder name. (imapclient has no COMPRESS.) Ends with `RESULT {json}`; any
error or unexpected answer exits non-zero."""

import json
import signal
import ssl
import sys
import time

from imapclient import IMAPClient

config = json.loads(sys.argv[1])
# Never hang: a stuck command fails the run.
signal.alarm(120)


def fail(message):
    raise SystemExit(f"FAIL: {message}")


def nested(thread):
    """imapclient's thread tuples as JSON lists."""
    return [nested(item) if isinstance(item, tuple) else item for item in thread]


def text(value):
    return value.decode() if isinstance(value, bytes) else value


def connect():
    context = ssl.create_default_context(cafile=config["ca"])
    client = IMAPClient(
        config["host"], port=config["port"], ssl=True, ssl_context=context, timeout=30
    )
    client.login(config["user"], config["password"])
    return client


result = {}
client = connect()
capabilities = client.capabilities()
for needed in (b"SORT", b"THREAD=REFERENCES", b"MULTIAPPEND", b"IDLE", b"QUOTA", b"UTF8=ACCEPT"):
    if needed not in capabilities:
        fail(f"{needed} not in CAPABILITY {capabilities}")
# imapclient 4.1.0 has no COMPRESS=DEFLATE (imapflow's run covers it).

namespace = client.namespace()
result["namespace_personal"] = [[text(prefix), text(sep)] for prefix, sep in namespace.personal]

roots, quotas = client.get_quota_root("INBOX")
storage = [q for q in quotas if q.resource.upper() == "STORAGE"]
result["quota"] = {"resource": "STORAGE", "limit": storage[0].limit} if storage else None

status = client.folder_status("INBOX", ["MESSAGES", "UNSEEN", "UIDNEXT"])
result["status_inbox"] = {text(k): v for k, v in status.items()}

client.select_folder("INBOX")
inbox_uids = client.search("ALL")
envelopes = client.fetch(inbox_uids, ["ENVELOPE", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]", "FLAGS"])
result["inbox_message_ids"] = {}
result["envelope_subjects"] = []
result["header_subjects"] = []
for uid in sorted(envelopes):
    data = envelopes[uid]
    envelope = data[b"ENVELOPE"]
    result["inbox_message_ids"][str(uid)] = text(envelope.message_id)
    subject = envelope.subject.decode()
    if subject.startswith("=?"):
        from email.header import decode_header, make_header

        subject = str(make_header(decode_header(subject)))
    result["envelope_subjects"].append(subject)
    header = data[b"BODY[HEADER.FIELDS (SUBJECT)]"].decode().strip()
    result["header_subjects"].append(header)
flags = client.get_flags(sorted(envelopes))
result["seen_after_peek"] = sum(1 for f in flags.values() if b"\\Seen" in f)

result["sort_date"] = client.sort(["DATE"])
result["sort_reverse_date"] = client.sort(["REVERSE", "DATE"])
result["sort_subject"] = client.sort(["SUBJECT"])
result["sort_from"] = client.sort(["FROM"])
result["thread_references"] = nested(client.thread("REFERENCES"))
result["search_utf8"] = client.search(["SUBJECT", "Köln"], charset="UTF-8")

appended = client.multiappend(
    "Sent",
    [
        {"msg": "Subject: First of two\r\nMessage-ID: <first@webmail.test>\r\n\r\nOne.\r\n", "flags": [b"\\Seen"]},
        # Neither flags nor a date: imapclient 4.1.0 sends two spaces before this one.
        "Subject: Second of two\r\nMessage-ID: <second@webmail.test>\r\n\r\nTwo.\r\n",
    ],
)
sent = client.folder_status("Sent", ["MESSAGES"])
client.select_folder("Sent", readonly=True)
sent_envelopes = client.fetch(client.search("ALL"), ["ENVELOPE"])
result["multiappend"] = {
    "count": sent[b"MESSAGES"],
    "subjects": [sent_envelopes[uid][b"ENVELOPE"].subject.decode() for uid in sorted(sent_envelopes)],
}

client.select_folder("INBOX")
client.idle()
print("DELIVER", flush=True)
exists = None
deadline = time.monotonic() + 60
while exists is None and time.monotonic() < deadline:
    for response in client.idle_check(timeout=5):
        if len(response) >= 2 and response[1] == b"EXISTS":
            exists = response[0]
client.idle_done()
if exists is None:
    fail("no EXISTS during IDLE after the delivery")
result["idle_exists"] = exists
client.logout()

# A new session: ENABLE is only valid before SELECT.
client = connect()
result["enabled"] = sorted(text(c) for c in client.enable("UTF8=ACCEPT"))
# After UTF8=ACCEPT, folder names travel as UTF-8 instead of modified UTF-7. imapclient
# 4.1.0 does not tell the imaplib connection underneath, which would refuse non-ASCII
# arguments; imaplib's own enable() sets the same attribute.
client.folder_encode = False
client._imap._encoding = "utf-8"
folder = "Grüße"
client.create_folder(folder)
listed = [text(name) for _flags, _sep, name in client.list_folders()]
client.append(folder, "Subject: Into a UTF-8 folder\r\n\r\nHallo.\r\n")
status = client.folder_status(folder, ["MESSAGES"])
result["utf8_folder"] = {"listed": folder in listed, "messages": status[b"MESSAGES"]}
if folder not in listed:
    result["utf8_folder"]["list"] = listed
client.logout()

print("RESULT " + json.dumps(result), flush=True)
