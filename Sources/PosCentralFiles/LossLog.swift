import Foundation
import PosCentral
import PosJournal
import PosWire

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
}
