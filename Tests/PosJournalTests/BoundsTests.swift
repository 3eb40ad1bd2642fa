import Foundation
import Testing
@testable import PosJournal
import PosTestSupport

@Suite("bounds")
struct BoundsTests {
    @Test("an oversized record is refused with a clear error and nothing written")
    func oversized() throws {
        let dir = TemporaryDirectory()
        let j = try Journal.open(directory: dir.path)
        try j.append([1])
        try j.sync()
        let before = fileBytes(dir.sub(segmentFiles(dir.path)[0]))
        do {
            try j.append(contentsOf: [[2], [UInt8](repeating: 0, count: JournalLimits.recordBytesMax + 1)])
            Issue.record("oversized record accepted")
        } catch {
            #expect(error.code == .recordTooLarge)
            #expect(error.message.contains("\(JournalLimits.recordBytesMax + 1) bytes"))
        }
        try j.sync()
        #expect(fileBytes(dir.sub(segmentFiles(dir.path)[0])) == before)
        #expect(j.lastSequence == 1)
        #expect(try j.append([3]) == 2)
        try j.close()
    }

    func frame(blockLength: UInt32, payload: [UInt8], flags: FrameFlags) -> [UInt8] {
        var h = FrameHeader(flags: flags, firstSequence: 1, recordCount: 1, blockLength: blockLength,
                            storedLength: UInt32(payload.count), previousChecksum: 0, payloadChecksum: 0, checksum: 0)
        return h.seal(payload: payload) + payload
    }

    @Test("a frame claiming 4 GiB is refused without allocating it")
    func fourGiBClaim() throws {
        let bytes = frame(blockLength: UInt32.max, payload: [1, 2, 3], flags: [.deflated])
        let decoded = FrameHeader.decode(bytes)
        guard case .invalid(let code, let message) = decoded else { Issue.record("accepted"); return }
        #expect(code == .badFrameHeader)
        #expect(message.contains("frameRecordBytesMax"))
    }

    @Test("a decompression bomb inflates no further than the stated length")
    func bomb() throws {
        // 64 MiB of zeros deflate to ~64 KiB; the header claims 1,000 bytes.
        let zeros = [UInt8](repeating: 0, count: 64 << 20)
        let deflated = Deflater(level: 9, dictionary: nil).compress(zeros)!
        let bytes = frame(blockLength: 1000, payload: deflated, flags: [.deflated])
        guard case .header(let h) = FrameHeader.decode(bytes) else { Issue.record("header refused"); return }
        let segment = SegmentHeader(journalID: JournalID.random(), baseSequence: 1, dictionaryID: 0, keyID: 0, chainSeed: 0)
        let decoder = FrameDecoder(dictionaries: [], key: nil)
        do {
            _ = try RawFrame(header: h, offset: 64, bytes: bytes).records(decoder: decoder, segment: segment, file: "bomb.seg")
            Issue.record("bomb accepted")
        } catch {
            #expect(error.code == .lengthMismatch)
            #expect(error.message.contains("exceeds the stated 1000 bytes"))
        }
    }
}
