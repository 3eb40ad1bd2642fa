import Foundation
import Logging
import PosCentral
import PosJournal
import PosLedger
import PosWire

/// The embedded central store: central's protocol handler over the file
/// storage in one directory (`FileCentralStorage`). Create, open and recover
/// return the handler, which holds the directory's lock until `close()`.
public enum FileCentralStore {
    /// Creates a new central store in an empty or missing directory.
    /// `lockWaitMillis` is how long to wait for another process's lock on the
    /// directory (see `open`).
    public static func create(directory: String, fileSystem: any JournalFileSystem = PosixFileSystem(),
                              environment: CentralEnvironment = CentralEnvironment(),
                              snapshotEvents: Int = SyncLimits.centralSnapshotEventsDefault,
                              lockWaitMillis: Int64 = StoreLockLimits.waitMillisDefault,
                              logger: Logger? = nil) throws(SyncError) -> CentralHandler {
        let storage = try createStorage(directory: directory, fileSystem: fileSystem, environment: environment,
                                        snapshotEvents: snapshotEvents, lockWaitMillis: lockWaitMillis, logger: logger)
        return try handler(over: storage, environment: environment, fileSystem: fileSystem, logger: logger)
    }

    /// The storage alone (no handler), in a new store: what the storage contract suite checks.
    public static func createStorage(directory: String, fileSystem: any JournalFileSystem = PosixFileSystem(),
                                     environment: CentralEnvironment = CentralEnvironment(),
                                     snapshotEvents: Int = SyncLimits.centralSnapshotEventsDefault,
                                     lockWaitMillis: Int64 = StoreLockLimits.waitMillisDefault,
                                     logger: Logger? = nil) throws(SyncError) -> FileCentralStorage {
        let files = FileStore(fs: fileSystem)
        try files.makeDirectories(directory)
        let storeLock = try StoreDirectory.lock(directory, fileSystem: fileSystem, waitMillis: lockWaitMillis)
        if files.exists(directory + "/central.json") {
            throw SyncError(.invalidArgument, "a central store already exists here", location: directory)
        }
        if files.exists(directory + "/enrollment.json") {
            throw SyncError(.invalidArgument, "a terminal store is here (enrollment.json): a central store needs its own directory", location: directory)
        }
        try files.makeDirectories(directory + "/terminals")
        try files.makeDirectories(directory + "/merchants")
        try files.makeDirectories(directory + "/state")
        let identity = CentralIdentity(central: CentralID(bytes: Array(environment.secret().prefix(16)))!, secret: environment.secret())
        try files.writeAtomically(identity.encoded(), to: directory + "/central.json")
        return try storage(directory: directory, identity: identity, files: files, storeLock: storeLock, environment: environment,
                           snapshotEvents: snapshotEvents, recovering: false, logger: logger)
    }

    /// Opens an existing store: its newest good snapshot, then the journal after it.
    /// `snapshotEvents` (> 0) is how many events are folded between snapshots.
    /// The store's directory lock (`LOCK`) is held until `close()`: a second
    /// process waits up to `lockWaitMillis` for it, then fails with `locked`.
    public static func open(directory: String, fileSystem: any JournalFileSystem = PosixFileSystem(),
                            environment: CentralEnvironment = CentralEnvironment(),
                            snapshotEvents: Int = SyncLimits.centralSnapshotEventsDefault,
                            lockWaitMillis: Int64 = StoreLockLimits.waitMillisDefault,
                            logger: Logger? = nil) throws(SyncError) -> CentralHandler {
        let storage = try openStorage(directory: directory, fileSystem: fileSystem, environment: environment,
                                      snapshotEvents: snapshotEvents, lockWaitMillis: lockWaitMillis, logger: logger)
        return try handler(over: storage, environment: environment, fileSystem: fileSystem, logger: logger)
    }

    /// The storage alone (no handler), of an existing store.
    public static func openStorage(directory: String, fileSystem: any JournalFileSystem = PosixFileSystem(),
                                   environment: CentralEnvironment = CentralEnvironment(),
                                   snapshotEvents: Int = SyncLimits.centralSnapshotEventsDefault,
                                   lockWaitMillis: Int64 = StoreLockLimits.waitMillisDefault,
                                   logger: Logger? = nil) throws(SyncError) -> FileCentralStorage {
        guard snapshotEvents > 0 else { throw SyncError(.invalidArgument, "snapshotEvents must be positive, not \(snapshotEvents)") }
        let files = FileStore(fs: fileSystem)
        guard files.exists(directory + "/central.json") else {
            throw SyncError(.notFound, "no central store here (central.json missing)", location: directory)
        }
        let storeLock = try StoreDirectory.lock(directory, fileSystem: fileSystem, waitMillis: lockWaitMillis)
        let identity: CentralIdentity
        do { identity = try CentralIdentity.decode(files.read(directory + "/central.json"), path: directory + "/central.json") } catch {
            storeLock.release()
            throw error
        }
        return try storage(directory: directory, identity: identity, files: files, storeLock: storeLock, environment: environment,
                           snapshotEvents: snapshotEvents, recovering: false, logger: logger)
    }

    // MARK: - Revocation, the one write without the lock

    /// Revokes `terminal`'s enrollment in the store in `directory` without opening it or taking its
    /// lock, so that it works beside a running `central serve` (which asks at every request):
    /// writes `terminals/T.revoked` by atomic rename. Returns the merchant, the note kept (the earlier
    /// one when the terminal was already revoked: a revocation is for good) and whether it was.
    public static func revoke(directory: String, terminal: ReplicaId, note: String,
                              fileSystem: any JournalFileSystem = PosixFileSystem()) throws(SyncError) -> (merchant: String, note: String, alreadyRevoked: Bool) {
        let files = FileStore(fs: fileSystem)
        guard files.exists(directory + "/central.json") else {
            throw SyncError(.notFound, "no central store here (central.json missing)", location: directory)
        }
        let enrollmentPath = "\(directory)/terminals/\(terminal.rawValue).json"
        guard files.exists(enrollmentPath) else {
            throw SyncError(.notEnrolled, "terminal \(terminal.rawValue) was never enrolled at this central", location: enrollmentPath)
        }
        let enrollment = try Enrollment.read(from: enrollmentPath, fileSystem: fileSystem)
        let written = try writeRevocation(directory: directory, terminal: terminal, note: note, fileSystem: fileSystem)
        return (enrollment.merchant, written.note, !written.new)
    }

    /// Writes `terminals/T.revoked` unless it exists, under `terminals/revoke.lock` (two revokes at once
    /// take turns; the first one's note stays). Returns the note the file holds and whether this call wrote it.
    static func writeRevocation(directory: String, terminal: ReplicaId, note: String,
                                fileSystem: any JournalFileSystem) throws(SyncError) -> (note: String, new: Bool) {
        let files = FileStore(fs: fileSystem)
        let lock = try StoreDirectory.lockFile(directory + "/terminals/" + revocationLockName, fileSystem: fileSystem,
                                               waitMillis: StoreLockLimits.waitMillisDefault)
        defer { lock.release() }
        if let held = revocationNote(directory: directory, terminal: terminal, files: files) { return (held, false) }
        try files.writeAtomically(Array((note + "\n").utf8), to: revocationPath(directory: directory, terminal: terminal))
        return (note, true)
    }

    /// The lock `central revoke` takes (not the store's: a running server holds that one).
    static let revocationLockName = "revoke.lock"

    static func revocationPath(directory: String, terminal: ReplicaId) -> String {
        "\(directory)/terminals/\(terminal.rawValue).revoked"
    }

    /// The note of `terminals/T.revoked` (nil: no such file). Unreadable or not, the file's presence revokes.
    static func revocationNote(directory: String, terminal: ReplicaId, files: FileStore) -> String? {
        let path = revocationPath(directory: directory, terminal: terminal)
        guard files.exists(path) else { return nil }
        let note = String(decoding: (try? files.read(path)) ?? [], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return note.isEmpty ? "revoked (note unreadable: \(path))" : note
    }

    static func storage(directory: String, identity: CentralIdentity, files: FileStore, storeLock: any StoreLockHandle,
                        environment: CentralEnvironment, snapshotEvents: Int, recovering: Bool, logger: Logger?) throws(SyncError) -> FileCentralStorage {
        do {
            return try FileCentralStorage(directory: directory, identity: identity, files: files, storeLock: storeLock, environment: environment,
                                          snapshotEvents: snapshotEvents, recovering: recovering,
                                          logger: logger ?? Logger(label: "possync.central", factory: { _ in SwiftLogNoOpLogHandler() }))
        } catch {
            storeLock.release()
            throw error
        }
    }

    static func handler(over storage: FileCentralStorage, environment: CentralEnvironment, fileSystem: any JournalFileSystem,
                        logger: Logger?) throws(SyncError) -> CentralHandler {
        do {
            return try CentralHandler(storage: storage, environment: environment, bundleFileSystem: fileSystem,
                                      logger: logger ?? Logger(label: "possync.central", factory: { _ in SwiftLogNoOpLogHandler() }))
        } catch {
            try? storage.close()  // releases the lock
            throw error
        }
    }

    static func open(directory: String, identity: CentralIdentity, files: FileStore, storeLock: any StoreLockHandle,
                     environment: CentralEnvironment, snapshotEvents: Int, recovering: Bool, logger: Logger?) throws(SyncError) -> CentralHandler {
        let s = try storage(directory: directory, identity: identity, files: files, storeLock: storeLock, environment: environment,
                            snapshotEvents: snapshotEvents, recovering: recovering, logger: logger)
        return try handler(over: s, environment: environment, fileSystem: files.fs, logger: logger)
    }
}

extension CentralHandler {
    /// The file storage's snapshot statistics (zero for another storage).
    public var snapshotStatistics: FileCentralStorage.SnapshotStatistics {
        let stats = try? withStorage { storage in (storage as? FileCentralStorage)?.snapshotStatistics }
        return (stats ?? nil) ?? FileCentralStorage.SnapshotStatistics(written: 0, compactions: 0, runs: 0, eventsSinceSnapshot: 0)
    }
}
