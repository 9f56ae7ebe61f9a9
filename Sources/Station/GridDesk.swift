// chargerd's grid side: the site file's EMS server, OCPP charge point and time-of-use schedule around one
// GridHub. The thread that owns the loop's events (the main thread) ticks it every 100 ms of station
// time: the view in, the composite feed out to the loop, grid events into the journal.
import BoardFile
import SiteFile
import ChargerCore
import LoopContract
import Foundation
import Grid
import GridInterfaces
import Journal
import Console

package final class GridDesk {
    package let site: SiteConfig
    package let hub: GridHub
    package let ems: EMSServer?
    package let ocpp: OCPPClient?
    package let desk: OperatorDesk
    package let gunCount: Int
    /// The board refuses sessions while a metering fault stands: the gun then counts as faulted.
    package let refuseOnMetering: Bool

    /// The grid desk of the site file at `site` (`chargerd --site`): loaded against the board, the charge
    /// point's key checked, the station clock started at `startTime` (RFC 3339; default: now). A site
    /// with peers (EMS, OCPP) needs a `paced` run: they talk in wall-clock time. A file that cannot be
    /// used exits 2 naming the file and why.
    package static func open(site: String, board: Board, desk: OperatorDesk, paced: Bool, speed: Double, startTime: String?,
                             idTag: String?) throws -> GridDesk {
        let config: SiteConfig
        do { config = try SiteLoader.load(path: site, board: board) } catch { fail("site file: \(error)") }
        // The charge point's private key, as the credentials file: refused if others can write it.
        if let key = config.ocpp?.keyFile {
            do { if let w = try Credentials.checkPermissions(key, what: "OCPP key") { writeStderr("chargerd: warning: \(w)\n") } } catch {
                fail("site \(site): \(error)")
            }
        }
        if (config.ems != nil || config.ocpp != nil) && !paced {
            fail("site \(site): the EMS server and the OCPP client talk to peers in wall-clock time: run with --realtime or --speed FACTOR (not max)")
        }
        var start: Int64
        if let t = startTime {
            guard let ms = Timestamp.parse(t) else { fail("--start-time '\(t)': expected RFC 3339, e.g. 2026-11-24T14:00:00+08:00") }
            start = ms
        } else {
            start = realtimeMicros() / 1000
        }
        if desk.signer == nil, let dir = config.ocpp?.stateDirectory { desk.signer = RecordSigner.chargePointKey(stateDirectory: dir) }
        let g = try GridDesk(site: config, board: board, startEpochMillis: start, desk: desk)
        if let o = g.ocpp {
            o.speedFactor = speed
            for gun in 0..<board.spec.gunCount { o.present(idTag: idTag, gun: gun) }
        }
        return g
    }

    package init(site: SiteConfig, board: Board, startEpochMillis: Int64, desk: OperatorDesk) throws {
        self.site = site
        self.desk = desk
        gunCount = board.spec.gunCount
        refuseOnMetering = board.spec.metering.refuseSessions
        let clock = StationClock(epochMillisAtZero: startEpochMillis, utcOffsetSeconds: site.utcOffsetSeconds)
        var state = GridState(clock: clock, ems: site.ems?.settings, tou: site.tou, gridConnection: board.spec.gridLimit,
                              ratings: (0..<board.spec.gunCount).map { board.spec.guns[$0].ratedPower },
                              freeVend: site.ocpp.map(\.freeVend) ?? true)
        state.electrical = site.electrical
        hub = GridHub(state: state)
        let hub = hub
        desk.v2gPlan = { g, p in
            guard let p else { hub.clearPlan(gun: g); return "gun \(g): V2G plan cleared" }
            switch hub.setPlan(gun: g, minSoc: p.minSoc, departureMinute: p.departureMinute, targetSoc: p.targetSoc) {
            case .success(let text): return text
            case .failure(let r): return "refused: \(r.why)"
            }
        }
        desk.departureMet = { g, soc, at in hub.sessionEnded(gun: g, soc: soc, at: at) }
        desk.showVIN = site.ocpp?.showVIN ?? false
        desk.identity = { g in let ids = hub.state.identities; return g < ids.count ? ids[g] : nil }
        if let c = site.ems {
            do { ems = try EMSServer(config: c, hub: hub) } catch { fail("site \(site.path): \(error)") }
            if let w = ems?.warning { writeStderr("chargerd: warning: \(w)\n") }
        } else { ems = nil }
        if let c = site.ocpp {
            do { ocpp = try OCPPClient(config: c, hub: hub, firmware: desk.version, gunCount: board.spec.gunCount) } catch { fail("site \(site.path): \(error)") }
            ocpp?.onReset = { type in RunRequests.process.requestReset("OCPP Reset \(type.rawValue)") }
            ocpp?.onFirmwareInstalled = { version in RunRequests.process.requestReset("firmware \(version) installed") }
            // GetDiagnostics uploads the journal's records of the asked window (by their wall time), as
            // `chargerd journal export` prints them, after a head naming the charger and the window.
            let journal = desk.journal, boardName = board.name, cp = c.chargePointId, version = desk.version
            ocpp?.diagnostics = { from, to in
                let (entries, problems) = journal.directory.map { Journal.readAll(directory: $0) } ?? (journal.recent(), [])
                let picked = entries.filter { e in
                    guard let w = Journal.wallSeconds(e.wall) else { return true }
                    return (from.map { w * 1000 >= Double($0) } ?? true) && (to.map { w * 1000 <= Double($0) } ?? true)
                }
                var text = "# \(version) charge point \(cp) board \(boardName): journal "
                    + (journal.directory ?? "(memory only: the latest records)") + ", records "
                    + (from.map { Timestamp.format($0) } ?? "from the first") + " to " + (to.map { Timestamp.format($0) } ?? "the last")
                    + ": \(picked.count) of \(entries.count)\n"
                for p in problems { text += "# journal: \(p)\n" }
                for e in picked { text += e.line + "\n" }
                return Array(text.utf8)
            }
        } else { ocpp = nil }
        var parts = ["site \(site.name) (\(site.path)), clock starts \(Timestamp.format(startEpochMillis)), UTC\(utcOffsetText(site.utcOffsetSeconds))"]
        if let ems, let c = site.ems {
            parts.append("EMS Modbus TCP server on \(c.address):\(ems.boundPort) unit \(c.unit)" + (c.allow.isEmpty ? "" : ", writes from \(c.allow.joined(separator: ", ")) only"))
        }
        if !site.tou.periods.isEmpty { parts.append("time of use: \(site.tou.text)") }
        if let c = site.ocpp { parts.append("OCPP 1.6J charge point \(c.chargePointId) -> \(c.url)") }
        print("grid: " + parts.joined(separator: "; "))
        fflush(nil)
    }

    package func start() {
        ems?.start()
        ocpp?.start()
    }

    /// The console's addendum to `limits`.
    package func consoleText() -> String {
        var s = hub.consoleText()
        if let ems { s += "\n  EMS server: \(ems.answered.load(ordering: .relaxed)) requests answered, \(ems.applied.load(ordering: .relaxed)) writes applied, \(ems.refused.load(ordering: .relaxed)) refused\n  \(ems.connectionReport)" }
        if let ocpp { s += "\n  " + ocpp.statusLine() }
        return s
    }

    /// One tick: the station's view in, the loop's feed out; grid events journalled.
    package func tick(view v: StationView) -> GridFeed {
        let o = StationObservation(view: v, refuseOnMetering: refuseOnMetering)
        let feed = hub.tick(observation: o)
        ocpp?.observe(o)
        journalEvents()
        return feed
    }

    /// Grid events into the journal (and the EMS's and OCPP's on standard output).
    package func journalEvents() {
        for e in hub.takePending() {
            if let a = e.authorization {
                let note = AuthorizationNote(gun: a.gun, method: a.method.rawValue, identity: a.identity, verdict: a.verdict, text: a.why)
                desk.ack(desk.journal.append(JournalEntry(.authorization(note), t: e.at.seconds)))
                print("grid: t=\(fmt(e.at.seconds, 1)) s authorization: \(e.text)")
                continue
            }
            desk.ack(desk.journal.append(JournalEntry(.grid(source: e.kind, text: e.text), t: e.at.seconds)))
            if e.kind == "ems" || e.kind.hasPrefix("ocpp") || e.kind == "ems-refused" { print("grid: t=\(fmt(e.at.seconds, 1)) s \(e.kind): \(e.text)") }
        }
    }

    /// A loop event for the charge point (phases, session edges, faults).
    package func loopEvent(_ e: LoopEvent) { ocpp?.loopEvent(e) }

    /// The interfaces stopped (OCPP's queue flushed while connected); what they said meanwhile (the last
    /// StopTransaction answered, a retry) is journalled before the journal closes.
    package func shutdown() {
        ocpp?.stop()
        ems?.stop()
        journalEvents()
        if let ems { print(ems.connectionReport); fflush(nil) }
    }
}

package func utcOffsetText(_ s: Int) -> String {
    let a = abs(s)
    return (s < 0 ? "-" : "+") + String(format: "%02d:%02d", a / 3600, a / 60 % 60)
}
