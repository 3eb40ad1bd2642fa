import PosBytes
import PosJournal

/// Walks the frames of one byte range of a file (a segment after its header,
/// or a bundle between its header and checksum) with the checks
/// `SegmentCursor` makes, but, unlike it, goes on past damage: after a bad
/// frame it searches for the next valid frame header and resumes there.
/// Holds one read buffer and one frame at a time, so memory does not grow
/// with the file.
final class FrameWalker {
    enum Step {
        /// A frame whose header, payload checksum, chain and sequence number hold.
        case frame(offset: UInt64, header: FrameHeader, bytes: [UInt8])
        /// Bytes `[start, resume)` are not a valid frame. `resume` is the next
        /// valid frame header, or nil when none follows before the end (the
        /// walker then stays at `start`). `header` is set when the frame's
        /// header itself was valid (its payload or place was wrong).
        case damaged(start: UInt64, resume: UInt64?, error: JournalError, header: FrameHeader?)
        /// A valid frame after damage starts above the sequence number
        /// expected: records `from...through` are lost.
        case missing(from: UInt64, through: UInt64, at: UInt64)
        /// The bytes from `offset` to the end hold no complete frame: fewer
        /// bytes than a header, zeros, or a valid header whose frame runs past
        /// the end (a torn write on a journal's last segment). The walker stays.
        case incomplete(offset: UInt64, bytes: UInt64, reason: String)
        case end
    }

    let path: String
    private let file: any JournalFileHandle
    /// End of the range (exclusive); `setEnd` moves it when following a growing file.
    private(set) var end: UInt64
    private(set) var offset: UInt64
    /// Checksum the next frame must link to; nil after damage (it cannot be known).
    private(set) var chain: UInt32?
    /// Sequence number the next frame must start with; nil when not known.
    private(set) var nextSequence: UInt64?
    private(set) var validFrames = 0

    private var buffer: [UInt8] = []
    private var bufferStart: UInt64 = 0
    static let readChunkBytes = 256 * 1024

    init(file: any JournalFileHandle, path: String, start: UInt64, end: UInt64, chain: UInt32?, nextSequence: UInt64?) {
        precondition(start <= end)
        self.file = file
        self.path = path
        self.offset = start
        self.end = end
        self.chain = chain
        self.nextSequence = nextSequence
    }

    func setEnd(_ newEnd: UInt64) {
        precondition(newEnd >= offset)
        end = newEnd
        // The buffer may hold bytes read before the file grew; drop it.
        buffer = []
        bufferStart = 0
    }

    /// Makes `[at, at+count)` available in `buffer`; false when the range is shorter.
    private func ensure(_ at: UInt64, _ count: Int) throws(JournalError) -> Bool {
        if at >= bufferStart && at + UInt64(count) <= bufferStart + UInt64(buffer.count) { return true }
        guard at + UInt64(count) <= end else { return false }
        let want = max(count, Self.readChunkBytes)
        let available = Int(min(UInt64(want), end - at))
        buffer = try file.read(at: at, count: available)
        bufferStart = at
        guard buffer.count >= count else {
            throw JournalError(.io, "file shrank while reading: \(buffer.count) of \(count) bytes at offset \(at)", file: path, offset: at)
        }
        return true
    }

    private func header(at: UInt64) throws(JournalError) -> Result<FrameHeader, JournalError>? {
        guard try ensure(at, JournalLimits.frameHeaderBytes) else { return nil }
        let local = Int(at - bufferStart)
        return FrameHeader.inspect(Array(buffer[local..<(local + JournalLimits.frameHeaderBytes)]), file: path, offset: at)
    }

    private func next() throws(JournalError) -> Step {
        if offset >= end { return .end }
        let remaining = end - offset
        if remaining < UInt64(JournalLimits.frameHeaderBytes) {
            if try isZeroToEnd(from: offset) {
                return .incomplete(offset: offset, bytes: remaining, reason: "\(remaining) zero bytes at the end")
            }
            return .incomplete(offset: offset, bytes: remaining, reason: "\(remaining) bytes at the end, fewer than a \(JournalLimits.frameHeaderBytes)-byte frame header")
        }
        let h: FrameHeader
        switch try header(at: offset)! {
        case .failure(let error):
            if try isZeroToEnd(from: offset) {
                return .incomplete(offset: offset, bytes: remaining, reason: "\(remaining) zero bytes at the end")
            }
            return try damaged(error, header: nil)
        case .success(let header):
            h = header
        }
        guard UInt64(h.frameBytes) <= remaining else {
            return .incomplete(offset: offset, bytes: remaining,
                               reason: "frame seq \(h.firstSequence)...\(h.lastSequence) needs \(h.frameBytes) bytes, \(remaining) remain")
        }
        _ = try ensure(offset, h.frameBytes)
        let start = Int(offset - bufferStart)
        let computed = buffer.withUnsafeBytes {
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[(start + JournalLimits.frameHeaderBytes)..<(start + h.frameBytes)]))
        }
        guard computed == h.payloadChecksum else {
            return try damaged(JournalError(.payloadChecksum, "payload checksum mismatch in frame seq \(h.firstSequence)...\(h.lastSequence): header states \(Hex.word(h.payloadChecksum)), computed \(Hex.word(computed))", file: path, offset: offset, sequence: h.firstSequence), header: h)
        }
        if let expected = nextSequence, h.firstSequence < expected {
            // Records already read (or a frame out of place): never shown twice.
            return try damaged(JournalError(.sequenceGap, "frame seq \(h.firstSequence)...\(h.lastSequence) goes back: seq \(expected) was expected (a frame repeated or out of place)", file: path, offset: offset, sequence: h.firstSequence), header: h)
        }
        if let chain, h.previousChecksum != chain {
            if let expected = nextSequence, h.firstSequence == expected {
                return try damaged(JournalError(.chainBroken, "frame seq \(h.firstSequence)...\(h.lastSequence) links to previous checksum \(Hex.word(h.previousChecksum)), expected \(Hex.word(chain)) (a frame from elsewhere)", file: path, offset: offset, sequence: h.firstSequence), header: h)
            }
            // Starts above the expected sequence and links elsewhere: the
            // frames between are missing. Reported as missing, then the chain restarts here.
        }
        let bytes = Array(buffer[start..<(start + h.frameBytes)])
        let at = offset
        var missing: Step? = nil
        if let expected = nextSequence, h.firstSequence > expected {
            missing = .missing(from: expected, through: h.firstSequence - 1, at: at)
        }
        offset += UInt64(h.frameBytes)
        chain = h.checksum
        nextSequence = h.lastSequence + 1
        validFrames += 1
        if let missing {
            pendingFrame = .frame(offset: at, header: h, bytes: bytes)
            return missing
        }
        return .frame(offset: at, header: h, bytes: bytes)
    }

    /// A frame found after a `.missing` step, returned by the next call.
    private var pendingFrame: Step?

    /// The next step, returning a frame held back behind a `.missing` first.
    func step() throws(JournalError) -> Step {
        if let p = pendingFrame {
            pendingFrame = nil
            return p
        }
        return try next()
    }

    private func damaged(_ error: JournalError, header: FrameHeader?) throws(JournalError) -> Step {
        let start = offset
        guard let resume = try nextValidHeader(after: start) else {
            return .damaged(start: start, resume: nil, error: error, header: header)
        }
        offset = resume
        // Across damage the chain cannot be checked; the sequence still can.
        chain = nil
        return .damaged(start: start, resume: resume, error: error, header: header)
    }

    /// The first offset after `from` where a frame header with a valid
    /// checksum and fields starts (as `SegmentCursor.validFrameHeaders(after:)`),
    /// read in chunks so memory stays bounded.
    func nextValidHeader(after from: UInt64) throws(JournalError) -> UInt64? {
        var at = from + 1
        let last = end >= UInt64(JournalLimits.frameHeaderBytes) ? end - UInt64(JournalLimits.frameHeaderBytes) : 0
        while at <= last && end >= UInt64(JournalLimits.frameHeaderBytes) {
            // Scan the buffered window for the marker's first byte.
            _ = try ensure(at, JournalLimits.frameHeaderBytes)
            let windowEnd = min(bufferStart + UInt64(buffer.count) - UInt64(JournalLimits.frameHeaderBytes), last)
            var found: UInt64? = nil
            let marker = ByteWriter.le(frameSyncMarker)
            do {
                let p = buffer
                var i = Int(at - bufferStart)
                let stop = Int(windowEnd - bufferStart)
                while i <= stop {
                    if p[i] == marker[0] && p[i + 1] == marker[1] && p[i + 2] == marker[2] && p[i + 3] == marker[3] {
                        if case .success = FrameHeader.inspect(Array(p[i..<(i + JournalLimits.frameHeaderBytes)]), file: "", offset: 0) {
                            found = bufferStart + UInt64(i)
                            break
                        }
                    }
                    i += 1
                }
            }
            if let found { return found }
            at = windowEnd + 1
        }
        return nil
    }

    private func isZeroToEnd(from: UInt64) throws(JournalError) -> Bool {
        var at = from
        while at < end {
            let n = Int(min(UInt64(Self.readChunkBytes), end - at))
            _ = try ensure(at, n)
            let local = Int(at - bufferStart)
            if buffer[local..<(local + n)].contains(where: { $0 != 0 }) { return false }
            at += UInt64(n)
        }
        return true
    }

    /// Up to `count` bytes at `at` (for --raw dumps of damaged ranges).
    func bytes(at: UInt64, count: Int) throws(JournalError) -> [UInt8] {
        let n = Int(min(UInt64(count), end > at ? end - at : 0))
        guard n > 0 else { return [] }
        return try file.read(at: at, count: n)
    }
}
