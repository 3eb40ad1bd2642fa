import PosBytes

/// One frame as it is on disk, with where it was found.
public struct RawFrame: Sendable {
    public let header: FrameHeader
    /// Offset of the frame's first byte in its file.
    public let offset: UInt64
    /// The whole frame: 40 header bytes then the stored payload.
    public let bytes: [UInt8]

    /// Decodes the records of this frame.
    public func records(decoder: FrameDecoder, segment: SegmentHeader, file: String) throws(JournalError) -> [[UInt8]] {
        try withPayload { (payload) throws(JournalError) in try decoder.records(header, payload: payload, segment: segment, file: file, offset: offset) }
    }

    /// The records of this frame in place: its record block and each record's range in it.
    public func recordRanges(decoder: FrameDecoder, segment: SegmentHeader, file: String) throws(JournalError) -> (block: [UInt8], ranges: [Range<Int>]) {
        try withPayload { (payload) throws(JournalError) in try decoder.recordRanges(header, payload: payload, segment: segment, file: file, offset: offset) }
    }

    /// `body` of the stored payload (the bytes after the 40-byte header), in place.
    private func withPayload<T>(_ body: (UnsafeRawBufferPointer) throws(JournalError) -> T) throws(JournalError) -> T {
        let result = bytes.withUnsafeBytes { p in
            Result { () throws(JournalError) in try body(UnsafeRawBufferPointer(rebasing: p[JournalLimits.frameHeaderBytes...])) }
        }
        return try result.get()
    }
}

/// The one frame scanner: walks the frames of a byte range of a file (a
/// segment after its header, a bundle between its header and checksum)
/// through one read buffer, and checks each frame: header checksum and
/// fields, payload checksum, then its place (the chain of previous-frame
/// checksums, the continuity of sequence numbers). It never decrypts or
/// inflates; it needs no key. Memory holds one read buffer and one frame,
/// whatever the file's size.
///
/// Two policies:
/// - `strict` (open, readers): the first frame that is not intact and in
///   place ends the walk; `tornWriteRefusal` then tells a torn tail from
///   damage as sync-protocol.md "Recovery" says.
/// - `resync` (salvage, journal-dump): damage is skipped to the next valid
///   frame header (searched for in chunks) and the walk goes on there.
public final class FrameScanner {
    public enum Policy: Sendable, Equatable {
        /// Stop at the first frame that is not intact and in place.
        case strict
        /// Skip damage to the next valid frame header. With `placement`, a frame
        /// whose sequence goes back, or whose chain is broken at the sequence
        /// expected, is damage, and a frame above the sequence expected is
        /// reported `missing` before it. Without, only a frame's own integrity
        /// is judged (salvage judges places across segments itself).
        case resync(placement: Bool)
    }

    public enum Step {
        /// A frame that is intact (and in place, where the policy checks places).
        case frame(RawFrame)
        /// The end of the range.
        case end
        /// The bytes from `offset` to the end hold no complete frame: fewer bytes
        /// than a header, zeros, or a valid header whose frame runs past the end
        /// (on a journal's last segment, a torn write). The scanner stays.
        case incomplete(offset: UInt64, bytes: UInt64, reason: String)
        /// A frame at `error.offset` that is present but wrong. `header` is set when
        /// the frame's header itself is valid (its payload or its place is wrong).
        /// `resume` (resync) is the next valid frame header, where the scanner now
        /// is; nil when none follows (or under `strict`): the scanner stays.
        case damaged(JournalError, header: FrameHeader?, resume: UInt64?)
        /// (resync with placement) The next frame, intact, starts above the sequence
        /// expected: records `from...through` are missing. The frame comes next.
        case missing(from: UInt64, through: UInt64, at: UInt64)
    }

    /// Bytes read from the file at a time.
    public static let readChunkBytes = 256 * 1024

    public let path: String
    public let policy: Policy
    private let file: any JournalFileHandle
    /// End of the range (exclusive); `setEnd` moves it when following a growing file.
    public private(set) var end: UInt64
    /// Offset of the next frame.
    public private(set) var offset: UInt64
    /// Checksum the next frame must link to; nil when it cannot be known (after damage).
    public private(set) var chain: UInt32?
    /// Sequence number the next frame must start with; nil when not known.
    public private(set) var nextSequence: UInt64?
    /// Frames returned so far.
    public private(set) var frameCount = 0

    private var buffer: [UInt8] = []
    private var bufferStart: UInt64 = 0
    /// A frame found after a `.missing` step, returned by the next call.
    private var pending: RawFrame?

    public init(file: any JournalFileHandle, path: String, start: UInt64, end: UInt64,
                chain: UInt32?, nextSequence: UInt64?, policy: Policy) {
        precondition(start <= end)
        self.file = file
        self.path = path
        self.offset = start
        self.end = end
        self.chain = chain
        self.nextSequence = nextSequence
        self.policy = policy
    }

    /// Moves the end of the range (a followed file grew).
    public func setEnd(_ newEnd: UInt64) {
        precondition(newEnd >= offset)
        end = newEnd
        // The buffer may hold bytes read before the file grew; drop it.
        buffer = []
        bufferStart = 0
    }

    // MARK: - Reading

    /// Makes `[at, at+count)` available in `buffer`, reading at least a chunk.
    private func load(_ at: UInt64, _ count: Int) throws(JournalError) {
        if at >= bufferStart && at + UInt64(count) <= bufferStart + UInt64(buffer.count) { return }
        precondition(at + UInt64(count) <= end, "read past the scanned range")
        let available = Int(min(UInt64(max(count, Self.readChunkBytes)), end - at))
        buffer = try file.read(at: at, count: available)
        bufferStart = at
        guard buffer.count >= count else {
            throw JournalError(.io, "file shrank while reading: \(buffer.count) of \(count) bytes at offset \(at)", file: path, offset: at)
        }
    }

    /// The 40-byte header at `at` (which the range holds), decoded and checked.
    private func header(at: UInt64) throws(JournalError) -> FrameHeader.Decoded {
        try load(at, JournalLimits.frameHeaderBytes)
        return FrameHeader.decode(buffer, at: Int(at - bufferStart))
    }

    /// Up to `count` bytes at `at` (a damaged range's bytes, for showing them).
    public func bytes(at: UInt64, count: Int) throws(JournalError) -> [UInt8] {
        let n = Int(min(UInt64(count), end > at ? end - at : 0))
        guard n > 0 else { return [] }
        return try file.read(at: at, count: n)
    }

    private func isZeroToEnd(from: UInt64) throws(JournalError) -> Bool {
        var at = from
        while at < end {
            let n = Int(min(UInt64(Self.readChunkBytes), end - at))
            try load(at, n)
            let local = Int(at - bufferStart)
            if buffer[local..<(local + n)].contains(where: { $0 != 0 }) { return false }
            at += UInt64(n)
        }
        return true
    }

    /// The first offset at or after `from` where a valid frame header (sync
    /// marker, header checksum and fields) starts, or nil. Searches the range a
    /// chunk at a time, so memory does not grow with the file.
    public func nextValidHeader(from: UInt64) throws(JournalError) -> UInt64? {
        let headerBytes = UInt64(JournalLimits.frameHeaderBytes)
        guard end >= headerBytes else { return nil }
        let last = end - headerBytes  // the last offset where a header fits
        let marker = frameSyncMarkerBytes
        var at = from
        while at <= last {
            // The window holds every header that starts at at...windowLast.
            let windowLast = min(last, at + UInt64(Self.readChunkBytes) - 1)
            try load(at, Int(windowLast + headerBytes - at))
            var i = Int(at - bufferStart)
            let stop = Int(windowLast - bufferStart)
            while i <= stop {
                if buffer[i] == marker[0] && buffer[i + 1] == marker[1] && buffer[i + 2] == marker[2] && buffer[i + 3] == marker[3],
                   case .header = FrameHeader.decode(buffer, at: i) {
                    return bufferStart + UInt64(i)
                }
                i += 1
            }
            at = windowLast + 1
        }
        return nil
    }

    // MARK: - Walking

    /// The next step. After `.end`, `.incomplete` and a `.damaged` with no
    /// `resume`, the scanner does not move.
    public func next() throws(JournalError) -> Step {
        if let frame = pending {
            pending = nil
            return .frame(frame)
        }
        if offset >= end { return .end }
        let remaining = end - offset
        if remaining < UInt64(JournalLimits.frameHeaderBytes) {
            if try isZeroToEnd(from: offset) {
                return .incomplete(offset: offset, bytes: remaining, reason: "\(remaining) zero bytes at the end")
            }
            return .incomplete(offset: offset, bytes: remaining, reason: "\(remaining) bytes at the end, fewer than a \(JournalLimits.frameHeaderBytes)-byte frame header")
        }
        let h: FrameHeader
        switch try header(at: offset) {
        case .invalid(let code, let message):
            if try isZeroToEnd(from: offset) {
                return .incomplete(offset: offset, bytes: remaining, reason: "\(remaining) zero bytes at the end")
            }
            return try damaged(JournalError(code, message, file: path, offset: offset), header: nil)
        case .header(let header):
            h = header
        }
        guard UInt64(h.frameBytes) <= remaining else {
            return .incomplete(offset: offset, bytes: remaining,
                               reason: "frame seq \(h.firstSequence)...\(h.lastSequence) needs \(h.frameBytes) bytes, \(remaining) remain")
        }
        try load(offset, h.frameBytes)
        let start = Int(offset - bufferStart)
        let computed = buffer.withUnsafeBytes {
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[(start + JournalLimits.frameHeaderBytes)..<(start + h.frameBytes)]))
        }
        guard computed == h.payloadChecksum else {
            return try damaged(JournalError(.payloadChecksum, "payload checksum mismatch in frame seq \(h.firstSequence)...\(h.lastSequence): header states \(Hex.word(h.payloadChecksum)), computed \(Hex.word(computed))",
                                            file: path, offset: offset, sequence: h.firstSequence), header: h)
        }
        if let misplaced = misplacement(h) { return try damaged(misplaced, header: h) }
        let frame = RawFrame(header: h, offset: offset, bytes: Array(buffer[start..<(start + h.frameBytes)]))
        var missing: Step? = nil
        if policy == .resync(placement: true), let expected = nextSequence, h.firstSequence > expected {
            missing = .missing(from: expected, through: h.firstSequence - 1, at: offset)
        }
        offset += UInt64(h.frameBytes)
        chain = h.checksum
        nextSequence = h.lastSequence + 1
        frameCount += 1
        if let missing {
            pending = frame
            return missing
        }
        return .frame(frame)
    }

    /// Why an intact frame is not where it belongs, under the policy; nil when it is.
    private func misplacement(_ h: FrameHeader) -> JournalError? {
        func error(_ code: JournalError.Code, _ message: String) -> JournalError {
            JournalError(code, message, file: path, offset: offset, sequence: h.firstSequence)
        }
        switch policy {
        case .strict:
            if let chain, h.previousChecksum != chain {
                return error(.chainBroken, "frame seq \(h.firstSequence)...\(h.lastSequence) links to previous checksum \(Hex.word(h.previousChecksum)), expected \(Hex.word(chain)) (a frame is missing, repeated or misplaced)")
            }
            if let expected = nextSequence, h.firstSequence != expected {
                return error(.sequenceGap, "frame starts at seq \(h.firstSequence), expected \(expected)")
            }
        case .resync(placement: true):
            if let expected = nextSequence, h.firstSequence < expected {
                // Records already read (or a frame out of place): never shown twice.
                return error(.sequenceGap, "frame seq \(h.firstSequence)...\(h.lastSequence) goes back: seq \(expected) was expected (a frame repeated or out of place)")
            }
            // A frame above the sequence expected that links elsewhere follows
            // missing frames: reported as missing, and the chain restarts there.
            if let chain, h.previousChecksum != chain, let expected = nextSequence, h.firstSequence == expected {
                return error(.chainBroken, "frame seq \(h.firstSequence)...\(h.lastSequence) links to previous checksum \(Hex.word(h.previousChecksum)), expected \(Hex.word(chain)) (a frame from elsewhere)")
            }
        case .resync(placement: false):
            break
        }
        return nil
    }

    /// A damaged frame at `offset`: under `resync`, moves to the next valid frame
    /// header, searched for after the frame's stated end when its header is
    /// valid (a payload may itself hold a stored frame), else after its start.
    private func damaged(_ error: JournalError, header: FrameHeader?) throws(JournalError) -> Step {
        guard case .resync = policy else { return .damaged(error, header: header, resume: nil) }
        let from = header.map { offset + UInt64($0.frameBytes) } ?? offset + 1
        guard let resume = try nextValidHeader(from: from) else {
            return .damaged(error, header: header, resume: nil)
        }
        offset = resume
        // Across damage the chain cannot be checked; the sequence still can.
        chain = nil
        return .damaged(error, header: header, resume: resume)
    }

    // MARK: - Torn tail or damage (strict)

    /// Why the damage a strict walk stopped at (`error`, at `error.offset`)
    /// cannot be a torn write, or nil when it may be one (open cuts it).
    /// sync-protocol.md, "Recovery": a torn write leaves an incomplete frame,
    /// zeros or garbage at the end of the last segment and nothing valid after
    /// it. So damage is refused when it is in a sealed segment, when a valid
    /// frame header follows it, or when the frame's header is intact as written
    /// (sync marker and header checksum verify) and yet the frame is refused for
    /// anything but its payload checksum: a misplaced frame (chain, sequence),
    /// a frame of a newer format (flags), impossible fields. Cutting those would
    /// delete data a torn write cannot have produced.
    public func tornWriteRefusal(_ error: JournalError, isLastSegment: Bool) throws(JournalError) -> String? {
        guard isLastSegment else { return "later segments follow it" }
        let at = error.offset ?? offset
        guard end >= at + UInt64(JournalLimits.frameHeaderBytes) else { return nil }
        try load(at, JournalLimits.frameHeaderBytes)
        let local = Int(at - bufferStart)
        let r = ByteReader<ByteReadError>(buffer)
        let headerIntact = r.getLE(UInt32.self, at: local) == frameSyncMarker
            && r.getLE(UInt32.self, at: local + 36) == CRC32C.checksum(Array(buffer[local..<(local + 36)]))
        if headerIntact && error.code != .payloadChecksum {
            return "the frame's header is intact (its checksum verifies), so it was written whole"
        }
        // When only the payload is bad the frame's extent is known: anything
        // inside the payload (which may itself hold a stored frame) is not
        // evidence of later data.
        var searchFrom = at + 1
        if error.code == .payloadChecksum, case .header(let h) = try header(at: at) {
            searchFrom = at + UInt64(h.frameBytes)
        }
        if let next = try nextValidHeader(from: searchFrom) {
            return "a valid frame header follows at offset \(next)"
        }
        return nil
    }
}
