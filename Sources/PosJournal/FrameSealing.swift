/// Frames outside a journal file: the sync protocol sends its batches (pushes,
/// pulls, bundles) as frames of the journal's format, records repacked into one
/// frame per batch (sync-protocol.md, "A session"). These are the public entry points.
public enum Frames {
    /// Parses and checks one whole frame (header checksum and fields, length,
    /// payload checksum); does not decrypt or inflate.
    public static func parse(_ bytes: [UInt8], file: String = "frame", offset: UInt64 = 0) throws(JournalError) -> FrameHeader {
        let h = try header(bytes, file: file, offset: offset)
        let ok = bytes.withUnsafeBytes { FrameDecoder.verifyPayload(h, UnsafeRawBufferPointer(rebasing: $0[JournalLimits.frameHeaderBytes...])) }
        guard ok else {
            throw JournalError(.payloadChecksum, "payload checksum mismatch in frame seq \(h.firstSequence)...\(h.lastSequence)", file: file, offset: offset, sequence: h.firstSequence)
        }
        return h
    }

    /// Checks a frame's header (checksum, fields, bounds) and that the bytes are
    /// exactly the frame it states; the payload is not read. Enough to learn a
    /// frame's sequence range and sizes before deciding to decode it.
    public static func header(_ bytes: [UInt8], file: String = "frame", offset: UInt64 = 0) throws(JournalError) -> FrameHeader {
        guard bytes.count >= JournalLimits.frameHeaderBytes else {
            throw JournalError(.truncated, "\(bytes.count) bytes, fewer than a \(JournalLimits.frameHeaderBytes)-byte frame header", file: file, offset: offset)
        }
        let decoded = FrameHeader.decode(bytes)
        switch decoded {
        case .invalid(let code, let message):
            throw JournalError(code, message, file: file, offset: offset)
        case .header(let h):
            guard bytes.count == h.frameBytes else {
                throw JournalError(.truncated, "frame seq \(h.firstSequence)...\(h.lastSequence) is \(bytes.count) bytes, its header states \(h.frameBytes)", file: file, offset: offset, sequence: h.firstSequence)
            }
            return h
        }
    }

    /// Parses, checks and decodes the records of one frame written under the
    /// given dictionary and key ids.
    public static func records(_ bytes: [UInt8], dictionaryID: UInt32, keyID: UInt32, decoder: FrameDecoder,
                               file: String = "frame", offset: UInt64 = 0) throws(JournalError) -> (header: FrameHeader, records: [[UInt8]]) {
        let (frame, segment) = try standalone(bytes, dictionaryID: dictionaryID, keyID: keyID, file: file, offset: offset)
        return (frame.header, try frame.records(decoder: decoder, segment: segment, file: file))
    }

    /// A frame outside a segment, its header checked (the decoder checks the payload checksum itself: the
    /// header is enough here), and the segment header its decoding implies: the given dictionary and key ids.
    private static func standalone(_ bytes: [UInt8], dictionaryID: UInt32, keyID: UInt32, file: String,
                                   offset: UInt64) throws(JournalError) -> (frame: RawFrame, segment: SegmentHeader) {
        let header = try header(bytes, file: file, offset: offset)
        let segment = SegmentHeader(journalID: JournalID(bytes: [UInt8](repeating: 0, count: 16))!, baseSequence: max(header.firstSequence, 1),
                                    dictionaryID: dictionaryID, keyID: keyID, chainSeed: 0)
        return (RawFrame(header: header, offset: offset, bytes: bytes), segment)
    }

    /// `records`, in place: the frame's record block and each record's byte range in it (no array per record).
    public static func recordRanges(_ bytes: [UInt8], dictionaryID: UInt32, keyID: UInt32, decoder: FrameDecoder, file: String = "frame",
                                    offset: UInt64 = 0) throws(JournalError) -> (header: FrameHeader, block: [UInt8], ranges: [Range<Int>]) {
        let (frame, segment) = try standalone(bytes, dictionaryID: dictionaryID, keyID: keyID, file: file, offset: offset)
        let (block, ranges) = try frame.recordRanges(decoder: decoder, segment: segment, file: file)
        return (frame.header, block, ranges)
    }
}

/// Seals records into frames outside a journal (same format, same encryption).
public final class FrameSealer {
    private let encoder: FrameEncoder
    public let dictionaryID: UInt32
    public let keyID: UInt32

    /// `compressionLevel`: zlib 1...9, or 0 to store every record block as it is (deflate not tried).
    public init(dictionary: CompressionDictionary?, key: JournalKey?, compressionLevel: Int32 = 6) {
        encoder = FrameEncoder(dictionary: dictionary, key: key, level: compressionLevel)
        dictionaryID = dictionary?.id ?? 0
        keyID = key?.id ?? 0
    }

    /// One frame holding `records` (1 ... frameRecordsMax, block within frameRecordBytesMax).
    public func seal(_ records: [[UInt8]], firstSequence: UInt64, previousChecksum: UInt32 = 0) throws(JournalError) -> (bytes: [UInt8], header: FrameHeader) {
        guard !records.isEmpty, records.count <= JournalLimits.frameRecordsMax else {
            throw JournalError(.invalidArgument, "a frame holds 1...\(JournalLimits.frameRecordsMax) records, not \(records.count)")
        }
        var block = 0
        for r in records {
            guard r.count <= JournalLimits.recordBytesMax else {
                throw JournalError(.recordTooLarge, "record of \(r.count) bytes; recordBytesMax is \(JournalLimits.recordBytesMax)")
            }
            block += FrameEncoder.blockBytes(of: r)
        }
        guard block <= JournalLimits.frameRecordBytesMax else {
            throw JournalError(.invalidArgument, "records take \(block) bytes; frameRecordBytesMax is \(JournalLimits.frameRecordBytesMax)")
        }
        return encoder.encode(records[...], firstSequence: firstSequence, previousChecksum: previousChecksum)
    }

    /// One frame holding a record block the caller built as `seal(_:)` builds it: `recordCount` records
    /// (1 ... frameRecordsMax), each its length (unsigned LEB128) then its bytes, the block within
    /// frameRecordBytesMax. The same frame as `seal(_:)` of those records, without an array per record.
    public func seal(block: [UInt8], recordCount: Int, firstSequence: UInt64, previousChecksum: UInt32 = 0) throws(JournalError) -> (bytes: [UInt8], header: FrameHeader) {
        guard recordCount >= 1, recordCount <= JournalLimits.frameRecordsMax else {
            throw JournalError(.invalidArgument, "a frame holds 1...\(JournalLimits.frameRecordsMax) records, not \(recordCount)")
        }
        guard block.count <= JournalLimits.frameRecordBytesMax else {
            throw JournalError(.invalidArgument, "records take \(block.count) bytes; frameRecordBytesMax is \(JournalLimits.frameRecordBytesMax)")
        }
        // Checked before it is written: the block splits into exactly `recordCount` records of at most recordBytesMax.
        let split = try FrameDecoder.recordCount(inBlock: block) { (code, message) in JournalError(code, "record block to seal: \(message)") }
        guard split == recordCount else {
            throw JournalError(.invalidArgument, "record block to seal holds \(split) records, \(recordCount) stated")
        }
        return encoder.encode(block: block, recordCount: recordCount, firstSequence: firstSequence, previousChecksum: previousChecksum)
    }
}
