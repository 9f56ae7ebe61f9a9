#!/usr/bin/env python3
"""Writes the seed corpora under Fuzz/corpus/TARGET (docs/fuzzing.md). The seeds are committed; this
script says where each came from and makes them again (python3 Fuzz/seeds.py). A reproducer of a defect
the fuzzers found is kept beside them as repro-*, never made here."""
import hashlib, json, os, struct, sys, zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Fuzz", "corpus")

def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)

def ws(opcode, payload, fin=True, mask=None):
    b = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126: b += bytes([m | n])
    elif n < 65536: b += bytes([m | 126]) + struct.pack(">H", n)
    else: b += bytes([m | 127]) + struct.pack(">Q", n)
    if mask:
        b += bytes(mask)
        payload = bytes(x ^ mask[i & 3] for i, x in enumerate(payload))
    return b + payload

# websocket: the first byte picks the limit (even: 1 MiB, odd: 300 bytes).
call = b'[2,"1","Heartbeat",{}]'
put("websocket", "text", b"\x00" + ws(1, call))
put("websocket", "masked", b"\x00" + ws(1, call, mask=[1, 2, 3, 4]))
put("websocket", "fragments", b"\x00" + ws(1, b'[2,"1",', fin=False) + ws(9, b"ping") + ws(0, b'"Heartbeat",{}]'))
put("websocket", "close", b"\x00" + ws(8, b"\x03\xe8bye"))
put("websocket", "len16", b"\x01" + ws(2, bytes(range(256)) * 2))
put("websocket", "len64-huge", b"\x00" + bytes([0x81, 127]) + struct.pack(">Q", 0x7FFFFFFFFFFFFFFF))

# ocpp: CALLs the central system sends.
def c(action, payload, id="1"):
    return json.dumps([2, id, action, payload], separators=(",", ":"))
profile = {"connectorId": 1, "csChargingProfiles": {"chargingProfileId": 7, "stackLevel": 1,
           "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Absolute",
           "chargingSchedule": {"duration": 3600, "startSchedule": "2026-11-24T00:00:00Z", "chargingRateUnit": "W",
                                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 30000}, {"startPeriod": 600, "limit": 15000, "numberPhases": 3}]}}}
put("ocpp", "set-profile", c("SetChargingProfile", profile))
rec = json.loads(json.dumps(profile)); rec["csChargingProfiles"].update({"chargingProfileKind": "Recurring", "recurrencyKind": "Daily", "chargingProfilePurpose": "ChargePointMaxProfile"}); rec["connectorId"] = 0
put("ocpp", "set-profile-recurring", c("SetChargingProfile", rec))
put("ocpp", "local-list", c("SendLocalList", {"listVersion": 3, "updateType": "Full", "localAuthorizationList": [{"idTag": "ABC", "idTagInfo": {"status": "Accepted", "expiryDate": "2027-01-01T00:00:00Z"}}]}))
put("ocpp", "change-config", c("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "30"}))
put("ocpp", "reserve", c("ReserveNow", {"connectorId": 1, "expiryDate": "2026-11-24T01:00:00Z", "idTag": "ABC", "reservationId": 4}))
put("ocpp", "diagnostics-retries", c("GetDiagnostics", {"location": "ftp://u:p@h/diag/", "retries": 9223372036854775807, "retryInterval": 60}))
put("ocpp", "update-firmware", c("UpdateFirmware", {"location": "http://h/fw.bin", "retrieveDate": "2026-11-24T00:00:00Z", "retries": 2}))
put("ocpp", "signed-update", c("SignedUpdateFirmware", {"requestId": 5, "retries": 1, "firmware": {"location": "https://h/fw", "retrieveDateTime": "2026-11-24T00:00:00Z", "signingCertificate": "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n", "signature": "AAAA"}}))
put("ocpp", "data-transfer-deep", '[2,"9","DataTransfer",{"vendorId":"x","data":' + "[" * 40 + "]" * 40 + "}]")
put("ocpp", "result", '[3,"1",{"status":"Accepted","currentTime":"2026-11-24T00:00:00Z","interval":300}]')

# charge-point: the first byte picks the site (bit 0 free vend, 1 VIN first, 2 a firmware directory, 3 Reset
# possible), then one frame a line, to a charge point booted with a transaction running on gun 0. Call
# "2" is the first call of ours after boot (the first StatusNotification), answered by a CALLRESULT.
def lines(*frames): return "\n".join(frames)
put("charge-point", "remote-start-stop", b"\x09" + lines(
    '[3,"2",{}]',
    c("RemoteStartTransaction", {"idTag": "TAG-2", "connectorId": 2}),
    c("RemoteStopTransaction", {"transactionId": -1}),
    c("TriggerMessage", {"requestedMessage": "MeterValues"}),
    c("UnlockConnector", {"connectorId": 1})).encode())
put("charge-point", "reset-and-availability", b"\x08" + lines(
    c("ChangeAvailability", {"connectorId": 0, "type": "Inoperative"}),
    c("Reset", {"type": "Soft"}),
    '[3,"2",{}]', '[3,"3",{}]', '[4,"4","InternalError","no"]',
    c("ChangeAvailability", {"connectorId": 1, "type": "Operative"})).encode())
put("charge-point", "profiles-and-lists", b"\x01" + lines(
    c("SetChargingProfile", profile),
    c("GetCompositeSchedule", {"connectorId": 1, "duration": 3600, "chargingRateUnit": "A"}),
    c("ClearChargingProfile", {"id": 1}),
    c("SendLocalList", {"listVersion": 3, "updateType": "Full", "localAuthorizationList": [{"idTag": "ABC", "idTagInfo": {"status": "Accepted"}}]}),
    c("ReserveNow", {"connectorId": 2, "expiryDate": "2026-11-24T01:00:00Z", "idTag": "ABC", "reservationId": 4}),
    c("CancelReservation", {"reservationId": 4}),
    c("ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "5"}),
    c("GetConfiguration", {"key": ["HeartbeatInterval", "Nope"]})).encode())
put("charge-point", "delegated-and-hostile", b"\x06" + lines(
    c("UpdateFirmware", {"location": "http://h/fw.bin", "retrieveDate": "2026-11-24T00:00:00Z"}),
    c("ChangeConfiguration", {"key": "AuthorizationKey", "value": "00112233445566778899aabbccddeeff"}),
    '[2,"x","NoSuchAction",{}]', '[2,"y","RemoteStopTransaction",{"transactionId":"a"}]', "\u0000garbage",
    '[2,"z","DataTransfer",{"vendorId":"' + "v" * 300 + '"}]').encode())
put("ocpp", "error", '[4,"1","NotSupported","no",{}]')
put("ocpp", "get-log", c("GetLog", {"requestId": 1, "logType": "SecurityLog", "log": {"remoteLocation": "http://h/up/"}}))

# http-ftp: the first byte picks the reader (0 head, 1 chunked body, 2 FTP replies, 3 PASV answer).
put("http-ftp", "head", b"\x00HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain")
put("http-ftp", "head-chunked", b"\x00HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked")
put("http-ftp", "head-negative", b"\x00HTTP/1.1 200 OK\r\nContent-Length: -1")
put("http-ftp", "chunked", b"\x015\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n")
put("http-ftp", "ftp-replies", b"\x02220-Welcome\r\n220-to the\r\n220 server\r\n331 Password required\r\n230 Logged in\r\n")
put("http-ftp", "pasv", b"\x03127,0,0,1,195,80")

# ems: records of [length][PDU].
def pdu(*b): return bytes([len(b)]) + bytes(b)
put("ems", "heartbeat", pdu(0x06, 0, 0, 0, 7))
put("ems", "setpoint", pdu(0x10, 0, 6, 0, 2, 4, 0, 0, 0xC3, 0x50) + pdu(0x03, 0, 0, 0, 20))
put("ems", "cut-short", pdu(0x06, 0, 0) + pdu(0x04, 0, 0, 0, 10))
put("ems", "gun-setpoints", pdu(0x10, 0, 100, 0, 4, 8, 0, 0, 0x75, 0x30, 0xFF, 0xFF, 0xFF, 0xFF))

# j1939: records of [kind, dlc, data..., time step]; kind 0 TP.CM, 1 TP.DT, 2 poll, 4n+3 a single frame.
brm = bytes([1, 1, 0, 1, 0x2C, 0x01, 0xE8, 0x03]) + bytes(41)
def rec(kind, data, step=1): return bytes([kind, len(data)]) + bytes(data) + bytes([step])
tp = rec(0, [16, 49, 0, 7, 0xFF, 0x00, 0x02, 0x00])
for i in range(7):
    tp += rec(1, [i + 1] + list(brm[i * 7:(i + 1) * 7].ljust(7, b"\xff")))
put("j1939", "brm", tp)
put("j1939", "bcl-bcs", rec(3 + 4 * 4, [0x10, 0x0E, 0xA0, 0x0F, 2]) + rec(3 + 4 * 5, [0x10, 0x0E, 0xA0, 0x0F, 50, 30, 0, 0, 0]))
put("j1939", "bam", rec(0, [32, 9, 0, 2, 0xFF, 0x00, 0x11, 0x00]) + rec(1, [1, 1, 2, 3, 4, 5, 6, 7]) + rec(1, [2, 8, 9, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]) + rec(2, [], 200))

# console: bytes typed at the console.
put("console", "read-only", b"help\rstatus\rfaults\rlimits 0\rlog 5\rversion\r")
put("console", "editing", b"stat\x1b[D\x1b[C\x1b[A\x7fus\t\r\x15junk\x17\x01\x05\r")
put("console", "login", b"login tech\rwrong\rlogin tech\r\x03help cap\r")
put("console", "watch", b"watch status\rx\x03")

# board-file and site-file: the repository's own. A board that names device files of the library
# (Boards/devices) is seeded twice: as it is (the maps from the compiled library), and with each device
# file written in as its own [modbus_map.NAME] table (the board's own maps).
import re
for name in sorted(n for n in os.listdir(os.path.join(ROOT, "Boards")) if n.endswith(".toml")):
    text = open(os.path.join(ROOT, "Boards", name), "rb").read()
    put("board-file", name, text)
    devices = sorted(set(re.findall(rb'^map = "([a-z0-9-]+)"', text, re.M)))
    if devices:
        own = text + b"".join(b"\n[modbus_map." + d + b"]\n" + open(os.path.join(ROOT, "Boards", "devices", d.decode() + ".toml"), "rb").read()
                              for d in devices)
        put("board-file", "own-maps-" + name, own)
for name in sorted(os.listdir(os.path.join(ROOT, "HIL", "sites"))):
    put("site-file", name, open(os.path.join(ROOT, "HIL", "sites", name), "rb").read())

# journal: records framed as Journal.swift writes them (magic, length, CRC-32, JSON).
def frame(obj):
    p = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    return struct.pack("<III", 0x314C5243, len(p), zlib.crc32(p)) + p
boot = {"seq": 1, "t": 0, "wall": "2026-11-24T00:00:00.000Z", "boot": 1, "kind": "boot", "text": "chargerd sim-60kw"}
fault = {"seq": 2, "t": 60.001, "wall": "2026-11-24T00:01:00.001Z", "boot": 1, "kind": "fault", "gun": 0, "code": "E05", "reaction": "error-shutdown", "value": 40000, "faultSeq": 1}
start = {"seq": 3, "t": 5, "wall": "2026-11-24T00:00:05.000Z", "boot": 1, "kind": "session-start", "gun": 0}
j = frame(boot) + frame(start) + frame(fault)
put("journal", "records", j)
put("journal", "torn", j[:-7])
put("journal", "bad-length", struct.pack("<III", 0x314C5243, 0xFFFFFFFF, 0) + b"{}")
seedj = "/tmp/seedj/journal-000001.log"
if os.path.exists(seedj):
    put("journal", "chargerd-session", open(seedj, "rb").read())

# firmware-package: a head around an ELF header for x86_64 (machine 62).
elf = bytearray(128); elf[0:4] = b"\x7fELF"; elf[4] = 2; elf[5] = 1; elf[18] = 62
def pack(version, payload):
    return f"CHARGERD-FIRMWARE 1\nversion: {version}\nsize: {len(payload)}\nsha256: {hashlib.sha256(payload).hexdigest()}\n\n".encode() + payload
put("firmware-package", "x86-64", pack("1.4.0", bytes(elf)))
put("firmware-package", "bad-digest", pack("1.4.1", bytes(elf))[:-1] + b"\x01")
arm = bytearray(elf); arm[18] = 183
put("firmware-package", "aarch64", pack("2.0.0-rc1", bytes(arm)))

# state-files: the first byte picks the file (StateFiles.names, then the credentials file).
names = ["profiles.json", "availability.json", "configuration.json", "authorization.json", "reservations.json",
         "queue.json", "firmware.json", "security-events.json"]
put("state-files", "availability", bytes([1]) + b'{"inoperative":[1]}')
put("state-files", "configuration", bytes([2]) + b'{"HeartbeatInterval":"30"}')
put("state-files", "reservations", bytes([4]) + b'{"held":[{"id":4,"gun":0,"idTag":"ABC","expiry":1795000000000}]}')
put("state-files", "firmware-huge-retries", bytes([6]) + b'{"location":"http://h/fw","retrieveAt":0,"retries":9223372036854775807,"retryInterval":0,"stage":"waiting"}')
put("state-files", "security-events", bytes([7]) + b'[{"type":"FirmwareUpdated","timestamp":"2026-11-24T00:00:00Z"}]')
put("state-files", "credentials", bytes([8]) + b"# technicians\ntech:$y$j9T$abc$def\n")
print("seeds written under", OUT)
