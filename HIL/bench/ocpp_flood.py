#!/usr/bin/env python3
"""The real-time loop's figures while the OCPP central system floods the charge point (issue 19 §7).

chargerd runs `--realtime` on the simulated 60 kW board (a session charging) with an OCPP site, twice for
the same time: once with a quiet central system (the `ocpp` package, heartbeats), once while it sends,
as fast as the charge point takes them, a mix of careless and hostile frames: malformed JSON, CALLs of
actions OCPP 1.6 does not have, payloads that do not fit their action, 900 kB messages, and valid
GetConfiguration calls. Prints chargerd's `loop:` line of each run (cycles, missed deadlines, wake-up
latency and cycle compute percentiles), how many frames were sent and answered, and whether the link
stayed up. A benchmark (`make bench-ocpp`), not a test: it reports numbers.
"""
import argparse
import asyncio
import os
import re
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "Tests", "grid"))
from central_system import CentralSystem  # noqa: E402
from support import Chargerd, free_port  # noqa: E402

FRAMES = [
    'not json at all',
    '[2,"raw-%d","FlyToTheMoon",{}]',
    '[2,"raw-%d","ChangeAvailability",{"connectorId":"one","type":"Operative"}]',
    '[2,"raw-%d","GetConfiguration",{}]',
    '[2,"raw-%d","Reset"]',
    '[2,"raw-%d","DataTransfer",{"vendorId":"' + "v" * 300 + '"}]',
]
BIG = '[2,"raw-%d","DataTransfer",{"vendorId":"x","data":"' + "A" * 900_000 + '"}]'


def site(port, state):
    return f"""
[site]
name = "flood bench"
utc_offset = "+08:00"
[ocpp]
url = "ws://127.0.0.1:{port}/CP001"
state_dir = "{state}"
meter_interval = "5 s"
free_vend = true
"""


def run(seconds, flood, tmp):
    port = free_port()
    cs = CentralSystem(port=port)
    c = Chargerd(site(port, os.path.join(tmp, "state-" + ("flood" if flood else "quiet"))), "--realtime", "--max-time", str(seconds),
                 "--car", "capacity=80kWh,soc=20,target=80,max-voltage=500V,plug-at=1s", tmp=tmp)
    cs.wait_for("BootNotification", timeout=15)
    sent = 0
    if flood:
        stop = time.monotonic() + seconds - 3
        while time.monotonic() < stop:
            for f in FRAMES:
                cs.send_raw(f % sent if "%d" in f else f)
                sent += 1
            if sent % 60 == 0:
                cs.send_raw(BIG % sent)
                sent += 1
    c.proc.wait(timeout=seconds + 30)
    out = c.output()
    loop = next((l for l in reversed(out.splitlines()) if l.startswith("loop:")), "no loop line")
    refused_lines = sum(1 for l in out.splitlines() if " ocpp-refused: " in l)
    with cs.lock:
        answered = len(cs.raw_answers)
    up = cs.connections
    cs.stop()
    return loop, sent, answered, up, c.proc.returncode, refused_lines


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=int, default=20)
    a = p.parse_args()
    import tempfile
    tmp = tempfile.mkdtemp(prefix="ocpp-flood-")
    for flood in (False, True):
        loop, sent, answered, connections, rc, refused = run(a.seconds, flood, tmp)
        print(f"{'flooded' if flood else 'quiet  '}: {loop}")
        print(f"         frames sent {sent}, answered {answered}, connections {connections}, journal records of refusals {refused}, "
              f"chargerd exit {rc} (4: --max-time reached mid-session, as meant)")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
