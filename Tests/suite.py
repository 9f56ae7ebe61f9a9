"""make test: the one release build every target shares, then the targets side by side in lanes.

The targets differ in what they wait on. Some need the CPU (the Swift tests, the fuzz gate's
instrumented build and its executions, the HIL campaign); some wait on real time (chargerd paced at
1x or 10x against real peers, the qemu guest whose CAN sessions charge in wall-clock time). A lane runs
its targets one after another; the lanes run at once, so the waiting targets overlap the working ones.
Every target is a `make` target of its own (`make test-wire` alone works as before); here each gets
NO_BUILD=1 (the build is done, and two SwiftPM processes on one .build would wait on its lock).

Every target runs even when another failed; each one's output is printed whole when it ends (never
interleaved), with its wall time, and a table at the end gives every target's time and the total. The
exit status is 1 if any target failed. SERIAL=1 runs the targets one after another (the per-target
figures of BENCHMARKS.md's "Where make test's time goes" without contention); TARGETS="test-x test-y"
runs some of them.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Lane 1 needs the CPU; lane 2 is the qemu guest (real time, and the guest's own CPU); lane 3 waits on
# chargerd at speed against real peers, then takes the HIL campaign (CPU), which balances the lanes: in
# lane 1 after the fuzz gate it made lane 1 the critical path by ~4 min (BENCHMARKS.md q19/q20). Their
# orders put the long targets first within each lane.
# The batch targets run at nice 19: their work (compiling, Swift tests in virtual time, fuzzing, the
# campaign) must not take the CPU from the real-time tests and the guest beside them (at equal
# priority a Swift build's and the guest's threads left a bench's RTU line unserved for seconds).
BATCH = {"test-swift", "test-fuzz", "test-hil"}
LANES = [
    ["test-swift", "test-fuzz"],
    ["test-kernel"],
    ["test-wire", "test-grid", "test-console", "test-cli", "test-deb", "test-hil"],
]


class Priority:
    """The batch targets' niceness: 19 while a real-time target runs beside them, 0 once every lane's
    real-time targets have ended (at 19 beside an outside CPU hog, `stress-ng --cpu 2`, they got 2 % of
    the machine and crawled). Each batch target runs in a session of its own, reniced as a whole
    when the last lane's real-time part ends."""

    def __init__(self, realtime_lanes):
        self.lock = threading.Lock()
        self.left = realtime_lanes
        self.groups = set()
        threading.Thread(target=self.keep, daemon=True).start()

    def keep(self):
        """Once a second, every thread of every batch target's session at the niceness wanted: SwiftPM
        starts what it runs (the compilers, the test bundle) at nice 0 whatever its own (`nice -n 19 swift
        test` ran the xctest at 0), so test-swift's tests on both cores and the fuzz gate's compilers ran
        beside the real-time lanes at full priority, and test-wire's RTU line went silent for up to 1.2 s
        (q47, q48). Niceness is per thread on Linux: each thread of a process in a batch session."""
        while True:
            time.sleep(1)
            with self.lock:
                sids, level = set(self.groups), (19 if self.left > 0 else 0)
            if not sids:
                continue
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    with open(f"/proc/{pid}/stat") as f:
                        if int(f.read().rsplit(")", 1)[1].split()[3]) not in sids:
                            continue
                    for tid in os.listdir(f"/proc/{pid}/task"):
                        with open(f"/proc/{pid}/task/{tid}/stat") as f:
                            nice = int(f.read().rsplit(")", 1)[1].split()[16])
                        if nice != level:
                            os.setpriority(os.PRIO_PROCESS, int(tid), level)
                except (OSError, ValueError, IndexError):
                    continue   # gone meanwhile, or (without CAP_SYS_NICE) not ours to raise

    def nice(self, wanted):
        with self.lock:
            return wanted if self.left > 0 else 0

    def started(self, pgid):
        with self.lock:
            self.groups.add(pgid)
            if self.left == 0:
                self.renice(pgid)

    def ended(self, pgid):
        with self.lock:
            self.groups.discard(pgid)

    def realtime_lane_ended(self):
        with self.lock:
            self.left -= 1
            if self.left == 0:
                for g in self.groups:
                    self.renice(g)

    @staticmethod
    def renice(pgid):
        try:
            os.setpriority(os.PRIO_PGRP, pgid, 0)
        except OSError:
            pass   # without CAP_SYS_NICE the group keeps its niceness: slower, not wrong


def run(cmd, log_path, env=None, priority=None):
    """Runs cmd with its output to log_path: (exit status, wall seconds, CPU seconds). The CPU seconds
    are the target's and every descendant it waited for (wait4's rusage: user + system), the qemu
    guest's emulated CPUs among them: what a target costs the machine, beside what it waits."""
    t0 = time.monotonic()
    with open(log_path, "w") as log:
        # A batch target in a session of its own (Priority.keep finds its descendants by it: SwiftPM puts
        # what it runs in process groups of their own).
        p = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env,
                             start_new_session=priority is not None)
        if priority is not None:
            priority.started(p.pid)
        while True:
            try:
                _, status, usage = os.wait4(p.pid, 0)
                break
            except InterruptedError:
                continue
        p.returncode = os.waitstatus_to_exitcode(status)
        if priority is not None:
            priority.ended(p.pid)
    return p.returncode, time.monotonic() - t0, usage.ru_utime + usage.ru_stime


def main():
    wanted = os.environ.get("TARGETS", "").split()
    serial = os.environ.get("SERIAL", "") not in ("", "0")
    make = os.environ.get("MAKE", "make")
    lanes = [[t for t in lane if not wanted or t in wanted] for lane in LANES]
    nice = {t: 19 if t in BATCH else 0 for lane in LANES for t in lane}
    unknown = [t for t in wanted if not any(t in lane for lane in LANES)]
    if unknown:
        print(f"make test: no target {' '.join(unknown)} (targets: {' '.join(t for l in LANES for t in l)})")
        return 2
    if serial:
        lanes = [[t for lane in lanes for t in lane]]
    lanes = [lane for lane in lanes if lane]
    logs = os.path.join(ROOT, ".build", "suite")
    os.makedirs(logs, exist_ok=True)
    t_start = time.monotonic()

    # The Makefile's RELEASE (exported): the targets' own builds, make build and this one the same flags,
    # or each would rebuild everything.
    release = os.environ.get("RELEASE", "-c release -Xswiftc -gnone -Xcc -g0").split()
    print(f"=== build (swift build {' '.join(release)} --build-tests: every product and test, once)", flush=True)
    rc, took, cpu = run(["swift", "build", *release, "--build-tests"], os.path.join(logs, "build.log"))
    with open(os.path.join(logs, "build.log")) as f:
        text = f.read()
    print("\n".join(l for l in text.splitlines() if rc != 0 or l.startswith(("Build complete", "error:", "Building"))), flush=True)
    results = {"build": (rc, took, "-", cpu)}
    if rc != 0:
        print(text[-6000:])
        print(f"=== build FAILED after {took:.0f} s: no target can run")
        return 1
    print(f"=== build done in {took:.0f} s", flush=True)

    lock = threading.Lock()
    env = dict(os.environ, NO_BUILD="1")
    realtime = [lane for lane in lanes if any(not nice[t] for t in lane)]
    priority = Priority(realtime_lanes=len(realtime)) if not serial else None

    def lane_worker(n, lane):
        last_realtime = max((i for i, t in enumerate(lane) if not nice[t]), default=None)
        for i, t in enumerate(lane):
            with lock:
                print(f"=== make {t} (lane {n + 1}) started at {time.monotonic() - t_start:.0f} s", flush=True)
            path = os.path.join(logs, f"{t}.log")
            cmd = [make, "--no-print-directory", t]
            level = priority.nice(nice[t]) if priority and nice[t] else 0
            if level:
                cmd = ["nice", "-n", str(level)] + cmd
            rc, took, cpu = run(cmd, path, env, priority if nice[t] else None)
            with open(path, errors="replace") as f:
                out = f.read()
            with lock:
                results[t] = (rc, took, n + 1, cpu)
                print(f"=== make {t}: output", flush=True)
                print(out, end="" if out.endswith("\n") else "\n", flush=True)
                print(f"=== {t} {'passed' if rc == 0 else 'FAILED'} in {took:.0f} s, {cpu:.0f} s of CPU (lane {n + 1})", flush=True)
            if priority and i == last_realtime:
                priority.realtime_lane_ended()

    threads = [threading.Thread(target=lane_worker, args=(n, lane)) for n, lane in enumerate(lanes)]
    for th in threads:
        th.start()
    try:
        for th in threads:
            th.join()
    except KeyboardInterrupt:
        # The batch targets are process groups of their own (for renicing): the terminal's ^C does not
        # reach them, so they are stopped here.
        if priority:
            for g in list(priority.groups):
                try:
                    os.killpg(g, signal.SIGTERM)
                except OSError:
                    pass
        raise
    total = time.monotonic() - t_start

    failed = [t for t, (rc, _, _, _) in results.items() if rc != 0]
    print(f"\n{'target':<14} {'lane':>4} {'wall s':>7} {'CPU s':>7}  result")
    for t, (rc, took, lane, cpu) in results.items():
        print(f"{t:<14} {lane:>4} {took:7.0f} {cpu:7.0f}  {'passed' if rc == 0 else 'FAILED'}")
    cpu_all = sum(r[3] for r in results.values())
    print(f"{'make test':<14} {'':>4} {total:7.0f} {cpu_all:7.0f}  {'FAILED: ' + ' '.join(failed) if failed else 'passed'}"
          f"{' (one after another)' if serial else f' ({len(lanes)} lanes)'}", flush=True)
    try:
        with open(os.path.join(logs, "times.json"), "w") as f:
            json.dump({"total": total, "serial": serial,
                       "targets": {t: {"rc": rc, "seconds": round(took, 1), "cpu_seconds": round(cpu, 1), "lane": lane}
                                   for t, (rc, took, lane, cpu) in results.items()}}, f, indent=1)
    except OSError:
        pass
    if failed:
        print(f"make test: failed targets: {' '.join(failed)}")
        return 1
    print(f"make test: every target passed ({' '.join(t for lane in lanes for t in lane)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
