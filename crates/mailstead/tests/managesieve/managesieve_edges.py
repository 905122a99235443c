"""ManageSieve (RFC 5804) over a raw socket, for the protocol's edge cases, and what each step
left in the user's home (Pigeonhole's layout: ~/sieve/NAME.sieve, ~/.dovecot.sieve).

  managesieve_edges.py tls-rules PORT USER PASSWORD
      -> JSON: before STARTTLS (capabilities, AUTHENTICATE's answer), after it
  managesieve_edges.py session PORT USER PASSWORD HOME
      -> JSON: every step's response and the files after it

The server is expected to run with max_scripts = 3, max_script_size = 10000 and
max_storage = 20000 for `session`.
"""

import base64
import json
import os
import socket
import ssl
import sys


class Client:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.file = self.sock.makefile("rb")

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def read_line(self):
        line = self.file.readline()
        if not line:
            raise EOFError("connection closed")
        return line

    def read_response(self):
        """Lines up to the one starting with OK, NO or BYE; literals read whole. Returns
        (data lines, final line), each as text with literals inline and CRLF removed."""
        lines = []
        while True:
            text = b""
            line = self.read_line()
            while line.rstrip(b"\r\n").endswith(b"}") and b"{" in line:
                head, _, size = line.rstrip(b"\r\n").rpartition(b"{")
                size = size[:-1].rstrip(b"+")
                if not size.isdigit():
                    break
                text += head + self.file.read(int(size))
                line = self.read_line()
            text += line
            # Only the line end goes: a literal's own CRLF stays.
            if text.endswith(b"\r\n"):
                text = text[:-2]
            elif text.endswith(b"\n"):
                text = text[:-1]
            text = text.decode("utf-8", "replace")
            if text.startswith(("OK", "NO", "BYE")):
                return lines, text
            lines.append(text)

    def command(self, data):
        self.send(data)
        return self.read_response()

    def starttls(self):
        lines, final = self.command("STARTTLS\r\n")
        assert final.startswith("OK"), final
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        self.sock = context.wrap_socket(self.sock, server_hostname="mail.example.test")
        self.file = self.sock.makefile("rb")
        return self.read_response()


def capabilities(lines):
    caps = {}
    for line in lines:
        parts = line.split('"')
        # "NAME" or "NAME" "VALUE"
        name = parts[1]
        caps[name] = parts[3] if len(parts) > 3 else None
    return caps


def plain(user, password):
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


def tls_rules(port, user, password):
    out = {}
    client = Client(port)
    lines, final = client.read_response()
    out["greeting"] = final
    out["caps_plain"] = capabilities(lines)
    _, out["authenticate_plain"] = client.command(
        f'AUTHENTICATE "PLAIN" "{plain(user, password)}"\r\n'
    )
    if out["authenticate_plain"].startswith("OK"):
        # Logged in without TLS (allowed on loopback): STARTTLS is over.
        _, out["logout"] = client.command("LOGOUT\r\n")
        return out
    _, out["listscripts_unauthenticated"] = client.command("LISTSCRIPTS\r\n")
    lines, final = client.starttls()
    out["caps_tls"] = capabilities(lines)
    out["starttls_done"] = final
    _, out["authenticate_tls"] = client.command(
        f'AUTHENTICATE "PLAIN" "{plain(user, password)}"\r\n'
    )
    _, out["logout"] = client.command("LOGOUT\r\n")
    return out


def files(home):
    sieve_dir = os.path.join(home, "sieve")
    link = os.path.join(home, ".dovecot.sieve")
    state = {
        "scripts": sorted(
            name for name in os.listdir(sieve_dir) if name.endswith(".sieve")
        )
        if os.path.isdir(sieve_dir)
        else [],
        "link": os.readlink(link) if os.path.islink(link) else None,
    }
    return state


def session(port, user, password, home):
    steps = []
    client = Client(port)
    client.read_response()
    client.starttls()

    def step(name, data):
        lines, final = client.command(data)
        steps.append(
            {"name": name, "lines": lines, "final": final, "files": files(home)}
        )

    def literal(text):
        data = text.encode()
        return b"{%d+}\r\n" % len(data) + data

    # A wrong password, then the right one through a continuation answered with a literal.
    step("wrong password", f'AUTHENTICATE "PLAIN" "{plain(user, "wrong")}"\r\n')
    client.send('AUTHENTICATE "PLAIN"\r\n')
    challenge = client.read_line().decode().rstrip("\r\n")
    client.send(literal(plain(user, password)) + b"\r\n")
    lines, final = client.read_response()
    steps.append({"name": "login", "lines": [challenge], "final": final, "files": files(home)})
    step("capability", "CAPABILITY\r\n")

    bad = 'require "fileinto";\r\nif true {\r\n  filein "x";\r\n}\r\n'
    step("put bad", b'PUTSCRIPT "bad" ' + literal(bad) + b"\r\n")
    step("check bad", b"CHECKSCRIPT " + literal(bad) + b"\r\n")
    good = 'require "fileinto";\r\nif header :contains "subject" "x" { fileinto "X"; }\r\n'
    step("check good", b"CHECKSCRIPT " + literal(good) + b"\r\n")
    step("put first", b'PUTSCRIPT "first" ' + literal(good) + b"\r\n")
    step("list", "LISTSCRIPTS\r\n")
    step("activate first", 'SETACTIVE "first"\r\n')
    step("rename active", 'RENAMESCRIPT "first" "renamed"\r\n')
    step("list after rename", "LISTSCRIPTS\r\n")
    step("get renamed", 'GETSCRIPT "renamed"\r\n')
    step("delete active", 'DELETESCRIPT "renamed"\r\n')
    step("get missing", 'GETSCRIPT "missing"\r\n')
    step("activate missing", 'SETACTIVE "missing"\r\n')
    step("invalid name", b'PUTSCRIPT "a/b" ' + literal("keep;") + b"\r\n")

    # Quotas: 3 scripts, 10000 bytes each, 20000 in all.
    step("havespace too big", 'HAVESPACE "x" 10001\r\n')
    step("havespace fits", 'HAVESPACE "x" 9000\r\n')
    big = "#" + "x" * 9996 + "\r\n"
    step("put second", b'PUTSCRIPT "second" ' + literal(big) + b"\r\n")
    step("put storage full", b'PUTSCRIPT "third" ' + literal(big) + b"\r\n")
    step("put third", b'PUTSCRIPT "third" ' + literal("keep;") + b"\r\n")
    step("put fourth", b'PUTSCRIPT "fourth" ' + literal("keep;") + b"\r\n")
    step("havespace count", 'HAVESPACE "fourth" 10\r\n')
    step("replace third", b'PUTSCRIPT "third" ' + literal("discard;") + b"\r\n")
    step("rename taken", 'RENAMESCRIPT "third" "second"\r\n')
    # A literal over the limit is read and dropped; the session goes on.
    huge = b"#" * 200000
    step(
        "literal too big",
        b'PUTSCRIPT "huge" {%d+}\r\n' % len(huge) + huge + b"\r\n",
    )
    step("noop tag", 'NOOP "sync-1"\r\n')
    step("deactivate", 'SETACTIVE ""\r\n')
    step("delete", 'DELETESCRIPT "renamed"\r\n')
    step("unknown", "XYZZY\r\n")
    step("unauthenticate", "UNAUTHENTICATE\r\n")
    step("list unauthenticated", "LISTSCRIPTS\r\n")
    step("logout", "LOGOUT\r\n")
    return steps


def main():
    mode = sys.argv[1]
    if mode == "tls-rules":
        result = tls_rules(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    elif mode == "session":
        result = session(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
