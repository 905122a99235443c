#!/usr/bin/env python3
"""Real clients for the HTTP profile and access tests: Python's http.client and plistlib.
Each command prints one JSON object.

  mobileconfig URL             status, headers and (on 200) the profile parsed by plistlib
  get_from SOURCE URL          status and body of a GET sent from the local address SOURCE
  thunderbird URL              status and what Thunderbird's account setup would refuse in
                               the config-v1.1.xml at URL (an empty list: it takes it)
"""

import http.client
import json
import plistlib
import re
import sys
import urllib.parse
import xml.etree.ElementTree as ET


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


# What Thunderbird's account setup (readFromXML in comm-central's accountcreation) checks
# when it reads a config-v1.1.xml: a valid id and at least one domain; each server with a
# known type, a host name, a port from 1 to 65535, a socketType of plain, SSL or STARTTLS,
# a username and at least one authentication it knows; at least one incoming server and an
# smtp outgoing server. A config that fails any of these is refused with an error.
INCOMING_TYPES = {"imap", "pop3"}
SOCKET_TYPES = {"plain", "SSL", "STARTTLS"}
AUTHENTICATIONS = {
    "password-cleartext", "plain", "password-encrypted", "secure", "GSSAPI", "NTLM",
    "TLS-client-cert", "OAuth2", "none", "client-IP-address",
}
HOSTNAME = re.compile(r"^[A-Za-z0-9.-]+$")


def thunderbird_problems(body):
    problems = []
    try:
        root = ET.fromstring(body)
    except ET.ParseError as err:
        return [f"not XML: {err}"]
    if root.tag != "clientConfig":
        problems.append(f"root is {root.tag}, not clientConfig")
    provider = root.find("emailProvider")
    if provider is None:
        return problems + ["no emailProvider"]
    if not HOSTNAME.match(provider.get("id") or ""):
        problems.append(f"emailProvider id {provider.get('id')!r} is no host name")
    domains = [d.text or "" for d in provider.findall("domain")]
    if not domains or not all(HOSTNAME.match(d) for d in domains):
        problems.append(f"need proper <domain>: {domains!r}")

    def server(element, types):
        kind = element.get("type")
        where = f"{element.tag} {kind}"
        if kind not in types:
            problems.append(f"{where}: unknown type")
        host = element.findtext("hostname") or ""
        if not HOSTNAME.match(host):
            problems.append(f"{where}: hostname {host!r}")
        port = element.findtext("port") or ""
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            problems.append(f"{where}: port {port!r}")
        socket = element.findtext("socketType")
        if socket not in SOCKET_TYPES:
            problems.append(f"{where}: socketType {socket!r}")
        if not (element.findtext("username") or "").strip():
            problems.append(f"{where}: no username")
        auths = [a.text for a in element.findall("authentication")]
        if not any(a in AUTHENTICATIONS for a in auths):
            problems.append(f"{where}: need proper <authentication>: {auths!r}")

    incoming = provider.findall("incomingServer")
    outgoing = provider.findall("outgoingServer")
    for element in incoming:
        server(element, INCOMING_TYPES)
    for element in outgoing:
        server(element, {"smtp"})
    if not incoming:
        problems.append("need proper <incomingServer>")
    if not outgoing:
        problems.append("need proper <outgoingServer>")
    return problems


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "mobileconfig":
        answer = mobileconfig(args[0])
    elif command == "get_from":
        response, data = get(args[1], source=args[0])
        answer = {"status": response.status, "body": data.decode("utf-8", "replace")}
    elif command == "thunderbird":
        response, data = get(args[0])
        answer = {"status": response.status}
        if response.status == 200:
            answer["problems"] = thunderbird_problems(data)
            answer["body"] = data.decode("utf-8", "replace")
    else:
        raise SystemExit(f"unknown command {command}")
    print(json.dumps(answer))


if __name__ == "__main__":
    main()
