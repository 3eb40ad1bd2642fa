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

/// One segment file read strictly: its header, then its frames through a
/// `FrameScanner` under the `strict` policy (header checksum and fields,
/// payload checksum, chain and sequence continuity from the header's chain
/// seed and base). It needs no key. Open, `JournalReader` and the tools that
/// list frames read segments through it.
public final class SegmentCursor {
    public enum Step {
        /// A valid frame.
        case frame(RawFrame)
        /// Clean end of the segment.
        case end
        /// The bytes from `offset` to the end of the file do not hold a complete
        /// frame: fewer bytes than a header, zeros, or a valid header whose frame
        /// runs past the end. On the last segment this may be a torn write.
        case incomplete(offset: UInt64, reason: String)
        /// A frame at `error.offset` that is present but wrong.
        case damaged(JournalError)
    }

    public let path: String
    public let header: SegmentHeader
    public let fileSize: UInt64
    private let file: any JournalFileHandle
    private let scanner: FrameScanner

    /// Offset of the next frame.
    public var offset: UInt64 { scanner.offset }
    /// Checksum of the last valid frame (the segment's chain seed before the first).
    public var chain: UInt32 { scanner.chain ?? header.chainSeed }
    /// Sequence number the next frame must start with.
    public var nextSequence: UInt64 { scanner.nextSequence ?? header.baseSequence }
    /// Frames returned so far (from `resume` when one was given).
    public var frameCount: Int { scanner.frameCount }

    /// Opens a segment: reads and checks its header. With `resume` (a position
    /// this process's open checked every frame before), the walk starts at that
    /// frame, continuing its chain and sequence, instead of at the first one.
    init(file: any JournalFileHandle, path: String, resume: FramePosition?) throws(JournalError) {
        self.file = file
        self.path = path
        let size = try file.size()
        fileSize = size
        let head = try file.read(at: 0, count: JournalLimits.segmentHeaderBytes)
        let h = try SegmentHeader.decode(head, file: path)
        header = h
        let start = resume.flatMap { $0.offset <= size ? $0 : nil }
        scanner = FrameScanner(file: file, path: path, start: start?.offset ?? UInt64(JournalLimits.segmentHeaderBytes), end: size,
                               chain: start?.chain ?? h.chainSeed, nextSequence: start?.sequence ?? h.baseSequence, policy: .strict)
    }

    /// Opens a segment: reads and checks its header; the walk starts at its first frame.
    public convenience init(file: any JournalFileHandle, path: String) throws(JournalError) {
        try self.init(file: file, path: path, resume: nil)
    }

    /// The next step; after `.end`, `.incomplete` or `.damaged` the cursor does not move.
    public func next() throws(JournalError) -> Step {
        switch try scanner.next() {
        case .frame(let frame): return .frame(frame)
        case .end: return .end
        case .incomplete(let offset, _, let reason): return .incomplete(offset: offset, reason: reason)
        case .damaged(let error, _, _): return .damaged(error)
        case .missing: preconditionFailure("a strict scan never reports missing frames")
        }
    }

    /// Why the damage `next()` stopped at cannot be a torn write, or nil when
    /// it may be one (`FrameScanner.tornWriteRefusal`).
    public func tornWriteRefusal(_ error: JournalError, isLastSegment: Bool) throws(JournalError) -> String? {
        try scanner.tornWriteRefusal(error, isLastSegment: isLastSegment)
    }

    public func close() {
        try? file.close()
    }
}
