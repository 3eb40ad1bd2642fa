import Crypto
import PosBytes
import PosJournal
import PosWire

/// A bundle (sync-protocol.md, "Bundles"): its header, its SHA-256, then its
/// frames through the same scanner as a segment's. Unlike `BundleReader`, a
/// damaged bundle is not refused: every intact frame is still shown.
extension DumpScanner {
    func dumpBundle() throws(DumpError) {
        let file = options.displayPath
        let handle: any JournalFileHandle
        let size: UInt64
        do {
            handle = try fs.openFile(options.path, mode: .readOnly)
            size = try handle.size()
        } catch {
            throw DumpError("cannot read: \(error.message)", file: file)
        }
        defer { try? handle.close() }
        summary.bundles += 1
        summary.bytes += size
        let minimum = UInt64(BundleHeader.bytes + BundleHeader.checksumBytes)
        guard size >= minimum else {
            damage(DamageItem(kind: .damaged, file: file, offset: 0, bytes: size, code: "truncated",
                              reason: "bundle is \(size) bytes, shorter than its header and checksum (\(minimum))", missingFrom: nil, missingThrough: nil, rawBytes: nil))
            return
        }
        let head: BundleHeader.Stored
        do {
            // The size was checked above: the header is whole.
            head = BundleHeader.Stored(try handle.read(at: 0, count: BundleHeader.bytes))!
        } catch { throw DumpError("cannot read: \(error.message)", file: file, offset: 0) }
        let version = head.version
        // SHA-256 of everything before the last 32 bytes, streamed.
        var hasher = SHA256()
        let end = size - UInt64(BundleHeader.checksumBytes)
        var at: UInt64 = 0
        do {
            while at < end {
                let n = Int(min(UInt64(1 << 20), end - at))
                hasher.update(data: try handle.read(at: at, count: n))
                at += UInt64(n)
            }
            let stored = try handle.read(at: end, count: BundleHeader.checksumBytes)
            let ok = Array(hasher.finalize()) == stored
            sink.bundle(BundleItem(file: file, bytes: size, version: version, central: Hex.encode(head.central), terminal: head.terminal,
                                   dictionaryID: head.dictionaryID, keyID: head.keyID, firstSequence: head.firstSequence, lastSequence: head.lastSequence,
                                   frameCount: head.frameCount, sha256OK: ok))
            if !ok {
                damage(DamageItem(kind: .damaged, file: file, offset: end, bytes: UInt64(BundleHeader.checksumBytes), code: "checksum",
                                  reason: "SHA-256 of the bundle does not match its last 32 bytes: the bundle is truncated or damaged (import refuses it whole); frames are checked one by one below",
                                  missingFrom: nil, missingThrough: nil, rawBytes: nil))
            }
        } catch {
            throw DumpError("cannot read: \(error.message)", file: file, offset: at)
        }
        guard version == BundleHeader.version else {
            let at = UInt64(BundleHeader.Offset.version)
            damage(DamageItem(kind: .damaged, file: file, offset: at, bytes: end - at, code: "versionUnsupported",
                              reason: "bundle format version \(version); this build reads \(BundleHeader.version): not read (never guessed at)",
                              missingFrom: nil, missingThrough: nil, rawBytes: nil))
            return
        }
        let segment = SegmentHeader(journalID: JournalID(bytes: [UInt8](repeating: 0, count: 16))!, baseSequence: max(head.firstSequence, 1),
                                    dictionaryID: head.dictionaryID, keyID: head.keyID, chainSeed: 0)
        let walker = SegmentReading.scanner(handle, file, start: UInt64(BundleHeader.bytes), end: end, chain: nil, nextSequence: head.firstSequence)
        var frames: UInt32 = 0
        var lastSeq: UInt64? = nil
        loop: while true {
            let step: FrameScanner.Step
            do { step = try walker.next() } catch { throw DumpError("cannot read: \(error.message)", file: file, offset: error.offset) }
            switch step {
            case .frame(let f):
                frames += 1
                lastSeq = f.header.lastSequence
                frame(offset: f.offset, header: f.header, bytes: f.bytes, segment: segment, file: file, walker: walker)
            case .missing(let from, let through, let offset):
                damage(DamageItem(kind: .missing, file: file, offset: offset, bytes: 0, code: "sequenceGap",
                                  reason: "records \(from)...\(through) are missing before this frame", missingFrom: from, missingThrough: through, rawBytes: nil))
            case .damaged(let error, let header, let resume):
                let start = error.offset ?? walker.offset
                let stop = resume ?? end
                damage(DamageItem(kind: .damaged, file: file, offset: start, bytes: stop - start, code: error.code.description,
                                  reason: error.message + (resume == nil ? "; no valid frame follows before the checksum" : "; reading resumes at offset \(stop)"),
                                  missingFrom: header?.firstSequence, missingThrough: header?.lastSequence, rawBytes: rawBytes(walker, at: start, count: stop - start)))
                if resume == nil { break loop }
            case .incomplete(let offset, let bytes, let reason):
                damage(DamageItem(kind: .damaged, file: file, offset: offset, bytes: bytes, code: "truncated",
                                  reason: "incomplete frame before the checksum: \(reason)", missingFrom: nil, missingThrough: nil, rawBytes: rawBytes(walker, at: offset, count: bytes)))
                break loop
            case .end:
                break loop
            }
        }
        if frames != head.frameCount || (lastSeq != nil && lastSeq != head.lastSequence) {
            damage(DamageItem(kind: .damaged, file: file, offset: UInt64(BundleHeader.Offset.frameCount), bytes: 0, code: "malformed",
                              reason: "bundle header states \(head.frameCount) frames through seq \(head.lastSequence); \(frames) valid frames were found\(lastSeq.map { " through seq \($0)" } ?? "")",
                              missingFrom: nil, missingThrough: nil, rawBytes: nil))
        }
    }
}
