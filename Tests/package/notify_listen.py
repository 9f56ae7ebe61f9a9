#!/usr/bin/env python3
"""Runs a command under a NOTIFY_SOCKET of its own (as systemd runs a Type=notify service, with
WATCHDOG_USEC) and prints every datagram it receives, one line each ('|' for the newlines inside).
Usage: notify_listen.py WATCHDOG_USEC -- COMMAND ARGS...   Exits with the command's status."""
import os
import socket
import subprocess
import sys
import tempfile
import time

usec = sys.argv[1]
cmd = sys.argv[sys.argv.index("--") + 1:]
d = tempfile.mkdtemp()
path = os.path.join(d, "notify")
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.settimeout(0.2)
p = subprocess.Popen(cmd, env=dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC=usec), stdout=sys.stderr)
t0 = time.monotonic()
while True:
    try:
        print(f"{time.monotonic() - t0:8.3f} " + s.recv(4096).decode().replace("\n", "|"), flush=True)
    except socket.timeout:
        if p.poll() is not None:
            break
sys.exit(p.wait())
