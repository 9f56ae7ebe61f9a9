"""Runs chargerd against the plant emulator over real Modbus (TCP on loopback, RTU on a socat pty pair).

Each bench gets its own copy of a bench board file with a free TCP port, its own pty pair and its own
channel file, so benches never collide. Used by test_wire.py; also handy by hand:

    python3 Tests/wire/bench.py tcp --car capacity=10kWh,soc=20,target=80 --speed 10
"""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("CHARGER_BIN", os.path.join(ROOT, ".build", "release"))
PEERS = os.path.join(ROOT, "HIL", "peers")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Bench:
    """One emulator (and, for RTU, one socat pty pair) with a private board file."""

    def __init__(self, transport, car="capacity=10kWh,soc=20,target=80", speed="10", plant_args=(), board=None,
                 fault_after=None, comm_timeouts=None):
        self.transport = transport
        self.dir = tempfile.mkdtemp(prefix="bench-")
        source = board or os.path.join(ROOT, "Boards", f"bench-60kw-{transport}.toml")
        with open(source, encoding="utf-8") as f:
            text = f.read()
        self.channel = f"/dev/shm/bench-test-{os.getpid()}-{id(self)}"
        text = re.sub(r'channel = "[^"]*"', f'channel = "{self.channel}"', text)
        if fault_after is not None:
            text = re.sub(r"^fault_after = \d+", f"fault_after = {fault_after}", text, flags=re.M)
        if comm_timeouts is not None:
            for role, value in zip(("module", "meter", "imd"), comm_timeouts):
                text = re.sub(rf'^{role}_comm_timeout = "[^"]*"', f'{role}_comm_timeout = "{value}"', text, flags=re.M)
        self.port = None
        self.socat = None
        extra = []
        if transport == "tcp":
            self.port = free_port()
            text = re.sub(r"^port = \d+", f"port = {self.port}", text, flags=re.M)
        else:
            self.pty_controller = os.path.join(self.dir, "tty-controller")
            self.pty_plant = os.path.join(self.dir, "tty-plant")
            text = re.sub(r'device = "[^"]*"', f'device = "{self.pty_controller}"', text)
            self.socat = subprocess.Popen(["socat", f"pty,raw,echo=0,link={self.pty_controller}",
                                           f"pty,raw,echo=0,link={self.pty_plant}"], stderr=subprocess.DEVNULL)
            for _ in range(200):
                if os.path.exists(self.pty_controller) and os.path.exists(self.pty_plant):
                    break
                time.sleep(0.01)
            extra = ["--serve-rtu", self.pty_plant]
        self.board = os.path.join(self.dir, os.path.basename(source))
        with open(self.board, "w", encoding="utf-8") as f:
            f.write(text)
        args = [os.path.join(BIN, "charger-plant"), "--board", self.board, "--speed", str(speed), "--once"] + extra
        if car:
            args += ["--car", car]
        args += list(plant_args)
        self.plant_log = open(os.path.join(self.dir, "plant.log"), "w+")
        self.plant = subprocess.Popen(args, stdout=self.plant_log, stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + 10
        while "ready" not in self.plant_output():
            if self.plant.poll() is not None or time.time() > deadline:
                raise RuntimeError("charger-plant did not start:\n" + self.plant_output())
            time.sleep(0.02)

    def plant_output(self):
        with open(self.plant_log.name, encoding="utf-8") as f:
            return f.read()

    def chargerd(self, *args, timeout=240):
        """Runs chargerd on this bench's board; returns (exit status, stdout, stderr)."""
        p = subprocess.run([os.path.join(BIN, "chargerd"), "--board", self.board, *args],
                           capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr

    def close(self):
        """Stops the emulator (SIGTERM) and returns its exit status (None if it had to be killed)."""
        status = self.plant.poll()
        if status is None:
            self.plant.send_signal(signal.SIGTERM)
            try:
                status = self.plant.wait(10)
            except subprocess.TimeoutExpired:
                self.plant.kill()
                status = None
        if self.socat:
            self.socat.terminate()
            self.socat.wait(5)
        if os.path.exists(self.channel):
            os.unlink(self.channel)
        self.plant_log.close()
        return status

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


if __name__ == "__main__":
    import argparse
    p = argparse.ArgumentParser()
    p.add_argument("transport", choices=["tcp", "rtu"])
    p.add_argument("--car", default="capacity=10kWh,soc=20,target=80")
    p.add_argument("--speed", default="10")
    p.add_argument("--plant", action="append", default=[], help="one argument for charger-plant (repeatable)")
    a, rest = p.parse_known_args()
    rest = [x for x in rest if x != "--"]
    with Bench(a.transport, car=a.car, speed=a.speed, plant_args=a.plant) as b:
        rc, out, err = b.chargerd(*(rest or ["--sessions", "1", "--max-time", "900"]))
        print(out, end="")
        print(err, end="", file=sys.stderr)
        time.sleep(0.3)
        print("--- charger-plant ---")
        print(b.plant_output(), end="")
        print(f"--- chargerd exit {rc}, charger-plant exit {b.close()}")
