#!/usr/bin/env python3
"""Reads or changes a whole IMAP account with imaplib, for tests that compare servers.

  imap_tool.py state --imaps-port P --cafile CERT --user U --password PW
      prints JSON: {"delimiter": "/", "listed": [...], "mailboxes": {NAME: {...}}} where
      "listed" has every name LIST "" "*" gives, as the server gives it, NAME uses "/" as the
      hierarchy delimiter whatever the server's is ("subscribed" lists LSUB's names), and each
      selectable mailbox has
      uidvalidity, uidnext, and messages: [{uid, flags (sorted, no \\Recent), message_id,
      size, internaldate (unix time)}], read with EXAMINE and BODY.PEEK (changes nothing).
  imap_tool.py apply ... --actions JSON
      runs a list of actions and prints JSON results, one per action:
      {"op": "create", "mailbox": "a/b"}
      {"op": "subscribe", "mailbox": "a/b"}
      {"op": "append", "mailbox": M, "flags": "(\\Seen)", "date": "01-Feb-2024 10:11:12 +0100",
       "message": TEXT}                       -> {"uid": APPENDUID's uid, "uidvalidity": ...}
      {"op": "store", "mailbox": M, "uid": N, "change": "+FLAGS", "flags": "(\\Flagged)"}
      {"op": "expunge", "mailbox": M, "uid": N}  (\\Deleted then UID EXPUNGE)
Mailbox names in actions use "/" and are translated to the server's delimiter.
Exits 1 with a message on any failure.
"""

import argparse
import datetime
import imaplib
import json
import re
import ssl
import sys

LIST_RE = re.compile(r'^\((?P<attrs>[^)]*)\) (?P<delim>NIL|"(?:\\.|[^"])*") (?P<name>.*)$')


def fail(message):
    print(f"imap_tool: {message}", file=sys.stderr)
    sys.exit(1)


def ok(result, what):
    typ, data = result
    if typ != "OK":
        fail(f"{what}: {typ} {data!r}")
    return data


def unquote(s):
    s = s.strip()
    if s.startswith('"') and s.endswith('"'):
        return re.sub(r"\\(.)", r"\1", s[1:-1])
    return s


def quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def connect(args):
    ctx = ssl.create_default_context(cafile=args.cafile)
    ctx.check_hostname = False
    conn = imaplib.IMAP4_SSL(args.host, args.imaps_port, ssl_context=ctx, timeout=30)
    ok(conn.login(args.user, args.password), "LOGIN")
    return conn


def delimiter(conn):
    data = ok(conn.list('""', '""'), 'LIST "" ""')
    m = LIST_RE.match(data[0].decode())
    if not m or m.group("delim") == "NIL":
        fail(f'LIST "" "": {data!r}')
    return unquote(m.group("delim"))


def listing(conn):
    out = {}
    for item in ok(conn.list('""', '"*"'), 'LIST "" "*"'):
        if isinstance(item, tuple):
            m = LIST_RE.match(re.sub(r"\{\d+\}$", "", item[0].decode()).strip() + " x")
            name = item[1].decode()
        elif item:
            m = LIST_RE.match(item.decode())
            name = unquote(m.group("name")) if m else None
        else:
            continue
        if not m:
            fail(f"cannot parse LIST item {item!r}")
        out[name] = {a.lower() for a in m.group("attrs").split()}
    return out


def instant(text):
    return int(datetime.datetime.strptime(text.strip(), "%d-%b-%Y %H:%M:%S %z").timestamp())


def state(conn):
    delim = delimiter(conn)
    caps = {c.upper() for c in conn.capabilities}
    if "CONDSTORE" in caps:
        conn.enable("CONDSTORE")
    boxes = {}
    listed = listing(conn)
    for name, attrs in sorted(listed.items()):
        if "\\noselect" in attrs or "\\nonexistent" in attrs:
            continue
        typ, data = conn.select(quote(name), readonly=True)
        if typ != "OK":
            fail(f"EXAMINE {name}: {typ} {data!r}")
        r = conn.untagged_responses
        box = {
            "uidvalidity": int(r["UIDVALIDITY"][0]),
            "uidnext": int(r["UIDNEXT"][0]),
            "exists": int(data[0]),
            "messages": [],
        }
        if box["exists"]:
            data = ok(conn.uid("FETCH", "1:*",
                               "(UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"),
                      f"UID FETCH in {name}")
            for item in data:
                if not isinstance(item, tuple):
                    continue
                prefix = item[0].decode()
                m = re.search(r'MESSAGE-ID: *(<[^>]*>)', item[1].decode(), re.I)
                flags = re.search(r"FLAGS \(([^)]*)\)", prefix)
                if not flags:
                    fail(f"no FLAGS in {prefix!r} (flags after the literal are not handled)")
                box["messages"].append({
                    "uid": int(re.search(r"UID (\d+)", prefix).group(1)),
                    "flags": sorted(set(flags.group(1).split()) - {"\\Recent"}),
                    "message_id": m.group(1) if m else None,
                    "size": int(re.search(r"RFC822\.SIZE (\d+)", prefix).group(1)),
                    "internaldate": instant(re.search(r'INTERNALDATE "([^"]+)"', prefix).group(1)),
                })
            box["messages"].sort(key=lambda msg: msg["uid"])
            if len(box["messages"]) != box["exists"]:
                fail(f"{name}: {box['exists']} EXISTS but {len(box['messages'])} FETCHed")
        ok(conn.unselect() if "UNSELECT" in caps else conn.close(), "UNSELECT")
        boxes[name.replace(delim, "/")] = box
    subscribed = []
    for item in ok(conn.lsub('""', '"*"'), 'LSUB "" "*"'):
        if isinstance(item, tuple):
            subscribed.append(item[1].decode())
        elif item:
            m = LIST_RE.match(item.decode())
            if not m:
                fail(f"cannot parse LSUB item {item!r}")
            if "\\noselect" not in m.group("attrs").lower():
                subscribed.append(unquote(m.group("name")))
    return {"delimiter": delim, "listed": sorted(listed), "mailboxes": boxes,
            "subscribed": sorted(name.replace(delim, "/") for name in subscribed)}


def apply(conn, actions):
    delim = delimiter(conn)
    results = []
    selected = [None]

    def select(box):
        if selected[0] != box:
            ok(conn.select(quote(box.replace("/", delim))), f"SELECT {box}")
            selected[0] = box

    for action in actions:
        op = action["op"]
        box = action["mailbox"]
        if op == "subscribe":
            ok(conn.subscribe(quote(box.replace("/", delim))), f"SUBSCRIBE {box}")
            results.append({})
        elif op == "create":
            ok(conn.create(quote(box.replace("/", delim))), f"CREATE {box}")
            results.append({})
        elif op == "append":
            message = action["message"].replace("\r\n", "\n").replace("\n", "\r\n").encode()
            date = action.get("date")
            typ, data = conn.append(quote(box.replace("/", delim)), action.get("flags"),
                                    f'"{date}"' if date else None, message)
            if typ != "OK":
                fail(f"APPEND {box}: {typ} {data!r}")
            m = re.search(rb"\[APPENDUID (\d+) (\d+)\]", data[0])
            if not m:
                fail(f"APPEND {box}: no APPENDUID in {data!r}")
            results.append({"uidvalidity": int(m.group(1)), "uid": int(m.group(2))})
        elif op == "store":
            select(box)
            ok(conn.uid("STORE", str(action["uid"]), action["change"], action["flags"]),
               f"STORE {action}")
            results.append({})
        elif op == "expunge":
            select(box)
            ok(conn.uid("STORE", str(action["uid"]), "+FLAGS.SILENT", "(\\Deleted)"), f"STORE {action}")
            ok(conn.uid("EXPUNGE", str(action["uid"])), f"UID EXPUNGE {action}")
            results.append({})
        else:
            fail(f"unknown op {op}")
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["state", "apply"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--imaps-port", type=int, required=True)
    parser.add_argument("--cafile", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--actions")
    args = parser.parse_args()
    try:
        conn = connect(args)
        if args.mode == "state":
            out = state(conn)
        else:
            out = apply(conn, json.loads(args.actions))
        conn.logout()
    except (imaplib.IMAP4.error, OSError) as err:
        fail(f"{type(err).__name__}: {err}")
    print(json.dumps(out, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
