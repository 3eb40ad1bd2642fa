import PosBytes

/// Segment files are named by their base sequence number: 20 decimal digits and ".seg".
public enum SegmentName {
    public static let suffix = ".seg"
    /// Suffix of a segment being created; such a file never holds acknowledged data.
    public static let temporarySuffix = ".seg.tmp"

    public static func name(base: UInt64) -> String {
        String(base).leftPadded(20) + suffix
    }

    public static func base(of name: String) -> UInt64? {
        guard name.hasSuffix(suffix), name.count == 20 + suffix.count else { return nil }
        let digits = name.prefix(20)
        guard digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return UInt64(digits)
    }
}

/// One frame as it is on disk, with where it was found.
public struct RawFrame: Sendable {
    public let header: FrameHeader
    /// Offset of the frame's first byte in its segment file.
    public let offset: UInt64
    /// The whole frame: 40 header bytes then the stored payload.
    public let bytes: [UInt8]

    /// Decodes the records of this frame.
    public func records(decoder: FrameDecoder, segment: SegmentHeader, file: String) throws(JournalError) -> [[UInt8]] {
        let result = bytes.withUnsafeBytes { p in
            Result { () throws(JournalError) in
                try decoder.records(header, payload: UnsafeRawBufferPointer(rebasing: p[JournalLimits.frameHeaderBytes...]),
                                    segment: segment, file: file, offset: offset)
            }
        }
        return try result.get()
    }
}

/// Walks the frames of one segment file in order, through a read buffer, and
/// checks each one: header checksum and fields, payload checksum, the chain
/// of previous-frame checksums and the continuity of sequence numbers. It
/// never decrypts or inflates; it needs no key.
public final class SegmentCursor {
    public enum Step {
        /// A valid frame.
        case frame(RawFrame)
        /// Clean end of the segment.
        case end
        /// The bytes from `offset` to the end of the file do not hold a complete
        /// frame: fewer bytes than a header, zeros, or a valid header whose payload
        /// runs past the end. On the last segment this may be a torn write.
        case incomplete(offset: UInt64, reason: String)
        /// A frame at `error.offset` that is present but wrong.
        case damaged(JournalError)
    }

    public let path: String
    public let header: SegmentHeader
    public let fileSize: UInt64
    private let file: any JournalFileHandle
    /// Offset of the next frame.
    public private(set) var offset: UInt64
    /// Checksum of the last valid frame (the segment's chain seed before the first).
    public private(set) var chain: UInt32
    /// Sequence number the next frame must start with.
    public private(set) var nextSequence: UInt64
    public private(set) var frameCount = 0

    private var buffer: [UInt8] = []
    private var bufferStart: UInt64 = 0
    private static let readChunkBytes = 256 * 1024

    /// Opens a segment: reads and checks its header.
    public init(file: any JournalFileHandle, path: String) throws(JournalError) {
        self.file = file
        self.path = path
        fileSize = try file.size()
        let head = try file.read(at: 0, count: JournalLimits.segmentHeaderBytes)
        header = try SegmentHeader.decode(head, file: path)
        offset = UInt64(JournalLimits.segmentHeaderBytes)
        chain = header.chainSeed
        nextSequence = header.baseSequence
    }

    /// Makes bytes [at, at+count) available in `buffer`; false when the file is shorter.
    private func ensure(_ at: UInt64, _ count: Int) throws(JournalError) -> Bool {
        if at >= bufferStart && at + UInt64(count) <= bufferStart + UInt64(buffer.count) { return true }
        guard at + UInt64(count) <= fileSize else { return false }
        let want = max(count, Self.readChunkBytes)
        let available = Int(min(UInt64(want), fileSize - at))
        buffer = try file.read(at: at, count: available)
        bufferStart = at
        return buffer.count >= count
    }

    /// The next step; after `.end`, `.incomplete` or `.damaged` the cursor does not move.
    public func next() throws(JournalError) -> Step {
        if offset == fileSize { return .end }
        let remaining = fileSize - offset
        guard try ensure(offset, Int(min(remaining, UInt64(JournalLimits.frameHeaderBytes)))) else {
            throw JournalError(.io, "file shrank while reading", file: path, offset: offset)
        }
        if remaining < UInt64(JournalLimits.frameHeaderBytes) {
            return .incomplete(offset: offset, reason: "\(remaining) bytes at the end, fewer than a \(JournalLimits.frameHeaderBytes)-byte frame header")
        }
        let local = Int(offset - bufferStart)
        let decoded = FrameHeader.decode(buffer, at: local)
        let h: FrameHeader
        switch decoded {
        case .invalid(let code, let message):
            if try isZeroToEnd(from: offset) {
                return .incomplete(offset: offset, reason: "\(remaining) zero bytes at the end")
            }
            return .damaged(JournalError(code, message, file: path, offset: offset))
        case .header(let header):
            h = header
        }
        guard UInt64(h.frameBytes) <= remaining else {
            return .incomplete(offset: offset, reason: "frame seq \(h.firstSequence)...\(h.lastSequence) needs \(h.frameBytes) bytes, \(remaining) remain")
        }
        guard try ensure(offset, h.frameBytes) else {
            throw JournalError(.io, "file shrank while reading", file: path, offset: offset)
        }
        let start = Int(offset - bufferStart)
        let bytes = Array(buffer[start..<(start + h.frameBytes)])
        let payloadOK = bytes.withUnsafeBytes {
            FrameDecoder.verifyPayload(h, UnsafeRawBufferPointer(rebasing: $0[JournalLimits.frameHeaderBytes...]))
        }
        guard payloadOK else {
            let computed = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[JournalLimits.frameHeaderBytes...])) }
            return .damaged(JournalError(.payloadChecksum, "payload checksum mismatch in frame seq \(h.firstSequence)...\(h.lastSequence): header states \(Hex.word(h.payloadChecksum)), computed \(Hex.word(computed))", file: path, offset: offset, sequence: h.firstSequence))
        }
        guard h.previousChecksum == chain else {
            return .damaged(JournalError(.chainBroken, "frame seq \(h.firstSequence)...\(h.lastSequence) links to previous checksum \(Hex.word(h.previousChecksum)), expected \(Hex.word(chain)) (a frame is missing, repeated or misplaced)", file: path, offset: offset, sequence: h.firstSequence))
        }
        guard h.firstSequence == nextSequence else {
            return .damaged(JournalError(.sequenceGap, "frame starts at seq \(h.firstSequence), expected \(nextSequence)", file: path, offset: offset, sequence: h.firstSequence))
        }
        let frame = RawFrame(header: h, offset: offset, bytes: bytes)
        offset += UInt64(h.frameBytes)
        chain = h.checksum
        nextSequence = h.lastSequence + 1
        frameCount += 1
        return .frame(frame)
    }

    private func isZeroToEnd(from: UInt64) throws(JournalError) -> Bool {
        var at = from
        while at < fileSize {
            let n = Int(min(UInt64(Self.readChunkBytes), fileSize - at))
            guard try ensure(at, n) else { return false }
            let local = Int(at - bufferStart)
            if buffer[local..<(local + n)].contains(where: { $0 != 0 }) { return false }
            at += UInt64(n)
        }
        return true
    }

    /// Offsets after `from` where a frame header with a valid checksum starts.
    /// Used to tell a torn tail (nothing valid follows) from mid-log damage.
    public func validFrameHeaders(after from: UInt64, limit: Int = 1) throws(JournalError) -> [UInt64] {
        guard fileSize > from + 1 else { return [] }
        let rest = try file.read(at: from + 1, count: Int(fileSize - from - 1))
        var found: [UInt64] = []
        let marker = frameSyncMarkerBytes
        if rest.count >= JournalLimits.frameHeaderBytes {
            for i in 0...(rest.count - JournalLimits.frameHeaderBytes) where rest[i] == marker[0] && rest[i + 1] == marker[1] && rest[i + 2] == marker[2] && rest[i + 3] == marker[3] {
                if case .header = FrameHeader.decode(rest, at: i) {
                    found.append(from + 1 + UInt64(i))
                    if found.count >= limit { break }
                }
            }
        }
        return found
    }

    public func close() {
        try? file.close()
    }
}
