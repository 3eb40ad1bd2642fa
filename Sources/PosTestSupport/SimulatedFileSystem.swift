import Foundation
import PosJournal
import PosLedger

/// A deterministic, in-memory implementation of the journal's I/O protocol
/// that models what a power loss does to storage, and injects faults.
///
/// Model (after SQLite's crash-test VFS):
/// - Each file has *durable* contents and the list of operations (writes,
///   truncations) done since its last `sync()`. Reads see every completed
///   operation, as the page cache does.
/// - Each directory has the list of entry operations (create, remove, rename)
///   done since its last `syncDirectory`.
/// - `crash()` is a power loss and reboot: each unsynced write survives whole,
///   is torn at a random byte, or is dropped; the survivors may land in a
///   shuffled order; a write that grew the file may leave the new size with
///   zeros instead of its data (the size reached the disk before the data).
///   Of each directory's unsynced entry operations a random prefix survives
///   (metadata journals commit in order), the rest are undone. Files no
///   longer reachable are gone. Every open handle becomes invalid.
/// - Faults: the Nth operation of chosen kinds fails with an I/O error; the
///   disk fills after a number of bytes (`.diskFull`); power can be cut after
///   N operations, freezing the state a later `crash()` starts from.
///
/// Every random choice comes from one seeded generator; a run is reproducible
/// when the caller's use of the file system is (one thread, or a fixed
/// interleaving). Thread-safe: one lock guards everything.
public final class SimulatedFileSystem: JournalFileSystem, @unchecked Sendable {
    /// The operations that can be counted, failed or cut by a power loss.
    public enum Operation: String, Sendable, CaseIterable {
        case write, sync, truncate, create, rename, remove, syncDirectory, createDirectory
    }

    /// What a crash does with operations not yet made durable. Percentages are 0...100.
    public struct CrashPolicy: Sendable {
        /// Chance that an unsynced write survives whole.
        public var keepWritePercent: Int
        /// Chance that an unsynced write is torn at a random byte (the rest: dropped).
        public var tearWritePercent: Int
        /// Chance that a file's surviving writes are applied in a shuffled order.
        public var reorderPercent: Int
        /// Chance that a torn or dropped write that grew the file leaves the new size filled with zeros.
        public var zeroFillPercent: Int
        public init(keepWritePercent: Int = 40, tearWritePercent: Int = 30, reorderPercent: Int = 30, zeroFillPercent: Int = 50) {
            precondition(keepWritePercent + tearWritePercent <= 100)
            self.keepWritePercent = keepWritePercent
            self.tearWritePercent = tearWritePercent
            self.reorderPercent = reorderPercent
            self.zeroFillPercent = zeroFillPercent
        }
    }

    /// What one `crash()` did, for a failing test to print.
    public struct CrashSummary: Sendable, CustomStringConvertible {
        public var writesKept = 0, writesTorn = 0, writesDropped = 0, truncationsKept = 0, truncationsDropped = 0
        public var directoryOperationsKept = 0, directoryOperationsUndone = 0
        public var reorderedFiles: [String] = []
        public var description: String {
            "writes kept \(writesKept) torn \(writesTorn) dropped \(writesDropped); truncations kept \(truncationsKept) dropped \(truncationsDropped); directory ops kept \(directoryOperationsKept) undone \(directoryOperationsUndone); reordered \(reorderedFiles)"
        }
    }

    private enum Node: Equatable { case file(Int), directory }
    fileprivate enum Pending { case write(offset: UInt64, bytes: [UInt8]), truncate(UInt64) }
    private enum DirectoryOp { case create(String, Node), remove(String), rename(String, String) }
    fileprivate struct FileState {
        var current: [UInt8] = []
        var durable: [UInt8] = []
        var pending: [Pending] = []
    }
    private struct Fault {
        var kinds: Set<Operation>
        var remaining: Int
        var code: JournalError.Code
    }

    private let lock = NSLock()
    private var rng: SplitMix64
    public let policy: CrashPolicy
    private var entries: [String: Node] = [:]
    private var durableEntries: [String: Node] = [:]
    private var directoryLog: [String: [DirectoryOp]] = [:]
    private var files: [Int: FileState] = [:]
    private var nextInode = 1
    /// Handles opened before the last crash carry an older generation and fail.
    private var generation = 0
    private var faults: [Fault] = []
    private var counts: [Operation: Int] = [:]
    private var diskBytesMax: UInt64?
    private var powerCutAfter: Int?
    private var powerIsOff = false
    /// Store locks held, by lock-file path, with the generation that took them (a crash ends every process: it frees them all).
    private var heldLocks: [String: (generation: Int, token: Int)] = [:]
    private var nextLockToken = 1

    public init(seed: UInt64, policy: CrashPolicy = CrashPolicy()) {
        rng = SplitMix64(seed: seed)
        self.policy = policy
    }

    /// `NSLock.withLock` rethrows untyped errors; this keeps `throws(JournalError)`.
    private func locked<T>(_ body: () throws(JournalError) -> T) throws(JournalError) -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    // MARK: paths

    static func parent(of path: String) -> String { FilePath.parent(of: path) }

    private static func isRoot(_ path: String) -> Bool { path == "/" || path == "." || path.isEmpty }

    private func isDirectory(_ path: String) -> Bool { Self.isRoot(path) || entries[path] == .directory }

    // MARK: faults and counting (lock held)

    /// Counts an operation and fires a scheduled fault or power cut. Returns
    /// the error to throw, if any.
    private func begin(_ op: Operation, path: String, offset: UInt64? = nil) -> JournalError? {
        if powerIsOff {
            return JournalError(.io, "\(op) failed: the simulated power is off (EIO)", file: path, offset: offset)
        }
        counts[op, default: 0] += 1
        if let n = powerCutAfter {
            if n <= 1 {
                powerCutAfter = nil
                powerIsOff = true
                return JournalError(.io, "\(op) failed: simulated power loss during this operation (EIO)", file: path, offset: offset)
            }
            powerCutAfter = n - 1
        }
        var fired: JournalError.Code? = nil
        var i = 0
        while i < faults.count {
            if faults[i].kinds.contains(op) {
                faults[i].remaining -= 1
                if faults[i].remaining == 0 {
                    fired = fired ?? faults[i].code
                    faults.remove(at: i)
                    continue
                }
            }
            i += 1
        }
        guard let code = fired else { return nil }
        return JournalError(code, "\(op) failed: injected fault (\(code == .diskFull ? "ENOSPC" : "EIO"))", file: path, offset: offset)
    }

    /// Makes the `occurrence`-th operation (1-based, counted from now) among
    /// `kinds` fail with `code`, once.
    public func failOperation(_ kinds: Set<Operation>, occurrence: Int, code: JournalError.Code = .io) {
        precondition(occurrence >= 1)
        lock.withLock { faults.append(Fault(kinds: kinds, remaining: occurrence, code: code)) }
    }

    /// Removes every scheduled fault and power cut.
    public func clearFaults() {
        lock.withLock { faults = []; powerCutAfter = nil }
    }

    /// Whether scheduled faults remain unfired.
    public var hasPendingFaults: Bool { lock.withLock { !faults.isEmpty } }

    /// How many operations of `kinds` were attempted since the file system was made.
    public func operationCount(_ kinds: Set<Operation> = Set(Operation.allCases)) -> Int {
        lock.withLock { kinds.reduce(0) { $0 + counts[$1, default: 0] } }
    }

    /// The power fails during the `operations`-th mutating operation from now:
    /// that operation and everything after it fail with `.io` until `crash()`.
    /// A write in flight reaches the page cache (and may survive the crash);
    /// anything else in flight does not happen.
    public func cutPower(afterOperations operations: Int) {
        precondition(operations >= 1)
        lock.withLock { powerCutAfter = operations }
    }

    public var isPowerOff: Bool { lock.withLock { powerIsOff } }

    /// The disk holds at most this many bytes in all files together (nil: unbounded);
    /// a write past it stores what fits and fails with `.diskFull`.
    public func setDiskBytesMax(_ bytes: UInt64?) {
        lock.withLock { diskBytesMax = bytes }
    }

    /// Leaves room for `bytes` more bytes of file data, then the disk is full.
    public func fillDisk(leavingBytes bytes: UInt64) {
        lock.withLock { diskBytesMax = usedBytesLocked() + bytes }
    }

    private func usedBytesLocked() -> UInt64 {
        files.values.reduce(0) { $0 + UInt64($1.current.count) }
    }

    // MARK: crash

    /// Power loss and reboot: see the type's documentation. Returns what it did.
    @discardableResult
    public func crash() -> CrashSummary {
        lock.withLock {
            var summary = CrashSummary()
            generation += 1
            powerIsOff = false
            powerCutAfter = nil
            // Directory entries: a random prefix of each directory's unsynced operations survives.
            var namespace = durableEntries
            for directory in directoryLog.keys.sorted() {
                let ops = directoryLog[directory]!
                let kept = Int.random(in: 0...ops.count, using: &rng)
                for op in ops[0..<kept] { Self.apply(op, to: &namespace) }
                summary.directoryOperationsKept += kept
                summary.directoryOperationsUndone += ops.count - kept
            }
            // Drop children of directories that did not survive.
            for path in namespace.keys.sorted() where !Self.isRoot(Self.parent(of: path)) && namespace[Self.parent(of: path)] != .directory {
                namespace.removeValue(forKey: path)
            }
            var reachable: [Int: String] = [:]
            for (path, node) in namespace { if case .file(let id) = node { reachable[id] = path } }
            var survivors: [Int: FileState] = [:]
            for id in reachable.keys.sorted() {
                let contents = survivingContents(files[id]!, path: reachable[id]!, summary: &summary)
                survivors[id] = FileState(current: contents, durable: contents, pending: [])
            }
            files = survivors
            entries = namespace
            durableEntries = namespace
            directoryLog = [:]
            return summary
        }
    }

    private static func apply(_ op: DirectoryOp, to namespace: inout [String: Node]) {
        switch op {
        case .create(let path, let node): namespace[path] = node
        case .remove(let path): namespace.removeValue(forKey: path)
        case .rename(let from, let to):
            if let node = namespace.removeValue(forKey: from) { namespace[to] = node }
        }
    }

    private func survivingContents(_ file: FileState, path: String, summary: inout CrashSummary) -> [UInt8] {
        var contents = file.durable
        var ops: [(Pending, fate: Int)] = file.pending.map { ($0, Int.random(in: 0..<100, using: &rng)) }
        if ops.count > 1 && Int.random(in: 0..<100, using: &rng) < policy.reorderPercent {
            ops.shuffle(using: &rng)
            summary.reorderedFiles.append(path)
        }
        for (op, fate) in ops {
            switch op {
            case .truncate(let size):
                if fate < 50 {
                    Self.resize(&contents, to: size)
                    summary.truncationsKept += 1
                } else {
                    summary.truncationsDropped += 1
                }
            case .write(let offset, let bytes):
                let end = offset + UInt64(bytes.count)
                if fate < policy.keepWritePercent {
                    Self.write(bytes[...], at: offset, into: &contents)
                    summary.writesKept += 1
                    continue
                }
                let torn = fate < policy.keepWritePercent + policy.tearWritePercent
                if torn {
                    let kept = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &rng)
                    Self.write(bytes[0..<kept], at: offset, into: &contents)
                    summary.writesTorn += 1
                } else {
                    summary.writesDropped += 1
                }
                if end > UInt64(contents.count) && Int.random(in: 0..<100, using: &rng) < policy.zeroFillPercent {
                    Self.resize(&contents, to: end)
                }
            }
        }
        return contents
    }

    private static func resize(_ contents: inout [UInt8], to size: UInt64) {
        let n = Int(size)
        if n < contents.count { contents.removeLast(contents.count - n) } else if n > contents.count {
            contents += [UInt8](repeating: 0, count: n - contents.count)
        }
    }

    private static func write(_ bytes: ArraySlice<UInt8>, at offset: UInt64, into contents: inout [UInt8]) {
        guard !bytes.isEmpty else { return }
        let end = Int(offset) + bytes.count
        if end > contents.count { contents += [UInt8](repeating: 0, count: end - contents.count) }
        contents.replaceSubrange(Int(offset)..<end, with: bytes)
    }

    // MARK: direct access for tests and simulations (no faults, no counting)

    /// Puts a file with durable `contents` at `path`, creating missing parent directories (durably).
    public func install(_ path: String, contents: [UInt8]) {
        lock.withLock {
            var dirs: [String] = []
            var p = Self.parent(of: path)
            while !Self.isRoot(p) { dirs.append(p); p = Self.parent(of: p) }
            for d in dirs.reversed() where entries[d] == nil {
                entries[d] = .directory
                durableEntries[d] = .directory
            }
            let id: Int
            if case .file(let existing) = entries[path] { id = existing } else { id = nextInode; nextInode += 1 }
            files[id] = FileState(current: contents, durable: contents, pending: [])
            entries[path] = .file(id)
            durableEntries[path] = .file(id)
        }
    }

    /// The contents a read sees now, or nil when there is no such file.
    public func contents(of path: String) -> [UInt8]? {
        lock.withLock {
            guard case .file(let id) = entries[path] else { return nil }
            return files[id]?.current
        }
    }

    /// Paths of every file under `directory` (one level), sorted.
    public func fileNames(in directory: String) -> [String] {
        lock.withLock { childrenLocked(of: directory) }
    }

    /// Changes a file's contents durably (as damage at rest would), bypassing faults.
    public func mutate(_ path: String, _ change: (inout [UInt8]) -> Void) {
        lock.withLock {
            guard case .file(let id) = entries[path] else { preconditionFailure("no file \(path)") }
            var f = files[id]!
            change(&f.current)
            f.durable = f.current
            f.pending = []
            files[id] = f
        }
    }

    /// A copy of the whole state (made durable: as after a clean shutdown), with its own generator.
    public func copy(seed: UInt64) -> SimulatedFileSystem {
        lock.withLock {
            let other = SimulatedFileSystem(seed: seed, policy: policy)
            other.entries = entries
            other.durableEntries = entries
            other.nextInode = nextInode
            for (id, f) in files { other.files[id] = FileState(current: f.current, durable: f.current, pending: []) }
            return other
        }
    }

    private func childrenLocked(of directory: String) -> [String] {
        entries.keys.filter { Self.parent(of: $0) == directory }.map { String($0.dropFirst(directory == "/" ? 1 : directory.count + 1)) }.sorted()
    }

    // MARK: JournalFileSystem

    public func listDirectory(_ path: String) throws(JournalError) -> [String] {
        try locked { () throws(JournalError) -> [String] in
            if powerIsOff { throw JournalError(.io, "opendir failed: the simulated power is off (EIO)", file: path) }
            guard isDirectory(path) else { throw JournalError(.notFound, "opendir failed: no such directory (ENOENT)", file: path) }
            return childrenLocked(of: path)
        }
    }

    public func createDirectory(_ path: String) throws(JournalError) {
        try locked { () throws(JournalError) in
            if let e = begin(.createDirectory, path: path) { throw e }
            if entries[path] == .directory { return }
            guard entries[path] == nil else { throw JournalError(.io, "mkdir failed: a file has this name (EEXIST)", file: path) }
            let parent = Self.parent(of: path)
            guard isDirectory(parent) else { throw JournalError(.notFound, "mkdir failed: parent directory missing (ENOENT)", file: path) }
            entries[path] = .directory
            directoryLog[parent, default: []].append(.create(path, .directory))
        }
    }

    public func fileExists(_ path: String) -> Bool {
        lock.withLock { Self.isRoot(path) || entries[path] != nil }
    }

    public func openFile(_ path: String, mode: FileOpenMode) throws(JournalError) -> any JournalFileHandle {
        try locked { () throws(JournalError) -> any JournalFileHandle in
            switch mode {
            case .readOnly, .readWrite:
                if powerIsOff { throw JournalError(.io, "open failed: the simulated power is off (EIO)", file: path) }
                guard case .file(let id) = entries[path] else { throw JournalError(.notFound, "open failed: no such file (ENOENT)", file: path) }
                return SimulatedFileHandle(fs: self, inode: id, path: path, writable: mode == .readWrite, generation: generation)
            case .createExclusive:
                if let e = begin(.create, path: path) { throw e }
                guard entries[path] == nil else { throw JournalError(.io, "open failed: file exists (EEXIST)", file: path) }
                let parent = Self.parent(of: path)
                guard isDirectory(parent) else { throw JournalError(.notFound, "open failed: directory missing (ENOENT)", file: path) }
                let id = nextInode
                nextInode += 1
                files[id] = FileState()
                entries[path] = .file(id)
                directoryLog[parent, default: []].append(.create(path, .file(id)))
                return SimulatedFileHandle(fs: self, inode: id, path: path, writable: true, generation: generation)
            }
        }
    }

    public func rename(_ from: String, to: String) throws(JournalError) {
        try locked { () throws(JournalError) in
            if let e = begin(.rename, path: from) { throw e }
            guard let node = entries[from] else { throw JournalError(.notFound, "rename to \(to) failed: no such file (ENOENT)", file: from) }
            entries.removeValue(forKey: from)
            entries[to] = node
            let (pf, pt) = (Self.parent(of: from), Self.parent(of: to))
            if pf == pt {
                directoryLog[pf, default: []].append(.rename(from, to))
            } else {
                directoryLog[pf, default: []].append(.remove(from))
                directoryLog[pt, default: []].append(.create(to, node))
            }
        }
    }

    public func removeFile(_ path: String) throws(JournalError) {
        try locked { () throws(JournalError) in
            if let e = begin(.remove, path: path) { throw e }
            guard case .file = entries[path] else { throw JournalError(.notFound, "unlink failed: no such file (ENOENT)", file: path) }
            entries.removeValue(forKey: path)
            directoryLog[Self.parent(of: path), default: []].append(.remove(path))
        }
    }

    public func removeDirectory(_ path: String) throws(JournalError) {
        try locked { () throws(JournalError) in
            if let e = begin(.remove, path: path) { throw e }
            guard entries[path] == .directory else { throw JournalError(.notFound, "rmdir failed: no such directory (ENOENT)", file: path) }
            guard childrenLocked(of: path).isEmpty else { throw JournalError(.io, "rmdir failed: directory not empty (ENOTEMPTY)", file: path) }
            entries.removeValue(forKey: path)
            directoryLog[Self.parent(of: path), default: []].append(.remove(path))
        }
    }

    public func syncDirectory(_ path: String) throws(JournalError) {
        try locked { () throws(JournalError) in
            if let e = begin(.syncDirectory, path: path) { throw e }
            guard isDirectory(path) else { throw JournalError(.notFound, "open directory failed: no such directory (ENOENT)", file: path) }
            for op in directoryLog.removeValue(forKey: path) ?? [] { Self.apply(op, to: &durableEntries) }
        }
    }

    /// The simulation is one thread: a held lock is refused at once (no waiting), naming the path.
    public func lockExclusive(_ path: String, waitMillis: Int64) throws(JournalError) -> any StoreLockHandle {
        try locked { () throws(JournalError) -> any StoreLockHandle in
            if let held = heldLocks[path], held.generation == generation {
                throw JournalError(.locked, "the store is locked by another simulated process; waited \(waitMillis) ms (--lock-timeout)", file: path)
            }
            let token = nextLockToken
            nextLockToken += 1
            heldLocks[path] = (generation, token)
            return SimulatedStoreLock(fs: self, path: path, token: token)
        }
    }

    fileprivate func releaseLock(_ path: String, token: Int) {
        lock.withLock {
            if heldLocks[path]?.token == token { heldLocks.removeValue(forKey: path) }
        }
    }

    // MARK: handle operations (called by SimulatedFileHandle)

    fileprivate func withFile<T>(_ h: SimulatedFileHandle, _ what: String, offset: UInt64? = nil,
                                 _ body: (inout FileState) throws(JournalError) -> T) throws(JournalError) -> T {
        try locked { () throws(JournalError) -> T in
            guard h.generation == generation, !h.closed else {
                throw JournalError(.io, "\(what) failed: bad file descriptor (closed, or opened before the simulated crash) (EBADF)", file: h.path, offset: offset)
            }
            guard var f = files[h.inode] else { throw JournalError(.io, "\(what) failed: file vanished (EIO)", file: h.path, offset: offset) }
            defer { files[h.inode] = f }
            return try body(&f)
        }
    }

    fileprivate func size(_ h: SimulatedFileHandle) throws(JournalError) -> UInt64 {
        try withFile(h, "fstat") { (f: inout FileState) throws(JournalError) -> UInt64 in
            if powerIsOff { throw JournalError(.io, "fstat failed: the simulated power is off (EIO)", file: h.path) }
            return UInt64(f.current.count)
        }
    }

    fileprivate func read(_ h: SimulatedFileHandle, at offset: UInt64, count: Int) throws(JournalError) -> [UInt8] {
        try withFile(h, "pread", offset: offset) { (f: inout FileState) throws(JournalError) -> [UInt8] in
            if powerIsOff { throw JournalError(.io, "pread failed: the simulated power is off (EIO)", file: h.path, offset: offset) }
            guard offset < UInt64(f.current.count), count > 0 else { return [] }
            let end = min(f.current.count, Int(offset) + count)
            return Array(f.current[Int(offset)..<end])
        }
    }

    fileprivate func write(_ h: SimulatedFileHandle, _ bytes: [UInt8], at offset: UInt64) throws(JournalError) {
        try withFile(h, "pwrite", offset: offset) { (f: inout FileState) throws(JournalError) in
            guard h.writable else { throw JournalError(.io, "pwrite failed: file opened read-only (EBADF)", file: h.path, offset: offset) }
            let wasOff = powerIsOff
            let failure = begin(.write, path: h.path, offset: offset)
            if wasOff, let failure { throw failure }
            // How much of the write reaches the page cache: all of it, what fits
            // on the disk, a random prefix before an injected I/O error, or (the
            // power failed during it) all of it, left to the crash to decide.
            var n = bytes.count
            var error = failure
            if let failure, !powerIsOff {
                n = failure.code == .diskFull ? 0 : Int.random(in: 0...bytes.count, using: &rng)
            }
            if let limit = diskBytesMax {
                let used = usedBytesLocked() - UInt64(f.current.count)
                let room = limit > used ? Int(min(UInt64(Int.max), limit - used)) : 0
                let fits = max(0, min(n, room - Int(offset)))
                if Int(offset) + n > room && fits < n {
                    n = fits
                    error = error ?? JournalError(.diskFull, "pwrite failed: no space left on device (ENOSPC) after \(fits) of \(bytes.count) bytes", file: h.path, offset: offset + UInt64(fits))
                }
            }
            if n > 0 {
                let part = Array(bytes[0..<n])
                Self.write(part[...], at: offset, into: &f.current)
                f.pending.append(.write(offset: offset, bytes: part))
            }
            if let error { throw error }
        }
    }

    fileprivate func sync(_ h: SimulatedFileHandle) throws(JournalError) {
        try withFile(h, "fdatasync") { (f: inout FileState) throws(JournalError) in
            if let e = begin(.sync, path: h.path) { throw e }
            f.durable = f.current
            f.pending = []
        }
    }

    fileprivate func truncate(_ h: SimulatedFileHandle, to size: UInt64) throws(JournalError) {
        try withFile(h, "ftruncate", offset: size) { (f: inout FileState) throws(JournalError) in
            guard h.writable else { throw JournalError(.io, "ftruncate failed: file opened read-only (EINVAL)", file: h.path, offset: size) }
            if let e = begin(.truncate, path: h.path, offset: size) { throw e }
            Self.resize(&f.current, to: size)
            f.pending.append(.truncate(size))
        }
    }

    fileprivate func close(_ h: SimulatedFileHandle) {
        lock.withLock { h.closed = true }
    }
}

/// An open file of a `SimulatedFileSystem`. Its state is guarded by the file system's lock.
final class SimulatedFileHandle: JournalFileHandle {
    let fs: SimulatedFileSystem
    let inode: Int
    let path: String
    let writable: Bool
    let generation: Int
    var closed = false

    init(fs: SimulatedFileSystem, inode: Int, path: String, writable: Bool, generation: Int) {
        self.fs = fs
        self.inode = inode
        self.path = path
        self.writable = writable
        self.generation = generation
    }

    func size() throws(JournalError) -> UInt64 { try fs.size(self) }
    func read(at offset: UInt64, count: Int) throws(JournalError) -> [UInt8] { try fs.read(self, at: offset, count: count) }
    func write(_ bytes: [UInt8], at offset: UInt64) throws(JournalError) { try fs.write(self, bytes, at: offset) }
    func sync() throws(JournalError) { try fs.sync(self) }
    func truncate(to size: UInt64) throws(JournalError) { try fs.truncate(self, to: size) }
    func close() throws(JournalError) { fs.close(self) }
}

final class SimulatedStoreLock: StoreLockHandle, @unchecked Sendable {
    private weak var fs: SimulatedFileSystem?
    let path: String
    private let token: Int
    private var released = false

    init(fs: SimulatedFileSystem, path: String, token: Int) {
        self.fs = fs
        self.path = path
        self.token = token
    }

    deinit { release() }

    func release() {
        guard !released else { return }
        released = true
        fs?.releaseLock(path, token: token)
    }
}
