#!/usr/bin/env python3
"""A real SMTP client (Python's smtplib) for the report tests. Prints one JSON object.

  send PORT RCPT...   one message from sender@client.test to every RCPT; says which were
                      refused, with the server's code
"""

import json
import smtplib
import sys


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command != "send":
        raise SystemExit("unknown command " + command)
    port, recipients = int(args[0]), args[1:]
    message = (
        "From: sender@client.test\r\nTo: {0}\r\nSubject: counted\r\n"
        "Message-ID: <counted-{1}@client.test>\r\n\r\nA message to count.\r\n"
    ).format(", ".join(recipients), len(recipients))
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.ehlo("client.test")
        try:
            refused = smtp.sendmail("sender@client.test", recipients, message)
        except smtplib.SMTPRecipientsRefused as err:
            refused = err.recipients
    print(json.dumps({
        "refused": {rcpt: [code, text.decode("utf-8", "replace")]
                    for rcpt, (code, text) in refused.items()},
    }))


if __name__ == "__main__":
    main()
