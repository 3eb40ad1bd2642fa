/// Appends frames to the current segment, rolling to a new one at the size
/// bound. Not thread-safe: the journal lets one writer at a time use it.
final class SegmentWriter {
    let directory: String
    let fs: any JournalFileSystem
    let journalID: JournalID
    let segmentBytesMax: Int
    private let encoder: FrameEncoder
    private let dictionaryID: UInt32
    private let keyID: UInt32

    private var file: (any JournalFileHandle)?
    private(set) var segmentBase: UInt64
    private(set) var size: UInt64
    private var frameCount: Int
    /// Checksum of the last frame written (the next frame's previous-checksum).
    private(set) var chain: UInt32
    /// Sequence number of the next record.
    private(set) var nextSequence: UInt64
    /// The current segment was written with another dictionary or key: start a new one before writing.
    private var mustRoll: Bool

    struct Tail {
        var file: any JournalFileHandle
        var header: SegmentHeader
        var size: UInt64
        var frameCount: Int
        var chain: UInt32
        var nextSequence: UInt64
    }

    init(directory: String, fs: any JournalFileSystem, journalID: JournalID, configuration: JournalConfiguration, tail: Tail?) {
        self.directory = directory
        self.fs = fs
        self.journalID = journalID
        segmentBytesMax = configuration.segmentBytesMax
        encoder = FrameEncoder(dictionary: configuration.dictionary, key: configuration.key, level: configuration.compressionLevel)
        dictionaryID = configuration.dictionary?.id ?? 0
        keyID = configuration.key?.id ?? 0
        if let tail {
            file = tail.file
            segmentBase = tail.header.baseSequence
            size = tail.size
            frameCount = tail.frameCount
            chain = tail.chain
            nextSequence = tail.nextSequence
            mustRoll = tail.header.dictionaryID != dictionaryID || tail.header.keyID != keyID
        } else {
            precondition(configuration.firstSequence >= 1, "a journal's first sequence number is at least 1")
            file = nil
            segmentBase = configuration.firstSequence
            size = 0
            frameCount = 0
            chain = 0
            nextSequence = configuration.firstSequence
            mustRoll = true
        }
    }

    func path(_ name: String) -> String { directory + "/" + name }

    /// Creates segment `base` crash-safely: header written to a temporary file,
    /// fsynced, renamed into place, directory fsynced. A crash leaves either no
    /// segment or a complete header, never a partial one.
    func roll() throws(JournalError) {
        if let file, frameCount > 0 {
            try file.sync()   // a sealed segment is durable before the next begins
            try file.close()
        } else if let file {
            try file.close()  // empty segment: replaced by the rename below
        }
        file = nil
        let name = SegmentName.name(base: nextSequence)
        let temporary = path(String(name.dropLast(SegmentName.suffix.count)) + SegmentName.temporarySuffix)
        if fs.fileExists(temporary) { try fs.removeFile(temporary) }
        let header = SegmentHeader(journalID: journalID, baseSequence: nextSequence, dictionaryID: dictionaryID, keyID: keyID, chainSeed: chain)
        let handle = try fs.openFile(temporary, mode: .createExclusive)
        try handle.write(header.encoded(), at: 0)
        try handle.sync()
        try fs.rename(temporary, to: path(name))
        try fs.syncDirectory(directory)
        file = handle
        segmentBase = nextSequence
        size = UInt64(JournalLimits.segmentHeaderBytes)
        frameCount = 0
        mustRoll = false
    }

    /// Writes `records` (sequence numbers from `nextSequence`) as one or more
    /// frames; each segment's share goes out in a single write call.
    ///
    /// With `durable`, a batch that needs several frames has each frame written
    /// and fsynced before the next: a power loss can then tear only the last
    /// one, never leave a hole before a frame that reached the disk (which open
    /// would have to refuse as damage). One frame is the common case and costs
    /// nothing extra.
    func write(_ records: [[UInt8]], durable: Bool) throws(JournalError) {
        if mustRoll || file == nil { try roll() }
        var out: [UInt8] = []
        var index = 0
        while index < records.count {
            // Take as many records as fit the frame bounds.
            var end = index
            var blockBytes = 0
            while end < records.count && end - index < JournalLimits.frameRecordsMax {
                let b = FrameEncoder.blockBytes(of: records[end])
                if blockBytes + b > JournalLimits.frameRecordBytesMax { break }
                blockBytes += b
                end += 1
            }
            let (frame, header) = encoder.encode(records[index..<end], firstSequence: nextSequence, previousChecksum: chain)
            if frameCount > 0 && size + UInt64(out.count + frame.count) > UInt64(segmentBytesMax) {
                try flushOut(&out)
                try roll()
            } else if durable && !out.isEmpty {
                try flushOut(&out)
                try file?.sync()
            }
            out += frame
            chain = header.checksum
            nextSequence = header.lastSequence + 1
            frameCount += 1
            index = end
        }
        try flushOut(&out)
    }

    private func flushOut(_ out: inout [UInt8]) throws(JournalError) {
        guard !out.isEmpty, let file else { return }
        try file.write(out, at: size)
        size += UInt64(out.count)
        out.removeAll(keepingCapacity: true)
    }

    func sync() throws(JournalError) {
        try file?.sync()
    }

    func close() throws(JournalError) {
        try file?.close()
        file = nil
    }
}
