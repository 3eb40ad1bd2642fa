import Crypto
import PosJournal
import PosWire

/// A bundle (sync-protocol.md, "Bundles"): its header, its SHA-256, then its
/// frames through the same walker as a segment's. Unlike `BundleReader`, a
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
        let head: [UInt8]
        do { head = try handle.read(at: 0, count: BundleHeader.bytes) } catch { throw DumpError("cannot read: \(error.message)", file: file, offset: 0) }
        func u16(_ o: Int) -> UInt16 { UInt16(head[o]) | UInt16(head[o + 1]) << 8 }
        func u32(_ o: Int) -> UInt32 { (0..<4).reduce(UInt32(0)) { $0 | UInt32(head[o + $1]) << (8 * $1) } }
        func u64(_ o: Int) -> UInt64 { (0..<8).reduce(UInt64(0)) { $0 | UInt64(head[o + $1]) << (8 * $1) } }
        let version = u16(8)
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
            sink.bundle(BundleItem(file: file, bytes: size, version: version, central: Render.hex(head[10..<26]), terminal: u32(26),
                                   dictionaryID: u32(30), keyID: u32(34), firstSequence: u64(38), lastSequence: u64(46),
                                   frameCount: u32(54), sha256OK: ok))
            if !ok {
                damage(DamageItem(kind: .damaged, file: file, offset: end, bytes: UInt64(BundleHeader.checksumBytes), code: "checksum",
                                  reason: "SHA-256 of the bundle does not match its last 32 bytes: the bundle is truncated or damaged (import refuses it whole); frames are checked one by one below",
                                  missingFrom: nil, missingThrough: nil, rawBytes: nil))
            }
        } catch {
            throw DumpError("cannot read: \(error.message)", file: file, offset: at)
        }
        guard version == BundleHeader.version else {
            damage(DamageItem(kind: .damaged, file: file, offset: 8, bytes: end - 8, code: "versionUnsupported",
                              reason: "bundle format version \(version); this build reads \(BundleHeader.version): not read (never guessed at)",
                              missingFrom: nil, missingThrough: nil, rawBytes: nil))
            return
        }
        let segment = SegmentHeader(journalID: JournalID(bytes: [UInt8](repeating: 0, count: 16))!, baseSequence: max(u64(38), 1),
                                    dictionaryID: u32(30), keyID: u32(34), chainSeed: 0)
        let walker = FrameWalker(file: handle, path: file, start: UInt64(BundleHeader.bytes), end: end, chain: nil, nextSequence: u64(38))
        var frames: UInt32 = 0
        var lastSeq: UInt64? = nil
        loop: while true {
            let step: FrameWalker.Step
            do { step = try walker.step() } catch { throw DumpError("cannot read: \(error.message)", file: file, offset: error.offset) }
            switch step {
            case .frame(let offset, let h, let bytes):
                frames += 1
                lastSeq = h.lastSequence
                frame(offset: offset, header: h, bytes: bytes, segment: segment, file: file, walker: walker)
            case .missing(let from, let through, let offset):
                damage(DamageItem(kind: .missing, file: file, offset: offset, bytes: 0, code: "sequenceGap",
                                  reason: "records \(from)...\(through) are missing before this frame", missingFrom: from, missingThrough: through, rawBytes: nil))
            case .damaged(let start, let resume, let error, let header):
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
        if frames != u32(54) || (lastSeq != nil && lastSeq != u64(46)) {
            damage(DamageItem(kind: .damaged, file: file, offset: 54, bytes: 0, code: "malformed",
                              reason: "bundle header states \(u32(54)) frames through seq \(u64(46)); \(frames) valid frames were found\(lastSeq.map { " through seq \($0)" } ?? "")",
                              missingFrom: nil, missingThrough: nil, rawBytes: nil))
        }
    }
}
