#!/usr/bin/env python3
"""Real clients for the HTTP listener tests: Python's http.client, xml.etree, smtplib and
imaplib. Each command prints one JSON object.

  get URL [HOST]               status, content type and body (HOST replaces the Host header)
  https URL CAFILE             the same over TLS, trusting only CAFILE
  thunderbird URL [HOST]       status and the servers of a config-v1.1.xml
  outlook URL ADDRESS          status and the protocols of a POX autodiscover answer
  outlook_raw URL BODY         status and body for a request body given whole
  smtp PORT RCPT               delivers one message over SMTP
  imap_login PORT USER PASS    logs in over IMAP; says whether it was accepted
  imap_fetch PORT USER PASS    every message of INBOX, whole
"""

import http.client
import imaplib
import json
import smtplib
import ssl
import sys
import urllib.parse
import xml.etree.ElementTree as ET


def request(url, method="GET", body=None, host=None, context=None):
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=30, context=context)
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    path = parts.path + ("?" + parts.query if parts.query else "")
    headers = {}
    if host:
        headers["Host"] = host
    if body is not None:
        headers["Content-Type"] = "text/xml"
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read().decode("utf-8")
    conn.close()
    return {
        "status": response.status,
        "content_type": response.getheader("Content-Type", ""),
        "body": data,
    }


def text(element, name, ns=""):
    found = element.find(ns + name)
    return None if found is None else found.text


def thunderbird(url, host=None):
    answer = request(url, host=host)
    if answer["status"] != 200:
        return answer
    root = ET.fromstring(answer["body"])
    provider = root.find("emailProvider")
    servers = []
    for element in list(provider):
        if element.tag in ("incomingServer", "outgoingServer"):
            servers.append(
                {
                    "kind": element.tag,
                    "type": element.get("type"),
                    "hostname": text(element, "hostname"),
                    "port": int(text(element, "port")),
                    "socketType": text(element, "socketType"),
                    "username": text(element, "username"),
                }
            )
    return {
        "status": 200,
        "version": root.get("version"),
        "domain": text(provider, "domain"),
        "id": provider.get("id"),
        "servers": servers,
    }


OUTLOOK_REQUEST = """<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>{}</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>
"""

RESPONSE_NS = "{http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006}"
ACCOUNT_NS = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"


def outlook(url, address):
    body = OUTLOOK_REQUEST.format(address.replace("&", "&amp;").replace("<", "&lt;"))
    answer = request(url, method="POST", body=body.encode("utf-8"))
    if answer["status"] != 200:
        return answer
    root = ET.fromstring(answer["body"])
    assert root.tag == RESPONSE_NS + "Autodiscover", root.tag
    account = root.find(ACCOUNT_NS + "Response/" + ACCOUNT_NS + "Account")
    protocols = []
    for protocol in account.findall(ACCOUNT_NS + "Protocol"):
        protocols.append(
            {
                name: text(protocol, name, ACCOUNT_NS)
                for name in ("Type", "Server", "Port", "SSL", "Encryption", "LoginName")
            }
        )
    return {
        "status": 200,
        "action": text(account, "Action", ACCOUNT_NS),
        "protocols": protocols,
    }


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "get":
        result = request(args[0], host=args[1] if len(args) > 1 else None)
    elif command == "https":
        context = ssl.create_default_context(cafile=args[1])
        # The self-signed certificate names the server's hostname, not 127.0.0.1.
        context.check_hostname = False
        result = request(args[0], context=context)
    elif command == "thunderbird":
        result = thunderbird(args[0], args[1] if len(args) > 1 else None)
    elif command == "outlook":
        result = outlook(args[0], args[1])
    elif command == "outlook_raw":
        result = request(args[0], method="POST", body=args[1].encode("utf-8"))
    elif command == "smtp":
        with smtplib.SMTP("127.0.0.1", int(args[0]), timeout=30) as smtp:
            smtp.ehlo("client.test")
            message = (
                "From: sender@client.test\r\nTo: {0}\r\nSubject: counted\r\n"
                "Message-ID: <counted@client.test>\r\n\r\nA message to count.\r\n"
            ).format(args[1])
            refused = smtp.sendmail("sender@client.test", [args[1]], message)
        result = {"refused": list(refused)}
    elif command == "imap_login":
        imap = imaplib.IMAP4("127.0.0.1", int(args[0]), timeout=30)
        try:
            imap.login(args[1], args[2])
            result = {"accepted": True}
            imap.logout()
        except imaplib.IMAP4.error as err:
            result = {"accepted": False, "error": str(err)}
    elif command == "imap_fetch":
        imap = imaplib.IMAP4("127.0.0.1", int(args[0]), timeout=30)
        imap.login(args[1], args[2])
        imap.select("INBOX", readonly=True)
        _, numbers = imap.search(None, "ALL")
        messages = []
        for number in numbers[0].split():
            _, data = imap.fetch(number, "(RFC822)")
            messages.append(data[0][1].decode("utf-8", "replace"))
        imap.logout()
        result = {"messages": messages}
    else:
        raise SystemExit("unknown command " + command)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
