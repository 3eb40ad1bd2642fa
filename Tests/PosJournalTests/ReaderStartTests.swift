import Foundation
import Testing
@testable import PosJournal
import PosTestSupport

/// A reader from a sequence number starts at the last position open kept at or
/// before it (`FramePosition`), not at the first frame of its segment: the
/// frames before were checked by open, the frames it returns are checked as read.
@Suite("journal reader start positions")
struct ReaderStartTests {
    /// Many small frames (one per append) in segments far larger than the stride.
    func smallFramesJournal(_ dir: TemporaryDirectory, count: Int, seed: UInt64) throws -> (JournalConfiguration, [[UInt8]]) {
        var rng = SeededRandom(seed: seed)
        let config = JournalConfiguration(durability: .none(bufferBytes: 0), segmentBytesMax: 1 << 20,
                                          dictionary: testDictionary, key: testKey)
        let journal = try Journal.open(directory: dir.path, configuration: config)
        var expected: [[UInt8]] = []
        for _ in 0..<count {
            let record = randomRecord(&rng, maxBytes: 120)
            try journal.append(record)
            expected.append(record)
        }
        try journal.close()
        return (config, expected)
    }

    @Test("readers from sequence numbers throughout segments of many frames return the same records as a walk from the start")
    func readsFromEveryPlace() throws {
        let seed = testSeed(41)
        var rng = SeededRandom(seed: seed)
        let dir = TemporaryDirectory()
        let (config, expected) = try smallFramesJournal(dir, count: 14_000, seed: seed)
        let journal = try Journal.open(directory: dir.path, configuration: config)
        defer { try? journal.close() }
        #expect(segmentFiles(dir.path).count >= 2, "the test must cross a segment roll (seed \(seed))")
        let positions = journal.startPositions.values.flatMap { $0 }
        #expect(positions.count >= 10, "open keeps a start position every \(JournalLimits.readerStartStrideBytes) bytes (seed \(seed))")
        // Every kept position's own sequence, its neighbours, the segments' bases, and random ones.
        var starts = Set(positions.flatMap { [$0.sequence - 1, $0.sequence, $0.sequence + 1] })
        starts.formUnion(try journal.segmentBases())
        for _ in 0..<50 { starts.insert(UInt64.random(in: 1...UInt64(expected.count), using: &rng)) }
        for start in starts.sorted() where start >= 1 {
            let reader = try journal.reader(from: start)
            var seq = start
            while let r = try reader.next(), seq < start + 300 {
                #expect(r.sequence == seq, "from \(start) (seed \(seed))")
                #expect(r.record == expected[Int(seq - 1)], "record \(seq) from \(start) (seed \(seed))")
                seq += 1
            }
            #expect(seq == min(start + 300, UInt64(expected.count) + 1), "reader from \(start) stopped at \(seq) (seed \(seed))")
        }
    }

    @Test("a reader does not walk the frames before its start position again, and still reports damage in a frame it reads with file and offset")
    func damageBeforeAndAtTheStart() throws {
        let seed = testSeed(42)
        let dir = TemporaryDirectory()
        let (config, expected) = try smallFramesJournal(dir, count: 6_000, seed: seed)
        let journal = try Journal.open(directory: dir.path, configuration: config)
        defer { try? journal.close() }
        let first = dir.path + "/" + segmentFiles(dir.path)[0]
        let kept = try #require(journal.startPositions[1]?.first, "open keeps positions in the first segment (seed \(seed))")
        // Damage the first frame's payload after open (open saw it intact).
        let damagedAt = UInt64(JournalLimits.segmentHeaderBytes)
        let handle = try #require(FileHandle(forUpdatingAtPath: first))
        try handle.seek(toOffset: damagedAt + UInt64(JournalLimits.frameHeaderBytes))
        let byte = try #require(try handle.read(upToCount: 1)?.first)
        try handle.seek(toOffset: damagedAt + UInt64(JournalLimits.frameHeaderBytes))
        try handle.write(contentsOf: [byte ^ 0xFF])
        try handle.close()
        // From the kept position on, nothing before it is read again: the records come back.
        let reader = try journal.reader(from: kept.sequence)
        let r = try #require(try reader.next())
        #expect(r.sequence == kept.sequence && r.record == expected[Int(kept.sequence - 1)], "seed \(seed)")
        // A reader that reads the damaged frame reports it, naming the file and the frame's offset.
        do {
            _ = try readAll(journal, from: 1)
            Issue.record("the damaged frame was read without an error (seed \(seed))")
        } catch let error as JournalError {
            #expect(error.code == .payloadChecksum && error.file == first && error.offset == damagedAt, "\(error) (seed \(seed))")
        }
        // And the next open refuses the journal there, as before.
        try journal.close()
        #expect(throws: JournalError.self) { try Journal.open(directory: dir.path, configuration: config) }
    }
}
