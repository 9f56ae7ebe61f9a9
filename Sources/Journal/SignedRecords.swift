// `chargerd journal verify`: the session records checked against their signatures (issue 37, part 3).
// Each session-end record is followed by a `signature` record naming it (JournalEntry.swift); the
// signature covers the record's stored JSON (`JournalScan.payload`). The check itself is given (the key
// lives with OpenSSL, in GridInterfaces): here, which records it is asked about and what the answers
// add up to. What it reports, each with the record's number:
// - a session record whose signature does not match: changed after it was signed;
// - a signature naming a record that is not in the journal, or one that is not a session's end;
// - a session record with no signature after the journal began signing (its signature removed);
// - a signature by another key than the one given (reported, not judged);
// - a gap in the record numbers between the first record kept and the last (records removed).

public struct SignedRecords: Sendable {
    public struct Problem: Sendable, Equatable, CustomStringConvertible {
        public var seq: UInt64
        public var text: String
        public var description: String { "record #\(seq): \(text)" }
    }
    /// Session records whose signature matched.
    public private(set) var verified: [UInt64] = []
    /// Session records with no signature from before the journal signed any (or a journal never signed).
    public private(set) var unsigned: [UInt64] = []
    /// Signatures by a key other than the one checked with (their key ids).
    public private(set) var otherKeys: [UInt64: String] = [:]
    public private(set) var problems: [Problem] = []

    /// `check(payload, signature)`: the signature matches the payload under the key whose id is `keyId`.
    public init(entries: [JournalEntry], keyId: String, check: ([UInt8], String) -> Bool) {
        var bySeq: [UInt64: JournalEntry] = [:]
        var signatures: [UInt64: [(seq: UInt64, key: String, sig: String)]] = [:]
        var firstSigned: UInt64? = nil
        var previous: UInt64? = nil
        for e in entries {
            // Every record takes the next number, a file's opening checkpoint too; rotation drops whole
            // files from the oldest, so the first record kept may be any number, and then none is skipped.
            if let p = previous, e.seq > p + 1 {
                let missing = e.seq == p + 2 ? "record #\(p + 1) is" : "records #\(p + 1)-#\(e.seq - 1) are"
                problems.append(Problem(seq: e.seq, text: "\(missing) missing between #\(p) and #\(e.seq) (removed?)"))
            }
            if let p = previous, e.seq <= p {
                problems.append(Problem(seq: e.seq, text: "out of order after #\(p) (records moved or copied?)"))
            }
            previous = max(previous ?? 0, e.seq)
            bySeq[e.seq] = e
            if case .signature(let of, let key, let sig) = e.event {
                signatures[of, default: []].append((e.seq, key, sig))
                if firstSigned == nil { firstSigned = of }
            }
        }
        for (of, list) in signatures.sorted(by: { $0.key < $1.key }) {
            guard let record = bySeq[of] else {
                for s in list { problems.append(Problem(seq: s.seq, text: "a signature of record #\(of), which is not in the journal (removed?)")) }
                continue
            }
            guard case .sessionEnd = record.event else {
                problems.append(Problem(seq: of, text: "signed, but a \(record.kind) record, not a session's end"))
                continue
            }
            let payload = JournalScan.payload(record)
            var matched = false, byOther: String? = nil
            for s in list {
                if s.key != keyId { byOther = s.key; continue }
                if check(payload, s.sig) { matched = true } else {
                    problems.append(Problem(seq: of, text: "\(record.line.prefix(120)): its signature (#\(s.seq)) does not match: changed after it was signed"))
                }
            }
            if matched { verified.append(of) } else if let k = byOther, !list.contains(where: { $0.key == keyId }) { otherKeys[of] = k }
        }
        for e in entries {
            guard case .sessionEnd = e.event, signatures[e.seq] == nil else { continue }
            if let f = firstSigned, e.seq > f {
                problems.append(Problem(seq: e.seq, text: "a session's end with no signature, after the journal began signing at #\(f) (its signature removed?)"))
            } else {
                unsigned.append(e.seq)
            }
        }
        problems.sort { $0.seq < $1.seq }
    }

    /// What a technician or an auditor reads.
    public var text: String {
        var lines = ["journal verify: \(verified.count) session record(s) signed and verified, \(problems.count) problem(s), "
                     + "\(unsigned.count) unsigned from before signing began, \(otherKeys.count) signed by another key"]
        lines += problems.map { "  \($0)" }
        lines += otherKeys.sorted { $0.key < $1.key }.map { "  record #\($0.key): signed by key \($0.value), not the one given" }
        return lines.joined(separator: "\n")
    }
}
