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
        case .unknown: nil
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

/// Version vectors per entity, kept beside the folded state.
struct EntityContexts {
    private(set) var vectors: [EntityKey: VersionVector] = [:]
    /// The sale each ticket is for, so a ticket's creator merchant is known.
    private(set) var ticketSale: [TicketId: SaleId] = [:]

    mutating func add(_ event: Event) {
        guard let key = EntityKey.of(event) else { return }
        vectors[key, default: VersionVector()].add(event.dot)
        if case .refundRequested(let r) = event.body { ticketSale[TicketId(event.dot)] = r.sale }
    }

    func context(_ key: EntityKey) -> VersionVector { vectors[key] ?? VersionVector() }
}
