"""chargerd driven as the CLI tests drive it: started, watched line by line, stopped by a signal."""
import re, select, subprocess, time


def run_until(chargerd, args, patterns, sig):
    """Starts `chargerd` with `args`, sends `sig` once every pattern was seen in order (each within 120 s,
    an event waited for, never a fixed sleep), and returns (exit status, stdout)."""
    p = subprocess.Popen([chargerd] + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    out = []
    try:
        for pat in patterns:
            deadline = time.monotonic() + 120
            while True:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no line matching {pat!r} within 120 s")
                r, _, _ = select.select([p.stdout], [], [], 1.0)
                if not r:
                    continue
                line = p.stdout.readline()
                if not line:
                    raise RuntimeError(f"chargerd ended before {pat!r}")
                out.append(line)
                if re.search(pat, line):
                    break
        p.send_signal(sig)
        rest, _ = p.communicate(timeout=120)
        return p.returncode, "".join(out) + rest
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


class Checks:
    """Named checks printed as they are made ("ok   NAME" or "FAIL NAME: detail"), the failures kept."""

    def __init__(self):
        self.failures = []

    def check(self, name, ok, detail=""):
        print(("ok   " if ok else "FAIL ") + name + ("" if ok else ": " + detail))
        if not ok:
            self.failures.append(name)
