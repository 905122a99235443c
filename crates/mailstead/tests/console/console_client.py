#!/usr/bin/env python3
"""A browser's requests to the web console, made with Python's http.client and imaplib for
tests/console_http.rs and tests/console_browser.rs. Each command prints one JSON object.

  login BASE ADDRESS PASSWORD         POST /console/login; status, location, the session cookie
  get BASE PATH COOKIE                status, location and body ("-" for no cookie)
  post BASE PATH COOKIE FIELDS [ORIGIN]
                                      a form post (FIELDS is a JSON object); ORIGIN defaults to
                                      BASE, "-" sends none
  imap_subjects PORT CAFILE USER PASS logs in over IMAPS (trusting only CAFILE) and lists
                                      INBOX's subjects, or says why the login was refused
"""

import http.client
import imaplib
import json
import ssl
import sys
import urllib.parse


def request(base, method, path, cookie=None, body=None, origin=None):
    parts = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {}
    if cookie and cookie != "-":
        headers["Cookie"] = cookie
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if origin and origin != "-":
        headers["Origin"] = origin
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read().decode("utf-8")
    conn.close()
    set_cookie = response.getheader("Set-Cookie", "")
    return {
        "status": response.status,
        "location": response.getheader("Location", ""),
        "content_type": response.getheader("Content-Type", ""),
        "set_cookie": set_cookie,
        # name=value, as a browser sends it back.
        "cookie": set_cookie.split(";")[0] if set_cookie else "",
        "body": data,
    }


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "login":
        base, address, password = args
        body = urllib.parse.urlencode({"address": address, "password": password})
        result = request(base, "POST", "/console/login", body=body, origin=base)
    elif command == "get":
        result = request(args[0], "GET", args[1], cookie=args[2])
    elif command == "post":
        base, path, cookie, fields = args[:4]
        origin = args[4] if len(args) > 4 else base
        body = urllib.parse.urlencode(json.loads(fields))
        result = request(base, "POST", path, cookie=cookie, body=body, origin=origin)
    elif command == "imap_subjects":
        context = ssl.create_default_context(cafile=args[1])
        # The self-signed certificate names the server's hostname, not 127.0.0.1.
        context.check_hostname = False
        imap = imaplib.IMAP4_SSL("127.0.0.1", int(args[0]), ssl_context=context, timeout=30)
        try:
            imap.login(args[2], args[3])
        except imaplib.IMAP4.error as err:
            print(json.dumps({"accepted": False, "error": str(err)}))
            return
        imap.select("INBOX", readonly=True)
        _, data = imap.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        subjects = []
        for item in data:
            if isinstance(item, tuple):
                header = item[1].decode("utf-8", "replace").strip()
                subjects.append(header.partition(":")[2].strip())
        imap.logout()
        result = {"accepted": True, "subjects": subjects}
    else:
        raise SystemExit("unknown command " + command)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
