#!/usr/bin/env python3
"""A real mail client for the Sieve end-to-end test, printing JSON.

  mail_tool.py send PORT FROM TO SUBJECT     one message over SMTP (smtplib) on 127.0.0.1
  mail_tool.py folders PORT USER PASSWORD    every folder over IMAPS (imaplib; the server's
                                             self-signed certificate accepted) on 127.0.0.1:
                                             {"Folder": [{"subject": ..., "auto_submitted": ...,
                                             "flags": [...]}, ...], ...}
"""
import email
import email.policy
import imaplib
import json
import re
import smtplib
import ssl
import sys
from email.message import EmailMessage


def send(port, sender, to, subject):
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = email.utils.make_msgid(domain="example.test")
    message["Date"] = email.utils.formatdate()
    message.set_content("Hello,\nthe numbers are attached.\n")
    with smtplib.SMTP("127.0.0.1", int(port), timeout=30) as smtp:
        refused = smtp.send_message(message)
    print(json.dumps({"refused": refused}))


LIST_LINE = re.compile(rb'^\((?P<attrs>[^)]*)\) (?:"[^"]*"|NIL) (?P<name>.+)$')


def folders(port, user, password):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    imap = imaplib.IMAP4_SSL("127.0.0.1", int(port), ssl_context=context, timeout=30)
    imap.login(user, password)
    status, lines = imap.list()
    assert status == "OK", lines
    result = {}
    for line in lines:
        match = LIST_LINE.match(line)
        assert match, line
        if b"\\Noselect" in match.group("attrs") or b"\\NonExistent" in match.group("attrs"):
            continue
        name = match.group("name").decode()
        status, count = imap.select(name, readonly=True)
        assert status == "OK", name
        messages = []
        result[name.strip('"')] = messages
        if int(count[0]) == 0:
            continue
        status, data = imap.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT AUTO-SUBMITTED)])")
        for item in data:
            if not isinstance(item, tuple):
                continue
            flags = re.search(rb"FLAGS \(([^)]*)\)", item[0]).group(1).decode().split()
            # \Recent depends on which session looked first, not on the filter.
            flags = [flag for flag in flags if flag != "\\Recent"]
            header = email.message_from_bytes(item[1], policy=email.policy.default)
            messages.append({"subject": str(header["Subject"] or ""),
                             "auto_submitted": str(header["Auto-Submitted"] or ""),
                             "flags": flags})
    imap.logout()
    print(json.dumps(result))


def main():
    command, args = sys.argv[1], sys.argv[2:]
    {"send": send, "folders": folders}[command](*args)


if __name__ == "__main__":
    main()
