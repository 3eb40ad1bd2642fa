import Foundation
import PosLedger

/// What central issues a terminal at enrollment: its identity, the central it
/// belongs to, its 256-bit secret (keys are derived from it), and the
/// merchant-wide duplicate-detection key. Stored as JSON, file mode 0600.
public struct Enrollment: Sendable, Equatable {
    public var central: CentralID
    public var terminal: ReplicaId
    public var merchant: String
    public var secret: [UInt8]
    public var merchantKey: [UInt8]

    public init(central: CentralID, terminal: ReplicaId, merchant: String, secret: [UInt8], merchantKey: [UInt8]) {
        self.central = central
        self.terminal = terminal
        self.merchant = merchant
        self.secret = secret
        self.merchantKey = merchantKey
    }

    struct File: Codable {
        var format: String
        var central: String
        var terminal: UInt32
        var merchant: String
        var secret: String
        var merchantKey: String
    }
    static let formatName = "possync-enrollment-v1"

    public func encoded() -> [UInt8] {
        let f = File(format: Self.formatName, central: central.hex, terminal: terminal.rawValue, merchant: merchant,
                     secret: hexEncode(secret), merchantKey: hexEncode(merchantKey))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return Array(try! encoder.encode(f)) + [0x0A]
    }

    public static func decode(_ bytes: [UInt8], path: String) throws(SyncError) -> Enrollment {
        let f: File
        do { f = try JSONDecoder().decode(File.self, from: Data(bytes)) } catch {
            throw SyncError(.malformed, "not an enrollment file: \(error)", location: path)
        }
        guard f.format == formatName else { throw SyncError(.versionUnsupported, "format \"\(f.format)\", expected \"\(formatName)\"", location: path) }
        guard let central = CentralID(hex: f.central) else { throw SyncError(.malformed, "field central: 32 hex digits expected", location: path) }
        guard let secret = hexDecode(f.secret), secret.count == 32 else { throw SyncError(.malformed, "field secret: 64 hex digits expected", location: path) }
        guard let mk = hexDecode(f.merchantKey), mk.count == 32 else { throw SyncError(.malformed, "field merchantKey: 64 hex digits expected", location: path) }
        guard !f.merchant.isEmpty, f.merchant.utf8.count <= 64 else { throw SyncError(.malformed, "field merchant: 1 to 64 bytes expected", location: path) }
        let terminal: ReplicaId
        do { terminal = try ReplicaId.terminal(f.terminal) } catch { throw SyncError(error, location: path + " field terminal") }
        return Enrollment(central: central, terminal: terminal, merchant: f.merchant, secret: secret, merchantKey: mk)
    }

    /// Writes the file crash-safely with mode 0600 (it holds secrets).
    public func write(to path: String, fileSystem: any JournalFileSystem = PosixFileSystem()) throws(SyncError) {
        try FileStore(fs: fileSystem).writeAtomically(encoded(), to: path)
    }

    public static func read(from path: String, fileSystem: any JournalFileSystem = PosixFileSystem()) throws(SyncError) -> Enrollment {
        try decode(FileStore(fs: fileSystem).read(path), path: path)
    }

    public var journalKey: PosJournal.JournalKey { KeyDerivation.terminalJournalKey(secret: secret, terminal: terminal) }
    public var ledgerMerchantKey: MerchantKey { MerchantKey(bytes: merchantKey) }
}

import PosJournal

/// Small files (identities, enrollments) through the journal's file-system
/// protocol, so a simulated disk covers them too. Writes are crash-safe:
/// temporary file, fsync, rename, directory fsync. Files are created with
/// mode 0600 (they hold secrets).
struct FileStore {
    let fs: any JournalFileSystem

    func read(_ path: String) throws(SyncError) -> [UInt8] {
        do {
            let h = try fs.openFile(path, mode: .readOnly)
            defer { try? h.close() }
            return try h.read(at: 0, count: Int(try h.size()))
        } catch {
            throw SyncError(error.code == .notFound ? .notFound : .io, "cannot read: \(error.message)", location: path)
        }
    }

    func exists(_ path: String) -> Bool { fs.fileExists(path) }

    func list(_ directory: String) -> [String] { (try? fs.listDirectory(directory))?.sorted() ?? [] }

    /// Creates `path` and any missing parent directories.
    func makeDirectories(_ path: String) throws(SyncError) {
        var built = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            built += "/" + part
            if !fs.fileExists(built) {
                // The new entry is durable only once its parent directory is fsynced.
                let parent = (built as NSString).deletingLastPathComponent
                do {
                    try fs.createDirectory(built)
                    try fs.syncDirectory(parent.isEmpty ? "/" : parent)
                } catch {
                    throw SyncError(.io, "cannot create directory: \(error.message)", location: built)
                }
            }
        }
    }

    /// Writes `bytes` at `offset` of `path` (created if missing, the directory
    /// then fsynced), cuts the file there, and fsyncs it: an append to a log of
    /// whole lines that also drops a torn line left by a crash.
    func write(_ bytes: [UInt8], to path: String, at offset: UInt64) throws(SyncError) {
        do {
            let created = !fs.fileExists(path)
            let h = try fs.openFile(path, mode: created ? .createExclusive : .readWrite)
            defer { try? h.close() }
            try h.truncate(to: offset)
            try h.write(bytes, at: offset)
            try h.sync()
            if created {
                let dir = (path as NSString).deletingLastPathComponent
                try fs.syncDirectory(dir.isEmpty ? "." : dir)
            }
        } catch {
            throw SyncError(error)
        }
    }

    /// Removes a directory of plain files (a journal copy) and the directory itself.
    func removeTree(_ path: String) throws(SyncError) {
        do {
            for name in try fs.listDirectory(path) { try fs.removeFile(path + "/" + name) }
            try fs.removeDirectory(path)
        } catch {
            throw SyncError(error)
        }
    }

    func writeAtomically(_ bytes: [UInt8], to path: String) throws(SyncError) {
        let temporary = path + ".tmp"
        do {
            if fs.fileExists(temporary) { try fs.removeFile(temporary) }
            let h = try fs.openFile(temporary, mode: .createExclusive)
            try h.write(bytes, at: 0)
            try h.sync()
            try h.close()
            try fs.rename(temporary, to: path)
            let dir = (path as NSString).deletingLastPathComponent
            try fs.syncDirectory(dir.isEmpty ? "." : dir)
        } catch {
            throw SyncError(error)
        }
    }
}
