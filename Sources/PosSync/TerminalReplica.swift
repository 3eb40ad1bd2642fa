import Foundation
import Logging
import PosJournal
import PosLedger

/// How a terminal store is run.
public struct TerminalOptions: Sendable {
    /// Outbound and inbound journal segments roll at this size, in bytes.
    public var segmentBytesMax: Int
    /// Acknowledged events are kept at least this long, in milliseconds, before their segment may be retired.
    public var retentionMillis: Int64
    public static let retentionMillisDefault: Int64 = 90 * 24 * 3_600_000
    /// Deliberate breakage for proving the simulator's checks can fail: when true the
    /// outbound journal does not fsync before an event is acknowledged. Never set outside tests.
    public var testOnlyUnsyncedOutbound = false

    public init(segmentBytesMax: Int = JournalLimits.segmentBytesDefault, retentionMillis: Int64 = TerminalOptions.retentionMillisDefault) {
        self.segmentBytesMax = segmentBytesMax
        self.retentionMillis = retentionMillis
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
    /// Central has durably accepted the terminal's events through this.
    public private(set) var acknowledged: UInt64 = 0
    /// Central journal position pulled through.
    public private(set) var pullCursor: UInt64 = 0
    public private(set) var lastSyncMillis: Int64? = nil

    public var terminal: ReplicaId { enrollment.terminal }

    /// Creates the store of a newly enrolled terminal.
    public static func initialize(directory: String, enrollment: Enrollment, fileSystem: any JournalFileSystem = PosixFileSystem(),
                                  options: TerminalOptions = TerminalOptions(), logger: Logger? = nil) throws(SyncError) -> TerminalReplica {
        let files = FileStore(fs: fileSystem)
        if files.exists(directory + "/enrollment.json") {
            throw SyncError(.invalidArgument, "a terminal store already exists here", location: directory)
        }
        try files.makeDirectories(directory)
        try enrollment.write(to: directory + "/enrollment.json", fileSystem: fileSystem)
        return try open(directory: directory, fileSystem: fileSystem, options: options, logger: logger)
    }

    public static func open(directory: String, fileSystem: any JournalFileSystem = PosixFileSystem(),
                            options: TerminalOptions = TerminalOptions(), logger: Logger? = nil) throws(SyncError) -> TerminalReplica {
        let path = directory + "/enrollment.json"
        guard fileSystem.fileExists(path) else {
            throw SyncError(.notFound, "no terminal store here (enrollment.json missing)", location: directory)
        }
        return try TerminalReplica(directory: directory, enrollment: Enrollment.read(from: path, fileSystem: fileSystem), fileSystem: fileSystem,
                                   options: options, logger: logger ?? Logger(label: "possync.terminal", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    /// The file system the stores live on (the real one, or a simulated disk).
    public let fileSystem: any JournalFileSystem

    public let options: TerminalOptions

    private init(directory: String, enrollment: Enrollment, fileSystem: any JournalFileSystem, options: TerminalOptions,
                 logger: Logger) throws(SyncError) {
        self.directory = directory
        self.enrollment = enrollment
        self.fileSystem = fileSystem
        self.options = options
        self.logger = logger
        let config = JournalConfiguration(durability: options.testOnlyUnsyncedOutbound ? .none(bufferBytes: 1 << 20) : .perRecord,
                                          segmentBytesMax: options.segmentBytesMax,
                                          dictionary: ledgerDictionary, key: enrollment.journalKey)
        let outbound = try journal { () throws(JournalError) in
            try Journal.open(directory: directory + "/outbound", configuration: config, fileSystem: fileSystem, logger: logger)
        }
        self.outbound = outbound
        do {
            inbound = try journal { () throws(JournalError) in
                try Journal.open(directory: directory + "/inbound", configuration: config, fileSystem: fileSystem, logger: logger)
            }
        } catch {
            try? outbound.close()
            throw error
        }
        try restore()
    }

    private func restore() throws(SyncError) {
        var events: [Event] = []
        let own = try journal { () throws(JournalError) in try outbound.reader(from: outbound.firstSequence) }
        while let (seq, record) = try journal({ () throws(JournalError) in try own.next() }) {
            let event: Event
            do { event = try RecordCodec.decode(record) } catch { throw SyncError(error, location: "\(directory)/outbound seq \(seq)") }
            guard event.dot == (try? Dot(replica: terminal, seq: seq)) else {
                throw SyncError(.malformed, "outbound seq \(seq) holds event \(event.dot)", location: "\(directory)/outbound")
            }
            events.append(event)
        }
        let pulled = try journal { () throws(JournalError) in try inbound.reader(from: inbound.firstSequence) }
        while let (seq, record) = try journal({ () throws(JournalError) in try pulled.next() }) {
            switch try InboundRecord.decode(record, location: "\(directory)/inbound seq \(seq)") {
            case .pulled(let position, let bytes):
                do { events.append(try RecordCodec.decode(bytes)) } catch { throw SyncError(error, location: "\(directory)/inbound seq \(seq)") }
                pullCursor = max(pullCursor, position)
            case .pullCursor(let position):
                pullCursor = position  // as the last session left it (it may have been reset)
            case .acknowledged(let sequence):
                acknowledged = max(acknowledged, sequence)
            case .synced(let wallMillis):
                lastSyncMillis = wallMillis
            }
        }
        // The clock resumes after the newest own event (this clock made them);
        // pulled events may only move it within the remote-ahead guard of the
        // last sync's wall time, so an absurd remote timestamp never drags it.
        let newestOwn = events.filter { $0.dot.replica == terminal }.map(\.hlc).max() ?? .zero
        hlc = HybridLogicalClock(last: newestOwn)
        absorb(events, wallMillis: lastSyncMillis ?? Int64(newestOwn.millis))
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
        let from = lock.withLock { acknowledged } + 1
        guard from <= outbound.lastSequence else { return [] }
        let reader = try journal { () throws(JournalError) in try outbound.reader(from: from) }
        var out: [Event] = []
        while let (seq, record) = try journal({ () throws(JournalError) in try reader.next() }) {
            do { out.append(try RecordCodec.decode(record)) } catch { throw SyncError(error, location: "\(directory)/outbound seq \(seq)") }
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
            do { event = try RecordCodec.decode(bytes) } catch { throw SyncError(error, location: "\(directory)/inbound seq \(seq)") }
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
        public var description: String {
            "pushed \(pushed) events in \(pushBatches) batches (\(duplicatesAtCentral) central already had), acknowledged through seq \(acknowledged); pulled \(pulled) events in \(pullBatches) batches"
                + (clockSkewed ? "; central says this terminal's clock is off" : "")
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
                     pushBatchBytes: Int = SyncLimits.pushBatchBytesMax,
                     progress: ((SyncProgress) -> Void)? = nil) throws(SyncError) -> SyncReport {
        precondition(pushBatchBytes > 0 && pushBatchBytes <= SyncLimits.pushBatchBytesMax)
        var report = SyncReport()
        let hello = SyncMessage.Hello(central: enrollment.central, terminal: terminal, knowledge: knowledge,
                                      pullCursor: lock.withLock { pullCursor }, wallMillis: wallMillis)
        guard case .welcome(let welcome) = try expect(transport.exchange(.hello(hello))) else {
            throw SyncError(.malformed, "central answered hello with something other than welcome")
        }
        report.clockSkewed = welcome.clockSkewed
        // Central can only hold what was pushed, and only durable events are pushed.
        guard welcome.acknowledged <= outbound.durableSequence else {
            throw SyncError(.sequenceGap, "central acknowledged seq \(welcome.acknowledged) but this terminal's journal holds seq \(outbound.durableSequence) durably: the terminal store is older than what it sent", location: directory)
        }
        try noteAcknowledged(welcome.acknowledged)
        if lock.withLock({ pullCursor }) > welcome.head {
            // Central's journal is shorter than what this terminal pulled through
            // (central restored from a backup): pull from the start again; the
            // knowledge vector keeps what is already held from coming twice.
            logger.warning("pull cursor beyond central's journal; pulling from the start", metadata: [
                "sync.cursor": "\(pullCursor)", "sync.central_head": "\(welcome.head)",
            ])
            lock.withLock { pullCursor = 0 }
        }
        let cursorAtStart = lock.withLock { pullCursor }
        var status = SyncProgress(toPush: Int(outbound.durableSequence - min(outbound.durableSequence, welcome.acknowledged)), pushed: 0,
                                  toScan: Int(welcome.head - min(welcome.head, cursorAtStart)), scanned: 0)
        progress?(status)
        // Push: frames as stored, in bounded batches.
        var from = welcome.acknowledged + 1
        while from <= outbound.durableSequence {
            let reader = try journal { () throws(JournalError) in try outbound.reader(from: from) }
            var frames: [[UInt8]] = []
            var bytes = 0
            var pushedThrough: UInt64 = 0
            var dictionaryID: UInt32 = 0, keyID: UInt32 = 0
            while bytes < pushBatchBytes, frames.count < SyncLimits.framesPerMessageMax,
                  let f = try journal({ () throws(JournalError) in try reader.nextFrame() }) {
                if f.frame.header.lastSequence < from { continue }
                if frames.isEmpty { dictionaryID = f.segment.dictionaryID; keyID = f.segment.keyID }
                else if f.segment.dictionaryID != dictionaryID || f.segment.keyID != keyID { break }
                frames.append(f.frame.bytes)
                pushedThrough = f.frame.header.lastSequence
                bytes += f.frame.bytes.count
            }
            reader.close()
            guard !frames.isEmpty else { break }
            guard case .ack(let ack) = try expect(transport.exchange(.push(.init(terminal: terminal, dictionaryID: dictionaryID, keyID: keyID, frames: frames)))) else {
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
        var more = true
        while more {
            let request = SyncMessage.Pull(terminal: terminal, cursor: lock.withLock { pullCursor }, knowledge: knowledge)
            guard case .events(let batch) = try expect(transport.exchange(.pull(request))) else {
                throw SyncError(.malformed, "central answered pull with something other than events")
            }
            guard batch.cursor >= request.cursor else {
                throw SyncError(.malformed, "central answered a pull after position \(request.cursor) with position \(batch.cursor): refused")
            }
            report.pullBatches += 1
            report.pulled += try applyPulled(batch, wallMillis: wallMillis)
            more = batch.more && batch.cursor > request.cursor
            status.scanned = min(status.toScan, Int(batch.cursor - min(batch.cursor, cursorAtStart)))
            progress?(status)
        }
        let cursor = lock.withLock { pullCursor }
        _ = try journal { () throws(JournalError) in
            try inbound.append(contentsOf: [InboundRecord.pullCursor(position: cursor).encoded(), InboundRecord.synced(wallMillis: wallMillis).encoded()])
        }
        lock.withLock { lastSyncMillis = wallMillis }
        return report
    }

    private func expect(_ reply: SyncMessage) throws(SyncError) -> SyncMessage {
        if case .refusal(let r) = reply { throw SyncError(.init(refusal: r.code), r.message, location: "central") }
        return reply
    }

    private func noteAcknowledged(_ sequence: UInt64) throws(SyncError) {
        guard sequence > lock.withLock({ acknowledged }) else { return }
        _ = try journal { () throws(JournalError) in try inbound.append(InboundRecord.acknowledged(sequence: sequence).encoded()) }
        lock.withLock { acknowledged = sequence }
    }

    /// Decrypts a pulled batch, stores it durably in the inbound journal, folds it.
    private func applyPulled(_ batch: SyncMessage.Events, wallMillis: Int64) throws(SyncError) -> Int {
        let decoder = FrameDecoder(dictionaries: [ledgerDictionary], key: enrollment.journalKey)
        var records: [[UInt8]] = []
        var events: [Event] = []
        let known = knowledge
        for (i, frame) in batch.frames.enumerated() {
            let decoded = try journal { () throws(JournalError) in
                try Frames.records(frame, dictionaryID: ledgerDictionary.id, keyID: enrollment.journalKey.id, decoder: decoder, file: "pulled frame \(i)")
            }
            for (j, record) in decoded.records.enumerated() {
                guard case .pulled(_, let bytes) = try InboundRecord.decode(record, location: "pulled frame \(i) record \(j)") else {
                    throw SyncError(.malformed, "pulled batch holds a record that is not an event", location: "pulled frame \(i) record \(j)")
                }
                let event: Event
                do { event = try RecordCodec.decode(bytes) } catch { throw SyncError(error, location: "pulled frame \(i) record \(j)") }
                if case .saleCaptured(let c) = event.body, c.paymentCode != nil {
                    throw SyncError(.notAuthorized, "central relayed a payment code (event \(event.dot)): refused", location: "pulled frame \(i) record \(j)")
                }
                if event.dot.replica == terminal || known.covers(event.dot) { continue }
                records.append(record)
                events.append(event)
            }
        }
        if !records.isEmpty {
            _ = try journal { () throws(JournalError) in try inbound.append(contentsOf: records) }
        }
        lock.withLock {
            pullCursor = max(pullCursor, batch.cursor)
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
        let acked = lock.withLock { acknowledged }
        guard acked >= outbound.firstSequence else { return [] }
        let cutoff = wallMillis - options.retentionMillis
        // The newest acknowledged event old enough: own HLC times only grow with the sequence number.
        var through: UInt64 = 0
        let reader = try journal { () throws(JournalError) in try outbound.reader(from: outbound.firstSequence) }
        defer { reader.close() }
        while let (seq, record) = try journal({ () throws(JournalError) in try reader.next() }), seq <= acked {
            let event: Event
            do { event = try RecordCodec.decode(record) } catch { throw SyncError(error, location: "\(directory)/outbound seq \(seq)") }
            guard Int64(event.hlc.millis) <= cutoff else { break }
            through = seq
        }
        guard through > 0 else { return [] }
        return try journal { () throws(JournalError) in try outbound.retire(through: through) }
    }

    // MARK: - Bundles

    /// Writes every event central lacks (as far as this terminal knows) into a
    /// bundle file, streaming: one pass to count, one to write.
    public func exportBundle(to path: String) throws(SyncError) -> (events: Int, first: UInt64, last: UInt64) {
        let from = lock.withLock { acknowledged } + 1
        let through = outbound.durableSequence
        var header = BundleHeader(central: enrollment.central, terminal: terminal, dictionaryID: ledgerDictionary.id,
                                  keyID: enrollment.journalKey.id, firstSequence: 0, lastSequence: 0, frameCount: 0)
        func frames(_ body: (RawFrame, SegmentHeader) throws(SyncError) -> Void) throws(SyncError) {
            guard from <= through else { return }
            let reader = try journal { () throws(JournalError) in
                try JournalReader(directory: directory + "/outbound", fileSystem: fileSystem, dictionaries: [ledgerDictionary],
                                  key: enrollment.journalKey, from: from, through: through)
            }
            defer { reader.close() }
            while let f = try journal({ () throws(JournalError) in try reader.nextFrame() }) {
                if f.frame.header.lastSequence >= from { try body(f.frame, f.segment) }
            }
        }
        try frames { (frame, segment) throws(SyncError) in
            if header.frameCount == 0 {
                header.dictionaryID = segment.dictionaryID
                header.keyID = segment.keyID
                header.firstSequence = frame.header.firstSequence
            }
            header.frameCount += 1
            header.lastSequence = frame.header.lastSequence
        }
        let writer = try BundleWriter(path: path, header: header, fileSystem: fileSystem)
        var written: UInt32 = 0
        try frames { (frame, _) throws(SyncError) in
            guard written < header.frameCount else { return }
            try writer.write(frame.bytes)
            written += 1
        }
        try writer.finish()
        let count = header.frameCount == 0 ? 0 : Int(header.lastSequence - header.firstSequence + 1)
        return (count, header.firstSequence, header.lastSequence)
    }

    public func close() throws(SyncError) {
        try journal { () throws(JournalError) in try outbound.close() }
        try journal { () throws(JournalError) in try inbound.close() }
    }
}

extension SyncError.Code {
    /// The code central named in a refusal.
    init(refusal name: String) {
        switch name {
        case "wrongCentral": self = .wrongCentral
        case "notEnrolled": self = .notEnrolled
        case "foreignReplica": self = .foreignReplica
        case "notAuthorized": self = .notAuthorized
        case "sequenceGap": self = .sequenceGap
        case "rewrittenHistory": self = .rewrittenHistory
        case "foreignMerchant": self = .foreignMerchant
        case "versionUnsupported": self = .versionUnsupported
        case "tooLarge": self = .tooLarge
        case "checksum": self = .checksum
        case "journal": self = .journal
        case "ledger": self = .ledger
        case "io": self = .io
        case "invalidArgument": self = .invalidArgument
        case "notFound": self = .notFound
        default: self = .malformed
        }
    }
}
