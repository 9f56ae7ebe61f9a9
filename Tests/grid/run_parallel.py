"""make test-grid: every grid test (test_*.py here), GRID_JOBS at a time (default 2), each in a Python
process of its own with its own chargerd, central system and temporary directory, so they share
nothing but the machine.

The tests wait on real time (a charger at --speed 1 or 10, a central system's answers, upload retries),
not on the CPU, so two at a time on two cores take about half the wall time of one after another.
A worker takes the next test as soon as it is free. Each test's result is printed when it ends, a
failed one with its whole output; the exit status is 1 when any failed.
"""
import concurrent.futures
import os
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


def test_ids():
    def flatten(s):
        for t in s:
            if isinstance(t, unittest.TestSuite):
                yield from flatten(t)
            else:
                yield t
    suite = unittest.TestLoader().discover(HERE)
    out = []
    for t in flatten(suite):
        # A module that does not import is a loader error: run it so its error is reported.
        out.append(t.id())
    return out


def run_one(test_id):
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-W", "ignore::ResourceWarning", "-m", "unittest", "-v", test_id],
                       cwd=HERE, capture_output=True, text=True)
    return test_id, p.returncode, time.monotonic() - t0, p.stdout + p.stderr


def main():
    jobs = int(os.environ.get("GRID_JOBS", "2"))
    ids = test_ids()
    print(f"test-grid: {len(ids)} tests, {jobs} at a time", flush=True)
    lock = threading.Lock()
    failed = []
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for done in concurrent.futures.as_completed([pool.submit(run_one, i) for i in ids]):
            test_id, rc, took, output = done.result()
            with lock:
                if rc == 0:
                    print(f"ok    {test_id} ({took:.1f} s)", flush=True)
                else:
                    failed.append(test_id)
                    print(f"FAIL  {test_id} ({took:.1f} s)\n{output}", flush=True)
    print(f"test-grid: {len(ids) - len(failed)} passed, {len(failed)} failed, {time.monotonic() - t0:.0f} s"
          + (": " + " ".join(failed) if failed else ""), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
