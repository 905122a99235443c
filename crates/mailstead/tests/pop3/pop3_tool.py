"""POP3 with Python's poplib (the standard library's client), for the end-to-end tests.

  pop3_tool.py uidls PORT USER PASSWORD   -> JSON: STAT, LIST and UIDL as the server gives them
  pop3_tool.py suite PORT USER PASSWORD   -> JSON: a whole session's answers (CAPA, STLS,
                                             RETR, TOP, DELE, RSET, QUIT and a second login)
"""

import json
import poplib
import ssl
import sys


def listing(pop):
    count, size = pop.stat()
    _, lines, _ = pop.list()
    sizes = [line.decode().split() for line in lines]
    _, lines, _ = pop.uidl()
    uidls = [line.decode().split() for line in lines]
    return {"stat": [count, size], "list": sizes, "uidl": uidls}


def uidls(port, user, password):
    pop = poplib.POP3("127.0.0.1", port, timeout=30)
    pop.user(user)
    pop.pass_(password)
    result = listing(pop)
    pop.quit()
    return result


def suite(port, user, password):
    out = {}
    pop = poplib.POP3("127.0.0.1", port, timeout=30)
    out["capa_before"] = sorted(pop.capa().keys())
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    pop.stls(context)
    out["capa_after_tls"] = sorted(pop.capa().keys())
    out["user"] = pop.user(user).decode()
    out["pass"] = pop.pass_(password).decode()
    out["listing"] = listing(pop)
    _, lines, octets = pop.retr(1)
    out["retr1"] = b"\r\n".join(lines).decode()
    out["retr1_octets"] = octets
    _, lines, _ = pop.top(2, 1)
    out["top2"] = [line.decode() for line in lines]
    out["dele1"] = pop.dele(1).decode()
    try:
        pop.retr(1)
        out["retr_deleted"] = "no error"
    except poplib.error_proto as err:
        out["retr_deleted"] = str(err)
    out["rset"] = pop.rset().decode()
    out["dele2"] = pop.dele(2).decode()
    out["noop"] = pop.noop().decode()
    out["quit"] = pop.quit().decode()
    pop = poplib.POP3("127.0.0.1", port, timeout=30)
    pop.stls(context)
    pop.user(user)
    pop.pass_(password)
    out["after"] = listing(pop)
    pop.quit()
    return out


def main():
    command, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    if command == "uidls":
        result = uidls(port, user, password)
    elif command == "suite":
        result = suite(port, user, password)
    else:
        raise SystemExit(f"unknown command {command}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
