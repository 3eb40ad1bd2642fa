import Foundation
import PosBytes
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

    /// A merchant id: 1 to 64 of A-Z a-z 0-9 - _ (it names files and keys).
    public static func isValidMerchant(_ merchant: String) -> Bool {
        !merchant.isEmpty && merchant.utf8.count <= 64
            && merchant.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
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
                     secret: Hex.encode(secret), merchantKey: Hex.encode(merchantKey))
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
        guard let secret = Hex.decode(f.secret), secret.count == 32 else { throw SyncError(.malformed, "field secret: 64 hex digits expected", location: path) }
        guard let mk = Hex.decode(f.merchantKey), mk.count == 32 else { throw SyncError(.malformed, "field merchantKey: 64 hex digits expected", location: path) }
        guard isValidMerchant(f.merchant) else { throw SyncError(.malformed, "field merchant: 1 to 64 of A-Z a-z 0-9 - _ expected", location: path) }
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
    /// Decodes records of this terminal's merchant: a version-2 capture derives its duplicate key with the merchant key.
    public var recordContext: RecordDecodeContext { RecordDecodeContext(merchantKey: ledgerMerchantKey) }
}

import PosJournal

/// The merchant key of every enrolled terminal, by replica id: what central decodes its records
/// with (a version-2 capture derives its duplicate key from its code with its writer's merchant
/// key). Filled as enrollments are loaded and saved; shared by a storage and its parts.
public final class MerchantKeyBook: @unchecked Sendable {
    private let lock = NSLock()
    private var keys: [ReplicaId: MerchantKey] = [:]
    /// Called (outside the book's lock; the caller holds its store's lock, as for every other read
    /// of the store) when a writer is not in the book, before it is looked up once more: a store
    /// shared by several processes reads the enrollments others made.
    private let reload: (() throws(SyncError) -> Void)?
    /// Where a writer's key is read from (its enrollment file, a table), named when it is missing.
    private let source: (@Sendable (ReplicaId) -> String)?
    /// The last reload's failure (nil after one that read): named with the source when a key is missing.
    private var reloadFailure: SyncError?

    public init(reload: (() throws(SyncError) -> Void)? = nil, source: (@Sendable (ReplicaId) -> String)? = nil) {
        self.reload = reload
        self.source = source
    }

    /// Where `writer`'s key is read from, when the book was told, and why the last reload failed.
    public func source(of writer: ReplicaId) -> String? {
        let failure = lock.withLock { reloadFailure }
        guard let failure else { return source?(writer) }
        return "\(source?(writer) ?? "the enrollments"); reading them failed: \(failure)"
    }

    public func note(_ enrollment: Enrollment) {
        lock.withLock { keys[enrollment.terminal] = enrollment.ledgerMerchantKey }
    }

    public func key(of writer: ReplicaId) -> MerchantKey? {
        if let key = lock.withLock({ keys[writer] }) { return key }
        guard let reload else { return nil }
        do { try reload(); lock.withLock { reloadFailure = nil } } catch { lock.withLock { reloadFailure = error } }
        return lock.withLock { keys[writer] }
    }

    /// Decodes records of any enrolled terminal (a writer not enrolled: `merchantKeyMissing`).
    public var context: RecordDecodeContext {
        RecordDecodeContext(merchantKeyOf: { [self] in key(of: $0) }, source: { [self] in source(of: $0) })
    }
}
