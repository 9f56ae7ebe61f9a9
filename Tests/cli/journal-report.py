#!/usr/bin/env python3
"""`chargerd journal stats` and `journal report` on a two-gun journal add up to the runs' JSON summaries
(issue 36: done-when, and ask 4, the service report).

The journal of sim-dual-360kw gets, over two boots:
  A. virtual time: a car on each gun; gun 1 out of service for the first hour (service-off:1@0s,
     service-on:1@3600s), so its car waits and charges after; gun 0's insulation falls to 40 kΩ at 100 s:
     E05 ends its session and stays latched to the end of the run;
  B. a restart on the same journal: E05 latched again at start, reset at 1 s; gun 0's car charges and
     SIGTERM stops it mid-session (in order: stop reason operator).
Then the journal's figures are held against the two JSON summaries: sessions 3 (2 succeeded), energy the
sum of both runs', faults the sum of both runs' lists, gun 1's hour out of service kept apart and not
counted against it (availability 100 %), gun 0's faulted time from its fault's times, and the report's
session list (ends fault, vehicle-bst, operator) adding up to the same energy. Every line of the text
report fits 80 columns.

Usage: journal-report.py CHARGERD BOARDS_DIR
"""
import json, os, re, signal, subprocess, sys, tempfile
import chargerd_run

chargerd, boards = sys.argv[1], sys.argv[2]
board = f"{boards}/sim-dual-360kw.toml"
checks = chargerd_run.Checks()
check, failures = checks.check, checks.failures
CHARGING = r"gun0 charging +\S+ V"


def near(a, b, tol):
    return a is not None and b is not None and abs(a - b) <= tol


def run_until(args, patterns, sig):
    return chargerd_run.run_until(chargerd, args, patterns, sig)


def last_json(out):
    return json.loads(out.strip().splitlines()[-1])


def journal(action, dir, *extra):
    r = subprocess.run([chargerd, "journal", action, "--dir", dir] + list(extra), capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"journal {action}: exit {r.returncode}: {r.stderr}")
    return r.stdout


with tempfile.TemporaryDirectory() as tmp:
    j = os.path.join(tmp, "journal")
    a = subprocess.run([chargerd, "--board", board, "--journal", j, "--json", "--status-interval", "0",
                        "--car-on", "1:capacity=60kWh,soc=30,target=80,max-voltage=500V",
                        "--inject", "service-off:1@0s", "--inject", "service-on:1@3600s",
                        "--inject", "insulation:0=40kOhm@100s"], capture_output=True, text=True, timeout=300)
    A = last_json(a.stdout)
    check("run A: ends on gun 0's E05 (exit 1), gun 1's session completed",
          a.returncode == 1 and A["end_state"] == "faulted" and [f["code"] for f in A["faults"]] == ["E05-insulation"]
          and A["sessions_completed"] == 1, f"rc {a.returncode}, {A['end_state']}, {A['faults']}")
    rc, out = run_until(["--board", board, "--journal", j, "--json", "--speed", "20", "--status-interval", "1",
                         "--inject", "reset:0@1s"], [CHARGING, CHARGING], signal.SIGTERM)
    B = last_json(out)
    check("run B: E05 latched again at start and reset; SIGTERM mid-session ends it interrupted (exit 0)",
          rc == 0 and B["end_state"] == "interrupted" and B["stop_reason"] == "operator"
          and [(f["code"], f["cleared_at_s"] is not None) for f in B["faults"]] == [("E05-insulation", True)],
          f"rc {rc}, {B['end_state']}, {B['stop_reason']}, {B['faults']}")

    st = json.loads(journal("stats", j, "--json").strip().splitlines()[-1])
    check("stats: 2 boots, 3 sessions, 2 succeeded, none in progress",
          st["boots"] == 2 and st["sessionsStarted"] == 3 and st["sessionsSucceeded"] == 2 and st["sessionsInProgress"] == 0,
          json.dumps(st)[:400])
    check("stats: the energy is the two runs' JSON energy",
          near(st["energyKWh"], A["energy_kwh"] + B["energy_kwh"], 0.003) and B["energy_kwh"] > 0,
          f"journal {st['energyKWh']}, JSON {A['energy_kwh']} + {B['energy_kwh']}")
    check("stats: the fault records are the two runs' faults", st["faults"] == len(A["faults"]) + len(B["faults"]),
          f"journal {st['faults']}, JSON {len(A['faults'])} + {len(B['faults'])}")
    covered = A["duration_s"] + B["duration_s"]
    check("stats: the controller time covered is the two runs' durations", near(st["coveredSeconds"], covered, 0.5),
          f"journal {st['coveredSeconds']}, JSON {covered}")
    check("stats: gun 1's hour out of service is kept apart and not counted against it",
          near(st["outOfServiceSeconds"]["gun1"], 3600, 0.01) and st["outOfServiceSeconds"]["gun0"] == 0
          and st["availability"]["gun1"] == 1, json.dumps(st))
    fa, fb = A["faults"][0], B["faults"][0]
    faulted0 = (A["duration_s"] - fa["at_s"]) + (fb["cleared_at_s"] - fb["at_s"])
    check("stats: gun 0's availability is its fault's time over the time covered",
          near(st["availability"]["gun0"], 1 - faulted0 / covered, 2e-4),
          f"journal {st['availability']['gun0']}, from the JSON {1 - faulted0 / covered}")

    rep = json.loads(journal("report", j, "--json").strip().splitlines()[-1])
    ends = [s["ended"] for s in rep["sessions"]]
    check("report: three sessions, ended fault, vehicle-bst, operator", ends == ["fault", "vehicle-bst", "operator"], f"{ends}")
    energies = [s["energyKWh"] for s in rep["sessions"]]
    check("report: run A's two sessions add up to A's JSON, run B's to B's",
          near(energies[0] + energies[1], A["energy_kwh"], 0.002) and near(energies[2], B["energy_kwh"], 0.002),
          f"{energies}, JSON {A['energy_kwh']}, {B['energy_kwh']}")
    check("report: the session list adds up to stats' energy", near(sum(energies), st["energyKWh"], 1e-6), f"{sum(energies)} vs {st['energyKWh']}")
    check("report: E05 counted once, its latching again at the restart apart",
          [(f["code"], f["count"], f["guns"]) for f in rep["faults"]] == [("E05-insulation", 1, "gun0")] and rep["relatched"] == 1,
          f"{rep['faults']}, relatched {rep['relatched']}")
    check("report: the gun count from the boot records", rep["guns"] == 2, f"{rep['guns']}")
    text = journal("report", j)
    wide = [l for l in text.splitlines() if len(l) > 80]
    check("report text: no line over 80 columns", not wide, f"{wide}")
    check("report text: gun 1's out-of-service hour and availability shown",
          re.search(r"gun1\s+100\.00 %\s+faulted 0 s\s+out of service 3600 s", text) is not None, text)

if failures:
    print(f"journal-report: {len(failures)} failed")
    sys.exit(1)
print("journal-report: every check passed")
