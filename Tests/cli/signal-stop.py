#!/usr/bin/env python3
"""SIGTERM or SIGINT mid-session stops the sessions in order, and the journal adds up (issue 36, wrong
answers 2 and 3).

1. One session at --speed 20, SIGTERM once it charges: exit 0, end state `interrupted`, the journal has the
   session's end (stop reason operator) with the meter's energy, equal to the JSON's `energy_kwh`, and
   `journal stats` counts it: 1 of 1, that energy (before: no session-end record, "0 of 1 sessions,
   0.000 kWh" while the JSON said 0.510 kWh).
2. Continuous mode, SIGINT during the second car's charge: end state `interrupted` (was "completed (stop
   reason: none)"), `energy_kwh` is both sessions' (was the last car's alone), equal to the sum of the
   journal's session ends; "car served (1 session(s) so far" after the first.
Every wait is for a line chargerd prints, with a generous bound.

Usage: signal-stop.py CHARGERD BOARDS_DIR
"""
import json, os, re, signal, subprocess, sys, tempfile
import chargerd_run

chargerd, boards = sys.argv[1], sys.argv[2]
checks = chargerd_run.Checks()
check, failures = checks.check, checks.failures
# Two status lines of gun 0 charging (one per simulated second): a second of energy has flowed (the first
# line may come a fraction of a second into the ramp, less than the meter's 0.001 kWh).
CHARGING = r"gun0 charging +\S+ V"


def run_until(args, patterns, sig):
    return chargerd_run.run_until(chargerd, args, patterns, sig)


def journal(dir):
    r = subprocess.run([chargerd, "journal", "export", "--dir", dir, "--json"], capture_output=True, text=True)
    return [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]


def session_energies(records):
    """Each session's energy: its end's meter register less its start's (the journal keeps registers)."""
    start, out = {}, []
    for r in records:
        if r.get("kind") == "session-start":
            start[r["gun"]] = r["energyKWh"]
        elif r.get("kind") == "session-end" and r["gun"] in start:
            out.append(r["energyKWh"] - start.pop(r["gun"]))
    return out


def stats(dir):
    r = subprocess.run([chargerd, "journal", "stats", "--dir", dir, "--json"], capture_output=True, text=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


with tempfile.TemporaryDirectory() as tmp:
    # 1. SIGTERM during the one session.
    j1 = os.path.join(tmp, "j1")
    rc, out = run_until(["--board", f"{boards}/sim-60kw.toml", "--speed", "20", "--status-interval", "1", "--json", "--journal", j1],
                        [CHARGING, CHARGING], signal.SIGTERM)
    summary = json.loads(out.strip().splitlines()[-1])
    ends = [r for r in journal(j1) if r.get("kind") == "session-end"]
    check("SIGTERM mid-session: exit 0, end state interrupted", rc == 0 and summary["end_state"] == "interrupted", f"rc {rc}, {summary['end_state']}")
    check("SIGTERM mid-session: the session stops in order (operator) and its end is journalled",
          len(ends) == 1 and ends[0].get("stopReason") == "operator", f"{ends}")
    energies = session_energies(journal(j1))
    check("the journal's session energy is the JSON's",
          len(energies) == 1 and abs(energies[0] - summary["energy_kwh"]) < 0.0015 and summary["energy_kwh"] > 0,
          f"journal {energies}, JSON {summary['energy_kwh']}")
    st = stats(j1)
    check("journal stats counts it: 1 of 1 sessions, the same energy",
          st["sessionsStarted"] == 1 and st["sessionsSucceeded"] == 1 and st["sessionsInProgress"] == 0
          and abs(st["energyKWh"] - summary["energy_kwh"]) < 0.0015, json.dumps(st)[:300])

    # 2. Continuous mode, SIGINT during the second car's charge.
    j2 = os.path.join(tmp, "j2")
    car = "capacity=5kWh,soc=70,target=80,max-voltage=500V,plug-at=2s"
    rc, out = run_until(["--board", f"{boards}/sim-60kw.toml", "--speed", "20", "--status-interval", "1", "--json", "--journal", j2,
                         "--continuous", "--arrival-interval", "5", "--car", car],
                        [r"car served \(1 session\(s\) so far, 1 completed\)", CHARGING, CHARGING], signal.SIGINT)
    summary = json.loads(out.strip().splitlines()[-1])
    ends = [r for r in journal(j2) if r.get("kind") == "session-end"]
    energies = session_energies(journal(j2))
    total = sum(energies)
    check("continuous, SIGINT mid-session: end state interrupted, exit 0", rc == 0 and summary["end_state"] == "interrupted",
          f"rc {rc}, {summary['end_state']}")
    check("continuous: two sessions journalled, the second stopped in order", len(ends) == 2 and ends[1].get("stopReason") == "operator", f"{ends}")
    st = stats(j2)
    check("continuous: journal stats adds up to the JSON (2 sessions, the same energy)",
          st["sessionsStarted"] == 2 and abs(st["energyKWh"] - summary["energy_kwh"]) < 0.003, json.dumps(st)[:300])
    check("continuous: energy_kwh is both sessions', as the journal adds them",
          len(energies) == 2 and abs(total - summary["energy_kwh"]) < 0.003 and energies[0] > 0.3 and energies[1] > 0,
          f"journal {energies}, JSON {summary['energy_kwh']}")

if failures:
    print(f"signal-stop: {len(failures)} failed")
    sys.exit(1)
print("signal-stop: every check passed")
