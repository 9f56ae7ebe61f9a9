"""Tests/run_parallel.py DIR [JOBS]: every unittest test under DIR (test_*.py), JOBS at a time (default
2), each in a Python process of its own with its own chargerd, peers and temporary directory, so they
share nothing but the machine (make test-grid, test-wire, test-console).

The tests wait on real time (a charger at --speed 1 or 10, a central system's answers, upload retries,
a bench plant at 10x), not on the CPU, so several at a time take a fraction of the wall time of one
after another; none depends on another's order or timing.
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

# Tests/run_parallel.py DIR [JOBS] [--first TEXT]...: tests whose id contains a TEXT start first (the
# longest ones: started last they would run alone at the end).
ARGS = [a for a in sys.argv[1:]]
FIRST = [ARGS[i + 1] for i, a in enumerate(ARGS[:-1]) if a == "--first"]
POSITIONAL = [a for i, a in enumerate(ARGS) if a != "--first" and (i == 0 or ARGS[i - 1] != "--first")]
HERE = os.path.abspath(POSITIONAL[0]) if POSITIONAL else os.path.dirname(os.path.abspath(__file__))
NAME = "test-" + os.path.basename(HERE)


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
    jobs = int(POSITIONAL[1]) if len(POSITIONAL) > 1 else 2
    ids = test_ids()
    ids = [i for i in ids if any(f in i for f in FIRST)] + [i for i in ids if not any(f in i for f in FIRST)]
    print(f"{NAME}: {len(ids)} tests, {jobs} at a time", flush=True)
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
    print(f"{NAME}: {len(ids) - len(failed)} passed, {len(failed)} failed, {time.monotonic() - t0:.0f} s"
          + (": " + " ".join(failed) if failed else ""), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
