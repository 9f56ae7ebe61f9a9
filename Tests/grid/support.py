"""Helpers for the grid-interface tests: chargerd on a sim board with a site file, its output read line
by line in a thread, free ports, the EMS register map from HIL/ems-register-map.csv."""
import csv
import os
import queue
import re
import socket
import subprocess
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.join(ROOT, ".build", "release", "chargerd")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def register_map():
    """name -> (table, address, words, stride) from the committed data file."""
    with open(os.path.join(ROOT, "HIL", "ems-register-map.csv")) as f:
        return {r["name"]: (r["table"], int(r["address"]), int(r["words"]), int(r["gun_stride"])) for r in csv.DictReader(f)}


class Chargerd:
    """chargerd in the background; `lines` collects its standard output and error."""

    def __init__(self, site_text, *args, board="sim-60kw", tmp=None, stdin=False, binary=None, env=None):
        self.tmp = tmp or tempfile.mkdtemp(prefix="grid-")
        self.site = os.path.join(self.tmp, "site.toml")
        with open(self.site, "w") as f:
            f.write(site_text)
        cmd = [binary or BIN, "--board", os.path.join(ROOT, "Boards", f"{board}.toml"), "--site", self.site, *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                     text=True, bufsize=1, env=env)
        self.lines = []
        self.q = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            self.q.put(line)

    def output(self):
        return "\n".join(self.lines)

    def wait_line(self, pattern, timeout=30, start=0):
        """The first output line from index `start` matching `pattern` (regex), waiting for it."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while time.monotonic() < deadline:
            for i in range(start, len(self.lines)):
                if rx.search(self.lines[i]):
                    return i, self.lines[i]
            if self.proc.poll() is not None and self.q.empty():
                time.sleep(0.2)
                for i in range(start, len(self.lines)):
                    if rx.search(self.lines[i]):
                        return i, self.lines[i]
                raise AssertionError(f"chargerd exited ({self.proc.returncode}) before /{pattern}/:\n" + self.output()[-4000:])
            time.sleep(0.05)
        raise AssertionError(f"no /{pattern}/ within {timeout} s:\n" + self.output()[-4000:])

    def status(self, gun=0, after=0, timeout=30):
        """The next status line of a gun: (t, phase, volts, amps, kW, limit kW, source)."""
        i, line = self.wait_line(rf"\] gun{gun} ", timeout=timeout, start=after)
        m = re.search(r"\[\s*([\d.]+) s\] gun\d+ (\S+)\s+([\d.]+) V\s+([\d.]+) A\s+([\d.-]+) kW\s+limit\s+([\d.]+) kW \(([^)]+)\)", line)
        return i, (float(m.group(1)), m.group(2), float(m.group(3)), float(m.group(4)), float(m.group(5)), float(m.group(6)), m.group(7))

    def finish(self, timeout=30):
        """Waits for chargerd to exit, then for its reader to take the last of its output (the pipe is
        read by a thread: right after the exit its last lines may not be in `lines` yet)."""
        self.proc.wait(timeout)
        self.reader.join(timeout)
        return self.proc.returncode

    def send(self, text):
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def stop(self, timeout=10):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(2)
        return self.proc.returncode
