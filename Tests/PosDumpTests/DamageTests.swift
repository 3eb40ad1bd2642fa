import Foundation
@testable import PosDump
import PosJournal
import Testing
import PosTestSupport

/// The damage cases of the [recovery] fixtures, made here from the valid
/// fixture (so they exist whatever else is in Fixtures/journals): the dump
/// reports each with file, offset and reason, goes on at the next intact
/// frame, and never shows a record of a damaged frame.
@Suite("damaged journals")
struct DamageTests {
    /// The original records by sequence number (fixture record n, Fixtures/journals/README.md).
    static func fixtureRecord(_ n: UInt64) -> [UInt8] {
        Array("fixture record \(n): ".utf8) + (0..<Int(n % 97)).map { UInt8(97 + ($0 * 7 + Int(n)) % 26) }
    }

    /// A copy of valid-plain (or valid-encrypted) to damage.
    func copy(_ name: String = "valid-plain") throws -> (TemporaryDirectory, String) {
        let t = TemporaryDirectory("damage")
        let dir = t.sub(name)
        try copyDirectory(journalFixtures + "/" + name, to: dir)
        return (t, dir)
    }

    func run(_ dir: String) throws -> CollectingSink {
        let sink = try collect(fixtureOptions(dir, display: "j"))
        // Every record shown is the record written under that sequence number.
        for r in sink.records {
            #expect(r.bytes == Self.fixtureRecord(r.sequence), "record \(r.sequence) shown with other bytes")
        }
        return sink
    }

    @Test("a clean journal: status clean, every record once")
    func clean() throws {
        let sink = try run(journalFixtures + "/valid-plain")
        #expect(sink.summary?.status == .clean)
        #expect(sink.records.map(\.sequence) == Array(1...600))
        #expect(sink.damage.isEmpty)
    }

    @Test("torn tail: a frame cut short at the end of the last segment is a torn tail (exit 3), earlier records all shown")
    func tornTail() throws {
        let (_t, dir) = try copy()
        let last = dir + "/" + segmentNames(dir).last!
        var b = readBytes(last)
        b.removeLast(7)
        writeBytes(b, last)
        let sink = try run(dir)
        let s = try #require(sink.summary)
        #expect(s.status == .tornTail && s.status.exitCode == 3)
        let torn = try #require(s.tornTail)
        #expect(torn.file == "j/" + segmentNames(dir).last! && torn.bytes > 0 && torn.reason.contains("needs"))
        #expect(sink.records.count == 599)
        _ = _t
    }

    @Test("zero tail: zeros after the last frame are a torn tail")
    func zeroTail() throws {
        let (_t, dir) = try copy()
        let last = dir + "/" + segmentNames(dir).last!
        let size = UInt64(readBytes(last).count)
        writeBytes(readBytes(last) + [UInt8](repeating: 0, count: 4096), last)
        let s = try #require(try run(dir).summary)
        #expect(s.status == .tornTail)
        #expect(s.tornTail?.offset == size && s.tornTail?.bytes == 4096 && s.tornTail?.reason.contains("zero bytes") == true)
        _ = _t
    }

    @Test("mid-log flip: the damaged frame is reported with its offset, its records are not shown, reading goes on")
    func midLogFlip() throws {
        let (_t, dir) = try copy()
        let first = dir + "/" + segmentNames(dir)[0]
        let clean = try collect(fixtureOptions(dir, display: "j"))
        let victim = clean.frames[10]
        var b = readBytes(first)
        b[Int(victim.offset) + 45] ^= 0x20  // a payload byte
        writeBytes(b, first)
        let sink = try run(dir)
        let s = try #require(sink.summary)
        #expect(s.status == .damaged && s.status.exitCode == 1)
        let d = try #require(sink.damage.first { $0.kind == .damaged })
        #expect(d.offset == victim.offset && d.code == "payloadChecksum" && d.file == "j/" + segmentNames(dir)[0])
        #expect(d.bytes == UInt64(victim.header.frameBytes))
        let lost = Set(victim.header.firstSequence...victim.header.lastSequence)
        #expect(sink.records.allSatisfy { !lost.contains($0.sequence) })
        #expect(sink.records.count == 600 - lost.count)
        #expect(s.missingRecords == 0 || sink.damage.contains { $0.kind == .missing })
        _ = _t
    }

    @Test("flipped frame header: the range up to the next valid frame is damaged and the lost records are named")
    func headerFlip() throws {
        let (_t, dir) = try copy()
        let first = dir + "/" + segmentNames(dir)[0]
        let clean = try collect(fixtureOptions(dir, display: "j"))
        let victim = clean.frames[5]
        var b = readBytes(first)
        b[Int(victim.offset) + 17] ^= 0x01  // record count byte: header checksum fails
        writeBytes(b, first)
        let sink = try run(dir)
        let d = try #require(sink.damage.first { $0.kind == .damaged })
        #expect(d.offset == victim.offset && d.code == "headerChecksum")
        #expect(d.bytes == UInt64(victim.header.frameBytes))
        let missing = try #require(sink.damage.first { $0.kind == .missing })
        #expect(missing.missingFrom == victim.header.firstSequence && missing.missingThrough == victim.header.lastSequence)
        #expect(sink.summary?.missingRecords == UInt64(victim.header.recordCount))
        #expect(sink.records.count == 600 - Int(victim.header.recordCount))
        _ = _t
    }

    @Test("truncated segment header: reported at offset 0, the rest of the journal is still read")
    func truncatedHeader() throws {
        let (_t, dir) = try copy()
        let middle = dir + "/" + segmentNames(dir)[1]
        writeBytes(Array(readBytes(middle).prefix(30)), middle)
        let sink = try run(dir)
        let s = try #require(sink.summary)
        #expect(s.status == .damaged)
        let d = try #require(sink.damage.first)
        #expect(d.file == "j/" + segmentNames(dir)[1] && d.offset == 0 && d.code == "truncated")
        // The third segment's records are still shown; the second's are reported missing.
        #expect(sink.records.last?.sequence == 600)
        #expect(sink.damage.contains { $0.kind == .missing && $0.code == "missingSegment" })
        _ = _t
    }

    @Test("damaged segment header with intact frames: frames are checked, records not decoded")
    func damagedHeaderIntactFrames() throws {
        let (_t, dir) = try copy()
        let middle = dir + "/" + segmentNames(dir)[1]
        var b = readBytes(middle)
        b[20] ^= 0xFF  // journal id byte: header checksum fails
        writeBytes(b, middle)
        let sink = try run(dir)
        let d = try #require(sink.damage.first)
        #expect(d.offset == 0 && d.bytes == 64 && d.code == "headerChecksum")
        let undecoded = sink.frames.filter { $0.undecoded?.code == "segmentHeader" }
        #expect(!undecoded.isEmpty)
        #expect(undecoded.allSatisfy { $0.file == "j/" + segmentNames(dir)[1] })
        #expect(sink.records.allSatisfy { r in !undecoded.contains { $0.header.firstSequence...$0.header.lastSequence ~= r.sequence } })
        _ = _t
    }

    @Test("missing middle segment: the records it held are reported missing (exit 1)")
    func missingSegment() throws {
        let (_t, dir) = try copy()
        let names = segmentNames(dir)
        try FileManager.default.removeItem(atPath: dir + "/" + names[1])
        let sink = try run(dir)
        let s = try #require(sink.summary)
        #expect(s.status == .damaged)
        let m = try #require(sink.damage.first { $0.kind == .missing })
        let base2 = UInt64(names[1].prefix(20))!, base3 = UInt64(names[2].prefix(20))!
        #expect(m.missingFrom == base2 && m.missingThrough == base3 - 1 && m.offset == 32 && m.file == "j/" + names[2])
        #expect(s.missingRecords == base3 - base2)
        _ = _t
    }

    @Test("future format version: the segment is reported and not read, never guessed at")
    func futureVersion() throws {
        let (_t, dir) = try copy()
        let last = dir + "/" + segmentNames(dir).last!
        var b = readBytes(last)
        b[8] = 2
        let crc = CRC32C.checksum(Array(b[0..<60]))
        for i in 0..<4 { b[60 + i] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i))) }
        writeBytes(b, last)
        let sink = try run(dir)
        let d = try #require(sink.damage.first)
        #expect(d.code == "unsupportedVersion" && d.offset == 0 && d.bytes == UInt64(b.count))
        #expect(sink.summary?.status == .damaged)
        #expect(sink.records.allSatisfy { $0.file != "j/" + segmentNames(dir).last! })
        _ = _t
    }

    @Test("a repeated frame is damage and its records are shown once")
    func repeatedFrame() throws {
        let (_t, dir) = try copy()
        let first = dir + "/" + segmentNames(dir)[0]
        let clean = try collect(fixtureOptions(dir, display: "j"))
        let f = clean.frames[3]
        var b = readBytes(first)
        let frame = Array(b[Int(f.offset)..<(Int(f.offset) + f.header.frameBytes)])
        b.insert(contentsOf: frame, at: Int(f.offset) + f.header.frameBytes)
        writeBytes(b, first)
        let sink = try run(dir)
        #expect(sink.summary?.status == .damaged)
        #expect(sink.damage.contains { $0.offset == f.offset + UInt64(f.header.frameBytes) && $0.code == "sequenceGap" })
        #expect(sink.records.map(\.sequence) == Array(1...600))
        _ = _t
    }

    @Test("damage in a sealed segment's tail is damage, not a torn tail")
    func sealedTail() throws {
        let (_t, dir) = try copy()
        let first = dir + "/" + segmentNames(dir)[0]
        var b = readBytes(first)
        b.removeLast(5)
        writeBytes(b, first)
        let sink = try run(dir)
        #expect(sink.summary?.status == .damaged)
        #expect(sink.summary?.tornTail == nil)
        #expect(sink.damage.contains { $0.kind == .damaged && $0.reason.contains("not the last") })
        _ = _t
    }

    @Test("encrypted journal: without a key every frame is still checked; a wrong key is reported per frame, not as damage")
    func encryptedKeys() throws {
        let dir = journalFixtures + "/valid-encrypted"
        let noKey = try collect(fixtureOptions(dir, display: "e", key: false))
        #expect(noKey.summary?.status == .clean && noKey.records.isEmpty)
        #expect(noKey.frames.count == noKey.summary?.frames && noKey.frames.allSatisfy { $0.undecoded?.code == "missingKey" })

        var wrongID = fixtureOptions(dir, display: "e", key: false)
        wrongID.keys.add(JournalKey(id: 2, bytes: [UInt8](repeating: 1, count: 32)), source: "test")
        let w = try collect(wrongID)
        #expect(w.summary?.status == .clean && w.records.isEmpty && w.frames.allSatisfy { $0.undecoded?.code == "wrongKey" })

        var wrongBytes = fixtureOptions(dir, display: "e", key: false)
        wrongBytes.keys.add(JournalKey(id: 1, bytes: [UInt8](repeating: 9, count: 32)), source: "test")
        let a = try collect(wrongBytes)
        #expect(a.summary?.status == .clean && a.records.isEmpty && a.frames.allSatisfy { $0.undecoded?.code == "authenticationFailed" })

        let ok = try collect(fixtureOptions(dir, display: "e"))
        #expect(ok.records.map(\.sequence) == Array(1...600))
        #expect(ok.records.allSatisfy { $0.bytes == Self.fixtureRecord($0.sequence) })
    }

    @Test("a damaged encrypted journal is damaged with or without the key")
    func encryptedDamage() throws {
        let (_t, dir) = try copy("valid-encrypted")
        let first = dir + "/" + segmentNames(dir)[0]
        var b = readBytes(first)
        b[300] ^= 0x04
        writeBytes(b, first)
        for key in [true, false] {
            var o = fixtureOptions(dir, display: "e")
            if !key { o = fixtureOptions(dir, display: "e", key: false) }
            let s = try collect(o)
            #expect(s.summary?.status == .damaged)
            #expect(s.damage.contains { $0.file == "e/" + segmentNames(dir)[0] && $0.offset <= 300 })
        }
        _ = _t
    }

    @Test("--raw shows the bytes of a damaged range")
    func rawDamage() throws {
        let (_t, dir) = try copy()
        let first = dir + "/" + segmentNames(dir)[0]
        var b = readBytes(first)
        b[200] ^= 0x01
        writeBytes(b, first)
        var o = fixtureOptions(dir, display: "j")
        o.raw = true
        let (text, summary) = try dumpText(o)
        #expect(summary.status == .damaged)
        let lines = text.split(separator: "\n")
        let i = try #require(lines.firstIndex { $0.contains("DAMAGED") })
        #expect(lines[i + 1].hasPrefix("    000000: "))
        _ = _t
    }
}

@Suite("raw hex never shows a payment code")
struct MaskedHexTests {
    @Test("runs of packed decimal bytes (a payment code's storage) are masked; other bytes are not")
    func masking() {
        // "13 45 67 89 01 23 45 67 89" as packed decimal, between non-decimal bytes.
        let bytes: [UInt8] = [0xAB, 0x13, 0x45, 0x67, 0x89, 0x01, 0x23, 0x45, 0x67, 0x89, 0xCD, 0x12, 0x34]
        let hex = Render.maskedHex(bytes)
        #expect(hex == "ab" + String(repeating: "**", count: 9) + "cd1234")
        #expect(!hex.contains("1345678901"))
        #expect(Render.maskedHex([0x12, 0x34, 0x56, 0x78, 0x90, 0x12]) == "123456789012", "six decimal bytes are not a payment code")
    }
}
