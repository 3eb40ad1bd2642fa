import Logging
import PosBytes

/// How much of a journal `Journal.open` reads and checks (sync-protocol.md,
/// "Journal format", Recovery).
public enum JournalOpenCheck: Sendable, Equatable {
    /// Every segment's header and every frame of every segment: what a full
    /// terminal open, central and the tools use.
    case full
    /// Every segment's header and the sequence of their bases, and the last
    /// segment frame by frame (what a torn-tail cut and the durable-evidence
    /// check need). The frames of a sealed segment (one with a successor) are
    /// checked by the reader that reads them, as every frame read is, and where
    /// it reaches the segment's end, its link to the successor (last sequence
    /// number and chain): what a focused terminal open uses.
    case lastSegment
}

/// One segment as found when the journal was opened, every frame checked.
public struct SegmentInfo: Sendable, Equatable {
    public let name: String
    public let header: SegmentHeader
    /// Sequence number of its last record; `header.baseSequence - 1` when it holds none.
    public let lastSequence: UInt64
    public let frameCount: Int
    public let bytes: UInt64
}

/// A segment as an open scan left it: checked frame by frame, or sealed (it
/// has a successor) and not walked by a `.lastSegment` open. Only a checked
/// segment has a frame count and a size, so nothing that needs them can use
/// an unchecked one.
enum ScannedSegment: Sendable, Equatable {
    case checked(SegmentInfo)
    /// `lastSequence` is the successor's base − 1, as the names say; the
    /// reader that reaches the segment's end checks it.
    case sealedUnchecked(name: String, header: SegmentHeader, lastSequence: UInt64)

    var name: String {
        switch self { case .checked(let i): i.name; case .sealedUnchecked(let name, _, _): name }
    }
    var header: SegmentHeader {
        switch self { case .checked(let i): i.header; case .sealedUnchecked(_, let header, _): header }
    }
    var lastSequence: UInt64 {
        switch self { case .checked(let i): i.lastSequence; case .sealedUnchecked(_, _, let last): last }
    }
    var checked: SegmentInfo? {
        if case .checked(let i) = self { return i }
        return nil
    }
}

/// A place inside a segment where a strict walk may start instead of at its
/// first frame: the offset of a frame open checked, with the chain checksum and
/// sequence number that frame must continue. Open keeps one every
/// `JournalLimits.readerStartStrideBytes` of each segment, so a reader from a
/// sequence number does not read and check again the frames before it (every
/// frame it returns is still checked as it is read).
struct FramePosition: Sendable, Equatable {
    /// First sequence number of the frame at `offset`.
    let sequence: UInt64
    let offset: UInt64
    /// The checksum the frame at `offset` links to (its previous-checksum field).
    let chain: UInt32
}

/// What opening did to the journal, for the caller to log or show.
public struct RecoveryReport: Sendable, Equatable {
    /// A torn tail that was cut: file, offset of the cut, bytes removed, why.
    public struct Truncation: Sendable, Equatable {
        public let file: String
        public let offset: UInt64
        public let bytesRemoved: UInt64
        public let reason: String
    }
    public var truncation: Truncation?
    /// Incomplete segment creations (`*.seg.tmp`) removed; they held no records.
    public var removedTemporaryFiles: [String] = []
}

/// Evidence, held outside a journal, that its records through `sequence` were
/// durable (an acknowledgement recorded, a snapshot covering them). Open
/// refuses, changing nothing, when the journal would end below it: a cut or a
/// lost segment there is a loss to recover explicitly, not a torn write.
public struct DurableEvidence: Sendable, Equatable {
    public var sequence: UInt64
    /// What proves it, for the error message ("acknowledged by central", ...).
    public var source: String
    public init(sequence: UInt64, source: String) {
        self.sequence = sequence
        self.source = source
    }
}

/// Open is recovery: every segment's header and (`JournalOpenCheck.full`)
/// every frame's checksums, chain and sequence numbers are checked, or
/// (`.lastSegment`) those of the last segment only. A torn tail of the last
/// segment (an incomplete frame or zeros, with no valid frame after it) is cut
/// and the cut fsynced; any other damage found fails the open with its location.
struct JournalScan {
    var segments: [ScannedSegment] = []
    /// Reader start positions by segment base sequence, ascending by offset (`FramePosition`).
    var positions: [UInt64: [FramePosition]] = [:]
    var tail: SegmentWriter.Tail?
    var report = RecoveryReport()

    static func segmentNames(in directory: String, fs: any JournalFileSystem) throws(JournalError) -> [(base: UInt64, name: String)] {
        try fs.listDirectory(directory).compactMap { name in SegmentName.base(of: name).map { ($0, name) } }.sorted { $0.base < $1.base }
    }

    /// The segments, every one checked frame by frame (a `.full` scan's).
    var checkedSegments: [SegmentInfo] {
        segments.map { s in
            guard let info = s.checked else { preconditionFailure("segment \(s.name) was not checked: only a .full scan lists segments") }
            return info
        }
    }

    /// Checks every segment (`check`); with `repair`, then removes incomplete
    /// segment creations and cuts a torn tail. Nothing is changed before every
    /// segment was read and the result checked against `evidence`.
    static func run(directory: String, fs: any JournalFileSystem, configuration: JournalConfiguration,
                    logger: Logger, repair: Bool, check: JournalOpenCheck = .full, evidence: DurableEvidence? = nil,
                    beforeRepair: ((RecoveryReport, UInt64) throws(JournalError) -> Void)? = nil) throws(JournalError) -> JournalScan {
        var scan = JournalScan()
        let names = try fs.listDirectory(directory)
        let temporaries = names.filter { $0.hasSuffix(SegmentName.temporarySuffix) }
        var plannedCut: (cursor: SegmentCursor, file: any JournalFileHandle, offset: UInt64, reason: String)?
        let segments = try segmentNames(in: directory, fs: fs)
        var previous: ScannedSegment? = nil
        var previousChain: UInt32? = 0
        for (index, (base, name)) in segments.enumerated() {
            let path = directory + "/" + name
            let isLast = index == segments.count - 1
            let file = try fs.openFile(path, mode: isLast && repair ? .readWrite : .readOnly)
            let cursor: SegmentCursor
            do {
                cursor = try SegmentCursor(file: file, path: path)
            } catch {
                try? file.close()
                throw error
            }
            let h = cursor.header
            guard h.baseSequence == base else {
                cursor.close()
                throw JournalError(.badFrameHeader, "segment header states base sequence \(h.baseSequence), its file name says \(base)", file: path, offset: 32)
            }
            if let previous {
                guard h.journalID == previous.header.journalID else {
                    cursor.close()
                    throw JournalError(.journalMismatch, "segment belongs to journal \(h.journalID), expected \(previous.header.journalID)", file: path, offset: 16)
                }
                guard h.baseSequence == previous.lastSequence + 1 else {
                    cursor.close()
                    let expected = previous.lastSequence + 1
                    let what = h.baseSequence > expected ? "records \(expected)...\(h.baseSequence - 1) are missing (a segment is missing or truncated)" : "it overlaps the previous segment"
                    throw JournalError(.missingSegment, "segment starts at seq \(h.baseSequence), expected \(expected): \(what)", file: path, offset: 32)
                }
                // Unknown after an unchecked sealed segment: the reader reaching its end checks the link.
                if let previousChain, h.chainSeed != previousChain {
                    cursor.close()
                    throw JournalError(.chainBroken, "segment chain seed \(Hex.word(h.chainSeed)) does not match the last frame of \(previous.name) (\(Hex.word(previousChain)))", file: path, offset: 48)
                }
            }
            if let key = configuration.key, h.keyID != 0, h.keyID != key.id {
                cursor.close()
                throw JournalError(.wrongKey, "segment is encrypted with key id \(h.keyID); the supplied key has id \(key.id)", file: path, offset: 44)
            }
            if configuration.key == nil && h.keyID != 0 && repair {
                cursor.close()
                throw JournalError(.missingKey, "segment is encrypted with key id \(h.keyID) and no key was supplied", file: path, offset: 44)
            }
            if check == .lastSegment && !isLast {
                // Sealed: its successor's base (the names are sorted, bases distinct) ends it.
                let info = ScannedSegment.sealedUnchecked(name: name, header: h, lastSequence: segments[index + 1].base - 1)
                scan.segments.append(info)
                previous = info
                previousChain = nil
                cursor.close()
                continue
            }
            var size = cursor.fileSize
            var positions: [FramePosition] = []
            var nextPositionOffset = UInt64(JournalLimits.segmentHeaderBytes) + JournalLimits.readerStartStrideBytes
            loop: while true {
                let before = FramePosition(sequence: cursor.nextSequence, offset: cursor.offset, chain: cursor.chain)
                switch try cursor.next() {
                case .frame:
                    if before.offset >= nextPositionOffset {
                        positions.append(before)
                        nextPositionOffset = before.offset + JournalLimits.readerStartStrideBytes
                    }
                    continue
                case .end:
                    break loop
                case .incomplete(let offset, let reason):
                    try checkCut(cursor: cursor, at: offset, reason: reason, isLast: isLast)
                    plannedCut = (cursor, file, offset, reason)
                    size = offset
                    break loop
                case .damaged(let error):
                    if let why = try cursor.tornWriteRefusal(error, isLastSegment: isLast) {
                        cursor.close()
                        throw error.withMessage(error.message + "; " + why + ", so this is damage, not a torn write: the journal is not opened (use JournalSalvage)")
                    }
                    try checkCut(cursor: cursor, at: error.offset!, reason: error.message, isLast: isLast)
                    plannedCut = (cursor, file, error.offset!, error.message)
                    size = error.offset!
                    break loop
                }
            }
            let info = SegmentInfo(name: name, header: h, lastSequence: cursor.nextSequence - 1, frameCount: cursor.frameCount, bytes: size)
            scan.segments.append(.checked(info))
            if !positions.isEmpty { scan.positions[base] = positions }
            previous = .checked(info)
            previousChain = cursor.chain
            if isLast && repair {
                scan.tail = SegmentWriter.Tail(file: file, header: h, size: size, frameCount: cursor.frameCount, chain: cursor.chain, nextSequence: cursor.nextSequence)
            } else if plannedCut == nil || !isLast {
                cursor.close()
            }
        }
        let last = scan.segments.last?.lastSequence ?? 0
        if let cut = plannedCut {
            let removed = cut.cursor.fileSize - cut.offset
            scan.report.truncation = RecoveryReport.Truncation(file: cut.cursor.path, offset: cut.offset, bytesRemoved: removed, reason: cut.reason)
        }
        if let evidence, last < evidence.sequence {
            try? scan.tail?.file.close()
            if let cut = plannedCut { cut.cursor.close() }
            var what = "the journal ends at seq \(last)"
            // Where the journal ends: the cut, or else the end of its last segment (cut at a frame boundary, or later segments lost).
            var file = scan.segments.last.map { directory + "/" + $0.name } ?? directory
            var offset = scan.segments.last?.checked?.bytes  // the last segment is always checked
            if let t = scan.report.truncation {
                what = "the journal would end at seq \(last) after cutting its tail at offset \(t.offset) (\(t.bytesRemoved) bytes: \(t.reason))"
                (file, offset) = (t.file, t.offset)
            } else if let offset {
                what += " at the end of its last segment (offset \(offset))"
            }
            throw JournalError(.behindEvidence,
                               "\(what), below seq \(evidence.sequence), which was \(evidence.source): records the store knows were durable are missing; nothing was changed (recover the store explicitly)",
                               file: file, offset: offset)
        }
        guard repair else {
            if let cut = plannedCut { cut.cursor.close() }
            return scan
        }
        if let beforeRepair, scan.report.truncation != nil {
            do { try beforeRepair(scan.report, last) } catch {
                try? scan.tail?.file.close()
                throw error
            }
        }
        if let cut = plannedCut {
            try cut.file.truncate(to: cut.offset)
            try cut.file.sync()
            let t = scan.report.truncation!
            logger.warning("journal torn tail truncated", metadata: [
                "journal.file": "\(t.file)", "journal.offset": "\(t.offset)",
                "journal.bytes_removed": "\(t.bytesRemoved)", "journal.reason": "\(t.reason)",
            ])
        }
        for name in temporaries {
            try fs.removeFile(directory + "/" + name)
            scan.report.removedTemporaryFiles.append(name)
            logger.notice("removed incomplete segment creation", metadata: ["journal.file": "\(directory)/\(name)"])
        }
        if !temporaries.isEmpty { try fs.syncDirectory(directory) }
        return scan
    }

    /// A torn tail may only be cut in the last segment.
    private static func checkCut(cursor: SegmentCursor, at offset: UInt64, reason: String, isLast: Bool) throws(JournalError) {
        guard isLast else {
            cursor.close()
            throw JournalError(.truncated, "segment is not the last, yet ends in an incomplete frame (\(reason)): it was truncated or damaged after it was sealed", file: cursor.path, offset: offset)
        }
    }
}

extension JournalError {
    func withMessage(_ m: String) -> JournalError {
        var c = self
        c.message = m
        return c
    }
}
