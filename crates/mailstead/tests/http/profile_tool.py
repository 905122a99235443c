#!/usr/bin/env python3
"""Real clients for the HTTP profile and access tests: Python's http.client and plistlib.
Each command prints one JSON object.

  mobileconfig URL             status, headers and (on 200) the profile parsed by plistlib
  get_from SOURCE URL          status and body of a GET sent from the local address SOURCE
"""

import http.client
import json
import plistlib
import sys
import urllib.parse


def get(url, source=None):
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(
        parts.hostname, parts.port, timeout=30,
        source_address=(source, 0) if source else None)
    path = parts.path + ("?" + parts.query if parts.query else "")
    conn.request("GET", path)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response, data


def mobileconfig(url):
    response, data = get(url)
    answer = {
        "status": response.status,
        "content_type": response.getheader("Content-Type", ""),
        "disposition": response.getheader("Content-Disposition", ""),
    }
    if response.status == 200:
        answer["profile"] = plistlib.loads(data, fmt=plistlib.FMT_XML)
    else:
        answer["body"] = data.decode("utf-8", "replace")
    return answer


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "mobileconfig":
        answer = mobileconfig(args[0])
    elif command == "get_from":
        response, data = get(args[1], source=args[0])
        answer = {"status": response.status, "body": data.decode("utf-8", "replace")}
    else:
        raise SystemExit(f"unknown command {command}")
    print(json.dumps(answer))


if __name__ == "__main__":
    main()
