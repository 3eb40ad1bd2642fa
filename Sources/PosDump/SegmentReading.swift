import PosBytes
import PosJournal

/// One segment file being read: its header, the checks against the segment
/// before it, and a frame scanner that skips damage. Kept open while
/// --follow waits for the file to grow.
final class SegmentReading {
    /// What the next segment is checked against.
    struct End {
        var journalID: JournalID?
        /// Last sequence number read (nil when unknown).
        var lastSequence: UInt64?
        /// Checksum of the last frame when the segment ended cleanly (nil: unknown).
        var chain: UInt32?

        /// An unreadable segment tells nothing: the next one is checked against the last one that did.
        func carrying(_ previous: End?) -> End {
            guard lastSequence == nil, let previous else { return self }
            return End(journalID: journalID ?? previous.journalID, lastSequence: previous.lastSequence, chain: nil)
        }
    }

    unowned let scanner: DumpScanner
    let path: String
    let file: String
    let nameBase: UInt64?
    private(set) var isLast: Bool
    let handle: (any JournalFileHandle)?
    let header: SegmentHeader?
    private var walker: FrameScanner?
    private var finished = false
    private var cleanEnd = false

    init(scanner: DumpScanner, path: String, file: String, nameBase: UInt64?, isLast: Bool, previous: End?) throws(DumpError) {
        self.scanner = scanner
        self.path = path
        self.file = file
        self.nameBase = nameBase
        self.isLast = isLast
        let fs = PosixFileSystem()
        let h: any JournalFileHandle
        let size: UInt64
        let head: [UInt8]
        do {
            h = try fs.openFile(path, mode: .readOnly)
            size = try h.size()
            head = try h.read(at: 0, count: JournalLimits.segmentHeaderBytes)
        } catch {
            throw DumpError("cannot read: \(error.message)", file: file)
        }
        handle = h
        var decoded: SegmentHeader? = nil
        var headerError: JournalError? = nil
        do { decoded = try SegmentHeader.decode(head, file: file) } catch { headerError = error }
        header = decoded
        scanner.segment(SegmentItem(file: file, bytes: size, nameBase: nameBase, header: decoded))

        let start = UInt64(JournalLimits.segmentHeaderBytes)
        if let error = headerError {
            if error.code == .unsupportedVersion || size <= start {
                let reason = error.code == .unsupportedVersion ? "; the segment is not read (a newer format is never guessed at)" : ""
                scanner.damage(DamageItem(kind: .damaged, file: file, offset: 0, bytes: size, code: error.code.description,
                                          reason: "segment header (error at offset \(error.offset ?? 0)): " + error.message + reason,
                                          missingFrom: nil, missingThrough: nil, rawBytes: scanner.options.raw ? head : nil))
                if let nameBase {
                    scanner.notice(NoticeItem(file: file, offset: 0, code: "unreadable",
                                              message: "records from seq \(nameBase) (this segment's base, by its name) are not readable here; how many is not known"))
                }
                walker = nil
                return
            }
            // Frames after a damaged header can still be found and checked; their records cannot be decoded.
            let w = Self.scanner(h, file, start: start, end: size, chain: nil, nextSequence: nameBase.map { max($0, 1) })  // sequence numbers start at 1, whatever a damaged name says
            let resume: UInt64?
            do { resume = try w.nextValidHeader(from: start) } catch { throw DumpError("cannot read: \(error.message)", file: file) }
            let stop = resume ?? size
            scanner.damage(DamageItem(kind: .damaged, file: file, offset: 0, bytes: stop, code: error.code.description,
                                      reason: "segment header (error at offset \(error.offset ?? 0)): \(error.message); " + (resume.map { "frames are read from offset \($0), their records not decoded" } ?? "no valid frame follows"),
                                      missingFrom: nil, missingThrough: nil, rawBytes: scanner.options.raw ? head : nil))
            walker = resume.map { Self.scanner(h, file, start: $0, end: size, chain: nil, nextSequence: nameBase.map { max($0, 1) }) }
            return
        }
        let sh = decoded!
        if let nameBase, sh.baseSequence != nameBase {
            scanner.damage(DamageItem(kind: .damaged, file: file, offset: 32, bytes: 8, code: "baseMismatch",
                                      reason: "segment header states base sequence \(sh.baseSequence), its file name says \(nameBase)",
                                      missingFrom: nil, missingThrough: nil, rawBytes: nil))
        }
        if let previous {
            if let id = previous.journalID, id != sh.journalID {
                scanner.damage(DamageItem(kind: .damaged, file: file, offset: 16, bytes: 16, code: JournalError.Code.journalMismatch.description,
                                          reason: "segment belongs to journal \(sh.journalID), the previous segment to \(id)",
                                          missingFrom: nil, missingThrough: nil, rawBytes: nil))
            }
            if let last = previous.lastSequence {
                let expected = last + 1
                if sh.baseSequence > expected {
                    scanner.damage(DamageItem(kind: .missing, file: file, offset: 32, bytes: 0, code: JournalError.Code.missingSegment.description,
                                              reason: "segment starts at seq \(sh.baseSequence), expected \(expected): records \(expected)...\(sh.baseSequence - 1) are missing (a segment is missing or truncated)",
                                              missingFrom: expected, missingThrough: sh.baseSequence - 1, rawBytes: nil))
                } else if sh.baseSequence < expected {
                    scanner.damage(DamageItem(kind: .damaged, file: file, offset: 32, bytes: 8, code: JournalError.Code.missingSegment.description,
                                              reason: "segment starts at seq \(sh.baseSequence), expected \(expected): it overlaps the previous segment",
                                              missingFrom: nil, missingThrough: nil, rawBytes: nil))
                } else if let chain = previous.chain, chain != sh.chainSeed {
                    scanner.damage(DamageItem(kind: .damaged, file: file, offset: 48, bytes: 4, code: JournalError.Code.chainBroken.description,
                                              reason: "segment chain seed \(Hex.word(sh.chainSeed)) does not match the previous segment's last frame (\(Hex.word(chain)))",
                                              missingFrom: nil, missingThrough: nil, rawBytes: nil))
                }
            }
        } else if nameBase != nil && sh.baseSequence > 1 {
            scanner.notice(NoticeItem(file: file, offset: 32, code: "retired",
                                      message: "the first segment starts at seq \(sh.baseSequence): records 1...\(sh.baseSequence - 1) are not in this directory (retired after sync, or lost with older segments)"))
        }
        walker = Self.scanner(h, file, start: min(start, size), end: size, chain: sh.chainSeed, nextSequence: sh.baseSequence)
    }

    /// The dump reads on past damage, checking every frame's place.
    static func scanner(_ handle: any JournalFileHandle, _ file: String, start: UInt64, end: UInt64, chain: UInt32?, nextSequence: UInt64?) -> FrameScanner {
        FrameScanner(file: handle, path: file, start: start, end: end, chain: chain, nextSequence: nextSequence, policy: .resync(placement: true))
    }

    deinit { try? handle?.close() }

    var end: End {
        let last: UInt64?
        if let w = walker, let next = w.nextSequence, next > 0 { last = next - 1 } else { last = nil }
        return End(journalID: header?.journalID, lastSequence: last ?? header.map { $0.baseSequence > 0 ? $0.baseSequence - 1 : 0 },
                   chain: cleanEnd ? walker?.chain : nil)
    }

    func markNotLast() throws(DumpError) { isLast = false }

    /// Re-reads the file size; true when it grew (the walker then reads on).
    @discardableResult
    func refresh() throws(DumpError) -> Bool {
        guard let handle, let walker, !finished else { return false }
        let size: UInt64
        do { size = try handle.size() } catch { throw DumpError("cannot read: \(error.message)", file: file) }
        guard size > walker.end else { return false }
        walker.setEnd(size)
        return true
    }

    /// Reads frames until the end. With `final` false (following a live
    /// journal), an incomplete frame at the end is waited for, not reported.
    func pump(final: Bool) throws(DumpError) {
        guard let walker, !finished else { return }
        while true {
            let step: FrameScanner.Step
            do { step = try walker.next() } catch { throw DumpError("cannot read: \(error.message)", file: file, offset: error.offset) }
            switch step {
            case .frame(let f):
                scanner.frame(offset: f.offset, header: f.header, bytes: f.bytes, segment: header, file: file, walker: walker)
            case .missing(let from, let through, let offset):
                scanner.damage(DamageItem(kind: .missing, file: file, offset: offset, bytes: 0, code: JournalError.Code.sequenceGap.description,
                                          reason: "records \(from)...\(through) are missing before this frame (lost in the damage before it)",
                                          missingFrom: from, missingThrough: through, rawBytes: nil))
            case .damaged(let error, let fh, let resume):
                let start = error.offset ?? walker.offset
                if let resume {
                    scanner.damage(DamageItem(kind: .damaged, file: file, offset: start, bytes: resume - start, code: error.code.description,
                                              reason: error.message + "; reading resumes at the next valid frame, offset \(resume)",
                                              missingFrom: fh?.firstSequence, missingThrough: fh?.lastSequence,
                                              rawBytes: scanner.rawBytes(walker, at: start, count: resume - start)))
                    continue
                }
                guard final else { return }
                finish(offset: start, bytes: walker.end - start, code: error.code.description,
                       reason: error.message + "; no valid frame follows", header: fh, walker: walker)
                return
            case .incomplete(let offset, let bytes, let reason):
                guard final else { return }
                finish(offset: offset, bytes: bytes, code: JournalError.Code.truncated.description, reason: "incomplete frame: \(reason)", header: nil, walker: walker)
                return
            case .end:
                guard final else { return }
                finished = true
                cleanEnd = true
                return
            }
        }
    }

    /// The segment ends in bytes that are no frame, with nothing valid after:
    /// on the journal's last segment a torn write (open cuts it); on any other, damage.
    private func finish(offset: UInt64, bytes: UInt64, code: String, reason: String, header fh: FrameHeader?, walker: FrameScanner) {
        finished = true
        if isLast {
            scanner.damage(DamageItem(kind: .tornTail, file: file, offset: offset, bytes: bytes, code: code,
                                      reason: reason + ": a torn write at the end of the last segment (open cuts these \(bytes) bytes)",
                                      missingFrom: fh?.firstSequence, missingThrough: fh?.lastSequence, rawBytes: scanner.rawBytes(walker, at: offset, count: bytes)))
        } else {
            scanner.damage(DamageItem(kind: .damaged, file: file, offset: offset, bytes: bytes, code: code,
                                      reason: reason + ": this segment is not the last, so it was truncated or damaged after it was sealed",
                                      missingFrom: fh?.firstSequence, missingThrough: fh?.lastSequence, rawBytes: scanner.rawBytes(walker, at: offset, count: bytes)))
        }
    }
}
