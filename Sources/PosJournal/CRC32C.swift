import CCRC32C

/// CRC32C (Castagnoli): reflected polynomial 0x82F63B78, initial value and
/// final XOR 0xFFFFFFFF. CRC32C("123456789") == 0xE3069283.
///
/// Two implementations of the one function, chosen once per process: the
/// CPU's CRC32C instruction (x86-64 SSE4.2, through the CCRC32C shim) when
/// `cpuid` says it is there, else slicing-by-8 in portable Swift (eight
/// 256-entry tables let the loop consume eight bytes per iteration). Opening a
/// journal checks every frame's payload checksum, so its cost is mostly this
/// function's speed. Chosen over zlib's `crc32` because that one is the IEEE
/// polynomial, and CRC32C has better error detection for short messages (and
/// is what LevelDB, ext4 and iSCSI use).
public enum CRC32C {
    /// Whether `update` uses the CPU's instruction (decided once, at first use).
    public static let usesHardware: Bool = ccrc32c_hardware_available() != 0

    static let tables: [[UInt32]] = {
        var tables = [[UInt32]](repeating: [UInt32](repeating: 0, count: 256), count: 8)
        for i in 0..<256 {
            var crc = UInt32(i)
            for _ in 0..<8 {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1
            }
            tables[0][i] = crc
        }
        for i in 0..<256 {
            var crc = tables[0][i]
            for t in 1..<8 {
                crc = tables[0][Int(crc & 0xFF)] ^ (crc >> 8)
                tables[t][i] = crc
            }
        }
        return tables
    }()

    /// Flattened copy of `tables` for the hot loop (one bounds-check-free base).
    private static let flat: [UInt32] = tables.flatMap { $0 }

    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        update(0, bytes)
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { update(0, $0) }
    }

    /// Continues a checksum: `update(checksum(a), b) == checksum(a + b)`.
    public static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        usesHardware ? hardwareUpdate(crc, bytes) : softwareUpdate(crc, bytes)
    }

    /// `update` through the CPU's instruction; only where `usesHardware`.
    static func hardwareUpdate(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        precondition(usesHardware, "CRC32C: this CPU has no CRC32C instruction")
        guard let base = bytes.baseAddress, bytes.count > 0 else { return crc }
        return ~ccrc32c_hardware_update(~crc, base, bytes.count)
    }

    /// `update` in portable Swift (slicing-by-8): the fallback, and the reference the tests hold the instruction to.
    static func softwareUpdate(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var c = ~crc
        var count = bytes.count
        guard var p = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return crc }
        flat.withUnsafeBufferPointer { t in
            let t = t.baseAddress!
            while count >= 8 {
                let lo = UInt32(p[0]) | UInt32(p[1]) << 8 | UInt32(p[2]) << 16 | UInt32(p[3]) << 24
                let hi = UInt32(p[4]) | UInt32(p[5]) << 8 | UInt32(p[6]) << 16 | UInt32(p[7]) << 24
                let x = c ^ lo
                c = t[7 * 256 + Int(x & 0xFF)] ^ t[6 * 256 + Int((x >> 8) & 0xFF)]
                    ^ t[5 * 256 + Int((x >> 16) & 0xFF)] ^ t[4 * 256 + Int(x >> 24)]
                    ^ t[3 * 256 + Int(hi & 0xFF)] ^ t[2 * 256 + Int((hi >> 8) & 0xFF)]
                    ^ t[1 * 256 + Int((hi >> 16) & 0xFF)] ^ t[Int(hi >> 24)]
                p += 8
                count -= 8
            }
            while count > 0 {
                c = t[Int((c ^ UInt32(p[0])) & 0xFF)] ^ (c >> 8)
                p += 1
                count -= 1
            }
        }
        return ~c
    }
}
