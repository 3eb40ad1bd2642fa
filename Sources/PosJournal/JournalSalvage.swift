import Logging
import PosBytes

/// What a salvage copied, and what it could not.
public struct SalvageReport: Sendable, Equatable {
    /// Bytes of the damaged journal that were not copied: where, how many, why.
    public struct Damage: Sendable, Equatable, CustomStringConvertible {
        public let file: String
        /// Offset of the first byte not copied.
        public let offset: UInt64
        public let bytes: UInt64
        public let reason: String
        public var description: String { "\(file) at offset \(offset), \(bytes) bytes: \(reason)" }
    }

    /// Records that could not be recovered: `first...last`, known from the
    /// intact frames on either side. `last` is nil when the damage runs to the
    /// end of the journal, where nothing tells how many records were there.
    public struct Loss: Sendable, Equatable, CustomStringConvertible {
        public let first: UInt64
        public let last: UInt64?
        /// Where the records were: the first damaged bytes after the last intact frame.
        public let file: String
        public let offset: UInt64
        public let reason: String
        public var description: String {
            "seq \(first)...\(last.map(String.init) ?? "(end unknown)") lost: \(file) at offset \(offset): \(reason)"
        }
    }

    /// Sequence ranges copied, each contiguous, ascending.
    public var recovered: [ClosedRange<UInt64>] = []
    public var framesCopied = 0
    public var recordsCopied: UInt64 = 0
    /// Bytes of frames copied (headers included).
    public var frameBytesCopied: UInt64 = 0
    public var damage: [Damage] = []
    public var losses: [Loss] = []
    /// Segment files written to the destination, oldest first.
    public var segmentsWritten: [String] = []

    /// Every intact frame was copied and no record is known or suspected lost.
    public var isComplete: Bool { losses.isEmpty && damage.isEmpty }
}

/// Salvage: the explicit, separate path for a journal that open refused.
///
/// Copies every intact frame (header checksum, fields, payload checksum) of
/// the journal in `source` into a new journal directory, byte for byte, so the
/// records, their sequence numbers and their encryption are kept exactly and no
/// key is needed. The destination's segments are cut wherever the source's
/// continuity breaks: a new destination segment starts at each source segment
/// and after each gap, with base sequence = its first frame's and chain seed =
/// that frame's previous-checksum, so every copied frame is unchanged.
///
/// The damaged journal is only read. Lost records are reported by sequence
/// range, taken from the intact neighbours (previous frame's last + 1 ...
/// next intact frame's first - 1), with the file and offset of the damage.
///
/// A destination with a lost range in the middle holds a sequence gap, which
/// `Journal.open` refuses (`.missingSegment` naming the gap), as it refuses any
/// gap; each range in `recovered` reads back with
/// `JournalReader(from: range.lowerBound, through: range.upperBound)`. A
/// destination with nothing lost in the middle opens as a journal.
public enum JournalSalvage {
    public static func salvage(from source: String, to destination: String,
                               fileSystem fs: any JournalFileSystem = PosixFileSystem(),
                               logger: Logger = Logger(label: "possync.journal.salvage", factory: { _ in SwiftLogNoOpLogHandler() })) throws(JournalError) -> SalvageReport {
        let names = try JournalScan.segmentNames(in: source, fs: fs)
        // A segment from a newer format is not ours to interpret: refuse before writing anything.
        for (_, name) in names {
            let path = source + "/" + name
            let file = try fs.openFile(path, mode: .readOnly)
            let head = try file.read(at: 0, count: JournalLimits.segmentHeaderBytes)
            try? file.close()
            if head.count >= 10, Array(head[0..<8]) == segmentMagic, let v = ByteReader<ByteReadError>(head).getLE(UInt16.self, at: 8), v > journalFormatVersion,
               versionFieldRepaired(head) == nil {
                throw JournalError(.unsupportedVersion, "segment format version \(v); this build reads versions 1...\(journalFormatVersion) and does not salvage newer formats", file: path, offset: 8)
            }
        }
        var output = try SalvageOutput(directory: destination, fs: fs)
        var run = SalvageRun(firstSequence: names.first?.base ?? 1, logger: logger)
        for (base, name) in names {
            let path = source + "/" + name
            let file = try fs.openFile(path, mode: .readOnly)
            defer { try? file.close() }
            let size = try file.size()
            var head = try file.read(at: 0, count: JournalLimits.segmentHeaderBytes)
            if let repaired = versionFieldRepaired(head) {
                run.report.damage.append(.init(file: path, offset: 8, bytes: 2, reason: "version field reads \(ByteReader<ByteReadError>(head).getLE(UInt16.self, at: 8)!), yet the header checksums as version \(journalFormatVersion) with it: the field is damaged, the segment is read as version \(journalFormatVersion)"))
                head = repaired
            }
            let header: SegmentHeader
            do {
                header = try SegmentHeader.decode(head, file: path)
            } catch {
                run.damaged(path, error.offset ?? 0, size, "segment header unreadable (\(error.code): \(error.message)); its frames cannot be decoded without it")
                continue
            }
            guard header.baseSequence == base else {
                run.damaged(path, 32, size, "segment header states base sequence \(header.baseSequence), its file name says \(base)")
                continue
            }
            if let id = run.journalID, id != header.journalID {
                run.damaged(path, 16, size, "segment belongs to journal \(header.journalID), expected \(id)")
                continue
            }
            run.journalID = header.journalID
            // Frames are judged by their own checksums only: salvage judges their places itself.
            let scanner = FrameScanner(file: file, path: path, start: UInt64(JournalLimits.segmentHeaderBytes), end: size,
                                       chain: nil, nextSequence: nil, policy: .resync(placement: false))
            try run.walk(scanner, path: path, header: header, output: &output)
        }
        run.finish()
        try output.finish()
        run.report.segmentsWritten = output.written
        return run.report
    }
}

/// A segment header whose version field reads above this build's but which
/// checksums as a header of this build's version once the field says so: the
/// field is damaged (a newer format's header checksumming as ours is a 1 in
/// 2^32 chance), so the segment is ours to salvage. Returns the header so
/// corrected, or nil.
func versionFieldRepaired(_ bytes: [UInt8]) -> [UInt8]? {
    let r = ByteReader<ByteReadError>(bytes)
    guard bytes.count >= JournalLimits.segmentHeaderBytes, Array(bytes[0..<8]) == segmentMagic,
          let version = r.getLE(UInt16.self, at: 8), version > journalFormatVersion else { return nil }
    var header = ByteWriter(Array(bytes[0..<8]))
    header.writeLE(journalFormatVersion)
    header.writeBytes(bytes[10..<60])
    guard CRC32C.checksum(header.bytes) == r.getLE(UInt32.self, at: 60) else { return nil }
    header.writeBytes(bytes[60..<JournalLimits.segmentHeaderBytes])
    return header.bytes
}

/// The walk over the source's frames, in sequence order.
private struct SalvageRun {
    var report = SalvageReport()
    var journalID: JournalID?
    /// Sequence number the next intact frame should start with.
    var expected: UInt64
    /// Checksum of the last frame copied.
    var chain: UInt32?
    /// The first damage since the last frame copied: where lost records were.
    var pendingDamage: SalvageReport.Damage?
    let logger: Logger

    init(firstSequence: UInt64, logger: Logger) {
        expected = firstSequence
        self.logger = logger
    }

    mutating func damaged(_ file: String, _ offset: UInt64, _ bytes: UInt64, _ reason: String) {
        let d = SalvageReport.Damage(file: file, offset: offset, bytes: bytes, reason: reason)
        report.damage.append(d)
        if pendingDamage == nil { pendingDamage = d }
        logger.warning("salvage: bytes not copied", metadata: [
            "journal.file": "\(file)", "journal.offset": "\(offset)", "journal.bytes": "\(bytes)", "journal.reason": "\(reason)",
        ])
    }

    /// Copies the intact frames of one segment; damage is skipped to the next intact frame.
    mutating func walk(_ scanner: FrameScanner, path: String, header: SegmentHeader, output: inout SalvageOutput) throws(JournalError) {
        var startNewSegment = true   // each source segment starts a destination segment
        while true {
            let frame: RawFrame
            switch try scanner.next() {
            case .end:
                return
            case .incomplete(let offset, let bytes, let reason):
                damaged(path, offset, bytes, reason)
                return
            case .damaged(let error, _, let resume):
                let at = error.offset ?? scanner.offset
                damaged(path, at, (resume ?? scanner.end) - at, error.message)
                guard resume != nil else { return }
                continue
            case .missing:
                preconditionFailure("salvage scans without placement checks")
            case .frame(let f):
                frame = f
            }
            let h = frame.header
            if h.firstSequence < expected {
                // Not a loss: these sequence numbers were copied already (or precede the journal).
                report.damage.append(.init(file: path, offset: frame.offset, bytes: UInt64(h.frameBytes),
                                           reason: "frame seq \(h.firstSequence)...\(h.lastSequence) repeats or precedes records already copied (next expected \(expected)): skipped"))
                continue
            }
            if h.firstSequence > expected {
                let location = pendingDamage
                let reason = location.map { "lost in damaged bytes: \($0.reason)" }
                    ?? (frame.offset == UInt64(JournalLimits.segmentHeaderBytes)
                        ? "no segment file holds them: a segment before this one is missing"
                        : "frame starts at seq \(h.firstSequence), expected \(expected)")
                let loss = SalvageReport.Loss(first: expected, last: h.firstSequence - 1,
                                              file: location?.file ?? path, offset: location?.offset ?? frame.offset, reason: reason)
                report.losses.append(loss)
                logger.error("salvage: records lost", metadata: ["journal.first": "\(loss.first)", "journal.last": "\(h.firstSequence - 1)", "journal.file": "\(loss.file)", "journal.offset": "\(loss.offset)"])
                startNewSegment = true
            } else if let chain, h.previousChecksum != chain {
                report.damage.append(.init(file: path, offset: frame.offset, bytes: 0,
                                           reason: "chain broken: frame seq \(h.firstSequence)...\(h.lastSequence) links to \(Hex.word(h.previousChecksum)), the frame before it has checksum \(Hex.word(chain)); copied, in a new segment"))
                startNewSegment = true
            }
            if startNewSegment {
                try output.startSegment(SegmentHeader(journalID: header.journalID, baseSequence: h.firstSequence, dictionaryID: header.dictionaryID,
                                                      keyID: header.keyID, chainSeed: h.previousChecksum))
                startNewSegment = false
            }
            output.append(frame.bytes)
            if let last = report.recovered.last, last.upperBound + 1 == h.firstSequence {
                report.recovered[report.recovered.count - 1] = last.lowerBound...h.lastSequence
            } else {
                report.recovered.append(h.firstSequence...h.lastSequence)
            }
            report.framesCopied += 1
            report.recordsCopied += UInt64(h.recordCount)
            report.frameBytesCopied += UInt64(h.frameBytes)
            expected = h.lastSequence + 1
            chain = h.checksum
            pendingDamage = nil
        }
    }

    /// Damage after the last intact frame: records from `expected` on may have been there.
    mutating func finish() {
        guard let d = pendingDamage else { return }
        report.losses.append(SalvageReport.Loss(first: expected, last: nil, file: d.file, offset: d.offset,
                                                reason: "damage runs to the end of the journal (\(d.reason)); how many records were there is unknown"))
        pendingDamage = nil
    }
}

/// Writes the destination journal: each segment to a temporary file, fsynced,
/// renamed into place; the directory fsynced at the end.
private struct SalvageOutput {
    let directory: String
    let fs: any JournalFileSystem
    var header: SegmentHeader?
    var buffer: [UInt8] = []
    var written: [String] = []

    init(directory: String, fs: any JournalFileSystem) throws(JournalError) {
        self.directory = directory
        self.fs = fs
        if fs.fileExists(directory) {
            let existing = try fs.listDirectory(directory)
            guard existing.isEmpty else {
                throw JournalError(.invalidArgument, "salvage destination holds \(existing.count) files; it must be a new or empty directory", file: directory)
            }
        } else {
            try fs.createDirectory(directory)
            let parent = FilePath.parent(of: directory)
            try fs.syncDirectory(parent)
        }
    }

    mutating func startSegment(_ h: SegmentHeader) throws(JournalError) {
        try flush()
        header = h
        buffer = h.encoded()
    }

    mutating func append(_ frame: [UInt8]) {
        buffer += frame
    }

    mutating func flush() throws(JournalError) {
        guard let h = header else { return }
        let name = SegmentName.name(base: h.baseSequence)
        let temporary = directory + "/" + String(name.dropLast(SegmentName.suffix.count)) + SegmentName.temporarySuffix
        let file = try fs.openFile(temporary, mode: .createExclusive)
        do {
            try file.write(buffer, at: 0)
            try file.sync()
            try file.close()
        } catch {
            try? file.close()
            throw error
        }
        try fs.rename(temporary, to: directory + "/" + name)
        written.append(name)
        header = nil
        buffer = []
    }

    mutating func finish() throws(JournalError) {
        try flush()
        try fs.syncDirectory(directory)
    }
}
