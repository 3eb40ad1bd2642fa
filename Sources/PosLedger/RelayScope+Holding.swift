// Which held events a terminal keeps at a scope floor (sync-protocol.md,
// "Terminal checkpoint and compaction"). Pure: a function of the event set,
// the floor and the terminal's id, so the same set and floor give the same
// kept set whether a terminal folds its journals or its checkpoint.

extension RelayScope {
    /// The events of `events` a terminal `own` keeps at `floorMillis`:
    /// - its own events (retention of its outbound journal decides when they go), and
    ///   the whole component and key group of every sale whose capture is its own;
    /// - for every sale whose capture is held and in scope (capture HLC ms ≥ floor):
    ///   the sale's component (capture, outcomes, refund requests naming it, their
    ///   status events and notes) and its key group (every held capture sharing the
    ///   capture's duplicate key, with that capture's outcomes);
    /// - every event whose sale's capture (or whose ticket's request) is not held,
    ///   and every event of no sale (a `sequence-void`, a type this version does not
    ///   know), while the event's own HLC ms are ≥ floor: a capture is always older
    ///   than the events written after seeing it, so an older one names a sale out of scope.
    /// A floor of 0 keeps everything. The order of `events` is kept.
    public static func kept(_ events: [Event], floorMillis: Int64, own: ReplicaId) -> [Event] {
        guard floorMillis > 0 else { return events }
        let floor = UInt64(floorMillis)
        var captures: [SaleId: DuplicateKey] = [:]
        var requests: [TicketId: SaleId] = [:]
        var inScope = Set<SaleId>()
        var scopeKeys = Set<DuplicateKey>()
        for e in events {
            switch e.body {
            case .saleCaptured(let c):
                let id = SaleId(e.dot)
                captures[id] = c.duplicateKey
                if e.dot.replica == own || e.hlc.millis >= floor {
                    inScope.insert(id)
                    scopeKeys.insert(c.duplicateKey)
                }
            case .refundRequested(let r):
                requests[TicketId(e.dot)] = r.sale
            default:
                break
            }
        }
        return events.filter { e in
            if e.dot.replica == own { return true }
            let sale: SaleId?
            var captureOrOutcome = false
            switch e.body {
            case .saleCaptured:
                sale = SaleId(e.dot)
                captureOrOutcome = true
            case .saleConfirmed(let id), .saleDeclined(let id), .saleExpired(let id):
                sale = id
                captureOrOutcome = true
            case .refundRequested(let r):
                sale = r.sale
            case .noteAdded(let t, _), .refundApproved(let t, _), .refundRejected(let t), .refundCancelled(let t),
                 .refundCompleted(let t), .refundEscalated(let t):
                sale = requests[t]
            case .sequenceVoid, .unknown:
                sale = nil
            }
            guard let sale, let key = captures[sale] else { return e.hlc.millis >= floor }
            if inScope.contains(sale) { return true }
            return captureOrOutcome && scopeKeys.contains(key)
        }
    }
}
