import Foundation
import PosBytes
import PosJournal
import PosLedger
import PosWire

/// Reads a journal directory, one segment file or a bundle, checks every
/// byte of it, and hands what it finds to a sink, in file order. Damage is
/// the normal case here: every damaged range is reported with its file,
/// offset and reason, and reading goes on at the next intact frame. A record
/// is handed to the sink only from a frame whose checksums, chain and
/// sequence number hold and whose records decrypted and decoded.
///
/// Memory: one read buffer (256 KiB), one frame (at most ~4 MiB) and its
/// records, the first `damageListMax` damage items, and the entities of
/// --entity. Nothing grows with the number of records.
public final class DumpScanner {
    public let options: DumpOptions
    let sink: any DumpSink
    public internal(set) var summary = DumpSummary()
    let fs = PosixFileSystem()
    private let dictionaries: [CompressionDictionary]
    private var decoders: [UInt32: FrameDecoder] = [:]
    private var entities: Set<Dot> = []
    private var recordFormat: RecordFormat = .events

    public init(options: DumpOptions, sink: any DumpSink) {
        self.options = options
        self.sink = sink
        dictionaries = [ledgerDictionary] + options.dictionaries
        if let e = options.entity { entities.insert(e) }
        summary.path = options.displayPath
    }

    /// What PATH is.
    enum Input {
        case directory([(base: UInt64, name: String)], others: [String])
        case segment
        case bundle
    }

    func classify() throws(DumpError) -> Input {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: options.path, isDirectory: &isDirectory) else {
            throw DumpError("no such file or directory", file: options.displayPath)
        }
        if isDirectory.boolValue {
            let names: [String]
            do { names = try fs.listDirectory(options.path) } catch {
                throw DumpError("cannot list directory: \(error.message)", file: options.displayPath)
            }
            let segments = names.compactMap { n in SegmentName.base(of: n).map { (base: $0, name: n) } }.sorted { $0.base < $1.base }
            guard !segments.isEmpty else {
                let hint = names.contains("outbound") || names.contains("journal") ? " (a terminal or central directory? dump its outbound/, inbound/ or journal/ directory, or the store directory itself)"
                    : names.contains(where: { $0.hasPrefix("run-") && $0.hasSuffix(".pss") }) ? " (central's state/ directory of snapshot runs: journal-dump PATH reads them as runs)" : ""
                throw DumpError("no segment files (20-digit name, .seg) in the directory\(hint)", file: options.displayPath)
            }
            return .directory(segments, others: names.filter { SegmentName.base(of: $0) == nil })
        }
        let head = try readPrefix(options.path, count: 8)
        if head == segmentMagic { return .segment }
        if head == BundleHeader.magic { return .bundle }
        if head == Array("PSSNAPSH".utf8) {
            throw DumpError("a central snapshot run (magic PSSNAPSH), not a journal: this scanner reads journals, segments and bundles; journal-dump PATH (DumpRun) reads runs (sync-protocol.md, \"Run file\")", file: options.displayPath, offset: 0)
        }
        if head == CheckpointHeader.magic {
            throw DumpError("a \(CheckpointNotice.describe(options.path)), not a journal: dump the store directory or its outbound/ and inbound/", file: options.displayPath, offset: 0)
        }
        throw DumpError("not a journal segment (magic PSJOURNL) nor a bundle (magic PSBUNDLE): starts with \(Hex.encode(head))", file: options.displayPath, offset: 0)
    }

    private func readPrefix(_ path: String, count: Int) throws(DumpError) -> [UInt8] {
        do {
            let h = try fs.openFile(path, mode: .readOnly)
            defer { try? h.close() }
            return try h.read(at: 0, count: count)
        } catch {
            throw DumpError("cannot read: \(error.message)", file: options.displayPath)
        }
    }

    private func display(_ name: String) -> String {
        options.displayPath.hasSuffix("/") ? options.displayPath + name : options.displayPath + "/" + name
    }

    // MARK: - Running

    /// Reads everything once and finishes the sink. Throws only for usage or
    /// I/O problems (exit code 2); damage is in the summary.
    @discardableResult
    public func run() throws(DumpError) -> DumpSummary {
        try run(follow: nil)
    }

    /// How --follow polls a growing journal.
    public struct Follow: Sendable {
        public var pollMilliseconds: Int
        /// Stop after this long without growth (nil: until `shouldStop` or the process is stopped).
        public var stopAfterIdleMilliseconds: Int?
        public var shouldStop: @Sendable () -> Bool
        public init(pollMilliseconds: Int = 500, stopAfterIdleMilliseconds: Int? = nil, shouldStop: @escaping @Sendable () -> Bool = { false }) {
            precondition(pollMilliseconds > 0)
            self.pollMilliseconds = pollMilliseconds
            self.stopAfterIdleMilliseconds = stopAfterIdleMilliseconds
            self.shouldStop = shouldStop
        }
    }

    @discardableResult
    public func run(follow: Follow?) throws(DumpError) -> DumpSummary {
        let input = try classify()
        switch input {
        case .segment:
            recordFormat = options.recordFormat ?? .events
            let reading = try SegmentReading(scanner: self, path: options.path, file: options.displayPath, nameBase: nil, isLast: true, previous: nil)
            try reading.pump(final: follow == nil)
            if let follow {
                try followLoop(follow, current: reading, directory: false)
            }
        case .bundle:
            guard follow == nil else { throw DumpError("--follow reads a growing journal; a bundle is written whole", file: options.displayPath) }
            recordFormat = options.recordFormat ?? .events
            try dumpBundle()
        case .directory(let segments, let others):
            let dirName = (options.path as NSString).standardizingPath.split(separator: "/").last.map(String.init) ?? ""
            recordFormat = options.recordFormat ?? (dirName == "inbound" ? .inbound : .events)
            for name in others where name.hasSuffix(SegmentName.temporarySuffix) {
                notice(NoticeItem(file: display(name), offset: nil, code: "temporaryFile", message: "an incomplete segment creation; it holds no records and open removes it"))
            }
            var previous: SegmentReading.End? = nil
            var reading: SegmentReading? = nil
            for (i, s) in segments.enumerated() {
                let isLast = i == segments.count - 1
                let r = try SegmentReading(scanner: self, path: options.path + "/" + s.name, file: display(s.name), nameBase: s.base,
                                           isLast: isLast, previous: previous)
                try r.pump(final: !(isLast && follow != nil))
                previous = r.end.carrying(previous)
                reading = r
            }
            if let follow, let reading {
                try followLoop(follow, current: reading, directory: true)
            }
        }
        sink.finish(summary)
        return summary
    }

    private func followLoop(_ follow: Follow, current start: SegmentReading, directory: Bool) throws(DumpError) {
        var current = start
        var idle = 0
        while !follow.shouldStop() {
            if let limit = follow.stopAfterIdleMilliseconds, idle >= limit { break }
            usleep(useconds_t(follow.pollMilliseconds * 1000))
            var grew = false
            if directory, let base = current.header?.baseSequence ?? current.nameBase {
                let names = (try? fs.listDirectory(options.path)) ?? []
                let newer = names.compactMap { n in SegmentName.base(of: n).map { (base: $0, name: n) } }.filter { $0.base > base }.sorted { $0.base < $1.base }
                if !newer.isEmpty {
                    // The current segment is sealed: read it to its end, then the new ones.
                    try current.refresh()
                    try current.markNotLast()
                    try current.pump(final: true)
                    var previous = current.end
                    for (i, s) in newer.enumerated() {
                        let isLast = i == newer.count - 1
                        let r = try SegmentReading(scanner: self, path: options.path + "/" + s.name, file: display(s.name), nameBase: s.base, isLast: isLast, previous: previous)
                        try r.pump(final: !isLast)
                        previous = r.end.carrying(previous)
                        current = r
                    }
                    grew = true
                }
            }
            if try current.refresh() {
                try current.pump(final: false)
                grew = true
            }
            idle = grew ? 0 : idle + follow.pollMilliseconds
        }
        try current.pump(final: true)
    }

    // MARK: - What readings report

    func segment(_ item: SegmentItem) {
        summary.segments += 1
        summary.bytes += item.bytes
        sink.segment(item)
    }

    func notice(_ item: NoticeItem) {
        summary.notices += 1
        sink.notice(item)
    }

    func damage(_ item: DamageItem) {
        switch item.kind {
        case .tornTail:
            summary.tornTail = item
        case .damaged:
            summary.damagedRanges += 1
            summary.damagedBytes += item.bytes
        case .missing:
            if let f = item.missingFrom, let t = item.missingThrough, t >= f { summary.missingRecords += t - f + 1 }
            if item.bytes > 0 {
                summary.damagedRanges += 1
                summary.damagedBytes += item.bytes
            }
        }
        if summary.damage.count < options.damageListMax {
            summary.damage.append(item)
        } else {
            summary.damageListTruncated = true
        }
        sink.damage(item)
    }

    func rawBytes(_ walker: FrameScanner, at: UInt64, count: UInt64) -> [UInt8]? {
        guard options.raw else { return nil }
        return try? walker.bytes(at: at, count: Int(min(count, UInt64(options.rawBytesMax))))
    }

    private func decoder(keyID: UInt32) -> FrameDecoder {
        if let d = decoders[keyID] { return d }
        // With no key for this id but some other key, the decoder reports wrongKey (not missingKey).
        let key = keyID == 0 ? nil : (options.keys.key(for: keyID) ?? options.keys.ids.first.flatMap { options.keys.key(for: $0) })
        let d = FrameDecoder(dictionaries: dictionaries, key: key)
        decoders[keyID] = d
        return d
    }

    /// A frame whose checksums, chain and sequence hold: count it, decode its
    /// records when wanted, and hand frame and records to the sink.
    func frame(offset: UInt64, header h: FrameHeader, bytes: [UInt8], segment: SegmentHeader?, file: String, walker: FrameScanner) {
        summary.frames += 1
        summary.records += UInt64(h.recordCount)
        summary.storedBytes += UInt64(h.storedLength)
        summary.blockBytes += UInt64(h.blockLength)
        if summary.firstSequence == nil || h.firstSequence < summary.firstSequence! { summary.firstSequence = h.firstSequence }
        if summary.lastSequence == nil || h.lastSequence > summary.lastSequence! { summary.lastSequence = h.lastSequence }
        let inRange = options.inSequenceRange(h.firstSequence, h.lastSequence)
        let raw = options.raw && inRange ? Array(bytes.prefix(options.rawBytesMax)) : nil
        guard inRange && options.decodeRecords else {
            if inRange && !options.filtersRecords {
                sink.frame(FrameItem(file: file, offset: offset, header: h, undecoded: nil, rawBytes: raw))
            }
            return
        }
        guard let segment else {
            let u = Undecoded(code: "segmentHeader", message: "the segment header is damaged: the dictionary and key of this frame are unknown, so its records are not decoded")
            summary.undecodedFrames[u.code, default: 0] += 1
            if !options.filtersRecords { sink.frame(FrameItem(file: file, offset: offset, header: h, undecoded: u, rawBytes: raw)) }
            return
        }
        let records: [[UInt8]]
        let frameDecoder = decoder(keyID: segment.keyID)
        let result = bytes.withUnsafeBytes { p in
            Result { () throws(JournalError) in
                try frameDecoder.records(h, payload: UnsafeRawBufferPointer(rebasing: p[JournalLimits.frameHeaderBytes...]),
                                         segment: segment, file: file, offset: offset)
            }
        }
        do {
            records = try result.get()
        } catch {
            switch error.code {
            case .missingKey, .wrongKey, .authenticationFailed, .unknownDictionary:
                // The checksums hold, so the stored bytes are as written: the reader lacks the right key or dictionary.
                let message: String
                switch error.code {
                case .missingKey: message = "encrypted with key id \(segment.keyID) and no key was given (--key-file)"
                case .wrongKey: message = "encrypted with key id \(segment.keyID); the keys given have ids \(options.keys.ids.map(String.init).joined(separator: ","))"
                case .authenticationFailed: message = "the key given for id \(segment.keyID) does not open it (AES-GCM authentication failed); the checksums hold, so the key is wrong, not the frame"
                default: message = "compression dictionary \(segment.dictionaryID) is not known (--dictionary \(segment.dictionaryID)=FILE)"
                }
                let u = Undecoded(code: error.code.description, message: message)
                summary.undecodedFrames[u.code, default: 0] += 1
                if !options.filtersRecords { sink.frame(FrameItem(file: file, offset: offset, header: h, undecoded: u, rawBytes: raw)) }
            default:
                // Checksums hold but the content does not open: a writer's bug or deliberate change. Its records are not shown.
                damage(DamageItem(kind: .damaged, file: file, offset: offset, bytes: UInt64(h.frameBytes), code: error.code.description,
                                  reason: error.message + " (the frame's checksums hold but its content does not decode)",
                                  missingFrom: h.firstSequence, missingThrough: h.lastSequence, rawBytes: raw))
            }
            return
        }
        if !options.filtersRecords { sink.frame(FrameItem(file: file, offset: offset, header: h, undecoded: nil, rawBytes: raw)) }
        for (i, r) in records.enumerated() {
            let seq = h.firstSequence + UInt64(i)
            guard options.inSequenceRange(seq) else { continue }
            let content = RecordDecoding.decode(r, format: recordFormat, context: options.keys.recordContext)
            summary.decodedRecords += 1
            let item = RecordItem(file: file, frameOffset: offset, sequence: seq, bytes: r, content: content)
            if case .raw = content { summary.rawRecords += 1 }
            if case .unknown = item.event?.body { summary.unknownTypeRecords += 1 }
            if matches(item) { sink.record(item) }
        }
    }

    // MARK: - Filters

    func matches(_ item: RecordItem) -> Bool {
        if !options.types.isEmpty {
            let name = typeName(item.content)
            var ok = options.types.contains(name)
            if !ok, let e = item.event {
                ok = options.types.contains(String(e.body.typeByte)) || (e.body.kind == nil && options.types.contains("unknown"))
            }
            if !ok { return false }
        }
        if options.entity != nil {
            guard let e = item.event else { return false }
            if let s = e.saleId?.dot, entities.contains(s) {
                // A request on the sale opens a ticket: its later events belong to the sale's story too.
                if case .refundRequested = e.body { entities.insert(e.dot) }
                return true
            }
            if let t = e.ticketId?.dot, entities.contains(t) { return true }
            return false
        }
        return true
    }
}

/// The names of the inbound journal's non-event records (kinds 2...8), as --type matches them.
public let inboundRecordTypeNames = ["inbound-ack", "inbound-synced", "inbound-cursor", "inbound-central-behind",
                                     "inbound-epoch", "inbound-recovered", "inbound-reserved"]

/// The name --type matches and the outputs show for a record.
func typeName(_ content: RecordContent) -> String {
    switch content {
    case .event(let e), .pulled(_, let e):
        return e.body.kind?.description ?? "unknown-\(e.body.typeByte)"
    case .acknowledged: return "inbound-ack"
    case .synced: return "inbound-synced"
    case .pullCursor: return "inbound-cursor"
    case .centralBehind: return "inbound-central-behind"
    case .epoch: return "inbound-epoch"
    case .recovered: return "inbound-recovered"
    case .reserved: return "inbound-reserved"
    case .scopeFloor: return "inbound-scope-floor"
    case .raw: return "raw"
    }
}
