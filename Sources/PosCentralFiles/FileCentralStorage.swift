import Foundation
import Logging
import PosBytes
import PosCentral
import PosJournal
import PosLedger
import PosWire

/// The embedded central storage: one directory, no server (sync-protocol.md,
/// "Roles and storage", "Central state and snapshots", "Losses and recovery").
///
///     LOCK                       the store lock, held from open to close
///     central.json               identity (central id) and central's secret, mode 0600
///     terminals/T.json           each enrolled terminal's enrollment (merchant, secret), mode 0600
///     terminals/T.flagged        a terminal that tried to rewrite an accepted event
///     terminals/T.revoked        a terminal whose enrollment was revoked (when, and the operator's note);
///                                the one file written without the lock (`FileCentralStore.revoke`), read at each request
///     terminals/T.clock          the last clock reading (JSON) kept of a terminal found with its clock off
///     merchants/M.key            each merchant's duplicate-detection key (hex), mode 0600
///     journal/                   every accepted event, in acceptance order: position = sequence number
///     state/run-A-B.pss          snapshot runs: the folded state, filed by sale, of flushes A...B
///     losses.jsonl               the loss log
///     sequence-reservation.json  central's own numbers reserved ahead
///
/// Every accepted event is in the journal before `append` returns (fsync). The
/// runs save work and memory: on open, the chain of runs that check is taken
/// and the journal replayed after it; a missing or damaged run means replaying
/// more of the journal. Memory holds the sales touched since the last flush.
public final class FileCentralStorage: CentralStorage {
    public let directory: String
    public let centralID: CentralID
    let secret: [UInt8]
    let files: FileStore
    let journal: Journal
    let logger: Logger
    /// The directory's lock, held from open to close.
    private let storeLock: any StoreLockHandle
    /// The folded state and the digests of accepted events, on disk with a bounded part in memory.
    private var ledger: CentralState!
    /// The journal position of the last event folded, and its record's digest (what a run is tied to).
    private var lastApplied: (position: UInt64, digest: UInt64) = (0, 0)
    private var marks: [ReplicaId: UInt64] = [:]
    private var enrolled: [ReplicaId: Enrollment] = [:]
    /// The enrolled terminals' merchant keys, which the journal's and the snapshot runs' records decode with.
    private let merchantKeyBook: MerchantKeyBook
    private var flagged: [ReplicaId: String] = [:]
    private var revoked: [ReplicaId: String] = [:]
    private var clocks: [ReplicaId: ClockReading] = [:]
    private var merchantKeys: [String: [UInt8]] = [:]
    public private(set) var centralSequence: UInt64 = 0
    public private(set) var newestHLC: HLCTimestamp = .zero
    let lossLog: LossLog
    public private(set) var reservedThrough: UInt64

    /// Opens the storage in `directory` (created by `FileCentralStore.create`), holding `storeLock`.
    /// `recovering`: open without the snapshot runs' evidence (`central recover` accepts the loss).
    init(directory: String, identity: CentralIdentity, files: FileStore, storeLock: any StoreLockHandle,
         environment: CentralEnvironment, snapshotEvents: Int, recovering: Bool, logger: Logger) throws(SyncError) {
        self.directory = directory
        merchantKeyBook = MerchantKeyBook(source: { [directory] in FileCentralStorage.enrollmentPath(directory: directory, $0) })
        self.files = files
        self.storeLock = storeLock
        centralID = identity.central
        secret = identity.secret
        self.logger = logger
        let config = Self.journalConfiguration(secret: identity.secret)
        // The secret must open the journal before anything is cut or set aside: under another secret
        // (central.json damaged, or another store's) every snapshot run fails authentication and would
        // be set aside as damaged before the journal's replay refused.
        try Self.checkJournalKey(directory: directory + "/journal", key: config.key!, fileSystem: files.fs, identityFile: directory + "/central.json")
        let losses = try LossLog(directory: directory, files: files)
        lossLog = losses
        let reserved = try SequenceReservation.read(directory: directory, files: files)
        reservedThrough = reserved
        if !files.exists(directory + "/state") { try files.makeDirectories(directory + "/state") }  // a store from before snapshots
        // Evidence beats bytes: a run covering positions proves they were durable, so a cut below it is refused.
        var evidence: DurableEvidence? = nil
        if !recovering, let covered = try CentralState.coverage(directory: directory + "/state", fileSystem: files.fs, central: identity.central, secret: identity.secret) {
            evidence = DurableEvidence(sequence: covered.meta.position, source: "covered by snapshot run state/\(covered.name)")
        }
        let now = environment.wallMillis
        do throws(JournalError) {
            journal = try Journal.open(directory: directory + "/journal", configuration: config, fileSystem: files.fs, evidence: evidence,
                                       beforeRepair: { (report, last) throws(JournalError) in
                // Recorded before the cut, so a crash cannot leave a cut with no record.
                guard let t = report.truncation, !losses.records.hasCut(file: t.file, offset: t.offset, bytes: t.bytesRemoved, floor: reserved) else { return }
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
        do {
            try loadIdentities()
            let j = journal
            let digestAt = { (position: UInt64) throws(SyncError) -> UInt64? in
                let reader = try PosWire.journal { () throws(JournalError) in try j.reader(from: position) }
                defer { reader.close() }
                guard let (at, record) = try PosWire.journal({ () throws(JournalError) in try reader.next() }), at == position else { return nil }
                return eventDigest(record)
            }
            ledger = try CentralState(directory: directory + "/state", fileSystem: files.fs, central: centralID, secret: secret, recordContext: merchantKeyBook.context,
                                      journalHead: journal.lastSequence, journalDigest: digestAt,
                                      snapshotEvents: snapshotEvents, logger: logger)
            try replay(recovering: recovering, now: now)
        } catch {
            ledger?.close()
            try? journal.close()
            throw error
        }
    }

    /// Central's journal: durable per append, the ledger dictionary, the key derived from `secret`.
    /// Deflate level 1 (the journal's default is 1 too, chosen for the terminal's durable path; central's is its own choice): central seals every push's records again in its
    /// own frame, on the path of every acknowledgement, and level 6 saved 2.5-3.6 % of the bytes for
    /// 1.9-2.8 times the sealing time (sync-protocol.md, "Central's journal is deflated at level 1").
    static func journalConfiguration(secret: [UInt8]) -> JournalConfiguration {
        JournalConfiguration(durability: .perRecord, dictionary: ledgerDictionary, key: KeyDerivation.centralJournalKey(secret: secret),
                             compressionLevel: journalCompressionLevel)
    }

    /// zlib level of central's own journal frames (see `journalConfiguration`).
    static let journalCompressionLevel: Int32 = 1

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

    /// The enrollment files under `terminals/`.
    /// Terminal `terminal`'s enrollment file, which holds its merchant key.
    static func enrollmentPath(directory: String, _ terminal: ReplicaId) -> String { "\(directory)/terminals/\(terminal.rawValue).json" }

    static func readEnrollments(directory: String, files: FileStore) throws(SyncError) -> [Enrollment] {
        var out: [Enrollment] = []
        for name in try files.list(directory + "/terminals") where name.hasSuffix(".json") {
            out.append(try Enrollment.read(from: directory + "/terminals/" + name, fileSystem: files.fs))
        }
        return out
    }

    /// Merchant keys, enrollments and flags, from their files.
    private func loadIdentities() throws(SyncError) {
        for name in try files.list(directory + "/merchants") {
            let path = directory + "/merchants/" + name
            let merchant: String
            if name.hasSuffix(".key") { merchant = String(name.dropLast(4)) } else if name.hasSuffix(".json") { merchant = String(name.dropLast(5)) } else { continue }
            guard let key = Hex.decode(String(decoding: try files.read(path), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)), key.count == 32 else {
                throw SyncError(.malformed, "merchant key file: 64 hex digits expected", location: path)
            }
            merchantKeys[merchant] = key
        }
        for e in try Self.readEnrollments(directory: directory, files: files) {
            // A capture in record version 2 derives its duplicate key with this key: a damaged copy
            // that still parses would silently change which captures are duplicates.
            if let key = merchantKeys[e.merchant], key != e.merchantKey {
                throw SyncError(.malformed, "field merchantKey differs from the merchant's key in \(directory)/merchants/\(e.merchant).key: one of the two files is damaged (the terminal's own enrollment.json holds a copy); central refuses to derive duplicate keys from either",
                                location: "\(directory)/terminals/\(e.terminal.rawValue).json")
            }
            enrolled[e.terminal] = e
            merchantKeyBook.note(e)
        }
        for (terminal, _) in enrolled where files.exists(clockPath(terminal)) {
            // A reading that does not read is no reading (it is information, not evidence).
            clocks[terminal] = try? JSONDecoder().decode(ClockReading.self, from: Data(files.read(clockPath(terminal))))
        }
        for (terminal, _) in enrolled where files.exists("\(directory)/terminals/\(terminal.rawValue).flagged") {
            flagged[terminal] = String(decoding: (try? files.read("\(directory)/terminals/\(terminal.rawValue).flagged")) ?? [], as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    /// Takes what the newest run says (high-water marks, central's sequence, the
    /// newest HLC), then replays the journal after it, flushing as it goes.
    /// Central's own numbers only grow (they skip numbers a lost event may have
    /// used); a terminal's continue its mark, except across a gap the loss log
    /// records unrecoverable.
    private func replay(recovering: Bool, now: @Sendable () -> Int64) throws(SyncError) {
        var from: UInt64 = 1
        if let meta = ledger.meta {
            for (replica, ack) in meta.acknowledged {
                guard enrolled[replica] != nil else {
                    throw SyncError(.notEnrolled, "the snapshot holds events of terminal \(replica.rawValue), which has no enrollment file", location: directory + "/terminals")
                }
                marks[replica] = ack
            }
            centralSequence = meta.centralSequence
            newestHLC = HLCTimestamp(rawValue: meta.lastHLC)
            from = meta.position + 1
            lastApplied = (meta.position, meta.journalDigest)
        }
        guard from <= journal.lastSequence else { return }
        let reader = try PosWire.journal { () throws(JournalError) in try journal.reader(from: from) }
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
        let losses = lossLog.records
        // Records are read a batch at a time and decoded (with their digests) on two threads; each is then
        // checked, prepared and folded here in journal order, exactly as one at a time.
        let context = merchantKeyBook.context
        var read: [(position: UInt64, record: [UInt8])] = []
        read.reserveCapacity(CentralState.bulkBatchEvents)
        var more = true
        while more {
            read.removeAll(keepingCapacity: true)
            // A record that cannot be read is reported after the ones before it are taken (their own errors come first).
            var readFailure: SyncError?
            do {
                while read.count < CentralState.bulkBatchEvents, let next = try PosWire.journal({ () throws(JournalError) in try reader.next() }) {
                    read.append((next.sequence, next.record))
                }
            } catch { readFailure = error }
            more = readFailure == nil && read.count == CentralState.bulkBatchEvents
            let decoded: [(event: Event, digest: UInt64)]
            var failure: BulkDecode.Failure?
            switch BulkDecode.map(read.map(\.record), { (r) throws(LedgerError) in (try RecordCodec.decode(r, context: context), eventDigest(r)) }) {
            case .success(let all): decoded = all
            case .failure(let f):
                // The events before the one that does not decode are taken first (their own errors come first).
                failure = f
                decoded = try read[..<f.index].map { (p, r) throws(SyncError) in
                    do throws(LedgerError) { return (try RecordCodec.decode(r, context: context), eventDigest(r)) } catch {
                        throw SyncError(error, location: "\(directory)/journal position \(p)")
                    }
                }
            }
            for (i, (event, digest)) in decoded.enumerated() {
                try replayOne(read[i].position, read[i].record, event, digest)
            }
            if let failure {
                throw SyncError(failure.error, location: "\(directory)/journal position \(read[failure.index].position)")
            }
            if let readFailure { throw readFailure }
        }
        flush()

        /// One event read back: the checks of its place, its digest, made resident and queued for the fold.
        func replayOne(_ position: UInt64, _ record: [UInt8], _ event: Event, _ digest: UInt64) throws(SyncError) {
            let origin = event.dot.replica
            if origin.isCentral {
                guard event.dot.seq > centralSequence else {
                    throw SyncError(.sequenceGap, "journal position \(position) holds \(event.dot), expected a central seq above \(centralSequence)", location: directory + "/journal")
                }
                for _ in (centralSequence + 1)..<event.dot.seq { ledger.appendDigest(.central, lostDigest) }
                centralSequence = event.dot.seq
            } else if enrolled[origin] != nil {
                let acknowledged = marks[origin] ?? 0
                if event.dot.seq != acknowledged + 1 {
                    let gap = (acknowledged + 1)...max(acknowledged + 1, event.dot.seq - 1)
                    guard event.dot.seq > acknowledged + 1 else {
                        throw SyncError(.sequenceGap, "journal position \(position) holds \(event.dot), expected seq \(acknowledged + 1) of \(origin)", location: directory + "/journal")
                    }
                    if !losses.skipped(origin).contains(where: { $0 == gap }) {
                        // Only `central recover` goes past a gap no loss record explains (its record was on a damaged line).
                        guard recovering else {
                            throw SyncError(.sequenceGap, "journal position \(position) holds \(event.dot), expected seq \(acknowledged + 1) of \(origin)", location: directory + "/journal")
                        }
                        try lossLog.append(LossRecord(kind: .unrecoverable, recordedMillis: now(), terminal: origin.rawValue, from: gap.lowerBound, through: gap.upperBound,
                                                      note: "terminal \(origin.rawValue) events \(gap.lowerBound)...\(gap.upperBound): a gap in central's journal that no loss record explained (found by central recover): lost for good"))
                    }
                    for _ in gap { ledger.appendDigest(origin, lostDigest) }
                }
                marks[origin] = event.dot.seq
            } else {
                throw SyncError(.notEnrolled, "journal position \(position) holds \(event.dot) of a terminal with no enrollment file", location: directory + "/terminals")
            }
            ledger.appendDigest(origin, digest)
            try ledger.prepare(event)
            events.append(event)
            records.append(record)
            last = (position, digest)
            newestHLC = max(newestHLC, event.hlc)
            if events.count >= CentralState.bulkBatchEvents || ledger.eventsSinceSnapshot + events.count >= ledger.snapshotEvents { flush() }
        }
    }

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
                                 centralSequence: centralSequence, lastHLC: newestHLC.rawValue, acknowledged: marks)
    }

    // MARK: - CentralStorage: enrollment

    public func enrollments() throws(SyncError) -> [Enrollment] { enrolled.values.sorted { $0.terminal < $1.terminal } }

    public func saveEnrollment(_ enrollment: Enrollment) throws(SyncError) {
        try enrollment.write(to: "\(directory)/terminals/\(enrollment.terminal.rawValue).json", fileSystem: files.fs)
        enrolled[enrollment.terminal] = enrollment
        merchantKeyBook.note(enrollment)
    }

    public var recordContext: RecordDecodeContext { merchantKeyBook.context }

    public func merchantKey(_ merchant: String) throws(SyncError) -> [UInt8]? { merchantKeys[merchant] }

    public func saveMerchantKey(_ key: [UInt8], for merchant: String) throws(SyncError) {
        try files.writeAtomically(Array((Hex.encode(key) + "\n").utf8), to: "\(directory)/merchants/\(merchant).key")
        merchantKeys[merchant] = key
    }

    public func flaggedTerminals() -> [ReplicaId: String] { flagged }

    public func flag(_ terminal: ReplicaId, note: String) throws(SyncError) {
        flagged[terminal] = note  // flagged from now on even if the file cannot be written: the caller says so
        try files.writeAtomically(Array((note + "\n").utf8), to: "\(directory)/terminals/\(terminal.rawValue).flagged")
    }

    /// Looks at the directory every time until the terminal is found revoked (for good): `central revoke`
    /// writes `terminals/T.revoked` without the store's lock, so a running server sees it at the next request.
    public func revocation(of terminal: ReplicaId) -> String? {
        if let note = revoked[terminal] { return note }
        guard enrolled[terminal] != nil, let note = FileCentralStore.revocationNote(directory: directory, terminal: terminal, files: files) else { return nil }
        revoked[terminal] = note
        return note
    }

    public func revokedTerminals() -> [ReplicaId: String] {
        for terminal in enrolled.keys { _ = revocation(of: terminal) }
        return revoked
    }

    public func revoke(_ terminal: ReplicaId, note: String) throws(SyncError) {
        revoked[terminal] = try FileCentralStore.writeRevocation(directory: directory, terminal: terminal, note: note, fileSystem: files.fs).note
    }

    func clockPath(_ terminal: ReplicaId) -> String { "\(directory)/terminals/\(terminal.rawValue).clock" }

    public func clockReadings() -> [ReplicaId: ClockReading] { clocks }

    public func saveClockReading(_ reading: ClockReading, of terminal: ReplicaId) throws(SyncError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try files.writeAtomically(Array((try! encoder.encode(reading)) + [UInt8(ascii: "\n")]), to: clockPath(terminal))
        clocks[terminal] = reading
    }

    // MARK: - CentralStorage: accepted events

    public func mark(of terminal: ReplicaId) -> UInt64 { marks[terminal] ?? 0 }

    public var head: UInt64 { journal.durableSequence }

    @discardableResult
    public func append(_ accepted: [AcceptedEvent], skipping gap: ClosedRange<UInt64>?) throws(SyncError) -> ClosedRange<UInt64> {
        precondition(!accepted.isEmpty, "an append of no events")
        let records = accepted.map(\.record), events = accepted.map(\.event)
        let positions: ClosedRange<UInt64>
        if accepted.count >= Self.overlappedFoldEventsMin {
            // The journal's write and fsync run on a second thread while the events are folded here; nothing
            // is answered before both are done, and a write that fails takes the fold back (as if not folded).
            let journal = journal
            let write = SecondThread { () throws(SyncError) in
                try PosWire.journal { () throws(JournalError) in try journal.append(contentsOf: records) }
            }
            ledger.apply(events, records: records)
            do { positions = try write.result() } catch {
                // The records taken back were decoded once already (pushed, loaded or written by central): one
                // that no longer decodes is memory gone bad, and serving a state that holds what is not durable
                // is worse than stopping (reopening recovers from the journal).
                do { try ledger.undoApply(events) } catch { preconditionFailure("taking back a failed append: \(error)") }
                throw error
            }
        } else {
            positions = try PosWire.journal { () throws(JournalError) in try journal.append(contentsOf: records) }  // durable
            ledger.apply(events, records: records)
        }
        for a in accepted {
            let origin = a.event.dot.replica
            if origin.isCentral {
                for _ in (centralSequence + 1)..<a.event.dot.seq { ledger.appendDigest(.central, lostDigest) }
                centralSequence = a.event.dot.seq
            } else {
                if let gap, gap.lowerBound == (marks[origin] ?? 0) + 1, gap.upperBound + 1 == a.event.dot.seq {
                    for _ in gap { ledger.appendDigest(origin, lostDigest) }
                }
                marks[origin] = a.event.dot.seq
            }
            ledger.appendDigest(origin, a.digest)
            newestHLC = max(newestHLC, a.event.hlc)
        }
        lastApplied = (positions.upperBound, accepted.last!.digest)
        snapshotAfterWrite()
        return positions
    }

    /// Events an append holds, at least, for its fold to run while the journal is written and synced on a
    /// second thread: below, handing the write over costs more than the overlap saves.
    static let overlappedFoldEventsMin = 256

    public func digest(of dot: Dot) throws(SyncError) -> UInt64? { try ledger.digest(dot.replica, dot.seq) }

    public func scan(after position: UInt64, _ body: (UInt64, [UInt8]) throws(SyncError) -> Bool) throws(SyncError) {
        let head = journal.durableSequence
        guard position < head else { return }
        let reader = try PosWire.journal { () throws(JournalError) in try journal.reader(from: position + 1) }
        defer { reader.close() }
        while let (at, record) = try PosWire.journal({ () throws(JournalError) in try reader.next() }), at <= head {
            guard try body(at, record) else { return }
        }
    }

    public func record(at position: UInt64) throws(SyncError) -> [UInt8]? {
        guard position >= 1, position <= journal.durableSequence else { return nil }
        let reader = try PosWire.journal { () throws(JournalError) in try journal.reader(from: position) }
        defer { reader.close() }
        guard let (at, record) = try PosWire.journal({ () throws(JournalError) in try reader.next() }), at == position else { return nil }
        return record
    }

    // MARK: - CentralStorage: the folded state

    public func prepare(_ event: Event) throws(SyncError) { try ledger.prepare(event) }
    public func prepare(_ key: EntityKey) throws(SyncError) { try ledger.prepare(key) }
    public var resident: LedgerState { ledger.resident }
    public func didRead() { snapshotAfterWrite() }
    public func fullState() throws(SyncError) -> LedgerState { try ledger.fullState() }
    public func forEachStatePart(_ body: (LedgerState) throws(SyncError) -> Void) throws(SyncError) { try ledger.forEachPart(body) }

    public func salesAwaitingOutcome() throws(SyncError) -> [SaleId] {
        var ids = try ledger.runSalesWithCaptureAndNoOutcome()
        let resident = ledger.resident
        for id in resident.sales.keys where resident.capture(of: id) != nil && resident.eventDots(of: id).count == 1 { ids.append(id) }
        return Array(Set(ids)).sorted()
    }

    // MARK: - CentralStorage: losses and the reservation

    public var losses: [LossRecord] { lossLog.records }

    @discardableResult
    public func appendLoss(_ record: LossRecord) throws(SyncError) -> LossRecord { try lossLog.append(record) }

    public func reserve(through sequence: UInt64) throws(SyncError) {
        try SequenceReservation.write(sequence, directory: directory, files: files)
        reservedThrough = sequence
    }

    public func close() throws(SyncError) {
        defer { storeLock.release() }
        ledger.close()
        try PosWire.journal { () throws(JournalError) in try journal.close() }
    }

    // MARK: - What the files are doing

    /// What the state on disk is doing: flushes (snapshot runs written) and
    /// compactions since open, runs now, and events folded since the last flush.
    public struct SnapshotStatistics: Sendable, Equatable {
        public var written: Int
        public var compactions: Int
        public var runs: Int
        public var eventsSinceSnapshot: Int
    }

    /// Whether snapshot merges run on a second thread (`CentralState.mergesInBackground`; tests compare both).
    var mergesInBackground: Bool {
        get { ledger.mergesInBackground }
        set { ledger.mergesInBackground = newValue }
    }

    /// The runs reads use now, merges under way or not (tests).
    var runsServing: Int { ledger.runs.count }

    /// Waits for merges under way (their runs are counted once installed).
    public var snapshotStatistics: SnapshotStatistics {
        ledger.finishMerges()
        return SnapshotStatistics(written: ledger.snapshotsWritten, compactions: ledger.compactions, runs: ledger.runs.count,
                           eventsSinceSnapshot: ledger.eventsSinceSnapshot)
    }
}
