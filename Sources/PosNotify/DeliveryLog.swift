import Foundation
import PosJournal
import PosLedger
import PosWire

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

    var statePath: String { directory + "/" + DerivationCursor.fileName }
    var outboxPath: String { directory + "/outbox.jsonl" }
    var donePath: String { directory + "/done.jsonl" }

    /// The log's directory in the embedded central store at `centralDirectory`.
    public static func directory(ofCentral centralDirectory: String) -> String { centralDirectory + "/" + directoryName }

    /// Reads the log in `directory` (absent: empty, created at the first write).
    public init(directory: String, fileSystem: any JournalFileSystem = PosixFileSystem()) throws(SyncError) {
        self.directory = directory
        files = FileStore(fs: fileSystem)
        let statePath = directory + "/" + DerivationCursor.fileName
        if let c = try DerivationCursor.read(statePath, files: files) {
            cursor = c
        } else {
            // Written before anything else (ensureDirectory): without it every event would be derived again.
            for name in ["outbox.jsonl", "done.jsonl"] where files.exists(directory + "/" + name) {
                throw SyncError(.malformed, "missing while \(name) holds notifications: deriving again from position 1 could send them twice;"
                                + " restore it (sync-protocol.md, \"Notifications\", \"Damage\")", location: statePath)
            }
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

    /// Creates the directory with its `state.json` first, so an outbox never exists without a cursor.
    private func ensureDirectory() throws(SyncError) {
        if !files.exists(directory) { try files.makeDirectories(directory) }
        if !files.exists(statePath) { try files.writeAtomically(cursor.encoded, to: statePath) }
    }

    /// Appends lines to the outbox (one fsync), then applies them.
    func append(_ lines: [LogLine]) throws(SyncError) {
        guard !lines.isEmpty else { return }
        var next = table
        for l in lines { try next.apply(l) }  // a line this log would refuse to read back is never written
        try ensureDirectory()
        try outbox.append(lines.map(\.encoded))
        table = next
    }

    /// Replaces `state.json` atomically.
    func save(_ next: DerivationCursor) throws(SyncError) {
        try ensureDirectory()
        try files.writeAtomically(next.encoded, to: statePath)
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
        try done.append(finished.map { LogLine.full($0).encoded })
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

