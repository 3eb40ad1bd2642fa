import PosBytes

/// The plain header of a terminal's checkpoint file (sync-protocol.md, "Terminal checkpoint and
/// compaction"): shared by the terminal that writes and reads it and by journal-dump, which shows it.
public struct CheckpointHeader: Sendable, Equatable {
    public static let fileName = "checkpoint.psc"
    public static let magic: [UInt8] = Array("PSTCHKPT".utf8)
    public static let version: UInt16 = 1
    /// Bytes before the first frame.
    public static let bytes = 22

    public var version: UInt16
    public var terminal: UInt32
    public var keyID: UInt32
    public var frameCount: UInt32

    public init(version: UInt16 = CheckpointHeader.version, terminal: UInt32, keyID: UInt32, frameCount: UInt32) {
        self.version = version
        self.terminal = terminal
        self.keyID = keyID
        self.frameCount = frameCount
    }

    public var encoded: [UInt8] {
        var w = ByteWriter(Self.magic)
        w.writeLE(version)
        w.writeLE(terminal)
        w.writeLE(keyID)
        w.writeLE(frameCount)
        return w.bytes
    }

    /// The header at the start of `bytes`; nil when they are shorter than 22 bytes or the magic differs.
    public static func parse(_ bytes: [UInt8]) -> CheckpointHeader? {
        guard bytes.count >= Self.bytes, Array(bytes[0..<8]) == magic else { return nil }
        var r = ByteReader<ByteReadError>(bytes, from: 8, to: Self.bytes)
        guard let version = try? r.readLE(UInt16.self, field: "version"), let terminal = try? r.readLE(UInt32.self, field: "terminal"),
              let keyID = try? r.readLE(UInt32.self, field: "keyID"), let frames = try? r.readLE(UInt32.self, field: "frameCount") else { return nil }
        return CheckpointHeader(version: version, terminal: terminal, keyID: keyID, frameCount: frames)
    }
}
