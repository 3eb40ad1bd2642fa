import Foundation
import PosJournal
import PosLedger
import PosWire

/// Where a notification's delivery stands (sync-protocol.md, "Notifications", "States").
public enum NotificationState: String, Codable, Sendable {
    /// Derived from the journal, never tried.
    case queued
    /// An attempt was recorded and its outcome was not (yet): never sent again.
    case attempting
    case delivered
    /// The last attempt failed for certain; the next waits until `notBeforeMillis`.
    case retrying
    /// Given up: `reason` says why. Never sent again.
    case deadLetter = "dead-letter"

    public var isFinal: Bool { self == .delivered || self == .deadLetter }
}

public enum DeadLetterReason: String, Codable, Sendable {
    /// The attempt may have reached the gateway and nothing says what it did (or a crash came between
    /// recording the attempt and recording its outcome).
    case outcomeUnknown = "outcome-unknown"
    /// The gateway refused this notification for good.
    case permanent
    /// Definite failures up to the attempts bound.
    case retriesExhausted = "retries-exhausted"
}

/// One notification and where its delivery stands.
public struct NotificationRecord: Sendable, Equatable {
    public var notification: CustomerNotification
    /// The central journal position it was derived at.
    public var position: UInt64
    public var state: NotificationState
    /// Attempts made so far.
    public var attempts: Int
    /// When the record's last line was written (central's wall clock, Unix ms).
    public var atMillis: Int64
    public var notBeforeMillis: Int64?
    public var reason: DeadLetterReason?
    /// The last attempt's outcome in words (`HTTP 503: …`).
    public var detail: String?
}

/// One line of `outbox.jsonl` or `done.jsonl`. A line with `notification` and
/// `position` is a full record (a notification derived, or rewritten by
/// archiving); one without is a transition of a record already in the file.
struct LogLine: Codable, Equatable {
    var id: String
    var state: NotificationState
    var atMillis: Int64
    var position: UInt64?
    var notification: CustomerNotification?
    var attempt: Int?
    var notBeforeMillis: Int64?
    var reason: DeadLetterReason?
    var detail: String?

    static func full(_ r: NotificationRecord) -> LogLine {
        LogLine(id: r.notification.id, state: r.state, atMillis: r.atMillis, position: r.position, notification: r.notification,
                attempt: r.attempts, notBeforeMillis: r.notBeforeMillis, reason: r.reason, detail: r.detail)
    }

    var encoded: [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try! encoder.encode(self))
    }

    static func decode(_ bytes: ArraySlice<UInt8>) throws(SyncError) -> LogLine {
        do { return try JSONDecoder().decode(LogLine.self, from: Data(bytes)) } catch {
            throw SyncError(.malformed, "not a delivery-log line (\(Self.describe(error)))")
        }
    }

    private static func describe(_ error: any Error) -> String {
        switch error as? DecodingError {
        case .keyNotFound(let key, _)?: "field \(key.stringValue) missing"
        case .typeMismatch(_, let c)?, .valueNotFound(_, let c)?, .dataCorrupted(let c)?:
            c.codingPath.isEmpty ? "not JSON" : "field \(c.codingPath.map(\.stringValue).joined(separator: ".")): \(c.debugDescription)"
        default: "\(error)"
        }
    }
}

/// The records of one file of the log, in file order, and the rules a line must keep.
struct RecordTable {
    private(set) var records: [String: NotificationRecord] = [:]
    private(set) var order: [String] = []

    /// Applies a line. `finalFile`: `done.jsonl`, whose lines are full final records.
    mutating func apply(_ line: LogLine, finalFile: Bool = false) throws(SyncError) {
        func bad(_ why: String) -> SyncError { SyncError(.malformed, "notification \(line.id): \(why)") }
        if let n = line.notification {
            guard let position = line.position else { throw bad("a full record without position") }
            try n.validate()
            guard n.id == line.id else { throw bad("the record's id and its notification's id \(n.id) differ") }
            let attempts = line.attempt ?? 0
            switch line.state {
            case .queued where !finalFile && attempts == 0: break
            case .retrying where !finalFile && attempts >= 1 && line.notBeforeMillis != nil: break
            case .delivered where finalFile && attempts >= 1: break
            case .deadLetter where finalFile && line.reason != nil: break
            default: throw bad("a full record may not be \(line.state.rawValue) with \(attempts) attempts here")
            }
            guard records[line.id] == nil else { throw bad("recorded twice") }
            records[line.id] = NotificationRecord(notification: n, position: position, state: line.state, attempts: attempts, atMillis: line.atMillis,
                                                  notBeforeMillis: line.notBeforeMillis, reason: line.reason, detail: line.detail)
            order.append(line.id)
            return
        }
        guard !finalFile else { throw bad("a line of done.jsonl must carry the notification") }
        guard var r = records[line.id] else { throw bad("\(line.state.rawValue) before the notification was queued") }
        guard let attempt = line.attempt else { throw bad("\(line.state.rawValue) without attempt") }
        switch (r.state, line.state) {
        case (.queued, .attempting), (.retrying, .attempting):
            guard attempt == r.attempts + 1 else { throw bad("attempt \(attempt) after \(r.attempts)") }
            r.attempts = attempt
            r.notBeforeMillis = nil
        case (.attempting, .delivered), (.attempting, .deadLetter), (.attempting, .retrying):
            guard attempt == r.attempts else { throw bad("outcome of attempt \(attempt) while attempt \(r.attempts) is open") }
            if line.state == .retrying { guard line.notBeforeMillis != nil else { throw bad("retrying without notBeforeMillis") } }
            if line.state == .deadLetter { guard line.reason != nil else { throw bad("dead-letter without reason") } }
            r.notBeforeMillis = line.notBeforeMillis
            r.reason = line.reason
        default:
            throw bad("\(line.state.rawValue) may not follow \(r.state.rawValue)")
        }
        r.state = line.state
        r.atMillis = line.atMillis
        r.detail = line.detail ?? r.detail
        records[line.id] = r
    }

    mutating func removeAll(where remove: (NotificationRecord) -> Bool) {
        order.removeAll { remove(records[$0]!) }
        records = records.filter { !remove($0.value) }
    }
}

/// Where deriving stands: `notifications/state.json` (sync-protocol.md, "Notifications", "Files").
struct DerivationCursor: Codable, Equatable {
    static let formatName = "possync-notify-state-v1"

    /// A decision scanned before central held its ticket's request: derived when the request arrives.
    struct Orphan: Codable, Equatable {
        var ticket: String
        var event: String
        var position: UInt64
    }

    var format = Self.formatName
    /// Central journal positions 1 … `cursor` have been derived.
    var cursor: UInt64 = 0
    /// Central's history epoch the cursor belongs to.
    var epoch: UInt64 = 0
    /// Loss records read so far.
    var lossesSeen = 0
    var orphans: [Orphan] = []
    /// Ids derived before central's history was cut above `cursor`: never queued again.
    var guardIDs: [String] = []

    enum CodingKeys: String, CodingKey {
        case format, cursor, epoch, lossesSeen, orphans
        case guardIDs = "guard"
    }
}

/// Central's notification delivery log, under its directory (`notifications/`):
/// `state.json` (how far the journal was derived), `outbox.jsonl` (what is
/// queued, being tried, and recently finished) and `done.jsonl` (finished
/// records, archived). Every line is fsynced before anything relies on it; a
/// torn last line is ignored and written over; any other line that does not
/// read refuses the open, naming the file, line and offset.
public final class DeliveryLog {
    public static let directoryName = "notifications"
    public let directory: String
    let files: FileStore
    private(set) var cursor: DerivationCursor
    private(set) var table = RecordTable()
    private var outbox: LineFile
    private var guardSet: Set<String>

    var statePath: String { directory + "/state.json" }
    var outboxPath: String { directory + "/outbox.jsonl" }
    var donePath: String { directory + "/done.jsonl" }

    /// The log's directory in the embedded central store at `centralDirectory`.
    public static func directory(ofCentral centralDirectory: String) -> String { centralDirectory + "/" + directoryName }

    /// Reads the log in `directory` (absent: empty, created at the first write).
    public init(directory: String, fileSystem: any JournalFileSystem = PosixFileSystem()) throws(SyncError) {
        self.directory = directory
        files = FileStore(fs: fileSystem)
        let statePath = directory + "/state.json"
        if files.exists(statePath) {
            let bytes = try files.read(statePath)
            do { cursor = try JSONDecoder().decode(DerivationCursor.self, from: Data(bytes)) } catch {
                throw SyncError(.malformed, "not a notification state file (\(error)); it says how far central's journal was turned into notifications", location: statePath)
            }
            guard cursor.format == DerivationCursor.formatName else {
                throw SyncError(.malformed, "format \(PrintableText.escaped(String(cursor.format.prefix(40)), quoted: true)), expected \(DerivationCursor.formatName)", location: statePath)
            }
        } else {
            cursor = DerivationCursor()
        }
        guardSet = Set(cursor.guardIDs)
        var table = RecordTable()
        let path = directory + "/outbox.jsonl"
        let valid = try LineFile.scan(path: path, fs: fileSystem) { (line, number, offset) throws(SyncError) in
            do throws(SyncError) { try table.apply(try LogLine.decode(line)) } catch {
                throw SyncError(.malformed, "line \(number) (byte offset \(offset)): \(error.message)", location: path)
            }
        }
        self.table = table
        outbox = LineFile(path: path, fs: fileSystem, validBytes: valid)
    }

    // MARK: - What it holds

    public var records: [NotificationRecord] { table.order.map { table.records[$0]! } }
    /// Queued, retrying or attempting.
    var unfinishedCount: Int { table.records.values.reduce(0) { $0 + ($1.state.isFinal ? 0 : 1) } }
    var finishedCount: Int { table.records.count - unfinishedCount }

    /// Whether `id` was derived already (it is in the outbox, or guarded after a cut of central's history).
    func knows(_ id: String) -> Bool { table.records[id] != nil || guardSet.contains(id) }

    // MARK: - Writing

    private func ensureDirectory() throws(SyncError) {
        if !files.exists(directory) { try files.makeDirectories(directory) }
    }

    /// Appends lines to the outbox (one fsync), then applies them.
    func append(_ lines: [LogLine]) throws(SyncError) {
        guard !lines.isEmpty else { return }
        var next = table
        for l in lines { try next.apply(l) }  // a line this log would refuse to read back is never written
        try ensureDirectory()
        try outbox.appendDurably(lines.map(\.encoded))
        table = next
    }

    /// Replaces `state.json` atomically.
    func save(_ next: DerivationCursor) throws(SyncError) {
        try ensureDirectory()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        try files.writeAtomically(Array(try! encoder.encode(next)) + [0x0A], to: statePath)
        cursor = next
        guardSet = Set(next.guardIDs)
    }

    /// Moves finished records to `done.jsonl` (appended, fsynced), then rewrites the outbox with the
    /// others (atomically). A crash between the two leaves a record in both files: readers of
    /// `done.jsonl` keep the first line of an id.
    func archiveFinished() throws(SyncError) {
        let finished = records.filter(\.state.isFinal)
        guard !finished.isEmpty else { return }
        try ensureDirectory()
        let done = try LineFile(path: donePath, fs: files.fs)
        try done.appendDurably(finished.map { LogLine.full($0).encoded })
        var rest = table
        rest.removeAll(where: \.state.isFinal)
        var bytes: [UInt8] = []
        for id in rest.order { bytes += LogLine.full(rest.records[id]!).encoded + [0x0A] }
        try files.writeAtomically(bytes, to: outboxPath)
        table = rest
        outbox = LineFile(path: outboxPath, fs: files.fs, validBytes: UInt64(bytes.count))
    }

    /// Every archived record, in file order (an id written twice by an interrupted archive: its first line).
    func forEachArchived(_ body: (NotificationRecord) -> Void) throws(SyncError) {
        var seen = Set<String>()
        let path = donePath
        try LineFile.scan(path: path, fs: files.fs) { (line, number, offset) throws(SyncError) in
            var one = RecordTable()
            do throws(SyncError) { try one.apply(try LogLine.decode(line), finalFile: true) } catch {
                throw SyncError(.malformed, "line \(number) (byte offset \(offset)): \(error.message)", location: path)
            }
            let r = one.records.values.first!
            if seen.insert(r.notification.id).inserted { body(r) }
        }
    }
}

// MARK: - Listing

extension DeliveryLog {
    /// What `possync central notifications` shows: the unfinished records and the last finished
    /// ones (archived and not), with full counts.
    public struct Listing: Sendable, Equatable {
        /// Queued or retrying, in queue order.
        public var pending: [NotificationRecord] = []
        /// The last `limit` delivered, oldest first.
        public var delivered: [NotificationRecord] = []
        /// The last `limit` dead-lettered, oldest first; an attempt with no recorded outcome is
        /// shown here as `outcome-unknown` (the next pass records it so).
        public var deadLetter: [NotificationRecord] = []
        public var pendingCount = 0
        public var deliveredCount = 0
        public var deadLetterCount = 0
        /// Central journal positions 1 … this are derived.
        public var derivedThrough: UInt64 = 0
    }

    /// Reads `done.jsonl` through (memory: one id per archived record, for the duplicates an
    /// interrupted archive may leave) and the outbox.
    public func listing(limit: Int) throws(SyncError) -> Listing {
        precondition(limit >= 0)
        var l = Listing(derivedThrough: cursor.cursor)
        func keep(_ r: NotificationRecord, in list: inout [NotificationRecord]) {
            list.append(r)
            if list.count > limit { list.removeFirst() }
        }
        func add(_ r: NotificationRecord) {
            switch r.state {
            case .delivered: l.deliveredCount += 1; keep(r, in: &l.delivered)
            case .deadLetter: l.deadLetterCount += 1; keep(r, in: &l.deadLetter)
            case .attempting:
                var unknown = r
                unknown.state = .deadLetter
                unknown.reason = .outcomeUnknown
                unknown.detail = "no outcome was recorded for attempt \(r.attempts) (the process stopped while delivering): not sent again"
                l.deadLetterCount += 1
                keep(unknown, in: &l.deadLetter)
            case .queued, .retrying: l.pendingCount += 1; if l.pending.count < limit { l.pending.append(r) }
            }
        }
        let outboxIDs = Set(table.order)
        try forEachArchived { r in if !outboxIDs.contains(r.notification.id) { add(r) } }
        for r in records { add(r) }
        return l
    }
}
