import PosBytes

/// The plain header of a terminal's checkpoint file (sync-protocol.md, "Terminal checkpoint and
/// compaction"): shared by the terminal that writes and reads it and by journal-dump, which shows it.
///
/// Versions 2 and 3 (34 bytes): magic, version, terminal, key id, frame count N, then where the root
/// index frame (frame N, the file's last) lies: its byte offset (u64) and length (u32). Version 3
/// differs from 2 only in its meta record (it adds the status counts). Version 1 files (22 bytes, no
/// root) are recognised, shown by journal-dump, and refused by the terminal.
public struct CheckpointHeader: Sendable, Equatable {
    public static let fileName = "checkpoint.psc"
    public static let magic: [UInt8] = Array("PSTCHKPT".utf8)
    /// The version this build writes (it reads `versionsRead`).
    public static let version: UInt16 = 3
    /// The versions this build reads: 2 (no status counts: `terminal status` reads it whole) and 3.
    public static let versionsRead: ClosedRange<UInt16> = 2...3
    /// Bytes before the first frame (versions 2 and 3).
    public static let bytes = 34
    /// Bytes of a version-1 header (magic, version, terminal, key id, frame count).
    public static let version1Bytes = 22

    public var version: UInt16
    public var terminal: UInt32
    public var keyID: UInt32
    public var frameCount: UInt32
    /// Version 2: the byte offset of the root index frame in the file (0 in a version-1 header).
    public var rootOffset: UInt64
    /// Version 2: the root index frame's length in bytes (0 in a version-1 header).
    public var rootLength: UInt32

    public init(version: UInt16 = CheckpointHeader.version, terminal: UInt32, keyID: UInt32, frameCount: UInt32,
                rootOffset: UInt64 = 0, rootLength: UInt32 = 0) {
        self.version = version
        self.terminal = terminal
        self.keyID = keyID
        self.frameCount = frameCount
        self.rootOffset = rootOffset
        self.rootLength = rootLength
    }

    /// The 34 header bytes (version 2 and 3 layout).
    public var encoded: [UInt8] {
        var w = ByteWriter(Self.magic)
        w.writeLE(version)
        w.writeLE(terminal)
        w.writeLE(keyID)
        w.writeLE(frameCount)
        w.writeLE(rootOffset)
        w.writeLE(rootLength)
        return w.bytes
    }

    /// The header at the start of `bytes`; nil when they are shorter than 22 bytes or the magic differs.
    /// The root fields are read when the version is 2 or above and the 34 bytes are there (else 0).
    public static func parse(_ bytes: [UInt8]) -> CheckpointHeader? {
        guard bytes.count >= Self.version1Bytes, Array(bytes[0..<8]) == magic else { return nil }
        var r = ByteReader<ByteReadError>(bytes, from: 8, to: Self.version1Bytes)
        guard let version = try? r.readLE(UInt16.self, field: "version"), let terminal = try? r.readLE(UInt32.self, field: "terminal"),
              let keyID = try? r.readLE(UInt32.self, field: "keyID"), let frames = try? r.readLE(UInt32.self, field: "frameCount") else { return nil }
        var h = CheckpointHeader(version: version, terminal: terminal, keyID: keyID, frameCount: frames)
        if version >= 2, bytes.count >= Self.bytes {
            var root = ByteReader<ByteReadError>(bytes, from: Self.version1Bytes, to: Self.bytes)
            h.rootOffset = (try? root.readLE(UInt64.self, field: "rootOffset")) ?? 0
            h.rootLength = (try? root.readLE(UInt32.self, field: "rootLength")) ?? 0
        }
        return h
    }
}
