import Foundation
import PosJournal

// File plumbing shared by the terminal's and central's file stores: whole-file
// reads, crash-safe writes, directories, and the store lock.

/// Small files (identities, enrollments) through the journal's file-system
/// protocol, so a simulated disk covers them too. Writes are crash-safe:
/// temporary file, fsync, rename, directory fsync. Files are created with
/// mode 0600 (they hold secrets).
package struct FileStore {
    package let fs: any JournalFileSystem

    package init(fs: any JournalFileSystem) { self.fs = fs }

    package func read(_ path: String) throws(SyncError) -> [UInt8] {
        do {
            let h = try fs.openFile(path, mode: .readOnly)
            defer { try? h.close() }
            return try h.read(at: 0, count: Int(try h.size()))
        } catch {
            throw SyncError(error.code == .notFound ? .notFound : .io, "cannot read: \(error.message)", location: path)
        }
    }

    package func exists(_ path: String) -> Bool { fs.fileExists(path) }

    /// The names in `directory`, sorted; a directory that does not exist lists as empty, any other failure is an error.
    package func list(_ directory: String) throws(SyncError) -> [String] {
        do { return try fs.listDirectory(directory).sorted() } catch where error.code == .notFound {
            return []
        } catch {
            throw SyncError(.io, "cannot list the directory: \(error.message)", location: directory)
        }
    }

    /// Creates `path` and any missing parent directories.
    package func makeDirectories(_ path: String) throws(SyncError) {
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
    package func write(_ bytes: [UInt8], to path: String, at offset: UInt64) throws(SyncError) {
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
    package func removeTree(_ path: String) throws(SyncError) {
        do {
            for name in try fs.listDirectory(path) { try fs.removeFile(path + "/" + name) }
            try fs.removeDirectory(path)
        } catch {
            throw SyncError(error)
        }
    }

    package func writeAtomically(_ bytes: [UInt8], to path: String) throws(SyncError) {
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

/// A store directory's lock: `DIR/LOCK`, held exclusively by whoever has the store open.
package enum StoreDirectory {
    package static func lock(_ directory: String, fileSystem: any JournalFileSystem, waitMillis: Int64) throws(SyncError) -> any StoreLockHandle {
        try lockFile(directory + "/" + StoreLockLimits.fileName, fileSystem: fileSystem, waitMillis: waitMillis)
    }

    /// An exclusive lock on the file `path` (created when missing), as the store's own `LOCK` is taken.
    package static func lockFile(_ path: String, fileSystem: any JournalFileSystem, waitMillis: Int64) throws(SyncError) -> any StoreLockHandle {
        guard waitMillis >= 0 && waitMillis <= StoreLockLimits.waitMillisMax else {
            throw SyncError(.invalidArgument, "lock wait \(waitMillis) ms: 0...\(StoreLockLimits.waitMillisMax) ms")
        }
        do {
            return try fileSystem.lockExclusive(path, waitMillis: waitMillis)
        } catch {
            throw SyncError(error.code == .locked ? .locked : .io, error.message, location: error.file ?? path)
        }
    }
}
