import Dispatch
import Foundation
@testable import PosJournal
import PosTestSupport

/// A file system (real, or a `SimulatedFileSystem`) whose merges (`state/merge.tmp`) meet what the test says:
/// the n-th merge's file held at its creation until `release`, or its creation, its rename into place, or the
/// directory fsync after that rename failing. Merges are counted from 1 over the file system's life.
final class MergeFaultFS: JournalFileSystem, @unchecked Sendable {
    enum Fault: String, CaseIterable, Sendable { case create, rename, syncDirectory }

    let inner: any JournalFileSystem
    private let lock = NSLock()
    private var created = 0, renamed = 0
    private var holdAt: Int?
    private var faults: [Fault: Int] = [:]
    /// The thread whose next directory fsync fails (the one that renamed the merge in place).
    private var syncToFail: pthread_t?
    /// The thread that renamed a merge in place last, until its directory fsync.
    private var renamer: pthread_t?
    private var failHeld = false
    private let gate = DispatchSemaphore(value: 0)
    /// A held merge is waiting at the gate.
    let arrived = DispatchSemaphore(value: 0)
    /// A merge's run was renamed into place and the directory fsynced (by the thread that renamed it).
    let placed = DispatchSemaphore(value: 0)

    init(_ inner: any JournalFileSystem = PosixFileSystem()) { self.inner = inner }

    var mergesCreated: Int { lock.withLock { created } }
    func hold(merge n: Int) { lock.withLock { holdAt = n } }
    func fail(_ fault: Fault, merge n: Int) { lock.withLock { faults[fault] = n } }
    /// Lets the held merge go on (`failing`: its file's creation then fails, so it changes nothing).
    func release(failing: Bool = false) {
        lock.withLock { failHeld = failing }
        gate.signal()
    }

    func openFile(_ path: String, mode: FileOpenMode) throws(JournalError) -> any JournalFileHandle {
        if path.hasSuffix("/merge.tmp") && mode != .readOnly {
            let (n, wait, fail) = lock.withLock { () -> (Int, Bool, Bool) in
                created += 1
                return (created, holdAt == created, faults[.create] == created)
            }
            if wait {
                arrived.signal()
                gate.wait()
                if lock.withLock({ failHeld }) { throw JournalError(.io, "injected: the held merge \(n) fails", file: path) }
            }
            if fail { throw JournalError(.io, "injected: cannot create merge \(n)'s file", file: path) }
        }
        return try inner.openFile(path, mode: mode)
    }

    func rename(_ from: String, to: String) throws(JournalError) {
        guard from.hasSuffix("/merge.tmp") else { return try inner.rename(from, to: to) }
        let (n, failRename, failSync) = lock.withLock { () -> (Int, Bool, Bool) in
            renamed += 1
            return (renamed, faults[.rename] == renamed, faults[.syncDirectory] == renamed)
        }
        if failRename { throw JournalError(.io, "injected: cannot rename merge \(n) into place", file: from) }
        try inner.rename(from, to: to)
        lock.withLock {
            renamer = pthread_self()
            if failSync { syncToFail = pthread_self() }
        }
    }

    func syncDirectory(_ path: String) throws(JournalError) {
        let fail = lock.withLock { () -> Bool in
            guard let t = syncToFail, pthread_equal(t, pthread_self()) != 0 else { return false }
            syncToFail = nil
            return true
        }
        if fail { throw JournalError(.io, "injected: cannot fsync the directory after a merge's rename", file: path) }
        try inner.syncDirectory(path)
        let merged = lock.withLock { () -> Bool in
            guard let t = renamer, pthread_equal(t, pthread_self()) != 0 else { return false }
            renamer = nil
            return true
        }
        if merged { placed.signal() }
    }

    func listDirectory(_ path: String) throws(JournalError) -> [String] { try inner.listDirectory(path) }
    func createDirectory(_ path: String) throws(JournalError) { try inner.createDirectory(path) }
    func fileExists(_ path: String) -> Bool { inner.fileExists(path) }
    func removeFile(_ path: String) throws(JournalError) { try inner.removeFile(path) }
    func removeDirectory(_ path: String) throws(JournalError) { try inner.removeDirectory(path) }
    func lockExclusive(_ path: String, waitMillis: Int64) throws(JournalError) -> any StoreLockHandle { try inner.lockExclusive(path, waitMillis: waitMillis) }
}
