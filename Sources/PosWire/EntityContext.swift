import PosLedger

/// The entity an event belongs to, and the causal context a writer gives a
/// new event: the version vector of every event it knows on that entity.
/// A refund ticket's events belong to the ticket; a request's context also
/// covers what the writer knew of the sale.
public enum EntityKey: Hashable, Sendable, CustomStringConvertible {
    case sale(SaleId)
    case ticket(TicketId)

    public var description: String {
        switch self {
        case .sale(let s): "\(s)"
        case .ticket(let t): "\(t)"
        }
    }

    public static func of(_ event: Event) -> EntityKey? {
        switch event.body {
        case .saleCaptured: .sale(SaleId(event.dot))
        case .saleConfirmed(let s), .saleDeclined(let s), .saleExpired(let s): .sale(s)
        case .refundRequested: .ticket(TicketId(event.dot))
        case .refundApproved(let t, _), .refundRejected(let t), .refundCancelled(let t),
             .refundCompleted(let t), .refundEscalated(let t), .noteAdded(let t, _): .ticket(t)
        case .unknown, .sequenceVoid: nil
        }
    }

    /// The terminal whose merchant owns the entity (the replica that created it).
    public var creator: ReplicaId {
        switch self {
        case .sale(let s): s.dot.replica
        case .ticket(let t): t.dot.replica
        }
    }
}

extension LedgerState {
    /// The causal context a writer gives a new event: every event it holds of
    /// the event's entity (a refund request: of the sale it is for).
    package func writerContext(for body: EventBody, dot: Dot) -> VersionVector {
        switch EntityKey.of(Event(dot: dot, hlc: .zero, context: VersionVector(), body: body)) {
        case .sale(let sale)?: return context(of: sale)
        case .ticket(let ticket)?:
            if case .refundRequested(let r) = body { return context(of: r.sale) }
            return context(of: ticket)
        case nil: return VersionVector()
        }
    }

    package func context(of key: EntityKey) -> VersionVector {
        switch key {
        case .sale(let s): context(of: s)
        case .ticket(let t): context(of: t)
        }
    }
}
