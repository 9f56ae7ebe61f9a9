#!/usr/bin/env python3
"""The console transcript in docs/technician.md ("A technician's first five minutes"), from a run.

chargerd on sim-60kw with a car, the cabinet door opened at 60 s (E02 ends the session) and closed at
90 s; the console on a pty, attached as picocom would be, and a technician's commands typed in order:
status, faults, log, a reset refused without a login, login, the reset, status, logout.

  transcript.py CHARGERD BOARD            print the transcript
  transcript.py CHARGERD BOARD --write F  put it between F's transcript markers
  transcript.py CHARGERD BOARD --check F  exit 1 when F's transcript differs from a run's in more than its
                                          figures (times, values, checksums: every number is masked)
"""
import os, re, shutil, subprocess, sys, tempfile, time
import pexpect

chargerd, board = sys.argv[1], sys.argv[2]
BEGIN, END = "<!-- transcript:begin (Tests/console/transcript.py --write) -->", "<!-- transcript:end -->"
PASSWORD = "secret-pass"


def run():
    d = tempfile.mkdtemp(prefix="transcript-")
    creds = os.path.join(d, "technicians")
    subprocess.run([chargerd, "passwd", "--file", creds, "tech"], input=PASSWORD + "\n", text=True, check=True, capture_output=True)
    out_path = os.path.join(d, "stdout")
    out = open(out_path, "w")
    # The board path as an installer writes it (relative to the repository), so the banner reads as in the docs.
    root = os.path.dirname(os.path.dirname(os.path.abspath(board)))
    p = subprocess.Popen([chargerd, "--board", os.path.relpath(board, root), "--speed", "10", "--max-time", "100000",
                          "--status-interval", "0", "--continuous", "--arrival-interval", "100000", "--inject", "door@60s", "--inject", "door-close@90s",
                          "--console", "pty", "--credentials", creds, "--journal", os.path.join(d, "journal")],
                         stdout=out, stderr=subprocess.STDOUT, text=True, cwd=root)
    try:
        pty = None
        deadline = time.monotonic() + 30
        while pty is None and time.monotonic() < deadline:
            m = re.search(r"console: (/dev/pts/\d+)", open(out_path).read())
            if m: pty = m.group(1)
            else: time.sleep(0.05)
        assert pty, open(out_path).read()
        t = pexpect.spawn("socat", ["-,raw,echo=0", pty + ",raw,echo=0"], encoding="utf-8", codec_errors="replace", timeout=30)
        t.expect_exact("charger> ")
        lines = [t.before.replace("\r\n", "\n").strip("\n"), "charger> "]

        def cmd(line, prompt="charger> ", hidden=False):
            t.send(line + "\r")
            t.expect_exact(prompt)
            answer = t.before.replace("\r\n", "\n")
            lines[-1] += ("" if hidden else line)
            body = answer[len(line):] if answer.startswith(line) else answer
            lines.append(body.strip("\n"))
            lines.append(prompt)
            return answer

        # Wait for the door to have closed again (controller time past 95 s; an event, with a generous
        # bound): the waiting is not part of the transcript.
        deadline = time.monotonic() + 120
        while True:
            t.send("status\r")
            t.expect_exact("charger> ")
            m = re.search(r"t=(\d+)\.\d s", t.before)
            if m and int(m.group(1)) >= 95:
                break
            assert time.monotonic() < deadline, "controller time did not pass 95 s within 120 s: " + t.before
            time.sleep(0.5)
        # Start the transcript afresh on a clean prompt (the waiting above is not part of it).
        lines = [lines[0], "charger> "]
        cmd("status")
        cmd("faults")
        cmd("log 6")
        cmd("fault reset")
        t.send("login tech\r")
        t.expect_exact("password: ")
        lines[-1] += "login tech"
        lines.append("password: ")
        cmd(PASSWORD, prompt="charger#tech> ", hidden=True)
        cmd("fault reset", prompt="charger#tech> ")
        cmd("status", prompt="charger#tech> ")
        cmd("logout")
        t.terminate(force=True)
        return "\n".join(l for l in lines if l != "")
    finally:
        p.terminate()
        p.wait(10)
        shutil.rmtree(d, ignore_errors=True)


def mask(text):
    """Every number as '#', runs of spaces as one: what changes from run to run."""
    return [re.sub(r" +", " ", re.sub(r"[0-9a-f]{16}|\d+(\.\d+)?", "#", l)).rstrip() for l in text.splitlines()]


def block(doc):
    s = open(doc).read()
    i, j = s.find(BEGIN), s.find(END)
    if i < 0 or j < i:
        sys.exit(f"{doc}: no transcript markers")
    return s, i, j


if __name__ == "__main__":
    text = run()
    if len(sys.argv) > 4 and sys.argv[3] in ("--write", "--check"):
        doc = sys.argv[4]
        s, i, j = block(doc)
        if sys.argv[3] == "--write":
            open(doc, "w").write(s[:i + len(BEGIN)] + "\n```\n" + text + "\n```\n" + s[j:])
            print(f"transcript written to {doc}")
        else:
            old = s[i + len(BEGIN):j].strip().strip("`").strip("\n")
            a, b = mask(old), mask(text)
            if a != b:
                import difflib
                print("\n".join(difflib.unified_diff(a, b, "doc", "run", lineterm="")))
                print(f"{doc}: the console transcript differs from a run: regenerate it with "
                      f"`python3 Tests/console/transcript.py {chargerd} {board} --write {doc}`")
                sys.exit(1)
            print(f"{doc}: the console transcript is a run's (numbers aside)")
    else:
        print(text)
