#!/usr/bin/env python3
"""An independent GB/T 27930-2015 BMS on a SocketCAN interface: python-can for the wire, cantools and the
repository's DBC (HIL/can/gbt27930-2015.dbc) for the payloads, and its own J1939-21 transport sender. It
shares no code with the Swift controller; it exists to prove the controller talks to a BMS it did not write.

It runs one session as a car's BMS does: BHM after CHM, BRM (49 bytes, RTS/CTS) until CRM AA, BCP (13
bytes) until CML, BRO 00 then AA until CRO AA, then BCL (50 ms), BCS (9 bytes, 250 ms) and BSM (250 ms)
while charging, BST (10 ms) at its target SOC until CST, BSD (250 ms) until CSD. Its SOC follows the
current the charger reports in CCS. It watches the charger's CCS (1 s) and sends BEM when it stops.

It can misbehave on command (--misbehave KIND[@SECONDS], seconds after charging began; repeatable):
  silent       stops sending anything
  late         BCL every 1.2 s (the charger's BCL timeout is 1 s)
  wrong-dlc    five BCL frames of 3 bytes (then normal)
  unknown-pgn  twenty frames of PGN 0x3300 (then normal)
  tp-gap       one BCS transfer leaves out its second packet (then answers the charger's CTS for it)
  abort        one BCS transfer aborted by the BMS after the charger's CTS
  garbage      200 frames of random identifiers, lengths and bytes (then normal)
  flood        2 s of back-to-back frames of an unknown PGN beside the normal messages

On exit it prints one JSON line: what it saw and did (the test reads it).
"""
import argparse
import json
import os
import random
import socket
import struct
import sys
import time

import can
import cantools

CHARGER_ADDR, BMS_ADDR = 0x56, 0xF4
KINDS = ("silent", "late", "wrong-dlc", "unknown-pgn", "tp-gap", "abort", "garbage", "flood")
FLOOD_RATE = 1500
TP_CM, TP_DT = 0xEC00, 0xEB00


def ident(pgn, prio, dest=CHARGER_ADDR, src=BMS_ADDR):
    return (prio & 7) << 26 | (pgn & 0x3FF00) << 8 | dest << 8 | src


def pgn_of(arbitration_id):
    return (arbitration_id >> 8) & 0x3FF00


class TPSender:
    """J1939-21 connection mode, the sending side: RTS, then the packets each CTS asks for, until the
    EndOfMsgAck (or an abort, or T3 = 1250 ms without an answer)."""

    def __init__(self, bms, pgn, payload, skip_second=False, abort_after_cts=False):
        self.bms, self.pgn, self.payload = bms, pgn, bytes(payload)
        self.packets = (len(self.payload) + 6) // 7
        self.skip_second, self.abort_after_cts = skip_second, abort_after_cts
        self.done = False
        self.deadline = time.monotonic() + 1.25
        pg = [pgn & 0xFF, (pgn >> 8) & 0xFF, (pgn >> 16) & 0xFF]
        self.pgn_bytes = pg
        n = len(self.payload)
        bms.send_raw(ident(TP_CM, 7), [0x10, n & 0xFF, n >> 8, self.packets, 0xFF] + pg)

    def on_cm(self, data):
        if list(data[5:8]) != self.pgn_bytes:
            return
        if data[0] == 0x11:                      # CTS: count, next sequence
            count, first = data[1], data[2]
            if self.abort_after_cts:
                self.bms.send_raw(ident(TP_CM, 7), [0xFF, 0x03, 0xFF, 0xFF, 0xFF] + self.pgn_bytes)
                self.bms.stats["aborts_sent"] += 1
                self.done = True
                return
            for seq in range(first, min(self.packets, first + count - 1) + 1):
                if self.skip_second and seq == 2:
                    self.skip_second = False
                    self.bms.stats["gaps_made"] += 1
                    continue
                chunk = self.payload[(seq - 1) * 7:seq * 7]
                self.bms.send_raw(ident(TP_DT, 7), [seq] + list(chunk) + [0xFF] * (7 - len(chunk)))
            self.deadline = time.monotonic() + 1.25
        elif data[0] == 0x13:                    # EndOfMsgAck
            self.bms.stats["transfers"] += 1
            self.done = True
        elif data[0] == 0xFF:                    # the charger aborted
            self.bms.stats["aborts_received"] += 1
            self.done = True

    def poll(self):
        if not self.done and time.monotonic() > self.deadline:
            self.bms.stats["tp_timeouts"] += 1
            self.done = True


class BMS:
    def __init__(self, a):
        self.a = a
        self.db = cantools.database.load_file(a.dbc)
        self.bus = can.Bus(interface="socketcan", channel=a.interface,
                           can_filters=[{"can_id": BMS_ADDR << 8 | CHARGER_ADDR, "can_mask": 0xFFFF, "extended": True}])
        self.cells = max(1, int(0.95 * a.max_voltage / 4.2))
        self.soc = a.soc
        self.state = "wait"
        self.last = {}
        self.seen = {}
        self.stats = {k: 0 for k in ("transfers", "aborts_sent", "aborts_received", "gaps_made", "tp_timeouts", "frames_sent",
                                     "frames_received", "bem_sent")}
        self.decoded = {"CML": None, "CCS": [], "CST": None, "CSD": None, "CEM": []}
        self.tp = None
        self.pending = []                        # multi-packet messages waiting for the transport
        self.charging_since = None
        self.last_ccs = None
        self.latest_ccs = None
        self.misbehaviours = []
        for text in a.misbehave or []:
            kind, _, at = text.partition("@")
            if kind not in KINDS:
                raise SystemExit("--misbehave %r: not one of %s" % (kind, ", ".join(KINDS)))
            self.misbehaviours.append({"kind": kind, "at": float(at or 0), "active": False, "done": False, "frames": 0})
        self.rng = random.Random(a.seed)
        self.flood_socket = None
        self.t0 = time.monotonic()
        self.phases = []

    # --- the wire ---
    def send_raw(self, arbitration_id, data, dlc=None):
        data = list(data)
        msg = can.Message(arbitration_id=arbitration_id, data=data if dlc is None else data[:dlc], is_extended_id=True)
        try:
            self.bus.send(msg, timeout=0.05)
            self.stats["frames_sent"] += 1
        except can.CanError:
            self.stats.setdefault("send_errors", 0)
            self.stats["send_errors"] += 1

    def send(self, name, values, dlc=None):
        m = self.db.get_message_by_name(name)
        data = m.encode(values, strict=False)
        if len(data) <= 8:
            self.send_raw(ident(pgn_of(m.frame_id), (m.frame_id >> 26) & 7), data, dlc)
        else:
            self.pending.append((pgn_of(m.frame_id), data))

    def due(self, key, period):
        now = time.monotonic()
        if now - self.last.get(key, -1e9) >= period:
            self.last[key] = now
            return True
        return False

    # --- the battery ---
    def ocv(self):
        return self.cells * (3.4 + 0.7 * self.soc / 100)

    def current_demand(self):
        taper = 1.0 if self.soc < 50 else max(0.3, 1.0 - (self.soc - 50) * 0.014)
        return self.a.max_current * taper

    # --- receiving ---
    def receive(self, msg):
        self.stats["frames_received"] += 1
        pgn = pgn_of(msg.arbitration_id)
        if pgn == TP_CM:
            if self.tp:
                self.tp.on_cm(msg.data)
            return
        try:
            m = self.db.get_message_by_frame_id(msg.arbitration_id)
        except KeyError:
            return
        try:
            v = m.decode(bytes(msg.data) + b"\xff" * (m.length - len(msg.data)), decode_choices=False)
        except Exception:
            return
        self.seen[m.name] = time.monotonic()
        if m.name == "CRM":
            if v["Recognition"] == 0xAA and self.state in ("wait", "handshake", "recognition"):
                self.enter("parameters")
            elif v["Recognition"] == 0x00 and self.state in ("wait", "handshake"):
                self.enter("recognition")
        elif m.name == "CHM" and self.state == "wait":
            self.enter("handshake")
        elif m.name == "CML":
            self.decoded["CML"] = v
            if self.state == "parameters":
                self.enter("ready")
        elif m.name == "CRO" and v["Ready"] == 0xAA and self.state == "ready":
            self.enter("charging")
        elif m.name == "CCS":
            now = time.monotonic()
            if self.last_ccs is not None and self.state == "charging":
                current = v["OutputCurrent"]           # negative: charging current on the wire
                self.soc = min(100.0, self.soc + (-current) * (now - self.last_ccs) / 3600 / self.ah() * 100)
            self.last_ccs = now
            self.latest_ccs = v
            if len(self.decoded["CCS"]) < 4000:      # the history in the result line, bounded
                self.decoded["CCS"].append(v)
        elif m.name == "CST":
            self.decoded["CST"] = v
            if self.state in ("charging", "stopping"):
                self.enter("statistics")
        elif m.name == "CSD":
            self.decoded["CSD"] = v
            if self.state == "statistics":
                self.enter("done")
        elif m.name == "CEM":
            self.decoded["CEM"].append({k: x for k, x in v.items() if x})

    def ah(self):
        return self.a.capacity_kwh * 1000 / (self.cells * 3.7)

    def enter(self, state):
        self.state = state
        self.phases.append((round(time.monotonic() - self.t0, 3), state))
        if state == "charging":
            self.charging_since = time.monotonic()
            self.last_ccs = None

    # --- sending ---
    def step(self):
        now = time.monotonic()
        if self.tp:
            self.tp.poll()
            if self.tp.done:
                self.tp = None
        for m in self.misbehaviours:
            if self.charging_since and not m["active"] and now - self.charging_since >= m["at"]:
                m["active"] = True
        if self.active("silent"):
            return
        if self.tp is None and self.pending:
            pgn, data = self.pending.pop(0)
            skip = abort = False
            if pgn == 0x1100:
                skip = self.take("tp-gap")
                abort = self.take("abort")
            self.tp = TPSender(self, pgn, data, skip_second=skip, abort_after_cts=abort)
        for m in self.misbehaviours:
            if m["active"] and not m["done"]:
                self.misbehave_extra(m, now)
        s = self.state
        if s == "handshake" and self.due("BHM", 0.25):
            self.send("BHM", {"MaxAllowedVoltage": self.a.max_voltage})
        if s == "recognition" and self.due("BRM", 0.25) and not self.pending and self.tp is None:
            vin = b"\0" * 17 if self.a.vin == "none" else self.a.vin.encode()[:17].ljust(17, b"0")   # none: the short BRM, no VIN
            values = {sig.name: 0 for sig in self.db.get_message_by_name("BRM").signals}
            values.update({"VersionMinor": 1, "VersionMajorLow": 1, "VersionMajorHigh": 0, "BatteryType": 6,
                           "RatedCapacity": round(self.ah(), 1), "RatedVoltage": round(self.cells * 3.7, 1),
                           "ProductionYear": 2025, "ProductionMonth": 1, "ProductionDay": 1, "PropertyRight": 0})
            for i in range(17):
                values["VIN%d" % (i + 1)] = vin[i]
            self.send("BRM", values)
        if s == "parameters" and self.due("BCP", 0.5) and not self.pending and self.tp is None:
            self.send("BCP", {"MaxCellVoltage": 4.2, "MaxChargeCurrent": -self.a.max_current, "NominalEnergy": self.a.capacity_kwh,
                              "MaxChargeVoltage": min(self.a.max_voltage, self.cells * 4.15 + 5), "MaxTemperature": 55,
                              "SOC": round(self.soc, 1), "BatteryVoltage": round(self.ocv(), 1)})
        if s == "ready" and self.due("BRO", 0.25):
            # Ready once the battery's contactors are closed. On the bench they are the plant's (charger-plant
            # closes them 200 ms of its time after it sees CML): --contactor-delay is how long this BMS takes
            # them to close, longer than the plant's so that a guest's late timers (70 ms at p99 under load)
            # do not make it say ready before the plant's voltage is there (E18 in the kernel suite).
            ready = 0xAA if now - self.phases[-1][0] - self.t0 >= self.a.contactor_delay else 0x00
            self.send("BRO", {"Ready": ready})
        if s == "charging":
            if self.soc >= self.a.target:
                self.enter("stopping")
            else:
                bcl_period = 1.2 if self.active("late") else 0.05
                if self.due("BCL", bcl_period):
                    cv = self.cells * 4.15
                    v = self.latest_ccs["OutputVoltage"] if self.latest_ccs else 0
                    self.send("BCL", {"VoltageDemand": round(cv, 1), "CurrentDemand": -round(self.current_demand(), 1),
                                      "Mode": 1 if v >= cv - 1 else 2})
                if self.due("BCS", 0.25) and not any(p == 0x1100 for p, _ in self.pending):
                    last = self.latest_ccs or {"OutputVoltage": self.ocv(), "OutputCurrent": 0}
                    self.send("BCS", {"MeasuredVoltage": last["OutputVoltage"], "MeasuredCurrent": last["OutputCurrent"],
                                      "MaxCellVoltage": 4.0, "MaxCellGroup": 1, "SOC": int(self.soc), "RemainingTime": 0})
                if self.due("BSM", 0.25):
                    self.send("BSM", {"MaxCellVoltageNumber": 1, "MaxTemperature": 35, "MaxTemperatureNumber": 1, "MinTemperature": 30,
                                      "MinTemperatureNumber": 2, "CellVoltageState": 0, "SOCState": 0, "OverCurrent": 0,
                                      "OverTemperature": 0, "Insulation": 0, "OutputConnector": 0, "ChargingAllowed": 1})
                # The charger's CCS: 1 s without one is a BEM (GB/T 27930 table of timeouts).
                if self.last_ccs is not None and now - self.last_ccs > 1.0 and self.due("BEM", 0.25):
                    self.send("BEM", {"CRM00Timeout": 0, "CRMAATimeout": 0, "CMLTimeout": 0, "CROTimeout": 0, "CCSTimeout": 1,
                                      "CSTTimeout": 0, "CSDTimeout": 0})
                    self.stats["bem_sent"] += 1
        if s == "stopping" and self.due("BST", 0.01):
            self.send("BST", {n.name: 0 for n in self.db.get_message_by_name("BST").signals} | {"SOCTargetReached": 1})
        if s == "statistics" and self.due("BSD", 0.25):
            self.send("BSD", {"FinalSOC": int(self.soc), "MinCellVoltage": 3.9, "MaxCellVoltage": 4.1, "MinTemperature": 30,
                              "MaxTemperature": 35})

    def active(self, kind):
        return any(m["kind"] == kind and m["active"] for m in self.misbehaviours)

    def take(self, kind):
        """A one-shot misbehaviour of the transport: True once, when it is due."""
        for m in self.misbehaviours:
            if m["kind"] == kind and m["active"] and not m["done"]:
                m["done"] = True
                return True
        return False

    def misbehave_extra(self, m, now):
        k = m["kind"]
        if k == "wrong-dlc":
            for _ in range(5):
                self.send_raw(ident(0x1000, 6), [0x10, 0x0E, 0x00], dlc=3)
                m["frames"] += 1
            m["done"] = True
        elif k == "unknown-pgn":
            for i in range(20):
                self.send_raw(ident(0x3300, 6), [i] * 8)
                m["frames"] += 1
            m["done"] = True
        elif k == "garbage":
            # In bursts of at most 20 ms a step: the BMS's own messages keep their periods meanwhile.
            t = time.monotonic()
            while m["frames"] < 200 and time.monotonic() - t < 0.02:
                n = self.rng.randint(0, 8)
                if self.rng.random() < 0.5:   # through the charger's filter: to 0x56 from 0xF4, any PGN
                    aid = self.rng.randint(0, 0x7) << 26 | self.rng.randint(0, 0xFF) << 16 | CHARGER_ADDR << 8 | BMS_ADDR
                else:
                    aid = self.rng.randint(0, 0x1FFFFFFF)
                self.send_raw(aid, [self.rng.randint(0, 255) for _ in range(n)])
                m["frames"] += 1
            if m["frames"] >= 200:
                m["done"] = True
        elif k == "flood":
            # Back to back through a raw socket of its own (python-can's send is too slow to flood).
            if self.flood_socket is None:
                self.flood_socket = socket.socket(socket.AF_CAN, socket.SOCK_RAW, socket.CAN_RAW)
                self.flood_socket.bind((self.a.interface,))
                # Blocking, briefly: a full send buffer sleeps here until the kernel has delivered what
                # was sent (a non-blocking loop spun in user space). Alone in the qemu guest vcan takes
                # ~8,400 frames/s from Python; beside two other sessions the guest's receive path lets
                # only a few dozen out in the 2 s.
                self.flood_socket.settimeout(0.005)
            since = now - self.charging_since - m["at"]
            if since < 2.0:
                # Back to back for up to 20 ms a step (the BMS's own BCL still goes out every 50 ms), at
                # most FLOOD_RATE frames a second in all: what a 250 kbit/s bus can carry at ~75 % load
                # (vcan has no bit rate; a real bus could not carry more, and its arbitration would put
                # the BMS's own higher-priority frames first).
                t = time.monotonic()
                i = 0
                while time.monotonic() - t < 0.02 and m["frames"] < FLOOD_RATE * max(since, 0.02):
                    frame = struct.pack("=IB3x8s", ident(0x3400, 7) | socket.CAN_EFF_FLAG, 8, bytes([i & 0xFF] * 8))
                    i += 1
                    try:
                        self.flood_socket.send(frame)
                        m["frames"] += 1
                    except OSError:
                        # Still full after 5 ms (socket.timeout is an OSError): counted, and on.
                        m["refused"] = m.get("refused", 0) + 1
            else:
                m["done"] = True

    def run(self):
        print("gbt_bms: listening on %s (BMS 0x%02X, charger 0x%02X)" % (self.a.interface, BMS_ADDR, CHARGER_ADDR), file=sys.stderr)
        sys.stderr.flush()
        end = time.monotonic() + self.a.timeout
        while time.monotonic() < end and self.state != "done":
            # Waiting for the charger's first CHM, nothing is due: block on the socket (a frame wakes it at
            # once) instead of waking 500 times a second for minutes (the kernel suite starts its BMSes
            # long before their sessions, in a guest under emulation).
            msg = self.bus.recv(timeout=0.1 if self.state == "wait" else 0.002)
            while msg is not None:
                self.receive(msg)
                msg = self.bus.recv(timeout=0)
            self.step()
        # A few CSD periods more, so the charger sees the end before the BMS goes quiet.
        self.bus.shutdown()
        ccs = self.decoded["CCS"]
        out = {"state": self.state, "soc": round(self.soc, 2), "phases": self.phases, "stats": self.stats,
               "cml": self.decoded["CML"], "cst": {k: v for k, v in (self.decoded["CST"] or {}).items() if v},
               "csd": self.decoded["CSD"], "cem": self.decoded["CEM"][:5],
               "ccs_count": len(ccs), "ccs_max_current": max((-c["OutputCurrent"] for c in ccs), default=0),
               "misbehaviours": self.misbehaviours}
        print(json.dumps(out))
        sys.stdout.flush()
        return 0 if self.state == "done" else 1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--interface", default="vcan0")
    p.add_argument("--dbc", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "can", "gbt27930-2015.dbc"))
    p.add_argument("--soc", type=float, default=20)
    p.add_argument("--target", type=float, default=80)
    p.add_argument("--capacity-kwh", type=float, default=60)
    p.add_argument("--max-voltage", type=float, default=500)
    p.add_argument("--max-current", type=float, default=250)
    p.add_argument("--contactor-delay", type=float, default=0.5, help="seconds from CML to BRO AA (the battery's contactors closing)")
    p.add_argument("--vin", default="LPYBMS00000000001", help="the VIN sent in BRM (17 characters), or none for no VIN")
    p.add_argument("--misbehave", action="append", help="KIND[@SECONDS] after charging began (repeatable): " + ", ".join(KINDS))
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--timeout", type=float, default=600, help="give up after this many seconds")
    a = p.parse_args()
    sys.exit(BMS(a).run())


if __name__ == "__main__":
    main()
