#!/usr/bin/env python3
"""Session records an operator can defend (issue 37, part 3): `chargerd journal verify` accepts the
untouched journal and names the record of an edited one; openssl, an independent peer, checks a record
and its signature alone.

sim-60kw, one journal over two boots: the first without a key (its session record unsigned, from before
signing began), the second with a P-256 key made by openssl. Then:
  - verify with the public key: 1 signed and verified, 1 unsigned from before, exit 0;
  - --extract: `openssl dgst -sha256 -verify` says "Verified OK" for the record and its signature;
  - the signed record edited (its energy raised by 1 kWh), framed again with a correct CRC, as someone
    who can write the file would: exit 1, the record named, "changed after it was signed";
  - the signature record removed instead: exit 1, the gap it leaves in the numbers named;
  - verify with another key: exit 1, the record "signed by another key";
  - a key file that is not a key: a clear error naming it, exit 2 (no crash).

Usage: journal-verify.py CHARGERD BOARDS_DIR
"""
import json, os, shutil, struct, subprocess, sys, tempfile, zlib
import chargerd_run

chargerd, boards = sys.argv[1], sys.argv[2]
board = f"{boards}/sim-60kw.toml"
checks = chargerd_run.Checks()
check = checks.check
MAGIC = 0x314C5243   # "CRL1", Sources/Journal/Journal.swift


def openssl(*args):
    return subprocess.run(["openssl"] + list(args), capture_output=True, text=True, timeout=60)


def verify(j, key, *extra):
    return subprocess.run([chargerd, "journal", "verify", "--dir", j, "--key", key] + list(extra),
                          capture_output=True, text=True, timeout=60)


def frames(path):
    """The journal file's records: (payload bytes) in order, each frame checked."""
    b = open(path, "rb").read()
    out, at = [], 0
    while at + 12 <= len(b):
        magic, n, crc = struct.unpack("<III", b[at:at + 12])
        payload = b[at + 12:at + 12 + n]
        assert magic == MAGIC and zlib.crc32(payload) == crc, f"bad frame at {at}"
        out.append(payload)
        at += 12 + n
    return out


def write_frames(path, payloads):
    with open(path, "wb") as f:
        for p in payloads:
            f.write(struct.pack("<III", MAGIC, len(p), zlib.crc32(p)) + p)


with tempfile.TemporaryDirectory() as tmp:
    key, pub, other, otherpub = (os.path.join(tmp, n) for n in ("key.pem", "pub.pem", "other.pem", "other-pub.pem"))
    for k, p in ((key, pub), (other, otherpub)):
        assert openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", k).returncode == 0
        assert openssl("pkey", "-in", k, "-pubout", "-out", p).returncode == 0
    key_id = subprocess.run(f"openssl pkey -pubin -in {pub} -outform DER | sha256sum", shell=True, capture_output=True,
                            text=True).stdout[:16]
    j = os.path.join(tmp, "journal")
    car = "capacity=10kWh,soc=70,target=80"
    a = subprocess.run([chargerd, "--board", board, "--car", car, "--journal", j, "--status-interval", "0", "--json"],
                       capture_output=True, text=True, timeout=300)
    b = subprocess.run([chargerd, "--board", board, "--car", car, "--journal", j, "--status-interval", "0", "--json",
                        "--signing-key", key], capture_output=True, text=True, timeout=300)
    check("two sessions, the second signed with the key openssl made",
          a.returncode == 0 and b.returncode == 0 and f"session records signed with key {key_id}" in b.stdout,
          f"rc {a.returncode}/{b.returncode}: {b.stdout[-300:]}")
    records = [json.loads(l) for l in subprocess.run([chargerd, "journal", "export", "--json", "--dir", j],
                                                     capture_output=True, text=True).stdout.splitlines()]
    ends = [r for r in records if r["kind"] == "session-end"]
    sigs = [r for r in records if r["kind"] == "signature"]
    signed = ends[-1]["seq"]
    check("the signed end record holds the meter at start and end, the charger's energy and the deviation",
          len(ends) == 2 and "startKWh" in ends[-1] and ends[-1]["energyKWh"] > ends[-1]["startKWh"]
          and "chargerKWh" in ends[-1] and "deviationPercent" in ends[-1]
          and len(sigs) == 1 and sigs[0]["signs"] == signed and sigs[0]["key"] == key_id, f"{ends} {sigs}")

    r = verify(j, pub, "--extract", str(signed), "--out", os.path.join(tmp, "x"))
    check("the untouched journal verifies: 1 signed and verified, 1 from before signing, exit 0",
          r.returncode == 0 and "1 session record(s) signed and verified, 0 problem(s), 1 unsigned from before signing began" in r.stdout,
          f"rc {r.returncode}: {r.stdout}{r.stderr}")
    o = openssl("dgst", "-sha256", "-verify", pub, "-signature", os.path.join(tmp, "x", f"record-{signed}.sig"),
                os.path.join(tmp, "x", f"record-{signed}.json"))
    check("openssl checks the extracted record and its signature alone: Verified OK",
          o.returncode == 0 and "Verified OK" in o.stdout, o.stdout + o.stderr)

    files = sorted(f for f in os.listdir(j) if f.startswith("journal-"))
    path = os.path.join(j, files[-1])
    original = frames(path)
    keep = os.path.join(tmp, "keep")
    shutil.copytree(j, keep)

    # Edited: the signed record's energy raised by 1 kWh, framed again with a correct CRC.
    edited = []
    for p in original:
        rec = json.loads(p)
        if rec.get("seq") == signed:
            rec["energyKWh"] = round(rec["energyKWh"] + 1, 3)
            p = json.dumps(rec, sort_keys=True, separators=(",", ":")).encode()
        edited.append(p)
    write_frames(path, edited)
    r = verify(j, pub)
    check(f"an edited record is named: record #{signed}, changed after it was signed, exit 1",
          r.returncode == 1 and f"record #{signed}:" in r.stdout and "changed after it was signed" in r.stdout,
          f"rc {r.returncode}: {r.stdout}")

    # The signature removed instead.
    write_frames(path, [p for p in original if json.loads(p).get("kind") != "signature"])
    r = verify(j, pub)
    check("a removed signature leaves a gap in the numbers, named, exit 1",
          r.returncode == 1 and f"record #{signed + 1} is missing between #{signed} and #{signed + 2}" in r.stdout,
          f"rc {r.returncode}: {r.stdout}")

    # Another key.
    write_frames(path, original)
    r = verify(j, otherpub)
    check("another key cannot vouch for the record: signed by another key, exit 1",
          r.returncode == 1 and f"record #{signed}: signed by key {key_id}, not the one given" in r.stdout,
          f"rc {r.returncode}: {r.stdout}")
    r = verify(j, pub)
    check("the journal written back as it was verifies again", r.returncode == 0, r.stdout)

    bad = os.path.join(tmp, "bad.pem")
    open(bad, "w").write("-----BEGIN PUBLIC KEY-----\nnot base64 at all\n-----END PUBLIC KEY-----\n")
    r = verify(j, bad)
    check("a key file that is no key: exit 2, named", r.returncode == 2 and "bad.pem" in r.stderr and "not a PEM" in r.stderr,
          f"rc {r.returncode}: {r.stderr}")

print(f"journal-verify: {len(checks.failures)} failed")
sys.exit(1 if checks.failures else 0)
