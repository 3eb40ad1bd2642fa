import Crypto
import Foundation
import Logging
import PosJournal
import PosLedger

/// The embedded central store: one directory, no server.
///
///     central.json          identity (central id) and central's secret, mode 0600
///     terminals/T.json      each enrolled terminal's enrollment (merchant, secret), mode 0600
///     merchants/M.json      each merchant's duplicate-detection key, mode 0600
///     journal/              central's journal: every accepted event, in acceptance order
///     state/run-A-B.pss     snapshot runs: the folded state, filed by sale, of flushes A...B (CentralState)
///
/// Every accepted event is in the journal before it is acknowledged (the
/// append returns after fsync). The runs save work and memory: on open, central
/// takes the chain of runs that check and replays the journal after it; a
/// missing or damaged run means replaying more of the journal. Memory holds
/// the sales touched since the last flush, not every event.
public final class FileCentralStore: CentralStore, @unchecked Sendable {
    public let directory: String
    public let centralID: CentralID
    private let secret: [UInt8]
    let lock = NSLock()
    private let journal: Journal
    private let logger: Logger

    struct TerminalEntry {
        let enrollment: Enrollment
        let decoder: FrameDecoder
        let sealer: FrameSealer
        var acknowledged: UInt64 = 0
        var rewroteHistory = false
        var lastWallMillis: Int64? = nil
        var clockSkewed = false
    }
    var terminals: [ReplicaId: TerminalEntry] = [:]
    private var merchantKeys: [String: [UInt8]] = [:]
    /// Central's own events so far (its dots are (central, 1...)).
    private(set) var centralSequence: UInt64 = 0
    /// The folded state and the digests of accepted events, on disk with a bounded part in memory.
    private var ledger: CentralState!
    /// The journal position of the last event folded, and its record's digest (what a run is tied to).
    private var lastApplied: (position: UInt64, digest: UInt64) = (0, 0)
    private var hlc = HybridLogicalClock()
    /// Evidence of lost data and what became of it (`losses.jsonl`).
    let losses: LossLog
    /// Central's own sequence numbers through this may be in use (`sequence-reservation.json`).
    private var reservedThrough: UInt64
    /// Records per pull batch, at most, in bytes (tests lower it to force many batches).
    public var pullBatchBytes: Int {
        get { lock.withLock { pullBatchBytesValue } }
        set { precondition(newValue > 0 && newValue <= SyncLimits.pullBatchBytesMax); lock.withLock { pullBatchBytesValue = newValue } }
    }
    private var pullBatchBytesValue = SyncLimits.pullBatchBytesMax
    /// Central's wall clock in Unix milliseconds, used for the clock-skew check at
    /// hello and for its HLC. The environment's clock unless replaced (the CLI's
    /// `--now` / `POSSYNC_NOW`, the demo's simulated days).
    public var wallClockMillis: @Sendable () -> Int64 {
        get { lock.withLock { wallClockValue } }
        set { lock.withLock { wallClockValue = newValue } }
    }
    private var wallClockValue: @Sendable () -> Int64

    /// Deliberate breakage, for proving that the simulator's checks can fail.
    /// Never set outside tests.
    public struct TestOnlyFaults: Sendable {
        /// Events for which this returns true are left out of pulls (a broken relay).
        public var dropFromPull: (@Sendable (Event) -> Bool)?
        public init(dropFromPull: (@Sendable (Event) -> Bool)? = nil) { self.dropFromPull = dropFromPull }
    }
    public var testOnlyFaults: TestOnlyFaults {
        get { lock.withLock { faults } }
        set { lock.withLock { faults = newValue } }
    }
    private var faults = TestOnlyFaults()

    /// Creates a new central store in an empty or missing directory.
    /// `lockWaitMillis` is how long to wait for another process's lock on the
    /// directory (see `open`).
    public static func create(directory: String, fileSystem: any JournalFileSystem = PosixFileSystem(),
                              environment: CentralEnvironment = CentralEnvironment(),
                              snapshotEvents: Int = SyncLimits.centralSnapshotEventsDefault,
                              lockWaitMillis: Int64 = StoreLockLimits.waitMillisDefault,
                              logger: Logger? = nil) throws(SyncError) -> FileCentralStore {
        let files = FileStore(fs: fileSystem)
        try files.makeDirectories(directory)
        let storeLock = try StoreDirectory.lock(directory, fileSystem: fileSystem, waitMillis: lockWaitMillis)
        if files.exists(directory + "/central.json") {
            throw SyncError(.invalidArgument, "a central store already exists here", location: directory)
        }
        if files.exists(directory + "/enrollment.json") {
            throw SyncError(.invalidArgument, "a terminal store is here (enrollment.json): a central store needs its own directory", location: directory)
        }
        try files.makeDirectories(directory + "/terminals")
        try files.makeDirectories(directory + "/merchants")
        try files.makeDirectories(directory + "/state")
        let identity = CentralIdentity(central: CentralID(bytes: Array(environment.secret().prefix(16)))!, secret: environment.secret())
        try files.writeAtomically(identity.encoded(), to: directory + "/central.json")
        return try open(directory: directory, identity: identity, files: files, storeLock: storeLock, environment: environment,
                        snapshotEvents: snapshotEvents, logger: logger)
    }

    /// Opens an existing store: its newest good snapshot, then the journal after it.
    /// `snapshotEvents` (> 0) is how many events are folded between snapshots.
    /// The store's directory lock (`LOCK`) is held until `close()`: a second
    /// process waits up to `lockWaitMillis` for it, then fails with `locked`.
    public static func open(directory: String, fileSystem: any JournalFileSystem = PosixFileSystem(),
                            environment: CentralEnvironment = CentralEnvironment(),
                            snapshotEvents: Int = SyncLimits.centralSnapshotEventsDefault,
                            lockWaitMillis: Int64 = StoreLockLimits.waitMillisDefault,
                            logger: Logger? = nil) throws(SyncError) -> FileCentralStore {
        guard snapshotEvents > 0 else { throw SyncError(.invalidArgument, "snapshotEvents must be positive, not \(snapshotEvents)") }
        let files = FileStore(fs: fileSystem)
        guard files.exists(directory + "/central.json") else {
            throw SyncError(.notFound, "no central store here (central.json missing)", location: directory)
        }
        let storeLock = try StoreDirectory.lock(directory, fileSystem: fileSystem, waitMillis: lockWaitMillis)
        let identity = try CentralIdentity.decode(files.read(directory + "/central.json"), path: directory + "/central.json")
        return try open(directory: directory, identity: identity, files: files, storeLock: storeLock, environment: environment,
                        snapshotEvents: snapshotEvents, logger: logger)
    }

    static func open(directory: String, identity: CentralIdentity, files: FileStore, storeLock: any StoreLockHandle,
                     environment: CentralEnvironment, snapshotEvents: Int, recovering: Bool = false, logger: Logger?) throws(SyncError) -> FileCentralStore {
        do {
            return try FileCentralStore(directory: directory, identity: identity, files: files, storeLock: storeLock,
                                        environment: environment, snapshotEvents: snapshotEvents, recovering: recovering,
                                        logger: logger ?? Logger(label: "possync.central", factory: { _ in SwiftLogNoOpLogHandler() }))
        } catch {
            storeLock.release()
            throw error
        }
    }

    private let files: FileStore
    private let environment: CentralEnvironment
    /// The directory's lock, held from open to close.
    private let storeLock: any StoreLockHandle

    private init(directory: String, identity: CentralIdentity, files: FileStore, storeLock: any StoreLockHandle,
                 environment: CentralEnvironment, snapshotEvents: Int, recovering: Bool = false, logger: Logger) throws(SyncError) {
        self.directory = directory
        self.files = files
        self.storeLock = storeLock
        self.environment = environment
        wallClockValue = environment.wallMillis
        centralID = identity.central
        secret = identity.secret
        self.logger = logger
        let config = JournalConfiguration(durability: .perRecord, dictionary: ledgerDictionary,
                                          key: KeyDerivation.centralJournalKey(secret: identity.secret))
        // The secret must open the journal before anything is cut or set aside: under another secret
        // (central.json damaged, or another store's) every snapshot run fails authentication and would
        // be set aside as damaged before the journal's replay refused.
        try Self.checkJournalKey(directory: directory + "/journal", key: config.key!, fileSystem: files.fs, identityFile: directory + "/central.json")
        let losses = try LossLog(directory: directory, files: files)
        self.losses = losses
        let reserved = try SequenceReservation.read(directory: directory, files: files)
        reservedThrough = reserved
        if !files.exists(directory + "/state") { try files.makeDirectories(directory + "/state") }  // a store from before snapshots
        // Evidence beats bytes: a run covering positions proves they were durable, so a cut below it is refused.
        var evidence: DurableEvidence? = nil
        if !recovering, let covered = try CentralState.coverage(directory: directory + "/state", fileSystem: files.fs, central: identity.central, secret: identity.secret) {
            evidence = DurableEvidence(sequence: covered.meta.position, source: "covered by snapshot run state/\(covered.name)")
        }
        let now = environment.wallMillis
        let journalPath = directory + "/journal"
        do throws(JournalError) {
            journal = try Journal.open(directory: journalPath, configuration: config, fileSystem: files.fs, evidence: evidence,
                                       beforeRepair: { (report, last) throws(JournalError) in
                // Recorded before the cut, so a crash cannot leave a cut with no record.
                guard let t = report.truncation, !losses.hasCut(file: t.file, offset: t.offset) else { return }
                do throws(SyncError) {
                    try losses.append(LossRecord(kind: .journalCut, recordedMillis: now(), positionsFrom: last + 1, file: t.file, offset: t.offset,
                                                 bytes: t.bytesRemoved, centralSequenceFloor: reserved,
                                                 note: "cut \(t.bytesRemoved) bytes at offset \(t.offset) (\(t.reason)): journal positions from \(last + 1) are gone; terminals re-push what central had acknowledged"))
                } catch {
                    throw JournalError(.io, "cannot record the cut in \(losses.path): \(error.message)", file: t.file, offset: t.offset)
                }
            }, logger: logger)
        } catch where error.code == .behindEvidence {
            throw SyncError(.journal, "\(error); run `possync central recover --dir \(directory)` to accept the loss and record it", location: nil)
        } catch {
            throw SyncError(error)
        }
        if let t = journal.recoveryReport.truncation {
            logger.error("central journal cut at open: acknowledged events may be lost; terminals re-push them (see losses.jsonl)",
                         metadata: ["journal.file": "\(t.file)", "journal.offset": "\(t.offset)", "journal.bytes_removed": "\(t.bytesRemoved)"])
        }
        for name in files.list(directory + "/merchants") where name.hasSuffix(".json") {
            let path = directory + "/merchants/" + name
            guard let key = hexDecode(String(decoding: try files.read(path), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)), key.count == 32 else {
                throw SyncError(.malformed, "merchant key file: 64 hex digits expected", location: path)
            }
            merchantKeys[String(name.dropLast(5))] = key
        }
        for name in files.list(directory + "/terminals") where name.hasSuffix(".json") {
            let e = try Enrollment.read(from: directory + "/terminals/" + name, fileSystem: files.fs)
            register(e)
        }
        do {
            let j = journal
            let digestAt = { (position: UInt64) throws(SyncError) -> UInt64? in
                let reader = try PosSync.journal { () throws(JournalError) in try j.reader(from: position) }
                defer { reader.close() }
                guard let (at, record) = try PosSync.journal({ () throws(JournalError) in try reader.next() }), at == position else { return nil }
                return Self.digest(record)
            }
            ledger = try CentralState(directory: directory + "/state", fileSystem: files.fs, central: centralID, secret: secret,
                                      journalHead: journal.lastSequence, journalDigest: digestAt,
                                      snapshotEvents: snapshotEvents, logger: logger)
            try rebuild()
            lossesLogged = losses.records.count
        } catch {
            ledger?.close()
            try? journal.close()
            throw error
        }
    }

    /// Decrypts the journal's first record, changing nothing: a frame whose checksums hold but which
    /// fails authentication was sealed under another key. Damage and read errors are left to the open.
    static func checkJournalKey(directory: String, key: JournalKey, fileSystem: any JournalFileSystem, identityFile: String) throws(SyncError) {
        guard let first = (try? Journal.oldestSegmentBase(directory: directory, fileSystem: fileSystem)).flatMap({ $0 }) else { return }
        do {
            let reader = try JournalReader(directory: directory, fileSystem: fileSystem, dictionaries: [ledgerDictionary], key: key, from: first, through: first)
            defer { reader.close() }
            _ = try reader.next()
        } catch where error.code == .authenticationFailed || error.code == .wrongKey {
            throw SyncError(.journal, "\(error); the secret in \(identityFile) does not open central's journal: that file is damaged or belongs to another store; nothing was changed (restore it from a backup)", location: identityFile)
        } catch {
            return
        }
    }

    private func register(_ e: Enrollment) {
        terminals[e.terminal] = TerminalEntry(
            enrollment: e,
            decoder: FrameDecoder(dictionaries: [ledgerDictionary], key: e.journalKey),
            sealer: FrameSealer(dictionary: ledgerDictionary, key: e.journalKey),
            rewroteHistory: files.exists("\(directory)/terminals/\(e.terminal.rawValue).flagged"))
    }

    /// Takes what the snapshot says (high-water marks, central's sequence, its
    /// HLC), then replays the journal after it, snapshotting as it goes.
    private func rebuild() throws(SyncError) {
        var from: UInt64 = 1
        if let meta = ledger.meta {
            for (replica, ack) in meta.acknowledged {
                guard terminals[replica] != nil else {
                    throw SyncError(.notEnrolled, "the snapshot holds events of terminal \(replica.rawValue), which has no enrollment file", location: directory + "/terminals")
                }
                terminals[replica]!.acknowledged = ack
            }
            centralSequence = meta.centralSequence
            _ = try? hlc.receive(HLCTimestamp(rawValue: meta.lastHLC), wallMillis: wallClockValue())
            from = meta.position + 1
            lastApplied = (meta.position, meta.journalDigest)
        }
        guard from <= journal.lastSequence else { return }
        let reader = try PosSync.journal { () throws(JournalError) in try journal.reader(from: from) }
        defer { reader.close() }
        var events: [Event] = []
        var records: [[UInt8]] = []
        var last: (position: UInt64, digest: UInt64) = (0, 0)
        func flush() {
            ledger.apply(events, records: records)
            if !records.isEmpty { lastApplied = last }
            events.removeAll(keepingCapacity: true)
            records.removeAll(keepingCapacity: true)
            snapshotAfterWrite()  // a run that cannot be written must not stop central from opening
        }
        while let (position, record) = try PosSync.journal({ () throws(JournalError) in try reader.next() }) {
            let event: Event
            do { event = try RecordCodec.decode(record) } catch {
                throw SyncError(error, location: "\(directory)/journal position \(position)")
            }
            let origin = event.dot.replica
            if origin.isCentral {
                // Central's own numbers only grow; they skip numbers that lost events may have used (losses.jsonl).
                guard event.dot.seq > centralSequence else {
                    throw SyncError(.sequenceGap, "journal position \(position) holds \(event.dot), expected a central seq above \(centralSequence)", location: directory + "/journal")
                }
                for _ in (centralSequence + 1)..<event.dot.seq { ledger.appendDigest(.central, Self.lostDigest) }
                centralSequence = event.dot.seq
            } else if let acknowledged = terminals[origin]?.acknowledged {
                if event.dot.seq != acknowledged + 1 {
                    // Only a gap the loss log records as lost for good may be skipped.
                    let gap = (acknowledged + 1)...(event.dot.seq - 1)
                    guard event.dot.seq > acknowledged + 1, losses.skipped(origin).contains(where: { $0 == gap }) else {
                        throw SyncError(.sequenceGap, "journal position \(position) holds \(event.dot), expected seq \(acknowledged + 1) of \(origin)", location: directory + "/journal")
                    }
                    for _ in gap { ledger.appendDigest(origin, Self.lostDigest) }
                }
                terminals[origin]!.acknowledged = event.dot.seq
            } else {
                throw SyncError(.notEnrolled, "journal position \(position) holds \(event.dot) of a terminal with no enrollment file", location: directory + "/terminals")
            }
            let digest = Self.digest(record)
            ledger.appendDigest(origin, digest)
            try ledger.prepare(event)
            events.append(event)
            records.append(record)
            last = (position, digest)
            _ = try? hlc.receive(event.hlc, wallMillis: wallClockValue())  // an absurd timestamp does not drag the clock
            if events.count >= 4096 || ledger.eventsSinceSnapshot + events.count >= ledger.snapshotEvents { flush() }
        }
        flush()
    }

    /// Loss records already logged (each new one is logged once, at error level).
    private var lossesLogged = 0

    private func logNewLosses() {
        for r in losses.records[lossesLogged...] {
            logger.error("loss recorded", metadata: ["loss.id": "\(r.id)", "loss.kind": "\(r.kind.rawValue)", "loss.note": "\(r.note)"])
        }
        lossesLogged = losses.records.count
    }

    /// The digest kept for a sequence number recorded as lost for good: no event has it.
    static let lostDigest: UInt64 = 0

    /// After a durable write (or a read that loaded sales): the events are
    /// accepted whatever happens to the snapshot, so a failure to write one is
    /// logged, the journal stays the truth, and the next write (or open) tries again.
    private func snapshotAfterWrite() {
        do { try snapshotIfDue() } catch {
            logger.error("snapshot failed; it will be retried", metadata: ["sync.error": "\(error)"])
        }
    }

    /// Writes a snapshot when enough events were folded since the last one.
    /// The run covers every event applied: journal positions 1...lastApplied.position.
    private func snapshotIfDue() throws(SyncError) {
        guard ledger.flushDue else { return }
        try ledger.writeSnapshot(position: lastApplied.position, journalDigest: lastApplied.digest,
                                 centralSequence: centralSequence, lastHLC: hlc.last.rawValue,
                                 acknowledged: terminals.mapValues(\.acknowledged))
    }

    /// The digest central keeps of the event it holds under `dot` (nil when it holds none):
    /// the first 8 bytes of SHA-256 of the record, as `eventDigest` computes.
    public func digest(of dot: Dot) throws(SyncError) -> UInt64? {
        lock.lock()
        defer { lock.unlock() }
        return try ledger.digest(dot.replica, dot.seq)
    }

    /// First 8 bytes of SHA-256 of an encoded event.
    public static func eventDigest(_ record: [UInt8]) -> UInt64 { digest(record) }

    static func digest(_ record: [UInt8]) -> UInt64 {
        let d = SHA256.hash(data: record)
        return d.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
    }

    // MARK: - Enrollment and central's own events

    /// Enrolls a terminal: issues its secret and returns its enrollment.
    public func enroll(terminal: ReplicaId, merchant: String) throws(SyncError) -> Enrollment {
        lock.lock()
        defer { lock.unlock() }
        guard !terminal.isCentral else { throw SyncError(.invalidArgument, "replica 0 is central; a terminal needs a non-zero id") }
        guard terminals[terminal] == nil else {
            throw SyncError(.invalidArgument, "terminal \(terminal.rawValue) is already enrolled", location: directory + "/terminals")
        }
        guard !merchant.isEmpty, merchant.utf8.count <= 64,
              merchant.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
            throw SyncError(.invalidArgument, "merchant id \"\(merchant)\": 1 to 64 of A-Z a-z 0-9 - _")
        }
        if merchantKeys[merchant] == nil {
            let key = environment.secret()
            try files.writeAtomically(Array((hexEncode(key) + "\n").utf8), to: "\(directory)/merchants/\(merchant).json")
            merchantKeys[merchant] = key
        }
        let e = Enrollment(central: centralID, terminal: terminal, merchant: merchant,
                           secret: environment.secret(), merchantKey: merchantKeys[merchant]!)
        try e.write(to: "\(directory)/terminals/\(terminal.rawValue).json", fileSystem: files.fs)
        register(e)
        return e
    }

    /// Records an event central writes (decisions, sale outcomes, completions).
    @discardableResult
    public func record(_ body: EventBody, wallMillis: Int64) throws(SyncError) -> Event {
        try record(body, wallMillis: wallMillis, checkingAdmission: true)
    }

    /// `checkingAdmission: false` only in tests: an event the fold will not take yet
    /// (a decision on a ticket whose request central does not hold, as a pushed
    /// forged event could be) is what makes loose events.
    func record(_ body: EventBody, wallMillis: Int64, checkingAdmission: Bool) throws(SyncError) -> Event {
        lock.lock()
        defer { lock.unlock() }
        guard let kind = body.kind, kind.mayBeWritten(by: .central) else {
            throw SyncError(.notAuthorized, "central may not write \(body.kind.map { "\($0)" } ?? "an unknown event")")
        }
        // Above every number a lost event may have used (losses.jsonl), so no dot is reused.
        let dot = try! Dot(replica: .central, seq: max(centralSequence, losses.centralSequenceFloor) + 1)
        try ledger.prepare(Event(dot: dot, hlc: .zero, context: VersionVector(), body: body))
        try checkMoneyMoves(body)
        let stamp: HLCTimestamp
        do { stamp = try hlc.now(wallMillis: wallMillis) } catch { throw SyncError(error) }
        let event = Event(dot: dot, hlc: stamp, context: ledger.resident.writerContext(for: body, dot: dot), body: body)
        // A writer never records what its own fold would ignore (the entity is resident: prepared above).
        if checkingAdmission {
            do { try ledger.resident.checkAdmission(event) } catch { throw SyncError(error) }
        }
        let record = RecordCodec.encode(event)
        if dot.seq > reservedThrough {
            // Reserve numbers before using them: after a journal cut, central numbers its events above the reservation.
            let next = dot.seq + SyncLimits.centralSequenceReservation - 1
            try SequenceReservation.write(next, directory: directory, files: files)
            reservedThrough = next
        }
        let position = try PosSync.journal { () throws(JournalError) in try journal.append(record) }
        for _ in (centralSequence + 1)..<dot.seq { ledger.appendDigest(.central, Self.lostDigest) }
        centralSequence = dot.seq
        let digest = Self.digest(record)
        ledger.appendDigest(.central, digest)
        ledger.apply([event], records: [record])
        lastApplied = (position, digest)
        snapshotAfterWrite()
        return event
    }

    /// For `central recover` when the reservation file did not read: reserves afresh above every own
    /// number the store shows in use (its journal, its runs, the loss log) by a whole reservation,
    /// which covers whatever the damaged file reserved beyond the last number used (a reservation is
    /// written when a number above it is about to be used, and reaches that number + the reservation - 1).
    func renewReservation(above evidence: UInt64) throws(SyncError) -> UInt64 {
        lock.lock()
        defer { lock.unlock() }
        let next = max(centralSequence, evidence, losses.centralSequenceFloor, reservedThrough) + SyncLimits.centralSequenceReservation
        try SequenceReservation.write(next, directory: directory, files: files)
        reservedThrough = next
        return next
    }

    /// Money moves only on firm ground, checked on the state under the same lock
    /// as the write: a refund is completed only when its ticket is approved and
    /// its sale confirmed; a void-duplicate capture is never sent to the acquirer.
    private func checkMoneyMoves(_ body: EventBody) throws(SyncError) {
        switch body {
        case .refundCompleted(let ticket):
            guard let t = ledger.resident.tickets[ticket] else {
                throw SyncError(.invalidArgument, "cannot complete \(ticket): central does not hold its request")
            }
            guard t.status == .approved else {
                throw SyncError(.invalidArgument, "cannot complete \(ticket): it is \(t.status), not approved")
            }
            let sale = ledger.resident.sales[t.sale]?.status
            guard sale == .confirmed else {
                throw SyncError(.invalidArgument, "cannot complete \(ticket): its sale \(t.sale) is \(sale.map { "\($0)" } ?? "unknown"), not confirmed")
            }
        case .saleConfirmed(let sale), .saleDeclined(let sale), .saleExpired(let sale):
            let status = ledger.resident.sales[sale]?.status
            guard status == .captured else {
                throw SyncError(.invalidArgument, "cannot record the acquirer's outcome for \(sale): it is \(status.map { "\($0)" } ?? "unknown") (only a captured sale is forwarded; a void-duplicate never is)")
            }
        default:
            break
        }
    }

    // MARK: - State

    /// The folded state of every event central holds: read whole from the
    /// snapshot, so it costs memory and time in proportion to every event
    /// held (reports and checks; the sync path never needs it).
    public var state: LedgerState {
        get throws(SyncError) {
            lock.lock()
            defer { lock.unlock() }
            return try ledger.fullState()
        }
    }

    public func context(of key: EntityKey) throws(SyncError) -> VersionVector {
        lock.lock()
        defer { lock.unlock() }
        try ledger.prepare(key)
        let context = ledger.resident.context(of: key)
        snapshotAfterWrite()  // what the read loaded counts toward the flush interval
        return context
    }

    /// A state exact for one sale or ticket: it holds the entity with everything
    /// its fold depends on (the sale, the sale's tickets, the captures sharing its
    /// payment code), read from the snapshot as needed. Other entities may be
    /// absent. Cheap, unlike `state`.
    public func state(around key: EntityKey) throws(SyncError) -> LedgerState {
        lock.lock()
        defer { lock.unlock() }
        try ledger.prepare(key)
        let state = ledger.resident
        snapshotAfterWrite()  // what the read loaded counts toward the flush interval
        return state
    }

    /// Sales with a capture and no outcome yet (captured, or void-duplicate),
    /// in sale-id order: what forwarding to the acquirer works through. Read
    /// from the runs as a stream, so memory does not grow with the sales held;
    /// decide each with `state(around:)`.
    public func salesAwaitingOutcome() throws(SyncError) -> [SaleId] {
        lock.lock()
        defer { lock.unlock() }
        var ids = try ledger.runSalesWithCaptureAndNoOutcome()
        let resident = ledger.resident
        for id in resident.sales.keys where resident.capture(of: id) != nil && resident.eventDots(of: id).count == 1 { ids.append(id) }
        return Array(Set(ids)).sorted()
    }

    /// What the state on disk is doing: flushes (snapshot runs written) and
    /// compactions since open, runs now, and events folded since the last flush.
    public struct SnapshotStatistics: Sendable, Equatable {
        public var written: Int
        public var compactions: Int
        public var runs: Int
        public var eventsSinceSnapshot: Int
    }

    public var snapshotStatistics: SnapshotStatistics {
        lock.withLock {
            SnapshotStatistics(written: ledger.snapshotsWritten, compactions: ledger.compactions, runs: ledger.runs.count,
                               eventsSinceSnapshot: ledger.eventsSinceSnapshot)
        }
    }

    /// Every held event of one merchant's entities, for comparing with a terminal.
    public func acknowledged(_ terminal: ReplicaId) -> UInt64 { lock.withLock { terminals[terminal]?.acknowledged ?? 0 } }

    public var enrolledTerminals: [Enrollment] { lock.withLock { terminals.values.map(\.enrollment).sorted { $0.terminal < $1.terminal } } }

    /// Terminals that tried to rewrite accepted events, and those whose clock was off at their last sync.
    public var flaggedTerminals: (rewroteHistory: [ReplicaId], clockSkewed: [ReplicaId]) {
        lock.withLock {
            (terminals.filter { $0.value.rewroteHistory }.keys.sorted(), terminals.filter { $0.value.clockSkewed }.keys.sorted())
        }
    }

    public var head: UInt64 { journal.lastSequence }

    /// Central's loss log (`losses.jsonl`): every journal cut, every loss a terminal's hello revealed, and what became of each.
    public var lossRecords: [LossRecord] { lock.withLock { losses.records } }

    /// Central's history epoch (how many times its journal was cut or rebuilt).
    public var epoch: UInt64 { lock.withLock { losses.epoch } }

    // MARK: - Protocol

    public func handle(_ request: SyncMessage) -> SyncMessage {
        lock.lock()
        defer { lock.unlock() }
        do throws(SyncError) {
            switch request {
            case .hello(let m): return .welcome(try hello(m))
            case .push(let m): return .ack(try push(m, source: "push"))
            case .pull(let m): return .events(try pull(m))
            case .fetch(let m): return .fetched(try fetch(m))
            default: throw SyncError(.malformed, "central does not take a \(request.typeByte)-type message")
            }
        } catch {
            logger.warning("sync request refused", metadata: ["sync.error": "\(error)"])
            return .refusal(.init(code: "\(error.code)", message: error.description))
        }
    }

    private func entry(_ terminal: ReplicaId) throws(SyncError) -> TerminalEntry {
        guard let t = terminals[terminal] else {
            throw SyncError(.notEnrolled, "terminal \(terminal.rawValue) was never enrolled at central \(centralID)")
        }
        return t
    }

    private func hello(_ m: SyncMessage.Hello) throws(SyncError) -> SyncMessage.Welcome {
        guard m.central == centralID else {
            throw SyncError(.wrongCentral, "terminal \(m.terminal.rawValue) belongs to central \(m.central), this is \(centralID)")
        }
        var t = try entry(m.terminal)
        let now = wallClockValue()
        t.lastWallMillis = m.wallMillis
        // Overflow-safe: the terminal's clock comes from the wire.
        t.clockSkewed = HybridLogicalClock.isSkewed(terminalWallMillis: m.wallMillis, centralWallMillis: now, boundMillis: SyncLimits.clockSkewMillisMax)
        terminals[m.terminal] = t
        try noteEvidence(of: m, holding: t.acknowledged, now: now)
        let head = journal.durableSequence
        let epoch = losses.epoch
        let cursorMax = m.epoch < epoch ? min(head, losses.cursorLimit(sinceEpoch: m.epoch) ?? head) : head
        return .init(acknowledged: t.acknowledged, head: head, clockSkewed: t.clockSkewed,
                     epoch: epoch, cursorMax: cursorMax, wallMillis: now)
    }

    /// A hello is evidence: a terminal that recorded an acknowledgement above
    /// what central holds of it, or that holds central's own events beyond
    /// central's, shows central lost them. Each is recorded once; the terminal
    /// then re-pushes what it still has.
    ///
    /// When the terminal's last session was in the current history epoch, that
    /// evidence, or a pull cursor beyond the journal's head, shows a loss no
    /// recorded cut explains: the journal lost its tail with no torn frame to
    /// show it (cut at a frame boundary, a segment lost, restored from a
    /// backup), and positions after the loss may hold other events now than
    /// the ones terminals pulled there. Where the loss began is not known, so
    /// it is recorded as a history change from position 1: every pull cursor
    /// set before it starts again from the beginning (the knowledge vectors
    /// keep what is held from coming twice), and central's own numbers go on
    /// above its reservation.
    private func noteEvidence(of m: SyncMessage.Hello, holding acknowledged: UInt64, now: Int64) throws(SyncError) {
        defer { if losses.records.count > lossesLogged { logNewLosses() } }
        let head = journal.durableSequence
        let heldOwn = m.knowledge[.central]
        let terminalBehind = m.acknowledged > acknowledged
        let centralBehind = heldOwn > max(centralSequence, losses.centralSequenceFloor)
        // A cursor still within the journal must name the record the terminal pulled there; another one means
        // the positions were reused after a loss (unless a recorded cut since the terminal's epoch already rewinds it).
        var cursorRewritten = false
        if m.cursorDigest != 0, m.pullCursor >= 1, m.pullCursor <= head,
           m.epoch == losses.epoch || (losses.cursorLimit(sinceEpoch: m.epoch) ?? .max) >= m.pullCursor {
            cursorRewritten = try digestAtPosition(m.pullCursor) != m.cursorDigest
        }
        let unexplained = (m.epoch == losses.epoch && (terminalBehind || centralBehind || m.pullCursor > head)) || cursorRewritten
        if terminalBehind, !losses.unresolved(m.terminal).contains(where: { ($0.through ?? 0) >= m.acknowledged }) {
            try losses.append(LossRecord(kind: .terminalBehind, recordedMillis: now, terminal: m.terminal.rawValue,
                                            from: acknowledged + 1, through: m.acknowledged,
                                            note: "terminal \(m.terminal.rawValue) recorded central's acknowledgement through seq \(m.acknowledged); central holds its events only through \(acknowledged): awaiting re-push"))
        }
        if centralBehind {
            let floor = max(heldOwn, reservedThrough)
            try losses.append(LossRecord(kind: .centralBehind, recordedMillis: now, terminal: m.terminal.rawValue,
                                            from: centralSequence + 1, through: heldOwn, centralSequenceFloor: floor,
                                            note: "terminal \(m.terminal.rawValue) holds central's own events through 0:\(heldOwn); central holds them only through 0:\(centralSequence): they are lost at central and their numbers are never reused"))
        }
        if unexplained {
            let seen = [terminalBehind ? "acknowledged through seq \(m.acknowledged), central holds \(acknowledged)" : nil,
                        centralBehind ? "holds central's 0:\(heldOwn), central's own events end at 0:\(centralSequence)" : nil,
                        m.pullCursor > head ? "pulled through position \(m.pullCursor), the journal ends at \(head)" : nil,
                        cursorRewritten ? "pulled through position \(m.pullCursor), which holds another record now" : nil].compactMap { $0 }
            try losses.append(LossRecord(kind: .journalCut, recordedMillis: now, terminal: m.terminal.rawValue, positionsFrom: 1,
                                            file: journal.directory, centralSequenceFloor: max(heldOwn, reservedThrough),
                                            note: "terminal \(m.terminal.rawValue)'s hello shows a loss no recorded cut explains (\(seen.joined(separator: "; "))): the journal lost its tail with no torn frame to show it; every pull cursor set before now starts again from position 0"))
        }
    }

    /// The digest of the journal record at `position` (0 when there is none).
    private func digestAtPosition(_ position: UInt64) throws(SyncError) -> UInt64 {
        let reader = try PosSync.journal { () throws(JournalError) in try journal.reader(from: position) }
        defer { reader.close() }
        guard let (at, record) = try PosSync.journal({ () throws(JournalError) in try reader.next() }), at == position else { return 0 }
        return Self.digest(record)
    }

    /// Checks every event of a push before applying any: all or nothing.
    private func push(_ m: SyncMessage.Push, source: String) throws(SyncError) -> SyncMessage.Ack {
        let t = try entry(m.terminal)
        guard m.keyID == t.enrollment.journalKey.id else {
            throw SyncError(.notAuthorized, "frames are sealed with key id \(m.keyID); terminal \(m.terminal.rawValue)'s key id is \(t.enrollment.journalKey.id)", location: source)
        }
        guard m.dictionaryID == ledgerDictionary.id else {
            throw SyncError(.malformed, "frames use compression dictionary \(m.dictionaryID); this central knows \(ledgerDictionary.id)", location: source)
        }
        var fresh: [[UInt8]] = []
        var freshEvents: [Event] = []
        var duplicates = 0
        var expected = t.acknowledged + 1
        /// A gap this push may skip: lost at central and no longer held by the terminal (the loss record it resolves).
        var skippable: (range: ClosedRange<UInt64>, record: Int)?
        // Bound what this push makes central inflate and hold, from the frame headers, before any decrypting.
        var recordBytes = 0
        for (index, frame) in m.frames.enumerated() {
            let location = "\(source) frame \(index)"
            recordBytes += Int(try PosSync.journal { () throws(JournalError) in try Frames.header(frame, file: location) }.blockLength)
            guard recordBytes <= SyncLimits.pushRecordBytesMax else {
                throw SyncError(.tooLarge, "the push's records exceed pushRecordBytesMax (\(SyncLimits.pushRecordBytesMax) bytes) at this frame", location: location)
            }
        }
        for (index, frame) in m.frames.enumerated() {
            let location = "\(source) frame \(index)"
            let decoded = try PosSync.journal { () throws(JournalError) in
                try Frames.records(frame, dictionaryID: m.dictionaryID, keyID: m.keyID, decoder: t.decoder, file: location)
            }
            for (i, record) in decoded.records.enumerated() {
                let seq = decoded.header.firstSequence + UInt64(i)
                let event: Event
                do { event = try RecordCodec.decode(record) } catch { throw SyncError(error, location: "\(location) record \(i) (seq \(seq))") }
                guard event.dot.replica == m.terminal else {
                    throw SyncError(.foreignReplica, "event \(event.dot) is under replica \(event.dot.replica.rawValue); terminal \(m.terminal.rawValue) may only push its own", location: "\(location) record \(i)")
                }
                guard event.dot.seq == seq else {
                    throw SyncError(.malformed, "event \(event.dot) sits at journal seq \(seq): a terminal's dots are its journal sequence numbers", location: "\(location) record \(i)")
                }
                guard let kind = event.body.kind, kind.mayBeWritten(by: m.terminal) else {
                    throw SyncError(.notAuthorized, "a terminal may not write \(event.body.kind.map { "\($0)" } ?? "an event type central does not know") (event \(event.dot))", location: "\(location) record \(i)")
                }
                try ledger.prepare(event)  // what the checks below and the fold read is resident
                if let owner = owningTerminal(of: event), terminals[owner]?.enrollment.merchant != t.enrollment.merchant {
                    throw SyncError(.foreignMerchant, "event \(event.dot) concerns an entity of terminal \(owner.rawValue), which is not of merchant \(t.enrollment.merchant)", location: "\(location) record \(i)")
                }
                if seq <= t.acknowledged {
                    let held = try ledger.digest(m.terminal, seq)
                    if held == Self.lostDigest, losses.skipped(m.terminal).contains(where: { $0.contains(seq) }) {
                        // Recorded as lost for good: it is back, but its place is taken; kept out (logged), not a rewrite.
                        logger.warning("a re-sent event recorded as lost is not taken back", metadata: ["sync.terminal": "\(m.terminal.rawValue)", "sync.seq": "\(seq)"])
                        duplicates += 1
                        continue
                    }
                    if held != Self.digest(record) {
                        terminals[m.terminal]!.rewroteHistory = true
                        // The flag outlives a restart: terminals/T.flagged says what happened.
                        try? files.writeAtomically(Array("rewrote event \(event.dot) (\(source))\n".utf8),
                                                   to: "\(directory)/terminals/\(m.terminal.rawValue).flagged")
                        logger.error("terminal rewrote an acknowledged event", metadata: ["sync.terminal": "\(m.terminal.rawValue)", "sync.seq": "\(seq)"])
                        throw SyncError(.rewrittenHistory, "event \(event.dot) differs from the one central accepted at that sequence number: refused, terminal flagged", location: "\(location) record \(i)")
                    }
                    duplicates += 1
                } else if seq == expected {
                    fresh.append(record)
                    freshEvents.append(event)
                    expected += 1
                } else if seq > expected, fresh.isEmpty, skippable == nil,
                          let behind = losses.unresolved(m.terminal).first(where: { ($0.from ?? 0) <= expected && ($0.through ?? 0) >= seq - 1 }) {
                    // Central lost these after acknowledging them and the terminal no longer holds
                    // them (retired): recorded as lost for good, and the sequence goes on after them.
                    skippable = (expected...(seq - 1), behind.id)
                    fresh.append(record)
                    freshEvents.append(event)
                    expected = seq + 1
                } else if seq < expected {
                    throw SyncError(.malformed, "seq \(seq) comes again after seq \(expected - 1) in this push (a repeated frame)", location: "\(location) record \(i)")
                } else {
                    throw SyncError(.sequenceGap, "terminal \(m.terminal.rawValue) events \(expected)...\(seq - 1) are missing before seq \(seq)", location: "\(location) record \(i)")
                }
            }
        }
        if !fresh.isEmpty {
            let now = wallClockValue()
            if let gap = skippable {
                // Recorded before the events after the gap are stored: replay skips only a recorded gap.
                try losses.append(LossRecord(kind: .unrecoverable, recordedMillis: now, terminal: m.terminal.rawValue,
                                             from: gap.range.lowerBound, through: gap.range.upperBound, refersTo: gap.record,
                                             note: "terminal \(m.terminal.rawValue) events \(gap.range.lowerBound)...\(gap.range.upperBound): acknowledged, lost at central, and no longer held by the terminal: lost for good"))
                for _ in gap.range { ledger.appendDigest(m.terminal, Self.lostDigest) }
            }
            let positions = try PosSync.journal { () throws(JournalError) in try journal.append(contentsOf: fresh) }  // durable before the ack
            let digests = fresh.map(Self.digest)
            for d in digests { ledger.appendDigest(m.terminal, d) }
            terminals[m.terminal]!.acknowledged = expected - 1
            for event in freshEvents { _ = try? hlc.receive(event.hlc, wallMillis: wallClockValue()) }
            ledger.apply(freshEvents, records: fresh)
            lastApplied = (positions.upperBound, digests.last!)
            // Numbers the terminal lost before central held them (terminal recover voided them): recorded, by range.
            var voided: [ClosedRange<UInt64>] = []
            for e in freshEvents where e.body == .sequenceVoid {
                if let last = voided.last, last.upperBound + 1 == e.dot.seq { voided[voided.count - 1] = last.lowerBound...e.dot.seq } else { voided.append(e.dot.seq...e.dot.seq) }
            }
            for v in voided {
                try? losses.append(LossRecord(kind: .voided, recordedMillis: now, terminal: m.terminal.rawValue, from: v.lowerBound, through: v.upperBound,
                                              note: "terminal \(m.terminal.rawValue) wrote seq \(v.lowerBound)...\(v.upperBound) void (terminal recover): any events it had written there were lost before central held them; none of these numbers is reused"))
            }
            for r in losses.unresolved(m.terminal) where (r.through ?? 0) <= expected - 1 {
                let range = (r.from ?? 1)...(r.through ?? 0)
                if voided.contains(where: { $0.overlaps(range) }) {
                    try? losses.append(LossRecord(kind: .unrecoverable, recordedMillis: now, terminal: m.terminal.rawValue, from: r.from, through: r.through,
                                                  refersTo: r.id, note: "terminal \(m.terminal.rawValue) re-pushed through \(r.through ?? 0), some of them as void: what it lost too is lost for good"))
                } else {
                    try? losses.append(LossRecord(kind: .repaired, recordedMillis: now, terminal: m.terminal.rawValue, from: r.from, through: r.through,
                                                  refersTo: r.id, note: "terminal \(m.terminal.rawValue) re-pushed events through \(r.through ?? 0): the loss is repaired"))
                }
            }
            if losses.records.count > lossesLogged { logNewLosses() }
            snapshotAfterWrite()
        }
        return .init(acknowledged: expected - 1, accepted: UInt32(fresh.count), duplicates: UInt32(duplicates))
    }

    /// The terminal whose sale or ticket a pushed event is about, when it is not the pusher's own new entity.
    private func owningTerminal(of event: Event) -> ReplicaId? {
        switch event.body {
        case .refundRequested(let r): return r.sale.dot.replica
        case .refundApproved(let t, _), .refundRejected(let t), .refundCancelled(let t), .refundEscalated(let t), .noteAdded(let t, _):
            return t.dot.replica.isCentral ? ledger.resident.tickets[t]?.sale.dot.replica : t.dot.replica
        default: return nil
        }
    }

    /// The merchant owning an event's entity.
    private func merchant(of event: Event) throws(SyncError) -> String? {
        guard let key = EntityKey.of(event) else { return event.dot.replica.isCentral ? nil : terminals[event.dot.replica]?.enrollment.merchant }
        var creator = key.creator
        if creator.isCentral, case .ticket(let ticket) = key {
            // A ticket central opened belongs to its sale's merchant; its request may be only on disk.
            var request = event.body
            if case .refundRequested = request {} else {
                try ledger.prepare(.ticket(ticket))
                guard let held = ledger.resident.request(of: ticket)?.body else { return nil }
                request = held
            }
            if case .refundRequested(let r) = request { creator = r.sale.dot.replica }
        }
        return terminals[creator]?.enrollment.merchant
    }

    private func pull(_ m: SyncMessage.Pull) throws(SyncError) -> SyncMessage.Events {
        let t = try entry(m.terminal)
        let merchantID = t.enrollment.merchant
        // Only what is durable is relayed: a torn tail cut at the next open was never seen by anyone.
        let head = journal.durableSequence
        guard m.cursor < head else { return .init(frames: [], cursor: m.cursor, more: false) }
        let reader = try PosSync.journal { () throws(JournalError) in try journal.reader(from: m.cursor + 1) }
        var envelopes: [[UInt8]] = []
        var bytes = 0
        var cursor = m.cursor
        var cursorDigest: UInt64 = 0
        while bytes < pullBatchBytesValue, envelopes.count < JournalLimits.frameRecordsMax,
              let (position, record) = try PosSync.journal({ () throws(JournalError) in try reader.next() }) {
            guard position <= head else { break }
            cursor = position
            cursorDigest = Self.digest(record)
            let event: Event
            do { event = try RecordCodec.decode(record) } catch { throw SyncError(error, location: "\(directory)/journal position \(position)") }
            if event.dot.replica == m.terminal || m.knowledge.covers(event.dot) { continue }
            guard try merchant(of: event) == merchantID else { continue }
            if let drop = faults.dropFromPull, drop(event) { continue }
            let relayed: [UInt8]
            if case .saleCaptured(let capture) = event.body, capture.paymentCode != nil {
                // Other terminals never receive a payment code: relayed without it.
                relayed = RecordCodec.encode(Event(dot: event.dot, hlc: event.hlc, context: event.context, body: .saleCaptured(capture.withoutPaymentCode())))
            } else {
                relayed = record
            }
            let envelope = InboundRecord.pulled(position: position, event: relayed).encoded()
            bytes += envelope.count
            envelopes.append(envelope)
        }
        reader.close()
        // Learning the merchant of tickets central opened may have loaded sales: they count toward the flush.
        snapshotAfterWrite()
        var frames: [[UInt8]] = []
        if !envelopes.isEmpty {
            let sealed = try PosSync.journal { () throws(JournalError) in try t.sealer.seal(envelopes, firstSequence: 1) }
            frames.append(sealed.bytes)
        }
        return .init(frames: frames, cursor: cursor, more: cursor < head, cursorDigest: cursorDigest)
    }

    /// A terminal's own accepted events from `m.from`, exactly as accepted, for
    /// `terminal recover`: central's journal is scanned after `m.cursor` (its
    /// events are there in sequence order), in batches of at most
    /// `pullBatchBytes` of records.
    private func fetch(_ m: SyncMessage.Fetch) throws(SyncError) -> SyncMessage.Fetched {
        let t = try entry(m.terminal)
        let head = journal.durableSequence
        guard m.from >= 1, m.from <= t.acknowledged, m.cursor < head else { return .init(cursor: m.cursor, more: false, frames: []) }
        let reader = try PosSync.journal { () throws(JournalError) in try journal.reader(from: m.cursor + 1) }
        defer { reader.close() }
        var records: [[UInt8]] = []
        var bytes = 0
        var cursor = m.cursor
        var last: UInt64 = 0
        var first: UInt64 = 0
        while bytes < pullBatchBytesValue, records.count < JournalLimits.frameRecordsMax, last < t.acknowledged,
              let (position, record) = try PosSync.journal({ () throws(JournalError) in try reader.next() }) {
            cursor = position
            guard position <= head else { break }
            let dot: Dot
            do { dot = try RecordCodec.decode(record).dot } catch { throw SyncError(error, location: "\(directory)/journal position \(position)") }
            guard dot.replica == m.terminal, dot.seq >= m.from else { continue }
            if records.isEmpty { first = dot.seq }
            records.append(record)
            bytes += record.count
            last = dot.seq
        }
        var frames: [[UInt8]] = []
        if !records.isEmpty {
            let sealed = try PosSync.journal { () throws(JournalError) in try t.sealer.seal(records, firstSequence: first) }
            frames.append(sealed.bytes)
        }
        return .init(cursor: cursor, more: last < t.acknowledged && cursor < head, frames: frames)
    }

    // MARK: - Bundles

    /// Applies a bundle file: checked whole first (size, magic, version, SHA-256,
    /// central id), then applied in push-sized batches, each all or nothing, so
    /// memory does not grow with the bundle. A batch refused part-way stops the
    /// import; the error says where, and earlier batches (valid events) stay.
    public func importBundle(path: String) throws(SyncError) -> BundleImportReport {
        let reader = try BundleReader(path: path, fileSystem: files.fs)
        defer { reader.close() }
        let h = reader.header
        guard h.central == centralID else {
            throw SyncError(.wrongCentral, "bundle is for central \(h.central), this is \(centralID)", location: path)
        }
        var report = BundleImportReport(terminal: h.terminal, events: 0, new: 0, duplicates: 0, acknowledged: 0)
        var batch: [[UInt8]] = []
        var bytes = 0
        var batchIndex = 0
        func apply() throws(SyncError) {
            guard !batch.isEmpty else { return }
            lock.lock()
            defer { lock.unlock() }
            let ack = try push(.init(terminal: h.terminal, dictionaryID: h.dictionaryID, keyID: h.keyID, frames: batch), source: "\(path) batch \(batchIndex)")
            report.new += Int(ack.accepted)
            report.duplicates += Int(ack.duplicates)
            report.acknowledged = ack.acknowledged
            batch.removeAll(keepingCapacity: true)
            bytes = 0
            batchIndex += 1
        }
        while let (header, frame) = try reader.nextFrame() {
            report.events += Int(header.recordCount)
            batch.append(frame)
            bytes += frame.count
            if bytes >= SyncLimits.pushBatchBytesMax || batch.count >= SyncLimits.framesPerMessageMax { try apply() }
        }
        try apply()
        if report.acknowledged == 0 { report.acknowledged = acknowledged(h.terminal) }
        return report
    }

    public func close() throws(SyncError) {
        defer { storeLock.release() }
        ledger.close()
        try PosSync.journal { () throws(JournalError) in try journal.close() }
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

/// central.json: the store's identity and secret.
struct CentralIdentity {
    var central: CentralID
    var secret: [UInt8]
    static let formatName = "possync-central-v1"

    func encoded() -> [UInt8] {
        Array("{\n  \"format\" : \"\(Self.formatName)\",\n  \"central\" : \"\(central.hex)\",\n  \"secret\" : \"\(hexEncode(secret))\"\n}\n".utf8)
    }

    static func decode(_ bytes: [UInt8], path: String) throws(SyncError) -> CentralIdentity {
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw SyncError(.malformed, "not a central identity file (JSON object expected)", location: path)
        }
        guard object["format"] as? String == formatName else { throw SyncError(.versionUnsupported, "format \(object["format"] ?? "missing"), expected \(formatName)", location: path) }
        guard let c = (object["central"] as? String).flatMap(CentralID.init(hex:)) else { throw SyncError(.malformed, "field central: 32 hex digits expected", location: path) }
        guard let s = (object["secret"] as? String).flatMap(hexDecode), s.count == 32 else { throw SyncError(.malformed, "field secret: 64 hex digits expected", location: path) }
        return CentralIdentity(central: c, secret: s)
    }
}
