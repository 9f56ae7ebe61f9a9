"""Over the wire: chargerd on a bench board against the plant emulator, through real libmodbus over Modbus
TCP on loopback and Modbus RTU on a socat pseudo-terminal pair; every communication fault the emulator
can play; pymodbus (an independent implementation) reading and writing the emulator's registers.

Run by `make test` (needs the release build of chargerd and charger-plant, socat and pymodbus):
    python3 -m unittest discover -s Tests/wire -v
"""
import json
import os
import re
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import BIN, Bench  # noqa: E402

CAR = "capacity=10kWh,soc=20,target=80"


def counters(out, device):
    """The counters of one device from chargerd's report, as a dict."""
    line = next(l for l in out.splitlines() if l.startswith(f"modbus {device} ("))
    found = {k: int(v) for v, k in re.findall(r"(\d+) (exchanges|ok|timeouts|bad replies|exceptions|connection errors)", line)}
    found["lost"] = re.search(r"lost \d+x", line) is not None     # lost at least once
    found["lost now"] = "still lost" in line
    found["line"] = line
    return found


def plant_gun(plant_out):
    m = re.search(r"charger-plant: gun 0: K1 (\w+), K2 (\w+), (-?[\d.]+) A", plant_out)
    return m.group(1), m.group(2), float(m.group(3))


class Session(unittest.TestCase):
    """A whole 20 → 80 % session over the wire (434 s of plant time: TCP at 10x, RTU at 5x)."""

    def session(self, transport):
        # The bus runs in wall time while the plant runs faster: at 10x a 100 ms stall of a loaded CI
        # machine is a second of plant time, past the meter's comm timeout. RTU (slower, ~250 µs a round
        # trip on a pty) gets more margin at 5x. A loaded 2-core CI machine also stalls the socat pty
        # for a few hundred ms now and then (seen: 3 meter timeouts in a row, the meter lost, E25): this
        # test is about a whole session over the wire, so it declares a device lost after 10 failures in a
        # row (500 ms of a silent line) instead of the board's 3; CommFaults keeps the board's value and
        # proves that loss is detected. For the same reason the comm timeouts of the core are 3 / 4 / 4 s of
        # bus silence here instead of the board's 1 / 2 / 2 s (seen on a clean-clone CI run beside a
        # campaign: both modules unanswered for a whole second of wall time on the RTU pty, E23 on both).
        # A host starved past what those margins cover (seen beside a second `make test`: two suites and
        # two qemu guests on two cores, the RTU round trip's max 793 ms, the meter lost after 10 timeouts
        # in a row, E25) says so and runs the session again, once: the loss was the host's, and the
        # controller was right to stop on it. Starved: the session ended on a communication fault while
        # the bus saw a round trip of 500 ms or more (the silent line the lost rule allows), or while every
        # device on the bus had been lost: four units with their own timeouts silent together is the
        # line's relay or the host stalling, not a device (seen beside the Swift suite at nice 19: the
        # RTU round trip's max 152 ms, 26-31 timeouts on each of the four, all four lost once, E25), or
        # while every device on the bus timed out at least the lost rule's 10 times: the line silent for
        # all four, two of them counted lost before the others in the poll's order (q39 and q42, each at
        # the start of the suite's lanes while the guest booted: the round trip's max 58 and 105 ms, 17-25
        # timeouts on each device, the meter lost, E25; a quiet run has a handful at most).
        for attempt in (1, 2):
            with Bench(transport, car=CAR, speed=10 if transport == "tcp" else 5, fault_after=10,
                       comm_timeouts=("3 s", "4 s", "4 s")) as b:
                rc, out, err = b.chargerd("--sessions", "1", "--max-time", "900", "--status-interval", "60")
                time.sleep(0.5)
                plant = b.plant_output()
                worst = re.search(r"round trip p50 \d+ / p99 \d+ / max (\d+) µs", out)
                devices = re.findall(r"^modbus (?:module|meter|imd) .*?, lost (\d+)x", out, re.M)
                all_lost = len(devices) >= 4 and all(int(n) > 0 for n in devices)
                timeouts = [int(n) for n in re.findall(r"^modbus (?:module|meter|imd) [^:]*: \d+ exchanges, \d+ ok, (\d+) timeouts", out, re.M)]
                all_timed_out = len(timeouts) >= 4 and min(timeouts) >= 10
                long_trip = worst and int(worst.group(1)) >= 500_000
                starved = rc == 1 and re.search(r"FAULT E2[3-6]-", out) and (long_trip or all_lost or all_timed_out)
                if attempt == 1 and starved:
                    why = (f"a round trip of {int(worst.group(1)) / 1000:.0f} ms" if long_trip else "every device on the bus lost together"
                           if all_lost else f"every device on the bus timing out, {min(timeouts)}-{max(timeouts)} times each")
                    print(f"NOTE {transport} session starved on its first run (a communication fault with {why}): run again", flush=True)
                    b.close()
                    continue
                self.check_session(b, rc, out, err, plant)
                return

    def check_session(self, b, rc, out, err, plant):
        self.assertEqual(rc, 0, out + err + plant)
        self.assertIn("4/4 Modbus devices answered", out)
        for phase in ["insulation-check", "precharge", "charging", "stopping", "welding-check", "unlocking", "finished"]:
            self.assertRegex(out, rf"gun0 {phase}\n")
        self.assertIn("faults: none", out)
        energy = float(re.search(r"energy by the meter: gun0 ([\d.]+) kWh", out).group(1))
        # 60 % of 10 kWh goes into the cells; the meter at the gun also counts the pack's I²R loss
        # (SimPlant.Car: 0.26 Ω for this 10 kWh pack, ~4.8 kW of 60 kW at 135 A, about 8 %).
        self.assertGreater(energy, 6.0, out)
        self.assertLess(energy, 6.0 * 1.12, out)
        self.assertRegex(out, r"SOC (7[5-9]|80)\.\d%")
        for dev in ["module 0", "module 1", "meter gun 0", "imd gun 0"]:
            c = counters(out, dev)
            self.assertGreater(c["ok"], 1000, c["line"])
            # A late reply on a loaded machine is physics, not a defect: it is retried and counted,
            # and must change nothing. What must hold: every exchange is accounted for, failures stay
            # rare, the device is not lost at the end, no comm fault ("faults: none" above: the core
            # never went its comm timeout without the device) and the session completed. A loss that
            # recovered within that timeout is the suite's own load on the pty (module 0 lost once
            # after 41 timeouts in 14,940 exchanges, quiet run q2), reported in the line, not failed.
            failed = c["timeouts"] + c["bad replies"] + c["exceptions"] + c["connection errors"]
            self.assertEqual(c["exchanges"], c["ok"] + failed, c["line"])
            self.assertLess(failed * 50, c["exchanges"], c["line"])   # under 2 %
            self.assertFalse(c["lost now"], c["line"])
            self.assertEqual(c["exceptions"], 0, c["line"])   # the emulator never refuses a request
        self.assertRegex(out, r"round trip p50 \d+ / p99 \d+ / max \d+ µs")
        # The plant's own truth: contactors open, no current, modules switched off by the controller.
        self.assertEqual(b.close(), 0, plant)
        plant = b.plant_output()
        self.assertEqual(plant_gun(plant), ("open", "open", 0.0), plant)
        self.assertIn("charger-plant: module 0: off", plant)
        self.assertNotIn("refused", plant)

    def test_tcp_session_20_to_80(self):
        self.session("tcp")

    def test_rtu_session_20_to_80(self):
        self.session("rtu")


class CommFaults(unittest.TestCase):
    """Each way a device can fail on the wire, during charging, ends in the documented reaction:
    a module lost derates the gun (its share until its own watchdog switches it off, then the remaining
    module's 30 kW); a meter or IMD lost stops the gun (error shutdown). Nothing crashes."""

    def run_fault(self, fault, transport="tcp", max_time=45, fault_after=None):
        with Bench(transport, car=CAR, speed=10, plant_args=["--comm-fault", fault], fault_after=fault_after) as b:
            rc, out, err = b.chargerd("--max-time", str(max_time), "--status-interval", "5")
            status = b.close()
            plant = b.plant_output()
            self.assertEqual(rc, 1, out + err)          # a fault, not a crash (a signal would be negative)
            self.assertEqual(status, 0, plant)          # the emulator survived its own misbehaviour
            self.assertIn("session did not end normally", err)
            return out, plant

    def assert_module_lost(self, out, plant, counter):
        self.assertRegex(out, r"FAULT E23-module-comm-lost \(derate\)")
        self.assertNotIn("E12-over-current", out)
        c = counters(out, "module 0")
        self.assertTrue(c["lost"], c["line"])
        self.assertGreater(c[counter], 0, c["line"])
        # The healthy module kept answering: never lost (a late reply on a loaded machine may be counted,
        # as in the session tests; what must hold is that the other module is not dragged down).
        other = counters(out, "module 1")
        self.assertFalse(other["lost"], other["line"])
        self.assertGreater(other["ok"], 100, other["line"])
        # Until the silent module switches itself off (15 s) the gun goes on at 60 kW with it, then at
        # the remaining module's 30 kW: the status lines after 36 s show the module limit binding.
        self.assertIn("module 0: no command for 15.0 s: switched itself off", plant)
        self.assertRegex(out, r"\[ +40\.0 s\] gun0 charging .*limit +30\.0 kW \(modules\)")

    def test_module_silent(self):
        self.assert_module_lost(*self.run_fault("module:0=silent@20s"), "timeouts")

    def test_module_exception_replies(self):
        out, plant = self.run_fault("module:0=exception@20s")
        self.assert_module_lost(out, plant, "exceptions")
        self.assertIn("Slave device or server failure", counters(out, "module 0")["line"])

    def test_module_garbage_replies(self):
        self.assert_module_lost(*self.run_fault("module:0=garbage@20s"), "bad replies")

    def test_module_garbage_on_rtu(self):
        # On RTU, garbage is bytes with a bad CRC: libmodbus refuses them. The two modules share one line:
        # when a loaded machine delays the garbage, its bytes can land in module 1's exchange ("Response not
        # from requested slave"; seen under two CPU hogs: 3 timeouts and 2 bad replies in a row, module 1
        # counted lost with the board's fault_after = 3). That is the shared line's physics, not the fault
        # under test, so here a device counts lost after 10 failures in a row (garbage from module 0 never
        # stops, so it is still lost; module 1 must never be).
        # A host starved past that says so and runs the case again, once: the loss was the host's, and the
        # controller was right to derate and then stop on it. Starved: the bus's p99 round trip 20 ms or
        # more (0.3-0.4 ms quiet), or either module lost (E23) before the garbage began at 20 s. Seen twice
        # on a clean clone beside the suite's other lanes: q15 (p99 56 ms, max 397 ms: every device timed
        # out, module 1 lost with module 0) and q30 (p99 55 ms, max 108 ms: both modules unheard for the
        # module timeout's 1 s of wall time at 10.7 s of plant time, E23 then E24, before any garbage).
        for attempt in (1, 2):
            out, plant = self.run_fault("module:0=garbage@20s", transport="rtu", fault_after=10)
            if attempt == 1:
                p99 = re.search(r"round trip p50 \d+ / p99 (\d+) / max (\d+) µs", out)
                early = [float(t) for t in re.findall(r"\[ *([0-9.]+) s\] (?:gun0|station) FAULT E23", out) if float(t) < 20]
                slow = p99 is not None and int(p99.group(1)) >= 20_000
                if (slow and counters(out, "module 1")["lost"]) or early:
                    print(f"NOTE module garbage on RTU starved on its first run (bus round trip p99 "
                          f"{int(p99.group(1)) / 1000 if p99 else float('nan'):.0f} ms, max {int(p99.group(2)) / 1000 if p99 else float('nan'):.0f} ms; "
                          f"module 1 lost: {counters(out, 'module 1')['lost']}; E23 before the garbage at {early} s): run again", flush=True)
                    continue
            break
        self.assert_module_lost(out, plant, "bad replies")

    def test_module_slow_replies(self):
        # 300 ms replies against a 50 ms response timeout on a link shared by every device: the late
        # replies delay and confuse the whole bus (every device counts timeouts or bad replies), the
        # modules are lost, and the gun stops: no module left (E24), or the meter or IMD lost first.
        # Run to 90 s of plant time: module 0 is lost about 10 s after the slow replies begin, and the
        # second loss needs up to the meter's and IMD's 2 s of bus silence in wall time (20 s of plant
        # time at 10x) after it. The default 45 s left 15 s, under one such timeout: under stress-ng (s45)
        # module 0 was lost at 29.9 s, module 1 and the meter were still answering between timeouts at
        # 45 s, and the run ended first. (A quiet run's cascade ends the session well before.)
        out, plant = self.run_fault("module:0=slow=300ms@20s", max_time=90)
        self.assertRegex(out, r"FAULT E23-module-comm-lost")
        self.assertRegex(out, r"FAULT E2[456]-(no-modules|meter-comm-lost|imd-comm-lost) \(error-shutdown\)")
        self.assertRegex(out, r"gun0 faulted")
        self.assertGreater(counters(out, "module 0")["timeouts"], 0)
        self.assertEqual(plant_gun(plant), ("open", "open", 0.0), plant)

    def test_meter_silent(self):
        out, plant = self.run_fault("meter:0=silent@20s")
        self.assertRegex(out, r"FAULT E25-meter-comm-lost \(error-shutdown\)")
        self.assertRegex(out, r"gun0 faulted")
        self.assertTrue(counters(out, "meter gun 0")["lost"])
        self.assertEqual(plant_gun(plant), ("open", "open", 0.0), plant)
        self.assertIn("module 0: off", plant)

    def test_a_session_ended_by_a_fault_ends_the_run_with_its_json(self):
        """The chargerd contract on a bench board as on a sim board: with --sessions 1 a session that a
        latched fault ends counts as ended, so chargerd stops at once (not at --max-time), prints the
        summary with its JSON on the last line and exits 1 (issue 17 §6: before, it ran on until killed)."""
        with Bench("tcp", car=CAR, speed=10, plant_args=["--comm-fault", "meter:0=silent@20s"]) as b:
            t0 = time.monotonic()
            rc, out, err = b.chargerd("--sessions", "1", "--json", "--max-time", "600", "--status-interval", "60")
            wall = time.monotonic() - t0
            self.assertEqual(rc, 1, out + err)
            self.assertIn("session did not end normally: E25-meter-comm-lost", err)
            summary = json.loads(out.strip().splitlines()[-1])
            self.assertEqual(summary["end_state"], "faulted")
            self.assertEqual(summary["sessions_completed"], 1)
            self.assertEqual([f["code"] for f in summary["faults"]][:1], ["E25-meter-comm-lost"])
            self.assertLess(summary["duration_s"], 40, "the run went on after the session ended")
            self.assertLess(wall, 60, f"{wall:.0f} s of wall time")
            self.assertIn("bench: 1 session(s) ended", out)

    def test_a_completed_bench_session_prints_the_json_summary(self):
        # At 4x, not 10x: the bus runs in wall time, so a host stall is speed times longer in plant time.
        # In q35 (a clean-clone make test beside the guest and the fuzz gate) a module kept 28.8 A for a
        # second of plant time after the car's stop at 10x, 100 ms of wall time: its zero setpoint late
        # past the command latency measured at the start, E12, the controller right to stop on it. This test
        # is about the summary of a completed session: a first run that ended on a fault says so and runs
        # again, once; a fault that comes again is a failure.
        for attempt in (1, 2):
            with Bench("tcp", car="capacity=5kWh,soc=70,target=80", speed=4, fault_after=10, comm_timeouts=("3 s", "4 s", "4 s")) as b:
                rc, out, err = b.chargerd("--sessions", "1", "--json", "--max-time", "600", "--status-interval", "60")
            fault = re.search(r"FAULT (\S+)", out)
            if attempt == 1 and rc == 1 and fault:
                print(f"NOTE the bench session ended on {fault.group(1)} on its first run (the host's stall, at speed): run again", flush=True)
                continue
            break
        self.assertEqual(rc, 0, out + err)
        summary = json.loads(out.strip().splitlines()[-1])
        self.assertEqual((summary["end_state"], summary["sessions_completed"], summary["faults"]), ("completed", 1, []))
        self.assertGreater(summary["energy_kwh"], 0.3)
        self.assertEqual(summary["stop_reason"], "vehicle-bst")
        self.assertGreater(summary["peak_power_kw"], 10)
        self.assertGreaterEqual(summary["soc_end"], 79)

    def test_imd_garbage(self):
        out, plant = self.run_fault("imd:0=garbage@20s")
        self.assertRegex(out, r"FAULT E26-imd-comm-lost \(error-shutdown\)")
        self.assertEqual(plant_gun(plant), ("open", "open", 0.0), plant)

    def test_device_back_to_normal_is_read_again(self):
        # Silent for 20 s of plant time (2 s of wall time at 10x: ten times the meter's 2 s comm timeout,
        # which the bench scales to 0.2 s of bus silence), then normal: the poller's retry finds it again.
        # (A 3 s window, 0.3 s of wall time, passed unseen on a loaded host: the plant, late, catches up
        # with its pace in a burst of ticks, and the window's wall time shrank under the timeout.)
        with Bench("tcp", car=CAR, speed=10, plant_args=["--comm-fault", "meter:0=silent@20s",
                                                         "--comm-fault", "meter:0=normal@40s"]) as b:
            rc, out, err = b.chargerd("--max-time", "60", "--status-interval", "0")
        c = counters(out, "meter gun 0")
        self.assertEqual(rc, 1)
        self.assertIn("E25-meter-comm-lost", out)
        self.assertTrue(c["lost"], c["line"])
        self.assertFalse(c["lost now"], c["line"])   # heard again by the end; the latched fault needs a reset
        self.assertGreater(c["ok"], 300, c["line"])

    def test_emulator_killed_mid_session(self):
        b = Bench("tcp", car=CAR, speed=10)
        try:
            p = subprocess.Popen([os.path.join(BIN, "chargerd"),
                                  "--board", b.board, "--max-time", "600", "--status-interval", "0"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(3)
            b.plant.send_signal(signal.SIGKILL)
            b.plant.wait(5)        # reaped, as its parent shell would
            out, err = p.communicate(timeout=30)
            self.assertEqual(p.returncode, 1, out + err)
            self.assertIn("stopped ticking", out)
            self.assertIn("is gone", err)
        finally:
            b.close()


class SignalStop(unittest.TestCase):
    def test_sigterm_mid_charge_stops_the_session_in_order(self):
        """SIGTERM while a bench board charges: the session stops in order (CST, current to zero, K1/K2 open,
        welding check, unlock) before chargerd exits, its end journalled with the meter's energy; before,
        the loop stopped at the signal and forced the outputs safe, opening K1/K2 under the current."""
        import tempfile, shutil
        # At 4x, not 10x (as the JSON summary's session): in q37, beside the suite's other lanes, the stop's
        # ramp met a module's zero setpoint late by a host stall, 130 A left at 10x, E28. This test is about
        # the order of the stop: a first run that a fault ended says so and runs again, once.
        for attempt in (1, 2):
            jdir = tempfile.mkdtemp(prefix="bench-sigterm-")
            with Bench("tcp", car=CAR, speed=4) as b:
                p = subprocess.Popen([os.path.join(BIN, "chargerd"), "--board", b.board, "--max-time", "300", "--status-interval", "5",
                                      "--journal", jdir], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                try:
                    seen = 0
                    for line in p.stdout:            # two status lines while charging: energy is flowing
                        if "gun0 charging" in line:
                            seen += 1
                            if seen == 2:
                                break
                    p.send_signal(signal.SIGTERM)
                    rest, _ = p.communicate(timeout=120)
                finally:
                    if p.poll() is None:
                        p.kill(); p.wait()
                fault = re.search(r"FAULT (\S+)", rest)
                if attempt == 1 and fault:
                    print(f"NOTE the stop ended on {fault.group(1)} on its first run (the host's stall, at speed): run again", flush=True)
                    shutil.rmtree(jdir, ignore_errors=True)
                    continue
                self.assertEqual(p.returncode, 0, rest)
                self.assertIn("stopping 1 session(s) in order before exiting", rest)
                order = [m.group(1) for m in re.finditer(r"\] gun0 (stopping|welding-check|unlocking|finished)\n", rest)]
                self.assertEqual(order, ["stopping", "welding-check", "unlocking", "finished"], rest)
                self.assertIn("end state      interrupted (stop reason: operator)", rest)
                self.assertEqual(b.close(), 0)
                self.assertEqual(plant_gun(b.plant_output()), ("open", "open", 0.0), b.plant_output())
                break
        r = subprocess.run([os.path.join(BIN, "chargerd"), "journal", "export", "--dir", jdir, "--json"], capture_output=True, text=True)
        ends = [json.loads(l) for l in r.stdout.splitlines() if '"session-end"' in l]
        shutil.rmtree(jdir, ignore_errors=True)
        self.assertEqual(len(ends), 1, r.stdout)
        self.assertEqual(ends[0]["stopReason"], "operator", ends)
        self.assertGreater(ends[0]["energyKWh"], 0, ends)


class ConsoleOnTheBench(unittest.TestCase):
    def test_technician_sees_the_field_bus(self):
        """The console on a bench board: `comm` and `modules` show a silent module's counters and libmodbus's
        error, `faults` the E23 it raised; the journal has it."""
        import pexpect, tempfile, shutil
        jdir = tempfile.mkdtemp(prefix="bench-journal-")
        with Bench("tcp", car=CAR, speed=10, plant_args=["--comm-fault", "module:1=silent@20s"]) as b:
            p = subprocess.Popen([os.path.join(BIN, "chargerd"), "--board", b.board, "--max-time", "200", "--status-interval", "0",
                                  "--console", "pty", "--journal", jdir], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            try:
                path = None
                for line in p.stdout:
                    m = re.match(r"console: (/dev/pts/\d+)", line)
                    if m:
                        path = m.group(1)
                        break
                self.assertIsNotNone(path)
                time.sleep(5)        # 50 s of plant time: the module went silent at 20 s
                t = pexpect.spawn("socat", ["-,raw,echo=0", path + ",raw,echo=0"], encoding="utf-8", timeout=10)
                t.expect_exact("charger> ")
                t.send("comm\r"); t.expect_exact("charger> ")
                self.assertRegex(t.before, r"modbus module 1 \(unit 2\): \d+ exchanges, \d+ ok, [1-9]\d* timeouts")
                self.assertIn("lost", t.before)
                t.send("modules\r"); t.expect_exact("charger> ")
                self.assertRegex(t.before, r"\n\s+1 .* \d+ of \d+ LOST")
                t.send("faults\r"); t.expect_exact("charger> ")
                self.assertIn("E23-module-comm-lost", t.before)
                t.terminate(force=True)
            finally:
                p.send_signal(signal.SIGTERM)
                p.wait(20)
            r = subprocess.run([os.path.join(BIN, "chargerd"), "journal", "export", "--dir", jdir], capture_output=True, text=True)
            self.assertIn("E23-module-comm-lost", r.stdout)
            self.assertIn("shutdown", r.stdout)
            shutil.rmtree(jdir, ignore_errors=True)


class V2GOverTheWire(unittest.TestCase):
    """docs/grid.md "V2G" on a bench: the bidirectional modules told their direction and reverse setpoint over
    real Modbus TCP, the meter's export register read back, and the plant's own count of what left the car
    agreeing with what chargerd read."""

    def test_export_and_back_over_modbus_tcp(self):
        board = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "Boards", "bench-v2g-60kw-tcp.toml")
        car = "capacity=20kWh,soc=50,target=60,max-voltage=500V,v2g-min-soc=40,v2g-max-current=60A,v2g-max-power=15kW"
        # At 4x, not 10x: in q37, beside the suite's other lanes, the export's end met a module's zero
        # reverse setpoint late by a host stall (27 A left after 1 s of plant time at 10x, E12). This test is
        # about the export and its counts: a first run that a fault ended says so and runs again, once.
        for attempt in (1, 2):
            with Bench("tcp", car=car, speed=4, board=board, fault_after=10, comm_timeouts=("3 s", "4 s", "4 s")) as b:
                rc, out, err = b.chargerd("--sessions", "1", "--json", "--max-time", "900", "--status-interval", "5",
                                          "--inject", "gun-setpoint=-15kW@40s", "--inject", "gun-setpoint=none@100s")
                fault = re.search(r"FAULT (\S+)", out)
                if attempt == 1 and rc == 1 and fault:
                    print(f"NOTE the V2G session ended on {fault.group(1)} on its first run (the host's stall, at speed): run again", flush=True)
                    continue
                self.check_export(b, rc, out, err)
                break

    def check_export(self, b, rc, out, err):
        """The export's counts: chargerd's summary, the meter's export register, the plant's own count."""
        self.assertEqual(rc, 0, out + err + b.plant_output())
        summary = json.loads(out.strip().splitlines()[-1])
        self.assertEqual((summary["end_state"], summary["faults"]), ("completed", []), summary)
        # About 15 kW for about 58 s of plant time (less the ramps): 0.2-0.25 kWh out of the car.
        self.assertGreater(summary["exported_kwh"], 0.15, summary)
        self.assertLess(summary["exported_kwh"], 0.26, summary)
        self.assertRegex(out, r"gun0 charging\s+[\d.]+ V\s+-[\d.]+ A\s+-1[45]\.\d kW", "a status line while exporting")
        self.assertGreaterEqual(summary["soc_end"], 59)
        self.assertEqual(b.close(), 0)
        plant = b.plant_output()
        exported = float(re.search(r"exported ([\d.]+) kWh", plant).group(1))
        self.assertAlmostEqual(exported, summary["exported_kwh"], delta=0.002)
        self.assertNotIn("refused", plant)


class Peers(unittest.TestCase):
    """pymodbus, an independent Modbus implementation, against the emulator's slaves."""

    def check_registers(self, client):
        # Module 0 (unit 1): setpoints written and read back (u32, 0.001 V / 0.001 A, high word first).
        v, i = 500_000, 50_500
        r = client.write_registers(0, [1, v >> 16, v & 0xFFFF, i >> 16, i & 0xFFFF], device_id=1)
        self.assertFalse(r.isError(), r)
        r = client.read_holding_registers(0, count=5, device_id=1)
        self.assertEqual(r.registers, [1, v >> 16, v & 0xFFFF, i >> 16, i & 0xFFFF])
        # Measurements: input registers 16..19 (voltage, current, temperature, status) at plant time 0.
        r = client.read_input_registers(16, count=4, device_id=1)
        self.assertFalse(r.isError(), r)
        self.assertEqual(r.registers[0], 0)            # no gun connected yet: 0 V
        self.assertEqual(r.registers[2], 300)          # 30.0 °C, the plant's module temperature
        # The meter (unit 10): low word first; 0 kWh at the start.
        r = client.read_input_registers(0, count=21, device_id=10)
        self.assertEqual(len(r.registers), 21)         # reading through the map's gaps is allowed
        # The IMD (unit 20): not measuring, "infinite" resistance clamps to the register's top.
        r = client.read_input_registers(0, count=6, device_id=20)
        self.assertEqual(r.registers[:4], [65535, 65535, 65535, 65535])
        # Refusals, each with its Modbus exception: a measurement is not writable (2), a setpoint
        # above the module's 750 V is refused whole (3), a register outside the map (2).
        r = client.write_register(16, 1, device_id=1)
        self.assertTrue(r.isError()); self.assertEqual(r.exception_code, 2)
        too_high = 800_000
        r = client.write_registers(1, [too_high >> 16, too_high & 0xFFFF], device_id=1)
        self.assertTrue(r.isError()); self.assertEqual(r.exception_code, 3)
        r = client.read_holding_registers(1, count=2, device_id=1)
        self.assertEqual(r.registers, [v >> 16, v & 0xFFFF])   # not half-applied
        r = client.read_input_registers(500, count=1, device_id=1)
        self.assertTrue(r.isError()); self.assertEqual(r.exception_code, 2)

    def test_pymodbus_tcp_reads_and_writes_the_emulator(self):
        from pymodbus.client import ModbusTcpClient
        with Bench("tcp", car=None, speed=1) as b:
            c = ModbusTcpClient("127.0.0.1", port=b.port, timeout=2)
            self.assertTrue(c.connect())
            self.check_registers(c)
            # A unit the gateway does not have: exception 11 (gateway target device failed to respond).
            r = c.read_input_registers(0, count=1, device_id=99)
            self.assertTrue(r.isError()); self.assertEqual(r.exception_code, 11)
            c.close()

    def test_pymodbus_rtu_reads_and_writes_the_emulator(self):
        from pymodbus.client import ModbusSerialClient
        with Bench("rtu", car=None, speed=1) as b:
            c = ModbusSerialClient(port=b.pty_controller, baudrate=115200, bytesize=8, parity="N", stopbits=1, timeout=1, retries=0)
            self.assertTrue(c.connect())
            self.check_registers(c)
            # An RTU slave that is not there stays silent (no exception reply on a serial line).
            from pymodbus.exceptions import ModbusIOException
            with self.assertRaises(ModbusIOException):
                c.read_input_registers(0, count=1, device_id=99)
            c.close()

    def test_a_frame_relayed_late_over_a_pty_is_still_answered(self):
        # A pty has no line timing: socat relays a frame's bytes when it is scheduled, and on a loaded
        # machine the rest of a frame came more than 3.5 characters after its start (a clean-clone run:
        # pymodbus's first write unanswered). The emulator keeps a partial frame for 100 ms on a pty.
        import serial

        def crc16(data):
            crc = 0xFFFF
            for b in data:
                crc ^= b
                for _ in range(8):
                    crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
            return bytes([crc & 0xFF, crc >> 8])

        request = bytes([1, 3, 0, 0, 0, 5])
        request += crc16(request)
        with Bench("rtu", car=None, speed=1) as b:
            with serial.Serial(b.pty_controller, 115200, timeout=1) as line:
                for pause in (0.0, 0.02, 0.06):
                    line.write(request[:3]); line.flush()
                    time.sleep(pause)
                    line.write(request[3:]); line.flush()
                    reply = line.read(5 + 2 * 5)
                    self.assertEqual(len(reply), 15, f"{pause * 1000:.0f} ms between the parts: {reply.hex()}")
                    self.assertEqual(reply[:3], bytes([1, 3, 10]))
                    self.assertEqual(reply[-2:], crc16(reply[:-2]))
                # A frame whose rest never comes is dropped, and the next whole one is answered.
                line.write(request[:3]); line.flush()
                time.sleep(0.3)
                line.write(request); line.flush()
                reply = line.read(15)
                self.assertEqual(reply[:3], bytes([1, 3, 10]), reply.hex())


if __name__ == "__main__":
    unittest.main()


class PlugAndChargeOnTheBench(unittest.TestCase):
    def test_a_car_charges_by_its_vin_over_modbus_tcp(self):
        """Issue 37's done-when on the bench: the controller against the plant emulator over Modbus TCP, the
        `ocpp` package as central system; the car has no idTag and charges by its VIN (Authorize,
        StartTransaction and StopTransaction carry it); a car whose VIN the central system refuses gets no
        energy. Plant speed 2: the central system has 2 s of wall time to answer within the 4 s bound."""
        import tempfile
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "grid"))
        from central_system import CentralSystem
        cs = CentralSystem(accepted_tags=("VINLFV3A23C5K3012345",))
        self.addCleanup(cs.stop)
        d = tempfile.mkdtemp(prefix="vin-bench-")
        site = os.path.join(d, "site.toml")
        with open(site, "w") as f:
            f.write(f'[site]\nname = "bench"\n[ocpp]\nurl = "ws://127.0.0.1:{cs.port}/CP001"\nauthorize = ["vin"]\n')
        for vin, accepted in (("LFV3A23C5K3012345", True), ("LSVNV2182E2100001", False)):
            with Bench("tcp", car=f"capacity=5kWh,soc=76,target=80,vin={vin}", speed="2") as b:
                rc, out, err = b.chargerd("--site", site, "--sessions", "1", "--max-time", "600", "--status-interval", "0", "--json")
            summary = json.loads(out.strip().splitlines()[-1])
            if accepted:
                self.assertEqual(rc, 0, out[-3000:] + err)
                self.assertIn(f"VIN VINLFV**********2345 accepted by the central system", out)
                self.assertGreater(summary["energy_kwh"], 0.1)
            else:
                self.assertIn("VIN VINLSV**********0001 refused: Invalid by the central system: no energy; the session ends", out, out[-3000:])
                self.assertEqual(summary["energy_kwh"], 0, out[-3000:])
                self.assertNotIn("gun0 precharge", out)
            self.assertNotIn(vin, out + err, "the whole VIN printed")
        tags = [(m[1], m[2].get("id_tag")) for m in cs.messages() if m[1] in ("Authorize", "StartTransaction", "StopTransaction")]
        self.assertEqual(tags, [("Authorize", "VINLFV3A23C5K3012345"), ("StartTransaction", "VINLFV3A23C5K3012345"),
                                ("StopTransaction", "VINLFV3A23C5K3012345"), ("Authorize", "VINLSVNV2182E2100001")])
