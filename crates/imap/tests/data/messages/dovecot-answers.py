#!/usr/bin/env python3
"""Saves what Dovecot answers for each DIR/*.eml, for the tests in src/message/tests.rs.

Usage: dovecot-answers.py DIR [USER] [--sections]
  (Dovecot IMAP on 127.0.0.1:14300, e.g. from bench/peers/setup.sh; USER defaults to
  user1@example.test, password "pass"; the mailbox "t" of USER is recreated.)

Writes NAME.envelope, NAME.bodystructure and NAME.body (the FETCH item's value as Dovecot
wrote it) next to every NAME.eml; with --sections also DIR/sections.tsv (name, section,
hex of the answer) for the ignored test sections_match_dovecot_corpus.
"""
import os
import re
import socket
import sys

SECTIONS = ["", "HEADER", "TEXT", "1", "2", "3", "4", "1.MIME", "2.MIME", "3.MIME", "1.1",
            "1.2", "2.1", "2.2", "3.1", "1.1.1", "2.1.1", "2.2.1", "1.HEADER", "2.HEADER",
            "3.HEADER", "1.TEXT", "2.TEXT", "3.TEXT", "2.1.MIME", "1.1.MIME", "2.2.MIME",
            "2.1.HEADER", "HEADER.FIELDS (FROM CONTENT-TYPE)",
            "HEADER.FIELDS.NOT (FROM SUBJECT)", "2.HEADER.FIELDS (SUBJECT)"]
BINARY = ["1", "2", "3", "2.1", "1.1"]


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    directory = args[0]
    user = args[1] if len(args) > 1 else "user1@example.test"
    sock = socket.create_connection(("127.0.0.1", 14300))
    reader = sock.makefile("rb")
    reader.readline()
    counter = [0]

    def command(text, literal=None):
        counter[0] += 1
        tag = b"t%d" % counter[0]
        if literal is None:
            sock.sendall(tag + b" " + text + b"\r\n")
        else:
            sock.sendall(tag + b" " + text + b" {%d}\r\n" % len(literal))
            reader.readline()
            sock.sendall(literal + b"\r\n")
        answer = b""
        while True:
            line = reader.readline()
            answer += line
            size = re.search(rb"\{(\d+)\}\r\n$", line)
            if size:
                answer += reader.read(int(size.group(1)))
            elif line.startswith(tag + b" "):
                return answer

    command(b'LOGIN "%s" "pass"' % user.encode())
    command(b"DELETE t")
    command(b"CREATE t")
    names = sorted(n for n in os.listdir(directory) if n.endswith(".eml"))
    for name in names:
        data = open(os.path.join(directory, name), "rb").read()
        command(b"APPEND t", re.sub(rb"(?<!\r)\n", b"\r\n", data))
    command(b"SELECT t")
    table = []
    for number, name in enumerate(names, 1):
        base = os.path.join(directory, name[:-4])
        for item, ext in [(b"ENVELOPE", "envelope"), (b"BODYSTRUCTURE", "bodystructure"),
                          (b"BODY", "body")]:
            answer = command(b"FETCH %d %s" % (number, item))
            start = answer.index(item + b" ") + len(item) + 1
            end = answer.rindex(b")\r\nt")
            open(base + "." + ext, "wb").write(answer[start:end])
        if "--sections" not in sys.argv:
            continue
        for spec in SECTIONS:
            answer = command(b"FETCH %d BODY.PEEK[%s]" % (number, spec.encode()))
            found = re.search(rb"BODY\[[^\]]*\](?: \{(\d+)\}\r\n| \"\"| NIL)", answer)
            if found:
                body = b"" if found.group(1) is None else \
                    answer[found.end():found.end() + int(found.group(1))]
                table.append("%s\t%s\t%s" % (name, spec, body.hex()))
        for part in BINARY:
            answer = command(b"FETCH %d BINARY.PEEK[%s]" % (number, part.encode()))
            if b"UNKNOWN-CTE" in answer:
                table.append("%s\tBINARY %s\tunknown" % (name, part))
                continue
            found = re.search(rb"BINARY\[[^\]]*\] ~?(?:\{(\d+)\}\r\n|\"\"|NIL)", answer)
            if found:  # Dovecot refuses invalid base64 ([PARSE]); those are skipped
                body = b"" if found.group(1) is None else \
                    answer[found.end():found.end() + int(found.group(1))]
                table.append("%s\tBINARY %s\t%s" % (name, part, body.hex()))
    if table:
        open(os.path.join(directory, "sections.tsv"), "w").write("\n".join(table) + "\n")


if __name__ == "__main__":
    main()
