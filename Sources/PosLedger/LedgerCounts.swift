// What `terminal status` counts over a folded state: tickets by status and
// conflict records by kind. A terminal checkpoint stores these counts over its
// state (sync-protocol.md "Terminal checkpoint and compaction", Status counts),
// so status can add the journal tail's changes to them without folding the
// whole state: counts add and subtract over disjoint sets of sale groups.

public struct LedgerCounts: Equatable, Sendable {
    /// Every ticket status, in the order a checkpoint stores their counts.
    public static let ticketStatuses: [TicketStatus] =
        [.requested, .approved, .rejected, .escalated, .cancelled, .completed, .held(.dispute), .held(.overRefund), .held(.saleNotPaid), .pendingSale]
    /// Every conflict kind, in the order a checkpoint stores their counts.
    public static let conflictKinds: [ConflictRecord.Kind] = ConflictRecord.Kind.allCases

    /// Tickets per status, indexed as `ticketStatuses` (may be negative only as an intermediate difference).
    public var tickets: [Int64]
    /// Conflict records per kind, indexed as `conflictKinds`.
    public var conflicts: [Int64]

    public init() {
        tickets = Array(repeating: 0, count: Self.ticketStatuses.count)
        conflicts = Array(repeating: 0, count: Self.conflictKinds.count)
    }

    /// Counts as stored (`tickets` and `conflicts` of the sizes above, or nil).
    public init?(tickets: [Int64], conflicts: [Int64]) {
        guard tickets.count == Self.ticketStatuses.count, conflicts.count == Self.conflictKinds.count else { return nil }
        self.tickets = tickets
        self.conflicts = conflicts
    }

    /// The counts over a folded state.
    public init(_ state: LedgerState) {
        self.init()
        for t in state.tickets.values { tickets[Self.ticketIndex[t.status]!] += 1 }
        for c in state.conflicts { conflicts[Self.kindIndex[c.kind]!] += 1 }
    }

    private static let ticketIndex = Dictionary(uniqueKeysWithValues: ticketStatuses.enumerated().map { ($0.element, $0.offset) })
    private static let kindIndex = Dictionary(uniqueKeysWithValues: conflictKinds.enumerated().map { ($0.element, $0.offset) })

    public static func + (l: LedgerCounts, r: LedgerCounts) -> LedgerCounts {
        LedgerCounts(tickets: zip(l.tickets, r.tickets).map(+), conflicts: zip(l.conflicts, r.conflicts).map(+))!
    }

    public static func - (l: LedgerCounts, r: LedgerCounts) -> LedgerCounts {
        LedgerCounts(tickets: zip(l.tickets, r.tickets).map(-), conflicts: zip(l.conflicts, r.conflicts).map(-))!
    }

    /// True when no count is negative (a difference that went below zero did not line up).
    public var isValid: Bool { tickets.allSatisfy { $0 >= 0 } && conflicts.allSatisfy { $0 >= 0 } }

    /// Tickets by status name (`TicketStatus.description`), statuses with none left out.
    public var ticketsByStatus: [String: Int] {
        var out: [String: Int] = [:]
        for (i, n) in tickets.enumerated() where n != 0 { out[Self.ticketStatuses[i].description] = Int(n) }
        return out
    }

    /// Conflict records by kind name, kinds with none left out.
    public var conflictsByKind: [String: Int] {
        var out: [String: Int] = [:]
        for (i, n) in conflicts.enumerated() where n != 0 { out[Self.conflictKinds[i].rawValue] = Int(n) }
        return out
    }

    /// All conflict records.
    public var conflictTotal: Int { Int(conflicts.reduce(0, +)) }
}
