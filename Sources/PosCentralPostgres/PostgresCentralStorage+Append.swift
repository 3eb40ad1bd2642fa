import NIOCore
import PostgresNIO
import PosCentral
import PosLedger
import PosWire

// One append = one transaction (sync-protocol.md, "Central on PostgreSQL"):
// the terminal's row locked and its mark and revocation checked, the lock buckets of the sales,
// payment codes and tickets the events touch taken in ascending order (at most
// appendLockBucketsMax per transaction), what the checks read verified unchanged
// (a query per merchant for the components, one for the codes) and the lock set
// grown until it covers every sale and code the fold now holds with them, the
// marks, the terminal's skipped numbers, the loose ticket events and the fold
// done, and only then the central row locked (UPDATE … RETURNING the positions),
// the events inserted by UNNEST arrays (a bound parameter per column, whatever
// the batch's size: far below the 65,535 parameters a statement takes), the
// sales' folded state written, then COMMIT. A connection cut before COMMIT leaves nothing.

extension PostgresCentralStorage {
    /// Where an event is filed: its merchant, its sale (nil: loose), its ticket, its capture's duplicate key.
    struct Filing {
        var merchant: String
        var sale: SaleId?
        var ticket: TicketId?
        var duplicateKey: DuplicateKey?
    }

    func filing(of event: Event, requests: [TicketId: SaleId]) throws(SyncError) -> Filing {
        let c = EventComponent(event)
        var sale = c.sale
        let ticket = c.ticket, key = c.duplicateKey
        if sale == nil, let t = ticket {
            // A ticket event is filed under its request's sale (in this batch, or resident).
            if let s = requests[t] { sale = s } else if case .refundRequested(let r)? = resident.request(of: t)?.body { sale = r.sale }
        }
        var owner = ""
        if let s = sale, let m = try merchant(of: s.dot.replica) { owner = m }
        else if let m = try merchant(of: event.dot.replica) { owner = m }
        else if let t = ticket, let m = try merchant(of: t.dot.replica) { owner = m }
        return Filing(merchant: owner, sale: owner.isEmpty ? nil : sale, ticket: ticket, duplicateKey: key)
    }

    @discardableResult
    public func append(_ accepted: [AcceptedEvent], skipping gap: ClosedRange<UInt64>?) throws(SyncError) -> ClosedRange<UInt64> {
        precondition(!accepted.isEmpty, "an append of no events")
        try throwPending()
        // The first seq of each terminal in the batch: its mark must be just below it (or below the gap).
        var firstSeq: [ReplicaId: UInt64] = [:]
        for a in accepted where !a.event.dot.replica.isCentral && firstSeq[a.event.dot.replica] == nil { firstSeq[a.event.dot.replica] = a.event.dot.seq }
        let ownEvents = accepted.filter { $0.event.dot.replica.isCentral }
        let strict = !ownEvents.isEmpty
        // Lock buckets a restart takes at once: every restart adds at least one, so there are at most appendLockBucketsMax.
        var lockFirst: [Int32] = []
        var restartWith: [Int32]?
        while true {
            restartWith = nil
            do throws(SyncError) {
                let outcome = try appendTransaction(accepted, gap: gap, firstSeq: firstSeq, ownEvents: ownEvents, strict: strict,
                                                    lockFirst: lockFirst, restartWith: &restartWith)
                return committed(accepted, outcome)
            } catch {
                guard let grown = restartWith else { throw error }
                lockFirst = grown  // rolled back: again, with the larger lock set first
            }
        }
    }

    /// What an append locks and files, computed from the resident fold (inside the transaction: again after
    /// each load under the locks, and on a retry).
    struct AppendPlan {
        var filings: [Filing] = []
        var requests: [TicketId: SaleId] = [:]
        /// The sales whose fold the batch changes: their components, and every held sale sharing their codes.
        var group = Set<SaleId>()
        /// Their payment codes, each with its merchant.
        var keys: [DuplicateKey: String] = [:]
        /// Tickets of loose events (their request not held) and of the batch's requests: their lock orders a
        /// loose writer and the request's append.
        var tickets = Set<TicketId>()
        var looseTickets = Set<TicketId>()

        var lockIds: Set<Int32> {
            var ids = Set<Int32>()
            for s in group { ids.insert(PostgresCentralStorage.lockBucket(sale: s)) }
            for k in keys.keys { ids.insert(PostgresCentralStorage.lockBucket(key: k)) }
            for t in tickets { ids.insert(PostgresCentralStorage.lockBucket(ticket: t)) }
            return ids
        }
    }

    func plan(_ accepted: [AcceptedEvent]) throws(SyncError) -> AppendPlan {
        var p = AppendPlan()
        for a in accepted {
            let f = try filing(of: a.event, requests: p.requests)
            if case .refundRequested(let r) = a.event.body {
                let t = TicketId(a.event.dot)
                p.requests[t] = r.sale
                p.tickets.insert(t)
            }
            if f.sale == nil, let t = f.ticket { p.tickets.insert(t); p.looseTickets.insert(t) }
            p.filings.append(f)
        }
        for f in p.filings {
            if let s = f.sale { p.group.insert(s) }
            if let k = f.duplicateKey { p.keys[k] = f.merchant }
        }
        for s in p.group {
            if case .saleCaptured(let c)? = resident.capture(of: s)?.body, let m = try merchant(of: s.dot.replica) { p.keys[c.duplicateKey] = m }
        }
        for s in loadedSales where !p.group.contains(s) {
            if case .saleCaptured(let c)? = resident.capture(of: s)?.body, p.keys[c.duplicateKey] != nil { p.group.insert(s) }
        }
        return p
    }

    /// The transaction of one append. `lockFirst`: buckets taken before anything else (a restart's). When the
    /// loads under the locks name a sale, code or ticket whose bucket is below one already held, `restartWith`
    /// is set to the larger set and the transaction rolled back (buckets are taken in ascending order only).
    private func appendTransaction(_ accepted: [AcceptedEvent], gap: ClosedRange<UInt64>?, firstSeq: [ReplicaId: UInt64], ownEvents: [AcceptedEvent],
                                   strict: Bool, lockFirst: [Int32], restartWith: inout [Int32]?) throws(SyncError) -> (first: UInt64, next: LedgerState, filings: [Filing], refiled: [Event], refiledCounts: [SaleId: Int]) {
        var restart: [Int32]?
        defer { restartWith = restart }
        return try session.transaction("append \(accepted.count) events from \(accepted[0].event.dot)") { () throws(SyncError) -> (first: UInt64, next: LedgerState, filings: [Filing], refiled: [Event], refiledCounts: [SaleId: Int]) in
            for (terminal, first) in firstSeq.sorted(by: { $0.key < $1.key }) {
                let what = "table terminals, terminal \(terminal.rawValue)"
                guard let m = try merchant(of: terminal) else { throw SyncError(.notEnrolled, "\(what): no such terminal", location: url.redacted) }
                let rows = try session.query("SELECT mark, revoked FROM terminals WHERE merchant = \(m) AND terminal = \(Int32(terminal.rawValue)) FOR UPDATE", what)
                guard let row = rows.first else { throw SyncError(.notEnrolled, "\(what): no such terminal", location: url.redacted) }
                let (mark, revoked) = try decode(row, (Int64, String?).self, what)
                // A revocation committed after the request's check (`revocation(of:)` found none) refuses the
                // append as that check does; the row lock orders this read after `central revoke`'s UPDATE.
                if let note = revoked, seenNotRevoked.contains(terminal) {
                    throw SyncError.revoked(terminal: terminal.rawValue, note: note)
                }
                let held = UInt64(mark)
                let expected = (gap?.lowerBound ?? first) - 1
                guard held == expected else {
                    throw SyncError(.locked, "\(what): the mark is \(held), this batch continues from \(expected): another session of the terminal applied events first; nothing was written (sync again)",
                                    location: url.redacted)
                }
            }
            // The lock set, closed: every sale and code the fold holds with the batch's, and the loose ticket
            // events' requests, read under the locks (a sale or code another process committed is found here).
            var locked = Set<Int32>()
            try lock(lockFirst)
            locked.formUnion(lockFirst)
            var verifiedSales = Set<SaleId>(), verifiedKeys = Set<DuplicateKey>(), recheckedTickets = Set<TicketId>()
            var p: AppendPlan
            while true {
                p = try plan(accepted)
                let missing = p.lockIds.subtracting(locked)
                if !missing.isEmpty {
                    if let top = locked.max(), missing.min()! < top {
                        restart = locked.union(missing).sorted()
                        throw SyncError(.locked, "the lock set grew below a lock already held: rolled back, to take it again in order", location: url.redacted)
                    }
                    let more = missing.sorted()
                    try lock(more)
                    locked.formUnion(more)
                }
                // A loose event's request, read again under its ticket's lock: the request's append takes it too,
                // so the request is either committed (and read here: the event is filed under its sale) or stored
                // after this commits (and its append files this event under the sale: "Loose ticket events").
                var found = false
                for t in p.looseTickets.sorted() where !recheckedTickets.contains(t) {
                    recheckedTickets.insert(t)
                    checkedTickets.remove(t)
                    try loadTicket(t)
                    if resident.request(of: t) != nil {
                        guard !strict else { throw changedError("ticket \(t)'s request") }
                        found = true
                    }
                }
                let sales = p.group.subtracting(verifiedSales)
                let keys = p.keys.filter { !verifiedKeys.contains($0.key) }
                if !found && sales.isEmpty && keys.isEmpty { break }
                try verifyUnchanged(sales: sales, keys: keys, strict: strict)
                verifiedSales.formUnion(sales)
                verifiedKeys.formUnion(keys.keys)
            }
            let filings = p.filings, requests = p.requests
            // Before the central row: what the terminal, sale and code locks above guard and no position names
            // (sync-protocol.md, "Central on PostgreSQL", "An append is one transaction").
            if let gap, let (terminal, _) = firstSeq.first {
                try insertSkipped([(try merchant(of: terminal) ?? "", terminal, gap)])
            }
            var lastSeq: [ReplicaId: UInt64] = [:]
            for a in accepted where !a.event.dot.replica.isCentral { lastSeq[a.event.dot.replica] = a.event.dot.seq }
            // One statement per merchant (a push: one), the merchant a constant (sync-protocol.md, "On Citus").
            var byMerchant: [String: [ReplicaId]] = [:]
            for t in lastSeq.keys { byMerchant[try merchant(of: t) ?? "", default: []].append(t) }
            for (m, terminals) in byMerchant.sorted(by: { $0.key < $1.key }) {
                let ts = terminals.sorted()
                try session.query("""
                    UPDATE terminals t SET mark = m.mark
                    FROM UNNEST(\(ts.map { Int32($0.rawValue) }), \(ts.map { Int64(lastSeq[$0]!) })) AS m(terminal, mark)
                    WHERE t.merchant = \(m) AND t.terminal = m.terminal
                    """, "table terminals, marks of merchant \(m)")
            }
            var refiled: [Event] = [], refiledCounts: [SaleId: Int] = [:]
            if !requests.isEmpty {
                // Ticket events that came before their request (loose) are filed under its sale now.
                let ts = requests.keys.sorted()
                // A loose event was filed under the merchant of its writer or its ticket's writer, which is the sale's
                // (a terminal writes only its merchant's events), or '' (central's own, on a ticket central opened).
                var ms: [String] = []
                for t in ts { ms.append(try merchant(of: requests[t]!.dot.replica) ?? "") }
                let what = "table events, loose ticket events"
                // RETURNING the moved events: the fold and the sale's count take them in this transaction, so the
                // `sales` row written and the next append's counts hold them ("Loose ticket events").
                for row in try session.query("""
                    UPDATE events e SET sale_replica = r.sr, sale_seq = r.ss
                    FROM UNNEST(\(ms), \(ts.map { Int32($0.dot.replica.rawValue) }), \(ts.map { Int64($0.dot.seq) }),
                                \(ts.map { Int32(requests[$0]!.dot.replica.rawValue) }), \(ts.map { Int64(requests[$0]!.dot.seq) })) AS r(m, tr, tq, sr, ss)
                    WHERE e.merchant IN (r.m, '') AND e.ticket_replica = r.tr AND e.ticket_seq = r.tq AND e.sale_seq IS NULL
                    RETURNING e.sale_replica, e.sale_seq, e.record
                    """, what) {
                    let (r, q, record) = try decode(row, (Int32, Int64, ByteBuffer).self, what)
                    refiledCounts[SaleId(try dot(r, q, what)), default: 0] += 1
                    let event: Event
                    do throws(LedgerError) { event = try RecordCodec.decode(Array(record.readableBytesView), context: recordContext) } catch {
                        throw SyncError(error, location: "\(url.redacted) \(what)")
                    }
                    if !residentDots.contains(event.dot) { refiled.append(event) }
                }
            }
            var next = resident
            next.apply(accepted.map(\.event).filter { !residentDots.contains($0.dot) } + refiled)
            // Both statements the central row waits on are built (their arrays encoded) before it is locked.
            let eventsInsert = Self.eventsInsert(accepted, filings)
            // Every held sale whose sale or code is locked: the batch's, and those the loads under the locks brought in.
            let salesUpsert = Self.salesUpsert(try salesRows(p.group, of: next))

            // The central row, locked by this UPDATE until COMMIT: the positions head + 1 ... head + n.
            let hlc = accepted.map(\.event.hlc).max()!
            let n = Int64(accepted.count)
            let row = try session.query("""
                UPDATE central SET head = head + \(n), newest_hlc = greatest(newest_hlc, \(Int64(bitPattern: hlc.rawValue)))
                RETURNING head, central_sequence
                """, "table central")[0]
            let (h, cs) = try decode(row, (Int64, Int64).self, "table central")
            let first = UInt64(h - n) + 1
            if !ownEvents.isEmpty {
                var sequence = UInt64(cs)
                var skipped: [(merchant: String, replica: ReplicaId, range: ClosedRange<UInt64>)] = []
                let range = ownNumbers
                for (a, f) in zip(accepted, filings) where a.event.dot.replica.isCentral {
                    guard range.contains(a.event.dot.seq) else {
                        let used = a.event.dot.seq > range.upperBound ? " (every one of them is used: central records no more events of this shard's merchants)" : ""
                        throw SyncError(.invalidArgument, "table central: central's own number \(a.event.dot.seq) is outside shard \(shard)'s numbers \(range.lowerBound)...\(range.upperBound)\(used): nothing was written",
                                        location: url.redacted)
                    }
                    guard a.event.dot.seq > sequence else {
                        throw SyncError(.locked, "table central: central's own number \(a.event.dot.seq) is taken (central_sequence \(sequence)): another process recorded an event first; nothing was written",
                                        location: url.redacted)
                    }
                    if a.event.dot.seq > sequence + 1 { skipped.append((f.merchant, .central, (sequence + 1)...(a.event.dot.seq - 1))) }
                    sequence = a.event.dot.seq
                }
                try insertSkipped(skipped)
                try session.query("UPDATE central SET central_sequence = \(Int64(sequence))", "table central")
            }
            try session.query(eventsInsert, "table events, positions \(first)...\(first + UInt64(accepted.count) - 1)")
            if let salesUpsert { try session.query(salesUpsert, "table sales") }
            return (first, next, filings, refiled, refiledCounts)
        }
    }

    /// After COMMIT: the caches follow.
    private func committed(_ accepted: [AcceptedEvent], _ outcome: (first: UInt64, next: LedgerState, filings: [Filing], refiled: [Event], refiledCounts: [SaleId: Int])) -> ClosedRange<UInt64> {
        resident = outcome.next
        for (a, f) in zip(accepted, outcome.filings) {
            residentDots.insert(a.event.dot)
            if let s = f.sale { componentCounts[s, default: 0] += 1 }
            if let k = f.duplicateKey { keyCounts[k, default: 0] += 1 }
            if a.event.dot.replica.isCentral { centralSequence = max(centralSequence, a.event.dot.seq) } else { marks[a.event.dot.replica] = a.event.dot.seq }
            newestHLC = max(newestHLC, a.event.hlc)
        }
        for e in outcome.refiled { residentDots.insert(e.dot) }
        for (s, n) in outcome.refiledCounts { componentCounts[s, default: 0] += n }
        head = outcome.first + UInt64(accepted.count) - 1
        if residentDots.count > Self.residentEventsMax { dropResident() }
        return outcome.first...head
    }

    /// The lock buckets' key space: `pg_advisory_xact_lock(appendLockSpace, bucket)`, bucket 0 ..< appendLockBucketsMax.
    static let appendLockSpace: Int32 = 0x5053_4C42  // PSLB in ASCII
    /// At most this many advisory locks per append, whatever its size: sales, payment codes and tickets hash
    /// into these buckets (PostgreSQL's shared lock table holds max_locks_per_transaction × (max_connections +
    /// max_prepared_transactions) locks for the whole server: 6,400 by default).
    static let appendLockBucketsMax: Int32 = 512

    /// FNV-1a (64 bits) of a tag and bytes, modulo the buckets: the same in every process.
    static func lockBucket(_ tag: UInt8, _ bytes: [UInt8]) -> Int32 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in [tag] + bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return Int32(h % UInt64(appendLockBucketsMax))
    }

    static func dotBytes(_ d: Dot) -> [UInt8] {
        withUnsafeBytes(of: d.replica.rawValue.bigEndian, Array.init) + withUnsafeBytes(of: d.seq.bigEndian, Array.init)
    }

    static func lockBucket(sale s: SaleId) -> Int32 { lockBucket(UInt8(ascii: "s"), dotBytes(s.dot)) }
    static func lockBucket(key k: DuplicateKey) -> Int32 { lockBucket(UInt8(ascii: "k"), k.bytes) }
    static func lockBucket(ticket t: TicketId) -> Int32 { lockBucket(UInt8(ascii: "t"), dotBytes(t.dot)) }

    /// Waits for the lock buckets, in ascending order (every append takes its buckets in ascending order,
    /// across statements too, so two appends never wait for each other in a cycle).
    private func lock(_ buckets: [Int32]) throws(SyncError) {
        guard !buckets.isEmpty else { return }
        // The subquery's ORDER BY (kept by OFFSET 0) orders the calls, not the order UNNEST's rows come in.
        try session.query("""
            SELECT count(pg_advisory_xact_lock(\(Self.appendLockSpace), b)) FROM (SELECT b FROM UNNEST(\(buckets.sorted())) AS u(b) ORDER BY b OFFSET 0) AS l
            """, "lock buckets")
    }

    /// Under the locks: the components and codes the batch's checks read still hold what the resident
    /// fold holds. `strict` (central's own events, checked on that fold): a change refuses the batch;
    /// otherwise (a terminal's events, which the fold takes whatever else holds) what changed is loaded.
    private func verifyUnchanged(sales: Set<SaleId>, keys: [DuplicateKey: String], strict: Bool) throws(SyncError) {
        var changed: [SaleId] = []
        var salesOf: [String: [SaleId]] = [:], keysOf: [String: [DuplicateKey]] = [:]
        for s in sales { if let m = try merchant(of: s.dot.replica) { salesOf[m, default: []].append(s) } }
        for (k, m) in keys { keysOf[m, default: []].append(k) }
        for m in Set(salesOf.keys).union(keysOf.keys).sorted() {
            if let sales = salesOf[m] {
                var counts: [SaleId: Int] = [:]
                for row in try session.query("""
                    SELECT sale_replica, sale_seq, count(*) FROM events
                    WHERE merchant = \(m) AND (sale_replica, sale_seq) IN (SELECT * FROM UNNEST(\(sales.map { Int32($0.dot.replica.rawValue) }), \(sales.map { Int64($0.dot.seq) })))
                    GROUP BY sale_replica, sale_seq
                    """, "table events, components of \(sales.count) sales") {
                    let (r, q, n) = try decode(row, (Int32, Int64, Int64).self, "table events")
                    counts[SaleId(try dot(r, q, "table events"))] = Int(n)
                }
                for s in sales where (counts[s] ?? 0) != (componentCounts[s] ?? 0) { changed.append(s) }
            }
            guard let ks = keysOf[m] else { continue }
            let sortedKeys = ks.sorted()
            let what = "table events, captures under \(sortedKeys.count) payment codes"
            var held: [DuplicateKey: Int] = [:]
            for row in try session.query(Self.captureCountsQuery(merchant: m, keys: sortedKeys), what) {
                let (k, n) = try decode(row, (ByteBuffer, Int64).self, what)
                guard let key = DuplicateKey(bytes: Array(k.readableBytesView)) else {
                    throw SyncError(.malformed, "\(what): a duplicate_key of \(k.readableBytes) bytes (expected \(Limits.duplicateKeyBytes))", location: url.redacted)
                }
                held[key] = Int(n)
            }
            for k in sortedKeys {
                if (held[k] ?? 0) != (keyCounts[k] ?? 0) {
                    guard !strict else { throw changedError("payment code \(k)") }
                    checkedKeys.remove(k)
                    try loadKey(k, merchant: m)
                }
            }
        }
        guard !changed.isEmpty else { return }
        guard !strict else { throw changedError(changed.sorted().map { "\($0)" }.joined(separator: ", ")) }
        for s in changed {
            loadedSales.remove(s)
            try loadSale(s)
        }
    }

    /// How many captures each payment code (one merchant's) has: one index probe of `events_by_duplicate_key` per code.
    static func captureCountsQuery(merchant m: String, keys: [DuplicateKey]) -> PostgresQuery {
        """
        SELECT duplicate_key, count(*) FROM events
        WHERE merchant = \(m) AND duplicate_key IS NOT NULL AND duplicate_key = ANY(\(keys.map { ByteBuffer(bytes: $0.bytes) }))
        GROUP BY duplicate_key
        """
    }

    private func changedError(_ what: String) -> SyncError {
        SyncError(.locked, "\(what) changed since central checked it (another process wrote to it): nothing was written; check again", location: url.redacted)
    }

    /// The events, one INSERT of UNNEST arrays, numbered by the central row this transaction has updated:
    /// the i-th (from 1) of n at `head - n + i`, so the statement is built before the row is locked.
    static func eventsInsert(_ accepted: [AcceptedEvent], _ filings: [Filing]) -> PostgresQuery {
        """
        INSERT INTO events (merchant, position, replica, seq, kind, digest, sale_replica, sale_seq, ticket_replica, ticket_seq, duplicate_key, record)
        SELECT m, (SELECT head FROM central) - \(Int64(accepted.count)) + o, r, q, k, d, NULLIF(sr, -1), NULLIF(ss, -1), NULLIF(tr, -1), NULLIF(tq, -1), NULLIF(dk, ''::bytea), rec
        FROM UNNEST(\(filings.map(\.merchant)), \(accepted.map { Int32($0.event.dot.replica.rawValue) }), \(accepted.map { Int64($0.event.dot.seq) }),
                    \(accepted.map { Int16($0.event.body.kind?.rawValue ?? 0) }), \(accepted.map { Int64(bitPattern: $0.digest) }),
                    \(filings.map { $0.sale.map { Int32($0.dot.replica.rawValue) } ?? -1 }), \(filings.map { $0.sale.map { Int64($0.dot.seq) } ?? -1 }),
                    \(filings.map { $0.ticket.map { Int32($0.dot.replica.rawValue) } ?? -1 }), \(filings.map { $0.ticket.map { Int64($0.dot.seq) } ?? -1 }),
                    \(filings.map { ByteBuffer(bytes: $0.duplicateKey?.bytes ?? []) }), \(accepted.map { ByteBuffer(bytes: $0.record) }))
             WITH ORDINALITY AS e(m, r, q, k, d, sr, ss, tr, tq, dk, rec, o)
        """
    }

    /// The folded status of the sales the batch changed, as rows of table sales.
    private func salesRows(_ sales: Set<SaleId>, of state: LedgerState) throws(SyncError) -> [(m: String, s: SaleId, v: SaleView)] {
        var rows: [(m: String, s: SaleId, v: SaleView)] = []
        for s in sales.sorted() {
            guard let v = state.sales[s], let m = try merchant(of: s.dot.replica) else { continue }
            rows.append((m, s, v))
        }
        return rows
    }

    /// Numbers held as `lostDigest`, one INSERT of UNNEST arrays.
    private func insertSkipped(_ skipped: [(merchant: String, replica: ReplicaId, range: ClosedRange<UInt64>)]) throws(SyncError) {
        guard !skipped.isEmpty else { return }
        try session.query("""
            INSERT INTO skipped (merchant, replica, first_seq, last_seq)
            SELECT * FROM UNNEST(\(skipped.map(\.merchant)), \(skipped.map { Int32($0.replica.rawValue) }),
                                 \(skipped.map { Int64($0.range.lowerBound) }), \(skipped.map { Int64($0.range.upperBound) }))
            """, "table skipped")
    }

    /// The folded status of the sales the batch changed, in table sales (what a report queries by merchant),
    /// at the position of the batch's last event (the central row's head once this transaction updated it).
    static func salesUpsert(_ rows: [(m: String, s: SaleId, v: SaleView)]) -> PostgresQuery? {
        guard !rows.isEmpty else { return nil }
        return """
            INSERT INTO sales (merchant, sale_replica, sale_seq, status, amount_minor, currency, position)
            SELECT m, r, q, st, NULLIF(a, -1), NULLIF(c, ''), (SELECT head FROM central)
            FROM UNNEST(\(rows.map(\.m)), \(rows.map { Int32($0.s.dot.replica.rawValue) }), \(rows.map { Int64($0.s.dot.seq) }),
                        \(rows.map { $0.v.status.rawValue }), \(rows.map { $0.v.amount?.minorUnits ?? -1 }), \(rows.map { $0.v.amount.map { "\($0.currency)" } ?? "" }))
                 AS s(m, r, q, st, a, c)
            ON CONFLICT (merchant, sale_replica, sale_seq) DO UPDATE
            SET status = EXCLUDED.status, amount_minor = EXCLUDED.amount_minor, currency = EXCLUDED.currency, position = EXCLUDED.position
            """
    }
}
