// The console with plain values: the line editor byte by byte, and the session against a station view
// and a command queue it can only read and push (no loop, no terminal).
import ChargerCore
import ChargerRuntime
import LoopContract
import Console
import Foundation
import Journal
import Testing

/// Console output with its line wrapping undone (words joined by single spaces).
func flat(_ s: String) -> String { s.split(whereSeparator: \.isWhitespace).joined(separator: " ") }

func feed(_ e: inout LineEditor, _ s: String) -> (out: String, events: [LineEditor.Event]) {
    var out: [UInt8] = []
    var events: [LineEditor.Event] = []
    for b in Array(s.utf8) { if let ev = e.feed(b, out: &out) { events.append(ev) } }
    return (String(decoding: out, as: UTF8.self), events)
}

@Suite struct LineEditing {
    @Test func enterBackspaceAndCRLF() {
        var e = LineEditor()
        let r = feed(&e, "statx\u{7F}us\r\n")
        #expect(r.events == [.line("status")])
        #expect(r.out == "statx\u{8} \u{8}us\r\n")
        #expect(feed(&e, "a\nb\r").events == [.line("a"), .line("b")])
    }

    @Test func ctrlUErasesAndCtrlCCancels() {
        var e = LineEditor()
        #expect(feed(&e, "fault reset\u{15}version\r").events == [.line("version")])
        #expect(feed(&e, "stop 0\u{3}").events == [.cancel])
        #expect(e.line.isEmpty)
    }

    /// Ctrl-C and Enter act inside an escape sequence too: Esc then Ctrl-C cancels the line (the console
    /// fuzz target found the Ctrl-C swallowed as part of a sequence, and the Enter after it running
    /// "watch status").
    @Test func ctrlCCancelsAfterAnEscape() {
        var e = LineEditor()
        #expect(feed(&e, "watch status\u{1B}\u{3}\r").events == [.cancel, .line("")])
        #expect(feed(&e, "stop\u{1B}[\u{3}").events == [.cancel])
        #expect(feed(&e, "ver\u{1B}\rsion\r").events == [.line("ver"), .line("sion")])
    }

    @Test func historyWithArrowKeys() {
        var e = LineEditor()
        _ = feed(&e, "status\r")
        _ = feed(&e, "version\r")
        _ = feed(&e, "\u{1B}[A")
        #expect(String(decoding: e.line, as: UTF8.self) == "version")
        _ = feed(&e, "\u{1B}OA")   // SS3 form (application cursor keys)
        #expect(String(decoding: e.line, as: UTF8.self) == "status")
        _ = feed(&e, "\u{1B}[B")
        #expect(String(decoding: e.line, as: UTF8.self) == "version")
        #expect(feed(&e, "\r").events == [.line("version")])
    }

    @Test func tabCompletes() {
        var e = LineEditor()
        e.complete = { t in ["status", "stats", "stop", "version"].filter { $0.hasPrefix(t) } }
        _ = feed(&e, "ver\t")
        #expect(String(decoding: e.line, as: UTF8.self) == "version ")
        var e2 = LineEditor()
        e2.complete = e.complete
        _ = feed(&e2, "sta\t")   // status, stats: extends to the common prefix "stat"
        #expect(String(decoding: e2.line, as: UTF8.self) == "stat")
    }

    /// Issue 36, ask 5: Tab completes each command's words, not only the command; the list shows the
    /// choices for the word being typed.
    @Test func tabCompletesArguments() {
        let c: @Sendable (String) -> [String] = { ConsoleSession.completions($0, guns: 2) }
        #expect(c("test c") == ["test contactor"])
        #expect(c("test contactor ") == ["test contactor K1", "test contactor K2", "test contactor K3", "test contactor K4"])
        #expect(c("test contactor k3 ") == ["test contactor k3 0", "test contactor k3 1"])
        #expect(c("service 1 of") == ["service 1 off"])
        #expect(c("help E0").count == 9 && c("help E0").contains("help E05"))
        #expect(c("help sta") == ["help stats", "help status"])
        #expect(c("export ") == ["export json", "export text"])
        #expect(c("login ").isEmpty, "user names are never offered")
        #expect(c("status extra ").isEmpty)
        // One gun: no gun word to choose.
        #expect(ConsoleSession.completions("test lock ", guns: 1).isEmpty)
        var e = LineEditor()
        e.complete = c
        _ = feed(&e, "serv\t1 o\t")
        #expect(String(decoding: e.line, as: UTF8.self) == "service 1 o")
        let listed = feed(&e, "\t").out
        #expect(listed.contains("\r\noff  on\r\n"), "\(listed)")
        _ = feed(&e, "f\t")
        #expect(String(decoding: e.line, as: UTF8.self) == "service 1 off ")
    }

    @Test func garbageIsDroppedAndLinesAreBounded() {
        var e = LineEditor()
        var bytes: [UInt8] = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7919) }.filter { $0 != 0x0D && $0 != 0x0A && $0 != 0x03 }
        bytes += Array(String(repeating: "x", count: 1000).utf8)
        var out: [UInt8] = []
        for b in bytes { _ = e.feed(b, out: &out) }
        #expect(e.line.count <= LineEditor.maxLine)
        #expect(e.dropped > 0)
        _ = feed(&e, "\u{15}version\r")
        #expect(String(decoding: e.line, as: UTF8.self) == "")
    }

    @Test func passwordIsNotEchoedNorKept() {
        var e = LineEditor()
        e.echo = false
        let r = feed(&e, "secret-pass\r")
        #expect(r.events == [.line("secret-pass")])
        #expect(!r.out.contains("secret"))
        #expect(e.history.isEmpty)
    }
}

/// A console session against a fixed view, a fake clock and a recorded command queue.
final class Bench {
    var view = StationView()
    var sent: [OperatorCommand] = []
    /// What the loop would do with a command (the feedback a test waits for), if anything.
    var onSend: ((Bench, OperatorCommand) -> Void)? = nil
    var now = 1000.0
    let journal: Journal
    var session: ConsoleSession! = nil

    init(board: String = "sim-test") throws {
        journal = try Journal(directory: nil)
        view.cycles = 1
        view.gunCount = 1
        view.moduleCount = 2
        view.at = Instant(micros: 5_000_000)
        view.guns[0].cc1 = Standard.cc1Unplugged
        view.guns[0].ratedPower = .kW(60)
        let hash = try Credentials.hash("secret-pass")
        var ctx = ConsoleContext(view: { [unowned self] in view }, send: { [unowned self] in sent.append($0); onSend?(self, $0); return true },
                                 journal: journal, credentials: Credentials(users: ["tech": hash]), version: "chargerd test",
                                 board: board, rt: { "rt" }, comm: { "comm" }, clock: { [unowned self] in now },
                                 sleep: { [unowned self] in now += $0 })
        ctx.lockoutTime = 300
        ctx.idleLogout = 600
        session = ConsoleSession(ctx: ctx)
        _ = session.banner()
    }

    @discardableResult
    func type(_ s: String) -> String { String(decoding: session.input(ArraySlice(Array((s + "\r").utf8))), as: UTF8.self) }
}

@Suite struct ConsoleCommands {
    @Test func readOnlyCommandsNeedNoLogin() throws {
        let b = try Bench()
        #expect(b.type("status").contains("gun0 unplugged"))
        #expect(b.type("version").contains("chargerd test"))
        #expect(b.type("limits").contains("gun rating       60 kW"))
        #expect(b.type("help").contains("acting (after 'login USER')"))
        #expect(b.type("help cap").contains("needs a technician login"))
        #expect(b.type("frobnicate").contains("unknown command 'frobnicate'"))
        #expect(b.sent.isEmpty)
    }

    /// Issue 36, wrong answer 5: a gun that does not exist was the station line alone (`limits 7`,
    /// `limits -1`) or every gun (`limits x`).
    @Test func limitsOfAGunThatDoesNotExistIsAnError() throws {
        let b = try Bench()
        for arg in ["7", "-1", "x", "1"] {
            let out = b.type("limits \(arg)")
            #expect(out.contains("no gun '\(arg)': guns are 0...0"), "limits \(arg): \(out)")
            #expect(!out.contains("station: grid connection"), "limits \(arg): \(out)")
        }
        #expect(b.type("limits 0 1").contains("usage: limits [GUN]"))
        #expect(b.type("limits 0").contains("gun0 (at"))
    }

    /// Issue 36, wrong answer 1: `version` showed the journal as opening found it ("next #1") after
    /// 56 records.
    @Test func versionShowsTheJournalAsItIsNow() throws {
        let b = try Bench()
        for i in 0..<56 { b.journal.append(JournalEntry(.grid(source: "test", text: "record \(i)"), t: Double(i))) }
        let last = b.journal.recent(1).first!.seq
        #expect(last >= 56)
        let out = b.type("version")
        #expect(out.contains("last record #\(last)"), "\(out)")
        #expect(!out.contains("next #1"), "\(out)")
    }

    @Test func actingCommandsNeedALogin() throws {
        let b = try Bench()
        #expect(b.type("fault reset").contains("log in first"))
        #expect(b.type("test lock").contains("log in first"))
        #expect(b.sent.isEmpty)
    }

    @Test func fiveFailuresLockTheNameOut() throws {
        let b = try Bench()
        for i in 1...5 {
            b.type("login tech")
            let r = b.type("wrong-\(i)")
            #expect(r.contains("login failed"))
        }
        // Locked out: no password prompt, how long is left instead, and the attempt journalled.
        let refused = b.type("login tech")
        #expect(refused.contains("login refused: tech is locked out for another 300 s"), "\(refused)")
        #expect(!refused.contains("password:"))
        #expect(b.session.user == nil)
        b.now += 120
        #expect(b.type("login tech").contains("for another 180 s"))
        b.now += 181
        b.type("login tech")
        #expect(b.type("secret-pass").contains("logged in as tech"))
        let kinds = b.journal.recent().map(\.kind)
        #expect(kinds.filter { $0 == "login-failed" }.count == 5)
        #expect(kinds.filter { $0 == "login-refused" }.count == 2)
        #expect(kinds.contains("lockout"))
        #expect(kinds.last == "login")
        let lock = b.journal.recent().first { $0.kind == "lockout" }
        #expect(lock?.fields.user == "tech")
    }

    /// Issue 36, ask 6: failures count per user name. A stranger's guesses at another name do not lock the
    /// technician out; names outside the credentials file share one account (new names buy no guesses).
    @Test func failuresCountPerUserName() throws {
        let b = try Bench()
        for i in 1...5 { b.type("login eve"); b.type("guess-\(i)") }
        #expect(b.type("login eve").contains("eve is locked out"))
        #expect(b.type("login bob").contains("bob is locked out"), "names outside the credentials file share the lockout")
        // The technician's own name is not locked.
        b.type("login tech")
        #expect(b.type("secret-pass").contains("logged in as tech"))
        b.type("logout")
        // A name's failures are its own, and its good login clears them.
        for i in 1...4 { b.type("login tech"); #expect(b.type("wrong-\(i)").contains("login failed")) }
        b.type("login tech"); b.type("secret-pass"); b.type("logout")
        for i in 1...4 { b.type("login tech"); #expect(!b.type("wrong-\(i)").contains("locked")) }
        b.type("login tech"); #expect(b.type("wrong-5").contains("tech locked out for 300 s"))
        let refused = b.journal.recent().filter { $0.kind == "login-refused" }
        #expect(refused.map { $0.fields.user } == ["eve", "bob"])
    }

    /// Issue 21 §3: the lockout and its back-off come back from the journal after a restart, by the
    /// wall clock; a good login clears them.
    @Test func aLockoutOutlivesARestartAndGrows() throws {
        let dir = NSTemporaryDirectory() + "console-lockout-\(getpid())-\(UUID().uuidString)"
        let hash = try Credentials.hash("secret-pass")
        var wall = 1_800_000_000.0                     // the wall clock the sessions see
        var mono = 50.0                                // a monotonic clock that starts over at each boot
        func session() throws -> (ConsoleSession, Journal) {
            let journal = try Journal(directory: dir)
            var ctx = ConsoleContext(
                view: { StationView() }, send: { _ in true }, journal: journal, credentials: Credentials(users: ["tech": hash, "ana": hash]),
                                     version: "t", board: "b", rt: { "" }, comm: { "" }, clock: { mono }, sleep: { mono += $0 })
            ctx.lockoutTime = 300
            ctx.wallClock = { wall }
            ctx.loginHistory = journal.loginRecordsAtStart
            let s = ConsoleSession(ctx: ctx)
            _ = s.banner()
            return (s, journal)
        }
        func type(_ s: ConsoleSession, _ line: String) -> String {
            String(decoding: s.input(ArraySlice(Array((line + "\r").utf8))), as: UTF8.self)
        }
        /// The password's answer, or the refusal that came instead of the prompt.
        func login(_ s: ConsoleSession, _ password: String, user: String = "tech") -> String {
            let r = type(s, "login \(user)")
            return r.contains("password:") ? type(s, password) : r
        }
        // Three failures, a restart, two more: the fifth locks, though a restart came between.
        var (s, _) = try session()
        for i in 1...3 { #expect(login(s, "wrong-\(i)").contains("login failed")) }
        (s, _) = try session()
        #expect(login(s, "wrong-4").contains("login failed"))
        #expect(login(s, "wrong-5").contains("locked out for 300 s"))
        // A power cycle 100 s later: the lockout still holds, and says how long is left; ana's name is free.
        wall += 100; mono = 7
        (s, _) = try session()
        func left(_ text: String) -> Int? {
            guard let r = text.range(of: "locked out for another ") else { return nil }
            return Int(text[r.upperBound...].prefix { $0.isNumber })
        }
        let refused = login(s, "secret-pass")
        #expect(left(refused) == 200, "\(refused)")
        #expect(!refused.contains("password:"))
        #expect(s.user == nil)
        #expect(login(s, "secret-pass", user: "ana").contains("logged in as ana"))
        _ = type(s, "logout")
        // It ends; five more failures lock for twice as long (ana's good login cleared only ana).
        wall += 201; mono += 201
        (s, _) = try session()
        for i in 1...4 { _ = login(s, "again-\(i)") }
        #expect(login(s, "again-5").contains("locked out for 600 s"))
        wall += 599; mono = 3
        (s, _) = try session()
        #expect(left(login(s, "secret-pass")) == 1)
        wall += 2; mono += 2
        #expect(login(s, "secret-pass").contains("logged in as tech"))
        // A good login clears the back-off: the next lockout is the first again.
        (s, _) = try session()
        for i in 1...4 { _ = login(s, "later-\(i)") }
        #expect(login(s, "later-5").contains("locked out for 300 s"))
        // A wall clock set far ahead after a power cut cannot stretch a lockout beyond its length.
        var far = JournalEntry(.lockout(user: "tech", text: "5 failed logins: tech locked for 300 s, until \(Journal.wallText(wall + 1e9))"), t: 0)
        far.wall = Journal.wallText(wall)
        let g = LoginGuard.fromJournal([far], known: ["tech"], base: 300, wallNow: wall, now: 10)
        #expect(g.remaining("tech", now: 10) == 300)
        // A lockout record as a version before per-name lockouts wrote it (no user, no "until"): it runs
        // from the record's time, and locks every name.
        var old = JournalEntry(.lockout(user: nil, text: "5 failed logins: console locked for 300 s"), t: 0)
        old.wall = "2026-11-28T04:00:00.000Z"
        let at = Journal.wallSeconds("2026-11-28T04:01:00.000Z")!
        let replayed = LoginGuard.fromJournal([old], known: ["tech", "ana"], base: 300, wallNow: at, now: 0)
        #expect(replayed.remaining("tech", now: 0) == 240 && replayed.remaining("ana", now: 0) == 240 && replayed.remaining("eve", now: 0) == 240)
        #expect(replayed.account("tech").lockouts == 1)
        #expect(Journal.wallSeconds(Journal.wallText(1_800_000_000.25)) == 1_800_000_000.25)
        #expect(Journal.wallSeconds("yesterday") == nil)
    }

    @Test func idleSessionLogsOut() throws {
        let b = try Bench()
        b.type("login tech"); b.type("secret-pass")
        #expect(b.session.user == "tech")
        b.now += 601
        #expect(String(decoding: b.session.tick(), as: UTF8.self).contains("logged out: idle"))
        #expect(b.session.user == nil)
    }

    @Test func actuatorTestRefusedUnlessIdleUnpluggedAndSafe() throws {
        let b = try Bench()
        b.type("login tech"); b.type("secret-pass")
        b.view.guns[0].status.phase = .charging
        b.view.guns[0].testRefusal = .notIdle
        b.view.guns[0].contactorTestRefusal = .notIdle
        #expect(b.type("test contactor K1").contains("refused: gun0 is not idle (charging)"))
        b.view.guns[0].status.phase = .unplugged
        b.view.guns[0].cc1 = Standard.cc1Connected
        b.view.guns[0].testRefusal = .plugged
        #expect(b.type("test lock").contains("refused: gun0 is plugged in"))
        b.view.guns[0].cc1 = Standard.cc1Unplugged
        b.view.guns[0].vehicleSideVoltage = Volts(75)
        b.view.guns[0].testRefusal = .outputLive
        #expect(b.type("test lamp").contains("output is at 75 V"))
        #expect(b.sent.isEmpty)
        // Each refusal is journalled with the user.
        let cmds = b.journal.recent().filter { $0.kind == "command" }
        #expect(cmds.count == 3)
        #expect(cmds.allSatisfy { if case .command("tech", _, let result, _) = $0.event { result.hasPrefix("refused") } else { false } })
    }

    /// The loop's answer to K1/K2 tests: aux contacts that follow the coil (or K1 that stays welded), with
    /// the close and open times the loop measured.
    static func contactors(welded: Bool = false) -> (Bench, OperatorCommand) -> Void {
        { b, c in
            guard case .actuatorTest(0, let t) = c else { return }
            b.view.at = b.view.at + .ms(100)
            if t == .contactorsK1K2 {
                b.view.guns[0].k1Closed = true; b.view.guns[0].k2Closed = true
                b.view.guns[0].contactorCloseTime = .ms(31); b.view.guns[0].contactorClosedAt = b.view.at
            } else if t == .none {
                b.view.guns[0].k2Closed = false
                b.view.guns[0].k1Closed = welded
                if !welded { b.view.guns[0].contactorOpenTime = .ms(22); b.view.guns[0].contactorOpenedAt = b.view.at }
            }
        }
    }

    @Test func actuatorTestHoldsAndReleases() throws {
        let b = try Bench()
        b.type("login tech"); b.type("secret-pass")
        b.onSend = Self.contactors()
        let r = flat(b.type("test contactor K2"))
        #expect(r.contains("K1 and K2 closed in 31 ms (aux contacts), opened in 22 ms; released"), "\(r)")
        #expect(b.sent.count == 2)
        if case .actuatorTest(0, .contactorsK1K2) = b.sent[0] {} else { Issue.record("first command \(b.sent[0])") }
        if case .actuatorTest(0, ActuatorTest.none) = b.sent[1] {} else { Issue.record("second command \(b.sent[1])") }
    }

    /// Issue 36, ask 5: the K1/K2 test runs under the gun's own contactor fault (the view says the loop
    /// allows it) to check a repair before the reset, and says when the contacts stay closed.
    @Test func contactorTestUnderItsOwnFault() throws {
        let b = try Bench()
        b.type("login tech"); b.type("secret-pass")
        b.view.guns[0].status.phase = .faulted
        b.view.guns[0].status.faults.insert(.contactorWelded)
        b.view.guns[0].testRefusal = .faultLatched
        b.view.guns[0].contactorTestRefusal = nil
        #expect(b.type("test lock").contains("refused: gun0 has a latched fault (E14-contactor-welded)"))
        b.onSend = Self.contactors(welded: true)
        var r = b.type("test contactor K1")
        #expect(flat(r).contains("K1 and K2 closed in 31 ms") && flat(r).contains("K1 did NOT open within 2 s (welded?)"), "\(r)")
        b.onSend = Self.contactors()
        b.view.guns[0].k1Closed = false
        r = b.type("test contactor K1")
        #expect(flat(r).contains("opened in 22 ms; E14-contactor-welded still latched: 'fault reset' if the repair is done"), "\(r)")
        for line in r.split(whereSeparator: \.isNewline) { #expect(line.count <= 80, "\(line)") }
        // Another fault latching during the test aborts it.
        b.onSend = { b, c in if case .actuatorTest(0, .contactorsK1K2) = c { b.view.guns[0].status.faults.insert(.emergencyStop) } }
        #expect(b.type("test contactor K1").contains("aborted: E01"))
    }

    @Test func capIsCheckedAndExpires() throws {
        let b = try Bench()
        b.type("login tech"); b.type("secret-pass")
        #expect(b.type("cap 0 75").contains("must be 0...60 kW"))
        #expect(b.type("cap 0 nan").contains("must be 0...60 kW"))
        #expect(b.type("cap 3 20").contains("no gun '3'"))
        #expect(b.type("cap 0 20 1").contains("capped at 20.0 kW for 1 min"))
        #expect(b.sent.count == 1)
        b.view.at = b.view.at + .s(61)
        _ = b.session.tick()
        #expect(b.sent.count == 2)
        if case .operatorCap(0, nil) = b.sent[1] {} else { Issue.record("expiry sent \(b.sent[1])") }
    }

    @Test func serviceAndStop() throws {
        let b = try Bench()
        b.type("login tech"); b.type("secret-pass")
        #expect(b.type("stop 0").contains("not charging"))
        #expect(b.type("service 0 off").contains("out of service"))
        #expect(b.type("service 0 maybe").contains("usage"))
        if case .outOfService(0, true) = b.sent.last! {} else { Issue.record("\(b.sent)") }
    }
}

/// The credentials file as ssh's StrictModes takes it: writable by others refused, readable warned.
@Suite struct CredentialsFilePermissions {
    func file(mode: mode_t) throws -> String {
        let dir = NSTemporaryDirectory() + "creds-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        chmod(dir, 0o700)
        let path = dir + "/credentials"
        try Credentials.setPassword(path: path, user: "tech", password: "correct horse")
        chmod(path, mode)
        return path
    }

    @Test func othersWritingIsRefusedReadingIsWarned() throws {
        let ok = try Credentials(path: try file(mode: 0o600))
        #expect(ok.warning == nil && ok.users["tech"] != nil)
        let readable = try Credentials(path: try file(mode: 0o644))
        #expect(readable.warning?.contains("mode 0644 lets others read") == true)
        for (mode, who) in [(mode_t(0o666), "every user"), (0o620, "its group"), (0o602, "every user")] {
            let p = try file(mode: mode)
            #expect { try Credentials(path: p) } throws: { e in
                "\(e)".contains("mode 0\(String(mode, radix: 8)) lets \(who) write it: refused") && "\(e)".contains(p)
            }
        }
    }

    @Test func aDirectoryEveryoneCanWriteIsRefused() throws {
        let p = try file(mode: 0o600)
        let dir = (p as NSString).deletingLastPathComponent
        chmod(dir, 0o777)
        #expect { try Credentials(path: p) } throws: { "\($0)".contains("writable by every user") }
        chmod(dir, 0o1777)                    // sticky, as /tmp: others cannot replace the file
        #expect(try Credentials(path: p).users.count == 1)
    }
}

/// Issue 32 case 7 and 8: the credentials path walked as ssh's StrictModes does, and a wrong user name
/// costing what a wrong password costs.
@Suite struct CredentialsPathAndTiming {
    func tree() throws -> (top: String, file: String) {
        let top = NSTemporaryDirectory() + "strict-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: top + "/a/b", withIntermediateDirectories: true)
        for d in [top, top + "/a", top + "/a/b"] { chmod(d, 0o755) }
        let file = top + "/a/b/credentials"
        try Credentials.setPassword(path: file, user: "tech", password: "correct horse")
        return (top, file)
    }

    @Test func everyDirectoryAboveTheFileIsChecked() throws {
        let (top, file) = try tree()
        defer { try? FileManager.default.removeItem(atPath: top) }
        #expect(try Credentials(path: file).users.count == 1)
        // A group-writable grandparent.
        chmod(top + "/a", 0o775)
        #expect { try Credentials(path: file) } throws: { "\($0)".contains("\(top)/a is writable by its group") }
        chmod(top + "/a", 0o755)
        // A world-writable grandparent (not sticky).
        chmod(top, 0o777)
        #expect { try Credentials(path: file) } throws: { "\($0)".contains("is writable by every user") }
        chmod(top, 0o755)
        // A directory owned by another user.
        if getuid() == 0 {
            chown(top + "/a", 65_534, 65_534)
            #expect { try Credentials(path: file) } throws: { "\($0)".contains("owned by uid 65534") }
            chown(top + "/a", 0, 0)
        }
        #expect(try Credentials(path: file).users.count == 1)
    }

    @Test func aSymlinkIntoAnOpenDirectoryIsRefused() throws {
        let (top, file) = try tree()
        defer { try? FileManager.default.removeItem(atPath: top) }
        let open = top + "/open"
        try FileManager.default.createDirectory(atPath: open, withIntermediateDirectories: true)
        chmod(open, 0o777)
        try FileManager.default.moveItem(atPath: file, toPath: open + "/credentials")
        symlink(open + "/credentials", file)
        #expect { try Credentials(path: file) } throws: { "\($0)".contains("\(open) is writable by every user") }
    }

    @Test func anUnknownUserIsHashedAtAKnownUsersCost() throws {
        let h = try Credentials.hash("correct horse")
        let c = Credentials(users: ["tech": h])
        #expect(c.setting(for: "nosuchuser") == h, "an unknown user costs one yescrypt of the same parameters")
        #expect(Credentials(users: [:]).setting(for: "x").hasPrefix("$y$"))
        #expect(!c.verify(user: "nosuchuser", password: "correct horse"))
        #expect(c.verify(user: "tech", password: "correct horse"))
    }
}

/// Issue 36, the technician's first ask: a fault's value with its unit and the limit it crossed, the module
/// it concerns, `help CODE` with the checks and the reset, and the docs page generated from the same table.
@Suite struct FaultDetail {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    func fault(_ code: FaultCode, gun: Int?, value: Double, unit: FaultMeasure, limit: Double = .nan, text: String? = nil) -> JournalEntry {
        var n = FaultNote(gun: gun, code: code.name, reaction: code.reaction.name, value: value, faultSeq: 1, text: text)
        n.unit = unit.name
        n.limit = limit.isFinite ? limit : nil
        return JournalEntry(.fault(n), t: 100.003)
    }

    /// "E05 shows 40000.000, E23 1.001" and `faults` did not name the module.
    @Test func faultsShowTheReadingWithItsUnitTheLimitAndTheModule() throws {
        let b = try Bench()
        b.journal.append(fault(.insulationFault, gun: 0, value: 40_000, unit: .ohms, limit: 75_000))
        b.journal.append(fault(.moduleCommLost, gun: 0, value: 1.001, unit: .seconds, limit: 1, text: "module 3"))
        b.journal.append(fault(.contactorWelded, gun: 0, value: 2, unit: .contactor))
        b.journal.append(fault(.vehicleCommTimeout, gun: 0, value: Double(VehicleMessageKind.bcl.rawValue), unit: .message))
        b.journal.append(fault(.insulationCheckTimeout, gun: 0, value: 72.5, unit: .volts, limit: 60))
        let out = b.type("faults")
        #expect(out.contains("E05-insulation error-shutdown LATCHED"), "\(out)")
        #expect(out.contains("40.0 kΩ, limit 75.0 kΩ"), "\(out)")
        #expect(out.contains("gun0 module 3 E23-module-comm-lost derate logged"), "\(out)")
        #expect(out.contains("1.001 s, limit 1.000 s"), "\(out)")
        #expect(out.contains("E14-contactor-welded") && out.contains("  K2"), "\(out)")
        #expect(out.contains("  BCL"), "\(out)")
        #expect(out.contains("72.5 V, limit 60.0 V"), "E06's discharge in volts, not a time: \(out)")
        #expect(!out.contains("40000.000") && !out.contains("nan"), "\(out)")
        for line in out.split(whereSeparator: \.isNewline) { #expect(line.count <= 80, "\(line.count) columns: \(line)") }
    }

    /// A record written before units were kept reads with the code's own unit, and a switch shows no value.
    @Test func anOldRecordReadsWithItsCodesUnit() {
        #expect(FaultGuide.reading(value: 40_000, unit: nil, limit: nil, code: "E05-insulation") == "40.0 kΩ")
        #expect(FaultGuide.reading(value: 40_000, unit: nil, limit: nil, code: "E05-insulation", ascii: true) == "40.0 kOhm")
        #expect(FaultGuide.reading(value: 1, unit: nil, limit: nil, code: "E01-estop") == nil)
        #expect(FaultGuide.reading(value: .nan, unit: "ohm", limit: 1, code: "E05-insulation") == nil)
        #expect(FaultGuide.reading(value: 3, unit: "rule", limit: nil, code: "E31-step-contract") == StepRule.commandAboveLimit.name)
    }

    @Test func helpForEveryFaultCodeWithinEightyColumns() throws {
        let b = try Bench()
        for code in FaultCode.allCases {
            let short = String(code.name.prefix(3))
            let out = b.type("help \(short.lowercased())")
            #expect(out.contains(code.name) && out.contains("checks:\r\n  1. ") && out.contains("reset:"), "help \(short): \(out)")
            for line in out.split(whereSeparator: \.isNewline) { #expect(line.count <= 80, "help \(short): \(line.count) columns: \(line)") }
        }
        #expect(b.type("help E5").contains("E05-insulation: error-shutdown, one gun"))
        #expect(b.type("help E05-insulation").contains("100 Ω/V"))
        #expect(b.type("help E99").contains("no fault code 'e99': codes are E01...E36"))
        #expect(b.type("help E01").contains("Refused while the button is pressed"))
    }

    /// docs/faults.md's "Fault by fault" is the table `help CODE` prints (one source).
    @Test func theDocsPageIsGeneratedFromTheSameTable() throws {
        let page = try String(contentsOfFile: Self.repoRoot + "/docs/faults.md", encoding: .utf8)
        guard let r = page.range(of: "## Fault by fault\n") else { Issue.record("docs/faults.md has no \"Fault by fault\""); return }
        #expect(String(page[r.lowerBound...]) == FaultGuide.markdown(),
                "docs/faults.md differs from the table: regenerate it with `chargerd --list-faults --markdown`")
    }

    /// `imd` lost the reading that tripped once the IMD read again.
    @Test func imdKeepsTheReadingThatTripped() throws {
        let b = try Bench()
        b.view.guns[0].insulation = Ohms(2_000_000)
        b.journal.append(fault(.insulationFault, gun: 0, value: 40_000, unit: .ohms, limit: 75_000))
        let out = b.type("imd")
        #expect(out.contains("insulation 2000.0 kΩ"), "\(out)")
        #expect(out.contains("last insulation fault #") && out.contains("40.0 kΩ, limit 75.0 kΩ"), "\(out)")
        for line in out.split(whereSeparator: \.isNewline) { #expect(line.count <= 80, "\(line.count) columns: \(line)") }
    }

    /// Issue 36, wrong answer 4: after kill -9 and a restart, `faults` showed the fault latched again as
    /// "value nan". The journal keeps the reading, its unit and its limit; the restart latches the fault
    /// again with them, and the record the journal writes for it carries them.
    @Test func aFaultLatchedAgainAtStartKeepsItsReading() throws {
        let dir = NSTemporaryDirectory() + "fault-detail-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var state = StationState()
        state.restoreLatched(.insulationFault, gun: 0, at: .zero)   // the core alone: NaN, as before
        do {
            let j = try Journal(directory: dir)
            j.append(fault(.insulationFault, gun: 0, value: 40_000, unit: .ohms, limit: 75_000))
        }
        let again = try Journal(directory: dir)
        let standing = Recorder.standing(again.latchedAtStart)
        #expect(standing == [StandingFault(code: .insulationFault, gun: 0, value: 40_000, limit: 75_000, measure: .ohms)])
        var s = StationState()
        for f in standing { s.restoreLatched(f.code, gun: f.gun, at: .zero, value: f.value, limit: f.limit, measure: f.measure) }
        let r = s.log.records[0]
        #expect(r.restored && r.value == 40_000 && r.limit == 75_000 && r.measure == .ohms)
        guard let entry = Recorder.entry(for: .fault(r)), case .fault(let note) = entry.event else { Issue.record("no journal entry"); return }
        #expect(note.value == 40_000 && note.unit == "ohm" && note.limit == 75_000)
        #expect(note.text?.hasPrefix("latched again at start") == true)
        #expect(entry.line.contains("value 40000 ohm limit 75000"), "\(entry.line)")
    }
}

/// Issue 36, wrong answer 6: `modules` cut "last seen" ("17101 ms ag"), and showed a silent module's last
/// readings (407.4 V, 73.6 A) as if measured now on an idle gun, with "comm errors -".
@Suite struct ModulesTable {
    @Test func aSilentModulesLastAnswerIsNotShownAsMeasured() throws {
        let b = try Bench()
        b.view.at = Instant(micros: 60_000_000)
        b.view.modules[0].seenAt = Instant(micros: 60_000_000 - 17_101_000)
        b.view.modules[0].silentSince = Instant(micros: 60_000_000 - 17_101_000)
        b.view.modules[0].commLost = true
        b.view.modules[0].voltage = Volts(407.4)
        b.view.modules[0].current = Amps(73.6)
        b.view.modules[1].seenAt = Instant(micros: 60_000_000 - 3_000)
        b.view.modules[1].voltage = Volts(12.5)
        let out = b.type("modules")
        let rows = out.split(whereSeparator: \.isNewline).map(String.init)
        guard let row0 = rows.first(where: { $0.hasPrefix("  0 ") }), let row1 = rows.first(where: { $0.hasPrefix("  1 ") }) else {
            Issue.record("no module rows: \(out)"); return
        }
        #expect(row0.contains("SILENT") && !row0.contains("407.4") && !row0.contains("73.6"), "\(row0)")
        #expect(row0.contains("17.1 s ago"), "last seen in full: \(row0)")
        #expect(row0.hasSuffix("no bus"), "a simulated board has no field-bus counters, and says so: \(row0)")
        #expect(out.contains("module 0 last answered 17.1 s ago: 407.4 V, 73.6 A"), "\(out)")
        #expect(row1.contains(" off ") && row1.contains("12.5") && row1.contains("3 ms ago"), "\(row1)")
        for line in rows { #expect(line.count <= 80, "\(line.count) columns: \(line)") }
    }
}

/// Issue 36, ask 3: a confirmation before anything that ends a running session, strict arguments, and a
/// line longer than the console takes refused whole (it was cut at 160 characters and run).
@Suite struct ConfirmationsAndStrictLines {
    func charging() throws -> Bench {
        let b = try Bench()
        b.view.guns[0].status.phase = .charging
        b.view.guns[0].status.voltage = Volts(400)
        b.view.guns[0].status.current = Amps(105)
        b.view.guns[0].status.soc = 55
        b.type("login tech"); b.type("secret-pass")
        return b
    }

    @Test func stopServiceOffAndAZeroCapAskFirst() throws {
        let b = try charging()
        for (command, effect) in [("stop 0", "stops its session"), ("service 0 off", "stops its session and takes the gun out of service"),
                                  ("cap 0 0", "holds its session at no power")] {
            let ask = b.type(command)
            #expect(flat(ask).contains("gun0 is charging at 42.0 kW, SOC 55.0 %: '\(command)' \(effect)"), "\(ask)")
            #expect(ask.contains("type 'yes' to go on"), "\(ask)")
            #expect(b.sent.isEmpty, "\(command) ran before its confirmation: \(b.sent)")
            #expect(b.type("no").contains("cancelled: '\(command)' was not run"))
            #expect(b.sent.isEmpty)
        }
        let journalled = b.journal.recent().filter { if case .command(_, _, let r, _) = $0.event { r == "cancelled at the confirmation" } else { false } }
        #expect(journalled.count == 3)
        // Confirmed: it runs, and is journalled with its result.
        _ = b.type("stop 0")
        let done = b.type("yes")
        #expect(done.contains("stop requested on gun0") && done.contains("(journal #"), "\(done)")
        if case .stop(0) = b.sent.last {} else { Issue.record("\(b.sent)") }
        // Ctrl-C cancels a confirmation too, and so does waiting past it.
        _ = b.type("service 0 off")
        _ = b.session.input(ArraySlice([0x03]))
        #expect(b.type("yes").contains("unknown command 'yes'"))
        _ = b.type("cap 0 0")
        b.now += ConsoleSession.confirmationWait + 1
        #expect(b.type("yes").contains("cancelled"))
        #expect(b.sent.count == 1)
    }

    @Test func anIdleGunDoesNotAsk() throws {
        let b = try Bench()
        b.type("login tech"); b.type("secret-pass")
        #expect(b.type("service 0 off").contains("gun0 out of service"))
        #expect(b.type("cap 0 0").contains("capped at 0.0 kW"))
        #expect(b.sent.count == 2)
    }

    @Test func extraWordsAreRefusedWithTheUsage() throws {
        let b = try Bench()
        b.type("login tech"); b.type("secret-pass")
        #expect(b.type("cap 0 59.5 30 extra").contains("usage: cap GUN KW [MINUTES]"))
        #expect(b.type("status now").contains("usage: status"))
        #expect(b.type("stop 0 1").contains("usage: stop GUN"))
        #expect(b.type("imd x").contains("usage: imd"))
        #expect(b.sent.isEmpty, "\(b.sent)")
        #expect(b.type("cap 0 59.5 30").contains("capped at 59.5 kW for 30 min"))
    }

    @Test func aLineLongerThanTheConsoleTakesIsRefusedWhole() throws {
        let b = try Bench()
        b.type("login tech"); b.type("secret-pass")
        let line = "cap 0 30 " + String(repeating: "9", count: 198)   // 207 characters
        let out = b.type(line)
        #expect(out.contains("refused: the line was 207 characters, longer than 160; nothing was run"), "\(out)")
        #expect(b.sent.isEmpty, "\(b.sent)")
        // The editor: the bytes past the limit answered with a bell, counted, and erased first by Backspace.
        var e = LineEditor()
        let r = feed(&e, String(repeating: "a", count: 170) + "\u{7F}\u{7F}\r")
        #expect(r.events == [.tooLong(typed: 168)])
        #expect(r.out.filter { $0 == "\u{7}" }.count == 10)
        let ok = feed(&e, String(repeating: "b", count: 165) + String(repeating: "\u{7F}", count: 6) + "\r")
        #expect(ok.events == [.line(String(repeating: "b", count: 159))])
    }
}

/// Issue 36, ask 2: every line the console writes fits 80 columns, and `ascii on` writes ASCII alone.
@Suite struct EightyColumns {
    func busy() throws -> Bench {
        let b = try Bench()
        b.view.gunCount = 1
        b.view.stationSetpoint = .kW(150)
        b.view.emergencyStop = true
        b.view.doorOpen = true
        var st = b.view.guns[0].status
        st.phase = .parameterExchange
        st.voltage = Volts(1000); st.current = Amps(1500); st.powerLimit = .kW(1000); st.binding = .gridSetpoint; st.soc = 55
        st.faults.insert(.insulationFault); st.faults.insert(.overVoltageVehicleMax); st.faults.insert(.vehicleVoltageMismatch)
        b.view.guns[0].status = st
        b.view.guns[0].outOfService = true
        b.view.guns[0].carMaxVoltage = Volts(950); b.view.guns[0].carMaxChargeVoltage = Volts(920); b.view.guns[0].carMaxChargeCurrent = Amps(1500)
        b.view.guns[0].carBatteryVoltage = Volts(812.5); b.view.guns[0].carVoltageDemand = Volts(900.5);
        b.view.guns[0].carCurrentDemand = Amps(1499.9)
        b.view.guns[0].carMaxCellTemperature = Celsius(45)
        for i in 0..<30 { b.journal.append(JournalEntry(.command(user: "technician-\(i)", command: "cap 0 59.5 30", result: "capped 59.5 kW for 30 min", gun: 0), t: 12_345.678)) }
        var n = FaultNote(gun: 0, code: FaultCode.vehicleVoltageMismatch.name, reaction: "refuse", value: 812.5, faultSeq: 12_345, text: "module 17")
        n.unit = "V"; n.limit = 771.9
        b.journal.append(JournalEntry(.fault(n), t: 99_999.999))
        return b
    }

    @Test func everyReadOnlyCommandFitsEightyColumns() throws {
        let b = try busy()
        b.journal.append(JournalEntry(.sessionStart(SessionNote(gun: 0, energyKWh: 1, soc: 20)), t: 100))
        b.journal.append(JournalEntry(.service(gun: 0, out: true), t: 200))
        b.journal.append(JournalEntry(.sessionEnd(SessionNote(gun: 0, energyKWh: 1234.5, soc: 80, stopReason: "operator")), t: 12_000))
        for command in ["help", "status", "faults", "modules", "imd", "limits", "limits 0", "rt", "comm", "can", "log", "log 40", "stats",
                        "report", "version", "whoami", "help v2g", "help test", "help E18", "help cap", "help report"] {
            let out = b.type(command)
            for line in out.split(whereSeparator: \.isNewline) {
                #expect(line.count <= 80, "'\(command)': \(line.count) columns: \(line)")
            }
        }
    }

    /// The console's safety net: any line wider than 80 columns is wrapped at a space under its own indent
    /// plus two, its spacing kept (a table's columns); a word longer than the width is left whole.
    @Test func widerLinesAreWrappedKeepingTheirSpacing() {
        let line = "  TOU      now flat; 00:00 valley (no limit), 07:00 flat (no limit), 18:00 peak 0.0 kW, 21:00 flat (no limit)"
        let lines = ConsoleSession.fit(Substring(line))
        #expect(lines.count == 2 && lines.allSatisfy { $0.count <= 80 }, "\(lines)")
        #expect(lines[0].hasPrefix("  TOU      now flat;") && lines[1].hasPrefix("    ") && !lines[1].hasPrefix("     "))
        #expect(flat(lines.joined(separator: " ")) == flat(line))
        let word = String(repeating: "x", count: 100)
        #expect(ConsoleSession.fit(Substring("a " + word)) == ["a", "  " + word])
        #expect(ConsoleSession.fit("short") == ["short"])
    }

    /// CI's deeper clone wrapped `version` between "checksum" and its value (stop 43): the board's name
    /// and checksum keep one line, its path the next, a path wider than the screen broken after a '/'.
    @Test func versionKeepsTheChecksumWholeAndBreaksADeepPathAtASlash() throws {
        let path = "/check/work/main/" + String(repeating: "deeper-directory/", count: 6) + "sim-60kw.toml"
        let b = try Bench(board: "sim-60kw, checksum c4ec9187f8215b15\nfile \(path)")
        let lines = b.type("version").split(whereSeparator: \.isNewline).map(String.init)
        #expect(lines.contains("board sim-60kw, checksum c4ec9187f8215b15"), "\(lines)")
        let file = lines.drop { !$0.hasPrefix("  file ") }.prefix { $0.hasPrefix("  ") && !$0.hasPrefix("  at start") }
        #expect(file.count == 2 && file.allSatisfy { $0.count <= 80 }, "\(lines)")
        #expect(file.first?.hasSuffix("/") == true, "\(lines)")
        #expect(file.map { $0.trimmingCharacters(in: .whitespaces) }.joined().dropFirst("file ".count) == Substring(path))
    }

    @Test func asciiModeWritesASCIIAlone() throws {
        let b = try busy()
        #expect(b.type("ascii on").contains("ascii on"))
        for command in ["status", "faults", "modules", "imd", "help E05", "help", "log", "report"] {
            let out = b.type(command)
            let foreign = out.unicodeScalars.filter { !$0.isASCII }
            #expect(foreign.isEmpty, "'\(command)' wrote \(String(String.UnicodeScalarView(foreign))) in ascii mode")
        }
        #expect(b.type("status").contains("degC"))
        #expect(b.type("help E05").contains("100 Ohm/V"))
        _ = b.type("ascii off")
        #expect(b.type("status").contains("°C"))
    }
}

/// Issue 36, ask 5: line editing as a terminal user expects: left/right, Home/End, Ctrl-A/E/W, Delete,
/// with the echo a dumb terminal follows (printable bytes, BS, spaces).
@Suite struct CursorEditing {
    /// What a dumb terminal shows after `out`: BS moves left, a byte overwrites and moves right.
    func screen(_ out: String) -> String {
        var cells: [Character] = [], at = 0
        for c in out {
            if c == "\u{8}" { at = max(0, at - 1); continue }
            if c == "\u{7}" { continue }
            if at < cells.count { cells[at] = c } else { cells.append(c) }
            at += 1
        }
        return String(cells).replacingOccurrences(of: " +$", with: "", options: .regularExpression)
    }

    @Test func insertInTheMiddleAndTheScreenFollows() {
        var e = LineEditor()
        let r = feed(&e, "cap 0 3\u{1B}[D\u{1B}[D\u{1B}[D\u{1B}[C\u{1B}[C1")   // back to "cap 0| 3"... then right twice, insert
        #expect(String(decoding: e.line, as: UTF8.self) == "cap 0 13")
        #expect(screen(r.out) == "cap 0 13")
        #expect(feed(&e, "\r").events == [.line("cap 0 13")])
    }

    @Test func homeEndCtrlAEAndDelete() {
        var e = LineEditor()
        var out = feed(&e, "tatus").out
        out += feed(&e, "\u{1}s").out                 // Ctrl-A, insert at the start
        #expect(String(decoding: e.line, as: UTF8.self) == "status")
        out += feed(&e, "\u{5} 0").out                // Ctrl-E, append
        out += feed(&e, "\u{1B}[H\u{1B}[3~").out      // Home, Delete
        #expect(String(decoding: e.line, as: UTF8.self) == "tatus 0")
        out += feed(&e, "\u{1B}[4~x").out             // End (VT220 form), append
        #expect(screen(out) == "tatus 0x")
        #expect(e.cursor == e.line.count)
    }

    @Test func ctrlWErasesTheWordBeforeTheCursor() {
        var e = LineEditor()
        var out = feed(&e, "service 0 off  ").out
        out += feed(&e, "\u{17}").out
        #expect(String(decoding: e.line, as: UTF8.self) == "service 0 ")
        out += feed(&e, "\u{1B}[D\u{1B}[D\u{17}").out  // the cursor before "0": the space, then "service"
        #expect(String(decoding: e.line, as: UTF8.self) == "0 ")
        #expect(screen(out) == "0")
        #expect(e.cursor == 0)
        out += feed(&e, "stop ").out
        #expect(screen(out) == "stop 0")
        #expect(feed(&e, "\r").events == [.line("stop 0 ")])
    }

    @Test func backspaceInTheMiddleAndCtrlUFromTheMiddle() {
        var e = LineEditor()
        var out = feed(&e, "statxus\u{1B}[D\u{1B}[D\u{7F}").out
        #expect(String(decoding: e.line, as: UTF8.self) == "status")
        #expect(screen(out) == "status")
        out += feed(&e, "\u{15}").out
        #expect(e.line.isEmpty && e.cursor == 0)
        #expect(screen(out) == "")
    }
}

/// Editing in the middle of a line redraws the rest of it; a flood of cursor keys and bytes must not come
/// out a hundred times larger (the bounded output queue then dropped the answer to the next command:
/// test_console's garbage flood, once the cursor could move).
@Suite struct FloodEcho {
    @Test func aFloodIsEchoedOnceAReadNotEditByEdit() throws {
        let b = try Bench()
        var seed: UInt64 = 7
        var noise: [UInt8] = []
        while noise.count < 20_000 {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            let x = UInt8(truncatingIfNeeded: seed >> 33)
            if x != 0x0D && x != 0x0A && x != 0x03 { noise.append(x) }
            if noise.count % 97 == 0 { noise += [0x01, 0x1B, 0x5B, 0x44] }   // Ctrl-A and left arrows often
        }
        var echoed = 0
        for i in stride(from: 0, to: noise.count, by: 1000) { echoed += b.session.input(ArraySlice(noise[i..<min(i + 1000, noise.count)])).count }
        #expect(echoed < noise.count / 2, "\(echoed) bytes echoed for \(noise.count) typed")
        let answer = String(decoding: b.session.input(ArraySlice(Array("\u{15}version\r".utf8))), as: UTF8.self)
        #expect(answer.contains("chargerd test"), "\(answer.suffix(200))")
    }
}

/// Plug and charge on `limits`: the word on the VIN and the VIN masked unless the site shows it whole; a
/// car's bytes that are not a VIN are never printed.
@Test func vinLineOnTheLimitsPage() {
    var x = GunSnapshot(status: GunStatus(gun: 0, at: .zero, phase: .identification, voltage: .zero, current: .zero, powerLimit: .zero,
                                          binding: .none, soc: 50, gunTemperature: Celsius(25), faults: FaultSet()))
    x.vinCheck = .pending
    #expect(ConsoleSession.vinLine(x, whole: false) == "by VIN, waiting for the answer (recognition held, at most 4 s)")
    x.vinSent = true
    for (i, b) in "LFV3A23C5K3012345".utf8.enumerated() { x.vin[i] = b }
    #expect(ConsoleSession.vinLine(x, whole: false).hasSuffix("VIN LFV**********2345"))
    #expect(ConsoleSession.vinLine(x, whole: true).hasSuffix("VIN LFV3A23C5K3012345"))
    x.vin[3] = 0x1B   // ESC: a terminal escape from the car
    #expect(ConsoleSession.vinLine(x, whole: true).hasSuffix("VIN malformed"))
    x.vinCheck = .refusedFallBack
    #expect(ConsoleSession.vinLine(x, whole: false).hasPrefix("by VIN, refused: waiting for an idTag or a remote start"))
    #expect(ConsoleSession.vinLine(x, whole: false).split(separator: "\n").allSatisfy { $0.count <= 80 })
}
