import Foundation
import Logging

/// An append-only journal of opaque records in a directory of segment files.
///
/// Records get contiguous sequence numbers from 1. Appends are thread-safe;
/// how durable an append is when it returns is the configuration's
/// `durability`. After a failed write or fsync the journal refuses further
/// work (`JournalError.Code.failed`): what reached the disk is unknown until
/// it is reopened, and reopening recovers.
public final class Journal: @unchecked Sendable {
    public let directory: String
    public let configuration: JournalConfiguration
    public let journalID: JournalID
    /// What opening found and repaired.
    public let recoveryReport: RecoveryReport
    /// How much of the journal open checked: after `.lastSegment`, the frames of
    /// sealed segments are checked by the readers that read them.
    public let openCheck: JournalOpenCheck
    /// Where readers may start inside the segments open checked (`FramePosition`);
    /// none in the segments it did not walk, whose readers start at the first frame.
    let startPositions: [UInt64: [FramePosition]]
    let fs: any JournalFileSystem
    let logger: Logger

    // All below guarded by `condition`.
    private let condition = MonotonicCondition()
    private var pending: [[UInt8]] = []
    private var pendingBytes = 0
    /// When the oldest pending record arrived, on the monotonic clock (group commit's delay counts from it).
    private var pendingSinceNanos: UInt64 = 0
    private var assignedSequence: UInt64
    private var writtenSequence: UInt64
    private var durableSequenceValue: UInt64
    private var writerBusy = false
    private var failure: JournalError?
    private var isClosed = false
    private var firstSequenceValue: UInt64
    // Used only by the caller holding `writerBusy`.
    private let writer: SegmentWriter

    /// Opens (recovering) or creates the journal in `directory`. With
    /// `evidence`, open fails with `behindEvidence` and changes nothing when
    /// the journal (after cutting a torn tail) would end below `evidence.sequence`.
    /// `beforeRepair` hears of a planned torn-tail cut (and the last sequence
    /// that stays) before anything is changed; if it throws, open fails unchanged.
    /// `check` says how much open reads (`JournalOpenCheck`): `.lastSegment`
    /// leaves the frames of sealed segments to the readers that read them.
    public static func open(directory: String, configuration: JournalConfiguration = JournalConfiguration(),
                            fileSystem: any JournalFileSystem = PosixFileSystem(),
                            check: JournalOpenCheck = .full,
                            evidence: DurableEvidence? = nil,
                            beforeRepair: ((RecoveryReport, _ lastSequence: UInt64) throws(JournalError) -> Void)? = nil,
                            logger: Logger = Logger(label: "possync.journal", factory: { _ in SwiftLogNoOpLogHandler() })) throws(JournalError) -> Journal {
        if !fileSystem.fileExists(directory) {
            try fileSystem.createDirectory(directory)
            let parent = (directory as NSString).deletingLastPathComponent
            try fileSystem.syncDirectory(parent.isEmpty ? "." : parent)
        }
        let scan = try JournalScan.run(directory: directory, fs: fileSystem, configuration: configuration, logger: logger, repair: true, check: check,
                                       evidence: evidence, beforeRepair: beforeRepair)
        return try Journal(directory: directory, configuration: configuration, fs: fileSystem, logger: logger, check: check, scan: scan)
    }

    private init(directory: String, configuration: JournalConfiguration, fs: any JournalFileSystem, logger: Logger, check: JournalOpenCheck, scan: JournalScan) throws(JournalError) {
        self.directory = directory
        openCheck = check
        self.configuration = configuration
        self.fs = fs
        self.logger = logger
        recoveryReport = scan.report
        startPositions = scan.positions
        journalID = scan.segments.first?.header.journalID ?? configuration.journalID ?? JournalID.random()
        writer = SegmentWriter(directory: directory, fs: fs, journalID: journalID, configuration: configuration, tail: scan.tail)
        let last = scan.segments.last?.lastSequence ?? (configuration.firstSequence - 1)
        assignedSequence = last
        writtenSequence = last
        durableSequenceValue = last
        firstSequenceValue = scan.segments.first?.header.baseSequence ?? configuration.firstSequence
        if scan.segments.isEmpty {
            try writer.roll()  // a new journal's identity is on disk from the start
        }
    }

    /// Sequence number of the oldest record still held (retired segments are gone).
    public var firstSequence: UInt64 { condition.withLock { firstSequenceValue } }
    /// Last sequence number handed out by an append (0 when the journal is empty).
    public var lastSequence: UInt64 { condition.withLock { assignedSequence } }
    /// Last sequence number known to be fsynced.
    public var durableSequence: UInt64 { condition.withLock { durableSequenceValue } }
    /// Last sequence number written to a file (readable), fsynced or not.
    public var readableSequence: UInt64 { condition.withLock { writtenSequence } }

    /// Appends one record; returns its sequence number.
    @discardableResult
    public func append(_ record: [UInt8]) throws(JournalError) -> UInt64 {
        try append(contentsOf: [record]).lowerBound
    }

    /// Appends records as one unit (one frame unless they exceed a frame's bounds).
    @discardableResult
    public func append(contentsOf records: [[UInt8]]) throws(JournalError) -> ClosedRange<UInt64> {
        guard !records.isEmpty else { throw JournalError(.invalidArgument, "append of no records") }
        var bytes = 0
        for (i, r) in records.enumerated() {
            guard r.count <= JournalLimits.recordBytesMax else {
                throw JournalError(.recordTooLarge, "record \(i) of the batch is \(r.count) bytes; recordBytesMax is \(JournalLimits.recordBytesMax); nothing was written")
            }
            bytes += FrameEncoder.blockBytes(of: r)
        }
        condition.lock()
        defer { condition.unlock() }
        try checkUsable()
        let first = assignedSequence + 1
        assignedSequence += UInt64(records.count)
        let last = assignedSequence
        if pending.isEmpty { pendingSinceNanos = configuration.monotonicNanos() }
        pending += records
        pendingBytes += bytes
        switch configuration.durability {
        case .none(let bufferBytes):
            if pendingBytes >= bufferBytes { try drainLocked(sync: false) }
        case .perRecord:
            try waitDurable(last, maxBytes: 0, maxDelay: 0)
        case .groupCommit(let maxBytes, let maxDelay):
            if pendingBytes >= maxBytes { condition.broadcast() }
            try waitDurable(last, maxBytes: maxBytes, maxDelay: maxDelay)
        }
        return first...last
    }

    private func checkUsable() throws(JournalError) {
        if isClosed { throw JournalError(.closed, "the journal is closed", file: directory) }
        if let failure {
            throw JournalError(.failed, "an earlier write failed (\(failure)); reopen the journal to recover", file: directory)
        }
    }

    /// Group commit: the first waiter with no writer active becomes the writer
    /// for everything pending; the others wait for the fsync that covers them.
    private func waitDurable(_ sequence: UInt64, maxBytes: Int, maxDelay: Int) throws(JournalError) {
        while durableSequenceValue < sequence {
            try checkUsable()
            if !writerBusy {
                writerBusy = true
                // Until the batch holds maxBytes or its oldest record has waited maxDelay, on the
                // monotonic clock. A wait that runs out ends it, and none is longer than the delay,
                // so no clock reading (a clock set back reads as no time passed) stretches it.
                let delayNanos = UInt64(maxDelay) * MonotonicClock.nanosPerMilli
                while pendingBytes < maxBytes && !pending.isEmpty {
                    let now = configuration.monotonicNanos()
                    let waited = now > pendingSinceNanos ? now - pendingSinceNanos : 0
                    guard waited < delayNanos, condition.wait(nanos: delayNanos - waited) else { break }
                }
                writerBusy = false
                // Also when nothing is pending but written records are not yet
                // durable (a flush() wrote them without fsync): the fsync is due.
                if !pending.isEmpty || writtenSequence > durableSequenceValue { try drainLocked(sync: true) }
                continue
            }
            condition.wait()
        }
    }

    /// Writes everything pending (and fsyncs when `sync`). Called with the lock
    /// held; releases it during I/O.
    private func drainLocked(sync: Bool) throws(JournalError) {
        while writerBusy { condition.wait() }
        try checkUsable()
        writerBusy = true
        let batch = pending
        pending = []
        pendingBytes = 0
        let last = writtenSequence + UInt64(batch.count)
        condition.unlock()
        var error: JournalError? = nil
        do {
            if !batch.isEmpty { try writer.write(batch, durable: sync) }
            if sync { try writer.sync() }
        } catch let e {
            error = e
        }
        condition.lock()
        writerBusy = false
        defer { condition.broadcast() }
        if let error {
            failure = error
            logger.error("journal write failed", metadata: ["journal.directory": "\(directory)", "journal.error": "\(error)"])
            throw error
        }
        writtenSequence = last
        if sync { durableSequenceValue = last }
    }

    /// Writes buffered records to the file without fsync (for `.none`).
    public func flush() throws(JournalError) {
        condition.lock()
        defer { condition.unlock() }
        try checkUsable()
        try drainLocked(sync: false)
    }

    /// Writes buffered records and fsyncs: everything appended so far is durable.
    public func sync() throws(JournalError) {
        condition.lock()
        defer { condition.unlock() }
        try checkUsable()
        try drainLocked(sync: true)
    }

    /// Writes and fsyncs what is buffered, then closes the files.
    public func close() throws(JournalError) {
        condition.lock()
        defer { condition.unlock() }
        if isClosed { return }
        if failure == nil { try drainLocked(sync: true) }
        while writerBusy { condition.wait() }
        isClosed = true
        try writer.close()
    }

    /// Retention: removes the oldest segments whose every record is at or below
    /// `acknowledged`, never the segment being written and never one holding a
    /// later record; each removal is fsynced (directory) before the next.
    /// Returns the removed segment names; `firstSequence` moves past them, and
    /// a reader asked for a retired record gets `.notFound`. Appends wait while
    /// it runs. A failure here does not poison the journal (no record is at risk).
    @discardableResult
    public func retire(through acknowledged: UInt64) throws(JournalError) -> [String] {
        condition.lock()
        defer { condition.unlock() }
        try checkUsable()
        guard acknowledged <= assignedSequence else {
            throw JournalError(.invalidArgument, "cannot retire through seq \(acknowledged): the last record appended is \(assignedSequence)", file: directory)
        }
        while writerBusy { condition.wait() }
        try checkUsable()
        writerBusy = true
        let writingBase = writer.segmentBase
        condition.unlock()
        var result: Result<(removed: [String], firstSequence: UInt64?), JournalError>
        do {
            result = .success(try SegmentRetention.retire(directory: directory, fs: fs, through: acknowledged, writingBase: writingBase, logger: logger))
        } catch {
            result = .failure(error)
        }
        condition.lock()
        writerBusy = false
        condition.broadcast()
        let outcome = try result.get()
        if let first = outcome.firstSequence { firstSequenceValue = first }
        return outcome.removed
    }

    /// What opening `directory` would find and repair, changing nothing: its
    /// segments (the last one as it would be after cutting a torn tail) and
    /// the planned cut. Fails as open would on damage.
    public static func inspect(directory: String, configuration: JournalConfiguration = JournalConfiguration(),
                               fileSystem: any JournalFileSystem = PosixFileSystem()) throws(JournalError) -> (segments: [SegmentInfo], report: RecoveryReport) {
        let scan = try JournalScan.run(directory: directory, fs: fileSystem, configuration: configuration,
                                       logger: Logger(label: "possync.journal", factory: { _ in SwiftLogNoOpLogHandler() }), repair: false)
        return (scan.checkedSegments, scan.report)
    }

    /// The base sequence number of the oldest segment file in `directory`, by
    /// its name (nothing is read or checked), or nil when there is none.
    public static func oldestSegmentBase(directory: String, fileSystem: any JournalFileSystem = PosixFileSystem()) throws(JournalError) -> UInt64? {
        try JournalScan.segmentNames(in: directory, fs: fileSystem).first?.base
    }

    /// The base sequence numbers of the segment files now in the directory, oldest first, by their
    /// names (nothing is read or checked): segment i holds base(i) ... base(i+1) − 1.
    public func segmentBases() throws(JournalError) -> [UInt64] {
        try JournalScan.segmentNames(in: directory, fs: fs).map(\.base)
    }

    /// The segments now in the directory, oldest first (checked as at open).
    public func segments() throws(JournalError) -> [SegmentInfo] {
        try JournalScan.run(directory: directory, fs: fs, configuration: configuration, logger: logger, repair: false).checkedSegments
    }

    /// A reader of the records from `sequence` up to what is written now.
    public func reader(from sequence: UInt64 = 1) throws(JournalError) -> JournalReader {
        try JournalReader(directory: directory, fileSystem: fs, dictionaries: configuration.allDictionaries,
                          key: configuration.key, from: sequence, through: readableSequence, startPositions: startPositions)
    }
}
