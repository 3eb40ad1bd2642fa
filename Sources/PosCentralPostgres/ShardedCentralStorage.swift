import Logging
import NIOCore
import PostgresNIO
import PosCentral
import PosLedger
import PosWire

/// Central over several PostgreSQL databases, each merchant's whole history on
/// one of them (sync-protocol.md, "Merchants over several servers"). `--postgres
/// URL1,URL2,...` lists them in the order they were added: the list's place is
/// the shard's number. Each database records its number, the central's id and
/// its own uuid, and the first keeps the registry of the shards (number -> uuid),
/// against which `PostgresCentralStore` checks the whole list before opening:
/// a list out of order, missing or replacing a shard, or naming another
/// central's database is refused.
///
/// The shard map (table `shard_merchants` on the first URL's database) assigns
/// a merchant its shard once, when central first keeps something of it (its key
/// or a terminal), to the shard holding the fewest merchants then (the lowest
/// number on a tie); adding a URL moves no merchant. A terminal's shard is the
/// one that enrolled it. Both maps never change, so they are read once and kept:
/// a terminal's sync touches its merchant's shard alone.
///
/// Each shard is a `PostgresCentralStorage` with positions of its own (a
/// terminal's cursor is always into its merchant's shard) and a range of
/// central's own numbers of its own: shard k numbers central's events in
/// k·`centralSequenceStride` + 1 ..., so no two shards ever give one dot.
/// A request names what it is about (`beginRequest(about:)`); until the next
/// one, head, central's sequence, the reservation, the loss log, the resident
/// fold and positions are that shard's; `endRequest()` forgets it. With no
/// shard named (outside a request, or a request about everything), the head is
/// the sum of the shards' (events held), the loss log every shard's (ids unique
/// across shards, `lossIDStride`), and central's sequence, the reservation and
/// the resident fold those of the shard last addressed (the first at open).
public final class ShardedCentralStorage: CentralStorage {
    public let shards: [PostgresCentralStorage]
    public var centralID: CentralID { shards[0].centralID }
    let logger: Logger
    /// merchant → shard, as the shard map holds it (filled at open, and as merchants are assigned).
    private(set) var merchantShards: [String: Int] = [:]
    /// The shard the request in progress is about (nil: everything).
    private(set) var current: Int?
    /// The terminal whose sync or bundle the request in progress is (nil: none).
    private var requester: ReplicaId?
    /// The shard last addressed (what the per-shard values answer from when no shard is named).
    private var last = 0

    /// Central's own numbers per shard: shard k's are k·stride + 1 ... (k+1)·stride.
    public static let centralSequenceStride: UInt64 = 10_000_000_000
    /// Shards at most: their number ranges fit below `Limits.sequenceMax`.
    public static let shardsMax = Int((Limits.sequenceMax + 1) / centralSequenceStride)

    /// Central's own numbers shard `k` gives: k·stride + 1 ... (k+1)·stride.
    static func ownNumbers(ofShard k: Int) -> ClosedRange<UInt64> {
        UInt64(k) * centralSequenceStride + 1 ... UInt64(k + 1) * centralSequenceStride
    }

    /// The shard whose range holds central's own number `seq` (≥ 1); it may be past the list.
    static func shard(ofOwnNumber seq: UInt64) -> Int { Int((seq - 1) / centralSequenceStride) }

    /// The lock class of the shard map's assignment step (`pg_advisory_xact_lock(key, 0)` on the first URL's database).
    static let assignmentLockKey: Int32 = 0x5053_534D  // PSSM in ASCII

    init(shards: [PostgresCentralStorage], logger: Logger) throws(SyncError) {
        precondition(!shards.isEmpty)
        self.shards = shards
        self.logger = logger
        try reconcileMap()
    }

    var map: PostgresCentralStorage { shards[0] }
    var mapWhat: String { "\(map.url.redacted) table shard_merchants" }

    // MARK: - The shard map

    /// At open: every merchant a shard holds is in the map on that shard (a central that had one URL
    /// gets its merchants entered as shard 0's), and the map names no shard beyond the list.
    private func reconcileMap() throws(SyncError) {
        for (k, shard) in shards.enumerated() {
            let rows = try shard.session.query("SELECT merchant FROM merchants UNION SELECT merchant FROM terminals", "table merchants, terminals")
            let held = try rows.map { row throws(SyncError) in try shard.decode(row, String.self, "table merchants") }
            guard !held.isEmpty else { continue }
            try map.session.query("""
                INSERT INTO shard_merchants (merchant, shard) SELECT m, \(Int32(k)) FROM UNNEST(\(held)) AS h(m) ON CONFLICT DO NOTHING
                """, mapWhat)
        }
        try loadMap()
        for (k, shard) in shards.enumerated() {
            let rows = try shard.session.query("SELECT merchant FROM merchants UNION SELECT merchant FROM terminals", "table merchants, terminals")
            for row in rows {
                let m = try shard.decode(row, String.self, "table merchants")
                guard let placed = merchantShards[m], placed == k else {
                    throw SyncError(.malformed, "merchant \(m) is held in shard \(k) (\(shard.url.redacted)) but the shard map (\(mapWhat)) places it on shard \(merchantShards[m] ?? -1): the URLs are not the ones this central was given",
                                    location: shard.url.redacted)
                }
            }
            try map.session.query("""
                INSERT INTO shard_terminals (merchant, terminal)
                SELECT m, t FROM UNNEST(\(shard.enrolled.values.map(\.merchant)), \(shard.enrolled.keys.map { Int32($0.rawValue) })) AS e(m, t) ON CONFLICT DO NOTHING
                """, "\(map.url.redacted) table shard_terminals")
        }
        if let (m, k) = merchantShards.first(where: { $0.value >= shards.count }) {
            throw SyncError(.invalidArgument, "the shard map (\(mapWhat)) places merchant \(m) on shard \(k), but only \(shards.count) URLs are listed: list every shard's URL, in the order they were added",
                            location: map.url.redacted)
        }
    }

    private func loadMap() throws(SyncError) {
        for row in try map.session.query("SELECT merchant, shard FROM shard_merchants", mapWhat) {
            let (m, k) = try map.decode(row, (String, Int32).self, mapWhat)
            merchantShards[m] = Int(k)
        }
    }

    /// A merchant's shard: from the map (read again when not known here); `assigning`, a merchant
    /// the map lacks gets the shard holding the fewest merchants (the lowest number on a tie), for good.
    func shard(ofMerchant m: String, assigning: Bool) throws(SyncError) -> Int? {
        if let k = merchantShards[m] { return k }
        if let row = try map.session.query("SELECT shard FROM shard_merchants WHERE merchant = \(m)", mapWhat).first {
            let k = Int(try map.decode(row, Int32.self, mapWhat))
            merchantShards[m] = k
            return k
        }
        guard assigning else { return nil }
        let n = shards.count
        let k = try map.session.transaction("\(mapWhat), merchant \(m)") { () throws(SyncError) -> Int in
            try map.session.query("SELECT pg_advisory_xact_lock(\(Self.assignmentLockKey), 0)", "shard map lock")
            if let row = try map.session.query("SELECT shard FROM shard_merchants WHERE merchant = \(m)", mapWhat).first {
                return Int(try map.decode(row, Int32.self, mapWhat))
            }
            var counts = [Int](repeating: 0, count: n)
            for row in try map.session.query("SELECT shard, count(*) FROM shard_merchants GROUP BY shard", mapWhat) {
                let (s, c) = try map.decode(row, (Int32, Int64).self, mapWhat)
                if Int(s) < n { counts[Int(s)] = Int(c) }
            }
            let chosen = counts.indices.min { counts[$0] < counts[$1] || (counts[$0] == counts[$1] && $0 < $1) }!
            try map.session.query("INSERT INTO shard_merchants (merchant, shard) VALUES (\(m), \(Int32(chosen)))", mapWhat)
            return chosen
        }
        merchantShards[m] = k
        logger.info("merchant assigned a shard", metadata: ["central.merchant": "\(m)", "central.shard": "\(k)", "central.shard_url": "\(shards[k].url.redacted)"])
        return k
    }

    /// The shard that enrolled a terminal (nil: none did, here or in another process).
    func shard(ofTerminal t: ReplicaId) throws(SyncError) -> Int? {
        guard !t.isCentral else { return nil }
        if let k = shards.firstIndex(where: { $0.enrolled[t] != nil }) { return k }
        for shard in shards { try shard.loadEnrollments() }
        return shards.firstIndex(where: { $0.enrolled[t] != nil })
    }

    /// The shard of a sale's or ticket's merchant: its creator's (central's own ticket: by its number's range).
    func shard(of key: EntityKey) throws(SyncError) -> Int? {
        let creator = key.creator
        if creator.isCentral {
            let dot: Dot
            switch key {
            case .sale(let s): dot = s.dot
            case .ticket(let t): dot = t.dot
            }
            let k = Self.shard(ofOwnNumber: dot.seq)
            return k < shards.count ? k : nil
        }
        return try shard(ofTerminal: creator)
    }

    func shard(of event: Event) throws(SyncError) -> Int? {
        let c = EventComponent(event)
        if let s = c.sale { return try shard(of: .sale(s)) }
        if let t = c.ticket { return try shard(of: .ticket(t)) }
        return try shard(ofTerminal: event.dot.replica)
    }

    /// The shard a call goes to: the request's, else the one found, else the one last addressed.
    private func routed(_ found: Int?) -> PostgresCentralStorage {
        let k = current ?? found ?? last
        last = k
        return shards[k]
    }

    /// The shard named by the call itself (a terminal, a dot), whatever the request is about.
    private func named(_ k: Int?) -> PostgresCentralStorage? {
        guard let k else { return nil }
        last = k
        return shards[k]
    }

    // MARK: - Requests

    public func beginRequest() throws(SyncError) { try beginRequest(about: .everything) }

    public func beginRequest(about subject: RequestSubject) throws(SyncError) {
        var k: Int?
        switch subject {
        case .terminal(let t): k = try shard(ofTerminal: t)
        case .entity(let key): k = try shard(of: key)
        case .everything: k = nil
        }
        current = k
        if case .terminal(let t) = subject { requester = t } else { requester = nil }
        if let k {
            last = k
            try shards[k].beginRequest()
        } else {
            for shard in shards { try shard.beginRequest() }
        }
    }

    /// The request is over: what is read outside a request (head, the loss log) answers for every shard again.
    public func endRequest() {
        current = nil
        requester = nil
    }

    // MARK: - Enrollment

    public func enrollments() throws(SyncError) -> [Enrollment] {
        var all: [Enrollment] = []
        for shard in shards { all += try shard.enrollments() }
        return all.sorted { $0.terminal < $1.terminal }
    }

    /// In the map first (a terminal's id is unique across shards), then in its merchant's shard.
    public func saveEnrollment(_ enrollment: Enrollment) throws(SyncError) {
        let k = try shard(ofMerchant: enrollment.merchant, assigning: true)!
        let t = Int32(enrollment.terminal.rawValue)
        let what = "\(map.url.redacted) table shard_terminals"
        try map.session.query("INSERT INTO shard_terminals (merchant, terminal) VALUES (\(enrollment.merchant), \(t)) ON CONFLICT DO NOTHING", what)
        let row = try map.session.query("SELECT merchant FROM shard_terminals WHERE terminal = \(t)", what)[0]
        let holder = try map.decode(row, String.self, what)
        guard holder == enrollment.merchant else {
            throw SyncError(.invalidArgument, "terminal \(t) is already enrolled (\(what): merchant \(holder))", location: map.url.redacted)
        }
        try shards[k].saveEnrollment(enrollment)
        last = k
    }

    public func merchantKey(_ merchant: String) throws(SyncError) -> [UInt8]? {
        guard let k = try shard(ofMerchant: merchant, assigning: false) else { return nil }
        return try named(k)!.merchantKey(merchant)
    }

    public func saveMerchantKey(_ key: [UInt8], for merchant: String) throws(SyncError) {
        try named(try shard(ofMerchant: merchant, assigning: true))!.saveMerchantKey(key, for: merchant)
    }

    public func flaggedTerminals() -> [ReplicaId: String] {
        shards.reduce(into: [:]) { all, shard in all.merge(shard.flaggedTerminals()) { a, _ in a } }
    }

    public func flag(_ terminal: ReplicaId, note: String) throws(SyncError) {
        guard let s = named(try shard(ofTerminal: terminal)) else { throw map.notEnrolled(terminal) }
        try s.flag(terminal, note: note)
    }

    public func revocation(of terminal: ReplicaId) -> String? {
        do { return named(try shard(ofTerminal: terminal))?.revocation(of: terminal) } catch {
            shards[last].pendingError = error
            return nil
        }
    }

    public func revokedTerminals() -> [ReplicaId: String] {
        shards.reduce(into: [:]) { all, shard in all.merge(shard.revokedTerminals()) { a, _ in a } }
    }

    public func revoke(_ terminal: ReplicaId, note: String) throws(SyncError) {
        guard let s = named(try shard(ofTerminal: terminal)) else { throw map.notEnrolled(terminal) }
        try s.revoke(terminal, note: note)
    }

    // MARK: - Events

    public func mark(of terminal: ReplicaId) -> UInt64 {
        do { return named(try shard(ofTerminal: terminal))?.mark(of: terminal) ?? 0 } catch {
            shards[last].pendingError = error
            return 0
        }
    }

    public var centralSequence: UInt64 { routed(nil).centralSequence }
    /// The request's shard's; with none named, the events held in all (what a status shows).
    public var head: UInt64 { current.map { shards[$0].head } ?? shards.reduce(0) { $0 + $1.head } }
    /// The request's shard's; with none named, the newest of all (central's clock resumes after it).
    public var newestHLC: HLCTimestamp { current.map { shards[$0].newestHLC } ?? shards.map(\.newestHLC).max()! }

    @discardableResult
    public func append(_ events: [AcceptedEvent], skipping gap: ClosedRange<UInt64>?) throws(SyncError) -> ClosedRange<UInt64> {
        precondition(!events.isEmpty, "an append of no events")
        return try routed(try shard(of: events[0].event)).append(events, skipping: gap)
    }

    /// The shard holding a dot: its writer's (central's own: by its number's range).
    private func shard(ofDot dot: Dot) throws(SyncError) -> Int? {
        guard dot.replica.isCentral else { return try shard(ofTerminal: dot.replica) }
        let s = Self.shard(ofOwnNumber: dot.seq)
        return s < shards.count ? s : nil
    }

    public func digest(of dot: Dot) throws(SyncError) -> UInt64? {
        try named(try shard(ofDot: dot))?.digest(of: dot)
    }

    /// Each dot on its shard, one call per shard.
    public func digests(of dots: [Dot]) throws(SyncError) -> [Dot: UInt64] {
        var byShard: [Int: [Dot]] = [:]
        for d in dots { if let k = try shard(ofDot: d) { byShard[k, default: []].append(d) } }
        var out: [Dot: UInt64] = [:]
        for (k, ds) in byShard.sorted(by: { $0.key < $1.key }) { out.merge(try named(k)!.digests(of: ds)) { a, _ in a } }
        return out
    }

    /// The request's shard's positions; with no shard named, each shard's in turn (positions are per shard).
    public func scan(after position: UInt64, _ body: (UInt64, [UInt8]) throws(SyncError) -> Bool) throws(SyncError) {
        if let k = current { return try shards[k].scan(after: position, body) }
        var going = true
        for shard in shards where going {
            try shard.scan(after: position) { (p, r) throws(SyncError) -> Bool in
                going = try body(p, r)
                return going
            }
        }
    }

    public func record(at position: UInt64) throws(SyncError) -> [UInt8]? {
        if let k = current { return try shards[k].record(at: position) }
        for shard in shards { if let r = try shard.record(at: position) { return r } }
        return nil
    }

    public var recordContext: RecordDecodeContext { routed(nil).recordContext }

    // MARK: - The folded state

    public func prepare(_ event: Event) throws(SyncError) {
        let found = try shard(of: event)
        if let k = current, let t = requester, found != k { try refuseForeign(event, of: t, onShard: k, found: found) }
        try routed(found).prepare(event)
    }

    /// A request's events (a push's): each checked as `prepare(_:)` does, then the request's shard makes them
    /// resident at once. With no request's shard named, one at a time (each routed on its own).
    public func prepare(_ events: [Event]) throws(SyncError) {
        guard let k = current else {
            for e in events { try prepare(e) }
            return
        }
        if let t = requester {
            for e in events {
                let found = try shard(of: e)
                if found != k { try refuseForeign(e, of: t, onShard: k, found: found) }
            }
        }
        try routed(nil).prepare(events)
    }

    /// A terminal's event naming a sale or ticket of another shard: refused `foreignMerchant` as on one database
    /// (where the handler finds the entity's owner in the resident fold; here that fold is the request's shard's,
    /// which never holds it). Central's own tickets are told by their number: one outside the request's shard's
    /// range is another shard's, or no shard's.
    private func refuseForeign(_ event: Event, of terminal: ReplicaId, onShard k: Int, found: Int?) throws(SyncError) {
        let c = EventComponent(event)
        let key: EntityKey? = c.sale.map { .sale($0) } ?? c.ticket.map { .ticket($0) }
        guard let key else { return }  // an event of no entity: its writer's shard, the request's
        let merchant = shards[k].enrolled[terminal]?.merchant ?? "?"
        let location = "\(shards[k].url.redacted) (shard \(k))"
        var owner: ReplicaId? = key.creator.isCentral ? nil : key.creator
        if owner == nil, let f = found, case .ticket(let ticket) = key {
            try shards[f].prepare(key)  // the owner of central's ticket is its request's sale's creator, held on shard f
            owner = shards[f].resident.tickets[ticket]?.sale.dot.replica
            shards[f].didRead()
        }
        if let owner {
            throw SyncError(.foreignMerchant, "event \(event.dot) concerns an entity of terminal \(owner.rawValue), which is not of merchant \(merchant)", location: location)
        }
        if key.creator.isCentral {
            throw SyncError(.foreignMerchant, "event \(event.dot) concerns central's \(key) numbered outside shard \(k)'s range (\(Self.ownNumbers(ofShard: k).lowerBound)...\(Self.ownNumbers(ofShard: k).upperBound)), so not of merchant \(merchant)",
                            location: location)
        }
        // A terminal no shard enrolled: as on one database (the handler finds no owner).
    }
    public func prepare(_ key: EntityKey) throws(SyncError) { try routed(try shard(of: key)).prepare(key) }
    public var resident: LedgerState { routed(nil).resident }
    public func didRead() {
        if let k = current { shards[k].didRead() } else { for shard in shards { shard.didRead() } }
    }

    /// Every shard's events folded together (central's own numbers never repeat across shards).
    public func fullState() throws(SyncError) -> LedgerState {
        var state = LedgerState()
        for shard in shards {
            try shard.throwPending()
            try shard.fold(into: &state)
        }
        return state
    }

    /// One part per shard (a merchant's sales and tickets are all in its shard).
    public func forEachStatePart(_ body: (LedgerState) throws(SyncError) -> Void) throws(SyncError) {
        for shard in shards { try shard.forEachStatePart(body) }
    }

    public func salesAwaitingOutcome() throws(SyncError) -> [SaleId] {
        var all: [SaleId] = []
        for shard in shards { all += try shard.salesAwaitingOutcome() }
        return all.sorted()
    }

    // MARK: - Losses and the reservation

    /// Loss record ids across shards: shard k's record i (its `losses.id`) is k·`lossIDStride` + i here, and its
    /// `refersTo` likewise, so ids never repeat across shards and shard 0's (a central that had one database) stay as stored.
    public static let lossIDStride = 1_000_000_000

    private func unique(_ record: LossRecord, shard k: Int) -> LossRecord {
        var r = record
        r.id += k * Self.lossIDStride
        r.refersTo = r.refersTo.map { $0 + k * Self.lossIDStride }
        return r
    }

    /// The request's shard's log; with no shard named (outside a request), every shard's, shard by shard,
    /// each in id order: ids unique across shards (`lossIDStride`), and `epoch` the sum of the shards' epochs.
    public var losses: [LossRecord] {
        if let k = current { return shards[k].losses.map { unique($0, shard: k) } }
        return shards.enumerated().flatMap { k, shard in shard.losses.map { unique($0, shard: k) } }
    }

    @discardableResult
    public func appendLoss(_ record: LossRecord) throws(SyncError) -> LossRecord {
        let found = try record.terminal.flatMap { try? ReplicaId.terminal($0) }.flatMap { t throws(SyncError) in try shard(ofTerminal: t) }
        let target = routed(found)
        let k = last
        var stored = record
        if let id = record.refersTo {
            guard id / Self.lossIDStride == k, id % Self.lossIDStride > 0 else {
                throw SyncError(.invalidArgument, "a loss record of shard \(k) refers to loss #\(id), which is not one of shard \(k)'s (\(k * Self.lossIDStride + 1)...)",
                                location: "\(target.url.redacted) table losses")
            }
            stored.refersTo = id - k * Self.lossIDStride
        }
        return unique(try target.appendLoss(stored), shard: k)
    }

    public var reservedThrough: UInt64 { routed(nil).reservedThrough }
    public func reserve(through sequence: UInt64) throws(SyncError) { try routed(nil).reserve(through: sequence) }

    public func close() throws(SyncError) {
        var first: SyncError?
        for shard in shards {
            do throws(SyncError) { try shard.close() } catch { first = first ?? error }
        }
        if let first { throw first }
    }
}
