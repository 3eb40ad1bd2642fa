import Foundation
import Logging
import PosJournal
import PosLedger
import PosWire

/// How a terminal store is run.
public struct TerminalOptions: Sendable {
    /// Outbound and inbound journal segments roll at this size, in bytes.
    public var segmentBytesMax: Int
    /// Acknowledged events are kept at least this long, in milliseconds, before their segment may be retired.
    public var retentionMillis: Int64
    public static let retentionMillisDefault: Int64 = 90 * Millis.perDay
    /// Deliberate breakage for proving the simulator's checks can fail: when true the
    /// outbound journal does not fsync before an event is acknowledged. Never set outside
    /// tests: only `@_spi(Testing) import PosTerminal` sees it.
    @_spi(Testing) public var testOnlyUnsyncedOutbound = false
    /// With `testOnlyUnsyncedOutbound`, outbound records are buffered up to this many bytes before they are written.
    static let testOnlyUnsyncedBufferBytes = 1 << 20
    /// How long opening waits for another process's lock on the store directory, in milliseconds.
    public var lockWaitMillis: Int64

    public init(segmentBytesMax: Int = JournalLimits.segmentBytesDefault, retentionMillis: Int64 = TerminalOptions.retentionMillisDefault,
                lockWaitMillis: Int64 = StoreLockLimits.waitMillisDefault) {
        self.segmentBytesMax = segmentBytesMax
        self.retentionMillis = retentionMillis
        self.lockWaitMillis = lockWaitMillis
    }
}

/// A terminal's store: its own events (outbound journal), what it pulled from
/// central (inbound journal), the folded state of both, and its sync cursors.
/// Everything is restored from the two journals when it is reopened.
///
///     enrollment.json   the terminal's identity and secret (mode 0600)
///     outbound/         journal of the terminal's own events; record n is the event with dot (terminal, n)
///     inbound/          journal of inbound records (pulled events, acknowledgements, sync marks)
public final class TerminalReplica: @unchecked Sendable {
    public let directory: String
    public let enrollment: Enrollment
    private let outbound: Journal
    private let inbound: Journal
    private let lock = NSLock()
    private let logger: Logger
    private var stateValue = LedgerState()
    private var hlc = HybridLogicalClock()
    /// Highest sequence number held per replica (own and pulled).
    private var knowledgeValue = VersionVector()
    /// The highest acknowledgement central ever gave (kind-2 records): the outbound journal must reach it.
    public private(set) var acknowledged: UInt64 = 0
    /// What central holds of this terminal's events as last heard (below `acknowledged` after central
    /// lost some); segments are retired only through it.
    public private(set) var centralHolds: UInt64 = 0
    /// Central's history epoch the pull cursor belongs to.
    public private(set) var centralEpoch: UInt64 = 0
    /// Central's wall clock at the last sync (the clock guard's reference).
    public private(set) var lastCentralWallMillis: Int64? = nil
    /// Own sequence numbers through this may be in use (inbound kind 8).
    private var reservedThrough: UInt64 = 0
    /// Central journal position pulled through.
    public private(set) var pullCursor: UInt64 = 0
    /// The digest of central's record at `pullCursor` (nil: not known), sent at hello so central can
    /// tell whether that position still holds what this terminal pulled there.
    private var pullCursorDigest: UInt64?
    public private(set) var lastSyncMillis: Int64? = nil

    public var terminal: ReplicaId { enrollment.terminal }

    /// Creates the store of a newly enrolled terminal.
    public static func initialize(directory: String, enrollment: Enrollment, fileSystem: any JournalFileSystem = PosixFileSystem(),
                                  options: TerminalOptions = TerminalOptions(), logger: Logger? = nil) throws(SyncError) -> TerminalReplica {
        let files = FileStore(fs: fileSystem)
        try files.makeDirectories(directory)
        let storeLock = try StoreDirectory.lock(directory, fileSystem: fileSystem, waitMillis: options.lockWaitMillis)
        if files.exists(directory + "/enrollment.json") {
            throw SyncError(.invalidArgument, "a terminal store already exists here", location: directory)
        }
        if files.exists(directory + "/central.json") {
            throw SyncError(.invalidArgument, "a central store is here (central.json): a terminal store needs its own directory", location: directory)
        }
        try enrollment.write(to: directory + "/enrollment.json", fileSystem: fileSystem)
        return try open(directory: directory, enrollment: enrollment, fileSystem: fileSystem, storeLock: storeLock, options: options, logger: logger)
    }

    /// Opens a terminal's store, holding its directory lock (`LOCK`) until
    /// `close()`: a second process waits up to `options.lockWaitMillis`, then
    /// fails with `locked`.
    public static func open(directory: String, fileSystem: any JournalFileSystem = PosixFileSystem(),
                            options: TerminalOptions = TerminalOptions(), logger: Logger? = nil) throws(SyncError) -> TerminalReplica {
        let path = directory + "/enrollment.json"
        guard fileSystem.fileExists(path) else {
            throw SyncError(.notFound, "no terminal store here (enrollment.json missing)", location: directory)
        }
        let storeLock = try StoreDirectory.lock(directory, fileSystem: fileSystem, waitMillis: options.lockWaitMillis)
        return try open(directory: directory, enrollment: Enrollment.read(from: path, fileSystem: fileSystem), fileSystem: fileSystem,
                        storeLock: storeLock, options: options, logger: logger)
    }

    private static func open(directory: String, enrollment: Enrollment, fileSystem: any JournalFileSystem, storeLock: any StoreLockHandle,
                             options: TerminalOptions, logger: Logger?) throws(SyncError) -> TerminalReplica {
        do {
            return try TerminalReplica(directory: directory, enrollment: enrollment, fileSystem: fileSystem, storeLock: storeLock, options: options,
                                       logger: logger ?? Logger(label: "possync.terminal", factory: { _ in SwiftLogNoOpLogHandler() }))
        } catch {
            storeLock.release()
            throw error
        }
    }

    /// The file system the stores live on (the real one, or a simulated disk).
    public let fileSystem: any JournalFileSystem

    public let options: TerminalOptions
    /// The directory's lock, held from open to close.
    private let storeLock: any StoreLockHandle

    private init(directory: String, enrollment: Enrollment, fileSystem: any JournalFileSystem, storeLock: any StoreLockHandle,
                 options: TerminalOptions, logger: Logger) throws(SyncError) {
        self.directory = directory
        self.storeLock = storeLock
        self.enrollment = enrollment
        self.fileSystem = fileSystem
        self.options = options
        self.logger = logger
        let config = Self.journalConfiguration(enrollment: enrollment, options: options)
        // Inbound first: what central acknowledged and echoed back is the evidence the outbound journal is checked against.
        let inbound = try journal { () throws(JournalError) in
            try Journal.open(directory: directory + "/inbound", configuration: config, fileSystem: fileSystem, logger: logger)
        }
        self.inbound = inbound
        let summary: InboundSummary
        do { summary = try InboundSummary.read(inbound, terminal: enrollment.terminal, context: enrollment.recordContext, location: directory + "/inbound") } catch {
            try? inbound.close()
            throw error
        }
        do {
            outbound = try Self.openOutbound(directory: directory, configuration: config, fileSystem: fileSystem,
                                             evidence: summary.evidence, logger: logger)
        } catch {
            try? inbound.close()
            throw error
        }
        acknowledged = summary.acknowledged
        centralHolds = summary.centralHolds
        pullCursor = summary.pullCursor
        pullCursorDigest = summary.pullCursorDigest
        lastSyncMillis = summary.lastSync?.wallMillis
        lastCentralWallMillis = summary.lastSync?.centralWallMillis
        centralEpoch = summary.epoch
        reservedThrough = summary.reserved
        do { try restore(pulled: summary.events) } catch {
            try? inbound.close()
            try? outbound.close()
            throw error
        }
    }

    static func journalConfiguration(enrollment: Enrollment, options: TerminalOptions) -> JournalConfiguration {
        JournalConfiguration(durability: options.testOnlyUnsyncedOutbound ? .none(bufferBytes: TerminalOptions.testOnlyUnsyncedBufferBytes) : .perRecord,
                             segmentBytesMax: options.segmentBytesMax, dictionary: ledgerDictionary, key: enrollment.journalKey)
    }

    /// Opens the outbound journal, refusing (and changing nothing) when it would
    /// end below what the inbound journal proves central had: a sequence number
    /// is never reused.
    static func openOutbound(directory: String, configuration: JournalConfiguration, fileSystem: any JournalFileSystem,
                             evidence: DurableEvidence?, logger: Logger) throws(SyncError) -> Journal {
        do {
            return try Journal.open(directory: directory + "/outbound", configuration: configuration, fileSystem: fileSystem,
                                    evidence: evidence, logger: logger)
        } catch where error.code == .behindEvidence {
            throw SyncError(.journal, "\(error); the terminal refuses to write rather than reuse a sequence number: run `possync terminal recover --dir \(directory) --central DIR`")
        } catch {
            throw SyncError(error)
        }
    }

    private func restore(pulled: [Event]) throws(SyncError) {
        var events: [Event] = []
        let own = try journal { () throws(JournalError) in try outbound.reader(from: outbound.firstSequence) }
        while let (seq, record) = try journal({ () throws(JournalError) in try own.next() }) {
            let event: Event
            do { event = try RecordCodec.decode(record, context: enrollment.recordContext) } catch { throw SyncError(error, location: "\(directory)/outbound seq \(seq)") }
            guard event.dot == (try? Dot(replica: terminal, seq: seq)) else {
                throw SyncError(.malformed, "outbound seq \(seq) holds event \(event.dot)", location: "\(directory)/outbound")
            }
            events.append(event)
        }
        // The clock resumes after the newest own event (this clock made them);
        // pulled events may only move it within the remote-ahead guard of the
        // last sync's reference time, so an absurd remote timestamp never drags it.
        let newestOwn = events.map(\.hlc).max() ?? .zero
        hlc = HybridLogicalClock(last: newestOwn)
        absorb(events + pulled, wallMillis: clockReference(lastSyncMillis ?? Int64(newestOwn.millis)))
    }

    /// The time a remote timestamp is judged against: the later of this
    /// terminal's wall clock and central's as the last welcome gave it, so a
    /// terminal whose own clock is days behind still moves past what it pulls.
    private func clockReference(_ wallMillis: Int64) -> Int64 {
        max(wallMillis, lastCentralWallMillis ?? wallMillis)
    }

    /// Folds events in; each moves the clock no further than the guard allows at `wallMillis`.
    private func absorb(_ events: [Event], wallMillis: Int64) {
        for e in events {
            knowledgeValue.add(e.dot)
            if e.dot.replica != terminal { _ = try? hlc.receive(e.hlc, wallMillis: wallMillis) }
        }
        stateValue.apply(events)
    }

    // MARK: - Reading

    public var state: LedgerState { lock.withLock { stateValue } }
    public var knowledge: VersionVector { lock.withLock { knowledgeValue } }
    public var lastSequence: UInt64 { outbound.lastSequence }
    public func context(of key: EntityKey) -> VersionVector { lock.withLock { stateValue.context(of: key) } }

    /// The terminal's own events central has not acknowledged yet.
    public func unacknowledgedEvents() throws(SyncError) -> [Event] {
        let from = lock.withLock { centralHolds } + 1
        guard from <= outbound.lastSequence else { return [] }
        let reader = try journal { () throws(JournalError) in try outbound.reader(from: from) }
        var out: [Event] = []
        while let (seq, record) = try journal({ () throws(JournalError) in try reader.next() }) {
            do { out.append(try RecordCodec.decode(record, context: enrollment.recordContext)) } catch { throw SyncError(error, location: "\(directory)/outbound seq \(seq)") }
        }
        return out
    }

    /// The terminal's own event at `seq` as stored (nil when retired or not written).
    public func ownRecord(seq: UInt64) throws(SyncError) -> [UInt8]? {
        guard seq >= outbound.firstSequence, seq <= outbound.readableSequence else { return nil }
        let reader = try journal { () throws(JournalError) in try outbound.reader(from: seq) }
        defer { reader.close() }
        return try journal { () throws(JournalError) in try reader.next() }?.record
    }

    /// Captures written by other terminals that this store holds with their
    /// payment code. Central relays captures without it, so this must be empty.
    public func heldForeignCaptures() throws(SyncError) -> [Dot] {
        let reader = try journal { () throws(JournalError) in try inbound.reader(from: inbound.firstSequence) }
        var found: [Dot] = []
        while let (seq, record) = try journal({ () throws(JournalError) in try reader.next() }) {
            guard case .pulled(_, let bytes) = try InboundRecord.decode(record, location: "\(directory)/inbound seq \(seq)") else { continue }
            let event: Event
            do { event = try RecordCodec.decode(bytes, context: enrollment.recordContext) } catch { throw SyncError(error, location: "\(directory)/inbound seq \(seq)") }
            if case .saleCaptured(let c) = event.body, c.paymentCode != nil, event.dot.replica != terminal { found.append(event.dot) }
        }
        return found
    }

    // MARK: - Writing

    /// Writes one of the terminal's own events: its dot is the next outbound
    /// sequence number, its HLC from `wallMillis`, its context what this
    /// terminal knows of the entity. Returns after the event is durable.
    @discardableResult
    public func record(_ body: EventBody, wallMillis: Int64) throws(SyncError) -> Event {
        lock.lock()
        defer { lock.unlock() }
        guard let kind = body.kind, kind.mayBeWritten(by: terminal) else {
            throw SyncError(.notAuthorized, "a terminal may not write \(body.kind.map { "\($0)" } ?? "an unknown event")")
        }
        let seq = outbound.lastSequence + 1
        let dot = try! Dot(replica: terminal, seq: seq)
        let stamp: HLCTimestamp
        do { stamp = try hlc.now(wallMillis: wallMillis) } catch { throw SyncError(error) }
        let event = Event(dot: dot, hlc: stamp, context: stateValue.writerContext(for: body, dot: dot), body: body)
        // A writer never records what its own fold would ignore.
        do { try stateValue.checkAdmission(event) } catch { throw SyncError(error) }
        if seq > reservedThrough {
            // Reserve numbers before using them: recovery then knows how far they may have gone.
            let through = seq + SyncLimits.terminalSequenceReservation - 1
            _ = try journal { () throws(JournalError) in try inbound.append(InboundRecord.reserved(through: through).encoded()) }
            reservedThrough = through
        }
        let written = try journal { () throws(JournalError) in try outbound.append(RecordCodec.encode(event)) }
        precondition(written == seq, "outbound journal assigned seq \(written), expected \(seq): writes must be serialized")
        absorb([event], wallMillis: wallMillis)
        return event
    }

    // MARK: - Sync

    public struct SyncReport: Sendable, Equatable, CustomStringConvertible {
        public var pushed: Int = 0
        public var pushBatches: Int = 0
        public var duplicatesAtCentral: Int = 0
        public var pulled: Int = 0
        public var pullBatches: Int = 0
        public var acknowledged: UInt64 = 0
        public var clockSkewed = false
        /// Events central had acknowledged and no longer held at the handshake (re-pushed in this session, as far as this journal still held them).
        public var centralLost: ClosedRange<UInt64>? = nil
        /// False when the session stopped early because `yield` asked it to (what it did is kept; the next session goes on).
        public var complete = true
        public var description: String {
            (complete ? "" : "stopped early (more remains): ") + "pushed \(pushed) events in \(pushBatches) batches (\(duplicatesAtCentral) central already had), acknowledged through seq \(acknowledged); pulled \(pulled) events in \(pullBatches) batches"
                + (clockSkewed ? "; central says this terminal's clock is off" : "")
                + (centralLost.map { "; central had lost seq \($0.lowerBound)...\($0.upperBound), re-pushed" } ?? "")
        }
    }

    /// One sync session: handshake, push what central lacks, record its
    /// acknowledgement, pull what this terminal lacks. Safe to interrupt at
    /// any step and to repeat: a retry resumes from what both sides hold.
    /// How far a sync session is, reported after the handshake and after every batch.
    public struct SyncProgress: Sendable, Equatable {
        /// Events to push (known after the handshake) and pushed so far.
        public var toPush: Int
        public var pushed: Int
        /// Central journal positions to scan for this terminal (after the handshake) and scanned so far.
        public var toScan: Int
        public var scanned: Int
    }

    public func sync(via transport: any SyncTransport, wallMillis: Int64,
                     pushBatchBytes: Int = SyncLimits.pushBatchBytesMax, pullBatchBytes: Int = SyncLimits.pullBatchBytesMax,
                     yield: (() -> Bool)? = nil,
                     progress: ((SyncProgress) -> Void)? = nil) throws(SyncError) -> SyncReport {
        precondition(pushBatchBytes > 0 && pushBatchBytes <= SyncLimits.pushBatchBytesMax)
        precondition(pullBatchBytes > 0 && pullBatchBytes <= SyncLimits.pullBatchBytesMax)
        var report = SyncReport()
        let hello = SyncMessage.Hello(central: enrollment.central, terminal: terminal, knowledge: knowledge,
                                      pullCursor: lock.withLock { pullCursor }, wallMillis: wallMillis,
                                      acknowledged: lock.withLock { acknowledged }, epoch: lock.withLock { centralEpoch },
                                      cursorDigest: lock.withLock { pullCursorDigest ?? 0 })
        guard case .welcome(let welcome) = try expect(transport.exchange(.hello(hello))) else {
            throw SyncError(.malformed, "central answered hello with something other than welcome")
        }
        report.clockSkewed = welcome.clockSkewed
        lock.withLock { lastCentralWallMillis = welcome.wallMillis }
        let reference = clockReference(wallMillis)
        // Central can only hold what was pushed, and only durable events are pushed.
        guard welcome.acknowledged <= outbound.durableSequence else {
            throw SyncError(.sequenceGap, "central holds this terminal's events through seq \(welcome.acknowledged) but this terminal's journal holds seq \(outbound.durableSequence) durably: the terminal store is older than what it sent; run `possync terminal recover`", location: directory)
        }
        let recorded = lock.withLock { acknowledged }
        if welcome.acknowledged < recorded {
            // Central lost events it had acknowledged: re-push them, and retire nothing it does not hold again.
            logger.error("central holds fewer of this terminal's events than it acknowledged; re-pushing", metadata: [
                "sync.acknowledged": "\(recorded)", "sync.central_holds": "\(welcome.acknowledged)",
            ])
            _ = try journal { () throws(JournalError) in try inbound.append(InboundRecord.centralBehind(sequence: welcome.acknowledged).encoded()) }
            lock.withLock { centralHolds = welcome.acknowledged }
            report.centralLost = (welcome.acknowledged + 1)...recorded
        } else {
            try noteAcknowledged(welcome.acknowledged)
        }
        if welcome.epoch != lock.withLock({ centralEpoch }) || lock.withLock({ pullCursor }) > welcome.cursorMax {
            // Central's journal was cut or rebuilt since the cursor was set (or central cannot vouch
            // for it: restored from an older copy): positions after `cursorMax` may name other events
            // now. Pull again from there (the knowledge vector keeps what is already held from coming
            // twice); the epoch and cursor are recorded together before anything is pulled.
            let cursor = min(lock.withLock { pullCursor }, welcome.cursorMax)
            logger.warning("central's history changed; pulling again from the last position still valid", metadata: [
                "sync.epoch": "\(centralEpoch)", "sync.central_epoch": "\(welcome.epoch)", "sync.cursor": "\(cursor)",
            ])
            _ = try journal { () throws(JournalError) in
                try inbound.append(contentsOf: [InboundRecord.epoch(welcome.epoch).encoded(), InboundRecord.pullCursor(position: cursor, digest: nil).encoded()])
            }
            lock.withLock { centralEpoch = welcome.epoch; pullCursor = cursor; pullCursorDigest = nil }
        }
        if lock.withLock({ pullCursor }) > welcome.head {
            // Central's journal is shorter than what this terminal pulled through
            // (central restored from a backup): pull from the start again; the
            // knowledge vector keeps what is already held from coming twice.
            logger.warning("pull cursor beyond central's journal; pulling from the start", metadata: [
                "sync.cursor": "\(pullCursor)", "sync.central_head": "\(welcome.head)",
            ])
            lock.withLock { pullCursor = 0; pullCursorDigest = nil }
        }
        let cursorAtStart = lock.withLock { pullCursor }
        var status = SyncProgress(toPush: Int(outbound.durableSequence - min(outbound.durableSequence, welcome.acknowledged)), pushed: 0,
                                  toScan: Int(welcome.head - min(welcome.head, cursorAtStart)), scanned: 0)
        progress?(status)
        // Push: the unacknowledged records repacked into batch frames (one deflate and one seal
        // per push, however they were framed when stored), from what this journal still holds
        // when central lost events this terminal has since retired (central records them lost).
        let sealer = batchSealer()
        var from = max(welcome.acknowledged + 1, outbound.firstSequence)
        while from <= outbound.durableSequence {
            if report.pushBatches > 0, yield?() == true { report.complete = false; break }
            guard let frame = try nextBatchFrame(from: from, through: nil, blockBytesMax: pushBatchBytes, sealer: sealer) else { break }
            let pushedThrough = frame.header.lastSequence
            let push = SyncMessage.Push(terminal: terminal, dictionaryID: sealer.dictionaryID, keyID: sealer.keyID, frames: [frame.bytes])
            guard case .ack(let ack) = try expect(transport.exchange(.push(push))) else {
                throw SyncError(.malformed, "central answered push with something other than ack")
            }
            report.pushBatches += 1
            report.pushed += Int(ack.accepted)
            report.duplicatesAtCentral += Int(ack.duplicates)
            // An acknowledgement is kept for good and lets segments be retired:
            // it must lie within what this push carried.
            guard ack.acknowledged >= from, ack.acknowledged <= pushedThrough else {
                throw SyncError(.malformed, "central acknowledged through seq \(ack.acknowledged) after a push of seq \(from)...\(pushedThrough): refused, not recorded")
            }
            try noteAcknowledged(ack.acknowledged)
            from = ack.acknowledged + 1
            status.pushed = Int(ack.acknowledged - min(ack.acknowledged, welcome.acknowledged))
            progress?(status)
        }
        report.acknowledged = acknowledged
        // Pull: what this terminal lacks, in bounded batches.
        var more = report.complete
        while more {
            if report.pullBatches > 0 || report.pushBatches > 0, yield?() == true { report.complete = false; break }
            let request = SyncMessage.Pull(terminal: terminal, cursor: lock.withLock { pullCursor }, knowledge: knowledge,
                                           batchBytes: pullBatchBytes == SyncLimits.pullBatchBytesMax ? 0 : UInt32(pullBatchBytes))
            guard case .events(let batch) = try expect(transport.exchange(.pull(request))) else {
                throw SyncError(.malformed, "central answered pull with something other than events")
            }
            guard batch.cursor >= request.cursor else {
                throw SyncError(.malformed, "central answered a pull after position \(request.cursor) with position \(batch.cursor): refused")
            }
            report.pullBatches += 1
            report.pulled += try applyPulled(batch, wallMillis: reference)
            more = batch.more && batch.cursor > request.cursor
            status.scanned = min(status.toScan, Int(batch.cursor - min(batch.cursor, cursorAtStart)))
            progress?(status)
        }
        let (cursor, cursorDigest) = lock.withLock { (pullCursor, pullCursorDigest) }
        guard report.complete else {
            // Stopped early: the cursor each pulled batch reached is already recorded with it; not synced yet.
            return report
        }
        _ = try journal { () throws(JournalError) in
            try inbound.append(contentsOf: [InboundRecord.pullCursor(position: cursor, digest: cursorDigest).encoded(),
                                            InboundRecord.synced(wallMillis: wallMillis, centralWallMillis: welcome.wallMillis).encoded()])
        }
        lock.withLock { lastSyncMillis = wallMillis }
        return report
    }

    private func expect(_ reply: SyncMessage) throws(SyncError) -> SyncMessage {
        if case .refusal(let r) = reply { throw SyncError(.init(refusal: r.code), r.message, location: "central") }
        return reply
    }

    private func noteAcknowledged(_ sequence: UInt64) throws(SyncError) {
        guard sequence > lock.withLock({ centralHolds }) else { return }
        _ = try journal { () throws(JournalError) in try inbound.append(InboundRecord.acknowledged(sequence: sequence).encoded()) }
        lock.withLock {
            acknowledged = max(acknowledged, sequence)
            centralHolds = sequence
        }
    }

    /// Decrypts a pulled batch, stores it durably in the inbound journal, folds it.
    private func applyPulled(_ batch: SyncMessage.Events, wallMillis: Int64) throws(SyncError) -> Int {
        let decoder = FrameDecoder(dictionaries: [ledgerDictionary], key: enrollment.journalKey)
        var records: [[UInt8]] = []
        var events: [Event] = []
        let known = knowledge
        let context = enrollment.recordContext  // one merchant key for the whole batch
        for (i, frame) in batch.frames.enumerated() {
            let decoded = try journal { () throws(JournalError) in
                try Frames.records(frame, dictionaryID: ledgerDictionary.id, keyID: enrollment.journalKey.id, decoder: decoder, file: "pulled frame \(i)")
            }
            for (j, record) in decoded.records.enumerated() {
                guard case .pulled(_, let bytes) = try InboundRecord.decode(record, location: "pulled frame \(i) record \(j)") else {
                    throw SyncError(.malformed, "pulled batch holds a record that is not an event", location: "pulled frame \(i) record \(j)")
                }
                let event: Event
                do { event = try RecordCodec.decode(bytes, context: context) } catch { throw SyncError(error, location: "pulled frame \(i) record \(j)") }
                if case .saleCaptured(let c) = event.body, c.paymentCode != nil {
                    throw SyncError(.notAuthorized, "central relayed a payment code (event \(event.dot)): refused", location: "pulled frame \(i) record \(j)")
                }
                if event.dot.replica == terminal || known.covers(event.dot) { continue }
                records.append(record)
                events.append(event)
            }
        }
        // The cursor reached, and the digest of central's record there, move with the batch's records.
        let advanced = batch.cursor > lock.withLock { pullCursor }
        let digest: UInt64? = batch.cursorDigest == 0 ? nil : batch.cursorDigest
        if !records.isEmpty {
            var written = records
            if advanced { written.append(InboundRecord.pullCursor(position: batch.cursor, digest: digest).encoded()) }
            _ = try journal { () throws(JournalError) in try inbound.append(contentsOf: written) }
        }
        lock.withLock {
            if advanced { pullCursor = batch.cursor; pullCursorDigest = digest }
            absorb(events, wallMillis: wallMillis)
        }
        return events.count
    }

    // MARK: - Retention

    /// Retires outbound segments whose every event central has acknowledged
    /// and whose newest event is older than `options.retentionMillis` at
    /// `wallMillis` (by its HLC time). Never a segment holding an
    /// unacknowledged event. Crash-safe (see the journal's retention). Retired
    /// events stay at central; after a reopen they are no longer in this
    /// terminal's folded state. Returns the removed segment files.
    @discardableResult
    public func retireAcknowledged(wallMillis: Int64) throws(SyncError) -> [String] {
        // Only what central holds now: after central lost events, not until it has them again.
        let acked = lock.withLock { min(acknowledged, centralHolds) }
        guard acked >= outbound.firstSequence else { return [] }
        let cutoff = wallMillis - options.retentionMillis
        // The newest acknowledged event old enough: own HLC times only grow with the sequence number.
        var through: UInt64 = 0
        let reader = try journal { () throws(JournalError) in try outbound.reader(from: outbound.firstSequence) }
        defer { reader.close() }
        while let (seq, record) = try journal({ () throws(JournalError) in try reader.next() }), seq <= acked {
            let event: Event
            do { event = try RecordCodec.decode(record, context: enrollment.recordContext) } catch { throw SyncError(error, location: "\(directory)/outbound seq \(seq)") }
            guard Int64(event.hlc.millis) <= cutoff else { break }
            through = seq
        }
        guard through > 0 else { return [] }
        return try journal { () throws(JournalError) in try outbound.retire(through: through) }
    }

    // MARK: - Batch frames

    /// Seals the terminal's own records for sending: its dictionary and journal
    /// key, as its stored frames are.
    private func batchSealer() -> FrameSealer {
        FrameSealer(dictionary: ledgerDictionary, key: enrollment.journalKey)
    }

    /// The terminal's own records from `from` (through `through`, or what is
    /// written), as many as one batch frame of at most `blockBytesMax` record
    /// bytes takes, sealed as one frame (first-sequence field its first record's
    /// number, previous checksum 0); nil when there is none. Stored frames are
    /// repacked, never shipped as they are: a per-record terminal stores one frame
    /// per event (sync-protocol.md, "A session" and "Bundles").
    private func nextBatchFrame(from: UInt64, through: UInt64?, blockBytesMax: Int,
                                sealer: FrameSealer) throws(SyncError) -> (bytes: [UInt8], header: FrameHeader)? {
        let reader = try journal { () throws(JournalError) in
            try JournalReader(directory: directory + "/outbound", fileSystem: fileSystem, dictionaries: [ledgerDictionary],
                              key: enrollment.journalKey, from: from, through: through ?? outbound.readableSequence)
        }
        defer { reader.close() }
        return try journal { () throws(JournalError) in
            try reader.nextBatch(blockBytesMax: min(blockBytesMax, JournalLimits.frameRecordBytesMax)).map { batch throws(JournalError) in
                try sealer.seal(batch.records, firstSequence: batch.firstSequence)
            }
        }
    }

    // MARK: - Bundles

    /// Writes every event central lacks (as far as this terminal knows) into a
    /// bundle file as batch frames of at most `pushBatchBytesMax` record bytes,
    /// streaming: one pass to count (batch boundaries depend on record sizes
    /// alone), one to seal and write.
    public func exportBundle(to path: String) throws(SyncError) -> (events: Int, first: UInt64, last: UInt64) {
        let from = lock.withLock { centralHolds } + 1
        let through = outbound.durableSequence
        let sealer = batchSealer()
        var header = BundleHeader(central: enrollment.central, terminal: terminal, dictionaryID: sealer.dictionaryID,
                                  keyID: sealer.keyID, firstSequence: 0, lastSequence: 0, frameCount: 0)
        /// Each batch's first sequence number and records, in order.
        func batches(_ body: (UInt64, [[UInt8]]) throws(SyncError) -> Void) throws(SyncError) {
            guard from <= through else { return }
            let reader = try journal { () throws(JournalError) in
                try JournalReader(directory: directory + "/outbound", fileSystem: fileSystem, dictionaries: [ledgerDictionary],
                                  key: enrollment.journalKey, from: from, through: through)
            }
            defer { reader.close() }
            while let batch = try journal({ () throws(JournalError) in try reader.nextBatch(blockBytesMax: SyncLimits.pushBatchBytesMax) }) {
                try body(batch.firstSequence, batch.records)
            }
        }
        try batches { (first, records) throws(SyncError) in
            if header.frameCount == 0 { header.firstSequence = first }
            header.frameCount += 1
            header.lastSequence = first + UInt64(records.count) - 1
        }
        let writer = try BundleWriter(path: path, header: header, fileSystem: fileSystem)
        var written: UInt32 = 0
        try batches { (first, records) throws(SyncError) in
            guard written < header.frameCount else { return }
            let frame = try journal { () throws(JournalError) in try sealer.seal(records, firstSequence: first) }
            try writer.write(frame.bytes)
            written += 1
        }
        try writer.finish()
        let count = header.frameCount == 0 ? 0 : Int(header.lastSequence - header.firstSequence + 1)
        return (count, header.firstSequence, header.lastSequence)
    }

    public func close() throws(SyncError) {
        defer { storeLock.release() }
        try journal { () throws(JournalError) in try outbound.close() }
        try journal { () throws(JournalError) in try inbound.close() }
    }
}
