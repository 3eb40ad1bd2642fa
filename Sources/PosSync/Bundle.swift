import Crypto
import PosJournal
import PosLedger

/// A courier's bundle: a terminal's journal frames that central lacks, in one
/// file (sync-protocol.md, "Bundles"). Frames are as stored, so encrypted.
///
///     0   8  magic "PSBUNDLE"
///     8   2  bundle format version (1)
///    10  16  central id
///    26   4  terminal replica id
///    30   4  compression dictionary id of the frames
///    34   4  key id of the frames
///    38   8  first sequence number
///    46   8  last sequence number
///    54   4  frame count
///    58  ..  frames, back to back (each a whole journal frame)
///   end-32 32 SHA-256 of every byte before it
public struct Bundle: Sendable, Equatable {
    public static let magic = Array("PSBUNDLE".utf8)
    public static let version: UInt16 = 1
    public static let headerBytes = 58
    public static let checksumBytes = 32

    public var central: CentralID
    public var terminal: ReplicaId
    public var dictionaryID: UInt32
    public var keyID: UInt32
    public var firstSequence: UInt64
    public var lastSequence: UInt64
    public var frames: [[UInt8]]

    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: Self.headerBytes + frames.reduce(0) { $0 + $1.count } + 32)
        w.writeBytes(Self.magic)
        w.writeBytes(le(Self.version))
        w.writeBytes(central.bytes)
        w.writeBytes(le(terminal.rawValue))
        w.writeBytes(le(dictionaryID))
        w.writeBytes(le(keyID))
        w.writeUInt64LE(firstSequence)
        w.writeUInt64LE(lastSequence)
        w.writeBytes(le(UInt32(frames.count)))
        for f in frames { w.writeBytes(f) }
        var bytes = w.bytes
        bytes += Array(SHA256.hash(data: bytes))
        return bytes
    }

    /// Checks the whole file before anything in it is used; errors name the offset.
    public static func decode(_ bytes: [UInt8], name: String) throws(SyncError) -> Bundle {
        guard bytes.count >= headerBytes + checksumBytes else {
            throw SyncError(.malformed, "bundle is \(bytes.count) bytes, shorter than its header and checksum (\(headerBytes + checksumBytes)): truncated", location: "\(name) offset 0")
        }
        guard Array(bytes[0..<8]) == magic else {
            throw SyncError(.malformed, "not a PosSync bundle (magic \(hexEncode(bytes[0..<8])))", location: "\(name) offset 0")
        }
        let body = bytes[0..<(bytes.count - checksumBytes)]
        guard Array(SHA256.hash(data: Array(body))) == Array(bytes[(bytes.count - checksumBytes)...]) else {
            throw SyncError(.checksum, "SHA-256 mismatch: the bundle is truncated or damaged; nothing applied", location: "\(name) offset \(bytes.count - checksumBytes)")
        }
        func u32(_ o: Int) -> UInt32 { bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: o, as: UInt32.self).littleEndian } }
        func u64(_ o: Int) -> UInt64 { bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: o, as: UInt64.self).littleEndian } }
        let version = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 8, as: UInt16.self).littleEndian }
        guard version == Self.version else {
            throw SyncError(.versionUnsupported, "bundle format version \(version); this build reads \(Self.version)", location: "\(name) offset 8")
        }
        let terminal: ReplicaId
        do { terminal = try ReplicaId.terminal(u32(26)) } catch { throw SyncError(error, location: "\(name) offset 26") }
        var frames: [[UInt8]] = []
        var at = headerBytes
        let end = bytes.count - checksumBytes
        let count = Int(u32(54))
        for i in 0..<count {
            guard at + JournalLimits.frameHeaderBytes <= end else {
                throw SyncError(.malformed, "frame \(i) of \(count): header runs past the end", location: "\(name) offset \(at)")
            }
            let stored = Int(bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at + 24, as: UInt32.self).littleEndian })
            let length = JournalLimits.frameHeaderBytes + stored
            guard stored <= JournalLimits.frameStoredBytesMax, at + length <= end else {
                throw SyncError(.malformed, "frame \(i) of \(count) claims \(length) bytes, \(end - at) remain", location: "\(name) offset \(at)")
            }
            let frame = Array(bytes[at..<(at + length)])
            do { _ = try Frames.parse(frame, file: name, offset: UInt64(at)) } catch { throw SyncError(error) }
            frames.append(frame)
            at += length
        }
        guard at == end else {
            throw SyncError(.malformed, "\(end - at) bytes after the last frame", location: "\(name) offset \(at)")
        }
        return Bundle(central: CentralID(bytes: Array(bytes[10..<26]))!, terminal: terminal, dictionaryID: u32(30), keyID: u32(34),
                      firstSequence: u64(38), lastSequence: u64(46), frames: frames)
    }
}

func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] {
    withUnsafeBytes(of: v.littleEndian) { Array($0) }
}
