// The charge point's uploads (GetDiagnostics, GetLog), a type of its own (issue 34): one at a time on a
// side thread, 1 + retries attempts retryInterval apart (FileTransfer.swift does the transfer). The upload
// thread hands its statuses over under `handOver`, the one lock it shares with the client's thread.
import Foundation
import Grid
import RealTime
import SiteFile
import Synchronization

final class Uploads: @unchecked Sendable {
    let config: OCPPConfig
    let hub: GridHub
    /// What the upload thread says: GetDiagnostics' statuses not notified yet, GetLog's
    /// LogStatusNotifications to send and the request an upload runs for, and whether one runs.
    struct HandOver {
        var diagnostics: [DiagnosticsStatus] = []
        var logs: [LogStatusNotificationReq] = []
        var logRequest: Int? = nil
        var running = false
    }
    let handOver = Mutex(HandOver())
    /// The upload's thread (the client's thread only).
    var thread: SideThread? = nil

    init(config: OCPPConfig, hub: GridHub) { self.config = config; self.hub = hub }

    /// The statuses not yet taken for the central system, in order.
    func take() -> (diagnostics: [DiagnosticsStatus], logs: [LogStatusNotificationReq]) {
        handOver.withLock { h in
            defer { h.diagnostics.removeAll(); h.logs.removeAll() }
            return (h.diagnostics, h.logs)
        }
    }

    func stop() { thread?.stop() }

    /// Starts uploading `source`'s bytes as `name` on a side thread (1 + retries attempts, retryInterval
    /// apart): `begin` before the thread starts, `done` on it with the outcome (or here, false, when the
    /// thread cannot start). One upload at a time: false (and logged, neither called) when one runs.
    func start(_ name: String, to loc: TransferLocation, attempts: Int, wait: Double, what: String,
                source: @escaping @Sendable () -> [UInt8], begin: () -> Void, done: @escaping @Sendable (Bool) -> Void) -> Bool {
        guard !handOver.withLock({ $0.running }) else {
            hub.log("ocpp", "\(what) to \(loc.display): an upload is still running")
            return false
        }
        thread?.stop()
        let ca = config.caFile, hub = hub
        handOver.withLock { $0.running = true }
        hub.log("ocpp", "\(what): \(name) to \(loc.display) (\(attempts) attempt(s))")
        begin()
        let t = SideThread()
        thread = t
        let rc = t.start(stackBytes: 1 << 20) {
            let data = source()
            let uploaded = retrying(times: attempts, interval: wait, stopped: { t.stopAsked }) { attempt in
                do {
                    try FileTransfer.upload(data, name: name, to: loc, ca: ca, timeout: 30)
                    hub.log("ocpp", "\(what): \(name) uploaded (\(data.count) bytes, attempt \(attempt))")
                    return true
                } catch {
                    hub.log("ocpp", "\(what): attempt \(attempt) of \(attempts) failed: \(error)")
                    return false
                }
            }
            done(uploaded)
            self.handOver.withLock { $0.running = false }
        }
        if rc != 0 {
            handOver.withLock { $0.running = false }
            hub.log("ocpp", "\(what): cannot start the upload's thread (errno \(rc))")
            done(false)
            return false
        }
        return true
    }

}
