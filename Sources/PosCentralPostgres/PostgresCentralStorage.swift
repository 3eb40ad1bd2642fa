import Foundation
import Logging
import NIOCore
import PostgresNIO
import PosCentral
import PosLedger
import PosWire

/// Central's storage in a PostgreSQL database (sync-protocol.md, "Central on
/// PostgreSQL"): the same contract as the file storage, so the same protocol
/// handler runs over it, and several processes may serve one database.
///
/// What other processes write is read again at each request (`beginRequest`):
/// the head, central's sequence, the reservation, the loss log, and on demand
/// a terminal's mark and a sale's component. Every write is one transaction,
/// and checks again under its locks what it relies on (`append`).
public final class PostgresCentralStorage: CentralStorage {
    public let url: PostgresURL
    public let centralID: CentralID
    /// This database's place in the shard map (0: the first URL, or the only one; sync-protocol.md, "Merchants over several servers").
    public let shard: Int
    /// Central's own numbers this database gives (its shard's range, sync-protocol.md, "Identity and order").
    var ownNumbers: ClosedRange<UInt64> { ShardedCentralStorage.ownNumbers(ofShard: shard) }
    let session: PostgresSession
    let logger: Logger

    /// Enrollments by terminal (they never change once written; reloaded when an unknown terminal is named).
    var enrolled: [ReplicaId: Enrollment] = [:]
    /// The enrolled terminals' merchant keys, which the events' records decode with (set up in init:
    /// a writer enrolled by another process is read from table terminals when first met).
    private(set) var merchantKeyBook = MerchantKeyBook()
    /// Marks read since the request began (dropped at `beginRequest`).
    var marks: [ReplicaId: UInt64] = [:]
    /// Terminals `revocation(of:)` found not revoked since the request began (dropped at `beginRequest`): an
    /// append of theirs re-reads the revocation under its terminal row lock and refuses one committed since.
    var seenNotRevoked = Set<ReplicaId>()
    public internal(set) var head: UInt64 = 0
    public internal(set) var centralSequence: UInt64 = 0
    public internal(set) var newestHLC: HLCTimestamp = .zero
    public internal(set) var reservedThrough: UInt64 = 0
    public internal(set) var losses: [LossRecord] = []

    /// The resident fold (dropped at `beginRequest` and past `residentEventsMax`).
    public internal(set) var resident = LedgerState()
    var residentDots = Set<Dot>()
    var loadedSales = Set<SaleId>()
    var checkedKeys = Set<DuplicateKey>()
    var checkedTickets = Set<TicketId>()
    /// Per sale loaded, how many events of its component the resident fold holds (what `append` checks central's own events against).
    var componentCounts: [SaleId: Int] = [:]
    /// Per duplicate key checked, how many captures hold it.
    var keyCounts: [DuplicateKey: Int] = [:]

    /// Events the resident fold holds at most before it is dropped after a write or read, in events.
    static let residentEventsMax = 65_536
    /// Rows read per query by a pass over many (scan, the full state), in rows.
    static let pageRowsMax = 4_096

    /// A failure of a read that cannot throw (`mark(of:)`, `revocation(of:)`): the next call that can throws it.
    var pendingError: SyncError?

    init(session: PostgresSession, centralID: CentralID, shard: Int = 0, logger: Logger) throws(SyncError) {
        self.session = session
        self.url = session.url
        self.centralID = centralID
        self.shard = shard
        self.logger = logger
        let table = "\(session.url.redacted) table terminals"
        // Reloaded under the handler's lock (every decode runs under it); a failed query is named, not hidden.
        merchantKeyBook = MerchantKeyBook(reload: { [unowned self] () throws(SyncError) in try self.loadEnrollments() }, source: { _ in table })
        try loadEnrollments()
        try beginRequest()
    }

    func throwPending() throws(SyncError) {
        if let e = pendingError {
            pendingError = nil
            throw e
        }
    }

    /// Reads again what other processes may have changed, and drops the resident fold.
    public func beginRequest() throws(SyncError) {
        pendingError = nil
        marks.removeAll()
        seenNotRevoked.removeAll()
        dropResident()
        let rows = try session.query("SELECT head, central_sequence, newest_hlc, reserved_through FROM central", "table central")
        guard let row = rows.first else { throw SyncError(.notFound, "table central is empty: no central store in this database", location: url.redacted) }
        let (h, cs, hlc, reserved) = try decode(row, (Int64, Int64, Int64, Int64).self, "table central")
        head = UInt64(h)
        centralSequence = UInt64(cs)
        newestHLC = HLCTimestamp(rawValue: UInt64(bitPattern: hlc))
        reservedThrough = UInt64(reserved)
        try readNewLosses()
    }

    func dropResident() {
        resident = LedgerState()
        residentDots.removeAll()
        loadedSales.removeAll()
        checkedKeys.removeAll()
        checkedTickets.removeAll()
        componentCounts.removeAll()
        keyCounts.removeAll()
    }

    func decode<C: PostgresDecodable>(_ row: PostgresRow, _ type: C.Type, _ what: String) throws(SyncError) -> C {
        do { return try row.decode(C.self) } catch {
            throw SyncError(.malformed, "\(what): a row does not decode: \(String(describing: error).prefix(200))", location: url.redacted)
        }
    }

    func decode<each C: PostgresDecodable>(_ row: PostgresRow, _ type: (repeat each C).Type, _ what: String) throws(SyncError) -> (repeat each C) {
        do { return try row.decode(type) } catch {
            throw SyncError(.malformed, "\(what): a row does not decode: \(String(describing: error).prefix(200))", location: url.redacted)
        }
    }

    // MARK: - Enrollment

    func loadEnrollments() throws(SyncError) {
        for row in try session.query("SELECT terminal, enrollment FROM terminals ORDER BY terminal", "table terminals") {
            let (terminal, bytes) = try decode(row, (Int32, ByteBuffer).self, "table terminals")
            let e = try Enrollment.decode(Array(bytes.readableBytesView), path: "\(url.redacted) table terminals, terminal \(terminal)")
            enrolled[e.terminal] = e
            merchantKeyBook.note(e)
        }
    }

    public var recordContext: RecordDecodeContext { merchantKeyBook.context }

    /// The merchant of a terminal (nil: not enrolled, here or by another process).
    func merchant(of replica: ReplicaId) throws(SyncError) -> String? {
        guard !replica.isCentral else { return nil }
        if let e = enrolled[replica] { return e.merchant }
        try loadEnrollments()
        return enrolled[replica]?.merchant
    }

    public func enrollments() throws(SyncError) -> [Enrollment] {
        try throwPending()
        try loadEnrollments()
        return enrolled.values.sorted { $0.terminal < $1.terminal }
    }

    public func saveEnrollment(_ enrollment: Enrollment) throws(SyncError) {
        try throwPending()
        let t = Int32(enrollment.terminal.rawValue)
        // A terminal's id is unique across merchants: no unique index can say so (each holds the merchant), so
        // the check runs under an advisory lock on the id (two enrollments of one id take turns).
        let taken = try session.transaction("table terminals, terminal \(t)") { () throws(SyncError) -> String? in
            try session.query("SELECT pg_advisory_xact_lock(\(Self.enrollmentLockKey), \(t))", "enrollment lock")
            if let row = try session.query("SELECT merchant FROM terminals WHERE terminal = \(t)", "table terminals").first {
                return try decode(row, String.self, "table terminals")
            }
            try session.query("""
                INSERT INTO terminals (merchant, terminal, enrollment) VALUES (\(enrollment.merchant), \(t), \(ByteBuffer(bytes: enrollment.encoded())))
                """, "table terminals")
            return nil
        }
        if let taken {
            throw SyncError(.invalidArgument, "terminal \(t) is already enrolled (table terminals, merchant \(taken))", location: url.redacted)
        }
        enrolled[enrollment.terminal] = enrollment
        merchantKeyBook.note(enrollment)
    }

    public func merchantKey(_ merchant: String) throws(SyncError) -> [UInt8]? {
        try throwPending()
        guard let row = try session.query("SELECT duplicate_key FROM merchants WHERE merchant = \(merchant)", "table merchants").first else { return nil }
        return Array(try decode(row, ByteBuffer.self, "table merchants").readableBytesView)
    }

    /// Keeps the key; a key another process saved first for the merchant is refused (the caller asks again).
    public func saveMerchantKey(_ key: [UInt8], for merchant: String) throws(SyncError) {
        try throwPending()
        try session.query("INSERT INTO merchants (merchant, duplicate_key) VALUES (\(merchant), \(ByteBuffer(bytes: key))) ON CONFLICT DO NOTHING", "table merchants")
        guard try merchantKey(merchant) == key else {
            throw SyncError(.locked, "merchant \(merchant)'s key was saved by another process first (table merchants): try again", location: url.redacted)
        }
    }

    public func flaggedTerminals() -> [ReplicaId: String] {
        notes("flagged")
    }

    public func flag(_ terminal: ReplicaId, note: String) throws(SyncError) {
        try throwPending()
        guard let m = try merchant(of: terminal) else { throw notEnrolled(terminal) }
        try session.query("UPDATE terminals SET flagged = \(note) WHERE merchant = \(m) AND terminal = \(Int32(terminal.rawValue))", "table terminals")
    }

    /// Read from the database at every call: `central revoke` in another process counts from the next request on.
    public func revocation(of terminal: ReplicaId) -> String? {
        do {
            seenNotRevoked.remove(terminal)
            guard let m = try merchant(of: terminal) else { return nil }
            let rows = try session.query("SELECT revoked FROM terminals WHERE merchant = \(m) AND terminal = \(Int32(terminal.rawValue)) AND revoked IS NOT NULL", "table terminals")
            guard let row = rows.first else {
                seenNotRevoked.insert(terminal)
                return nil
            }
            return try decode(row, String.self, "table terminals")
        } catch {
            pendingError = error
            return nil
        }
    }

    public func revokedTerminals() -> [ReplicaId: String] { notes("revoked") }

    /// The first revocation stays: revoking again changes nothing.
    public func revoke(_ terminal: ReplicaId, note: String) throws(SyncError) {
        try throwPending()
        guard let m = try merchant(of: terminal) else { throw notEnrolled(terminal) }
        try session.query("UPDATE terminals SET revoked = coalesce(revoked, \(note)) WHERE merchant = \(m) AND terminal = \(Int32(terminal.rawValue))", "table terminals")
    }

    func notEnrolled(_ terminal: ReplicaId) -> SyncError {
        SyncError(.notEnrolled, "terminal \(terminal.rawValue) is not enrolled here (table terminals)", location: url.redacted)
    }

    /// The `pg_advisory_xact_lock(key, terminal)` class of enrollment's id check.
    static let enrollmentLockKey: Int32 = 0x5053_454E  // PSEN in ASCII

    /// Terminals whose `column` (flagged, revoked) holds a note.
    private func notes(_ column: String) -> [ReplicaId: String] {
        do {
            var out: [ReplicaId: String] = [:]
            for row in try session.query("SELECT terminal, \(unescaped: column) FROM terminals WHERE \(unescaped: column) IS NOT NULL", "table terminals") {
                let (t, note) = try decode(row, (Int32, String).self, "table terminals")
                out[try ReplicaId.terminal(UInt32(t))] = note
            }
            return out
        } catch let error as SyncError {
            pendingError = error
            return [:]
        } catch {
            pendingError = SyncError(.malformed, "table terminals: \(error)", location: url.redacted)
            return [:]
        }
    }

    // MARK: - Marks, losses, the reservation

    public func mark(of terminal: ReplicaId) -> UInt64 {
        if let m = marks[terminal] { return m }
        do {
            guard let owner = try merchant(of: terminal) else { return 0 }
            let rows = try session.query("SELECT mark FROM terminals WHERE merchant = \(owner) AND terminal = \(Int32(terminal.rawValue))", "table terminals")
            let m = try rows.first.map { row throws(SyncError) in UInt64(try decode(row, Int64.self, "table terminals")) } ?? 0
            marks[terminal] = m
            return m
        } catch {
            pendingError = error
            return 0
        }
    }

    @discardableResult
    public func appendLoss(_ record: LossRecord) throws(SyncError) -> LossRecord {
        try throwPending()
        var r = record
        var merchant = ""
        if let t = r.terminal.flatMap({ try? ReplicaId.terminal($0) }) { merchant = try self.merchant(of: t) ?? "" }
        let id = try session.transaction("table losses") { () throws(SyncError) -> Int in
            try session.query("LOCK TABLE losses IN EXCLUSIVE MODE", "table losses")
            let row = try session.query("SELECT coalesce(max(id), 0) + 1 FROM losses", "table losses").first!
            let id = Int(try decode(row, Int32.self, "table losses"))
            r.id = id
            let json = String(decoding: try! JSONEncoder().encode(r), as: UTF8.self)
            try session.query("INSERT INTO losses (id, merchant, record) VALUES (\(Int32(id)), \(merchant), \(json))", "table losses")
            return id
        }
        r.id = id
        // Records other processes added meanwhile come first (they have the lower ids).
        try readNewLosses()
        return r
    }

    /// The loss records added since last read (by any process), in id order.
    func readNewLosses() throws(SyncError) {
        let rows = try session.query("SELECT id, record FROM losses WHERE id > \(losses.count) ORDER BY id", "table losses")
        for row in rows {
            let (id, text) = try decode(row, (Int32, String).self, "table losses")
            guard var record = try? JSONDecoder().decode(LossRecord.self, from: Data(text.utf8)) else {
                throw SyncError(.malformed, "table losses: record \(id) is not a loss record", location: url.redacted)
            }
            record.id = Int(id)
            guard record.id == losses.count + 1 else {
                throw SyncError(.malformed, "table losses: id \(id) follows \(losses.count): the ids must run 1, 2, …", location: url.redacted)
            }
            losses.append(record)
        }
    }

    public func reserve(through sequence: UInt64) throws(SyncError) {
        try throwPending()
        // Never past the shard's own numbers: a reservation is of numbers this database may give.
        let through = min(sequence, ownNumbers.upperBound)
        let rows = try session.query("UPDATE central SET reserved_through = greatest(reserved_through, \(Int64(through))) RETURNING reserved_through", "table central")
        reservedThrough = UInt64(try decode(rows[0], Int64.self, "table central"))
    }

    public func close() throws(SyncError) {
        session.close()
    }
}
