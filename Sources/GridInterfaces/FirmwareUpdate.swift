// UpdateFirmware (OCPP 1.6 §5.19, §4.5): at the retrieve date the package is downloaded (1 + retries
// attempts, retryInterval apart) and checked (Grid/FirmwarePackage.swift) on a side thread; the payload
// is written beside the running versions in the site's firmware_dir; it is installed only while no
// session runs (the `current` link turned to it atomically, `previous` kept), and then the controller
// restarts (exit 5, as for a Reset) into it. FirmwareStatusNotification says each step: Downloading,
// Downloaded or DownloadFailed, Installing, Installed (after the restart) or InstallationFailed. A bad
// download or a failed install leaves `current` as it was.
//
// SignedUpdateFirmware (security whitepaper ed. 2, §4.3) runs the same way once its signing certificate
// chained to a manufacturer root (the package's; the central system's only where the site allows); the
// downloaded file's signature is checked against that certificate before anything is written (InvalidSignature: nothing kept, a security event), the
// install waits for installDateTime too, and each step goes out as SignedFirmwareStatusNotification with
// the request's id, with the whitepaper's extra steps (DownloadScheduled, SignatureVerified,
// InstallScheduled, InstallRebooting).
import ChargerCore
import Foundation
import Grid
import OCPPChargePoint
import RealTime
import SiteFile
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Where an update is: waiting for its retrieve date, downloaded (file and version set), installed
/// (reported after the restart).
enum FirmwareStage: String, Codable { case waiting, downloaded, installed }

/// The update in hand, as stored in state_dir/firmware.json (it outlives the restart it asks for).
struct FirmwareJob: Codable, Equatable {
    var location: String
    /// Station time (epoch ms) of the retrieve date.
    var retrieveAt: Int64
    var retries: Int
    var retryInterval: Int
    var stage: FirmwareStage
    var version: String? = nil
    var file: String? = nil
    /// SignedUpdateFirmware: the request's id, the signing certificate (PEM), the signature (base64) and
    /// the install date (station time, epoch ms); all nil for UpdateFirmware.
    var requestId: Int? = nil
    var signingCertificate: String? = nil
    var signature: String? = nil
    var installAt: Int64? = nil
    /// InstallScheduled has been said (once per update).
    var installScheduled: Bool? = nil

    var signed: Bool { requestId != nil }
}

/// Firmware statuses not sent yet, and the latest.
struct FirmwareStatuses: Sendable { var queue: [FirmwareEvent] = []; var last = FirmwareEvent(status: .Idle, requestId: nil) }

/// What the download thread ended with.
enum FirmwareDownload: Sendable {
    case downloaded(version: String, file: String)
    case failed(String)
    /// Intact, but the signature is not the signing certificate's (a security event).
    case badSignature(String)
}

/// Lower-case hex SHA-256 (OpenSSL), for the firmware package's head.
public func sha256Hex(_ bytes: [UInt8]) -> String { Crypto.sha256Hex(bytes) }

/// The firmware update in hand and its download thread, a type of its own (issue 34): the client's thread
/// drives it (`turn`, each turn; `update` and `signedUpdate` for the central system's calls); the download
/// thread hands its statuses and its outcome over under `handOver`, the one lock it shares.
final class FirmwareUpdater: @unchecked Sendable {
    let config: OCPPConfig
    let hub: GridHub
    /// The version running.
    let running: String
    /// The download thread's hand-over: the statuses to notify (and the last), its outcome, whether it runs.
    struct HandOver {
        var statuses = FirmwareStatuses()
        var result: FirmwareDownload? = nil
        var busy = false
    }
    let handOver = Mutex(HandOver())
    /// The job (persisted), its download thread, and whether a restart into the installed version is due.
    var job: FirmwareJob? = nil
    var thread: SideThread? = nil
    var restartDue = false
    /// This version was just installed and has not yet said it came up (firmware_dir/trial removed).
    var onTrial = false
    /// A security event for the central system (the client's charge point; set by the client).
    var securityEvent: (String, String?) -> Void = { _, _ in }
    /// The station clock now (epoch ms; set by the client).
    var stationMillis: () -> Int64 = { 0 }

    init(config: OCPPConfig, hub: GridHub, running: String) { self.config = config; self.hub = hub; self.running = running }

    /// An update in hand or a download running (what a triggered FirmwareStatusNotification says).
    var busy: Bool { job != nil || handOver.withLock { $0.busy } }
    /// The last status said.
    var last: FirmwareEvent { handOver.withLock { $0.statuses.last } }
    /// The statuses not yet taken for the central system, in order.
    func takeStatuses() -> [FirmwareEvent] { handOver.withLock { h in defer { h.statuses.queue.removeAll() }; return h.statuses.queue } }
    func stop() { thread?.stop() }

    var path: String? { config.stateDirectory.map { $0 + "/firmware.json" } }

    func save() {
        guard let p = path else { return }
        if let job = job, let d = try? JSONEncoder().encode(job) { StateFiles.write(d, to: p, hub: hub) } else { unlink(p) }
    }

    func load() {
        // A version on trial confirms itself once it came up (turn), with or without its job.
        onTrial = config.firmwareDirectory.map { access($0 + "/trial", F_OK) == 0 } ?? false
        guard let p = path else { return }
        // Outside input too (a hand-edited or damaged file): one that does not decode, or whose numbers are
        // out of the bounds a request is held to, is set aside and journalled, never retried into a crash.
        guard let kept = StateFiles.restore(FirmwareJob.self, p, hub: hub, "firmware update", valid: StateFiles.firmwareJobValid) else { return }
        if kept.stage == .installed {
            // The restart it asked for: Installed goes out once online; unless the service's launcher
            // (chargerd-start) turned a version that did not come up back to the previous one.
            if let dir = config.firmwareDirectory, let bad = try? String(contentsOfFile: dir + "/rolled-back", encoding: .utf8) {
                let name = bad.trimmingCharacters(in: .whitespacesAndNewlines)
                status(.InstallationFailed, "firmware \(kept.version ?? "?") (\(name)) did not come up: the service went back to the previous version; running \(running)",
                       request: kept.requestId)
                unlink(dir + "/rolled-back")
            } else {
                status(.Installed, "firmware \(kept.version ?? "?") installed; running \(running)", request: kept.requestId)
            }
            job = nil
            save()
        } else {
            job = kept
            hub.log("ocpp", "firmware update from \(TransferLocation(kept.location)?.display ?? "?") restored (\(kept.stage))")
        }
    }

    /// A firmware status to notify (any thread): for a signed update's request, any step; for
    /// UpdateFirmware, OCPP 1.6's own steps only (the others are journalled, not sent).
    func status(_ s: FirmwareStatus, _ log: String, request: Int?) {
        let e = FirmwareEvent(status: s, requestId: request)
        let said = request != nil || FirmwareStatus.unsigned.contains(s)
        handOver.withLock { if said { $0.statuses.queue.append(e) }; $0.statuses.last = e }
        hub.log("ocpp", "firmware: \(s.rawValue): \(log)")
    }

    /// UpdateFirmware: the job is kept (a pending one replaced) and answered at once; nothing happens
    /// before the retrieve date.
    func update(_ r: UpdateFirmwareReq, _ loc: TransferLocation, retrieveAt: Int64, tries: TransferRetries) {
        guard !handOver.withLock({ $0.busy }) else {
            hub.log("ocpp", "UpdateFirmware from \(loc.display): a download is running; this one is ignored")
            return
        }
        if let old = job?.file { unlink(old) }
        job = FirmwareJob(location: r.location, retrieveAt: retrieveAt, retries: tries.retries,
                                  retryInterval: tries.interval, stage: .waiting)
        save()
        hub.log("ocpp", "UpdateFirmware from \(loc.display) at \(Timestamp.format(retrieveAt))")
    }

    /// SignedUpdateFirmware (whitepaper ed. 2, §4.3): the signing certificate must chain to a manufacturer
    /// root (`manufacturerRoots`; InvalidCertificate and a security event if not); a running download
    /// cannot be taken back (Rejected); an update waiting or downloaded is replaced (AcceptedCanceled).
    func signedUpdate(_ r: SignedUpdateFirmwareReq, _ loc: TransferLocation, retrieveAt: Int64, installAt: Int64?, tries: TransferRetries,
                      installedRoots: [X509Certificate])
        -> UpdateFirmwareStatus
    {
        guard let signer = X509Certificate.all(pem: r.firmware.signingCertificate)?.first else {
            securityEvent("InvalidFirmwareSigningCertificate", "SignedUpdateFirmware #\(r.requestId): the signing certificate is not PEM")
            return .InvalidCertificate
        }
        let roots = manufacturerRoots(installed: installedRoots)
        guard !roots.isEmpty else {
            securityEvent("InvalidFirmwareSigningCertificate", "SignedUpdateFirmware #\(r.requestId): no manufacturer root to check \(signer.subject) against (site file [ocpp] manufacturer_roots)")
            return .InvalidCertificate
        }
        if let why = signer.verify(roots: roots) {
            securityEvent("InvalidFirmwareSigningCertificate", "SignedUpdateFirmware #\(r.requestId): \(signer.subject): \(why)")
            return .InvalidCertificate
        }
        guard let sig = Data(base64Encoded: r.firmware.signature), !sig.isEmpty else {
            hub.log("ocpp-refused", "SignedUpdateFirmware #\(r.requestId): the signature is not base64")
            return .Rejected
        }
        guard !handOver.withLock({ $0.busy }) else {
            hub.log("ocpp", "SignedUpdateFirmware #\(r.requestId) from \(loc.display): a download is running; Rejected")
            return .Rejected
        }
        var status = UpdateFirmwareStatus.Accepted
        if let old = job, old.stage != .installed {
            if let f = old.file { unlink(f) }
            hub.log("ocpp", "SignedUpdateFirmware #\(r.requestId): the update in hand (\(old.requestId.map { "#\($0)" } ?? "unsigned")) is cancelled")
            status = .AcceptedCanceled
        }
        job = FirmwareJob(location: r.firmware.location, retrieveAt: retrieveAt, retries: tries.retries,
                                  retryInterval: tries.interval, stage: .waiting, requestId: r.requestId,
                                  signingCertificate: r.firmware.signingCertificate, signature: r.firmware.signature, installAt: installAt)
        save()
        hub.log("ocpp", "SignedUpdateFirmware #\(r.requestId) from \(loc.display) at \(Timestamp.format(retrieveAt)), signed by \(signer.subject)")
        if retrieveAt > stationMillis() { self.status(.DownloadScheduled, "at \(Timestamp.format(retrieveAt))", request: r.requestId) }
        return status
    }

    /// The roots a firmware signer must chain to: the package's (manufacturer_roots), and those the
    /// central system installed (`installed`) only where the site allows it. CA certificates only
    /// (basicConstraints).
    func manufacturerRoots(installed: [X509Certificate]) -> [X509Certificate] {
        var roots: [X509Certificate] = []
        if let f = config.manufacturerRootsFile {
            if let text = try? String(contentsOfFile: f, encoding: .utf8), let certs = X509Certificate.all(pem: text) {
                roots += certs.filter(\.isCA)
            } else {
                hub.log("ocpp", "manufacturer roots in \(f) unreadable: no firmware signer can be checked against them")
            }
        }
        if config.centralSystemManufacturerRoots { roots += installed }
        return roots
    }

    /// A version on trial (firmware_dir/trial, which chargerd-start counts starts in) came up: the central
    /// system accepted its BootNotification, or it has run `firmwareTrialRun` seconds.
    static let firmwareTrialRun = 60.0

    /// Each turn of the client's loop: a version on trial confirmed, the download started at the retrieve
    /// date, its outcome taken, the install done once no session runs; the version to restart into once
    /// the statuses are out (`quiet`: nothing left to say or no one to say it to, no call waiting, no
    /// restart asked yet), or nil.
    func turn(booted: Bool, ranFor: Double, idle: Bool, quiet: Bool) -> String? {
        if onTrial, let dir = config.firmwareDirectory, booted || ranFor >= Self.firmwareTrialRun {
            onTrial = false
            unlink(dir + "/trial")
            hub.log("ocpp", "firmware \(running) came up" + (booted ? " (BootNotification accepted)" : "") + ": no longer on trial")
        }
        if let result = handOver.withLock({ h -> FirmwareDownload? in defer { h.result = nil }; return h.result }) {
            switch result {
            case .downloaded(let version, let file):
                job?.stage = .downloaded; job?.version = version; job?.file = file
            case .failed:
                job = nil
            case .badSignature(let why):
                securityEvent("InvalidFirmwareSignature", why)
                job = nil
            }
            save()
        }
        guard let j = job, let dir = config.firmwareDirectory else { return restart(quiet) }
        if j.stage == .waiting && stationMillis() >= j.retrieveAt && !handOver.withLock({ $0.busy }) {
            startDownload(j, dir: dir)
        }
        // No transaction and no car on any gun (a faulted gun does not hold the update back: its
        // outputs are safe, and the fix for its fault may be this very version), and a signed update's
        // install date reached.
        if j.stage == .downloaded {
            if idle && stationMillis() >= j.installAt ?? 0 {
                install(j, dir: dir)
            } else if j.signed && j.installScheduled != true {
                job?.installScheduled = true
                save()
                let now = stationMillis()
                status(.InstallScheduled, j.installAt.map { now < $0 ? "at \(Timestamp.format($0))" : "when no car is plugged" } ?? "when no car is plugged",
                       request: j.requestId)
            }
        }
        return restart(quiet)
    }

    /// The version to restart into, once (nil: none due, or not yet `quiet`).
    func restart(_ quiet: Bool) -> String? {
        guard restartDue && quiet else { return nil }
        restartDue = false
        let v = job?.version ?? "?"
        hub.log("ocpp", "firmware \(v) installed: restarting the controller into it")
        return v
    }

    func startDownload(_ job: FirmwareJob, dir: String) {
        guard let loc = TransferLocation(job.location) else { self.job = nil; save(); return }
        handOver.withLock { $0.busy = true }
        status(.Downloading, "from \(loc.display), \(1 + job.retries) attempt(s)", request: job.requestId)
        let ca = config.caFile, hub = hub, request = job.requestId
        // A signed update: the certificate checked when it was accepted, the signature over the file.
        let signer = job.signingCertificate.flatMap { X509Certificate.all(pem: $0)?.first }
        let signature = job.signature.flatMap { Data(base64Encoded: $0) }.map { Array($0) }
        let t = SideThread()
        thread?.stop()
        thread = t
        let rc = t.start(stackBytes: 1 << 20) {
            var outcome = FirmwareDownload.failed("stopped before an attempt")
            var unsuitable = false
            var verified = false
            _ = retrying(times: 1 + job.retries, interval: Double(job.retryInterval), stopped: { t.stopAsked }) { attempt in
                do {
                    let bytes = try FileTransfer.download(loc, ca: ca, timeout: 60, maxBytes: FirmwarePackage.maxBytes)
                    switch FirmwarePackage.read(bytes, digest: sha256Hex) {
                    case .success(let p):
                        if job.signed {
                            // Intact, so a signature that does not match is not a transfer fault: no retry.
                            guard let signer, let signature, signer.signed(bytes, signature: signature) else {
                                outcome = .badSignature("the signature of \(loc.display) (\(bytes.count) bytes) is not \(signer?.subject ?? "the signer")'s")
                                return true
                            }
                            verified = true
                        }
                        let file = dir + "/chargerd-" + p.version
                        if let why = Self.writeExecutable(p.payload, to: file) { outcome = .failed("cannot write \(file): \(why)") }
                        else { outcome = .downloaded(version: p.version, file: file); return true }
                    case .failure(.unsuitable(let why)):
                        // Intact, but this board cannot run it: no use downloading again.
                        outcome = .failed(why)
                        unsuitable = true
                        return true
                    case .failure(let why):
                        outcome = .failed("\(why)")
                    }
                } catch {
                    outcome = .failed("\(error)")
                }
                if case .failed(let why) = outcome { hub.log("ocpp", "firmware download attempt \(attempt) of \(1 + job.retries) failed: \(why)") }
                return false
            }
            switch unsuitable ? nil : outcome {
            case nil:
                self.status(.Downloaded, "intact, but not for this board", request: request)
                if case .failed(let why) = outcome { self.status(.InstallationFailed, why, request: request) }
            case .downloaded(let v, let f):
                self.status(.Downloaded, "version \(v) in \(f)", request: request)
                if verified { self.status(.SignatureVerified, "signed by \(signer?.subject ?? "?")", request: request) }
            case .failed(let why): self.status(.DownloadFailed, why, request: request)
            case .badSignature(let why):
                self.status(.Downloaded, "intact package", request: request)
                self.status(.InvalidSignature, why, request: request)
            }
            self.handOver.withLock { $0.result = outcome; $0.busy = false }
        }
        if rc != 0 {
            handOver.withLock { $0.busy = false }
            status(.DownloadFailed, "cannot start the download's thread (errno \(rc))", request: job.requestId)
            self.job = nil
            save()
        }
    }

    /// Writes an executable durably (0755; Crypto.writeWhole); nil, or why it could not.
    static func writeExecutable(_ bytes: [UInt8], to path: String) -> String? { Crypto.writeWhole(bytes, to: path, mode: 0o755) }

    /// Installs: the downloaded file checked once more (still there, executable), `previous` set to what
    /// `current` named, then `current` turned to the new file by a rename (never missing, never half).
    func install(_ job: FirmwareJob, dir: String) {
        guard let file = job.file, let version = job.version else { self.job = nil; save(); return }
        status(.Installing, "version \(version)", request: job.requestId)
        let name = String(file.split(separator: "/").last ?? "")
        let current = dir + "/current", previous = dir + "/previous", tmp = dir + "/current.new"
        var why: String? = nil
        if access(file, X_OK) != 0 { why = "\(file) is gone or not executable" }
        if why == nil {
            var buf = [UInt8](repeating: 0, count: 4096)
            let n = buf.withUnsafeMutableBufferPointer { b in
                b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: b.count) { readlink(current, $0, b.count - 1) }
            }
            if n > 0 {
                unlink(previous + ".new")
                if symlink(String(decoding: buf.prefix(n), as: UTF8.self), previous + ".new") != 0 || rename(previous + ".new", previous) != 0 {
                    why = "cannot keep the previous version's link: \(String(cString: strerror(errno)))"
                }
            }
        }
        if why == nil {
            unlink(tmp)
            if symlink(name, tmp) != 0 || rename(tmp, current) != 0 { why = "cannot turn \(current) to \(name): \(String(cString: strerror(errno)))" }
        }
        if why == nil {
            // On trial until the new version says it came up (chargerd-start counts its starts meanwhile).
            unlink(dir + "/rolled-back")
            if let e = Crypto.writeWhole(Array("0\n".utf8), to: dir + "/trial", mode: 0o644) { hub.log("ocpp", "firmware: cannot write \(dir)/trial (\(e)): no fall-back if \(version) does not come up") }
            let dfd = open(dir, O_RDONLY | O_DIRECTORY)
            if dfd >= 0 { fsync(dfd); close(dfd) }
        }
        if let why {
            status(.InstallationFailed, why, request: job.requestId)
            unlink(file)
            self.job = nil
        } else {
            hub.log("ocpp", "firmware \(version) installed in \(dir) (current -> \(name)); the controller restarts into it")
            securityEvent("FirmwareUpdated", "firmware \(version) installed (\(job.signed ? "signed, its signature verified" : "UNSIGNED, as the site allows")); the controller restarts into it")
            self.job?.stage = .installed
            restartDue = true
            if job.signed { status(.InstallRebooting, "restarting into \(version)", request: job.requestId) }
        }
        save()
    }
}
