// Reservations (OCPP 1.6 edition 2, §3.13, §5.13 ReserveNow, §5.5 CancelReservation): a connector held
// for one idTag (or the idTags of one parentIdTag) until its expiry date, the reservation ending when that
// idTag starts a transaction there. Pure values: the OCPP client decides with them and stores them as
// JSON in its state directory.

public struct ReserveNowReq: Codable, Sendable, Equatable {
    public var connectorId: Int
    public var expiryDate: String
    public var idTag: String
    public var parentIdTag: String?
    public var reservationId: Int
    public init(connectorId: Int, expiryDate: String, idTag: String, parentIdTag: String? = nil, reservationId: Int) {
        self.connectorId = connectorId; self.expiryDate = expiryDate; self.idTag = idTag; self.parentIdTag = parentIdTag;
        self.reservationId = reservationId
    }
}
public enum ReservationStatus: String, Codable, Sendable { case Accepted, Faulted, Occupied, Rejected, Unavailable }
public struct CancelReservationReq: Codable, Sendable, Equatable {
    public var reservationId: Int
    public init(reservationId: Int) { self.reservationId = reservationId }
}
public enum CancelReservationStatus: String, Codable, Sendable { case Accepted, Rejected }

public struct Reservation: Codable, Sendable, Equatable {
    public var id: Int
    /// Gun index (connector − 1).
    public var gun: Int
    public var idTag: String
    public var parentIdTag: String?
    /// Station time (epoch ms) it ends unless used.
    public var expiresAt: Int64
}

public struct Reservations: Codable, Sendable, Equatable {
    public private(set) var held: [Reservation] = []
    public init() {}

    /// What a connector is doing, for ReserveNow's answer.
    public enum ConnectorState: Sendable { case free, occupied, faulted, unavailable }

    public func on(gun g: Int) -> Reservation? { held.first { $0.gun == g } }

    /// ReserveNow (§5.13). A reservation with the id of one held replaces it (on its connector or another);
    /// connector 0 is Rejected (ReserveConnectorZeroSupported is false); a connector that does not exist,
    /// an expiry that does not parse or has passed is Rejected; a faulted connector Faulted, one out of
    /// service Unavailable, one in use or reserved under another id Occupied. The text says why.
    public mutating func reserve(_ r: ReserveNowReq, connectors: Int, atMillis now: Int64,
                                 state: (Int) -> ConnectorState) -> (ReservationStatus, String) {
        guard r.connectorId != 0 else { return (.Rejected, "connector 0 cannot be reserved (ReserveConnectorZeroSupported false)") }
        guard r.connectorId >= 1 && r.connectorId <= connectors else {
            return (.Rejected, "no connector \(r.connectorId)")
        }
        guard let expires = Timestamp.parse(r.expiryDate) else { return (.Rejected, "expiryDate '\(r.expiryDate.prefix(40))' is not a date") }
        guard expires > now else { return (.Rejected, "expiryDate \(r.expiryDate) has passed") }
        let g = r.connectorId - 1
        if let other = on(gun: g), other.id != r.reservationId {
            return (.Occupied, "connector \(r.connectorId) is reserved (#\(other.id))")
        }
        switch state(g) {
        case .faulted: return (.Faulted, "connector \(r.connectorId) is faulted")
        case .unavailable: return (.Unavailable, "connector \(r.connectorId) is out of service")
        case .occupied where on(gun: g)?.id != r.reservationId: return (.Occupied, "connector \(r.connectorId) is in use")
        default: break
        }
        held.removeAll { $0.id == r.reservationId }
        held.append(Reservation(id: r.reservationId, gun: g, idTag: r.idTag, parentIdTag: r.parentIdTag, expiresAt: expires))
        return (.Accepted, "connector \(r.connectorId) reserved for \(r.idTag) until \(r.expiryDate) (#\(r.reservationId))")
    }

    /// CancelReservation (§5.5): the reservation it names ends; Rejected when none has that id.
    public mutating func cancel(_ id: Int) -> Reservation? {
        guard let i = held.firstIndex(where: { $0.id == id }) else { return nil }
        return held.remove(at: i)
    }

    /// The reservations whose expiry has come, removed.
    public mutating func expire(atMillis now: Int64) -> [Reservation] {
        let gone = held.filter { $0.expiresAt <= now }
        held.removeAll { $0.expiresAt <= now }
        return gone
    }

    /// Whether `tag` (whose parent is `parent`, when known) may use gun `g`: any idTag on a gun not
    /// reserved; on a reserved one the reservation's idTag or one with its parentIdTag (IdTokens compare
    /// without regard to case).
    public func admits(_ tag: String, parent: String?, gun g: Int) -> Bool {
        guard let r = on(gun: g) else { return true }
        if r.idTag.lowercased() == tag.lowercased() { return true }
        if let p = r.parentIdTag, let parent, p.lowercased() == parent.lowercased() { return true }
        return false
    }

    /// The reservation on gun `g` is used by a transaction that starts there: it ends (its id goes in
    /// StartTransaction).
    public mutating func use(gun g: Int) -> Reservation? {
        guard let i = held.firstIndex(where: { $0.gun == g }) else { return nil }
        return held.remove(at: i)
    }
}
