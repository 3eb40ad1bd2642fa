import Foundation
import PosJournal
import PosLedger

/// One entry of central's loss log (`losses.jsonl`): evidence that data central
/// acknowledged, or may have acknowledged, went missing, and what became of it.
/// Nothing is ever cut or skipped at central without one (sync-protocol.md,
/// "Losses and recovery").
public struct LossRecord: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        /// Open cut a damaged or torn tail off central's journal: positions from `positionsFrom` on are gone.
        case journalCut = "journal-cut"
        /// A terminal's hello showed an acknowledgement (`through`) above what central holds (`from` - 1).
        case terminalBehind = "terminal-behind"
        /// The terminal re-pushed what a `terminal-behind` record (`refersTo`) missed.
        case repaired
        /// The terminal could no longer supply `from`...`through` (retired): lost for good, skipped.
        case unrecoverable
        /// A terminal holds central's own events `from`...`through` that central no longer has.
        case centralBehind = "central-behind"
        /// `possync central recover` rebuilt or cut the journal (what it kept and dropped is in `note`).
        case recovered
        /// A terminal pushed `sequence-void` events for `from`...`through`: lost at the terminal before central held them.
        case voided
    }

    /// 1, 2, ... in file order.
    public var id: Int
    public var kind: Kind
    /// Central's wall clock when it was recorded, in Unix milliseconds.
    public var recordedMillis: Int64
    public var terminal: UInt32?
    /// Sequence numbers (of `terminal`, or of central's own events for `central-behind`).
    public var from: UInt64?
    public var through: UInt64?
    /// Central journal positions concerned (`journal-cut`, `recovered`).
    public var positionsFrom: UInt64?
    public var file: String?
    public var offset: UInt64?
    public var bytes: UInt64?
    /// The record a `repaired` or `unrecoverable` one resolves.
    public var refersTo: Int?
    /// Central's own events are numbered above this from now on (none of the lost ones is reused).
    public var centralSequenceFloor: UInt64?
    /// What happened, in one line.
    public var note: String

    public init(id: Int = 0, kind: Kind, recordedMillis: Int64, terminal: UInt32? = nil, from: UInt64? = nil, through: UInt64? = nil,
                positionsFrom: UInt64? = nil, file: String? = nil, offset: UInt64? = nil, bytes: UInt64? = nil,
                refersTo: Int? = nil, centralSequenceFloor: UInt64? = nil, note: String) {
        self.id = id
        self.kind = kind
        self.recordedMillis = recordedMillis
        self.terminal = terminal
        self.from = from
        self.through = through
        self.positionsFrom = positionsFrom
        self.file = file
        self.offset = offset
        self.bytes = bytes
        self.refersTo = refersTo
        self.centralSequenceFloor = centralSequenceFloor
        self.note = note
    }

    /// Whether a terminal's re-push can still repair it.
    public var awaitsRepush: Bool { kind == .terminalBehind }
}

/// Central's loss log: `losses.jsonl`, one JSON object per line, appended and
/// fsynced before anything relies on it. A last line without its newline is a
/// torn append (never relied upon) and is ignored; any other line that does not
/// decode fails the open, naming the line.
final class LossLog {
    let path: String
    private let files: FileStore
    private(set) var records: [LossRecord] = []
    /// Bytes of whole lines: where the next record goes (over a torn append, if any).
    private var validBytes: UInt64 = 0

    static let fileName = "losses.jsonl"

    init(directory: String, files: FileStore) throws(SyncError) {
        path = directory + "/" + Self.fileName
        self.files = files
        guard files.exists(path) else { return }
        let bytes = try files.read(path)
        var lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() } else if !lines.isEmpty { lines.removeLast() }  // torn append
        var offset = 0
        for (n, line) in lines.enumerated() {
            do {
                records.append(try JSONDecoder().decode(LossRecord.self, from: Data(line)))
            } catch {
                throw SyncError(.journal, "line \(n + 1) (byte offset \(offset)) is not a loss record: \(error)", location: path)
            }
            offset += line.count + 1
        }
        validBytes = UInt64(offset)
    }

    /// Appends a record (its id assigned here) durably; returns it.
    @discardableResult
    func append(_ record: LossRecord) throws(SyncError) -> LossRecord {
        var r = record
        r.id = (records.last?.id ?? 0) + 1
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let line = Array(try! encoder.encode(r)) + [0x0A]
        try files.write(line, to: path, at: validBytes)
        validBytes += UInt64(line.count)
        records.append(r)
        return r
    }

    /// The records that changed central's journal positions, in order: the i-th begins epoch i.
    private var historyChanges: [LossRecord] { records.filter { $0.kind == .journalCut || $0.kind == .recovered } }

    /// Central's history epoch: how many times its journal was cut or rebuilt.
    var epoch: UInt64 { UInt64(historyChanges.count) }

    /// The last journal position a pull cursor set in epoch `e` may still trust:
    /// positions from the earliest cut since then were removed (and may have been
    /// reused). Nil when nothing changed since `e`.
    func cursorLimit(sinceEpoch e: UInt64) -> UInt64? {
        let later = historyChanges.dropFirst(Int(min(e, UInt64(Int.max))))
        return later.map { ($0.positionsFrom ?? 1) - 1 }.min()
    }

    /// Central's own sequence numbers at or below this may have been used by lost events.
    var centralSequenceFloor: UInt64 { records.compactMap(\.centralSequenceFloor).max() ?? 0 }

    /// `terminal-behind` records of `terminal` not yet resolved.
    func unresolved(_ terminal: ReplicaId) -> [LossRecord] {
        let resolved = Set(records.compactMap(\.refersTo))
        return records.filter { $0.kind == .terminalBehind && $0.terminal == terminal.rawValue && !resolved.contains($0.id) }
    }

    /// Ranges of `terminal`'s sequence numbers recorded as lost for good (skipped in its sequence).
    func skipped(_ terminal: ReplicaId) -> [ClosedRange<UInt64>] {
        records.filter { $0.kind == .unrecoverable && $0.terminal == terminal.rawValue }.compactMap { r in
            guard let a = r.from, let b = r.through, a <= b else { return nil }
            return a...b
        }
    }

    /// A journal cut already recorded for this exact cut (a crash between the record and the cut repeats the open).
    func hasCut(file: String, offset: UInt64) -> Bool {
        records.contains { $0.kind == .journalCut && $0.file == file && $0.offset == offset }
    }
}

/// `sequence-reservation.json`: central's own sequence numbers up to
/// `reservedThrough` may be in use. Renewed (atomically, fsynced) before central
/// writes an own event above it, `centralSequenceReservation` numbers at a time;
/// after a journal cut central numbers its events above it, so no lost event's
/// dot is ever reused.
struct SequenceReservation {
    static let fileName = "sequence-reservation.json"
    static let formatName = "possync-sequence-reservation-v1"

    static func read(directory: String, files: FileStore) throws(SyncError) -> UInt64 {
        let path = directory + "/" + fileName
        guard files.exists(path) else { return 0 }
        let bytes = try files.read(path)
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
              object["format"] as? String == formatName,
              let n = object["reservedThrough"] as? NSNumber, n.int64Value >= 0 else {
            throw SyncError(.malformed, "not a sequence reservation (\(formatName) with reservedThrough expected)", location: path)
        }
        return UInt64(n.int64Value)
    }

    static func write(_ reservedThrough: UInt64, directory: String, files: FileStore) throws(SyncError) {
        let text = "{\"format\":\"\(formatName)\",\"reservedThrough\":\(reservedThrough)}\n"
        try files.writeAtomically(Array(text.utf8), to: directory + "/" + fileName)
    }
}
