import PosBytes

/// Streams records from a sequence number across segments, holding one frame
/// at a time. Every frame is checked (checksums, chain, sequence continuity)
/// before its records are returned; a problem is thrown with its location,
/// never skipped. A reader made by an open `Journal` starts at the last start
/// position open kept at or before the sequence number (`FramePosition`), so
/// it does not read again the frames open checked before it.
public final class JournalReader {
    public let directory: String
    private let fs: any JournalFileSystem
    private let decoder: FrameDecoder
    /// Stop after this sequence number (nil: read to the end of the last segment).
    public let limit: UInt64?
    private var nextWanted: UInt64
    private var cursor: SegmentCursor?
    private var currentRecords: [[UInt8]] = []
    private var currentFirst: UInt64 = 0
    private var currentIndex = 0
    private var expectedBase: UInt64? = nil
    private var chain: UInt32? = nil
    /// The segment the reader crossed from (for errors at the boundary).
    private var previousName: String? = nil

    public convenience init(directory: String, fileSystem: any JournalFileSystem = PosixFileSystem(),
                            dictionaries: [CompressionDictionary], key: JournalKey?,
                            from sequence: UInt64 = 1, through limit: UInt64? = nil) throws(JournalError) {
        try self.init(directory: directory, fileSystem: fileSystem, dictionaries: dictionaries, key: key, from: sequence, through: limit, startPositions: [:])
    }

    /// With `startPositions` (those an open `Journal` kept), the walk to
    /// `sequence` starts at the last position at or before it in its segment,
    /// not at the segment's first frame.
    init(directory: String, fileSystem: any JournalFileSystem, dictionaries: [CompressionDictionary], key: JournalKey?,
         from sequence: UInt64, through limit: UInt64?, startPositions: [UInt64: [FramePosition]]) throws(JournalError) {
        self.directory = directory
        fs = fileSystem
        decoder = FrameDecoder(dictionaries: dictionaries, key: key)
        self.limit = limit
        nextWanted = max(sequence, 1)
        try openSegment(containing: nextWanted, positions: startPositions)
    }

    private func openSegment(containing sequence: UInt64, positions: [UInt64: [FramePosition]]) throws(JournalError) {
        let names = try JournalScan.segmentNames(in: directory, fs: fs)
        guard let first = names.first else {
            throw JournalError(.notFound, "no segments in the journal directory", file: directory)
        }
        guard sequence >= first.base else {
            throw JournalError(.notFound, "records before seq \(first.base) are no longer held (retired); asked for seq \(sequence)", file: directory)
        }
        let chosen = names.last { $0.base <= sequence }!
        try open(chosen.name, resume: positions[chosen.base]?.last { $0.sequence <= sequence })
    }

    private func open(_ name: String, resume: FramePosition? = nil) throws(JournalError) {
        cursor?.close()
        let path = directory + "/" + name
        let c = try SegmentCursor(file: fs.openFile(path, mode: .readOnly), path: path, resume: resume)
        // Crossing from the previous segment: what open's scan checks between two segments (a
        // `.lastSegment` open left it to the reader reaching the end of a sealed one).
        if let expectedBase, c.header.baseSequence != expectedBase {
            c.close()
            let base = c.header.baseSequence
            let what = base > expectedBase ? "records \(expectedBase)...\(base - 1) are missing (the previous segment, \(previousName ?? "?"), was truncated or a segment is lost)"
                                           : "it overlaps the previous segment, \(previousName ?? "?")"
            throw JournalError(.missingSegment, "segment starts at seq \(base), expected \(expectedBase): \(what)", file: path, offset: 32)
        }
        if let chain, c.header.chainSeed != chain {
            c.close()
            throw JournalError(.chainBroken, "segment chain seed \(Hex.word(c.header.chainSeed)) does not match the last frame of the previous segment, \(previousName ?? "?") (\(Hex.word(chain)))", file: path, offset: 48)
        }
        cursor = c
    }

    /// The next record, or nil at the end.
    public func next() throws(JournalError) -> (sequence: UInt64, record: [UInt8])? {
        while true {
            if let limit, nextWanted > limit { return nil }
            if currentIndex < currentRecords.count {
                let seq = currentFirst + UInt64(currentIndex)
                let record = currentRecords[currentIndex]
                currentIndex += 1
                if seq < nextWanted { continue }
                nextWanted = seq + 1
                return (seq, record)
            }
            guard try loadNextFrame() else { return nil }
        }
    }

    /// The next records in sequence order, as many as one batch frame takes: at
    /// most `recordsMax`, and while their record block (length prefixes
    /// included) stays within `blockBytesMax` (always at least one record); nil
    /// at the end. Records are taken across frame and segment boundaries, so how
    /// they were framed on disk does not show: the sync protocol repacks a
    /// terminal's stored frames this way (sync-protocol.md, "A session").
    public func nextBatch(blockBytesMax: Int, recordsMax: Int = JournalLimits.frameRecordsMax) throws(JournalError) -> (firstSequence: UInt64, records: [[UInt8]])? {
        precondition(blockBytesMax > 0 && recordsMax > 0 && recordsMax <= JournalLimits.frameRecordsMax)
        var records: [[UInt8]] = []
        var first: UInt64 = 0
        var block = 0
        while records.count < recordsMax {
            if let limit, nextWanted > limit { break }
            if currentIndex < currentRecords.count {
                let seq = currentFirst + UInt64(currentIndex)
                if seq < nextWanted { currentIndex += 1; continue }
                let record = currentRecords[currentIndex]
                let size = FrameEncoder.blockBytes(of: record)
                if !records.isEmpty, block + size > blockBytesMax { break }  // left for the next batch
                if records.isEmpty { first = seq }
                records.append(record)
                block += size
                currentIndex += 1
                nextWanted = seq + 1
                continue
            }
            guard try loadNextFrame() else { break }
        }
        return records.isEmpty ? nil : (first, records)
    }

    /// Decodes the next frame that holds a wanted record; false at the end.
    private func loadNextFrame() throws(JournalError) -> Bool {
        while let frame = try nextFrame() {
            guard frame.frame.header.lastSequence >= nextWanted else { continue }
            currentRecords = try frame.frame.records(decoder: decoder, segment: frame.segment, file: frame.path)
            currentFirst = frame.frame.header.firstSequence
            currentIndex = 0
            return true
        }
        return false
    }

    /// The next frame as stored (checked, not decoded), with its segment header
    /// and file path, or nil at the end (tools and tests read frames as stored this way).
    public func nextFrame() throws(JournalError) -> (frame: RawFrame, segment: SegmentHeader, path: String)? {
        while let c = cursor {
            if let limit, c.nextSequence > limit { return nil }
            switch try c.next() {
            case .frame(let f):
                return (f, c.header, c.path)
            case .end:
                let names = try JournalScan.segmentNames(in: directory, fs: fs)
                guard let nextSegment = names.first(where: { $0.base > c.header.baseSequence }) else {
                    if let limit, c.nextSequence <= limit {
                        throw JournalError(.truncated, "journal ends at seq \(c.nextSequence - 1), expected records through \(limit)", file: c.path, offset: c.offset)
                    }
                    return nil
                }
                expectedBase = c.nextSequence
                chain = c.chain
                previousName = c.path
                try open(nextSegment.name)
            case .incomplete(let offset, let reason):
                throw JournalError(.truncated, "incomplete frame: \(reason)", file: c.path, offset: offset)
            case .damaged(let error):
                throw error
            }
        }
        return nil
    }

    public func close() {
        cursor?.close()
        cursor = nil
    }

    deinit { cursor?.close() }
}
