// Writing bytes: the one writer, the mirror of `ByteReader`. Integers are
// written with their byte order in the method's name; varints are unsigned
// LEB128.

public struct ByteWriter: Sendable {
    /// What was written.
    public var bytes: [UInt8] { storage }
    @usableFromInline var storage: [UInt8] = []

    @inlinable
    public init(capacity: Int = 64) { storage.reserveCapacity(capacity) }

    /// A writer that goes on after `prefix`.
    @inlinable
    public init(_ prefix: [UInt8]) { storage = prefix }

    public var count: Int { storage.count }

    @inlinable
    public mutating func writeByte(_ b: UInt8) { storage.append(b) }

    @inlinable
    public mutating func writeBytes<C: Collection>(_ b: C) where C.Element == UInt8 { storage.append(contentsOf: b) }

    /// `value` little-endian, in `T`'s width.
    @inlinable
    public mutating func writeLE<T: FixedWidthInteger>(_ value: T) {
        // One append of the value's bytes in little-endian order (not a growth check per byte).
        withUnsafeBytes(of: value.littleEndian) { storage.append(contentsOf: $0) }
    }

    /// `value` big-endian, in `T`'s width.
    @inlinable
    public mutating func writeBE<T: FixedWidthInteger>(_ value: T) {
        // One append of the value's bytes in big-endian order (not a growth check per byte).
        withUnsafeBytes(of: value.bigEndian) { storage.append(contentsOf: $0) }
    }

    /// `value` as unsigned LEB128: 7 bits a byte, low group first.
    @inlinable
    public mutating func writeVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            storage.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        storage.append(UInt8(v))
    }

    /// Empties the writer, keeping its storage for the next use.
    @inlinable
    public mutating func removeAll() { storage.removeAll(keepingCapacity: true) }

    /// Bytes `writeVarint(value)` writes.
    @inlinable
    public static func varintSize(_ value: UInt64) -> Int {
        var v = value, n = 1
        while v >= 0x80 { v >>= 7; n += 1 }
        return n
    }

    /// `value` little-endian, as bytes.
    @inlinable
    public static func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        var w = ByteWriter(capacity: MemoryLayout<T>.size)
        w.writeLE(value)
        return w.storage
    }

    /// `value` big-endian, as bytes.
    @inlinable
    public static func be<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        var w = ByteWriter(capacity: MemoryLayout<T>.size)
        w.writeBE(value)
        return w.storage
    }
}
