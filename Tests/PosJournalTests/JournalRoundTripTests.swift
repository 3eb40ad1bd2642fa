import Foundation
import Testing
@testable import PosJournal
import PosTestSupport

@Suite("journal round trip")
struct JournalRoundTripTests {
    @Test("CRC32C matches the standard check value")
    func crcCheckValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        let a = Array("hello ".utf8), b = Array("world".utf8)
        #expect(a.withUnsafeBytes { pa in b.withUnsafeBytes { CRC32C.update(CRC32C.checksum(pa), $0) } } == CRC32C.checksum(a + b))
    }

    @Test("random records from 0 bytes to the maximum survive segment rolls and read back from every sequence number",
          arguments: [false, true])
    func roundTrip(encrypted: Bool) throws {
        let seed = testSeed(encrypted ? 11 : 10)
        var rng = SeededRandom(seed: seed)
        let dir = TemporaryDirectory()
        let config = JournalConfiguration(durability: .none(bufferBytes: 0), segmentBytesMax: 64 * 1024,
                                          dictionary: testDictionary, key: encrypted ? testKey : nil)
        let journal = try Journal.open(directory: dir.path, configuration: config)
        var expected: [[UInt8]] = []
        // Mostly small records, a few large, the extremes 0 and recordBytesMax included.
        var sizes: [Int] = [0, JournalLimits.recordBytesMax, 1, 127, 128]
        for _ in 0..<250 { sizes.append(Int.random(in: 0...300, using: &rng)) }
        for _ in 0..<5 { sizes.append(Int.random(in: 0...JournalLimits.recordBytesMax, using: &rng)) }
        sizes.shuffle(using: &rng)
        var index = 0
        while index < sizes.count {
            let batch = min(Int.random(in: 1...8, using: &rng), sizes.count - index)
            let records = sizes[index..<(index + batch)].map { n in (0..<n).map { _ in UInt8.random(in: 97...104, using: &rng) } }
            let range = try journal.append(contentsOf: records)
            #expect(range.lowerBound == UInt64(expected.count + 1), "seed \(seed)")
            expected += records
            index += batch
        }
        try journal.sync()
        #expect(segmentFiles(dir.path).count > 3, "the test must cross segment rolls (seed \(seed))")
        for start in 1...UInt64(expected.count) {
            let reader = try journal.reader(from: start)
            var seq = start
            while let r = try reader.next() {
                #expect(r.sequence == seq, "seed \(seed)")
                if r.record != expected[Int(seq - 1)] {
                    Issue.record("record \(seq) differs reading from \(start) (seed \(seed))")
                    return
                }
                seq += 1
            }
            #expect(seq == UInt64(expected.count + 1), "reader from \(start) stopped at \(seq) (seed \(seed))")
        }
        try journal.close()
        // Reopened, everything is still there and appends continue after it.
        let again = try Journal.open(directory: dir.path, configuration: config)
        #expect(again.lastSequence == UInt64(expected.count))
        #expect(try again.append([1, 2, 3]) == UInt64(expected.count + 1))
        let all = try readAll(again)
        #expect(all.count == expected.count + 1)
        #expect(all.last?.1 == [1, 2, 3])
        try again.close()
    }

    @Test("reading a journal without its dictionary names the dictionary")
    func missingDictionary() throws {
        let dir = TemporaryDirectory()
        let j = try Journal.open(directory: dir.path, configuration: JournalConfiguration(dictionary: testDictionary))
        // Long enough to be deflated (short blocks are stored as they are).
        try j.append(Array(String(repeating: "sale captured amount ", count: 8).utf8))
        try j.close()
        let reader = try JournalReader(directory: dir.path, dictionaries: [], key: nil)
        #expect(throws: JournalError.self) { _ = try reader.next() }
        do { _ = try JournalReader(directory: dir.path, dictionaries: [], key: nil).next() } catch {
            #expect(error.code == .unknownDictionary)
            #expect(error.description.contains("dictionary 9"))
        }
    }

    @Test("a small event compresses with the preset dictionary")
    func dictionaryHelpsSmallFrames() throws {
        let text = Array("sale captured amount currency EUR terminal merchant".utf8)
        let plain = Deflater(level: 6, dictionary: nil).compress(text)
        let withDict = Deflater(level: 6, dictionary: testDictionary).compress(text)
        #expect(withDict != nil)
        #expect(withDict!.count < (plain?.count ?? text.count))
        let inflater = Inflater(dictionary: testDictionary)
        let back = withDict!.withUnsafeBytes { inflater.decompress($0, statedLength: text.count) }
        #expect(try back.get() == text)
    }
}
