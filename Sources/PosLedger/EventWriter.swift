// Writing events: one writer per replica assigns dots (its journal's
// sequence numbers) and HLC timestamps, and refuses event types its replica
// may not write. Central uses `Event.checkAuthority()` on pushed events.

public struct EventWriter: Sendable, Equatable {
    public let replica: ReplicaId
    /// Sequence number of the last event written (0 before the first).
    public private(set) var lastSeq: UInt64
    public private(set) var clock: HybridLogicalClock

    /// Resumes a writer from its journal's last sequence number and HLC.
    public init(replica: ReplicaId, lastSeq: UInt64 = 0, clock: HybridLogicalClock = HybridLogicalClock()) {
        self.replica = replica
        self.lastSeq = lastSeq
        self.clock = clock
    }

    /// Stamps `body` with the next dot and an HLC timestamp. `context` is what
    /// the writer has seen of the entity (`LedgerState.context(of:)`).
    public mutating func write(_ body: EventBody, context: VersionVector, wallMillis: Int64) throws(LedgerError)
        -> Event
    {
        if let kind = body.kind, !kind.mayBeWritten(by: replica) {
            throw LedgerError(.unauthorizedWriter, "\(replica) may not write \(kind)", field: "type")
        }
        guard lastSeq < Limits.sequenceMax else {
            throw LedgerError(.valueOutOfRange, "sequence numbers exhausted", field: "seq")
        }
        var nextClock = clock
        let hlc = try nextClock.now(wallMillis: wallMillis)
        let dot = Dot(unchecked: replica, lastSeq + 1)
        lastSeq += 1
        clock = nextClock
        return Event(dot: dot, hlc: hlc, context: context, body: body)
    }

    /// Merges a received event's timestamp into the clock (refuses one too far ahead).
    public mutating func observe(_ event: Event, wallMillis: Int64) throws(LedgerError) {
        _ = try clock.receive(event.hlc, wallMillis: wallMillis)
    }
}

extension Event {
    /// Central's check on a pushed event: its type must be one its writer may write.
    public func checkAuthority() throws(LedgerError) {
        if let kind = body.kind, !kind.mayBeWritten(by: dot.replica) {
            throw LedgerError(.unauthorizedWriter, "\(dot.replica) may not write \(kind) (event \(dot))",
                              field: "type")
        }
    }
}

extension LedgerState {
    /// The causal context for a new event about `sale`: every known event of it.
    public func context(of sale: SaleId) -> VersionVector {
        var v = VersionVector()
        guard let group = saleGroups[sale] else { return v }
        if let capture = group.capture { v.add(capture.dot) }
        for e in group.outcomes { v.add(e.dot) }
        return v
    }

    /// The causal context for a new event about `ticket`: every known event of it.
    public func context(of ticket: TicketId) -> VersionVector {
        var v = VersionVector()
        guard let group = ticketGroups[ticket] else { return v }
        if let request = group.request { v.add(request.dot) }
        for e in group.statusEvents { v.add(e.dot) }
        for dot in group.notes.dots { v.add(dot) }
        return v
    }
}
