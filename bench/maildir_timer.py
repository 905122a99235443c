#!/usr/bin/env python3
"""Times a sending command until N whole messages are in a Maildir.

usage: maildir_timer.py MAILDIR N TIMEOUT_SECONDS -- COMMAND...

Starts the clock, runs COMMAND, then polls MAILDIR/new and MAILDIR/cur every 10 ms until N
messages are there *whole*: a file counts only when its size equals the S=<size> its name
promises (Dovecot's and Mailstead's names both carry it). Prints one JSON line:
{"messages": N, "inject_s": ..., "end_to_end_s": ..., "per_second": ...}.
Exits 1 if the messages are not all there within TIMEOUT_SECONDS.
"""
import json
import os
import re
import subprocess
import sys
import time

SIZE = re.compile(r",S=(\d+)")


def whole_messages(maildir):
    count = 0
    for sub in ("new", "cur"):
        try:
            names = os.listdir(os.path.join(maildir, sub))
        except FileNotFoundError:
            continue
        for name in names:
            match = SIZE.search(name)
            if not match:
                continue
            try:
                if os.path.getsize(os.path.join(maildir, sub, name)) == int(match.group(1)):
                    count += 1
            except FileNotFoundError:
                pass
    return count


def main():
    maildir, wanted, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    command = sys.argv[sys.argv.index("--") + 1:]
    start = time.monotonic()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    injected = time.monotonic() - start
    while True:
        found = whole_messages(maildir)
        elapsed = time.monotonic() - start
        if found >= wanted:
            break
        if elapsed > timeout:
            print(json.dumps({"messages": found, "wanted": wanted, "timeout_s": timeout}))
            sys.exit(1)
        time.sleep(0.01)
    print(json.dumps({"messages": found, "inject_s": round(injected, 3),
                      "end_to_end_s": round(elapsed, 3), "per_second": round(found / elapsed, 1)}))


if __name__ == "__main__":
    main()
