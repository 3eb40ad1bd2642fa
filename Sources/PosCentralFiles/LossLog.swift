import Foundation
import PosCentral
import PosJournal
import PosLedger
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
        let (lines, whole) = Self.lines(try files.read(path))
        var offset = 0
        for (n, line) in lines.enumerated() {
            do throws(SyncError) { records.append(try Self.decode(line)) } catch {
                throw SyncError(.journal, "line \(n + 1) (byte offset \(offset)) is not a loss record (\(error.message)); run `possync central recover`", location: path)
            }
            offset += line.count + 1
        }
        validBytes = UInt64(whole)
    }

    /// The whole lines of the file (a last line without its newline is a torn append, left out) and their length in bytes.
    private static func lines(_ bytes: [UInt8]) -> (lines: [ArraySlice<UInt8>], bytes: Int) {
        var lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() } else if !lines.isEmpty { lines.removeLast() }  // torn append
        return (lines, lines.reduce(0) { $0 + $1.count + 1 })
    }

    /// The fields a loss record may have: a line naming another (a damaged key) is refused, not read without it.
    private static let fieldNames: Set<String> = ["id", "kind", "recordedMillis", "terminal", "from", "through", "positionsFrom",
                                                  "file", "offset", "bytes", "refersTo", "centralSequenceFloor", "note"]

    private static func decode(_ line: ArraySlice<UInt8>) throws(SyncError) -> LossRecord {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
            throw SyncError(.malformed, "not a JSON object")
        }
        if let unknown = object.keys.first(where: { !fieldNames.contains($0) }) {
            throw SyncError(.malformed, "unknown field \(PrintableText.escaped(unknown))")
        }
        do { return try JSONDecoder().decode(LossRecord.self, from: Data(line)) } catch {
            throw SyncError(.malformed, "\(error)")
        }
    }

    /// For `central recover`: a log with damaged lines is kept as `losses.jsonl.damaged` and
    /// rewritten with the lines that still read (atomically); returns the damaged line numbers.
    static func salvage(directory: String, files: FileStore) throws(SyncError) -> [Int] {
        let path = directory + "/" + fileName
        guard files.exists(path) else { return [] }
        let bytes = try files.read(path)
        let (lines, _) = Self.lines(bytes)
        var kept: [UInt8] = []
        var damaged: [Int] = []
        for (n, line) in lines.enumerated() {
            if (try? decode(line)) != nil { kept += line + [0x0A] } else { damaged.append(n + 1) }
        }
        guard !damaged.isEmpty else { return [] }
        try files.writeAtomically(bytes, to: path + ".damaged")
        try files.writeAtomically(kept, to: path)
        return damaged
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
