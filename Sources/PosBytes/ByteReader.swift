// Reading bytes: the one reader every target uses for what it reads from disk
// or the network. A read never traps on short input: it returns the value or
// throws an error carrying the field being read and its byte offset.
//
// Integers are read with their byte order in the method's name (`readLE`,
// `readBE`); varints are unsigned LEB128 (7 bits a byte, low group first,
// high bit = "more"), at most 10 bytes for 64 bits.

/// Why bytes could not be read: the input ended (`truncated`) or a varint is
/// longer than allowed or overflows 64 bits (`malformed`).
public struct ByteReadError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, Equatable {
        case truncated, malformed
    }

    public let code: Code
    public let message: String
    /// The field being read.
    public let field: String
    /// Offset of the read's first byte, counted from the start of the reader's buffer.
    public let offset: Int

    public init(_ code: Code, _ message: String, field: String, offset: Int) {
        self.code = code
        self.message = message
        self.field = field
        self.offset = offset
    }

    public var description: String { "\(code.rawValue): \(message) [field \(field)] [offset \(offset)]" }
}

/// An error type a `ByteReader` throws: each layer reads with its own error
/// type (a ledger error for records, a plain `ByteReadError` elsewhere), made
/// from the `ByteReadError` that says what ran short where.
public protocol ByteReadFailure: Error {
    init(byteRead: ByteReadError)
}

extension ByteReadError: ByteReadFailure {
    public init(byteRead error: ByteReadError) { self = error }
}

/// Bounds-checked sequential reads over `bytes[offset..<end]`, throwing `Failure`.
public struct ByteReader<Failure: ByteReadFailure>: Sendable {
    @usableFromInline let bytes: [UInt8]
    /// End of the readable range (exclusive), from the start of the buffer.
    public let end: Int
    /// Offset of the next byte to read, from the start of the buffer.
    public var offset: Int { position }
    @usableFromInline var position: Int

    /// A reader over all of `bytes`.
    @inlinable
    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        position = 0
        end = bytes.count
    }

    /// A reader over `bytes[from..<to]` whose offsets count from the start of `bytes`.
    @inlinable
    public init(_ bytes: [UInt8], from: Int, to: Int? = nil) {
        let to = min(to ?? bytes.count, bytes.count)
        self.bytes = bytes
        position = max(0, min(from, to))
        end = to
    }

    public var isAtEnd: Bool { position >= end }
    public var remaining: Int { end - position }

    @usableFromInline
    func failure(_ code: ByteReadError.Code, _ message: String, field: () -> String, at: Int) -> Failure {
        Failure(byteRead: ByteReadError(code, message, field: field(), offset: at))
    }

    @inlinable
    public mutating func readByte(field: @autoclosure () -> String) throws(Failure) -> UInt8 {
        guard position < end else { throw failure(.truncated, "expected 1 byte, input ends", field: field, at: position) }
        defer { position += 1 }
        return bytes[position]
    }

    @inlinable
    public mutating func readBytes(_ count: Int, field: @autoclosure () -> String) throws(Failure) -> ArraySlice<UInt8> {
        guard count >= 0, count <= end - position else {
            throw failure(.truncated, "expected \(count) bytes, \(end - position) remain", field: field, at: position)
        }
        defer { position += count }
        return bytes[position..<(position + count)]
    }

    /// Moves past `count` bytes.
    @inlinable
    public mutating func skip(_ count: Int, field: @autoclosure () -> String) throws(Failure) {
        _ = try readBytes(count, field: field())
    }

    /// A little-endian integer of `T`'s width.
    @inlinable
    public mutating func readLE<T: FixedWidthInteger>(_ type: T.Type, field: @autoclosure () -> String) throws(Failure) -> T {
        try readInteger(type, bigEndian: false, field: field())
    }

    /// A big-endian integer of `T`'s width.
    @inlinable
    public mutating func readBE<T: FixedWidthInteger>(_ type: T.Type, field: @autoclosure () -> String) throws(Failure) -> T {
        try readInteger(type, bigEndian: true, field: field())
    }

    @inlinable
    mutating func readInteger<T: FixedWidthInteger>(_: T.Type, bigEndian: Bool, field: @autoclosure () -> String) throws(Failure) -> T {
        let size = MemoryLayout<T>.size
        guard size <= end - position else {
            throw failure(.truncated, "expected \(size) bytes, \(end - position) remain", field: field, at: position)
        }
        var v: T = 0
        for i in 0..<size { v |= T(truncatingIfNeeded: bytes[position + i]) << (8 * (bigEndian ? size - 1 - i : i)) }
        position += size
        return v
    }

    /// An unsigned LEB128 of at most `maxBytes` bytes (10 hold any 64-bit value).
    @inlinable
    public mutating func readVarint(field: @autoclosure () -> String, maxBytes: Int = 10) throws(Failure) -> UInt64 {
        let start = position
        var result: UInt64 = 0
        var shift: UInt64 = 0
        var count = 0
        while true {
            guard position < end else {
                throw failure(.truncated, "varint runs past the end of input", field: field, at: start)
            }
            let b = bytes[position]
            position += 1
            count += 1
            if shift == 63 && b > 1 {
                throw failure(.malformed, "varint overflows 64 bits", field: field, at: start)
            }
            result |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
            if count >= maxBytes || shift > 63 {
                throw failure(.malformed, "varint longer than \(maxBytes) bytes", field: field, at: start)
            }
        }
    }

    /// The little-endian integer at `at` (from the start of the buffer), without
    /// moving; nil when it does not lie within the readable range.
    @inlinable
    public func getLE<T: FixedWidthInteger>(_ type: T.Type, at: Int) -> T? {
        guard at >= 0, at <= end else { return nil }
        var r = ByteReader<ByteReadError>(bytes, from: at, to: end)
        return try? r.readLE(type, field: "")
    }

    /// The big-endian integer at `at`, without moving; nil when it does not lie within the readable range.
    @inlinable
    public func getBE<T: FixedWidthInteger>(_ type: T.Type, at: Int) -> T? {
        guard at >= 0, at <= end else { return nil }
        var r = ByteReader<ByteReadError>(bytes, from: at, to: end)
        return try? r.readBE(type, field: "")
    }
}
