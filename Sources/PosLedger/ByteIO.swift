// Bounds-checked byte reading and writing. Reads never trap on short input:
// every read returns a value or throws `.truncated` with the byte offset.
// Fixed-width integers are little-endian; varints are unsigned LEB128
// (7 bits per byte, low group first, high bit = "more"), at most 10 bytes.

public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 64) { bytes.reserveCapacity(capacity) }

    public mutating func writeByte(_ b: UInt8) { bytes.append(b) }
    public mutating func writeBytes<C: Collection>(_ b: C) where C.Element == UInt8 { bytes.append(contentsOf: b) }

    public mutating func writeVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    public mutating func writeUInt64LE(_ value: UInt64) {
        for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(i)))) }
    }

    public static func varintSize(_ value: UInt64) -> Int {
        var v = value, n = 1
        while v >= 0x80 { v >>= 7; n += 1 }
        return n
    }
}

public struct ByteReader: Sendable {
    let bytes: [UInt8]
    let end: Int
    /// Offset of the next byte to read, from the start of the buffer.
    public private(set) var offset: Int

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        self.offset = 0
        self.end = bytes.count
    }

    /// A reader over bytes[from..<to] that reports offsets relative to the whole buffer.
    init(_ bytes: [UInt8], from: Int, to: Int) {
        self.bytes = bytes
        self.offset = from
        self.end = to
    }

    public var isAtEnd: Bool { offset >= end }
    public var remaining: Int { end - offset }

    public mutating func readByte(field: String) throws(LedgerError) -> UInt8 {
        guard offset < end else {
            throw LedgerError(.truncated, "expected 1 byte, input ends", field: field, byteOffset: offset)
        }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func readBytes(_ count: Int, field: String) throws(LedgerError) -> ArraySlice<UInt8> {
        guard count >= 0, count <= end - offset else {
            throw LedgerError(.truncated, "expected \(count) bytes, \(end - offset) remain",
                              field: field, byteOffset: offset)
        }
        defer { offset += count }
        return bytes[offset..<(offset + count)]
    }

    public mutating func readVarint(field: String) throws(LedgerError) -> UInt64 {
        let start = offset
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < end else {
                throw LedgerError(.truncated, "varint runs past the end of input", field: field, byteOffset: start)
            }
            let b = bytes[offset]
            offset += 1
            if shift == 63 && b > 1 {
                throw LedgerError(.malformed, "varint overflows 64 bits", field: field, byteOffset: start)
            }
            result |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 {
                throw LedgerError(.malformed, "varint longer than 10 bytes", field: field, byteOffset: start)
            }
        }
    }

    public mutating func readUInt64LE(field: String) throws(LedgerError) -> UInt64 {
        let slice = try readBytes(8, field: field)
        var v: UInt64 = 0
        for (i, b) in slice.enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
        return v
    }
}
