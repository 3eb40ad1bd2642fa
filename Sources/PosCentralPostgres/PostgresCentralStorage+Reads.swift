import NIOCore
import PostgresNIO
import PosCentral
import PosLedger
import PosWire

// Reads: the resident fold loaded by indexed queries (a sale's component by
// events_by_sale, the captures sharing a payment code by
// events_by_duplicate_key: never a scan of the merchant), digests, the
// journal order by position.

extension PostgresCentralStorage {
    public func prepare(_ event: Event) throws(SyncError) {
        try throwPending()
        let c = EventComponent(event)
        if let sale = c.sale { try loadSale(sale) }
        if let key = c.duplicateKey, let m = try merchant(of: event.dot.replica) { try loadKey(key, merchant: m) }
        if let ticket = c.ticket { try loadTicket(ticket) }
    }

    /// A push's events: their sales' components and the captures sharing their codes in one query per
    /// merchant and round (`loadSales`), then their tickets one at a time (rare in a push).
    public func prepare(_ events: [Event]) throws(SyncError) {
        try throwPending()
        var sales = Set<SaleId>()
        var keys: [String: Set<DuplicateKey>] = [:]
        var tickets: [TicketId] = []
        for event in events {
            let c = EventComponent(event)
            if let s = c.sale { sales.insert(s) }
            if let k = c.duplicateKey, let m = try merchant(of: event.dot.replica) { keys[m, default: []].insert(k) }
            if let t = c.ticket { tickets.append(t) }
        }
        try loadSales(sales, keys: keys)
        for t in tickets { try loadTicket(t) }
    }

    public func prepare(_ key: EntityKey) throws(SyncError) {
        try throwPending()
        switch key {
        case .sale(let s): try loadSale(s)
        case .ticket(let t): try loadTicket(t)
        }
    }

    public func didRead() {
        if residentDots.count > Self.residentEventsMax { dropResident() }
    }

    /// Folds rows of (record) not resident yet.
    private func applyRows(_ rows: [PostgresRow], _ what: String) throws(SyncError) -> Int {
        var records: [ByteBuffer] = []
        for row in rows { records.append(try decode(row, ByteBuffer.self, what)) }
        try applyRecords(records, what)
        return rows.count
    }

    /// Folds the records not resident yet.
    private func applyRecords(_ records: [ByteBuffer], _ what: String) throws(SyncError) {
        var events: [Event] = []
        for bytes in records {
            let event: Event
            do { event = try RecordCodec.decode(Array(bytes.readableBytesView), context: recordContext) } catch {
                throw SyncError(error, location: "\(url.redacted) \(what)")
            }
            guard residentDots.insert(event.dot).inserted else { continue }
            events.append(event)
        }
        if !events.isEmpty { resident.apply(events) }
    }

    /// `loadSale` of every sale and `loadKey` of every (merchant, key), as sets: each round reads the
    /// components not loaded yet (one query per merchant, by `events_by_sale`), then the captures under
    /// the codes not checked yet (one query per merchant, by `events_by_duplicate_key`), whose sales the
    /// next round loads, until nothing new is named. A failure drops the resident fold (a half-loaded
    /// closure must not count as checked).
    func loadSales(_ sales: Set<SaleId>, keys: [String: Set<DuplicateKey>]) throws(SyncError) {
        do throws(SyncError) {
            var sales = sales, keys = keys
            while !sales.isEmpty || !keys.isEmpty {
                var byMerchant: [String: [SaleId]] = [:]
                for s in sales where !loadedSales.contains(s) {
                    if let m = try merchant(of: s.dot.replica) { byMerchant[m, default: []].append(s) }
                }
                for (m, batch) in byMerchant.sorted(by: { $0.key < $1.key }) {
                    let what = "table events, components of \(batch.count) sales of merchant \(m)"
                    var counts: [SaleId: Int] = [:]
                    var records: [ByteBuffer] = []
                    for row in try session.query(Self.componentsQuery(merchant: m, sales: batch), what) {
                        let (r, q, record) = try decode(row, (Int32, Int64, ByteBuffer).self, what)
                        counts[SaleId(try dot(r, q, what)), default: 0] += 1
                        records.append(record)
                    }
                    try applyRecords(records, what)
                    for s in batch {
                        componentCounts[s] = counts[s] ?? 0
                        loadedSales.insert(s)
                    }
                }
                // The codes of the captures just loaded, then every capture under a code not checked yet.
                for s in sales {
                    if case .saleCaptured(let c)? = resident.capture(of: s)?.body, let m = try merchant(of: s.dot.replica) { keys[m, default: []].insert(c.duplicateKey) }
                }
                sales = []
                for (m, ks) in keys.sorted(by: { $0.key < $1.key }) {
                    let fresh = ks.filter { !checkedKeys.contains($0) }.sorted()
                    guard !fresh.isEmpty else { continue }
                    let what = "table events, captures under \(fresh.count) payment codes of merchant \(m)"
                    var counts: [DuplicateKey: Int] = [:]
                    for row in try session.query(Self.capturesQuery(merchant: m, keys: fresh), what) {
                        let (k, r, q) = try decode(row, (ByteBuffer, Int32, Int64).self, what)
                        guard let key = DuplicateKey(bytes: Array(k.readableBytesView)) else {
                            throw SyncError(.malformed, "\(what): a duplicate_key of \(k.readableBytes) bytes (expected \(Limits.duplicateKeyBytes))", location: url.redacted)
                        }
                        counts[key, default: 0] += 1
                        let s = SaleId(try dot(r, q, what))
                        if !loadedSales.contains(s) { sales.insert(s) }
                    }
                    for k in fresh {
                        keyCounts[k] = counts[k] ?? 0
                        checkedKeys.insert(k)
                    }
                }
                keys = [:]
            }
        } catch {
            dropResident()
            throw error
        }
    }

    /// Every event of the sales' components (one merchant's), in position order: one index probe of
    /// `events_by_sale` per sale, two array parameters whatever the number of sales.
    static func componentsQuery(merchant m: String, sales: [SaleId]) -> PostgresQuery {
        """
        SELECT e.sale_replica, e.sale_seq, e.record
        FROM UNNEST(\(sales.map { Int32($0.dot.replica.rawValue) }), \(sales.map { Int64($0.dot.seq) })) AS u(r, q)
        JOIN events e ON e.merchant = \(m) AND e.sale_replica = u.r AND e.sale_seq = u.q
        ORDER BY e.position
        """
    }

    /// The captures under the payment codes (one merchant's): one index probe of `events_by_duplicate_key` per code.
    static func capturesQuery(merchant m: String, keys: [DuplicateKey]) -> PostgresQuery {
        """
        SELECT duplicate_key, replica, seq FROM events
        WHERE merchant = \(m) AND duplicate_key IS NOT NULL AND duplicate_key = ANY(\(keys.map { ByteBuffer(bytes: $0.bytes) }))
        """
    }

    /// A sale's component, then the captures sharing its payment code. A sale counts as loaded
    /// only once its query succeeded.
    func loadSale(_ s: SaleId) throws(SyncError) {
        guard let m = try merchant(of: s.dot.replica) else { return }
        if !loadedSales.contains(s) {
            let rows = try session.query("""
                SELECT record FROM events WHERE merchant = \(m) AND sale_replica = \(Int32(s.dot.replica.rawValue)) AND sale_seq = \(Int64(s.dot.seq))
                ORDER BY position
                """, "table events, \(s)")
            componentCounts[s] = try applyRows(rows, "table events, \(s)")
            loadedSales.insert(s)
        }
        if case .saleCaptured(let c)? = resident.capture(of: s)?.body { try loadKey(c.duplicateKey, merchant: m) }
    }

    /// Every sale with a capture under the key. The key counts as checked while its sales load,
    /// and stays so only if all of them loaded.
    func loadKey(_ k: DuplicateKey, merchant m: String) throws(SyncError) {
        guard checkedKeys.insert(k).inserted else { return }
        do throws(SyncError) {
            let rows = try session.query("""
                SELECT replica, seq FROM events WHERE merchant = \(m) AND duplicate_key = \(ByteBuffer(bytes: k.bytes)) ORDER BY replica, seq
                """, "table events, duplicate key \(k)")
            keyCounts[k] = rows.count
            for row in rows {
                let (r, seq) = try decode(row, (Int32, Int64).self, "table events, duplicate key \(k)")
                try loadSale(SaleId(try dot(r, seq, "table events, duplicate key \(k)")))
            }
        } catch {
            checkedKeys.remove(k)
            throw error
        }
    }

    /// A ticket's sale (through its request), or its loose events while no request is held.
    func loadTicket(_ t: TicketId) throws(SyncError) {
        if case .refundRequested(let r)? = resident.request(of: t)?.body {
            try loadSale(r.sale)
            return
        }
        guard !checkedTickets.contains(t) else { return }
        let what = "table events, \(t)"
        let requested = Int16(EventKind.refundRequested.rawValue)
        let request: [PostgresRow]
        let loose: () throws(SyncError) -> [PostgresRow]
        if t.dot.replica.isCentral {
            // A ticket central opened names no merchant: its request (central's own dot, one per number in a
            // database) names the sale; loose events of it were filed under their writer's merchant or ''.
            request = try session.query("""
                SELECT sale_replica, sale_seq FROM events WHERE replica = 0 AND seq = \(Int64(t.dot.seq)) AND kind = \(requested)
                """, what)
            loose = { () throws(SyncError) in
                try self.session.query("""
                    SELECT record FROM events WHERE ticket_replica = 0 AND ticket_seq = \(Int64(t.dot.seq)) AND sale_seq IS NULL ORDER BY position
                    """, what)
            }
        } else {
            guard let m = try merchant(of: t.dot.replica) else { return }
            request = try session.query("""
                SELECT sale_replica, sale_seq FROM events
                WHERE merchant = \(m) AND replica = \(Int32(t.dot.replica.rawValue)) AND seq = \(Int64(t.dot.seq)) AND kind = \(requested)
                """, what)
            loose = { () throws(SyncError) in
                try self.session.query("""
                    SELECT record FROM events
                    WHERE merchant IN (\(m), '') AND ticket_replica = \(Int32(t.dot.replica.rawValue)) AND ticket_seq = \(Int64(t.dot.seq)) AND sale_seq IS NULL
                    ORDER BY position
                    """, what)
            }
        }
        if let row = request.first {
            let (r, seq) = try decode(row, (Int32, Int64).self, what)
            try loadSale(SaleId(try dot(r, seq, what)))
        } else {
            _ = try applyRows(try loose(), what)
        }
        checkedTickets.insert(t)
    }

    func dot(_ replica: Int32, _ seq: Int64, _ what: String) throws(SyncError) -> Dot {
        guard replica >= 0, seq >= 1, let r = try? ReplicaId(UInt32(replica)), let d = try? Dot(replica: r, seq: UInt64(seq)) else {
            throw SyncError(.malformed, "\(what): dot \(replica):\(seq) out of range", location: url.redacted)
        }
        return d
    }

    // MARK: - Digests and the journal order

    public func digest(of dot: Dot) throws(SyncError) -> UInt64? {
        try throwPending()
        let (r, s) = (Int32(dot.replica.rawValue), Int64(dot.seq))
        let events: [PostgresRow], skipped: [PostgresRow]
        if dot.replica.isCentral {
            // Central's own numbers are one sequence per database: the number alone names the event.
            events = try session.query("SELECT digest FROM events WHERE replica = 0 AND seq = \(s)", "table events, \(dot)")
            skipped = events.isEmpty ? try session.query("SELECT 1 FROM skipped WHERE replica = 0 AND first_seq <= \(s) AND last_seq >= \(s)", "table skipped, \(dot)") : []
        } else {
            guard let m = try merchant(of: dot.replica) else { return nil }
            events = try session.query("SELECT digest FROM events WHERE merchant = \(m) AND replica = \(r) AND seq = \(s)", "table events, \(dot)")
            skipped = events.isEmpty ? try session.query("""
                SELECT 1 FROM skipped WHERE merchant = \(m) AND replica = \(r) AND first_seq <= \(s) AND last_seq >= \(s)
                """, "table skipped, \(dot)") : []
        }
        if let row = events.first { return UInt64(bitPattern: try decode(row, Int64.self, "table events, \(dot)")) }
        return skipped.isEmpty ? nil : lostDigest
    }

    /// One query per merchant for the events (by the primary key), one more for the dots none holds
    /// (a skipped number holds `lostDigest`); central's own dots one at a time (never re-sent by a terminal).
    public func digests(of dots: [Dot]) throws(SyncError) -> [Dot: UInt64] {
        try throwPending()
        var out: [Dot: UInt64] = [:]
        var byMerchant: [String: [Dot]] = [:]
        for d in dots {
            if let m = try merchant(of: d.replica) { byMerchant[m, default: []].append(d) } else if d.replica.isCentral, let h = try digest(of: d) { out[d] = h }
        }
        for (m, ds) in byMerchant.sorted(by: { $0.key < $1.key }) {
            let what = "table events, digests of \(ds.count) events of merchant \(m)"
            for row in try session.query("""
                SELECT e.replica, e.seq, e.digest
                FROM UNNEST(\(ds.map { Int32($0.replica.rawValue) }), \(ds.map { Int64($0.seq) })) AS u(r, q)
                JOIN events e ON e.merchant = \(m) AND e.replica = u.r AND e.seq = u.q
                """, what) {
                let (r, q, h) = try decode(row, (Int32, Int64, Int64).self, what)
                out[try dot(r, q, what)] = UInt64(bitPattern: h)
            }
            let missing = ds.filter { out[$0] == nil }
            guard !missing.isEmpty else { continue }
            let lost = "table skipped, \(missing.count) numbers of merchant \(m)"
            for row in try session.query("""
                SELECT u.r, u.q
                FROM UNNEST(\(missing.map { Int32($0.replica.rawValue) }), \(missing.map { Int64($0.seq) })) AS u(r, q)
                WHERE EXISTS (SELECT 1 FROM skipped s WHERE s.merchant = \(m) AND s.replica = u.r AND s.first_seq <= u.q AND s.last_seq >= u.q)
                """, lost) {
                let (r, q) = try decode(row, (Int32, Int64).self, lost)
                out[try dot(r, q, lost)] = lostDigest
            }
        }
        return out
    }

    public func scan(after position: UInt64, _ body: (UInt64, [UInt8]) throws(SyncError) -> Bool) throws(SyncError) {
        try throwPending()
        var from = position
        let last = head
        while from < last {
            let rows = try session.query("""
                SELECT position, record FROM events WHERE position > \(Int64(from)) AND position <= \(Int64(last))
                ORDER BY position LIMIT \(Self.pageRowsMax)
                """, "table events, positions after \(from)")
            guard !rows.isEmpty else {
                throw SyncError(.malformed, "table events: positions \(from + 1)...\(last) are missing", location: url.redacted)
            }
            for row in rows {
                let (p, bytes) = try decode(row, (Int64, ByteBuffer).self, "table events, positions after \(from)")
                guard UInt64(p) == from + 1 else {
                    throw SyncError(.malformed, "table events: position \(from + 1) is missing (next held: \(p))", location: url.redacted)
                }
                from = UInt64(p)
                guard try body(from, Array(bytes.readableBytesView)) else { return }
            }
        }
    }

    public func record(at position: UInt64) throws(SyncError) -> [UInt8]? {
        try throwPending()
        guard position >= 1, position <= head else { return nil }
        let rows = try session.query("SELECT record FROM events WHERE position = \(Int64(position))", "table events, position \(position)")
        return try rows.first.map { row throws(SyncError) in Array(try decode(row, ByteBuffer.self, "table events, position \(position)").readableBytesView) }
    }

    // MARK: - The whole state

    public func fullState() throws(SyncError) -> LedgerState {
        try throwPending()
        var state = LedgerState()
        try fold(into: &state)
        return state
    }

    /// Applies every event held to `state`, in position order, `pageRowsMax` at a time.
    func fold(into state: inout LedgerState) throws(SyncError) {
        var events: [Event] = []
        try scan(after: 0) { (position, record) throws(SyncError) -> Bool in
            do throws(LedgerError) { events.append(try RecordCodec.decode(record, context: recordContext)) } catch {
                throw SyncError(error, location: "\(url.redacted) table events, position \(position)")
            }
            if events.count >= Self.pageRowsMax {
                state.apply(events)
                events.removeAll(keepingCapacity: true)
            }
            return true
        }
        state.apply(events)
    }

    /// Captures with no outcome (confirmed, declined, expired) in their component, in sale-id order.
    public func salesAwaitingOutcome() throws(SyncError) -> [SaleId] {
        try throwPending()
        let outcomes = [EventKind.saleConfirmed, .saleDeclined, .saleExpired].map { Int16($0.rawValue) }
        // One query per merchant enrolled here (a capture's merchant is its writer's).
        try loadEnrollments()
        var out: [SaleId] = []
        for m in Set(enrolled.values.map(\.merchant)).sorted() {
            let what = "table events, sales of merchant \(m) awaiting an outcome"
            for row in try session.query("""
                SELECT c.replica, c.seq FROM events c
                WHERE c.merchant = \(m) AND c.kind = \(Int16(EventKind.saleCaptured.rawValue)) AND NOT EXISTS (
                    SELECT 1 FROM events o WHERE o.merchant = \(m) AND o.sale_replica = c.replica AND o.sale_seq = c.seq
                    AND o.kind = ANY(\(outcomes)))
                """, what) {
                let (r, s) = try decode(row, (Int32, Int64).self, what)
                out.append(SaleId(try dot(r, s, what)))
            }
        }
        return out.sorted()
    }
}
