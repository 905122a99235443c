#!/usr/bin/env python3
"""Drives an IMAP server with Python's imaplib, command by command, over TLS.

Usage:
  imaplib_suite.py suite --host H --imaps-port P --imap-port P2 --cafile CERT
                   --user U --password PW --deliver smtp://H:PORT|lmtp://H:PORT
  imaplib_suite.py logindisabled --host H --imaps-port P --imap-port P2 --cafile CERT
                   --user U --password PW

`suite` first sends three messages to the user through SMTP (or LMTP), then exercises every
command on them. `logindisabled` checks a plain port whose server refuses LOGIN before STARTTLS.
Each step prints a line; the first mismatch prints what was expected, what the server said,
the last lines of the IMAP conversation, and exits 1.
"""

import argparse
import base64
import datetime
import imaplib
import re
import smtplib
import socket
import ssl
import sys
import time
import traceback

imaplib.Commands.setdefault("ID", ("NONAUTH", "AUTH", "SELECTED", "LOGOUT"))
imaplib.Commands.setdefault("XYZZY", ("NONAUTH", "AUTH", "SELECTED", "LOGOUT"))
imaplib.Commands.setdefault("GETQUOTA", ("AUTH", "SELECTED"))

CONNECTIONS = []
STEP = ["start"]


class Mismatch(Exception):
    pass


NOTES = []


def note(message):
    """A deviation from a SHOULD (or from what Dovecot does) that does not fail the suite."""
    NOTES.append(message)
    print(f"    NOTE: {message}", flush=True)


def step(name):
    STEP[0] = name
    print(f"--- {name}", flush=True)


def check(condition, message):
    if not condition:
        raise Mismatch(message)


def ok(result, what):
    typ, data = result
    check(typ == "OK", f"{what}: expected OK, got {typ} {data!r}")
    return data


def context(cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    # The certificate names mail.example.test; we connect to an address.
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def remember(conn):
    conn._cmd_log_len = 40
    conn._cmd_log = {}
    conn._cmd_log_idx = 0
    CONNECTIONS.append(conn)
    return conn


def connect_tls(args):
    return remember(
        imaplib.IMAP4_SSL(args.host, args.imaps_port, ssl_context=context(args.cafile), timeout=30)
    )


def connect_plain(args):
    return remember(imaplib.IMAP4(args.host, args.imap_port, timeout=30))


def login(args):
    conn = connect_tls(args)
    ok(conn.login(args.user, args.password), "LOGIN")
    return conn


def caps(conn):
    return {c.upper() for c in conn.capabilities}


def fresh_caps(conn):
    data = ok(conn.capability(), "CAPABILITY")
    return {c.upper() for c in data[-1].decode().split()}


def text(data):
    """imaplib's data items as one str (tuples are (prefix, literal) pairs)."""
    out = []
    for item in data:
        if item is None:
            continue
        if isinstance(item, tuple):
            out.append(item[0].decode("utf-8", "replace"))
            out.append(item[1].decode("utf-8", "replace"))
        else:
            out.append(item.decode("utf-8", "replace"))
    return "\n".join(out)


# ---------------------------------------------------------------- raw commands

TAG = [0]


def raw(conn, command, literal_ok=False):
    """Sends `TAG command` bypassing imaplib's state checks; returns (status, lines, tagged)."""
    TAG[0] += 1
    tag = f"R{TAG[0]:03d}"
    conn.send(f"{tag} {command}\r\n".encode())
    lines = []
    while True:
        line = conn.readline()
        check(line, f"{command!r}: the server closed the connection")
        line = line.decode("utf-8", "replace").rstrip("\r\n")
        if line.startswith(tag + " "):
            status = line.split(" ", 2)[1].upper()
            return status, lines, line
        if line.startswith("+") and not literal_ok:
            raise Mismatch(f"{command!r}: unexpected continuation {line!r}")
        lines.append(line)
        if line.startswith("+"):
            return "+", lines, line


# ---------------------------------------------------------------- modified UTF-7 (RFC 3501 5.1.3)


def mutf7_encode(name):
    out, run = [], []

    def flush():
        if run:
            utf16 = "".join(run).encode("utf-16-be")
            out.append("&" + base64.b64encode(utf16).decode().rstrip("=").replace("/", ",") + "-")
            run.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    flush()
    return "".join(out)


def mutf7_decode(name):
    def repl(match):
        body = match.group(1)
        if body == "":
            return "&"
        b64 = body.replace(",", "/")
        b64 += "=" * (-len(b64) % 4)
        return base64.b64decode(b64).decode("utf-16-be")

    return re.sub(r"&([^-]*)-", repl, name)


# ---------------------------------------------------------------- LIST parsing

LIST_RE = re.compile(r'^\((?P<attrs>[^)]*)\) (?P<delim>NIL|"(?:\\.|[^"])*") (?P<name>.*)$')


def unquote(s):
    s = s.strip()
    if s.startswith('"') and s.endswith('"'):
        return re.sub(r"\\(.)", r"\1", s[1:-1])
    return s


def parse_list(data):
    """LIST/LSUB data -> {name: (set of attributes, delimiter)}."""
    found = {}
    items = list(data)
    i = 0
    while i < len(items):
        item = items[i]
        i += 1
        if item is None:
            continue
        if isinstance(item, tuple):
            head, literal = item[0].decode(), item[1].decode()
            m = LIST_RE.match(re.sub(r"\{\d+\}$", "", head).strip() + " x")
            check(m, f"cannot parse LIST line {item!r}")
            name = literal
        else:
            line = item.decode()
            if line == ")" or line == "":
                continue
            m = LIST_RE.match(line)
            check(m, f"cannot parse LIST line {line!r}")
            name = unquote(m.group("name"))
        attrs = {a.lower() for a in m.group("attrs").split()}
        delim = m.group("delim")
        found[name] = (attrs, None if delim == "NIL" else unquote(delim))
    return found


# ---------------------------------------------------------------- FETCH parsing


def fetch_map(data):
    """FETCH data -> list of (prefix str, {item name: literal bytes}) per message."""
    out = []
    current = None
    for item in data:
        if isinstance(item, tuple):
            prefix = item[0].decode("utf-8", "replace")
            if re.match(r"^\d+ \(", prefix):
                current = (prefix, {})
                out.append(current)
            else:
                current = (current[0] + " " + prefix, current[1])
                out[-1] = current
            key = re.search(r"([A-Z0-9.]+(?:\[[^\]]*\])?(?:<\d+>)?) (?:~)?\{\d+\}$", prefix)
            check(key, f"cannot find the item of literal in {prefix!r}")
            current[1][key.group(1).upper()] = item[1]
        elif item is None:
            continue
        else:
            line = item.decode("utf-8", "replace")
            if re.match(r"^\d+ \(", line):
                current = (line, {})
                out.append(current)
            elif current is not None:
                current = (current[0] + line, current[1])
                out[-1] = current
    return out


def flags_of(prefix):
    m = re.search(r"FLAGS \(([^)]*)\)", prefix)
    # \Recent is per session (and gone in IMAP4rev2): not part of what is compared.
    return set(m.group(1).split()) - {"\\Recent"} if m else None


def uid_of(prefix):
    m = re.search(r"UID (\d+)", prefix)
    return int(m.group(1)) if m else None


def number(prefix, item):
    m = re.search(item + r" \(?(\d+)", prefix)
    return int(m.group(1)) if m else None


def uid_fetch_one(conn, uid, items):
    data = ok(conn.uid("FETCH", str(uid), items), f"UID FETCH {uid} {items}")
    msgs = [m for m in fetch_map(data) if uid_of(m[0]) == uid]
    check(len(msgs) >= 1, f"UID FETCH {uid} {items}: no FETCH response for that UID: {data!r}")
    # Merge all responses for that UID (flags may come in a separate one).
    prefix = " ".join(m[0] for m in msgs)
    literals = {}
    for m in msgs:
        literals.update(m[1])
    return prefix, literals


def flags_now(conn, uid):
    prefix, _ = uid_fetch_one(conn, uid, "(FLAGS)")
    flags = flags_of(prefix)
    check(flags is not None, f"no FLAGS for UID {uid}: {prefix!r}")
    return flags


def all_uids(conn):
    data = ok(conn.uid("SEARCH", None, "ALL"), "UID SEARCH ALL")
    return sorted(int(x) for x in data[0].split())


def instant(date_time):
    """An IMAP date-time ("01-Feb-2024 10:11:12 +0100", day maybe space-padded) as a timestamp."""
    return datetime.datetime.strptime(date_time.strip(), "%d-%b-%Y %H:%M:%S %z").timestamp()


def parse_uid_set(s):
    out = set()
    for part in s.split(","):
        if ":" in part:
            a, b = part.split(":")
            out.update(range(int(a), int(b) + 1))
        else:
            out.add(int(part))
    return out


# ---------------------------------------------------------------- delivery


def deliver(url, rcpt, message):
    m = re.match(r"^(smtp|lmtp)://([^:]+):(\d+)$", url)
    check(m, f"bad --deliver {url}")
    kind, host, port = m.group(1), m.group(2), int(m.group(3))
    client = smtplib.SMTP(host, port, timeout=30) if kind == "smtp" else smtplib.LMTP(host, port)
    try:
        refused = client.sendmail("sender@client.test", [rcpt], message)
        check(not refused, f"{kind} refused {rcpt}: {refused}")
    finally:
        client.quit()


def crlf(s):
    return s.replace("\r\n", "\n").replace("\n", "\r\n").encode()


PLAIN = crlf(
    """From: Alice Example <alice@client.test>
To: User One <{rcpt}>
Subject: Hello from SMTP
Date: Mon, 02 Mar 2026 10:00:00 +0000
Message-ID: <smtp-plain@client.test>

First line of the body
second line of the body
"""
)

ATTACHMENT = bytes(range(256)) * 8
MULTIPART = crlf(
    """From: Bob Example <bob@client.test>
To: {rcpt}
Cc: Carol <carol@client.test>
Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=
Date: Tue, 03 Mar 2026 11:00:00 +0100
Message-ID: <smtp-multipart@client.test>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1-boundary"

This is a multi-part message in MIME format.
--b1-boundary
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Gr=C3=BC=C3=9Fe aus K=C3=B6ln, line one
line two
--b1-boundary
Content-Type: application/octet-stream; name="data.bin"
Content-Disposition: attachment; filename="data.bin"
Content-Transfer-Encoding: base64

"""
) + b"\r\n".join(
    base64.encodebytes(ATTACHMENT).rstrip(b"\n").split(b"\n")
) + crlf(
    """
--b1-boundary--
"""
)

INVOICE = crlf(
    """From: billing@client.test
To: {rcpt}
Subject: Invoice 42
Date: Wed, 04 Mar 2026 12:00:00 +0000
Message-ID: <smtp-invoice@client.test>

Please pay invoice 42.
""" + "padding line to make it a bit longer than the others\n" * 3
)

IDLE_MESSAGE = crlf(
    """From: late@client.test
To: {rcpt}
Subject: Arrives during IDLE
Message-ID: <smtp-idle@client.test>

wake up
"""
)


def fill(template, rcpt):
    return template.replace(b"{rcpt}", rcpt.encode())


def expect_bad(conn, command, allowed=("BAD",)):
    status, lines, tagged = raw(conn, command)
    check(status in allowed, f"{command!r}: expected {'/'.join(allowed)}, got {tagged!r} {lines!r}")
    status, _, tagged = raw(conn, "NOOP")
    check(status == "OK", f"NOOP after {command!r}: {tagged!r} (connection not usable)")
    return tagged


# ---------------------------------------------------------------- the suite


def suite(args):
    rcpt = args.user
    messages = {
        "plain": fill(PLAIN, rcpt),
        "multipart": fill(MULTIPART, rcpt),
        "invoice": fill(INVOICE, rcpt),
    }

    step("deliver three messages through " + args.deliver)
    for msg in messages.values():
        deliver(args.deliver, rcpt, msg)

    step("STARTTLS on the plain port")
    conn = connect_plain(args)
    before = caps(conn)
    check("STARTTLS" in before, f"plain port does not offer STARTTLS: {sorted(before)}")
    check("LOGINDISABLED" not in before,
          f"loopback login without TLS is on, yet LOGINDISABLED: {sorted(before)}")
    ok(conn.starttls(context(args.cafile)), "STARTTLS")
    after = caps(conn)
    check("STARTTLS" not in after, f"STARTTLS still offered after STARTTLS: {sorted(after)}")
    ok(conn.login(args.user, args.password), "LOGIN after STARTTLS")
    check(conn.logout()[0] == "BYE", "LOGOUT after STARTTLS")

    step("STARTTLS drops commands pipelined in plaintext behind it (CVE-2011-0411 style)")
    sock = socket.create_connection((args.host, args.imap_port), timeout=10)
    reader = sock.makefile("rb")
    check(reader.readline().startswith(b"* OK"), "no greeting on the plain port")
    sock.sendall(b"s1 STARTTLS\r\ns2 CAPABILITY\r\n")
    line = reader.readline()
    check(line.startswith(b"s1 OK"), f"STARTTLS: {line!r}")
    answered = []
    try:
        tls = context(args.cafile).wrap_socket(sock)
        tls.settimeout(10)
        tls_reader = tls.makefile("rb")
        tls.sendall(b"s3 NOOP\r\n")
        while True:
            line = tls_reader.readline()
            if not line:
                break
            answered.append(line)
            if line.startswith(b"s3 "):
                break
        tls.close()
    except (OSError, ssl.SSLError):
        pass  # Closing the connection (as Dovecot does) is a safe answer too.
    check(not any(l.startswith(b"s2 ") or l.startswith(b"* CAPABILITY") for l in answered),
          f"a command sent in plaintext before the TLS handshake was run inside TLS: {answered!r}")

    step("plain LOGIN on the loopback plain port (login_on_loopback_without_tls)")
    conn = connect_plain(args)
    ok(conn.login(args.user, args.password), "plain LOGIN on loopback")
    conn.logout()

    step("CAPABILITY over implicit TLS")
    conn = connect_tls(args)
    pre = fresh_caps(conn)
    check("IMAP4REV1" in pre, f"no IMAP4rev1 in {sorted(pre)}")
    check("STARTTLS" not in pre, f"STARTTLS offered on the TLS port: {sorted(pre)}")
    check("AUTH=PLAIN" in pre, f"no AUTH=PLAIN over TLS: {sorted(pre)}")
    check("LOGINDISABLED" not in pre, f"LOGINDISABLED over TLS: {sorted(pre)}")

    step("NOOP before login")
    ok(conn.noop(), "NOOP")

    step("ID before login")
    typ, data = conn._simple_command("ID", '("name" "imaplib-suite" "version" "1.0")')
    check(typ == "OK", f"ID: {typ} {data}")
    typ, data = conn._untagged_response(typ, data, "ID")
    check(data and data[0] is not None, f"ID: no untagged ID response: {data!r}")
    check(data[0] == b"NIL" or data[0].startswith(b"("), f"ID response malformed: {data!r}")

    step("failed LOGIN (wrong password, unknown user); the connection stays usable")
    for user, password in [(args.user, "wrong-" + args.password), ("nobody@example.test", "x")]:
        try:
            typ, data = conn.login(user, password)
            raise Mismatch(f"LOGIN {user} with a wrong password succeeded: {typ} {data}")
        except imaplib.IMAP4.error as err:
            # imaplib raises "... command error: BAD ..." for BAD, the bare text for NO.
            check("command error" not in str(err), f"failed LOGIN: expected NO, got {err}")
        # imaplib keeps the state NONAUTH after a failed LOGIN.
        ok(conn.noop(), "NOOP after failed LOGIN")

    step("LOGIN")
    ok(conn.login(args.user, args.password), "LOGIN")
    main = conn
    cap = fresh_caps(main)
    for needed in ["IMAP4REV1", "IDLE", "NAMESPACE", "ID", "ENABLE", "UIDPLUS", "MOVE",
                   "CONDSTORE", "QRESYNC", "ESEARCH", "SPECIAL-USE", "LIST-STATUS",
                   "LIST-EXTENDED", "BINARY", "UNSELECT", "QUOTA"]:
        check(needed in cap, f"capability {needed} missing after login: {sorted(cap)}")
    check(any(c in cap for c in ["LITERAL+", "LITERAL-"]), f"no LITERAL+/-: {sorted(cap)}")

    step("AUTHENTICATE PLAIN (and a wrong one)")
    conn = connect_tls(args)
    try:
        typ, data = conn.authenticate("PLAIN", lambda _: f"\0{args.user}\0bad-password".encode())
        raise Mismatch(f"AUTHENTICATE PLAIN with a bad password succeeded: {typ} {data}")
    except imaplib.IMAP4.error as err:
        check("command error" not in str(err), f"bad AUTHENTICATE: expected NO, got {err}")
    ok(conn.authenticate("PLAIN", lambda _: f"\0{args.user}\0{args.password}".encode()),
       "AUTHENTICATE PLAIN")
    check(conn.state == "AUTH", f"state after AUTHENTICATE: {conn.state}")
    ok(conn.noop(), "NOOP after AUTHENTICATE")
    conn.logout()

    conn = main
    step("wait until the three messages are in INBOX")
    deadline = time.time() + 30
    while True:
        data = ok(conn.status("INBOX", "(MESSAGES)"), "STATUS INBOX")
        m = re.search(r"MESSAGES (\d+)", text(data))
        if m and int(m.group(1)) >= 3:
            check(int(m.group(1)) == 3, f"INBOX has {m.group(1)} messages, expected 3")
            break
        check(time.time() < deadline, f"INBOX still has {text(data)} after 30 s")
        time.sleep(0.1)

    step("ENABLE CONDSTORE")
    typ, data = conn.enable("CONDSTORE")
    check(typ == "OK", f"ENABLE CONDSTORE: {typ} {data}")
    enabled = text(conn.untagged_responses.pop("ENABLED", [b""])).upper()
    check("CONDSTORE" in enabled, f"ENABLE CONDSTORE: no ENABLED CONDSTORE (got {enabled!r})")

    step("NAMESPACE")
    typ, data = conn.namespace()
    check(typ == "OK", f"NAMESPACE: {typ} {data}")
    ns = text(data)
    m = re.match(r'^\(\("([^"]*)" (NIL|"[^"]*")\)', ns)
    check(m, f"NAMESPACE: no personal namespace in {ns!r}")
    check(m.group(1) == "", f"personal namespace prefix is {m.group(1)!r}, expected \"\"")

    step('LIST "" "" (hierarchy delimiter)')
    data = ok(conn.list('""', '""'), 'LIST "" ""')
    m = re.match(r'^\((?P<attrs>[^)]*)\) (?P<delim>NIL|"[^"]*") ""', text(data))
    check(m, f'LIST "" "": {text(data)!r}')
    check(m.group("delim") != "NIL", "no hierarchy delimiter")
    delim = unquote(m.group("delim"))
    check(len(delim) == 1, f"delimiter {delim!r}")
    ns_delim = unquote(re.match(r'^\(\("[^"]*" (NIL|"[^"]*")\)', ns).group(1))
    check(ns_delim == delim, f"NAMESPACE delimiter {ns_delim!r} != LIST delimiter {delim!r}")

    step('LIST "" "*": INBOX and the special-use folders')
    found = parse_list(ok(conn.list('""', '"*"'), 'LIST "" "*"'))
    check("INBOX" in found, f"no INBOX in {found}")
    special = {"Drafts": "\\drafts", "Sent": "\\sent", "Trash": "\\trash", "Junk": "\\junk",
               "Archive": "\\archive"}
    for name, attr in special.items():
        check(name in found, f"LIST lacks {name}: {sorted(found)}")
        check(attr in found[name][0], f"{name} lacks {attr}: {found[name]}")
        check(found[name][1] == delim, f"{name} delimiter {found[name][1]!r}")
    for name, (attrs, _) in found.items():
        check(not ({"\\haschildren", "\\hasnochildren"} <= attrs), f"{name}: {attrs}")

    step("LIST (SPECIAL-USE) selection")
    data = ok(conn._simple_command("LIST", "(SPECIAL-USE)", '""', '"*"'), "LIST (SPECIAL-USE)")
    data = conn._untagged_response("OK", data, "LIST")[1]
    only = parse_list(data)
    check(set(only) == set(special), f"LIST (SPECIAL-USE) gave {sorted(only)}")

    step('LIST "" "*" RETURN (SPECIAL-USE STATUS (MESSAGES))')
    conn.untagged_responses.pop("STATUS", None)
    typ, data = conn._simple_command("LIST", '""', '"*"', "RETURN",
                                     "(SPECIAL-USE STATUS (MESSAGES UIDVALIDITY))")
    check(typ == "OK", f"LIST RETURN: {typ} {data}")
    listed = parse_list(conn._untagged_response(typ, data, "LIST")[1])
    statuses = text(conn.untagged_responses.pop("STATUS", []))
    check("INBOX" in listed and "Archive" in listed, f"LIST RETURN listed {sorted(listed)}")
    check("\\archive" in listed["Archive"][0], f"LIST RETURN SPECIAL-USE: {listed['Archive']}")
    m = re.search(r'(?:^|\n)"?INBOX"? \(([^)]*)\)', statuses)
    check(m, f"LIST-STATUS gave no STATUS for INBOX: {statuses!r}")
    check(re.search(r"MESSAGES 3\b", m.group(1)), f"INBOX STATUS {m.group(1)!r}, expected 3")
    for name in special:
        check(re.search(r'(?:^|\n)"?' + name + r'"? \(', statuses),
              f"LIST-STATUS gave no STATUS for {name}: {statuses!r}")

    step("CREATE nested a/b/c and a non-ASCII name (modified UTF-7)")
    nested = delim.join(["Projects", "2026", "Q1"])
    ok(conn.create(nested), f"CREATE {nested}")
    found = parse_list(ok(conn.list('""', '"Projects*" RETURN (CHILDREN)'), "LIST Projects* RETURN (CHILDREN)"))
    for name in ["Projects", "Projects" + delim + "2026", nested]:
        check(name in found, f"after CREATE {nested}, LIST lacks {name}: {sorted(found)}")
    check("\\haschildren" in found["Projects"][0], f"Projects: {found['Projects']}")
    found = parse_list(ok(conn.list('""', '"Projects' + delim + '%"'), "LIST Projects/%"))
    check(set(found) == {"Projects" + delim + "2026"}, f"LIST Projects{delim}% gave {found}")
    check(conn.create(nested)[0] == "NO", "CREATE of an existing mailbox must fail")
    unicode_name = "Entwürfe & Ünïcode ✓"
    encoded = mutf7_encode(unicode_name)
    check(encoded == "Entw&APw-rfe &- &ANw-n&AO8-code &JxM-", f"encoder: {encoded}")
    ok(conn.create('"' + encoded + '"'), f"CREATE {encoded}")
    found = parse_list(ok(conn.list('""', '"*"'), 'LIST "" "*"'))
    check(encoded in found, f"LIST does not show {encoded!r}: {sorted(found)}")
    check(mutf7_decode(encoded) == unicode_name, "decoder")
    ok(conn.select('"' + encoded + '"'), f"SELECT {encoded}")
    # CONDSTORE is on: a new, empty mailbox still has a HIGHESTMODSEQ, and mod-sequences are
    # positive (RFC 7162 7: mod-sequence-value = 1*DIGIT, 1 <= n), or NOMODSEQ.
    hm = conn.untagged_responses.get("HIGHESTMODSEQ")
    check(hm or "NOMODSEQ" in conn.untagged_responses,
          f"SELECT of a new mailbox with CONDSTORE on: no HIGHESTMODSEQ/NOMODSEQ {conn.untagged_responses}")
    check(not hm or int(hm[0]) >= 1, f"SELECT of a new mailbox: HIGHESTMODSEQ {hm[0]!r} (must be >= 1)")
    ok(conn.unselect(), "UNSELECT")

    step("SUBSCRIBE / LSUB / UNSUBSCRIBE")
    ok(conn.subscribe(nested), f"SUBSCRIBE {nested}")
    subs = parse_list(ok(conn.lsub('""', '"*"'), "LSUB"))
    check(nested in subs, f"LSUB lacks {nested}: {sorted(subs)}")
    ok(conn.unsubscribe(nested), f"UNSUBSCRIBE {nested}")
    subs = parse_list(ok(conn.lsub('""', '"*"'), "LSUB"))
    check(nested not in subs, f"LSUB still lists {nested}: {sorted(subs)}")

    step("RENAME (a leaf, then a parent with its children)")
    renamed = delim.join(["Projects", "2026", "Q2"])
    ok(conn.rename(nested, renamed), f"RENAME {nested} {renamed}")
    found = parse_list(ok(conn.list('""', '"*"'), 'LIST "" "*"'))
    check(renamed in found and nested not in found, f"after RENAME: {sorted(found)}")
    ok(conn.rename("Projects", "Work"), "RENAME Projects Work")
    found = parse_list(ok(conn.list('""', '"*"'), 'LIST "" "*"'))
    moved = delim.join(["Work", "2026", "Q2"])
    check(moved in found, f"RENAME of a parent did not move its children: {sorted(found)}")
    check(not any(n.startswith("Projects") for n in found), f"Projects left: {sorted(found)}")
    check(conn.rename("NoSuchFolder", "Other")[0] == "NO", "RENAME of a missing mailbox")

    step("DELETE")
    ok(conn.delete(moved), f"DELETE {moved}")
    found = parse_list(ok(conn.list('""', '"*"'), 'LIST "" "*"'))
    check(moved not in found, f"{moved} still listed: {sorted(found)}")
    check(conn.delete("NoSuchFolder")[0] == "NO", "DELETE of a missing mailbox must be NO")
    check(conn.delete("INBOX")[0] == "NO", "DELETE INBOX must be NO")
    ok(conn.delete('"' + encoded + '"'), f"DELETE {encoded}")

    step("STATUS INBOX")
    data = ok(conn.status("INBOX", "(MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)"),
              "STATUS")
    st = text(data)
    values = dict((k, int(v)) for k, v in re.findall(r"([A-Z]+) (\d+)", st))
    check(values.get("MESSAGES") == 3, f"STATUS MESSAGES: {st}")
    check(values.get("UNSEEN") == 3, f"STATUS UNSEEN: {st}")
    check(values.get("UIDVALIDITY", 0) > 0, f"STATUS UIDVALIDITY: {st}")
    check(values.get("UIDNEXT", 0) >= 4, f"STATUS UIDNEXT: {st}")
    check("HIGHESTMODSEQ" in values, f"STATUS HIGHESTMODSEQ: {st}")
    status_validity = values["UIDVALIDITY"]
    status_uidnext = values["UIDNEXT"]
    check(conn.status("NoSuchFolder", "(MESSAGES)")[0] == "NO", "STATUS of a missing mailbox")

    step("EXAMINE INBOX (read-only)")
    typ, data = conn.select("INBOX", readonly=True)
    check(typ == "OK" and data[0] == b"3", f"EXAMINE: {typ} {data}")
    check("READ-ONLY" in conn.untagged_responses, f"EXAMINE not READ-ONLY: {conn.untagged_responses}")
    uids = all_uids(conn)
    check(len(uids) == 3, f"UIDs {uids}")
    prefix, lits = uid_fetch_one(conn, uids[0], "(BODY[] FLAGS)")
    check("\\Seen" not in flags_now(conn, uids[0]), "FETCH BODY[] in EXAMINE set \\Seen")
    typ, data = conn.uid("STORE", str(uids[0]), "+FLAGS", "(\\Flagged)")
    # NO, or (as Dovecot does) OK with nothing stored.
    check(typ in ("NO", "OK"), f"STORE in an EXAMINEd mailbox: {typ} {data}")
    check("\\Flagged" not in flags_now(conn, uids[0]), "STORE changed an EXAMINEd mailbox")

    step("SELECT INBOX: UIDVALIDITY, UIDNEXT, PERMANENTFLAGS, HIGHESTMODSEQ, READ-WRITE")
    typ, data = conn.select("INBOX")
    check(typ == "OK" and data[0] == b"3", f"SELECT INBOX: {typ} {data}")
    r = conn.untagged_responses
    check("READ-WRITE" in r, f"SELECT not READ-WRITE: {r}")
    validity = int(r["UIDVALIDITY"][0])
    check(validity == status_validity, f"SELECT UIDVALIDITY {validity} != STATUS {status_validity}")
    uidnext = int(r["UIDNEXT"][0])
    check(uidnext == status_uidnext, f"SELECT UIDNEXT {uidnext} != STATUS {status_uidnext}")
    check(uidnext > max(uids), f"UIDNEXT {uidnext} <= UID {max(uids)}")
    perm = text(r.get("PERMANENTFLAGS", [b""]))
    for flag in ["\\Seen", "\\Flagged", "\\Deleted", "\\Answered", "\\Draft", "\\*"]:
        check(flag in perm, f"PERMANENTFLAGS {perm!r} lacks {flag}")
    flags = text(r.get("FLAGS", [b""]))
    for flag in ["\\Seen", "\\Flagged", "\\Deleted", "\\Answered", "\\Draft"]:
        check(flag in flags, f"FLAGS {flags!r} lacks {flag}")
    check("HIGHESTMODSEQ" in r, f"SELECT after ENABLE CONDSTORE: no HIGHESTMODSEQ in {r}")
    modseq_start = int(r["HIGHESTMODSEQ"][0])
    check(modseq_start > 0, "HIGHESTMODSEQ 0")

    # Which UID is which message (delivery order = UID order).
    by_id = {}
    for uid in uids:
        prefix, lits = uid_fetch_one(conn, uid, "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        value = list(lits.values())[0].decode()
        for key in messages:
            if f"<smtp-{key}@client.test>" in value:
                by_id[key] = uid
    check(set(by_id) == set(messages), f"Message-IDs found: {by_id}")
    u_plain, u_multi, u_inv = by_id["plain"], by_id["multipart"], by_id["invoice"]
    if [u_plain, u_multi, u_inv] != uids:
        note(f"UIDs are not in delivery order: plain {u_plain}, multipart {u_multi}, "
             f"invoice {u_inv} (delivered in that order; RFC 3501 2.3.1.1 ascending as added)")
    seq = {uid: i + 1 for i, uid in enumerate(uids)}

    step("FETCH FLAGS INTERNALDATE RFC822.SIZE ENVELOPE")
    for key, uid in by_id.items():
        prefix, lits = uid_fetch_one(conn, uid, "(FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])")
        check(flags_of(prefix) is not None and "\\Seen" not in flags_of(prefix),
              f"fresh message {key} flags {prefix}")
        body = lits.get("BODY[]")
        check(body is not None, f"no BODY[] for {key}: {prefix}")
        check(body.endswith(messages[key]),
              f"BODY[] of {key} does not end with the message sent:\n{body[-400:]!r}\nvs\n{messages[key][-400:]!r}")
        size = number(prefix, "RFC822.SIZE")
        check(size == len(body), f"RFC822.SIZE {size} != len(BODY[]) {len(body)} for {key}")
        m = re.search(r'INTERNALDATE "([^"]+)"', prefix)
        check(m, f"no INTERNALDATE: {prefix}")
        date = imaplib.Internaldate2tuple(f'INTERNALDATE "{m.group(1)}"'.encode())
        check(date is not None and abs(time.mktime(date) - time.time()) < 3600,
              f"INTERNALDATE {m.group(1)} is not about now")
    data = ok(conn.uid("FETCH", str(u_multi), "(ENVELOPE)"), "FETCH ENVELOPE")
    env = text(data)
    check('"Tue, 03 Mar 2026 11:00:00 +0100"' in env, f"ENVELOPE date: {env}")
    check("=?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=" in env, f"ENVELOPE subject: {env}")
    check('(("Bob Example" NIL "bob" "client.test"))' in env, f"ENVELOPE from: {env}")
    check('(("Carol" NIL "carol" "client.test"))' in env, f"ENVELOPE cc: {env}")
    check('"<smtp-multipart@client.test>"' in env, f"ENVELOPE message-id: {env}")
    local, domain = args.user.split("@")
    check(f'((NIL NIL "{local}" "{domain}"))' in env, f"ENVELOPE to: {env}")

    step("FETCH BODYSTRUCTURE")
    data = ok(conn.uid("FETCH", str(u_multi), "(BODYSTRUCTURE)"), "FETCH BODYSTRUCTURE")
    bs = text(data).upper()
    check(re.search(r'\("TEXT" "PLAIN" \("CHARSET" "UTF-8"\) NIL NIL "QUOTED-PRINTABLE" 49 [12] ', bs),
          f"BODYSTRUCTURE text part: {bs}")
    check(re.search(r'\("APPLICATION" "OCTET-STREAM" \("NAME" "DATA.BIN"\) NIL NIL "BASE64" \d+', bs),
          f"BODYSTRUCTURE attachment: {bs}")
    check('"MIXED" ("BOUNDARY" "B1-BOUNDARY")' in bs, f"BODYSTRUCTURE multipart: {bs}")
    check('("ATTACHMENT" ("FILENAME" "DATA.BIN"))' in bs, f"BODYSTRUCTURE disposition: {bs}")
    data = ok(conn.uid("FETCH", str(u_plain), "(BODYSTRUCTURE)"), "FETCH BODYSTRUCTURE plain")
    bs = text(data).upper()
    plain_text = messages["plain"].split(b"\r\n\r\n", 1)[1]
    check(re.search(r'BODYSTRUCTURE \("TEXT" "PLAIN" \("CHARSET" "US-ASCII"\) NIL NIL "7BIT" %d 2 ' % len(plain_text), bs),
          f"BODYSTRUCTURE of the plain message: {bs}")

    step("FETCH BODY.PEEK[HEADER.FIELDS (SUBJECT)] leaves \\Seen unset")
    prefix, lits = uid_fetch_one(conn, u_plain, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    value = list(lits.values())[0] if lits else None
    check(value == b"Subject: Hello from SMTP\r\n\r\n", f"HEADER.FIELDS (SUBJECT): {value!r}")
    check("\\Seen" not in flags_now(conn, u_plain), "BODY.PEEK set \\Seen")

    step("FETCH BODY[1], BODY[TEXT]<0.10>, BINARY[1], BINARY[2], BINARY.SIZE[2]")
    prefix, lits = uid_fetch_one(conn, u_multi, "(BODY.PEEK[1])")
    check(lits.get("BODY[1]") == b"Gr=C3=BC=C3=9Fe aus K=C3=B6ln, line one\r\nline two",
          f"BODY[1]: {lits!r}")
    prefix, lits = uid_fetch_one(conn, u_plain, "(BODY.PEEK[TEXT]<0.10>)")
    value = lits.get("BODY[TEXT]<0>")
    if value is None:
        m = re.search(r'BODY\[TEXT\]<0> "([^"]*)"', prefix)
        value = m.group(1).encode() if m else None
    check(value == b"First line", f"BODY[TEXT]<0.10>: {prefix!r} {lits!r}")
    prefix, lits = uid_fetch_one(conn, u_multi, "(BINARY.PEEK[1])")
    value = lits.get("BINARY[1]")
    if value is None:
        m = re.search(r'BINARY\[1\] "([^"]*)"', prefix)
        value = m.group(1).encode() if m else None
    check(value == "Grüße aus Köln, line one\r\nline two".encode(), f"BINARY[1]: {prefix!r} {lits!r}")
    prefix, lits = uid_fetch_one(conn, u_multi, "(BINARY.PEEK[2] BINARY.SIZE[2])")
    check(lits.get("BINARY[2]") == ATTACHMENT,
          f"BINARY[2] is not the decoded attachment: {prefix!r} {len(lits.get('BINARY[2]', b''))}")
    check(re.search(r"BINARY\.SIZE\[2\] %d\b" % len(ATTACHMENT), prefix),
          f"BINARY.SIZE[2]: {prefix!r}")
    check("\\Seen" not in flags_now(conn, u_multi), "BINARY.PEEK set \\Seen")

    step("FETCH BODY[] sets \\Seen")
    data = ok(conn.uid("FETCH", str(u_plain), "(BODY[])"), "FETCH BODY[]")
    check("\\Seen" in flags_now(conn, u_plain), "FETCH BODY[] did not set \\Seen")

    step("SEARCH with several keys")

    def search(*criteria, charset=None, literal=None):
        if literal is not None:
            conn.literal = literal
        prefix = ("CHARSET", charset) if charset else ()
        data = ok(conn.uid("SEARCH", *prefix, *criteria), f"UID SEARCH {criteria}")
        return sorted(int(x) for x in data[0].split())

    cases = [
        (("ALL",), uids),
        (("SEEN",), [u_plain]),
        (("UNSEEN",), [u_multi, u_inv]),
        (('SUBJECT "invoice"',), [u_inv]),
        (('FROM "alice"',), [u_plain]),
        (('TO "' + args.user + '"',), [u_plain, u_multi, u_inv]),
        (('CC "carol"',), [u_multi]),
        (('BODY "second line"',), [u_plain]),
        (('TEXT "pay invoice"',), [u_inv]),
        (('HEADER "Message-ID" "<smtp-invoice@client.test>"',), [u_inv]),
        (("LARGER 2000",), [u_multi]),
        (("SMALLER 2000",), [u_plain, u_inv]),
        (('OR SUBJECT "Hello" SUBJECT "Invoice"',), [u_plain, u_inv]),
        (('NOT SUBJECT "Hello"',), [u_multi, u_inv]),
        (("SENTBEFORE 3-Mar-2026",), [u_plain]),
        (("SENTON 3-Mar-2026",), [u_multi]),
        (("SENTSINCE 4-Mar-2026",), [u_inv]),
        (("SINCE 1-Jan-2020",), [u_plain, u_multi, u_inv]),
        (("BEFORE 1-Jan-2020",), []),
        (("UID %d:*" % u_multi,), [u for u in uids if u >= u_multi]),
        (("2:3",), sorted(uids[1:3])),
        (('KEYWORD $Forwarded',), []),
    ]
    for criteria, expected in cases:
        got = search(*criteria)
        if expected is not None:
            check(got == sorted(expected), f"SEARCH {criteria}: got {got}, expected {sorted(expected)}")
    got = search("SUBJECT", charset="UTF-8", literal="Grüße".encode())
    check(got == [u_multi], f"SEARCH CHARSET UTF-8 SUBJECT Grüße (encoded-word): {got}")
    got = search("BODY", charset="UTF-8", literal="Köln".encode())
    check(got == [u_multi], f"SEARCH CHARSET UTF-8 BODY Köln (quoted-printable part): {got}")
    typ, data = conn.uid("SEARCH", "CHARSET", "X-NO-SUCH-CHARSET", "ALL")
    check(typ == "NO" and "BADCHARSET" in text(data).upper(),
          f"SEARCH with an unknown charset: {typ} {data}")

    step("ESEARCH: SEARCH RETURN (MIN MAX COUNT)")
    conn.untagged_responses.pop("ESEARCH", None)
    typ, data = conn._simple_command("SEARCH", "RETURN", "(MIN MAX COUNT)", "ALL")
    check(typ == "OK", f"SEARCH RETURN: {typ} {data}")
    es = text(conn.untagged_responses.pop("ESEARCH", [b""]))
    check(re.search(r"\(TAG \"[^\"]+\"\)", es), f"ESEARCH without TAG: {es!r}")
    check(re.search(r"\bMIN 1\b", es) and re.search(r"\bMAX 3\b", es)
          and re.search(r"\bCOUNT 3\b", es), f"ESEARCH MIN/MAX/COUNT: {es!r}")
    check(" UID" not in es, f"non-UID ESEARCH marked UID: {es!r}")
    typ, data = conn.uid("SEARCH", "RETURN", "(MIN MAX COUNT ALL)", "UNSEEN")
    check(typ == "OK", f"UID SEARCH RETURN: {typ} {data}")
    es = text(conn.untagged_responses.pop("ESEARCH", [b""]))
    check(re.search(r"\bUID\b", es), f"UID ESEARCH not marked UID: {es!r}")
    check(re.search(rf"\bMIN {min(u_multi, u_inv)}\b", es) and re.search(rf"\bMAX {max(u_multi, u_inv)}\b", es)
          and re.search(r"\bCOUNT 2\b", es), f"UID ESEARCH: {es!r}")
    m = re.search(r"\bALL (\S+)", es)
    check(m and parse_uid_set(m.group(1)) == {u_multi, u_inv}, f"UID ESEARCH ALL: {es!r}")

    step("STORE +FLAGS, -FLAGS, FLAGS.SILENT, keywords")
    data = ok(conn.uid("STORE", str(u_multi), "+FLAGS", "(\\Flagged)"), "STORE +FLAGS")
    got = [m for m in fetch_map(data) if uid_of(m[0]) == u_multi or uid_of(m[0]) is None]
    check(got and "\\Flagged" in (flags_of(got[0][0]) or set()),
          f"STORE +FLAGS: no FETCH with \\Flagged in reply: {data!r}")
    check(flags_now(conn, u_multi) >= {"\\Flagged"}, "STORE +FLAGS did not stick")
    ok(conn.uid("STORE", str(u_plain), "-FLAGS", "(\\Seen)"), "STORE -FLAGS")
    check("\\Seen" not in flags_now(conn, u_plain), "STORE -FLAGS did not remove \\Seen")
    conn.untagged_responses.pop("FETCH", None)
    typ, data = conn.uid("STORE", str(u_plain), "FLAGS.SILENT", "(\\Answered \\Seen)")
    check(typ == "OK", f"STORE FLAGS.SILENT: {typ} {data}")
    # With CONDSTORE on, a FETCH (MODSEQ) still comes (RFC 7162 3.1.3), but no FLAGS.
    check(not [d for d in data if d and b"FLAGS" in d], f"FLAGS.SILENT still answered FLAGS: {data!r}")
    check(flags_now(conn, u_plain) == {"\\Answered", "\\Seen"},
          f"after FLAGS.SILENT: {flags_now(conn, u_plain)}")
    ok(conn.uid("STORE", str(u_inv), "+FLAGS", "($Forwarded Project_X)"), "STORE keywords")
    got = flags_now(conn, u_inv)
    check({"$Forwarded", "Project_X"} <= got, f"keywords not stored: {got}")
    check(search("KEYWORD Project_X") == [u_inv], "SEARCH KEYWORD Project_X")
    check(search("FLAGGED") == [u_multi], "SEARCH FLAGGED")
    check(search("ANSWERED") == [u_plain], "SEARCH ANSWERED")
    ok(conn.uid("STORE", str(u_inv), "-FLAGS", "(Project_X)"), "STORE -FLAGS keyword")
    check(flags_now(conn, u_inv) == {"$Forwarded"}, f"keyword removal: {flags_now(conn, u_inv)}")
    check(search("UNKEYWORD Project_X") == sorted([u_plain, u_multi, u_inv]), "SEARCH UNKEYWORD")

    step("STORE (UNCHANGEDSINCE) and FETCH MODSEQ")
    prefix, _ = uid_fetch_one(conn, u_inv, "(MODSEQ)")
    m = re.search(r"MODSEQ \((\d+)\)", prefix)
    check(m, f"FETCH MODSEQ: {prefix!r}")
    modseq = int(m.group(1))
    check(modseq > modseq_start, f"MODSEQ {modseq} not above the SELECT's {modseq_start}")
    data = ok(conn.uid("STORE", str(u_inv), f"(UNCHANGEDSINCE {modseq})", "+FLAGS", "(\\Seen)"),
              "STORE UNCHANGEDSINCE current")
    check(re.search(r"MODSEQ \((\d+)\)", text(data)), f"STORE UNCHANGEDSINCE reply lacks MODSEQ: {data!r}")
    check("\\Seen" in flags_now(conn, u_inv), "STORE UNCHANGEDSINCE (current) did not apply")
    typ, data = conn.uid("STORE", str(u_inv), f"(UNCHANGEDSINCE {modseq})", "+FLAGS", "(\\Draft)")
    check(typ == "OK", f"STORE UNCHANGEDSINCE stale: {typ} {data}")
    modified = text(conn.untagged_responses.pop("MODIFIED", [b""]))
    check(modified.strip() == str(u_inv),
          f"stale UNCHANGEDSINCE: no [MODIFIED {u_inv}] ({modified!r}, {data!r})")
    check("\\Draft" not in flags_now(conn, u_inv), "stale UNCHANGEDSINCE changed the flags")

    step("COPY (COPYUID)")
    typ, data = conn.uid("COPY", str(u_multi), "Archive")
    check(typ == "OK", f"UID COPY: {typ} {data}")
    cu = text(conn.untagged_responses.pop("COPYUID", [b""]))
    m = re.match(r"^(\d+) (\S+) (\S+)$", cu)
    check(m, f"COPY without [COPYUID]: {cu!r} {data!r}")
    check(parse_uid_set(m.group(2)) == {u_multi}, f"COPYUID source set {cu!r}")
    archive_validity, archive_uid = int(m.group(1)), int(m.group(3))
    typ, data = conn.uid("COPY", str(u_multi), "NoSuchFolder")
    check(typ == "NO" and "TRYCREATE" in text(data).upper(), f"COPY to a missing mailbox: {typ} {data}")

    step("MOVE (COPYUID, EXPUNGE)")
    conn.untagged_responses.pop("EXPUNGE", None)
    typ, data = conn.uid("MOVE", str(u_inv), "Trash")
    check(typ == "OK", f"UID MOVE: {typ} {data}")
    cu = text(conn.untagged_responses.pop("COPYUID", [b""]))
    m = re.match(r"^(\d+) (\S+) (\S+)$", cu)
    check(m and parse_uid_set(m.group(2)) == {u_inv}, f"MOVE without [COPYUID]: {cu!r}")
    trash_uid = int(m.group(3))
    expunged = text(conn.untagged_responses.pop("EXPUNGE", [b""]))
    check(expunged.strip() == str(seq[u_inv]), f"MOVE: expected * {seq[u_inv]} EXPUNGE, got {expunged!r}")
    check(all_uids(conn) == sorted([u_plain, u_multi]), f"INBOX after MOVE: {all_uids(conn)}")

    step("the copies: flags and UIDs in Archive and Trash")
    typ, data = conn.select("Archive", readonly=True)
    check(typ == "OK" and data[0] == b"1", f"EXAMINE Archive: {typ} {data}")
    check(int(conn.untagged_responses["UIDVALIDITY"][0]) == archive_validity, "Archive UIDVALIDITY")
    check(all_uids(conn) == [archive_uid], f"Archive UIDs {all_uids(conn)} vs COPYUID {archive_uid}")
    check("\\Flagged" in flags_now(conn, archive_uid), "COPY lost \\Flagged")
    prefix, lits = uid_fetch_one(conn, archive_uid, "(BODY.PEEK[])")
    check(lits["BODY[]"].endswith(messages["multipart"]), "COPY changed the message")
    ok(conn.select("Trash"), "SELECT Trash")
    check(all_uids(conn) == [trash_uid], f"Trash UIDs {all_uids(conn)} vs COPYUID {trash_uid}")
    check(flags_now(conn, trash_uid) == {"\\Seen", "$Forwarded"},
          f"MOVE changed flags: {flags_now(conn, trash_uid)}")

    step("APPEND with flags and date (APPENDUID), and to a missing mailbox")
    draft = crlf("From: " + args.user + "\nSubject: draft one\nMessage-ID: <draft-1@example.test>\n\nDraft body\n")
    when = "01-Feb-2024 10:11:12 +0100"
    typ, data = conn.append("Drafts", "(\\Draft \\Seen $Label1)", f'"{when}"', draft)
    check(typ == "OK", f"APPEND: {typ} {data}")
    m = re.search(r"\[APPENDUID (\d+) (\d+)\]", text(data))
    check(m, f"APPEND without [APPENDUID]: {data!r}")
    drafts_validity, draft_uid = int(m.group(1)), int(m.group(2))
    ok(conn.select("Drafts"), "SELECT Drafts")
    check(int(conn.untagged_responses["UIDVALIDITY"][0]) == drafts_validity, "Drafts UIDVALIDITY")
    prefix, lits = uid_fetch_one(conn, draft_uid, "(FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])")
    check(flags_of(prefix) >= {"\\Draft", "\\Seen", "$Label1"}, f"APPEND flags: {prefix}")
    m = re.search(r'INTERNALDATE "([^"]+)"', prefix)
    check(m and instant(m.group(1)) == instant(when),
          f"APPEND date: {prefix} is not the instant {when}")
    check(lits.get("BODY[]") == draft, f"APPENDed message changed: {lits.get('BODY[]')!r}")
    check(number(prefix, "RFC822.SIZE") == len(draft), f"RFC822.SIZE of appended: {prefix}")
    typ, data = conn.append("NoSuchFolder", None, None, draft)
    check(typ == "NO" and "TRYCREATE" in text(data).upper(), f"APPEND to a missing mailbox: {typ} {data}")

    step("IDLE (raw commands): a message delivered through SMTP wakes it")
    watcher = login(args)
    ok(watcher.select("INBOX"), "SELECT INBOX (watcher)")
    watcher.sock.settimeout(15)
    watcher.send(b"I001 IDLE\r\n")
    line = watcher.readline()
    check(line.startswith(b"+"), f"IDLE: expected a continuation, got {line!r}")
    started = time.time()
    deliver(args.deliver, rcpt, fill(IDLE_MESSAGE, rcpt))
    exists = None
    seen = []
    while exists is None:
        try:
            line = watcher.readline()
        except socket.timeout:
            raise Mismatch(f"IDLE: no EXISTS within 15 s of delivery; got {seen!r}")
        check(line, "IDLE: connection closed")
        seen.append(line)
        m = re.match(rb"^\* (\d+) EXISTS", line)
        if m:
            exists = int(m.group(1))
    elapsed = time.time() - started
    print(f"    IDLE woke after {elapsed:.3f} s with * {exists} EXISTS")
    check(exists == 3, f"IDLE: * {exists} EXISTS, expected 3")
    watcher.send(b"DONE\r\n")
    while True:
        line = watcher.readline()
        check(line, "IDLE DONE: connection closed")
        if line.startswith(b"I001 "):
            check(line.startswith(b"I001 OK"), f"IDLE DONE: {line!r}")
            break
    ok(watcher.noop(), "NOOP after IDLE")
    watcher.logout()

    step("EXPUNGE")
    typ, data = conn.select("INBOX")
    check(typ == "OK" and data[0] == b"3", f"SELECT INBOX: {data}")
    uids = all_uids(conn)
    check(uids[:2] == sorted([u_plain, u_multi]) and len(uids) == 3, f"INBOX UIDs {uids}")
    u_idle = uids[2]
    ok(conn.uid("STORE", str(u_idle), "+FLAGS.SILENT", "(\\Deleted)"), "STORE \\Deleted")
    typ, data = conn.expunge()
    check(typ == "OK" and data == [b"3"], f"EXPUNGE: expected * 3 EXPUNGE, got {typ} {data}")
    check(all_uids(conn) == sorted([u_plain, u_multi]), f"after EXPUNGE: {all_uids(conn)}")

    step("UID EXPUNGE removes only the given UIDs")
    appended = []
    for i in range(2):
        msg = crlf(f"Subject: to expunge {i}\nMessage-ID: <exp-{i}@example.test>\n\nbody {i}\n")
        typ, data = conn.append("INBOX", "(\\Deleted)", None, msg)
        check(typ == "OK", f"APPEND: {data}")
        appended.append(int(re.search(r"APPENDUID \d+ (\d+)", text(data)).group(1)))
    ok(conn.noop(), "NOOP")
    check(all_uids(conn) == sorted([u_plain, u_multi]) + appended, f"after APPENDs: {all_uids(conn)}")
    conn.untagged_responses.pop("EXPUNGE", None)
    typ, data = conn.uid("EXPUNGE", str(appended[0]))
    check(typ == "OK", f"UID EXPUNGE: {typ} {data}")
    check(text(conn.untagged_responses.pop("EXPUNGE", [b""])) == "3",
          "UID EXPUNGE: expected exactly * 3 EXPUNGE")
    check(all_uids(conn) == sorted([u_plain, u_multi]) + [appended[1]], f"after UID EXPUNGE: {all_uids(conn)}")

    step("UNSELECT keeps \\Deleted messages; CLOSE expunges them silently")
    ok(conn.unselect(), "UNSELECT")
    check(conn.state == "AUTH", conn.state)
    ok(conn.select("INBOX"), "SELECT INBOX")
    check(all_uids(conn) == sorted([u_plain, u_multi]) + [appended[1]], f"after UNSELECT: {all_uids(conn)}")
    ok(conn.check(), "CHECK")
    conn.untagged_responses.pop("EXPUNGE", None)
    ok(conn.close(), "CLOSE")
    check("EXPUNGE" not in conn.untagged_responses, "CLOSE sent EXPUNGE responses")
    status, lines, tagged = raw(conn, "FETCH 1 FLAGS")
    check(status in ("BAD", "NO"), f"FETCH after CLOSE: {tagged!r}")
    data = ok(conn.status("INBOX", "(MESSAGES)"), "STATUS")
    check(re.search(r"MESSAGES 2\b", text(data)), f"CLOSE did not expunge: {text(data)}")

    step("QRESYNC: ENABLE, SELECT (QRESYNC ...) reports VANISHED (EARLIER) and changed flags")
    q = login(args)
    typ, data = q.enable("CONDSTORE QRESYNC")
    check(typ == "OK", f"ENABLE: {typ} {data}")
    enabled = text(q.untagged_responses.pop("ENABLED", [b""])).upper()
    check("QRESYNC" in enabled, f"ENABLE QRESYNC: ENABLED {enabled!r}")
    q.untagged_responses = {}
    typ, data = q._simple_command(
        "SELECT", "INBOX", f"(QRESYNC ({validity} {modseq_start} 1:{u_idle + 10}))")
    check(typ == "OK", f"SELECT QRESYNC: {typ} {data}")
    q.state = "SELECTED"
    vanished = text(q.untagged_responses.get("VANISHED", [b""]))
    m = re.match(r"^\(EARLIER\) (\S+)$", vanished.strip())
    check(m, f"SELECT QRESYNC: no VANISHED (EARLIER): {q.untagged_responses}")
    gone = parse_uid_set(m.group(1))
    check({u_inv, u_idle, appended[0], appended[1]} <= gone and not gone & {u_plain, u_multi},
          f"VANISHED (EARLIER) {m.group(1)}: expected {u_inv},{u_idle},{appended} and not {u_plain},{u_multi}")
    fetched = text(q.untagged_responses.get("FETCH", [b""]))
    check(re.search(rf"UID {u_multi}\b", fetched) and "\\Flagged" in fetched,
          f"SELECT QRESYNC did not report the flag change of {u_multi}: {fetched!r}")
    q.untagged_responses = {}
    ok(q.uid("STORE", str(u_multi), "+FLAGS", "(\\Deleted)"), "STORE \\Deleted")
    typ, data = q.expunge()
    check(typ == "OK", f"EXPUNGE: {typ} {data}")
    vanished = text(q.untagged_responses.get("VANISHED", [b""]))
    check(vanished.strip() == str(u_multi) and not [d for d in data if d],
          f"EXPUNGE with QRESYNC: expected * VANISHED {u_multi} and no EXPUNGE, got "
          f"{vanished!r} / {data!r}")
    q.logout()

    step("GETQUOTAROOT / GETQUOTA")
    typ, data = conn.getquotaroot("INBOX")
    check(typ == "OK", f"GETQUOTAROOT: {typ} {data}")
    roots, quotas = data
    m = re.match(r'^"?INBOX"? +("(?:\\.|[^"])*"|\S+)', text(roots))
    check(m, f"QUOTAROOT names no root: {roots!r}")
    root = m.group(1)
    qt = text(quotas)
    m = re.search(r"STORAGE (\d+) (\d+)", qt)
    # The account has a 100M quota; 2 messages remain in INBOX, more in other folders.
    check(m and int(m.group(1)) > 0 and int(m.group(2)) == 102400, f"QUOTA STORAGE: {qt!r}")
    typ, data = conn.getquota(root)
    check(typ == "OK" and "STORAGE" in text(data), f"GETQUOTA {root}: {typ} {data}")

    step("odd messages: quotes and backslash in ENVELOPE, group syntax, bare LF, no final newline")
    ok(conn.create("Odd"), "CREATE Odd")
    odd = [
        b'Subject: a "quoted" \\ back\r\nFrom: undisclosed-recipients:;\r\n'
        b"To: Group: a@b.c, d@e.f;\r\n\r\nbody\r\n",
        b"Subject: bare LF\nFrom: x@y.z\n\nline1\nline2\n",
        b"Subject: no final newline\r\n\r\nlast",
    ]
    for msg in odd:
        ok(conn.append("Odd", None, None, msg), "APPEND Odd")
    ok(conn.select("Odd"), "SELECT Odd")
    env = text(ok(conn.fetch("1", "(ENVELOPE)"), "FETCH ENVELOPE"))
    check('"a \\"quoted\\" \\\\ back"' in env or '{17}\na "quoted" \\ back' in env,
          f"ENVELOPE subject with quotes and a backslash: {env!r}")
    check('((NIL NIL "Group" NIL)(NIL NIL "a" "b.c")(NIL NIL "d" "e.f")(NIL NIL NIL NIL))' in env,
          f"ENVELOPE group syntax (RFC 3501 7.4.2): {env!r}")
    prefix, lits = uid_fetch_one(conn, all_uids(conn)[1], "(RFC822.SIZE BODY.PEEK[])")
    crlf_form = odd[1].replace(b"\n", b"\r\n")
    check(lits.get("BODY[]") == crlf_form and number(prefix, "RFC822.SIZE") == len(crlf_form),
          f"a bare-LF message must come out with CRLF and its CRLF size: {prefix!r} {lits!r}")
    prefix, lits = uid_fetch_one(conn, all_uids(conn)[2], "(BODY.PEEK[TEXT] BODYSTRUCTURE)")
    check(lits.get("BODY[TEXT]") == b"last", f"BODY[TEXT] without a final newline: {lits!r}")
    check('"7BIT" 4 0' in prefix.upper(), f"BODYSTRUCTURE size/lines of 'last': {prefix!r}")
    ok(conn.close(), "CLOSE")

    step("LOGIN with literals (as clients send passwords with special characters)")
    lit = connect_tls(args)
    user_b, pass_b = args.user.encode(), args.password.encode()
    lit.send(b"L1 LOGIN {%d}\r\n" % len(user_b))
    check(lit.readline().startswith(b"+"), "LOGIN literal: no continuation")
    lit.send(user_b + b" {%d}\r\n" % len(pass_b))
    check(lit.readline().startswith(b"+"), "LOGIN second literal: no continuation")
    lit.send(pass_b + b"\r\n")
    while True:
        line = lit.readline()
        check(line, "LOGIN with literals: connection closed")
        if line.startswith(b"L1 "):
            check(line.startswith(b"L1 OK"), f"LOGIN with literals: {line!r}")
            break
    lit.state = "AUTH"
    lit.logout()

    step("bad input: unknown command, bad syntax, FETCH before SELECT, huge literal")
    expect_bad(conn, "XYZZY")
    expect_bad(conn, "SELECT")
    expect_bad(conn, "FETCH 1 FLAGS", allowed=("BAD", "NO"))
    expect_bad(conn, "UID FETCH 1:* (FLAGS", allowed=("BAD",))
    status, lines, tagged = raw(conn, "APPEND INBOX {4000000000}", literal_ok=True)
    check(status in ("NO", "BAD"), f"a 4 GB literal was not refused: {status} {tagged!r}")
    if status == "NO":
        check(re.search(r"\[(TOOBIG|OVERQUOTA|LIMIT)\]", tagged.upper()),
              f"NO without [TOOBIG] (or [OVERQUOTA]/[LIMIT]): {tagged!r}")
    status, _, tagged = raw(conn, "NOOP")
    check(status == "OK", f"connection unusable after the huge literal: {tagged!r}")

    step("LOGOUT")
    typ, data = conn.logout()
    check(typ == "BYE", f"LOGOUT: {typ} {data}")
    for message in NOTES:
        print(f"NOTE: {message}")
    print("imaplib suite: all checks passed")


def logindisabled(args):
    step("plain port without loopback login: LOGINDISABLED until STARTTLS")
    conn = connect_plain(args)
    before = caps(conn)
    check("STARTTLS" in before, f"no STARTTLS: {sorted(before)}")
    check("LOGINDISABLED" in before, f"no LOGINDISABLED before STARTTLS: {sorted(before)}")
    try:
        typ, data = conn.login(args.user, args.password)
        raise Mismatch(f"LOGIN before STARTTLS succeeded: {typ} {data}")
    except imaplib.IMAP4.error as err:
        # NO (with [PRIVACYREQUIRED]) or BAD: refused either way.
        print(f"    LOGIN before STARTTLS refused: {err}")
    status, lines, tagged = raw(conn, "AUTHENTICATE PLAIN " + base64.b64encode(
        f"\0{args.user}\0{args.password}".encode()).decode())
    check(status in ("NO", "BAD"), f"AUTHENTICATE before STARTTLS: {tagged!r} {lines!r}")
    ok(conn.starttls(context(args.cafile)), "STARTTLS")
    after = fresh_caps(conn)
    check("LOGINDISABLED" not in after and "STARTTLS" not in after, f"after STARTTLS: {sorted(after)}")
    ok(conn.login(args.user, args.password), "LOGIN after STARTTLS")
    ok(conn.select("INBOX"), "SELECT after STARTTLS")
    conn.logout()
    step("implicit TLS port logs in")
    conn = login(args)
    conn.logout()
    print("logindisabled: all checks passed")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["suite", "logindisabled"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--imaps-port", type=int, required=True)
    parser.add_argument("--imap-port", type=int, required=True)
    parser.add_argument("--cafile", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--deliver")
    args = parser.parse_args()
    try:
        if args.mode == "suite":
            suite(args)
        else:
            logindisabled(args)
    except (Mismatch, imaplib.IMAP4.error, OSError, ssl.SSLError, smtplib.SMTPException) as err:
        print(f"\nFAILED at step '{STEP[0]}': {type(err).__name__}: {err}", flush=True)
        traceback.print_exc(file=sys.stdout)
        for conn in CONNECTIONS[-3:]:
            print(f"\nlast lines of connection {id(conn):x}:")
            log = getattr(conn, "_cmd_log", {})
            for i in range(conn._cmd_log_len):
                idx = (getattr(conn, "_cmd_log_idx", 0) + i) % conn._cmd_log_len
                if idx in log:
                    print("   ", log[idx][0])
        sys.exit(1)


if __name__ == "__main__":
    main()
