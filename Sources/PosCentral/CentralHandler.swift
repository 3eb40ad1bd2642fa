import Foundation
import Logging
import PosJournal
import PosLedger
import PosWire

/// Central's side of the sync protocol, written once over any storage
/// (sync-protocol.md, "Sync protocol"): the handshake and the evidence a hello
/// carries, every check of a push (all or nothing), pull selection and the
/// redaction of payment codes, the recovery fetch, central's own events with
/// their money checks, enrollment and bundle import. A `CentralStorage` keeps
/// what is accepted; this type decides what is accepted.
///
/// One request at a time: every entry point holds `lock`.
public final class CentralHandler: SyncEndpoint, @unchecked Sendable {
    public let centralID: CentralID
    /// Serializes every request (and the storage calls it makes).
    let lock = NSLock()
    let storage: any CentralStorage
    let logger: Logger
    let environment: CentralEnvironment
    /// Where courier bundles are read from (the store's own file system by default).
    let bundleFileSystem: any JournalFileSystem

    /// What the handler knows of an enrolled terminal.
    struct TerminalEntry {
        let enrollment: Enrollment
        /// Derived once, at registration (a derivation costs about as much as decoding a hundred records).
        let journalKey: JournalKey
        let recordContext: RecordDecodeContext
        let decoder: FrameDecoder
        let sealer: FrameSealer
        var lastWallMillis: Int64? = nil
        var clockSkewed = false
    }
    var terminals: [ReplicaId: TerminalEntry] = [:]
    var hlc = HybridLogicalClock()
    /// Loss records already logged (each new one is logged once, at error level).
    /// Ids of the loss records already logged (a storage over several databases gives ids unique across them).
    var lossesLogged = Set<Int>()
    var pullBatchBytesValue = SyncLimits.pullBatchBytesMax
    var wallClockValue: @Sendable () -> Int64
    var faults = TestOnlyFaults()
    var appendObserverValue: (@Sendable (_ events: [Event], _ newConflicts: [ConflictRecord]) -> Void)?
    /// `head` as of the last append, behind a lock of its own (see `publishedHead`).
    private let headLock = NSLock()
    private var publishedHeadValue: UInt64 = 0

    /// Takes over an opened storage: reads its enrollments, resumes the clock after its newest event.
    public init(storage: any CentralStorage, environment: CentralEnvironment = CentralEnvironment(),
                bundleFileSystem: any JournalFileSystem = PosixFileSystem(),
                logger: Logger = Logger(label: "possync.central", factory: { _ in SwiftLogNoOpLogHandler() })) throws(SyncError) {
        self.storage = storage
        self.bundleFileSystem = bundleFileSystem
        centralID = storage.centralID
        self.environment = environment
        self.logger = logger
        wallClockValue = environment.wallMillis
        for e in try storage.enrollments() { register(e) }
        _ = try? hlc.receive(storage.newestHLC, wallMillis: wallClockValue())  // an absurd timestamp does not drag the clock
        lossesLogged = Set(storage.losses.map(\.id))
        publishedHeadValue = storage.head
    }

    /// A decoder of the frames terminal `e` sends (a push's second decoding thread builds its own here too).
    static func frameDecoder(for key: JournalKey) -> FrameDecoder { FrameDecoder(dictionaries: [ledgerDictionary], key: key) }

    func register(_ e: Enrollment) {
        let key = e.journalKey
        terminals[e.terminal] = TerminalEntry(enrollment: e, journalKey: key, recordContext: e.recordContext,
                                              decoder: Self.frameDecoder(for: key), sealer: FrameSealer(dictionary: ledgerDictionary, key: key))
    }

    func entry(_ terminal: ReplicaId) throws(SyncError) -> TerminalEntry {
        if terminals[terminal] == nil, !terminal.isCentral {
            // Enrolled by another process sharing the storage since this handler opened (PostgreSQL).
            for e in try storage.enrollments() where terminals[e.terminal] == nil { register(e) }
        }
        guard let t = terminals[terminal] else {
            throw SyncError(.notEnrolled, "terminal \(terminal.rawValue) was never enrolled at central \(centralID)")
        }
        return t
    }

    /// Runs `body` under the handler's lock with the storage (what a storage-specific view reads).
    public func withStorage<T>(_ body: (any CentralStorage) throws(SyncError) -> T) throws(SyncError) -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(storage)
    }

    /// Logs the loss records of the request's log not logged yet (by id: the log read within a request of a
    /// storage over several databases is that database's, and each database's ids are its own range).
    func logNewLosses() {
        for r in storage.losses where !lossesLogged.contains(r.id) {
            logger.error("loss recorded", metadata: ["loss.id": "\(r.id)", "loss.kind": "\(r.kind.rawValue)", "loss.note": "\(r.note)"])
            lossesLogged.insert(r.id)
        }
    }

    /// Ends the request `beginRequest(about:)` began (see `CentralStorage.endRequest()`); the published head is then every database's.
    func endRequest() {
        storage.endRequest()
        headLock.withLock { publishedHeadValue = storage.head }
    }

    // MARK: - Settings

    /// Records per pull batch, at most, in bytes (tests lower it to force many batches).
    public var pullBatchBytes: Int {
        get { lock.withLock { pullBatchBytesValue } }
        set { precondition(newValue > 0 && newValue <= SyncLimits.pullBatchBytesMax); lock.withLock { pullBatchBytesValue = newValue } }
    }

    /// Central's wall clock in Unix milliseconds, used for the clock-skew check at
    /// hello and for its HLC. The environment's clock unless replaced.
    public var wallClockMillis: @Sendable () -> Int64 {
        get { lock.withLock { wallClockValue } }
        set { lock.withLock { wallClockValue = newValue } }
    }

    /// Told of every append (under the handler's lock: it must return quickly and not call
    /// back into the handler), with the conflict records the append made: metrics and the
    /// notifier's wake-up. Set only when needed: finding new conflicts costs a pass over the resident ones.
    public var appendObserver: (@Sendable (_ events: [Event], _ newConflicts: [ConflictRecord]) -> Void)? {
        get { lock.withLock { appendObserverValue } }
        set { lock.withLock { appendObserverValue = newValue } }
    }

    /// Appends through the storage and tells the observer what was appended.
    @discardableResult
    func append(_ events: [AcceptedEvent], skipping gap: ClosedRange<UInt64>?) throws(SyncError) -> ClosedRange<UInt64> {
        defer { headLock.withLock { publishedHeadValue = storage.head } }
        guard let observer = appendObserverValue else { return try storage.append(events, skipping: gap) }
        let before = Set(storage.resident.conflicts)
        let positions = try storage.append(events, skipping: gap)
        observer(events.map(\.event), storage.resident.conflicts.filter { !before.contains($0) })
        return positions
    }

    /// Deliberate breakage, for proving that the simulator's checks can fail.
    /// Never set outside tests.
    public struct TestOnlyFaults: Sendable {
        /// Events for which this returns true are left out of pulls (a broken relay).
        public var dropFromPull: (@Sendable (Event) -> Bool)?
        /// Called after each batch of a bundle import is applied (durable), with the batches applied so far
        /// (crash tests kill the process there).
        public var afterImportBatch: (@Sendable (Int) -> Void)?
        /// Frames per batch of a bundle import, at most, instead of `SyncLimits.framesPerMessageMax` (small bundles, many batches).
        public var importBatchFramesMax: Int?
        public init(dropFromPull: (@Sendable (Event) -> Bool)? = nil, afterImportBatch: (@Sendable (Int) -> Void)? = nil, importBatchFramesMax: Int? = nil) {
            self.dropFromPull = dropFromPull
            self.afterImportBatch = afterImportBatch
            self.importBatchFramesMax = importBatchFramesMax
        }
    }
    @_spi(Testing) public var testOnlyFaults: TestOnlyFaults {
        get { lock.withLock { faults } }
        set { lock.withLock { faults = newValue } }
    }

    // MARK: - Protocol

    public func handle(_ request: SyncMessage) -> SyncMessage {
        lock.lock()
        defer { lock.unlock() }
        do throws(SyncError) {
            try storage.beginRequest(about: request.requestingTerminal.map { .terminal($0) } ?? .everything)
            defer { endRequest() }
            if let t = request.requestingTerminal, let note = storage.revocation(of: t) {
                throw SyncError.revoked(terminal: t.rawValue, note: note)
            }
            switch request {
            case .hello(let m): return .welcome(try hello(m))
            case .push(let m): return .ack(try push(m, source: "push"))
            case .pull(let m): return .events(try pull(m))
            case .fetch(let m): return .fetched(try fetch(m))
            default: throw SyncError(.malformed, "central does not take a \(request.typeByte)-type message")
            }
        } catch {
            logger.debug("sync request refused", metadata: ["sync.error": "\(error)"])
            return .refusal(.init(code: "\(error.code)", message: error.description))
        }
    }

    // MARK: - What central holds

    /// The folded state of every event central holds: read whole, so it costs
    /// memory and time in proportion to every event held (reports and checks;
    /// the sync path never needs it).
    public var state: LedgerState {
        get throws(SyncError) {
            lock.lock()
            defer { lock.unlock() }
            try storage.beginRequest(about: .everything)
            defer { endRequest() }
            return try storage.fullState()
        }
    }

    /// The folded state of every event central holds, in parts (see
    /// `CentralStorage.forEachStatePart`): what a report over a large store
    /// reads. `body` runs under the handler's lock and must not call back into it.
    public func forEachStatePart(_ body: (LedgerState) throws(SyncError) -> Void) throws(SyncError) {
        lock.lock()
        defer { lock.unlock() }
        try storage.beginRequest(about: .everything)
        defer { endRequest() }
        try storage.forEachStatePart(body)
    }

    public func context(of key: EntityKey) throws(SyncError) -> VersionVector {
        lock.lock()
        defer { lock.unlock() }
        try storage.beginRequest(about: .entity(key))
        defer { endRequest() }
        try storage.prepare(key)
        let context = storage.resident.context(of: key)
        storage.didRead()
        return context
    }

    /// A state exact for one sale or ticket: it holds the entity with everything
    /// its fold depends on (the sale, the sale's tickets, the captures sharing its
    /// payment code). Other entities may be absent. Cheap, unlike `state`.
    public func state(around key: EntityKey) throws(SyncError) -> LedgerState {
        lock.lock()
        defer { lock.unlock() }
        try storage.beginRequest(about: .entity(key))
        defer { endRequest() }
        try storage.prepare(key)
        let state = storage.resident
        storage.didRead()
        return state
    }

    /// Sales with a capture and no outcome yet (captured, or void-duplicate), in
    /// sale-id order: what forwarding to the acquirer works through; decide each
    /// with `state(around:)`.
    public func salesAwaitingOutcome() throws(SyncError) -> [SaleId] {
        lock.lock()
        defer { lock.unlock() }
        try storage.beginRequest(about: .everything)
        defer { endRequest() }
        return try storage.salesAwaitingOutcome()
    }

    /// The digest central keeps of the event it holds under `dot` (nil when it holds none).
    public func digest(of dot: Dot) throws(SyncError) -> UInt64? {
        lock.lock()
        defer { lock.unlock() }
        return try storage.digest(of: dot)
    }

    /// A terminal's high-water mark at central.
    public func acknowledged(_ terminal: ReplicaId) -> UInt64 { lock.withLock { storage.mark(of: terminal) } }

    public var enrolledTerminals: [Enrollment] { lock.withLock { terminals.values.map(\.enrollment).sorted { $0.terminal < $1.terminal } } }

    /// Terminals that tried to rewrite accepted events, and those whose clock was off at their last sync.
    public var flaggedTerminals: (rewroteHistory: [ReplicaId], clockSkewed: [ReplicaId]) {
        lock.withLock {
            (storage.flaggedTerminals().keys.sorted(), terminals.filter { $0.value.clockSkewed }.keys.sorted())
        }
    }

    /// The enrollment of `terminal` (nil: central never enrolled it).
    public func enrollment(of terminal: ReplicaId) -> Enrollment? { lock.withLock { terminals[terminal]?.enrollment } }

    /// Why `terminal`'s enrollment was revoked (nil: it was not).
    public func revocation(of terminal: ReplicaId) -> String? { lock.withLock { storage.revocation(of: terminal) } }

    /// Revokes an enrolled terminal for good: its hello, push, pull and fetch are refused
    /// (`revoked`; 403 over HTTP) and its bundles are imported only when asked to.
    public func revoke(terminal: ReplicaId, note: String) throws(SyncError) {
        lock.lock()
        defer { lock.unlock() }
        guard terminals[terminal] != nil else {
            throw SyncError(.notEnrolled, "terminal \(terminal.rawValue) was never enrolled at central \(centralID)")
        }
        if storage.revocation(of: terminal) != nil { return }
        try storage.revoke(terminal, note: note)
        logger.warning("terminal enrollment revoked", metadata: ["sync.terminal": "\(terminal.rawValue)", "revoke.note": "\(note)"])
    }

    /// Every revoked terminal, with when and why.
    public var revokedTerminals: [ReplicaId: String] { lock.withLock { storage.revokedTerminals() } }

    /// Each terminal's last kept clock reading (see `ClockReading`).
    public var clockReadings: [ReplicaId: ClockReading] { lock.withLock { storage.clockReadings() } }

    /// The last durable journal position.
    public var head: UInt64 { lock.withLock { storage.head } }

    /// The last durable journal position as of the last append, read without waiting for the
    /// handler's lock (a push in progress holds it): what a health check or a metric reports.
    public var publishedHead: UInt64 { headLock.withLock { publishedHeadValue } }

    /// Central's loss log: every journal cut, every loss a terminal's hello revealed, and what became of each.
    public var lossRecords: [LossRecord] { lock.withLock { storage.losses } }

    /// Central's history epoch (how many times its journal was cut or rebuilt).
    public var epoch: UInt64 { lock.withLock { storage.losses.epoch } }

    public func close() throws(SyncError) {
        lock.lock()
        defer { lock.unlock() }
        try storage.close()
    }
}

/// What central takes from its surroundings: the wall clock and fresh
/// secrets. Real by default; a simulation supplies seeded ones so a run
/// replays exactly.
public struct CentralEnvironment: Sendable {
    public var wallMillis: @Sendable () -> Int64
    public var secret: @Sendable () -> [UInt8]
    public init(wallMillis: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) },
                secret: @escaping @Sendable () -> [UInt8] = { KeyDerivation.randomSecret() }) {
        self.wallMillis = wallMillis
        self.secret = secret
    }
}
