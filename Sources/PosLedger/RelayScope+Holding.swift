// Which held events a terminal keeps at a scope floor (sync-protocol.md,
// "Terminal checkpoint and compaction"), and the sale each event belongs to
// (the checkpoint's groups). Pure: a function of the event set, the floor and
// the terminal's id, so the same set and floor give the same kept set whether
// a terminal folds its journals or its checkpoint.

/// The sale each event of a set belongs to, read from the captures and refund
/// requests the set holds: a capture's own sale; an outcome's or a refund
/// request's named sale; a ticket event's request's sale. One rule, used by
/// `RelayScope.kept` and by the terminal checkpoint's groups.
public struct SaleGroups: Sendable {
    /// Every capture of the set: its sale and duplicate key.
    public private(set) var captures: [SaleId: DuplicateKey] = [:]
    /// Every refund request of the set: its ticket and the sale it names.
    public private(set) var requests: [TicketId: SaleId] = [:]

    public init<S: Sequence>(_ events: S) where S.Element == Event {
        for e in events { note(e) }
    }

    /// Takes in one more event of the set.
    public mutating func note(_ e: Event) {
        switch e.body {
        case .saleCaptured(let c): captures[SaleId(e.dot)] = c.duplicateKey
        case .refundRequested(let r): requests[TicketId(e.dot)] = r.sale
        default: break
        }
    }

    /// The sale of an event, and whether the event is its capture or an outcome; nil for an event of
    /// no sale (a `sequence-void`, an unknown type) or a ticket event whose request is not in the set.
    public func sale(of e: Event) -> (id: SaleId, captureOrOutcome: Bool)? {
        switch e.body {
        case .saleCaptured:
            return (SaleId(e.dot), true)
        case .saleConfirmed(let id), .saleDeclined(let id), .saleExpired(let id):
            return (id, true)
        case .refundRequested(let r):
            return (r.sale, false)
        case .noteAdded(let t, _), .refundApproved(let t, _), .refundRejected(let t), .refundCancelled(let t),
             .refundCompleted(let t), .refundEscalated(let t):
            return requests[t].map { ($0, false) }
        case .sequenceVoid, .unknown:
            return nil
        }
    }

    /// The group of an event in a terminal checkpoint: its sale when that sale's capture is in the set;
    /// nil (the sentinel group) for an event of no sale, or whose sale's capture (or whose ticket's
    /// request) is not in the set — the events `kept` keeps by their own time (its rule 4).
    public func group(of e: Event) -> SaleId? {
        guard let s = sale(of: e), captures[s.id] != nil else { return nil }
        return s.id
    }
}

extension RelayScope {
    /// The events of `events` a terminal `own` keeps at `floorMillis`:
    /// - its own events (retention of its outbound journal decides when they go), and
    ///   the whole component and key group of every sale its own events belong to
    ///   (its own captures, and the sales of its own refund requests, decisions and notes);
    /// - for every sale whose capture is held and in scope (capture HLC ms ≥ floor):
    ///   the sale's component (capture, outcomes, refund requests naming it, their
    ///   status events and notes) and its key group (every held capture sharing the
    ///   capture's duplicate key, with that capture's outcomes);
    /// - every event whose sale's capture (or whose ticket's request) is not held,
    ///   and every event of no sale (a `sequence-void`, a type this version does not
    ///   know), while the event's own HLC ms are ≥ floor: a capture is always older
    ///   than the events written after seeing it, so an older one names a sale out of scope.
    /// A floor of 0 keeps everything. The order of `events` is kept. The terminal's own events are those of
    /// `own` from sequence `ownFrom` on (its outbound journal's first): an own event below it, retired and
    /// sent back by central as a key-group partner, is kept as another terminal's would be.
    public static func kept(_ events: [Event], floorMillis: Int64, own: ReplicaId, ownFrom: UInt64 = 1) -> [Event] {
        guard floorMillis > 0 else { return events }
        let floor = UInt64(floorMillis)
        let groups = SaleGroups(events)
        var inScope = Set<SaleId>()
        var scopeKeys = Set<DuplicateKey>()
        for e in events {
            if case .saleCaptured = e.body, e.hlc.millis >= floor { inScope.insert(SaleId(e.dot)) }
        }
        func isOwn(_ e: Event) -> Bool { e.dot.replica == own && e.dot.seq >= ownFrom }
        for e in events where isOwn(e) {
            if let s = groups.sale(of: e) { inScope.insert(s.id) }
        }
        for id in inScope { if let key = groups.captures[id] { scopeKeys.insert(key) } }
        return events.filter { e in
            if isOwn(e) { return true }
            guard let s = groups.sale(of: e), let key = groups.captures[s.id] else { return e.hlc.millis >= floor }
            if inScope.contains(s.id) { return true }
            return s.captureOrOutcome && scopeKeys.contains(key)
        }
    }
}
