/// Little-endian integer reads and writes on byte arrays. Reads return nil on
/// short input instead of trapping.
extension Array where Element == UInt8 {
    @inline(__always)
    mutating func appendLE<T: FixedWidthInteger>(_ value: T) {
        var v = value.littleEndian
        Swift.withUnsafeBytes(of: &v) { append(contentsOf: $0) }
    }

    @inline(__always)
    func readLE<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T? {
        let size = MemoryLayout<T>.size
        guard offset >= 0, offset + size <= count else { return nil }
        var v: T = 0
        for i in 0..<size { v |= T(self[offset + i]) << (8 * i) }
        return v
    }

    /// Appends `value` as unsigned LEB128 (7 bits a byte, low group first).
    mutating func appendVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        append(UInt8(v))
    }
}

/// Reads an unsigned LEB128 of at most `maxBytes` bytes; nil when truncated or too long.
@inline(__always)
func readVarint(_ bytes: UnsafeRawBufferPointer, at offset: inout Int, maxBytes: Int = 10) -> UInt64? {
    var result: UInt64 = 0
    var shift: UInt64 = 0
    var i = 0
    while i < maxBytes {
        guard offset < bytes.count else { return nil }
        let b = bytes[offset]
        offset += 1
        if shift == 63 && b > 1 { return nil }
        result |= UInt64(b & 0x7F) << shift
        if b & 0x80 == 0 { return result }
        shift += 7
        i += 1
    }
    return nil
}
