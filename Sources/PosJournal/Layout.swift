import PosBytes

/// Named bounds of the journal format, each with its unit.
public enum JournalLimits {
    /// Largest record the journal accepts, in bytes.
    public static let recordBytesMax = 1 << 20
    /// Largest record block (length-prefixed records, before compression) of one frame, in bytes.
    public static let frameRecordBytesMax = 4 << 20
    /// Largest stored payload of one frame, in bytes: the block stored uncompressed plus the AES-GCM overhead.
    public static let frameStoredBytesMax = frameRecordBytesMax + 64
    /// Most records in one frame.
    public static let frameRecordsMax = 65_535
    /// Default size at which a segment is sealed and the next one started, in bytes.
    public static let segmentBytesDefault = 4 << 20
    /// Bytes of a segment header.
    public static let segmentHeaderBytes = 64
    /// Bytes of a frame header.
    public static let frameHeaderBytes = 40
    /// AES-GCM nonce bytes and tag bytes added to an encrypted payload.
    public static let nonceBytes = 12
    public static let tagBytes = 16
    /// Distance between the reader start positions open keeps of a segment
    /// (`FramePosition`), in bytes of the segment: a reader from a sequence
    /// number walks at most this much of a segment before the frame holding it.
    public static let readerStartStrideBytes: UInt64 = 64 << 10
}

/// The format version this code writes, and the highest it reads.
public let journalFormatVersion: UInt16 = 1

/// "PSJOURNL": the first eight bytes of every segment file.
public let segmentMagic: [UInt8] = Array("PSJOURNL".utf8)
/// Frame sync marker, u32 little-endian (bytes on disk: 1E 5A C3 F7).
public let frameSyncMarker: UInt32 = 0xF7C3_5A1E
/// The sync marker as it is on disk: what a search for the next frame looks for.
let frameSyncMarkerBytes: [UInt8] = ByteWriter.le(frameSyncMarker)

/// A journal's identity: 16 bytes, random at creation, in every segment header.
public struct JournalID: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]
    public init?(bytes: [UInt8]) {
        guard bytes.count == 16 else { return nil }
        self.bytes = bytes
    }
    public static func random() -> JournalID {
        var g = SystemRandomNumberGenerator()
        return JournalID(bytes: (0..<16).map { _ in UInt8.random(in: 0...255, using: &g) })!
    }
    public var description: String { Hex.encode(bytes) }
}

extension String {
    func leftPadded(_ width: Int, with pad: Character = "0") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}

/// Segment header: 64 bytes at offset 0 of every segment file.
///
///     0  8  magic "PSJOURNL"
///     8  2  format version (1)
///    10  2  header length (64)
///    12  4  flags (0; reserved)
///    16 16  journal id
///    32  8  base sequence number (first record of the segment)
///    40  4  compression dictionary id (0: none)
///    44  4  encryption key id (0: frames are not encrypted)
///    48  4  chain seed: checksum of the last frame of the previous segment (0 for a journal's first)
///    52  8  reserved, zero
///    60  4  CRC32C of bytes 0..<60
public struct SegmentHeader: Equatable, Sendable {
    public var version: UInt16 = journalFormatVersion
    public var journalID: JournalID
    public var baseSequence: UInt64
    public var dictionaryID: UInt32
    public var keyID: UInt32
    public var chainSeed: UInt32

    public init(journalID: JournalID, baseSequence: UInt64, dictionaryID: UInt32, keyID: UInt32, chainSeed: UInt32) {
        self.journalID = journalID
        self.baseSequence = baseSequence
        self.dictionaryID = dictionaryID
        self.keyID = keyID
        self.chainSeed = chainSeed
    }

    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: JournalLimits.segmentHeaderBytes)
        w.writeBytes(segmentMagic)
        w.writeLE(version)
        w.writeLE(UInt16(JournalLimits.segmentHeaderBytes))
        w.writeLE(UInt32(0))
        w.writeBytes(journalID.bytes)
        w.writeLE(baseSequence)
        w.writeLE(dictionaryID)
        w.writeLE(keyID)
        w.writeLE(chainSeed)
        w.writeLE(UInt64(0))
        w.writeLE(CRC32C.checksum(w.bytes))
        return w.bytes
    }

    /// Decodes and checks a segment header; errors name the offset within the file.
    public static func decode(_ b: [UInt8], file: String) throws(JournalError) -> SegmentHeader {
        guard b.count >= JournalLimits.segmentHeaderBytes else {
            throw JournalError(.truncated, "segment header is \(b.count) bytes, expected \(JournalLimits.segmentHeaderBytes)", file: file, offset: 0)
        }
        guard Array(b[0..<8]) == segmentMagic else {
            throw JournalError(.badMagic, "expected segment magic \"PSJOURNL\", found \(Hex.encode(b[0..<8], separator: " "))", file: file, offset: 0)
        }
        // Every field is read first (the length was checked above), then judged in order.
        var r = ByteReader<ByteReadError>(b, from: 0, to: JournalLimits.segmentHeaderBytes)
        let fields: (version: UInt16, length: UInt16, flags: UInt32, id: [UInt8], base: UInt64, dictionary: UInt32, key: UInt32, chain: UInt32, stored: UInt32)
        do {
            try r.skip(segmentMagic.count, field: "magic")
            let version = try r.readLE(UInt16.self, field: "version")
            let length = try r.readLE(UInt16.self, field: "header length")
            let flags = try r.readLE(UInt32.self, field: "flags")
            let id = Array(try r.readBytes(16, field: "journal id"))
            let base = try r.readLE(UInt64.self, field: "base sequence")
            let dictionary = try r.readLE(UInt32.self, field: "dictionary id")
            let key = try r.readLE(UInt32.self, field: "key id")
            let chain = try r.readLE(UInt32.self, field: "chain seed")
            try r.skip(8, field: "reserved")
            let stored = try r.readLE(UInt32.self, field: "header checksum")
            fields = (version, length, flags, id, base, dictionary, key, chain, stored)
        } catch {
            throw JournalError(.truncated, "segment header: \(error.message)", file: file, offset: UInt64(error.offset))
        }
        let stored = fields.stored
        let computed = b.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<60])) }
        let version = fields.version
        // A newer format may lay out (and checksum) its header differently, so
        // the version is judged before the checksum.
        guard version <= journalFormatVersion else {
            let note = stored == computed ? "" : " (its header checksum does not verify under version \(journalFormatVersion) rules, so the field may also be damaged)"
            throw JournalError(.unsupportedVersion, "segment format version \(version); this build reads versions 1...\(journalFormatVersion)\(note)", file: file, offset: 8)
        }
        guard stored == computed else {
            throw JournalError(.headerChecksum, "segment header checksum mismatch: stored \(Hex.word(stored)), computed \(Hex.word(computed))", file: file, offset: 60)
        }
        guard version <= journalFormatVersion, version >= 1 else {
            throw JournalError(.unsupportedVersion, "segment format version \(version); this build reads versions 1...\(journalFormatVersion)", file: file, offset: 8)
        }
        let length = fields.length
        guard length == JournalLimits.segmentHeaderBytes, fields.flags == 0 else {
            throw JournalError(.badFrameHeader, "segment header length \(length) or flags not valid for version \(version)", file: file, offset: 10)
        }
        var h = SegmentHeader(
            journalID: JournalID(bytes: fields.id)!,
            baseSequence: fields.base,
            dictionaryID: fields.dictionary,
            keyID: fields.key,
            chainSeed: fields.chain)
        h.version = version
        guard h.baseSequence >= 1 else {
            throw JournalError(.badFrameHeader, "segment base sequence is 0; sequence numbers start at 1", file: file, offset: 32)
        }
        return h
    }
}

/// Frame flags (u16).
public struct FrameFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// The payload is a raw deflate stream (RFC 1951) of the record block.
    public static let deflated = FrameFlags(rawValue: 1 << 0)
    /// The payload is sealed with AES-256-GCM: nonce (12) || ciphertext || tag (16).
    public static let encrypted = FrameFlags(rawValue: 1 << 1)
    static let known: FrameFlags = [.deflated, .encrypted]
}

/// Frame header: 40 bytes, always in clear.
///
///     0  4  sync marker 0xF7C35A1E
///     4  2  flags
///     6  2  header length (40)
///     8  8  first sequence number
///    16  4  record count (>= 1)
///    20  4  record block length: bytes of the length-prefixed records before compression
///    24  4  stored length: payload bytes that follow this header
///    28  4  previous frame's checksum (the chain)
///    32  4  CRC32C of the stored payload
///    36  4  frame checksum: CRC32C of header bytes 0..<36
public struct FrameHeader: Equatable, Sendable {
    public var flags: FrameFlags
    public var firstSequence: UInt64
    public var recordCount: UInt32
    public var blockLength: UInt32
    public var storedLength: UInt32
    public var previousChecksum: UInt32
    public var payloadChecksum: UInt32
    /// CRC32C of header bytes 0..<36; it covers `payloadChecksum`, so it commits to the whole frame.
    public var checksum: UInt32

    public var lastSequence: UInt64 { firstSequence + UInt64(recordCount) - 1 }
    public var frameBytes: Int { JournalLimits.frameHeaderBytes + Int(storedLength) }

    /// The header bytes 0..<32: the AES-GCM associated data.
    func associatedData() -> [UInt8] {
        var w = ByteWriter(capacity: JournalLimits.frameHeaderBytes)
        w.writeLE(frameSyncMarker)
        w.writeLE(flags.rawValue)
        w.writeLE(UInt16(JournalLimits.frameHeaderBytes))
        w.writeLE(firstSequence)
        w.writeLE(recordCount)
        w.writeLE(blockLength)
        w.writeLE(storedLength)
        w.writeLE(previousChecksum)
        return w.bytes
    }

    /// Fills in both checksums from `payload` and returns the 40 header bytes.
    mutating func seal(payload: [UInt8]) -> [UInt8] {
        payloadChecksum = CRC32C.checksum(payload)
        var w = ByteWriter(associatedData())
        w.writeLE(payloadChecksum)
        checksum = CRC32C.checksum(w.bytes)
        w.writeLE(checksum)
        return w.bytes
    }

    /// Why a 40-byte window is not a valid frame header, or the header.
    enum Decoded {
        case header(FrameHeader)
        case invalid(JournalError.Code, String)
    }

    /// Decodes and checks the 40-byte frame header at `at` of `bytes`.
    static func decode(_ bytes: [UInt8], at: Int = 0) -> Decoded {
        // Every frame a scan or reader walks passes here: the fields are loaded in place (little-endian,
        // unaligned), not through a generic reader, after one bounds check.
        guard at >= 0, at <= bytes.count, bytes.count - at >= JournalLimits.frameHeaderBytes else {
            return .invalid(.truncated, "frame header cut short")
        }
        let (marker, flags, length, first, count, block, storedLength, previous, payload, stored) = bytes.withUnsafeBytes { raw in
            let h = UnsafeRawBufferPointer(rebasing: raw[at..<(at + JournalLimits.frameHeaderBytes)])
            func u16(_ o: Int) -> UInt16 { UInt16(littleEndian: h.loadUnaligned(fromByteOffset: o, as: UInt16.self)) }
            func u32(_ o: Int) -> UInt32 { UInt32(littleEndian: h.loadUnaligned(fromByteOffset: o, as: UInt32.self)) }
            return (u32(0), u16(4), u16(6), UInt64(littleEndian: h.loadUnaligned(fromByteOffset: 8, as: UInt64.self)), u32(16), u32(20), u32(24),
                    u32(28), u32(32), u32(36))
        }
        guard marker == frameSyncMarker else {
            return .invalid(.badFrameHeader, "expected frame sync marker \(Hex.word(frameSyncMarker)), found \(Hex.word(marker))")
        }
        let computed = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[at..<(at + 36)])) }
        guard stored == computed else {
            return .invalid(.headerChecksum, "frame header checksum mismatch: stored \(Hex.word(stored)), computed \(Hex.word(computed))")
        }
        let h = FrameHeader(
            flags: FrameFlags(rawValue: flags), firstSequence: first,
            recordCount: count, blockLength: block, storedLength: storedLength,
            previousChecksum: previous, payloadChecksum: payload, checksum: stored)
        if !FrameFlags.known.isSuperset(of: h.flags) {
            return .invalid(.unsupportedVersion, "frame flags \(Hex.word(UInt32(h.flags.rawValue))) include bits this version does not know")
        }
        if length != UInt16(JournalLimits.frameHeaderBytes) {
            return .invalid(.badFrameHeader, "frame header length \(length), expected \(JournalLimits.frameHeaderBytes)")
        }
        if h.recordCount == 0 || h.recordCount > UInt32(JournalLimits.frameRecordsMax) {
            return .invalid(.badFrameHeader, "record count \(h.recordCount) outside 1...\(JournalLimits.frameRecordsMax)")
        }
        if h.firstSequence == 0 || h.firstSequence > UInt64.max - UInt64(h.recordCount) {
            return .invalid(.badFrameHeader, "first sequence \(h.firstSequence) is not valid")
        }
        if h.blockLength > UInt32(JournalLimits.frameRecordBytesMax) {
            return .invalid(.badFrameHeader, "record block length \(h.blockLength) exceeds frameRecordBytesMax \(JournalLimits.frameRecordBytesMax)")
        }
        if h.storedLength > UInt32(JournalLimits.frameStoredBytesMax) {
            return .invalid(.badFrameHeader, "stored length \(h.storedLength) exceeds frameStoredBytesMax \(JournalLimits.frameStoredBytesMax)")
        }
        if h.blockLength < h.recordCount {
            return .invalid(.badFrameHeader, "record block length \(h.blockLength) too small for \(h.recordCount) records")
        }
        return .header(h)
    }
}

