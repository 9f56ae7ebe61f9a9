#!/usr/bin/env python3
"""chargerd speaks systemd's notify protocol (sd_notify(3)) to a NOTIFY_SOCKET of this test's own:
READY=1 when its loop runs, STATUS= with the guns' states, WATCHDOG=1 pings at half of WATCHDOG_USEC
while the loop advances (none when WATCHDOG_PID names another process), STOPPING=1 on the way out; a
path socket and an abstract ('@') one. Run by make test-cli."""
import os
import socket
import subprocess
import sys
import tempfile
import time

chargerd, boards = sys.argv[1], sys.argv[2]
CAR = "capacity=5kWh,soc=70,target=80,max-voltage=500V,plug-at=2s"


def run(address, bind_to, env_extra):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(bind_to)
    s.settimeout(0.2)
    env = dict(os.environ, NOTIFY_SOCKET=address, **env_extra)
    t0 = time.monotonic()
    p = subprocess.Popen([chargerd, "--board", f"{boards}/sim-60kw.toml", "--speed", "30", "--car", CAR, "--status-interval", "0"],
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    got = []
    while p.poll() is None or time.monotonic() - t0 < 1:
        try:
            got.append((time.monotonic() - t0, s.recv(4096).decode()))
        except socket.timeout:
            if p.poll() is not None:
                break
    rc = p.wait()
    s.close()
    return rc, got


failures = 0
def check(ok, what):
    global failures
    print(("ok   " if ok else "FAIL ") + what)
    failures += 0 if ok else 1


d = tempfile.mkdtemp()
rc, got = run(f"{d}/notify", f"{d}/notify", {"WATCHDOG_USEC": "400000"})
texts = [m for _, m in got]
check(rc == 0, f"chargerd exit 0 with a notify socket (rc {rc})")
check(bool(texts) and "READY=1" in texts[0].split("\n") and "STATUS=gun0 unplugged" in texts[0], f"first datagram READY=1 with the guns' states: {texts[:1]}")
pings = [t for t, m in got if "WATCHDOG=1" in m.split("\n")]
check(len(pings) >= 3, f"{len(pings)} WATCHDOG=1 pings")
# (How far apart they come is the machine's scheduling, not behaviour: measured, not asserted.)
gaps = [b - a for a, b in zip(pings, pings[1:])]
print(f"     ping gaps: median {sorted(gaps)[len(gaps) // 2] if gaps else 0:.3f} s, largest {max(gaps) if gaps else 0:.3f} s (WATCHDOG_USEC 0.4 s)")
check(any("STATUS=gun0 charging" in m for m in texts), "a STATUS= with the gun charging")
check("STOPPING=1" in texts[-1].split("\n") if texts else False, f"last datagram STOPPING=1: {texts[-1:]}")

rc, got = run(f"{d}/notify2", f"{d}/notify2", {"WATCHDOG_USEC": "400000", "WATCHDOG_PID": "1"})
check(rc == 0 and not any("WATCHDOG=1" in m for _, m in got) and any("READY=1" in m for _, m in got),
      "WATCHDOG_PID naming another process: READY, no pings")

name = f"chargerd-notify-test-{os.getpid()}"
rc, got = run("@" + name, "\0" + name, {})
check(rc == 0 and any("READY=1" in m for _, m in got) and not any("WATCHDOG=1" in m for _, m in got),
      "abstract socket ('@'): READY=1 arrives; no WATCHDOG_USEC, no pings")

print(f"notify: {failures} failed")
sys.exit(1 if failures else 0)
