import Foundation
import PosBytes
import PosJournal
import PosLedger
import PosReconcile
import PosWire

/// The depot's inbox of courier bundles (docs/nightly.md, "The inbox"): the
/// files waiting in it, and where each goes once central has made its import
/// durable: `processed/DATE/NAME`, or `rejected/DATE/NAME` with
/// `NAME.reason` beside it. What the directories hold is the record of the
/// night: a rerun after a crash finds each bundle where the last run left it.
/// `processed/sha256.index` lists every imported bundle's SHA-256 (the one it carries), written
/// before its move, so the same bytes brought again (any night) are a duplicate.
struct NightlyInbox {
    /// Bundles taken from one inbox in one run, at most.
    static let bundlesPerNightMax = 100_000
    static let indexName = "sha256.index"
    static let reasonSuffix = ".reason"

    let directory: String
    let date: String
    let files = FileStore(fs: PosixFileSystem())
    var processed: String { directory + "/processed/" + date }
    var rejected: String { directory + "/rejected/" + date }
    var indexPath: String { directory + "/processed/" + Self.indexName }

    func prepare() throws(AppError) {
        for d in [processed, rejected] {
            do { try files.makeDirectories(d) } catch { throw AppError(.store, "inbox: \(error.description)") }
        }
    }

    /// The bundles waiting: the inbox's regular files, by name (dot files and `*.tmp` left alone).
    func waiting() throws(AppError) -> [String] {
        let names: [String]
        do { names = try files.list(directory) } catch { throw AppError(.store, "inbox: \(error.description)") }
        var out: [String] = []
        for name in names where !name.hasPrefix(".") && !name.hasSuffix(".tmp") {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory + "/" + name, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            out.append(name)
            if out.count == Self.bundlesPerNightMax { break }
        }
        return out
    }

    /// The SHA-256 a bundle carries in its last 32 bytes (that of everything before
    /// them: checked by `BundleReader` for a bundle that opens), hex; nil when the file is shorter.
    static func carriedChecksum(_ path: String) throws(AppError) -> String? {
        guard let h = FileHandle(forReadingAtPath: path) else { throw AppError(.store, "\(path): cannot read") }
        defer { try? h.close() }
        do {
            let size = try h.seekToEnd()
            guard size >= UInt64(BundleHeader.bytes + BundleHeader.checksumBytes) else { return nil }
            try h.seek(toOffset: size - UInt64(BundleHeader.checksumBytes))
            return Hex.encode(Array(try h.read(upToCount: BundleHeader.checksumBytes) ?? Data()))
        } catch {
            throw AppError(.store, "\(path): cannot read: \(error)")
        }
    }

    // MARK: The index of imported bundles

    /// SHA-256 to "DATE/NAME" of every bundle imported; a torn last line (a crash) is ignored.
    func index() throws(AppError) -> (entries: [String: String], bytes: UInt64) {
        guard files.exists(indexPath) else { return ([:], 0) }
        let bytes: [UInt8]
        do { bytes = try files.read(indexPath) } catch { throw AppError(.store, "inbox: \(error.description)") }
        var entries: [String: String] = [:]
        var whole: UInt64 = 0
        var start = 0
        for (i, b) in bytes.enumerated() where b == UInt8(ascii: "\n") {
            let line = String(decoding: bytes[start..<i], as: UTF8.self).split(separator: " ", maxSplits: 1)
            if line.count == 2, entries[String(line[0])] == nil { entries[String(line[0])] = String(line[1]) }
            start = i + 1
            whole = UInt64(start)
        }
        return (entries, whole)
    }

    /// Appends "SHA DATE/NAME" durably (cutting a torn line a crash left); returns the bytes written.
    func record(_ sha: String, as target: String, at offset: UInt64) throws(AppError) -> UInt64 {
        let line = Array("\(sha) \(date)/\(target)\n".utf8)
        do { try files.write(line, to: indexPath, at: offset) } catch {
            throw AppError(.store, "inbox: cannot record the import: \(error.description)")
        }
        return UInt64(line.count)
    }

    // MARK: Moves

    /// The name `name` takes in `directory`: itself, or NAME.2, NAME.3... when taken. A reason file
    /// without its bundle does not take a name: a run that stopped between the two left it, and the
    /// rerun writes it again.
    func target(_ name: String, in directory: String) -> String {
        var candidate = name, n = 1
        while files.exists(directory + "/" + candidate) {
            n += 1
            candidate = "\(name).\(n)"
        }
        return candidate
    }

    /// Moves an inbox file to `directory/target`, durably (the file's new and old directories fsynced).
    func move(_ name: String, to directory: String, as target: String) throws(AppError) {
        let fs = files.fs
        do {
            try fs.rename(self.directory + "/" + name, to: directory + "/" + target)
            try fs.syncDirectory(directory)
            try fs.syncDirectory(self.directory)
        } catch {
            throw AppError(.store, "inbox: cannot move \(name) to \(directory): \(error)")
        }
    }

    /// Rejects a bundle: its reason file first, then the move.
    func reject(_ name: String, kind: String, detail: String, afterReason: () -> Void = {}) throws(AppError) -> String {
        let t = target(name, in: rejected)
        do { try files.writeAtomically(Array("\(kind): \(PrintableText.escaped(detail, quoted: false))\n".utf8), to: rejected + "/" + t + Self.reasonSuffix) } catch {
            throw AppError(.store, "inbox: cannot write the reason file: \(error.description)")
        }
        afterReason()
        try move(name, to: rejected, as: t)
        return t
    }
}
