import Foundation
import PosBytes
import Testing
@testable import PosLedger

@Suite("Record codec")
struct CodecTests {
    @Test("every event type round-trips with random field values (seeded)")
    func roundTrip() throws {
        let seed = Property.seed(10)
        var r = SeededRandom(seed: seed)
        let count = Property.cases(default: 10_000)
        for i in 0..<count {
            let kind = EventKind.allCases[i % EventKind.allCases.count]
            let event = Gen.event(&r, kind: kind)
            let bytes = RecordCodec.encode(event)
            do {
                let back = try RecordCodec.decode(bytes, context: Sample.recordContext)
                #expect(back == event, "seed \(seed) case \(i) kind \(kind): round trip differs")
                #expect(RecordCodec.encode(back) == bytes, "seed \(seed) case \(i): re-encoding differs")
            } catch {
                Issue.record("seed \(seed) case \(i) kind \(kind): \(error)")
            }
        }
    }

    @Test("a record of an unknown type decodes as unknown with its header, and re-encodes identically")
    func unknownType() throws {
        let event = Sample.goldenEvents().first { $0.name == "unknown-type-200" }!.event
        let bytes = RecordCodec.encode(event)
        let back = try RecordCodec.decode(bytes)
        #expect(back.dot == event.dot)
        guard case .unknown(200, let fields) = back.body else {
            Issue.record("not decoded as unknown"); return
        }
        #expect(fields == [0x08, 0x2A, 0x12, 0x02, 0x68, 0x69])
        #expect(RecordCodec.encode(back) == bytes)
    }

    @Test("a record written by a future version with extra fields decodes")
    func futureFields() throws {
        for (name, event) in Sample.goldenEvents() where event.body.kind != nil {
            var bytes: [UInt8] = []
            // Field 15 varint, field 14 bytes, field 40 fixed64, field 1000 bytes: all unknown here.
            bytes += [15 << 3 | 0, 0x96, 0x01]
            bytes += [14 << 3 | 2, 3, 0x61, 0x62, 0x63]
            var w = ByteWriter()
            w.writeVarint(40 << 3 | 1); w.writeLE(0x0102_0304_0506_0708)
            w.writeVarint(1000 << 3 | 2); w.writeVarint(2); w.writeBytes([9, 9])
            bytes += w.bytes
            let back = try RecordCodec.decode(RecordCodecTesting.withExtraFields(RecordCodec.encode(event), bytes), context: Sample.recordContext)
            #expect(back == event, "\(name): extra fields changed the decoded event")
        }
    }

    @Test("10,000 seeded truncations and byte mutations give an error or a valid event, never a crash")
    func fuzz() {
        let seed = Property.seed(11)
        var r = SeededRandom(seed: seed)
        let count = Property.cases(default: 10_000)
        var errors = 0
        for i in 0..<count {
            let event = Gen.event(&r)
            var bytes = RecordCodec.encode(event)
            if i % 2 == 0 {
                bytes = Array(bytes.prefix(r.int(0...(bytes.count - 1))))
            } else {
                for _ in 0..<r.int(1...4) {
                    let at = r.int(0...(bytes.count - 1))
                    bytes[at] = r.chance(50) ? UInt8(r.int(0...255)) : bytes[at] ^ (1 << UInt8(r.int(0...7)))
                }
            }
            do {
                let decoded = try RecordCodec.decode(bytes, context: Sample.recordContext)
                // A mutation may give another valid record; it must then re-encode and decode stably.
                #expect(try RecordCodec.decode(RecordCodec.encode(decoded), context: Sample.recordContext) == decoded, "seed \(seed) case \(i)")
                #expect(i % 2 == 1, "seed \(seed) case \(i): a truncated record decoded")
            } catch {
                errors += 1
                if let offset = error.byteOffset {
                    #expect(offset >= 0 && offset <= bytes.count, "seed \(seed) case \(i): offset out of range")
                }
                #expect(error.field != nil, "seed \(seed) case \(i): error without a field: \(error)")
            }
        }
        #expect(errors > count / 2)
    }

    @Test("codec errors name the field and the byte offset")
    func errorContext() throws {
        let event = Sample.goldenEvents()[0].event
        let bytes = RecordCodec.encode(event)
        do {
            _ = try RecordCodec.decode(Array(bytes.prefix(5)))
            Issue.record("decoded a truncated record")
        } catch {
            #expect(error.code == .truncated)
            #expect(error.field == "hlc")
            #expect(error.byteOffset == 4)  // 1 version + 1 type + 1 replica + 1 seq
        }
        var future = bytes
        future[0] = 3  // version 2 exists now (sync-protocol.md, "Record versions")
        #expect(throws: LedgerError(.unsupportedVersion, "record version 3, this reader knows 1 and 2", field: "version",
                                    byteOffset: 0)) { try RecordCodec.decode(future) }
        do {
            _ = try RecordCodec.decode([1, 2, 1, 1] + [UInt8](repeating: 0, count: 8) + [0, 0])
            Issue.record("decoded a confirmation without its sale")
        } catch {
            #expect(error.code == .fieldMissing)
            #expect(error.field == "refReplica")
        }
    }

    @Test("version vectors encode compactly and reject malformed input")
    func versionVectorCodec() throws {
        let v = VersionVector([(Sample.t1, 5), (Sample.t3, 300), (.central, 1)])
        let bytes = v.encoded()
        #expect(bytes == [3, 0, 1, 1, 5, 2, 0xAC, 0x02])
        #expect(try VersionVector.decode(bytes) == v)
        #expect(throws: LedgerError.self) { try VersionVector.decode([2, 5, 1, 0, 1]) }  // not increasing
        #expect(throws: LedgerError.self) { try VersionVector.decode([1, 5, 0]) }  // seq 0
        #expect(throws: LedgerError.self) { try VersionVector.decode([0xFF, 0xFF, 0x03]) }  // too many
    }
}

enum RecordCodecTesting {
    /// Appends `extra` to a record's fields and fixes its fieldsLength, as a
    /// future writer adding fields would produce.
    static func withExtraFields(_ record: [UInt8], _ extra: [UInt8]) throws -> [UInt8] {
        let event = try RecordCodec.decode(record, context: Sample.recordContext)
        var header = ByteWriter()
        header.writeByte(record[0]); header.writeByte(record[1])
        header.writeVarint(UInt64(event.dot.replica.rawValue)); header.writeVarint(event.dot.seq)
        header.writeLE(event.hlc.rawValue)
        event.context.encode(into: &header)
        var fields = ByteWriter()
        RecordCodec.encodeFields(event.body, version: record[0], into: &fields)
        header.writeVarint(UInt64(fields.bytes.count + extra.count))
        return header.bytes + fields.bytes + extra
    }
}
