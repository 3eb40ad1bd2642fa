import Foundation
import Testing
@testable import PosJournal
import PosTestSupport
import PosLedger

/// Seeded generator of the randomized tests (the journal's own SplitMix64), so every run replays from its seed.
typealias SeededRandom = SplitMix64

/// Seed for a randomized test: POSSYNC_SEED when set (to replay), else a fixed default.
func testSeed(_ defaultSeed: UInt64) -> UInt64 {
    if let s = ProcessInfo.processInfo.environment["POSSYNC_SEED"], let v = UInt64(s) { return v }
    return defaultSeed
}

/// A fresh temporary directory, removed when the value is released.
final class TemporaryDirectory {
    let path: String
    init(_ label: String = "journal") {
        let base = FileManager.default.temporaryDirectory.path
        path = "\(base)/possync-test-\(label)-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func sub(_ name: String) -> String { path + "/" + name }
}

let testKey = JournalKey(id: 7, bytes: Array(repeating: 0x42, count: 32))
let otherKey = JournalKey(id: 7, bytes: Array(repeating: 0x43, count: 32))
let testDictionary = CompressionDictionary(id: 9, bytes: Array("sale captured amount currency EUR terminal merchant refund requested approved".utf8))

func randomRecord(_ rng: inout SeededRandom, maxBytes: Int) -> [UInt8] {
    let n = Int.random(in: 0...maxBytes, using: &rng)
    // Compressible but not trivially: a small alphabet.
    return (0..<n).map { _ in UInt8.random(in: 97...104, using: &rng) }
}

func readAll(_ journal: Journal, from: UInt64 = 1) throws -> [(UInt64, [UInt8])] {
    let reader = try journal.reader(from: from)
    var out: [(UInt64, [UInt8])] = []
    while let r = try reader.next() { out.append((r.sequence, r.record)) }
    return out
}

func segmentFiles(_ dir: String) -> [String] {
    (try? FileManager.default.contentsOfDirectory(atPath: dir))?.filter { $0.hasSuffix(".seg") }.sorted() ?? []
}

func fileBytes(_ path: String) -> [UInt8] {
    Array(FileManager.default.contents(atPath: path) ?? Data())
}

/// Wraps the real file system and logs every write and fsync, so tests can
/// check what was durable when an append returned.
final class RecordingFileSystem: JournalFileSystem, @unchecked Sendable {
    let base = PosixFileSystem()
    private let lock = NSLock()
    /// Bytes of each file made durable by its last fsync.
    private var synced: [String: UInt64] = [:]
    private(set) var writes: [(path: String, offset: UInt64, bytes: [UInt8])] = []
    private(set) var syncCount = 0
    var keepWrites = false

    final class Handle: JournalFileHandle {
        let inner: any JournalFileHandle
        var path: String
        unowned let owner: RecordingFileSystem
        init(_ inner: any JournalFileHandle, path: String, owner: RecordingFileSystem) {
            self.inner = inner; self.path = path; self.owner = owner
        }
        func size() throws(JournalError) -> UInt64 { try inner.size() }
        func read(at offset: UInt64, count: Int) throws(JournalError) -> [UInt8] { try inner.read(at: offset, count: count) }
        func write(_ bytes: [UInt8], at offset: UInt64) throws(JournalError) {
            try inner.write(bytes, at: offset)
            owner.lock.withLock { if owner.keepWrites { owner.writes.append((path, offset, bytes)) } }
        }
        func sync() throws(JournalError) {
            try inner.sync()
            let size = try inner.size()
            owner.lock.withLock { owner.synced[path] = size; owner.syncCount += 1 }
        }
        func truncate(to size: UInt64) throws(JournalError) { try inner.truncate(to: size) }
        func close() throws(JournalError) { try inner.close() }
    }
    private var handles: [Handle] = []

    func durableSizes() -> [String: UInt64] { lock.withLock { synced } }

    func listDirectory(_ path: String) throws(JournalError) -> [String] { try base.listDirectory(path) }
    func createDirectory(_ path: String) throws(JournalError) { try base.createDirectory(path) }
    func fileExists(_ path: String) -> Bool { base.fileExists(path) }
    func openFile(_ path: String, mode: FileOpenMode) throws(JournalError) -> any JournalFileHandle {
        let h = Handle(try base.openFile(path, mode: mode), path: path, owner: self)
        lock.withLock { handles.append(h) }
        return h
    }
    func rename(_ from: String, to: String) throws(JournalError) {
        try base.rename(from, to: to)
        lock.withLock {
            for h in handles where h.path == from { h.path = to }
            if let s = synced.removeValue(forKey: from) { synced[to] = s }
        }
    }
    func removeFile(_ path: String) throws(JournalError) { try base.removeFile(path) }
    func syncDirectory(_ path: String) throws(JournalError) { try base.syncDirectory(path) }
    func removeDirectory(_ path: String) throws(JournalError) { try base.removeDirectory(path) }
    func lockExclusive(_ path: String, waitMillis: Int64) throws(JournalError) -> any StoreLockHandle { try base.lockExclusive(path, waitMillis: waitMillis) }
}
