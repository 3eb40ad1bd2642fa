/// Hexadecimal text of bytes and integers, for files that hold hex and for messages.
public enum Hex {
    @usableFromInline static let digits = Array("0123456789abcdef".utf8)

    /// Lower-case hex of `bytes`, two digits a byte, `separator` between bytes.
    public static func encode<S: Sequence>(_ bytes: S, separator: String = "") -> String where S.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.underestimatedCount * (2 + separator.utf8.count))
        let sep = Array(separator.utf8)
        var first = true
        for b in bytes {
            if !first { out += sep }
            first = false
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes hex digits spell (either case); nil when `text` is not an even number of hex digits.
    public static func decode(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 2 == 0 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 48...57: c - 48
            case 97...102: c - 87
            case 65...70: c - 55
            default: nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(chars.count / 2)
        var i = 0
        while i < chars.count {
            guard let h = nibble(chars[i]), let l = nibble(chars[i + 1]) else { return nil }
            out.append(h << 4 | l)
            i += 2
        }
        return out
    }

    /// "0x" and the value in upper-case hex, zero-padded to its width: `0xF7C35A1E` for a UInt32.
    public static func word<T: FixedWidthInteger & UnsignedInteger>(_ value: T) -> String {
        let s = String(value, radix: 16, uppercase: true)
        return "0x" + String(repeating: "0", count: max(0, 2 * MemoryLayout<T>.size - s.count)) + s
    }
}
