import Foundation
import PosBytes
import Testing
@testable import PosJournal
import PosLedger
import PosTestSupport

@Suite("frames sealed from a record block, read in place")
struct RecordBlockTests {
    @Test("a frame sealed from a record block is the frame sealed from its records, and its records read in place are those records")
    func blockAgreesWithRecords() throws {
        let seed = TestSeed("record block against records", replays: "the records and the compression level")
        var rng = SplitMix64(seed: seed.value)
        let key = JournalKey(id: 9, bytes: (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) })
        for round in 0..<60 {
            let count = Int.random(in: 1...400, using: &rng)
            let records: [[UInt8]] = (0..<count).map { _ in
                (0..<Int.random(in: 0...(Int.random(in: 0..<10, using: &rng) == 0 ? 300 : 40), using: &rng)).map { _ in UInt8.random(in: 0...3, using: &rng) }
            }
            var block = ByteWriter()
            for r in records {
                block.writeVarint(UInt64(r.count))
                block.writeBytes(r)
            }
            let level: Int32 = [0, 1, 6][Int.random(in: 0..<3, using: &rng)]
            // Unencrypted, the bytes are a function of the records: the two seals must give the same frame.
            let plain = FrameSealer(dictionary: nil, key: nil, compressionLevel: level)
            let fromRecords = try plain.seal(records, firstSequence: UInt64(round + 1), previousChecksum: 7)
            let fromBlock = try plain.seal(block: block.bytes, recordCount: count, firstSequence: UInt64(round + 1), previousChecksum: 7)
            #expect(fromBlock.bytes == fromRecords.bytes, "\(seed.replay): round \(round) (\(count) records, level \(level)): the frames differ")
            // Encrypted, read back in place: each range is its record.
            let sealed = try FrameSealer(dictionary: nil, key: key, compressionLevel: level)
                .seal(block: block.bytes, recordCount: count, firstSequence: UInt64(round + 1))
            let decoder = FrameDecoder(dictionaries: [], key: key)
            let read = try Frames.recordRanges(sealed.bytes, dictionaryID: 0, keyID: key.id, decoder: decoder)
            #expect(read.ranges.map { Array(read.block[$0]) } == records, "\(seed.replay): round \(round): the records read in place differ")
            #expect(try Frames.records(sealed.bytes, dictionaryID: 0, keyID: key.id, decoder: decoder).records == records, "\(seed.replay): round \(round)")
        }
    }

    @Test("a record block whose records do not add up to the count stated is refused before it is sealed")
    func blockMismatchRefused() throws {
        let sealer = FrameSealer(dictionary: nil, key: nil, compressionLevel: 0)
        var block = ByteWriter()
        for r: [UInt8] in [[1, 2, 3], [4]] {
            block.writeVarint(UInt64(r.count))
            block.writeBytes(r)
        }
        #expect(throws: JournalError.self) { try sealer.seal(block: block.bytes, recordCount: 3, firstSequence: 1) }
        #expect(throws: JournalError.self) { try sealer.seal(block: block.bytes + [5], recordCount: 2, firstSequence: 1) }  // a length running past the end
        #expect(throws: JournalError.self) { try sealer.seal(block: [], recordCount: 0, firstSequence: 1) }
        #expect(try sealer.seal(block: block.bytes, recordCount: 2, firstSequence: 1).header.recordCount == 2)
    }
}
