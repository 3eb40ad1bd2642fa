import Foundation
import Testing
@testable import PosJournal
import PosTestSupport

@Suite("durability")
struct DurabilityTests {
    /// Where each sequence number's frame ends, by scanning the journal's segments.
    func frameEnds(_ dir: String) throws -> [UInt64: (path: String, end: UInt64)] {
        var ends: [UInt64: (String, UInt64)] = [:]
        for name in segmentFiles(dir) {
            let path = dir + "/" + name
            let cursor = try SegmentCursor(file: PosixFileSystem().openFile(path, mode: .readOnly), path: path)
            defer { cursor.close() }
            while case .frame(let f) = try cursor.next() {
                for s in f.header.firstSequence...f.header.lastSequence { ends[s] = (path, f.offset + UInt64(f.header.frameBytes)) }
            }
        }
        return ends
    }

    @Test("group commit: every append returns only after the fsync covering it; sequence numbers contiguous, no duplicates",
          arguments: [Durability.groupCommit(maxBytes: 4096, maxDelayMilliseconds: 2), .perRecord])
    func groupCommit(mode: Durability) throws {
        let dir = TemporaryDirectory()
        let fs = RecordingFileSystem()
        let journal = try Journal.open(directory: dir.path, configuration: JournalConfiguration(durability: mode, segmentBytesMax: 32 * 1024), fileSystem: fs)
        let threads = 16, perThread = 40
        final class Log: @unchecked Sendable {
            let lock = NSLock()
            var observations: [(seq: UInt64, durable: [String: UInt64], record: [UInt8])] = []
            var failures: [String] = []
        }
        let log = Log()
        let group = DispatchGroup()
        for t in 0..<threads {
            group.enter()
            Thread {
                defer { group.leave() }
                for i in 0..<perThread {
                    let record = Array("thread \(t) append \(i) ".utf8) + Array(repeating: UInt8(t), count: 60)
                    do {
                        let seq = try journal.append(record)
                        let durable = fs.durableSizes()   // taken the moment append returned
                        log.lock.withLock { log.observations.append((seq, durable, record)) }
                    } catch {
                        log.lock.withLock { log.failures.append("\(error)") }
                    }
                }
            }.start()
        }
        group.wait()
        let observations = log.observations, failures = log.failures
        #expect(failures.isEmpty, "\(failures)")
        let seqs = observations.map(\.seq).sorted()
        #expect(seqs == Array(1...UInt64(threads * perThread)), "contiguous, no duplicates")
        let ends = try frameEnds(dir.path)
        for o in observations {
            guard let (path, end) = ends[o.seq] else { Issue.record("seq \(o.seq) not on disk"); continue }
            let durable = o.durable[path] ?? 0
            #expect(durable >= end, "seq \(o.seq) returned when \(path) was durable to \(durable), its frame ends at \(end)")
        }
        // Each record is stored under the sequence number its append returned.
        let all = try readAll(journal)
        let bySeq = Dictionary(uniqueKeysWithValues: all.map { ($0.0, $0.1) })
        for o in observations { #expect(bySeq[o.seq] == o.record) }
        if case .groupCommit = mode {
            #expect(fs.syncCount < threads * perThread, "group commit must share fsyncs (\(fs.syncCount) for \(threads * perThread) appends)")
        }
        try journal.close()
    }

    @Test("durability none: appends are buffered until flush, then readable")
    func noneBuffers() throws {
        let dir = TemporaryDirectory()
        let journal = try Journal.open(directory: dir.path, configuration: JournalConfiguration(durability: .none(bufferBytes: 1 << 20)))
        for i in 0..<10 { try journal.append(Array("r\(i)".utf8)) }
        #expect(journal.readableSequence == 0)
        #expect(journal.lastSequence == 10)
        try journal.flush()
        #expect(journal.readableSequence == 10)
        #expect(journal.durableSequence == 0)
        try journal.sync()
        #expect(journal.durableSequence == 10)
        #expect(try readAll(journal).map(\.1) == (0..<10).map { Array("r\($0)".utf8) })
        try journal.close()
    }

    @Test("a torn tail is cut on open, reported, and appends continue")
    func tornTailOnOpen() throws {
        let dir = TemporaryDirectory()
        var j: Journal? = try Journal.open(directory: dir.path)
        for i in 0..<5 { try j!.append(Array("record \(i)".utf8)) }
        try j!.close()
        j = nil
        let path = dir.sub(segmentFiles(dir.path).last!)
        let full = fileBytes(path)
        try Data(full.dropLast(7)).write(to: URL(fileURLWithPath: path))
        let reopened = try Journal.open(directory: dir.path)
        #expect(reopened.lastSequence == 4)
        let cut = try #require(reopened.recoveryReport.truncation)
        #expect(cut.file == path)
        #expect(cut.bytesRemoved == UInt64(full.count - 7) - cut.offset)
        #expect(try reopened.append(Array("again".utf8)) == 5)
        #expect(try readAll(reopened).map(\.1).last == Array("again".utf8))
        try reopened.close()
    }
}

/// Holds the first fsync of any file until released, to line up a race exactly.
final class GatedFileSystem: JournalFileSystem, @unchecked Sendable {
    let base = SimulatedFileSystem(seed: 1)
    private let lock = NSLock()
    private var armed = false
    let inSync = DispatchSemaphore(value: 0)
    let release = DispatchSemaphore(value: 0)

    func arm() { lock.withLock { armed = true } }
    fileprivate func takeGate() -> Bool { lock.withLock { let a = armed; armed = false; return a } }

    final class Handle: JournalFileHandle {
        let inner: any JournalFileHandle
        unowned let owner: GatedFileSystem
        init(_ inner: any JournalFileHandle, _ owner: GatedFileSystem) { self.inner = inner; self.owner = owner }
        func size() throws(JournalError) -> UInt64 { try inner.size() }
        func read(at offset: UInt64, count: Int) throws(JournalError) -> [UInt8] { try inner.read(at: offset, count: count) }
        func write(_ bytes: [UInt8], at offset: UInt64) throws(JournalError) { try inner.write(bytes, at: offset) }
        func sync() throws(JournalError) {
            if owner.takeGate() { owner.inSync.signal(); owner.release.wait() }
            try inner.sync()
        }
        func truncate(to size: UInt64) throws(JournalError) { try inner.truncate(to: size) }
        func close() throws(JournalError) { try inner.close() }
    }

    func listDirectory(_ path: String) throws(JournalError) -> [String] { try base.listDirectory(path) }
    func createDirectory(_ path: String) throws(JournalError) { try base.createDirectory(path) }
    func fileExists(_ path: String) -> Bool { base.fileExists(path) }
    func openFile(_ path: String, mode: FileOpenMode) throws(JournalError) -> any JournalFileHandle { Handle(try base.openFile(path, mode: mode), self) }
    func rename(_ from: String, to: String) throws(JournalError) { try base.rename(from, to: to) }
    func removeFile(_ path: String) throws(JournalError) { try base.removeFile(path) }
    func syncDirectory(_ path: String) throws(JournalError) { try base.syncDirectory(path) }
    func removeDirectory(_ path: String) throws(JournalError) { try base.removeDirectory(path) }
    func lockExclusive(_ path: String, waitMillis: Int64) throws(JournalError) -> any StoreLockHandle { try base.lockExclusive(path, waitMillis: waitMillis) }
}

@Suite("durability with flush")
struct FlushDuringCommitTests {
    @Test("a flush() between a writer's fsync and a waiting appender does not leave that appender waiting forever")
    func flushRace() throws {
        for round in 0..<10 {
            let fs = GatedFileSystem()
            let journal = try Journal.open(directory: "/j", configuration: JournalConfiguration(durability: .perRecord), fileSystem: fs)
            fs.arm()
            let a = DispatchSemaphore(value: 0), b = DispatchSemaphore(value: 0), c = DispatchSemaphore(value: 0)
            Thread { _ = try? journal.append([1]); a.signal() }.start()
            fs.inSync.wait()                         // A holds the writer role, inside fsync
            Thread { _ = try? journal.append([2]); c.signal() }.start()
            Thread.sleep(forTimeInterval: 0.02)      // C waits for A's writer role
            Thread { try? journal.flush(); b.signal() }.start()
            Thread.sleep(forTimeInterval: 0.02)      // flush() waits too
            fs.release.signal()
            a.wait()
            // Before the fix, C spun forever holding the journal's lock.
            guard c.wait(timeout: .now() + 10) == .success else {
                Issue.record("round \(round): the appender never returned after a racing flush()")
                return
            }
            b.wait()
            #expect(journal.durableSequence == 2)
        }
    }
}

@Suite("multi-frame batches")
struct MultiFrameBatchTests {
    @Test("a durable batch of several frames fsyncs each frame before writing the next")
    func frameByFrame() throws {
        let dir = TemporaryDirectory()
        let fs = RecordingFileSystem()
        let journal = try Journal.open(directory: dir.path, configuration: JournalConfiguration(durability: .perRecord, segmentBytesMax: 64 << 20), fileSystem: fs)
        fs.keepWrites = true
        let syncsBefore = fs.syncCount, writesBefore = fs.writes.count
        // Five records of 1 MiB: three fit a 4 MiB frame, so the batch needs two frames.
        let big = (0..<5).map { i in [UInt8](repeating: UInt8(i), count: JournalLimits.recordBytesMax - 16) }
        let range = try journal.append(contentsOf: big)
        #expect(range == 1...5)
        #expect(fs.writes.count - writesBefore == 2, "one write per frame")
        #expect(fs.syncCount - syncsBefore == 2, "an fsync after each frame")
        #expect(try readAll(journal).map(\.1) == big)
        try journal.close()
    }
}
