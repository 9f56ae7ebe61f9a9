#!/usr/bin/env python3
"""The shipped DBC (HIL/can/gbt27930-2015.dbc) as an independent CAN tool reads it: cantools loads it
in strict mode (no overlapping signals, every signal inside its message), finds every GB/T 27930-2015
message under the identifier a trace shows, and decodes the frames the Swift codec's tests assert
(Tests/GBT27930Tests, "knownFrames") to the same physical values. `chargerd can-dbc` prints the same
text. Run by make test-cli."""
import subprocess
import sys

import cantools

chargerd, dbc = sys.argv[1], sys.argv[2]
failures = 0


def check(ok, what):
    global failures
    print(("ok   " if ok else "FAIL ") + what)
    failures += 0 if ok else 1


db = cantools.database.load_file(dbc, strict=True)
check(len(db.messages) == 22, f"{len(db.messages)} messages in strict mode")
ids = {m.name: m.frame_id for m in db.messages}
for name, fid in [("CHM", 0x1826F456), ("BHM", 0x182756F4), ("BCL", 0x181056F4), ("CCS", 0x1812F456), ("BST", 0x101956F4), ("CEM", 0x081FF456)]:
    check(ids.get(name) == fid and db.get_message_by_name(name).is_extended_frame, f"{name} at 0x{fid:08X}, extended")

def decode(name, data):
    return db.get_message_by_name(name).decode(bytes(data), decode_choices=False)

bcl = decode("BCL", [0xA0, 0x0F, 0xF0, 0x0A, 0x02])
check(bcl == {"VoltageDemand": 400.0, "CurrentDemand": -120.0, "Mode": 2}, f"BCL 400 V, 120 A charging (-120 A on the wire), CC: {bcl}")
cml = decode("CML", [0x4C, 0x1D, 0xD0, 0x07, 0xDC, 0x05, 0xA0, 0x0F])
check(cml == {"MaxVoltage": 750.0, "MinVoltage": 200.0, "MaxCurrent": -250.0, "MinCurrent": 0.0}, f"CML: {cml}")
cst = decode("CST", [0x10, 0x00, 0xF1, 0xF0])
check(cst["FaultStop"] == 1 and cst["EmergencyStop"] == 1 and cst["ManualStop"] == 0, f"CST fault stop, emergency stop: {cst}")
cem = decode("CEM", [0xFC, 0xF0, 0xC4, 0xFC])
check(cem["BCLTimeout"] == 1 and cem["BCSTimeout"] == 0, f"CEM BCL timeout: {cem}")
brm = db.get_message_by_name("BRM")
check(brm.length == 49 and brm.get_signal_by_name("VIN1").start == 192, "BRM 49 bytes, the VIN from byte 25")
out = subprocess.run([chargerd, "can-dbc"], capture_output=True, text=True, check=True).stdout
check(out == open(dbc).read(), "chargerd can-dbc prints the shipped file")
print(f"can-dbc: {failures} failed")
sys.exit(1 if failures else 0)
