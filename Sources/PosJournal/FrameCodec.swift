@preconcurrency import Crypto
import PosBytes

/// A 256-bit AES-GCM key for frame encryption, with the id stored in segment
/// headers so a reader can tell a wrong key from damage. Id 0 means "no key".
public struct JournalKey: @unchecked Sendable {  // SymmetricKey is immutable
    public let id: UInt32
    public let key: SymmetricKey

    public init(id: UInt32, key: SymmetricKey) {
        precondition(id != 0, "key id 0 is reserved for 'not encrypted'")
        precondition(key.bitCount == 256, "journal keys are 256-bit")
        self.id = id
        self.key = key
    }

    public init(id: UInt32, bytes: [UInt8]) {
        self.init(id: id, key: SymmetricKey(data: bytes))
    }
}

/// Turns a batch of records into one frame: length-prefixed record block,
/// deflated (when that is smaller), then sealed with AES-256-GCM under a
/// fresh random nonce (when the journal has a key).
final class FrameEncoder {
    /// nil: every block is stored (level 0: deflate is not tried).
    private let deflater: Deflater?
    let key: JournalKey?
    private var block = ByteWriter(capacity: 4096)

    /// `level`: zlib 1...9, or 0 to store every block without trying deflate.
    init(dictionary: CompressionDictionary?, key: JournalKey?, level: Int32) {
        precondition((0...9).contains(level), "compression level \(level)")
        deflater = level == 0 ? nil : Deflater(level: level, dictionary: dictionary)
        self.key = key
    }

    /// Record blocks shorter than this many bytes are stored without trying
    /// deflate. Measured on ledger events (BENCHMARKS.md): one ~50-byte event
    /// deflated alone, even with the preset dictionary, saves 0-1 bytes, while
    /// resetting the compressor and loading the dictionary costs ~5 µs of a
    /// durable append whose floor is a ~140 µs fdatasync.
    static let deflateBlockBytesMin = 96

    /// Bytes a record adds to the record block (length prefix included).
    static func blockBytes(of record: [UInt8]) -> Int {
        ByteWriter.varintSize(UInt64(record.count)) + record.count
    }

    func encode(_ records: ArraySlice<[UInt8]>, firstSequence: UInt64, previousChecksum: UInt32) -> (bytes: [UInt8], header: FrameHeader) {
        precondition(!records.isEmpty && records.count <= JournalLimits.frameRecordsMax)
        block.removeAll()
        for r in records {
            block.writeVarint(UInt64(r.count))
            block.writeBytes(r)
        }
        return encode(block: block.bytes, recordCount: records.count, firstSequence: firstSequence, previousChecksum: previousChecksum)
    }

    /// A frame of a record block already built (`recordCount` records, each its varint length then its bytes).
    func encode(block: [UInt8], recordCount: Int, firstSequence: UInt64, previousChecksum: UInt32) -> (bytes: [UInt8], header: FrameHeader) {
        precondition(recordCount >= 1 && recordCount <= JournalLimits.frameRecordsMax)
        precondition(block.count <= JournalLimits.frameRecordBytesMax)
        var flags: FrameFlags = []
        var payload: [UInt8]
        if block.count >= Self.deflateBlockBytesMin, let deflated = deflater?.compress(block) {
            flags.insert(.deflated)
            payload = deflated
        } else {
            payload = block
        }
        var header = FrameHeader(
            flags: flags, firstSequence: firstSequence, recordCount: UInt32(recordCount),
            blockLength: UInt32(block.count), storedLength: 0, previousChecksum: previousChecksum,
            payloadChecksum: 0, checksum: 0)
        if let key {
            header.flags.insert(.encrypted)
            header.storedLength = UInt32(payload.count + JournalLimits.nonceBytes + JournalLimits.tagBytes)
            let aad = header.associatedData()
            // A fresh random 96-bit nonce per frame: never derived from the
            // sequence number, so rewriting the same sequence numbers after a
            // torn tail is cut never repeats a nonce.
            let sealed = try! AES.GCM.seal(payload, using: key.key, nonce: AES.GCM.Nonce(), authenticating: aad)
            payload = Array(sealed.combined!)
        } else {
            header.storedLength = UInt32(payload.count)
        }
        var bytes = header.seal(payload: payload)
        bytes += payload
        return (bytes, header)
    }
}

/// Opens frames: checks the stored-payload checksum, authenticates and
/// decrypts, inflates with the segment's dictionary, splits the records.
public final class FrameDecoder {
    private var inflaters: [UInt32: Inflater] = [:]
    private let dictionaries: [UInt32: CompressionDictionary]
    private let key: JournalKey?

    public init(dictionaries: [CompressionDictionary], key: JournalKey?) {
        var d: [UInt32: CompressionDictionary] = [:]
        for dict in dictionaries { d[dict.id] = dict }
        self.dictionaries = d
        self.key = key
    }

    private func inflater(for id: UInt32, file: String) throws(JournalError) -> Inflater {
        if let i = inflaters[id] { return i }
        var dict: CompressionDictionary? = nil
        if id != 0 {
            guard let d = dictionaries[id] else {
                throw JournalError(.unknownDictionary, "segment uses compression dictionary \(id), which was not supplied (known: \(dictionaries.keys.sorted()))", file: file, offset: 40)
            }
            dict = d
        }
        let i = Inflater(dictionary: dict)
        inflaters[id] = i
        return i
    }

    /// Checks the payload checksum only (no key needed).
    public static func verifyPayload(_ header: FrameHeader, _ payload: UnsafeRawBufferPointer) -> Bool {
        CRC32C.checksum(payload) == header.payloadChecksum
    }

    /// Decodes the records of one frame. `offset` is the frame's offset in `file`.
    public func records(_ header: FrameHeader, payload: UnsafeRawBufferPointer, segment: SegmentHeader,
                        file: String, offset: UInt64) throws(JournalError) -> [[UInt8]] {
        let block = try recordBlock(header, payload: payload, segment: segment, file: file, offset: offset)
        return try Self.splitRecords(block, header: header) { (code, message) in
            JournalError(code, message, file: file, offset: offset, sequence: header.firstSequence)
        }
    }

    /// The records of one frame as its record block and each record's byte range in it, checked as
    /// `records` checks them: for a reader that takes the records in place, without an array each.
    public func recordRanges(_ header: FrameHeader, payload: UnsafeRawBufferPointer, segment: SegmentHeader,
                             file: String, offset: UInt64) throws(JournalError) -> (block: [UInt8], ranges: [Range<Int>]) {
        let block = try recordBlock(header, payload: payload, segment: segment, file: file, offset: offset)
        var ranges: [Range<Int>] = []
        ranges.reserveCapacity(Int(header.recordCount))
        let count = try block.withUnsafeBufferPointer { (b) throws(JournalError) in
            try Self.forEachRecord(b, fail: { (code, message) in
                JournalError(code, message, file: file, offset: offset, sequence: header.firstSequence)
            }) { ranges.append($0) }
        }
        guard count == Int(header.recordCount) else {
            throw JournalError(.badFrameHeader, "record block holds \(count) records, header states \(header.recordCount)",
                               file: file, offset: offset, sequence: header.firstSequence)
        }
        return (block, ranges)
    }

    /// A frame's record block: payload checksum checked, authenticated and decrypted, inflated.
    private func recordBlock(_ header: FrameHeader, payload: UnsafeRawBufferPointer, segment: SegmentHeader,
                             file: String, offset: UInt64) throws(JournalError) -> [UInt8] {
        func fail(_ code: JournalError.Code, _ message: String) -> JournalError {
            JournalError(code, message, file: file, offset: offset, sequence: header.firstSequence)
        }
        guard payload.count == Int(header.storedLength) else {
            throw fail(.truncated, "frame payload is \(payload.count) bytes, header states \(header.storedLength)")
        }
        guard FrameDecoder.verifyPayload(header, payload) else {
            throw fail(.payloadChecksum, "frame payload checksum mismatch: header states \(Hex.word(header.payloadChecksum)), computed \(Hex.word(CRC32C.checksum(payload)))")
        }
        var plain: [UInt8] = []
        let body = payload
        if header.flags.contains(.encrypted) {
            guard segment.keyID != 0 else {
                throw fail(.badFrameHeader, "frame is marked encrypted but its segment header has no key id")
            }
            guard let key else {
                throw fail(.missingKey, "frame seq \(header.firstSequence)...\(header.lastSequence) is encrypted with key id \(segment.keyID) and no key was supplied")
            }
            guard key.id == segment.keyID else {
                throw fail(.wrongKey, "frame seq \(header.firstSequence)...\(header.lastSequence) is encrypted with key id \(segment.keyID), the supplied key has id \(key.id)")
            }
            guard payload.count >= JournalLimits.nonceBytes + JournalLimits.tagBytes,
                  let box = try? AES.GCM.SealedBox(combined: payload),
                  let opened = try? AES.GCM.open(box, using: key.key, authenticating: header.associatedData())
            else {
                throw fail(.authenticationFailed, "frame seq \(header.firstSequence)...\(header.lastSequence) failed AES-GCM authentication: the key (id \(key.id)) is not the one it was written with, or the frame was altered")
            }
            plain = Array(opened)
        } else if segment.keyID != 0 {
            throw fail(.badFrameHeader, "segment is encrypted (key id \(segment.keyID)) but this frame is not: refused, a plaintext frame cannot be authenticated")
        }
        var block: [UInt8]
        let decoded: [UInt8]? = header.flags.contains(.encrypted) ? plain : nil
        if header.flags.contains(.deflated) {
            let inflater = try inflater(for: segment.dictionaryID, file: file)
            let result: Result<[UInt8], Inflater.Failure>
            if let decoded {
                result = decoded.withUnsafeBytes { inflater.decompress($0, statedLength: Int(header.blockLength)) }
            } else {
                result = inflater.decompress(body, statedLength: Int(header.blockLength))
            }
            switch result {
            case .success(let b): block = b
            case .failure(.longer(let stated)):
                throw fail(.lengthMismatch, "inflated record block exceeds the stated \(stated) bytes: refused (decompression bomb or damage)")
            case .failure(.shorter(let stated, let actual)):
                throw fail(.lengthMismatch, "inflated record block is \(actual) bytes, header states \(stated)")
            case .failure(.corrupt(let reason)):
                throw fail(.decompression, reason)
            }
        } else {
            block = decoded ?? Array(body)
            guard block.count == Int(header.blockLength) else {
                throw fail(.lengthMismatch, "stored record block is \(block.count) bytes, header states \(header.blockLength)")
            }
        }
        return block
    }

    static func splitRecords(_ block: [UInt8], header: FrameHeader,
                             fail: (JournalError.Code, String) -> JournalError) throws(JournalError) -> [[UInt8]] {
        var records: [[UInt8]] = []
        records.reserveCapacity(Int(header.recordCount))
        // Read in place (a frame holds up to frameRecordsMax records: this runs for every record read).
        try block.withUnsafeBufferPointer { (b) throws(JournalError) in
            try forEachRecord(b, fail: fail) { range in records.append(Array(UnsafeBufferPointer(rebasing: b[range]))) }
        }
        guard records.count == Int(header.recordCount) else {
            throw fail(.badFrameHeader, "record block holds \(records.count) records, header states \(header.recordCount)")
        }
        return records
    }

    /// How many records a record block holds, each checked to be a whole length prefix and record within the block.
    static func recordCount(inBlock block: [UInt8], fail: (JournalError.Code, String) -> JournalError) throws(JournalError) -> Int {
        try block.withUnsafeBufferPointer { (b) throws(JournalError) in try forEachRecord(b, fail: fail) { _ in } }
    }

    /// Walks a record block (each record its length, unsigned LEB128, then its bytes): `body` is given each
    /// record's byte range in the block, in order. Returns how many there are.
    @inline(__always)
    static func forEachRecord(_ b: UnsafeBufferPointer<UInt8>, fail: (JournalError.Code, String) -> JournalError,
                              _ body: (Range<Int>) -> Void) throws(JournalError) -> Int {
        var count = 0
        var at = 0
        while at < b.count {
            let start = at
            // A record's length prefix is at most 3 bytes: recordBytesMax is 2^20.
            var length = 0
            var shift = 0
            var complete = false
            while at < b.count && shift < 21 {
                let byte = b[at]
                at += 1
                length |= Int(byte & 0x7F) << shift
                shift += 7
                if byte & 0x80 == 0 { complete = true; break }
            }
            guard complete, length <= JournalLimits.recordBytesMax else {
                throw fail(.badFrameHeader, "record \(count + 1) of the frame: bad length prefix at block offset \(start)")
            }
            guard length <= b.count - at else {
                throw fail(.truncated, "record \(count + 1) of the frame: length \(length) runs past the record block (block offset \(start))")
            }
            body(at..<(at + length))
            at += length
            count += 1
        }
        return count
    }
}
