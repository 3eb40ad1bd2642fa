// Identifiers, all generated offline and unique without coordination.
// A replica id names a writer; a dot (replica, seq) names one event; a sale
// is named by the dot of its capture and a ticket by the dot of its request.

/// A writer of events. Central is replica 0; terminals are 1...Limits.terminalIdMax,
/// assigned by central at enrollment (a compact number keeps return codes short).
public struct ReplicaId: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32

    public static let central = ReplicaId(unchecked: 0)

    public init(_ rawValue: UInt32) throws(LedgerError) {
        guard rawValue <= Limits.terminalIdMax else {
            throw LedgerError(.valueOutOfRange,
                              "replica id \(rawValue) exceeds \(Limits.terminalIdMax)", field: "replica")
        }
        self.rawValue = rawValue
    }

    /// A terminal id: 1...Limits.terminalIdMax.
    public static func terminal(_ rawValue: UInt32) throws(LedgerError) -> ReplicaId {
        guard rawValue >= 1 else {
            throw LedgerError(.valueOutOfRange, "terminal id must be >= 1 (0 is central)", field: "replica")
        }
        return try ReplicaId(rawValue)
    }

    init(unchecked rawValue: UInt32) { self.rawValue = rawValue }

    public var isCentral: Bool { rawValue == 0 }
    public var description: String { isCentral ? "central" : "t\(rawValue)" }
    public static func < (l: ReplicaId, r: ReplicaId) -> Bool { l.rawValue < r.rawValue }
}

/// One event's identity: its writer and its sequence number (1...Limits.sequenceMax)
/// in that writer's journal.
public struct Dot: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let replica: ReplicaId
    public let seq: UInt64

    public init(replica: ReplicaId, seq: UInt64) throws(LedgerError) {
        guard seq >= 1, seq <= Limits.sequenceMax else {
            throw LedgerError(.valueOutOfRange, "sequence \(seq) outside 1...\(Limits.sequenceMax)", field: "seq")
        }
        self.replica = replica
        self.seq = seq
    }

    init(unchecked replica: ReplicaId, _ seq: UInt64) {
        self.replica = replica
        self.seq = seq
    }

    /// "3:17" — replica raw value, colon, sequence number.
    public var description: String { "\(replica.rawValue):\(seq)" }

    public static func < (l: Dot, r: Dot) -> Bool {
        (l.replica.rawValue, l.seq) < (r.replica.rawValue, r.seq)
    }

    /// The dot as one word, the replica above 40 bits of sequence: distinct for every
    /// valid dot (replica <= `Limits.terminalIdMax` < 2^20, seq <= `Limits.sequenceMax`
    /// < 2^40; a test checks both bounds), so hashing feeds the hasher one
    /// word. Dictionaries and sets keyed by dots, sales and tickets are the fold's
    /// hottest path: one seeded SipHash of 8 bytes (`UInt64._rawHashValue(seed:)`)
    /// instead of a streaming hasher fed two fields. Equality stays field by field.
    /// Ordered as dots are (replica, then sequence), so sorting by it sorts by dot.
    @inline(__always)
    var hashWord: UInt64 { UInt64(replica.rawValue) << 40 | seq }

    public func hash(into hasher: inout Hasher) { hasher.combine(hashWord) }
    // Consistent with `hash(into:)`: UInt64's one-shot hash equals a hasher fed the same word.
    public func _rawHashValue(seed: Int) -> Int { hashWord._rawHashValue(seed: seed) }
}

/// A sale is named by the dot of its `saleCaptured` event.
public struct SaleId: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let dot: Dot
    public init(_ dot: Dot) { self.dot = dot }
    public var description: String { "sale \(dot)" }
    public static func < (l: SaleId, r: SaleId) -> Bool { l.dot < r.dot }
    public func hash(into hasher: inout Hasher) { dot.hash(into: &hasher) }
    public func _rawHashValue(seed: Int) -> Int { dot._rawHashValue(seed: seed) }
    /// The code printed on the receipt for returns.
    public var returnCode: ReturnCode { ReturnCode(sale: self) }
}

/// A refund ticket is named by the dot of its `refundRequested` event.
public struct TicketId: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let dot: Dot
    public init(_ dot: Dot) { self.dot = dot }
    public var description: String { "ticket \(dot)" }
    public static func < (l: TicketId, r: TicketId) -> Bool { l.dot < r.dot }
    public func hash(into hasher: inout Hasher) { dot.hash(into: &hasher) }
    public func _rawHashValue(seed: Int) -> Int { dot._rawHashValue(seed: seed) }
    public var ticketNumber: TicketNumber { TicketNumber(ticket: self) }
}

/// The ticket number given to the customer: "<replica>-<seq>-<check>", e.g.
/// "42-1078-5" — short enough to read out over the phone. The check digit is
/// the Damm digit of the same digit string a return code uses, so a misheard
/// digit or swapped pair is rejected.
public struct TicketNumber: Hashable, Sendable, CustomStringConvertible {
    public let ticket: TicketId

    public init(ticket: TicketId) { self.ticket = ticket }

    public var text: String {
        let digits = ReturnCode.payloadDigits(ticket.dot)
        return "\(ticket.dot.replica.rawValue)-\(ticket.dot.seq)-\(Damm.checkDigit(digits))"
    }

    public var description: String { text }

    /// Parses "42-1078-5" (spaces ignored).
    public init(parsing text: String) throws(LedgerError) {
        let parts = text.filter { $0 != " " }.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3,
              let replica = UInt32(parts[0]), let seq = UInt64(parts[1]),
              parts[2].count == 1, let check = UInt8(parts[2]),
              parts[0].count <= 6, parts[1].count <= 12,
              String(replica) == parts[0], String(seq) == parts[1]
        else {
            throw LedgerError(.invalidReturnCode, "ticket number must look like 42-1078-5", field: "ticketNo")
        }
        let dot = try Dot(replica: try ReplicaId(replica), seq: seq)
        guard Damm.checkDigit(ReturnCode.payloadDigits(dot)) == check else {
            throw LedgerError(.checkDigitMismatch, "ticket number check digit does not match", field: "ticketNo")
        }
        ticket = TicketId(dot)
    }
}
