#!/usr/bin/env python3
"""Reads what a CAN session left (candump's log, the BMS's JSON line, chargerd's output) and judges it,
for Tests/kernel/can.sh. Prints one line of figures; exits 1 with the reason when a check fails.

The periods come from candump's kernel receive timestamps on vcan0, not from chargerd. Acceptance
(docs/standards.md "GB/T 27930 on CAN", our criterion: the standard gives periods, no tolerance), as it
holds in the qemu guest on a loaded host: the median interval of each message within 10 % of its period
(within 5 ms for the 10 ms ones: the emulated timer slips by milliseconds), and 95 % of the intervals
within the period plus 50 ms. A wrong period, a drift or a stalled sender fails it; the figures printed
are the measurement.
"""
import argparse
import json
import re
import statistics
import sys

import cantools

CHARGER_TO_BMS = 0xF456


def fail(why):
    print(why)
    sys.exit(1)


def read_candump(path):
    frames = []
    for line in open(path):
        m = re.match(r"\((\d+\.\d+)\)\s+(\S+)\s+([0-9A-Fa-f]+)#([0-9A-Fa-f]*)", line)
        if m:
            frames.append((float(m.group(1)), int(m.group(3), 16), bytes.fromhex(m.group(4))))
    return frames


def charger_messages(db, frames):
    """(time, message, data) of every frame the charger sent that the DBC knows, in time order."""
    for t, fid, data in frames:
        if fid & 0xFFFF != CHARGER_TO_BMS:
            continue
        try:
            m = db.get_message_by_frame_id(fid)
        except KeyError:
            continue
        yield t, m, data


def periods(db, frames):
    """Per charger message: its intervals, split where the message paused (a gap over 3 periods)."""
    out = {}
    last = {}
    for t, m, data in charger_messages(db, frames):
        period = m.cycle_time / 1000 if m.cycle_time else None
        if not period:
            continue
        if m.name in last and t - last[m.name] <= 3 * period:
            out.setdefault(m.name, (period, []))[1].append(t - last[m.name])
        last[m.name] = t
    return out


def judge_periods(db, frames):
    figures, bad = [], []
    for name, (period, iv) in sorted(periods(db, frames).items()):
        if len(iv) < 5:
            continue
        med = statistics.median(iv)
        iv_sorted = sorted(iv)
        p95 = iv_sorted[int(0.95 * (len(iv) - 1))]
        figures.append("%s %d ms: median %.1f, p95 %.1f, max %.1f ms (n=%d)" % (name, period * 1000, med * 1000, p95 * 1000, max(iv) * 1000, len(iv)))
        if abs(med - period) > max(0.1 * period, 0.005) or p95 > period + 0.050:
            bad.append(name)
    return figures, bad


# The charger's messages in the order of docs/standards.md "When each charger message starts and stops".
# Two kinds of rule, both exact (no tolerance, so a starved guest cannot make them fail):
# - a stage's message never follows the first frame of the next stage's (CRM after CML, say): the link
#   sends from one snapshot of the loop's broadcast at a time, in time order, so once the loop has moved on
#   no frame of the stage before can follow;
# - a message that answers the car never precedes what it answers (CML before the car's BCP is in): the
#   loop cannot hear a frame before the kernel has it.
# The one wait judged is the end stage's: CSD ends at most a second past the car's BSD and its 500 ms hold
# (the loop's 10 s bound, which it used to wait out when the BSD came first, is ten times that).
STAGE_ORDER = [("CHM", "CRM"), ("CRM", "CTS"), ("CRM", "CML"), ("CTS", "CRO"), ("CML", "CRO"), ("CRO", "CCS"),
               ("CCS", "CST"), ("CST", "CSD")]


def charger_frames(db, frames):
    """(time, name, first byte) of every charger message, in time order."""
    return [(t, m.name, data[0] if data else None) for t, m, data in charger_messages(db, frames)]


def transfer_done(frames, pgn):
    """When the charger acknowledged the car's multi-packet message PGN (TP.CM EndOfMsgAck), in order."""
    tail = bytes([pgn & 0xFF, (pgn >> 8) & 0xFF, (pgn >> 16) & 0xFF])
    return [t for t, fid, d in frames if fid == 0x1CECF456 and len(d) == 8 and d[0] == 0x13 and d[5:8] == tail]


def car_frames(db, frames, name):
    m = db.get_message_by_name(name)
    return [(t, d) for t, fid, d in frames if fid == m.frame_id]


def judge_order(db, frames, what):
    """Returns (summary, problems)."""
    ch = charger_frames(db, frames)
    first = {}
    for t, name, b0 in ch:
        first.setdefault(name, t)
        first.setdefault("%s %02X" % (name, b0), t)
    problems = []
    if what == "timeout":
        # CEM names the message that timed out: BCL while charging, then, once the handshake has started
        # again, never BCL (the last retry ends on BRM).
        cem = decode_all(db, frames, "CEM")
        if not cem:
            return "no CEM", ["no CEM on the wire"]
        again = [t for t, name, _ in ch if name == "CHM" and t > cem[0][0]]
        late = [(t, c) for t, c in cem if again and t > again[0] and c["BCLTimeout"] == 1]
        if late:
            problems.append("CEM named BCL at %.3f s, after the handshake started again at %.3f s" % (late[0][0] - frames[0][0], again[0] - frames[0][0]))
        named = sorted({k for _, c in cem for k, v in c.items() if v == 1 and k.endswith("Timeout")})
        return "CEM named %s, BCL only before the handshake started again" % "/".join(named), problems
    for before, after in STAGE_ORDER:
        if after in first:
            stray = [t for t, name, _ in ch if name == before and t > first[after]]
            if stray:
                problems.append("%s %d time(s) after the first %s (%.3f s later)" % (before, len(stray), after, stray[-1] - first[after]))
    if "CRM AA" in first:
        stray = [t for t, name, b0 in ch if name == "CRM" and b0 == 0x00 and t > first["CRM AA"]]
        if stray:
            problems.append("CRM 0x00 %d time(s) after CRM 0xAA" % len(stray))
    # What answers the car, after what it answers.
    brm, bcp, bcs = transfer_done(frames, 0x0200), transfer_done(frames, 0x0600), transfer_done(frames, 0x1100)
    bro_aa = [t for t, d in car_frames(db, frames, "BRO") if d[:1] == b"\xaa"]
    bcl = [t for t, _ in car_frames(db, frames, "BCL")]
    bsd = [t for t, _ in car_frames(db, frames, "BSD")]
    def after(name, key, events, what_in):
        if key in first and (not events or first[key] < events[0]):
            problems.append("%s at %.3f s, before %s" % (name, first[key] - frames[0][0], what_in))
    after("CRM 0xAA", "CRM AA", brm, "the car's BRM was in")
    after("CML", "CML", bcp, "the car's BCP was in")
    after("CRO", "CRO", bro_aa, "the car's BRO 0xAA")
    heard = sorted(t for t in bcl + bcs if "CRO AA" in first and t > first["CRO AA"])
    after("CCS", "CCS", heard, "the car's first BCL or BCS after CRO 0xAA")
    # The end stage: CSD for at least its hold, ended once the car's BSD is in (a second's grace for the
    # guest's timers).
    csd = [t for t, name, _ in ch if name == "CSD"]
    csd_span = csd[-1] - csd[0] if csd else 0
    if csd:
        bsd_in = [t for t in bsd if "CST" in first and t > first["CST"]]
        if bsd_in and csd[-1] > max(bsd_in[0], csd[0] + 0.5) + 1.0:
            problems.append("CSD went on %.1f s after the car's BSD (and its 0.5 s hold)" % (csd[-1] - max(bsd_in[0], csd[0] + 0.5)))
    summary = ("order CHM, CRM 00, CRM AA, CTS/CML, CRO 00, CRO AA, CCS, CST, CSD with no message past its stage; "
               "CRO AA %d frames, CCS from %.0f ms after the car's first BCL/BCS, CSD %.2f s"
               % (sum(1 for _, n, b in ch if n == "CRO" and b == 0xAA), ((first.get("CCS", 0) - heard[0]) * 1000) if heard else -1, csd_span))
    return summary, problems


def decode_all(db, frames, name):
    m = db.get_message_by_name(name)
    out = []
    for t, fid, data in frames:
        if fid == m.frame_id:
            out.append((t, m.decode(data + b"\xff" * (m.length - len(data)), decode_choices=False)))
    return out


def bms_json(path):
    lines = [l for l in open(path).read().splitlines() if l.startswith("{")]
    if not lines:
        fail("the BMS printed no result")
    return json.loads(lines[-1])


def can_counters(text):
    """chargerd's `can` report at exit: the counters by name."""
    c = {}
    for key, pat in [("rx", r"rx (\d+)"), ("tx", r"tx (\d+)"), ("malformed", r"malformed (\d+)"), ("unknown", r"unknown PGN (\d+)"),
                     ("notj1939", r"not J1939 (\d+)"), ("tp_completed", r"completed (\d+)"), ("tp_aborted", r"aborted (\d+)"),
                     ("tp_timeouts", r"timed out (\d+)"), ("tp_repeated", r"repeated packets (\d+)"), ("overflow", r"rx overflow (\d+)"),
                     ("error_frames", r"error frames (\d+)"), ("delay", r"largest (\d+) µs")]:
        m = re.search(pat, text)
        c[key] = int(m.group(1)) if m else None
    return c


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["session", "misbehave", "timeout", "starved"])
    p.add_argument("--dbc", required=True)
    p.add_argument("--candump", required=True)
    p.add_argument("--bms", help="the BMS's JSON line (absent: the plant's own car was the BMS)")
    p.add_argument("--chargerd", required=True)
    p.add_argument("--vin", help="plug and charge: the VIN the BMS sent; chargerd authorized the session by it "
                   "(the local list, offline) and printed it masked only")
    p.add_argument("--soc-from", type=float, default=20)
    p.add_argument("--soc-to", type=float, default=80)
    a = p.parse_args(argv)
    db = load_dbc(a.dbc)
    frames = read_candump(a.candump)
    bms = bms_json(a.bms) if a.bms and a.what != "timeout" else None
    text = open(a.chargerd).read()
    counters = can_counters(text)
    if not frames and a.what == "starved":
        # Starved, a session may end on a Modbus device's timeout before its handshake (E25 at 2.7 s with
        # the guest's wake-ups 208 ms late at p99): nothing on the wire to judge, and said so.
        print("no frame on the wire: the session ended before its handshake")
        return
    if not frames:
        # Say why when chargerd knows: a session that ended before any frame (q30: E25 and E26 at 2.4 s, the
        # guest's timers late by 90 ms at p99) is judged by that reason (can.sh's verdict_of: a
        # communication timeout while the guest was starved runs again alone).
        end = re.search(r"session did not end normally: (\S+ at [0-9.]+ s)", text)
        fail("candump recorded nothing" + (f": chargerd's session ended first, {end.group(1)}" if end else ""))

    if a.what == "starved":
        # A session that failed twice while the guest was starved (can.sh's starved_verdict): its periods,
        # timeouts and end are the host's load, so what is judged here is what no load changes: the
        # charger's messages in the standard's order up to its first stop (CEM or CST; after a stop the
        # handshake may start again).
        ch = charger_frames(db, frames)
        stops = [t for t, name, _ in ch if name in ("CEM", "CST")]
        upto = stops[0] if stops else frames[-1][0]
        order, problems = judge_order(db, [f for f in frames if f[0] <= upto], "session")
        if problems:
            fail("messages out of order before the first stop: %s" % "; ".join(problems))
        reached = []
        for t, name, b0 in ch:
            key = "%s %02X" % (name, b0) if name in ("CRM", "CRO") else name
            if t <= upto and key not in reached:
                reached.append(key)
        print("messages in the standard's order up to the %s at %.1f s (%s)"
              % ("first stop" if stops else "record's end", upto - frames[0][0], ", ".join(reached)))
        return

    if a.what == "timeout":
        # The BMS stopped talking while charging: the charger's CEM names BCL, its CST says fault.
        cem = decode_all(db, frames, "CEM")
        named = [c for _, c in cem if c["BCLTimeout"] == 1]
        cst = decode_all(db, frames, "CST")
        faults = [c for _, c in cst if c["FaultStop"] == 1]
        if not named:
            fail("no CEM naming BCL on the wire (%d CEM frames)" % len(cem))
        if not faults:
            fail("no CST with FaultStop on the wire")
        ccs = decode_all(db, frames, "CCS")
        first_cem = cem[0][0]
        after = [c for t, c in ccs if t > first_cem + 1.0 and -c["OutputCurrent"] > 5]
        if after:
            fail("current still flowing a second after the CEM (%.1f A)" % -after[0]["OutputCurrent"])
        if "E17-vehicle-comm-timeout (stop-and-reconnect), value 4.0" not in text:
            fail("chargerd did not latch E17 for BCL (stop and reconnect)")
        order, problems = judge_order(db, frames, a.what)
        if problems:
            fail("messages out of order: %s" % "; ".join(problems))
        print("CEM BCLTimeout %d frames, CST FaultStop %d frames, no current a second after the first CEM; %s; chargerd: %s"
              % (len(named), len(faults), order, " ".join(re.findall(r"FAULT \S+", text)[:2]) or "stopped"))
        return

    # The session ran to its end: the BMS reached its target, saw CML, CCS, CST and CSD.
    if bms is not None:
        if bms["state"] != "done":
            fail("the BMS ended in state %s at SOC %.1f (phases %s)" % (bms["state"], bms["soc"], bms["phases"][-4:]))
        if bms["soc"] < a.soc_to:
            fail("the BMS's SOC is %.1f, below its target %.0f" % (bms["soc"], a.soc_to))
        soc_end = bms["soc"]
    else:
        # The plant's car: its SOC as chargerd last reported it from BCS.
        socs = re.findall(r"SOC ([0-9.]+)%", text)
        soc_end = float(socs[-1]) if socs else 0
        if soc_end < a.soc_to - 1:
            fail("the car's SOC (BCS) ended at %.1f, below %.0f" % (soc_end, a.soc_to))
        # (A bench board's run says "1 session(s) ended"; a real board's, the bench's whole session in the
        # guest, gives its summary's end state.)
        if "1 session(s) ended" not in text and not re.search(r"^end state +completed", text, re.M):
            fail("chargerd did not end the session")
    figures, bad = judge_periods(db, frames)
    if bad:
        fail("periods out of tolerance: %s; %s" % (", ".join(bad), "; ".join(figures)))
    order, problems = judge_order(db, frames, a.what)
    if problems:
        fail("messages out of order: %s" % "; ".join(problems))
    cml = decode_all(db, frames, "CML")
    if not cml:
        fail("no CML on the wire")
    c = cml[-1][1]
    # The loop's CML is the board's gun: 750 V / 200 V, 200 A (bench-60kw-can [[gun]]).
    if abs(c["MaxVoltage"] - 750) > 0.05 or abs(c["MinVoltage"] - 200) > 0.05 or abs(-c["MaxCurrent"] - 200) > 0.05:
        fail("CML on the wire is %s, not the board's 750 V / 200 V / 200 A" % c)
    ccs = decode_all(db, frames, "CCS")
    peak = max(-x["OutputCurrent"] for _, x in ccs)
    peak_kw = max(-x["OutputCurrent"] * x["OutputVoltage"] / 1000 for _, x in ccs)
    if not 50 <= peak <= 200.05 or peak_kw > 61:
        fail("CCS current peaked at %.1f A, %.1f kW (the gun's 200 A, the modules' 60 kW)" % (peak, peak_kw))
    cst = decode_all(db, frames, "CST")
    reasons = sorted({k for _, x in cst for k, v in x.items() if v == 1})
    if reasons != ["BMSStopped"]:
        fail("CST on the wire says %s; the loop answers a BMS stop with BMSStopped only" % reasons)
    csd = decode_all(db, frames, "CSD")
    # (A bench board's run says "energy by the meter: gun0 X kWh"; a real board's gives its summary's.)
    m = re.search(r"energy by the meter: gun0 ([0-9.]+) kWh", text) or re.search(r"^energy +([0-9.]+) kWh \(meter", text, re.M)
    if not csd or not m:
        fail("no CSD on the wire, or no energy in chargerd's summary")
    wire_kwh, meter_kwh = csd[-1][1]["Energy"], float(m.group(1))
    if abs(wire_kwh - meter_kwh) > 0.15:
        fail("CSD says %.1f kWh, the meter %.3f kWh" % (wire_kwh, meter_kwh))
    if counters["rx"] is None:
        fail("chargerd printed no CAN counters")
    summary = ("SOC %.1f -> %.1f %%, %.3f kWh (CSD %.1f), CCS peak %.1f A %.1f kW, %d frames; link rx %d tx %d, transfers %d, kernel-to-loop-buffer delay max %d us; %s; %s"
               % (a.soc_from, soc_end, meter_kwh, wire_kwh, peak, peak_kw, len(frames), counters["rx"], counters["tx"],
                  counters["tp_completed"], counters["delay"], order, "; ".join(figures)))
    if a.vin:
        masked = "VIN%s%s%s" % (a.vin[:3], "*" * 10, a.vin[-4:])
        if "VIN %s accepted by the local list, offline" % masked not in text:
            fail("the session was not authorized by the VIN %s (the local list, offline)" % masked)
        if a.vin in text:
            fail("chargerd printed the whole VIN")
        summary = "authorized by VIN %s (the local list, offline), " % masked + summary
    if a.what == "misbehave":
        kinds = {m["kind"]: m for m in bms["misbehaviours"]}
        # The charger's answers on the wire (TP.CM from 0x56 to 0xF4 about BCS, PGN 0x1100): to the packet
        # left out, a CTS asking from packet 2 again, or (the last packet missing) T1 and an Abort for
        # timeout (reason 3); to the BMS's own abort, nothing more for that transfer.
        bcs_pgn = bytes([0x00, 0x11, 0x00])
        cm = [d for _, fid, d in frames if fid == 0x1CECF456 and len(d) == 8 and d[5:8] == bcs_pgn]
        reasked = any(d[0] == 0x11 and d[2] == 2 for d in cm)
        timed_out = any(d[0] == 0xFF and d[1] == 3 for d in cm)
        bms_abort = any(fid == 0x1CEC56F4 and d[0] == 0xFF and d[5:8] == bcs_pgn for _, fid, d in frames)
        need = {"wrong-dlc": counters["malformed"] >= 5, "unknown-pgn": counters["unknown"] >= 20,
                "tp-gap": bms["stats"]["gaps_made"] == 1 and (reasked or (timed_out and counters["tp_timeouts"] >= 1)),
                "abort": bms_abort and counters["tp_aborted"] >= 1 and bms["stats"]["aborts_sent"] == 1,
                "garbage": counters["malformed"] + counters["unknown"] >= 25,
                # Every flood frame is an unknown PGN: counted, unless the kernel dropped it (rx overflow).
                # (How many the BMS gets out is printed: in the guest, beside two other sessions, a few
                # dozen in 2 s; the real-loop case floods the link with cangen instead.)
                "flood": counters["unknown"] + (counters["overflow"] or 0) >= kinds.get("flood", {}).get("frames", 0) + 20}
        missing = [k for k in kinds if not kinds[k]["active"] or not need.get(k, True)]
        if missing:
            fail("misbehaviour without its counted reaction: %s (counters %s, bms %s)" % (missing, counters, bms["stats"]))
        flood = kinds.get("flood", {}).get("frames", 0)
        summary = ("misbehaviours %s all counted (the gap %s; flood %d frames in 2 s; malformed %d, unknown PGN %d, transport aborted %d, timed out %d, rx overflow %d), session completed: "
                   % (",".join(kinds), "asked again" if reasked else "timed out (T1) and aborted", flood, counters["malformed"], counters["unknown"], counters["tp_aborted"], counters["tp_timeouts"],
                      counters["overflow"] or 0)) + summary
    print(summary)


_dbcs = {}


def load_dbc(path):
    if path not in _dbcs:
        _dbcs[path] = cantools.database.load_file(path)
    return _dbcs[path]


def batch(dbc, path, out_dir):
    """Every session of a run judged in one process (python and cantools take seconds to load in the
    guest, so can.sh starts it early on a FIFO): each line of PATH is "TAG MODE ARGS..."; OUT_DIR/can-TAG.check gets "STATUS<tab>TEXT"."""
    import contextlib
    import io
    import shlex
    load_dbc(dbc)      # before the batch is read: PATH may be a FIFO the suite writes once the sessions end
    for line in open(path):
        words = shlex.split(line)
        if not words:
            continue
        tag, args = words[0], words[1:]
        buf = io.StringIO()
        status = 0
        try:
            with contextlib.redirect_stdout(buf):
                main([args[0], "--dbc", dbc] + args[1:])
        except SystemExit as e:
            status = e.code if isinstance(e.code, int) else 1
        except Exception as e:  # a record this checker cannot read is a failed check, named
            status, buf = 1, io.StringIO("%s: %s" % (type(e).__name__, e))
        with open("%s/can-%s.check" % (out_dir, tag), "w") as f:
            f.write("%d\t%s\n" % (status, buf.getvalue().strip().replace("\n", " ")))


if __name__ == "__main__":
    if "--batch" in sys.argv:
        b = argparse.ArgumentParser()
        b.add_argument("--dbc", required=True)
        b.add_argument("--batch", required=True)
        b.add_argument("--out-dir", required=True)
        o = b.parse_args()
        batch(o.dbc, o.batch, o.out_dir)
    else:
        main()
