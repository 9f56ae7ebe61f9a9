#!/usr/bin/env python3
"""Power-loss campaign: chargerd killed with SIGKILL at random moments, restarted each time, on one journal.

Each round starts chargerd on a simulated board at full speed with the journal acknowledging every record
(--journal-acks), with cars arriving back to back and, in some rounds, a door opened (a latched E02), a
door closed and a technician's reset at random simulated times; it is killed after a random wall time
(a power cut); a fifth of the kills also leave a torn tail (part of a record, as a cut mid-write does).
After every kill the journal is read back (chargerd journal export --json) and checked:

  * every record acknowledged before the kill is there, with its kind, and sequence numbers only increase;
  * the next start latches again exactly the faults that stood when the last one stopped (computed here
    independently from the records read back: fault records of stopping reactions not cleared in the
    same boot), and says so at start;
  * no session is counted twice: per boot and gun, session-start and session-end alternate (a start
    may be left open by a kill; an end never comes without its start, unless rotation deleted the file
    that held the start), and each record number is unique.

Traffic beside the sessions, in a share of the rounds each:
  * the technician's console on a pseudo-terminal: a login, then acting commands (fault reset, stop, cap,
    service off/on) and reads at random; each acting command is a journal record, acknowledged like any;
  * OCPP 1.6J to a central system built on the `ocpp` package (Tests/grid/central_system.py, one for the
    whole campaign, the charge point's state directory kept across kills): boot, authorization and
    transactions at 100x. Checked: every StopTransaction names a transaction the central system issued,
    and no session is started twice at the central system (a StartTransaction repeated after a restart
    with the same connector, meter start and timestamp).

Usage: campaign.py CHARGERD BOARD [--kills N] [--seed S]. Prints one line of figures at the end; exit 1
naming the first round that broke a rule.
"""
import argparse
import json
import os
import random
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "grid"))

STOPPING = {"refuse", "error-shutdown", "emergency-shutdown"}


def outstanding(entries):
    """Faults that stood at the end of `entries`: the same rule as the controller's, written again here."""
    open_faults, by_seq, boot = {}, {}, None
    for e in entries:
        if e.get("boot") != boot:
            boot, by_seq = e.get("boot"), {}
        code = e.get("code")
        if not code:
            continue
        key = (e.get("gun", -1), code)
        if e["kind"] == "fault" and e.get("reaction") in STOPPING:
            open_faults[key] = e
            by_seq[e.get("faultSeq")] = key
        elif e["kind"] == "fault-cleared" and e.get("faultSeq") in by_seq:
            open_faults.pop(by_seq[e["faultSeq"]], None)
    return sorted(open_faults)


def export(chargerd, jdir):
    r = subprocess.run([chargerd, "journal", "export", "--json", "--dir", jdir], capture_output=True, text=True)
    return [json.loads(l) for l in r.stdout.splitlines() if l.strip()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("chargerd")
    ap.add_argument("board")
    ap.add_argument("--kills", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    d = tempfile.mkdtemp(prefix="powerloss-")
    jdir = os.path.join(d, "journal")
    figures = dict(kills=0, silent=0, acked=0, torn=0, restored_starts=0, restored_faults=0, faults_latched=0, sessions=0,
                   console_rounds=0, console_lines=0, commands=0, ocpp_rounds=0, ocpp_starts=0, ocpp_stops=0)
    t0 = time.time()
    password = "powerloss-Tech-1"
    creds = os.path.join(d, "technicians")
    subprocess.run([a.chargerd, "passwd", "--file", creds, "tech"], input=password + "\n", text=True, check=True, capture_output=True)
    os.chmod(creds, 0o600)
    from central_system import CentralSystem
    cs = CentralSystem()
    site = os.path.join(d, "site.toml")
    with open(site, "w") as f:
        f.write(f"""[site]
name = "power-loss campaign"
utc_offset = "+08:00"
[ocpp]
url = "ws://127.0.0.1:{cs.port}/CP001"
state_dir = "{os.path.join(d, 'ocpp')}"
meter_interval = "2 s"
reconnect_interval = "200 ms"
call_timeout = "2 s"
free_vend = true
""")
    # 'yes' confirms a stop or a service-off asked while a session runs (anything else cancels it).
    console_script = ["fault reset", "stop 0", "yes", "cap 0 20", "cap 0 off", "service 0 off", "yes", "service 0 on", "status", "faults", "log"]

    keep = []

    def fail(i, why):
        print(f"powerloss: round {i} (seed {a.seed}): {why}\n  journal kept in {jdir}")
        keep.append(True)
        sys.exit(1)

    expected_restore = []
    last_boot = 0
    try:
        for i in range(a.kills):
            args = [a.chargerd, "--board", a.board, "--car", "capacity=10kWh,soc=78,target=80,plug-at=1s",
                    "--continuous", "--arrival-interval", "1", "--status-interval", "0", "--max-time", "1e9",
                    "--journal", jdir, "--journal-acks", "--journal-max-kb", "64", "--journal-files", "4"]
            if expected_restore or rnd.random() < 0.3:
                args += ["--inject", f"reset@{rnd.uniform(0.5, 20):.3f}s"]
            if rnd.random() < 0.25:
                t = rnd.uniform(1, 300)
                args += ["--inject", f"door@{t:.3f}s", "--inject", f"door-close@{t + rnd.uniform(0.5, 5):.3f}s"]
            console = rnd.random() < 0.35
            ocpp = rnd.random() < 0.3
            if console:
                args += ["--console", "pty", "--credentials", creds]
                figures["console_rounds"] += 1
            if ocpp:
                # The central system's peers run in wall-clock time: paced, not at full speed.
                args += ["--site", site, "--speed", "100"]
                figures["ocpp_rounds"] += 1
            p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            os.set_blocking(p.stdout.fileno(), False)
            end = time.time() + (rnd.uniform(0.2, 1.5) if console or ocpp else rnd.uniform(0.05, 0.8))
            buf, answers = b"", b""
            term, lines, next_line = None, ["login tech", password] + [rnd.choice(console_script) for _ in range(12)], 0.0
            while time.time() < end:
                watch = [p.stdout] + ([term] if term is not None else [])
                r, _, _ = select.select(watch, [], [], 0.02)
                if p.stdout in r:
                    buf += p.stdout.read() or b""
                if term is not None and term in r:
                    try:
                        answers += os.read(term, 4096)   # the console's answers (a pty not drained would stall it)
                    except OSError:
                        pass
                if console and term is None:
                    m = re.search(rb"console: (/dev/pts/\d+)", buf)
                    if m:
                        term = os.open(m.group(1).decode(), os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
                if term is not None and lines and time.time() >= next_line:
                    try:
                        os.write(term, (lines.pop(0) + "\r").encode())
                        figures["console_lines"] += 1
                    except OSError:
                        pass
                    # Typed as a person would, a line after the answer to the last (the password after its prompt).
                    next_line = time.time() + rnd.uniform(0.05, 0.2)
            p.send_signal(signal.SIGKILL)
            if term is not None:
                os.close(term)
            p.wait()
            try:
                buf += p.stdout.read() or b""
            except Exception:
                pass
            figures["kills"] += 1
            text = buf.decode(errors="replace")

            # The start: its boot number, and the faults it latched again.
            m = re.search(r"journal: .*next #(\d+), boot (\d+)", text)
            if not m:
                # Cut before it said anything (a slow start on a loaded machine): nothing to judge of
                # this start but the journal itself, read back below.
                figures["silent"] += 1
                boot = None
            else:
                boot = int(m.group(2))
                if boot != last_boot + 1:
                    fail(i, f"boot {boot} after boot {last_boot}")
            said = m and re.search(r"journal: (\d+) fault\(s\) latched before this start, latched again until a reset: (.*)", text)
            got = sorted((int(g[3:]) if g else -1, c) for c, g in
                         re.findall(r"(E\d\d-[\w-]+)(?: (gun\d+))?", said.group(2))) if said else []
            if m and got != expected_restore:
                fail(i, f"latched again at start {got}, the journal says {expected_restore}")
            if got:
                figures["restored_starts"] += 1
                figures["restored_faults"] += len(got)

            acked = [(int(s), k) for s, k in re.findall(r"journal: #(\d+) ([\w-]+) acknowledged", text)]
            # An acting command is acknowledged to the technician on the console: "(journal #N)" once on storage.
            acked += [(int(s), "command") for s in re.findall(rb"\(journal #(\d+)\)", answers)]
            figures["acked"] += len(acked)
            if rnd.random() < 0.2:
                files = sorted(f for f in os.listdir(jdir) if f.endswith(".log"))
                with open(os.path.join(jdir, files[-1]), "ab") as f:
                    f.write(b"CRL1" + bytes([200, 0, 0, 0]) + bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 60))))
                figures["torn"] += 1

            entries = export(a.chargerd, jdir)
            last_boot = max([e["boot"] for e in entries] + [last_boot])
            if boot is None:
                boot = last_boot
            seqs = [e["seq"] for e in entries]
            if seqs != sorted(set(seqs)):
                fail(i, "sequence numbers not strictly increasing")
            kinds = {e["seq"]: e["kind"] for e in entries}
            lost = [(s, k) for s, k in acked if kinds.get(s) != k]
            if lost:
                fail(i, f"acknowledged records lost: {lost[:5]}")
            for e in entries:
                if e.get("boot") == boot and e["kind"] == "fault" and e.get("reaction") in STOPPING and "latched again" not in e.get("text", ""):
                    figures["faults_latched"] += 1
            # Sessions: per boot and gun, start and end alternate. Rotation deletes whole old files, so the
            # first session record of a boot whose boot record is gone may be an end whose start went with it.
            state = {}
            boots_whole = {e["boot"] for e in entries if e["kind"] == "boot"}
            for e in entries:
                if e["kind"] not in ("session-start", "session-end"):
                    continue
                key = (e["boot"], e.get("gun"))
                if e["kind"] == "session-start":
                    if state.get(key) == "open":
                        fail(i, f"two session starts without an end: boot {key[0]} gun {key[1]} at #{e['seq']}")
                    state[key] = "open"
                    if e["boot"] == boot:
                        figures["sessions"] += 1
                else:
                    if state.get(key) != "open" and not (key not in state and e["boot"] not in boots_whole):
                        fail(i, f"a session end without its start: #{e['seq']}")
                    state[key] = "closed"
            figures["commands"] += sum(1 for s, k in acked if k == "command")
            # OCPP: every stop names a transaction the central system issued; no session started twice.
            starts = [m[2] for m in cs.messages("StartTransaction")]
            issued = {m["transaction_id"] for m in starts}
            for m in (m[2] for m in cs.messages("StopTransaction")):
                if m["transaction_id"] not in issued:
                    fail(i, f"StopTransaction for transaction {m['transaction_id']}, never issued")
            keys = [(m["connector_id"], m["meter_start"], m["timestamp"]) for m in starts]
            if len(keys) != len(set(keys)):
                dup = [k for k in keys if keys.count(k) > 1][0]
                fail(i, f"a session started twice at the central system (connector, meter start, timestamp) = {dup}")
            expected_restore = outstanding(entries)
        figures["ocpp_starts"] = len(cs.messages("StartTransaction"))
        figures["ocpp_stops"] = len(cs.messages("StopTransaction"))
        wall = time.time() - t0
        print(f"powerloss: {figures['kills']} kills in {wall:.0f} s ({figures['silent']} before chargerd said anything), {figures['acked']} records acknowledged and every one "
              f"read back in order, {figures['torn']} torn tails dropped, {figures['faults_latched']} stopping faults latched, "
              f"{figures['restored_starts']} starts latched {figures['restored_faults']} of them again as the journal said, "
              f"{figures['sessions']} sessions started, none counted twice; console in {figures['console_rounds']} rounds "
              f"({figures['console_lines']} lines typed, {figures['commands']} acting commands acknowledged); OCPP in "
              f"{figures['ocpp_rounds']} rounds ({figures['ocpp_starts']} transactions started, {figures['ocpp_stops']} stopped, "
              f"every stop of an issued transaction, none started twice)")
    finally:
        try:
            cs.stop()
        except Exception:
            pass
        if not keep and not os.environ.get("KEEP"):
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
