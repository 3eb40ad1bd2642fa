import PosLedger
import PosWire

/// Where central keeps what it holds. The protocol handler (`CentralHandler`)
/// owns every rule — the checks of a push, authority, money moves, redaction,
/// pull selection, evidence of loss — and a storage only stores, durably, and
/// answers what it holds, so a second store (PostgreSQL) implements this and
/// nothing else. The contract suite in PosTestSupport holds every
/// implementation to the same expectations. The handler makes one call at a
/// time (it holds its lock across each request).
public protocol CentralStorage: AnyObject {
    /// The store's identity.
    var centralID: CentralID { get }

    // MARK: Enrollment

    /// Every enrollment the store issued.
    func enrollments() throws(SyncError) -> [Enrollment]
    /// Keeps an enrollment for good (durable on return).
    func saveEnrollment(_ enrollment: Enrollment) throws(SyncError)
    /// A merchant's duplicate-detection key (nil: no terminal of it was enrolled yet).
    func merchantKey(_ merchant: String) throws(SyncError) -> [UInt8]?
    func saveMerchantKey(_ key: [UInt8], for merchant: String) throws(SyncError)
    /// Terminals flagged for trying to rewrite an accepted event, with what happened.
    func flaggedTerminals() -> [ReplicaId: String]
    /// Flags a terminal for good (durable on return).
    func flag(_ terminal: ReplicaId, note: String) throws(SyncError)
    /// Why `terminal`'s enrollment was revoked (nil: it was not). Asked at every request: a revocation
    /// made by another process while this one runs (`central revoke` beside `central serve`) counts from
    /// the next request on.
    func revocation(of terminal: ReplicaId) -> String?
    /// Terminals whose enrollment was revoked, with when and why (as `revocation(of:)` sees them now).
    func revokedTerminals() -> [ReplicaId: String]
    /// Revokes a terminal's enrollment for good (durable on return): it may no longer sync.
    func revoke(_ terminal: ReplicaId, note: String) throws(SyncError)
    /// The last clock reading kept per terminal (what the nightly report lists as clock skew).
    func clockReadings() -> [ReplicaId: ClockReading]
    /// Keeps a terminal's clock reading (durable on return), replacing the one before.
    func saveClockReading(_ reading: ClockReading, of terminal: ReplicaId) throws(SyncError)

    // MARK: Accepted events, by central position 1, 2, …

    /// A terminal's high-water mark: its events 1 … mark are held (a range the
    /// loss log records `unrecoverable` excepted, held as a placeholder digest).
    func mark(of terminal: ReplicaId) -> UInt64
    /// Central's own last sequence number in use.
    var centralSequence: UInt64 { get }
    /// The last durable position.
    var head: UInt64 { get }
    /// The largest HLC of any event held (central's clock resumes after it).
    var newestHLC: HLCTimestamp { get }
    /// Appends the events durably (it returns after they are durable), in
    /// order, and folds them. A terminal's events continue its mark (after
    /// `skipping`, a gap the loss log already records `unrecoverable`); central's
    /// own continue above `centralSequence` (numbers between are skipped, with
    /// placeholder digests). Each event has been `prepare`d. Returns the positions.
    @discardableResult
    func append(_ events: [AcceptedEvent], skipping gap: ClosedRange<UInt64>?) throws(SyncError) -> ClosedRange<UInt64>
    /// The digest of the event held under `dot` (`lostDigest` for a number recorded lost; nil: none held).
    func digest(of dot: Dot) throws(SyncError) -> UInt64?
    /// `digest(of:)` of each dot (a re-sent push's), by dot; a dot with none held is absent. A storage on
    /// a database reads them in one query. The default: `digest(of:)` each.
    func digests(of dots: [Dot]) throws(SyncError) -> [Dot: UInt64]
    /// The records after `position`, through `head`, in order, until `body` returns false.
    func scan(after position: UInt64, _ body: (_ position: UInt64, _ record: [UInt8]) throws(SyncError) -> Bool) throws(SyncError)
    /// The record at `position` (nil: none).
    func record(at position: UInt64) throws(SyncError) -> [UInt8]?
    /// What the records held decode with: each enrolled terminal's merchant key (a version-2
    /// capture derives its duplicate key from its code with it; sync-protocol.md, "Records").
    var recordContext: RecordDecodeContext { get }

    // MARK: The folded state

    /// Makes resident what checking or applying `event` reads: its sale's
    /// component and the components of every capture sharing its payment code.
    func prepare(_ event: Event) throws(SyncError)
    /// `prepare(_:)` for each of a push's events: a storage on a database reads what they need in a
    /// few set-based queries rather than one or more per event. The default: `prepare(_:)` each.
    func prepare(_ events: [Event]) throws(SyncError)
    func prepare(_ key: EntityKey) throws(SyncError)
    /// The fold of every resident event: exact for every prepared entity.
    var resident: LedgerState { get }
    /// After a read that loaded entities (they count toward the store's memory bound).
    func didRead()
    /// The fold of every event held: for reports and checks, never on the sync path.
    func fullState() throws(SyncError) -> LedgerState
    /// Sales with a capture and no outcome, in sale-id order (what forwarding works through).
    func salesAwaitingOutcome() throws(SyncError) -> [SaleId]
    /// The fold of every event held, in parts, each exact for the sales and
    /// tickets it holds, each sale and ticket (and its conflict records) in
    /// exactly one part: for reports over a store of any size. The default is
    /// `fullState()` as one part; a storage that can should stream.
    func forEachStatePart(_ body: (LedgerState) throws(SyncError) -> Void) throws(SyncError)

    // MARK: Losses and the sequence reservation

    /// The loss log, in order.
    var losses: [LossRecord] { get }
    /// Appends a loss record durably (its id assigned here) and returns it.
    @discardableResult
    func appendLoss(_ record: LossRecord) throws(SyncError) -> LossRecord
    /// Central's own sequence numbers through this may be in use.
    var reservedThrough: UInt64 { get }
    /// Raises the reservation durably.
    func reserve(through sequence: UInt64) throws(SyncError)

    /// Called under the handler's lock as each request begins: a storage other processes write
    /// too (PostgreSQL) reads again what they may have changed and drops what it cached. The file
    /// storage, which one process alone opens, has nothing to do (the default).
    func beginRequest() throws(SyncError)
    /// `beginRequest()`, naming what the request is about: a storage spread over several databases
    /// (PostgreSQL with several URLs, each merchant on one) serves it from the database of that
    /// terminal's or entity's merchant alone — head, positions, central's sequence, the loss log and
    /// the resident fold are that database's until the next request begins. The default: `beginRequest()`.
    func beginRequest(about subject: RequestSubject) throws(SyncError)
    /// Called under the handler's lock as each request ends (after its last call, whether it succeeded
    /// or not): a storage spread over several databases forgets the request's database, so what is read
    /// outside a request (head, the loss log) answers for every database again. The default: nothing.
    func endRequest()

    func close() throws(SyncError)
}

/// What a request is about, named as it begins (`CentralStorage.beginRequest(about:)`).
public enum RequestSubject: Sendable, Equatable {
    /// A terminal's sync (hello, push, pull, fetch) or one of its bundles.
    case terminal(ReplicaId)
    /// One sale or ticket: central's own event about it, or a read around it.
    case entity(EntityKey)
    /// Reports and listings over everything held.
    case everything

    /// The entity central's own event `body` is about (nil: none; a request names its sale, whose merchant owns the ticket).
    public static func of(_ body: EventBody) -> RequestSubject {
        let c = EventComponent(Event(dot: try! Dot(replica: .central, seq: 1), hlc: .zero, context: VersionVector(), body: body))
        if let s = c.sale { return .entity(.sale(s)) }
        if let t = c.ticket { return .entity(.ticket(t)) }
        return .everything
    }
}

/// A terminal's wall clock as a hello showed it, beside central's at that moment.
/// Central keeps one when it finds the clock off by more than the skew bound,
/// and the next one after that (back in bound), so what it found outlives the process.
public struct ClockReading: Codable, Sendable, Equatable {
    public var terminalMillis: Int64
    public var centralMillis: Int64
    /// Off by more than `SyncLimits.clockSkewMillisMax`.
    public var skewed: Bool
    public init(terminalMillis: Int64, centralMillis: Int64, skewed: Bool) {
        self.terminalMillis = terminalMillis
        self.centralMillis = centralMillis
        self.skewed = skewed
    }
    /// The terminal's clock minus central's, milliseconds (stops at the bounds).
    public var offsetMillis: Int64 {
        let (d, o) = terminalMillis.subtractingReportingOverflow(centralMillis)
        return o ? (terminalMillis > centralMillis ? .max : .min) : d
    }
}

extension CentralStorage {
    /// A storage that keeps no clock readings: none (the report then lists none).
    public func clockReadings() -> [ReplicaId: ClockReading] { [:] }
    public func saveClockReading(_ reading: ClockReading, of terminal: ReplicaId) throws(SyncError) {}

    public func forEachStatePart(_ body: (LedgerState) throws(SyncError) -> Void) throws(SyncError) { try body(try fullState()) }

    public func prepare(_ events: [Event]) throws(SyncError) { for e in events { try prepare(e) } }

    public func digests(of dots: [Dot]) throws(SyncError) -> [Dot: UInt64] {
        var out: [Dot: UInt64] = [:]
        for d in dots { if let held = try digest(of: d) { out[d] = held } }
        return out
    }

    /// Called before each request's work (the file store: nothing; PostgreSQL: see what other processes changed).
    public func beginRequest() throws(SyncError) {}
    public func beginRequest(about subject: RequestSubject) throws(SyncError) { try beginRequest() }
    public func endRequest() {}
}

/// An event accepted for storage: the event, its record as received or written, and the record's digest.
public struct AcceptedEvent: Sendable {
    public let event: Event
    public let record: [UInt8]
    public let digest: UInt64
    public init(event: Event, record: [UInt8], digest: UInt64) {
        self.event = event
        self.record = record
        self.digest = digest
    }
    public init(event: Event, record: [UInt8]) {
        self.init(event: event, record: record, digest: eventDigest(record))
    }
}

/// The digest a storage keeps for a sequence number recorded as lost for good: no event has it.
public let lostDigest: UInt64 = 0

/// What importing a bundle did.
public struct BundleImportReport: Sendable, Equatable, CustomStringConvertible {
    public var terminal: ReplicaId
    public var events: Int
    public var new: Int
    public var duplicates: Int
    public var acknowledged: UInt64
    public var description: String {
        "terminal \(terminal): \(events) events, \(new) new, \(duplicates) already held; acknowledged through seq \(acknowledged)"
    }
}

/// What an event's fold depends on beyond itself (sync-protocol.md, "Central state and
/// snapshots"): the sale it is filed under (nil for a ticket event, whose sale its request
/// names), the ticket it is about, and a capture's duplicate key. Every storage makes these
/// resident before the event is checked or applied: the sale's component, the ticket's
/// sale, the captures sharing the key.
public struct EventComponent: Sendable, Equatable {
    public var sale: SaleId?
    public var ticket: TicketId?
    public var duplicateKey: DuplicateKey?

    public init(_ event: Event) {
        switch event.body {
        case .saleCaptured(let c): sale = SaleId(event.dot); duplicateKey = c.duplicateKey
        case .saleConfirmed(let s), .saleDeclined(let s), .saleExpired(let s): sale = s
        case .refundRequested(let r): sale = r.sale; ticket = TicketId(event.dot)
        case .refundApproved(let t, _), .refundRejected(let t), .refundCancelled(let t),
             .refundCompleted(let t), .refundEscalated(let t), .noteAdded(let t, _): ticket = t
        case .unknown, .sequenceVoid: break
        }
    }
}
