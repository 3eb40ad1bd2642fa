import PosWire

extension DeliveryLog {
    /// What `possync central notifications` shows: the unfinished records and the last finished
    /// ones (archived and not), with full counts.
    public struct Listing: Sendable, Equatable {
        /// Queued or retrying, in queue order.
        public var pending: [NotificationRecord] = []
        /// The last `limit` delivered, oldest first.
        public var delivered: [NotificationRecord] = []
        /// The last `limit` dead-lettered, oldest first; an attempt with no recorded outcome is
        /// shown here as `outcome-unknown` (the next pass records it so).
        public var deadLetter: [NotificationRecord] = []
        public var pendingCount = 0
        public var deliveredCount = 0
        public var deadLetterCount = 0
        /// Central journal positions 1 … this are derived.
        public var derivedThrough: UInt64 = 0
    }

    /// Reads `done.jsonl` through (memory: one id per archived record, for the duplicates an
    /// interrupted archive may leave) and the outbox.
    public func listing(limit: Int) throws(SyncError) -> Listing {
        precondition(limit >= 0)
        var l = Listing(derivedThrough: cursor.cursor)
        func keep(_ r: NotificationRecord, in list: inout [NotificationRecord]) {
            list.append(r)
            if list.count > limit { list.removeFirst() }
        }
        func add(_ r: NotificationRecord) {
            switch r.state {
            case .delivered: l.deliveredCount += 1; keep(r, in: &l.delivered)
            case .deadLetter: l.deadLetterCount += 1; keep(r, in: &l.deadLetter)
            case .attempting:
                var unknown = r
                unknown.state = .deadLetter
                unknown.reason = .outcomeUnknown
                unknown.detail = "no outcome was recorded for attempt \(r.attempts) (the process stopped while delivering): not sent again"
                l.deadLetterCount += 1
                keep(unknown, in: &l.deadLetter)
            case .queued, .retrying: l.pendingCount += 1; if l.pending.count < limit { l.pending.append(r) }
            }
        }
        let outboxIDs = Set(table.order)
        try forEachArchived { r in if !outboxIDs.contains(r.notification.id) { add(r) } }
        for r in records { add(r) }
        return l
    }
}
