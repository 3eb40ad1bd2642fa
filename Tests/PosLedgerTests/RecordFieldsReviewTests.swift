import Foundation
import PosBytes
import PosTestSupport
import Testing
@testable import PosLedger

/// Review of #19's "decode without building field names" (a31d1a3): `ByteReader` takes a field's name
/// as an autoclosure and `Fields` keeps values and offsets in one array of slots. Held against a copy
/// of the code before it (main a6e7421: names built eagerly, values and offsets in two arrays), on
/// valid records corrupted at random and read as fields from any offset: the same fields, offsets and
/// values, or the same error (code, message, field, offset).
@Suite("review: record fields read as before the autoclosure and slot change")
struct RecordFieldsReviewTests {
    /// a6e7421's `ByteReader` reads the fields use, the field's name built before each read.
    struct EagerReader {
        let bytes: [UInt8]
        let end: Int
        var position: Int
        init(_ bytes: [UInt8], from: Int, to: Int) {
            self.bytes = bytes
            end = min(to, bytes.count)
            position = max(0, min(from, end))
        }
        var isAtEnd: Bool { position >= end }
        var remaining: Int { end - position }
        var offset: Int { position }

        func failure(_ code: ByteReadError.Code, _ message: String, field: String, at: Int) -> LedgerError {
            LedgerError(byteRead: ByteReadError(code, message, field: field, offset: at))
        }

        mutating func readBytes(_ count: Int, field: String) throws(LedgerError) -> ArraySlice<UInt8> {
            guard count >= 0, count <= end - position else {
                throw failure(.truncated, "expected \(count) bytes, \(end - position) remain", field: field, at: position)
            }
            defer { position += count }
            return bytes[position..<(position + count)]
        }

        mutating func readLE(field: String) throws(LedgerError) -> UInt64 {
            let size = 8
            guard size <= end - position else {
                throw failure(.truncated, "expected \(size) bytes, \(end - position) remain", field: field, at: position)
            }
            var v: UInt64 = 0
            for i in 0..<size { v |= UInt64(bytes[position + i]) << (8 * i) }
            position += size
            return v
        }

        mutating func readVarint(field: String, maxBytes: Int = 10) throws(LedgerError) -> UInt64 {
            let start = position
            var result: UInt64 = 0
            var shift: UInt64 = 0
            var count = 0
            while true {
                guard position < end else { throw failure(.truncated, "varint runs past the end of input", field: field, at: start) }
                let b = bytes[position]
                position += 1
                count += 1
                if shift == 63 && b > 1 { throw failure(.malformed, "varint overflows 64 bits", field: field, at: start) }
                result |= UInt64(b & 0x7F) << shift
                if b & 0x80 == 0 { return result }
                shift += 7
                if count >= maxBytes || shift > 63 { throw failure(.malformed, "varint longer than \(maxBytes) bytes", field: field, at: start) }
            }
        }
    }

    /// a6e7421's `Fields.read`: values and offsets in two arrays.
    struct EagerFields {
        var values: [Fields.Value?]
        var offsets: [Int]
        let endOffset: Int

        static func read(_ r: inout EagerReader) throws(LedgerError) -> EagerFields {
            let max = Fields.fieldNumberMax
            var f = EagerFields(values: Array(repeating: nil, count: max + 1), offsets: Array(repeating: 0, count: max + 1), endOffset: r.end)
            while !r.isAtEnd {
                let at = r.offset
                let key = try r.readVarint(field: "fieldKey")
                let number = key >> 3
                let value: Fields.Value
                switch key & 7 {
                case 0: value = .varint(try r.readVarint(field: "field \(number)"))
                case 1: value = .fixed64(try r.readLE(field: "field \(number)"))
                case 2:
                    let length = try r.readVarint(field: "field \(number)")
                    guard length <= UInt64(r.remaining) else {
                        throw LedgerError(.truncated, "field \(number) declares \(length) bytes, \(r.remaining) remain", field: "field \(number)", byteOffset: at)
                    }
                    let start = r.offset
                    _ = try r.readBytes(Int(length), field: "field \(number)")
                    value = .bytes(start..<(start + Int(length)))
                default:
                    throw LedgerError(.malformed, "wire type \(key & 7) unknown: cannot skip", field: "field \(number)", byteOffset: at)
                }
                guard number >= 1 else { throw LedgerError(.malformed, "field number 0 is reserved", field: "fieldKey", byteOffset: at) }
                guard number <= UInt64(max) else { continue }
                guard f.values[Int(number)] == nil else {
                    throw LedgerError(.fieldDuplicated, "field \(number) appears twice", field: "field \(number)", byteOffset: at)
                }
                f.values[Int(number)] = value
                f.offsets[Int(number)] = at
            }
            return f
        }

        func error(_ code: LedgerError.Code, _ message: String, _ f: some RecordField) -> LedgerError {
            LedgerError(code, message, field: f.name, byteOffset: values[f.number] == nil ? endOffset : offsets[f.number])
        }
    }

    struct Numbered: RecordField {
        let number: Int
        var name: String { "field#\(number)" }
    }

    static func text(_ v: Fields.Value?) -> String {
        switch v {
        case nil: "nil"
        case .varint(let x)?: "varint \(x)"
        case .fixed64(let x)?: "fixed64 \(x)"
        case .bytes(let r)?: "bytes \(r)"
        }
    }

    /// A valid record of a random kind, then 0 to 3 changes: bytes replaced, the end cut, bytes put in,
    /// a stretch repeated (a field appearing twice).
    static func corrupted(_ rng: inout SplitMix64) -> [UInt8] {
        var r = SeededRandom(seed: rng.next())
        let kind = EventKind.allCases[Int.random(in: 0..<EventKind.allCases.count, using: &rng)]
        var bytes = RecordCodec.encode(Gen.event(&r, kind: kind))
        for _ in 0..<Int.random(in: 0...3, using: &rng) where !bytes.isEmpty {
            let i = Int.random(in: 0..<bytes.count, using: &rng)
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: bytes[i] = UInt8.random(in: 0...255, using: &rng)
            case 1: bytes.removeLast(bytes.count - i)
            case 2: bytes.insert(contentsOf: (0..<Int.random(in: 1...4, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }, at: i)
            default:
                let j = Int.random(in: i...min(bytes.count, i + 12), using: &rng)
                bytes.insert(contentsOf: bytes[i..<j], at: j)
            }
        }
        return bytes
    }

    @Test("corrupted records read as fields from any offset: the same fields, offsets and values, or the same error (code, message, field, offset) as a6e7421's reader")
    func sameFieldsOrSameError() throws {
        let seed = TestSeed("record fields vs a6e7421", replays: "the records, their corruption and the offsets read from")
        var rng = SplitMix64(seed: seed.value)
        var errors = 0, reads = 0
        for c in 0..<testCount("POSSYNC_PROPERTY_CASES", default: 20_000) {
            let bytes = Self.corrupted(&rng)
            for from in Set([0] + (0..<3).map { _ in bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &rng) }) {
                var now = ByteReader<LedgerError>(bytes, from: from, to: bytes.count)
                var before = EagerReader(bytes, from: from, to: bytes.count)
                let a: Result<Fields, LedgerError>, b: Result<EagerFields, LedgerError>
                do throws(LedgerError) { a = .success(try Fields.read(&now)) } catch { a = .failure(error) }
                do throws(LedgerError) { b = .success(try EagerFields.read(&before)) } catch { b = .failure(error) }
                reads += 1
                switch (a, b) {
                case (.failure(let x), .failure(let y)):
                    errors += 1
                    #expect(x == y, "\(seed.replay): case \(c) from \(from): error \(x), before \(y); record \(bytes)")
                case (.success(let x), .success(let y)):
                    #expect(now.offset == before.offset, "\(seed.replay): case \(c) from \(from)")
                    for n in 1...Fields.fieldNumberMax {
                        let f = Numbered(number: n)
                        #expect(Self.text(x.slots[n].value) == Self.text(y.values[n]), "\(seed.replay): case \(c) from \(from) field \(n)")
                        if y.values[n] != nil { #expect(x.slots[n].offset == y.offsets[n], "\(seed.replay): case \(c) from \(from) field \(n)") }
                        #expect(x.error(.malformed, "m", f) == y.error(.malformed, "m", f), "\(seed.replay): case \(c) from \(from) field \(n)")
                    }
                default:
                    Issue.record("\(seed.replay): case \(c) from \(from): read \(a), before \(b); record \(bytes)")
                }
            }
        }
        // The corruption must reach the error paths, or the comparison proves little.
        #expect(errors > reads / 10, "\(seed.replay): only \(errors) of \(reads) reads failed")
    }
}
