import PosBytes
import Foundation
import PosCentralFiles
import PosJournal
import PosLedger
import PosWire

/// journal-dump on central's snapshot runs (sync-protocol.md, "Central state
/// and snapshots", "Run file"): the header, every data frame and its records
/// by section (events decoded, ticket and duplicate-key entries, digests, loose
/// events), the footer frames, the meta record, the frame index and the key
/// filter's statistics, then a summary. The format is read through
/// `SnapshotRunReader` (PosCentralFiles). Damage is reported like a journal's
/// (file, offset, length, code, reason) and reading goes on where the frame
/// index or the footer offset says the next frame is. Never writes.
///
/// The frames are sealed under central's snapshot key: `--key-file
/// central.json`, or a raw key with `--key-id 4294967294`. Without it every
/// frame is still checked (checksums, numbers, chain) and the header shown.
final class RunDump {
    let options: DumpOptions
    let mode: DumpRun.Mode
    let out: any LineOutput
    private(set) var summary = DumpSummary()
    /// The per-item lines, the summary, the statistics.
    private var items: Bool { !mode.verify && !mode.stats }
    private let sink: any DumpSink

    init(options: DumpOptions, mode: DumpRun.Mode, out: any LineOutput) {
        self.options = options
        self.mode = mode
        self.out = out
        let items = !mode.verify && !mode.stats, summaryLines = mode.verify || !mode.stats
        sink = mode.json ? JSONFormat(out: out, options: options, items: items, summary: summaryLines)
                         : TextFormat(out: out, options: options, items: items, summary: summaryLines)
        summary.path = options.displayPath
    }

    /// Dumps each run file (path, shown as), then the summary (and statistics).
    func run(_ files: [(path: String, display: String)], notices: [NoticeItem] = []) throws(DumpError) -> DumpSummary {
        if options.fromSequence != nil || options.toSequence != nil {
            throw DumpError("--from-seq and --to-seq select journal sequence numbers; a snapshot run has none (use --entity or --type)", file: options.displayPath)
        }
        for n in notices { notice(n) }
        var stats = RunStats()
        for f in files { try dumpRun(f.path, file: f.display, stats: &stats) }
        if mode.stats { stats.print(to: out, json: mode.json, path: options.displayPath) }
        sink.finish(summary)
        return summary
    }

    // MARK: - Reporting

    private func notice(_ n: NoticeItem) {
        summary.notices += 1
        sink.notice(n)
    }

    private func damage(_ d: DamageItem) {
        summary.damagedRanges += 1
        summary.damagedBytes += d.bytes
        if summary.damage.count < options.damageListMax { summary.damage.append(d) } else { summary.damageListTruncated = true }
        sink.damage(d)
    }

    private func damage(_ error: SyncError, file: String, offset fallback: UInt64, to end: UInt64) {
        let offset = Self.offset(of: error) ?? fallback
        damage(DamageItem(kind: .damaged, file: file, offset: offset, bytes: end > offset ? end - offset : 0, code: error.code.description,
                          reason: error.message, missingFrom: nil, missingThrough: nil, rawBytes: nil))
    }

    /// The byte offset a reader's error names ("PATH offset N"), if any.
    static func offset(of error: SyncError) -> UInt64? {
        guard let location = error.location, let r = location.range(of: " offset ", options: .backwards) else { return nil }
        return UInt64(location[r.upperBound...])
    }


    private func line(_ text: String) { if items { out.line(text) } }
    private func json(_ j: JSONObject) { if items { out.line(j.string) } }

    // MARK: - One run

    private func dumpRun(_ path: String, file: String, stats: inout RunStats) throws(DumpError) {
        let reader: SnapshotRunReader
        do { reader = try SnapshotRunReader(path: path) } catch { throw DumpError("cannot read: \(error.message)", file: file) }
        defer { reader.close() }
        summary.runs += 1
        summary.bytes += reader.fileBytes
        let end = reader.fileBytes >= UInt64(SnapshotRunReader.trailerBytes) ? reader.fileBytes - UInt64(SnapshotRunReader.trailerBytes) : 0
        let header: SnapshotRunHeader
        do { header = try reader.header() } catch {
            if error.code == .io { throw DumpError(error.message, file: file) }
            runLine(file: file, bytes: reader.fileBytes, header: nil, footerOffset: nil)
            damage(error, file: file, offset: 0, to: reader.fileBytes)
            return
        }
        var footerOffset: UInt64?
        do { footerOffset = try reader.footerOffset() } catch {
            if error.code == .io { throw DumpError(error.message, file: file) }
            runLine(file: file, bytes: reader.fileBytes, header: header, footerOffset: nil)
            damage(error, file: file, offset: end, to: reader.fileBytes)
        }
        if let footerOffset { runLine(file: file, bytes: reader.fileBytes, header: header, footerOffset: footerOffset) }
        let key = options.keys.key(for: SnapshotRunReader.keyID) ?? options.keys.ids.first.flatMap { options.keys.key(for: $0) }
        let decoder = SnapshotRunReader.decoder(key: key)
        let dataEnd = footerOffset ?? end

        // Pass 1: the footer (frames from its offset to the trailer), so data frames know their sections.
        var footerFrames: [(offset: UInt64, header: FrameHeader, bytes: [UInt8], records: [[UInt8]]?, undecoded: Undecoded?)] = []
        var footerDamage: [DamageItem] = []
        var footer: SnapshotRunFooter?
        if let start = footerOffset {
            var at = start
            var records: [[UInt8]] = []
            var complete = true
            while at < end {
                let f: (header: FrameHeader, bytes: [UInt8])
                do { f = try reader.frame(at: at, end: end) } catch {
                    if error.code == .io { throw DumpError(error.message, file: file, offset: at) }
                    footerDamage.append(DamageItem(kind: .damaged, file: file, offset: at, bytes: end - at, code: error.code.description,
                                                   reason: error.message + "; the footer does not read", missingFrom: nil, missingThrough: nil, rawBytes: nil))
                    complete = false
                    break
                }
                let (decoded, undecoded, broken) = open(f, at: at, reader: reader, decoder: decoder, file: file)
                if let broken { footerDamage.append(broken) }
                if decoded == nil { complete = false }
                records += decoded ?? []
                footerFrames.append((at, f.header, f.bytes, decoded, undecoded))
                at += UInt64(f.header.frameBytes)
            }
            if complete {
                do { footer = try SnapshotRunReader.decodeFooter(records, header: header, footerOffset: start, path: file) } catch {
                    let offset = Self.offset(of: error) ?? start
                    footerDamage.append(DamageItem(kind: .damaged, file: file, offset: offset, bytes: 0, code: error.code.description,
                                                   reason: error.message, missingFrom: nil, missingThrough: nil, rawBytes: nil))
                }
            }
        }

        let damagedBefore = summary.damagedRanges
        // Pass 2: the data frames, in file order, each checked in its place.
        var byOffset: [UInt64: (number: Int, entry: SnapshotRunIndexEntry)] = [:]
        for (i, e) in (footer?.index ?? []).enumerated() { byOffset[e.offset] = (i + 1, e) }
        var counts = [UInt64](repeating: 0, count: SnapshotRunSection.allCases.count)
        var at = UInt64(SnapshotRunReader.headerBytes)
        // The number and chain the next frame must have (nil: unknown after damage).
        var number: UInt64? = 1
        var chain: UInt32? = 0
        while at < dataEnd {
            let f: (header: FrameHeader, bytes: [UInt8])
            do { f = try reader.frame(at: at, end: dataEnd) } catch {
                if error.code == .io { throw DumpError(error.message, file: file, offset: at) }
                // Resume after this frame when its header holds (the payload is what is damaged),
                // else at the next frame the index lists, else at the footer.
                let next: UInt64
                let how: String
                if let h = try? reader.frameHeader(at: at, end: dataEnd) {
                    next = at + UInt64(h.frameBytes)
                    how = "reading resumes after it, at offset \(next) (its header holds)"
                    number = number.map { $0 + 1 }
                    chain = h.checksum
                } else if let listed = byOffset.filter({ $0.key > at }).min(by: { $0.key < $1.key }) {
                    next = listed.key
                    how = "reading resumes at offset \(next), the next frame the index lists"
                    number = UInt64(listed.value.number)
                    chain = nil
                } else {
                    next = dataEnd
                    how = footerOffset == nil ? "nothing after it can be placed" : "reading resumes at the footer"
                    number = footer.map { UInt64($0.index.count + 1) }
                    chain = nil
                }
                damage(DamageItem(kind: .damaged, file: file, offset: at, bytes: next - at, code: error.code.description,
                                  reason: error.message + "; " + how, missingFrom: nil, missingThrough: nil, rawBytes: nil))
                at = next
                continue
            }
            stats.frame(f.header)
            let expectedNumber = number
            defer {
                chain = f.header.checksum
                number = f.header.firstSequence + 1
                at += UInt64(f.header.frameBytes)
            }
            summary.frames += 1
            summary.records += UInt64(f.header.recordCount)
            summary.storedBytes += UInt64(f.header.storedLength)
            summary.blockBytes += UInt64(f.header.blockLength)
            if (expectedNumber != nil && f.header.firstSequence != expectedNumber!) || (chain != nil && f.header.previousChecksum != chain!) {
                damage(DamageItem(kind: .damaged, file: file, offset: at, bytes: UInt64(f.header.frameBytes), code: "chainBroken",
                                  reason: "frame out of place: numbered \(f.header.firstSequence)\(expectedNumber.map { " (expected \($0))" } ?? ""), chained to \(Hex.word(f.header.previousChecksum))\(chain.map { " (expected \(Hex.word($0)))" } ?? ""): its records are not shown",
                                  missingFrom: nil, missingThrough: nil, rawBytes: nil))
                continue
            }
            var section: SnapshotRunSection?
            if let listed = byOffset[at], UInt64(listed.entry.length) == UInt64(f.header.frameBytes) { section = listed.entry.section }
            var (records, undecoded, broken) = open(f, at: at, reader: reader, decoder: decoder, file: file)
            if let broken {
                damage(broken)
                continue
            }
            if records != nil && section == nil && footer != nil {
                undecoded = Undecoded(code: "notIndexed", message: "the frame index lists no frame here: its section is unknown")
                records = nil
            } else if records != nil && footer == nil {
                undecoded = Undecoded(code: "footer", message: "the footer does not read: this frame's section is unknown")
                records = nil
            }
            if let u = undecoded { summary.undecodedFrames[u.code, default: 0] += 1 }
            frameLine(file: file, offset: at, number: f.header.firstSequence, header: f.header, label: section?.description ?? "data", undecoded: undecoded, bytes: f.bytes)
            guard let records, let section else { continue }
            counts[Int(section.rawValue) - 1] += UInt64(records.count)
            stats.section(section, frame: f.header, records: records.count)
            for r in records { record(r, section: section, file: file, frameOffset: at, stats: &stats) }
        }

        // The footer frames, then what the footer says.
        for (i, f) in footerFrames.enumerated() {
            summary.frames += 1
            summary.records += UInt64(f.header.recordCount)
            summary.storedBytes += UInt64(f.header.storedLength)
            summary.blockBytes += UInt64(f.header.blockLength)
            if let u = f.undecoded { summary.undecodedFrames[u.code, default: 0] += 1 }
            stats.frame(f.header)
            let expected: (chain: UInt32?, number: UInt64?) = i == 0 ? (chain, number) : (footerFrames[i - 1].header.checksum, footerFrames[i - 1].header.firstSequence + 1)
            if (expected.number != nil && f.header.firstSequence != expected.number!) || (expected.chain != nil && f.header.previousChecksum != expected.chain!) {
                damage(DamageItem(kind: .damaged, file: file, offset: f.offset, bytes: UInt64(f.header.frameBytes), code: "chainBroken",
                                  reason: "footer frame out of place: numbered \(f.header.firstSequence)\(expected.number.map { " (expected \($0))" } ?? ""), chained to \(Hex.word(f.header.previousChecksum))\(expected.chain.map { " (expected \(Hex.word($0)))" } ?? "")",
                                  missingFrom: nil, missingThrough: nil, rawBytes: nil))
                continue
            }
            frameLine(file: file, offset: f.offset, number: f.header.firstSequence, header: f.header, label: "footer", undecoded: f.undecoded, bytes: f.bytes)
        }
        for d in footerDamage { damage(d) }
        guard let footer else { return }
        metaLines(file: file, footer: footer)
        stats.filter(footer.filter)
        // A run whose frames all read must hold what its meta record counts.
        for (i, c) in counts.enumerated() where c != footer.meta.counts[i] && summary.damagedRanges == damagedBefore {
            damage(DamageItem(kind: .damaged, file: file, offset: footerOffset ?? 0, bytes: 0, code: "malformed",
                              reason: "the meta record counts \(footer.meta.counts[i]) \(SnapshotRunSection.allCases[i]) records; the data frames hold \(c)",
                              missingFrom: nil, missingThrough: nil, rawBytes: nil))
        }
    }

    /// An intact frame's records; or why they were not decoded when the key (or dictionary) is what
    /// is missing or wrong; or the damage when the frame's checksums hold but its content does not open.
    private func open(_ f: (header: FrameHeader, bytes: [UInt8]), at: UInt64, reader: SnapshotRunReader, decoder: FrameDecoder,
                      file: String) -> (records: [[UInt8]]?, undecoded: Undecoded?, damage: DamageItem?) {
        do { return (try reader.records(f.bytes, offset: at, decoder: decoder), nil, nil) } catch {
            if let u = undecodedReason(error) { return (nil, u, nil) }
            return (nil, nil, DamageItem(kind: .damaged, file: file, offset: at, bytes: UInt64(f.header.frameBytes), code: error.code.description,
                                         reason: error.message + " (the frame's checksums hold but its content does not decode)",
                                         missingFrom: nil, missingThrough: nil, rawBytes: nil))
        }
    }

    /// Why an intact frame's records were not decoded, when it is the key (or dictionary) and not the frame.
    private func undecodedReason(_ error: JournalError) -> Undecoded? {
        switch error.code {
        case .missingKey:
            return Undecoded(code: "missingKey", message: "encrypted with the snapshot key (id \(SnapshotRunReader.keyID)) and no key was given (--key-file central.json, or dump the central directory)")
        case .wrongKey:
            return Undecoded(code: "wrongKey", message: "encrypted with the snapshot key (id \(SnapshotRunReader.keyID)); the keys given have ids \(options.keys.ids.map(String.init).joined(separator: ","))")
        case .authenticationFailed:
            return Undecoded(code: "authenticationFailed", message: "the key given for id \(SnapshotRunReader.keyID) does not open it (AES-GCM authentication failed): central.json of another store, or a damaged secret; the checksums hold")
        case .unknownDictionary:
            return Undecoded(code: "unknownDictionary", message: error.message)
        default:
            return nil
        }
    }

    // MARK: - Lines

    private func runLine(file: String, bytes: UInt64, header h: SnapshotRunHeader?, footerOffset: UInt64?) {
        if mode.json {
            var j = JSONObject()
            j.add("kind", "run")
            j.add("file", file)
            j.add("bytes", bytes)
            j.add("headerOk", h != nil)
            if let h {
                j.add("version", UInt64(h.version))
                j.add("central", h.central.hex)
                j.add("position", h.position)
                j.add("firstGeneration", h.firstGeneration)
                j.add("lastGeneration", h.lastGeneration)
            }
            j.add("footerOffset", footerOffset)
            json(j)
        } else if let h {
            line("run \(file) bytes=\(bytes) version=\(h.version) central=\(h.central.hex) position=\(h.position) generations=\(h.firstGeneration)...\(h.lastGeneration) footer=\(footerOffset.map { "@\($0)" } ?? "unreadable")")
        } else {
            line("run \(file) bytes=\(bytes) header=unreadable")
        }
    }

    private func frameLine(file: String, offset: UInt64, number: UInt64, header h: FrameHeader, label: String, undecoded: Undecoded?, bytes: [UInt8]) {
        guard !options.filtersRecords else { return }
        let raw = options.raw ? Array(bytes.prefix(options.rawBytesMax)) : nil
        if mode.json {
            var j = JSONObject()
            j.add("kind", "run-frame")
            j.add("file", file)
            j.add("offset", offset)
            j.add("number", number)
            j.add("section", label)
            JSONFormat.frameFields(h, decoded: undecoded == nil, undecoded: undecoded, raw: raw, into: &j)
            json(j)
        } else {
            var s = "  frame @\(offset) #\(number) \(label) records=\(h.recordCount) block=\(h.blockLength) stored=\(h.storedLength) \(TextFormat.flags(h.flags)) crc=\(Hex.word(h.payloadChecksum)) checksum=\(Hex.word(h.checksum)) prev=\(Hex.word(h.previousChecksum)) ok"
            if let u = undecoded { s += " | records not decoded: \(u.code): \(u.message)" }
            line(s)
            if let raw, items { TextFormat(out: out, options: options).hexDump(raw, total: h.frameBytes, indent: "    ") }
        }
    }

    /// "7:12" for a 12-byte dot key.
    static func dot(_ b: ArraySlice<UInt8>) -> String {
        guard let d = SnapshotRunSection.dot(b) else { return Hex.encode(b) }
        return "\(d.replica):\(d.seq)"
    }

    static func key(_ k: [UInt8], _ section: SnapshotRunSection) -> String {
        switch section {
        case .duplicateKeys: return Hex.encode(k.prefix(16)) + "+" + dot(k.dropFirst(16))
        default: return dot(k[...])
        }
    }

    static func hex64(_ v: UInt64) -> String {
        let h = String(v, radix: 16, uppercase: true)
        return "0x" + String(repeating: "0", count: max(0, 16 - h.count)) + h
    }

    private func record(_ r: [UInt8], section: SnapshotRunSection, file: String, frameOffset: UInt64, stats: inout RunStats) {
        summary.decodedRecords += 1
        var j = JSONObject()
        j.add("kind", "run-record")
        j.add("file", file)
        j.add("frameOffset", frameOffset)
        j.add("section", section.description)
        j.add("bytes", r.count)
        var text = "    \(section) "
        guard r.count >= section.keyBytes else {
            rawRecord(r, reason: "\(r.count) bytes, shorter than the section's \(section.keyBytes)-byte key", text: text, json: j)
            return
        }
        let key = r[0..<section.keyBytes], payload = Array(r[section.keyBytes...])
        switch section {
        case .components, .loose:
            // A component's key is its sale; a loose event's key is its own dot (shown with the event).
            if section == .components {
                j.add("componentSale", Self.dot(key))
                text += "[\(Self.dot(key))] "
            }
            let event: Event
            if options.recordFormat == .opaque {
                rawRecord(r, reason: "opaque record (not decoded)", text: text, json: j)
                return
            }
            do { event = try RecordCodec.decode(payload, context: options.keys.recordContext) } catch {
                rawRecord(r, reason: "not an event: " + compact(error, base: section.keyBytes), text: text, json: j)
                return
            }
            if case .unknown = event.body { summary.unknownTypeRecords += 1 }
            stats.event(event)
            guard matches(event, sale: section == .components ? SnapshotRunSection.dot(key) : nil) else { return }
            j.add("type", event.body.kind?.description ?? "unknown-\(event.body.typeByte)")
            JSONFormat.event(event, into: &j)
            text += TextFormat.event(event)
        case .tickets:
            guard payload.count == 12 else {
                rawRecord(r, reason: "a tickets record's payload is a 12-byte sale id, not \(payload.count) bytes", text: text, json: j)
                return
            }
            guard !options.filtersRecords || entityMatches(ticket: SnapshotRunSection.dot(key), sale: SnapshotRunSection.dot(payload[...])) else { return }
            j.add("ticket", Self.dot(key))
            j.add("sale", Self.dot(payload[...]))
            text += "ticket=\(Self.dot(key)) sale=\(Self.dot(payload[...]))"
        case .duplicateKeys:
            guard payload.isEmpty else {
                rawRecord(r, reason: "a duplicate-keys record has no payload, not \(payload.count) bytes", text: text, json: j)
                return
            }
            guard !options.filtersRecords || entityMatches(ticket: nil, sale: SnapshotRunSection.dot(key.dropFirst(16))) else { return }
            j.add("duplicateKey", Hex.encode(key.prefix(16)))
            j.add("sale", Self.dot(key.dropFirst(16)))
            text += "key=\(Hex.encode(key.prefix(16))) sale=\(Self.dot(key.dropFirst(16)))"
        case .digests:
            guard !payload.isEmpty, payload.count % 8 == 0, let d = SnapshotRunSection.dot(key) else {
                rawRecord(r, reason: "a digests record's payload is 1 to 1,024 digests of 8 bytes, not \(payload.count) bytes", text: text, json: j)
                return
            }
            guard !options.filtersRecords else { return }
            let digests = stride(from: 0, to: payload.count, by: 8).map { i in (0..<8).reduce(UInt64(0)) { $0 | UInt64(payload[i + $1]) << (8 * $1) } }
            let last = d.seq + UInt64(digests.count) - 1
            j.add("replica", d.replica)
            j.add("firstSeq", d.seq)
            j.add("lastSeq", last)
            j.add("digests", strings: digests.map(Self.hex64))
            text += "replica=\(d.replica) seq=\(d.seq)...\(last) " + digests.map(Self.hex64).joined(separator: " ")
        }
        if options.raw {
            j.add("hex", Render.maskedHex(r.prefix(options.rawBytesMax)))
        }
        if mode.json { json(j) } else {
            line(text)
            if options.raw { line("      hex " + Render.maskedHex(r.prefix(options.rawBytesMax)) + (r.count > options.rawBytesMax ? "..." : "")) }
        }
    }

    private func rawRecord(_ r: [UInt8], reason: String, text: String, json j: JSONObject) {
        summary.rawRecords += 1
        guard !options.filtersRecords || options.types.contains("raw") else { return }
        if mode.json {
            var j = j
            j.add("type", "raw")
            j.add("reason", reason)
            j.add("hex", Render.maskedHex(r.prefix(options.raw ? options.rawBytesMax : options.previewBytesMax)))
            json(j)
        } else {
            line(text + "raw \(r.count) bytes hex=" + Render.maskedHex(r.prefix(options.raw ? options.rawBytesMax : options.previewBytesMax))
                 + (r.count > (options.raw ? options.rawBytesMax : options.previewBytesMax) ? "..." : "") + " (\(reason))")
        }
    }

    /// --type and --entity on a run's events: a component's events all belong to its sale.
    private func matches(_ e: Event, sale: (replica: UInt32, seq: UInt64)?) -> Bool {
        if !options.types.isEmpty {
            let name = e.body.kind?.description ?? "unknown-\(e.body.typeByte)"
            guard options.types.contains(name) || options.types.contains(String(e.body.typeByte))
                || (e.body.kind == nil && options.types.contains("unknown")) else { return false }
        }
        guard let entity = options.entity else { return true }
        if let sale, sale.replica == entity.replica.rawValue && sale.seq == entity.seq { return true }
        return e.dot == entity || e.saleId?.dot == entity || e.ticketId?.dot == entity
    }

    /// --entity on a tickets or duplicate-keys entry (with --type set, such entries are not shown).
    private func entityMatches(ticket: (replica: UInt32, seq: UInt64)?, sale: (replica: UInt32, seq: UInt64)?) -> Bool {
        guard options.types.isEmpty, let entity = options.entity else { return false }
        for d in [ticket, sale] { if let d, d.replica == entity.replica.rawValue && d.seq == entity.seq { return true } }
        return false
    }

    private func metaLines(file: String, footer: SnapshotRunFooter) {
        guard !options.filtersRecords else { return }
        let m = footer.meta
        let names = SnapshotRunSection.allCases.map(\.description)
        if mode.json {
            var j = JSONObject()
            j.add("kind", "run-meta")
            j.add("file", file)
            j.add("position", m.position)
            j.add("journalDigest", Self.hex64(m.journalDigest))
            j.add("firstGeneration", m.firstGeneration)
            j.add("lastGeneration", m.lastGeneration)
            j.add("centralSequence", m.centralSequence)
            j.add("lastHlc", m.lastHLC)
            j.add("lastHlcTime", Render.isoTime(millis: HLCTimestamp(rawValue: m.lastHLC).millis))
            j.add("terminals", array: m.marks.map { var t = JSONObject(); t.add("terminal", $0.terminal); t.add("mark", $0.mark); return t })
            var counts = JSONObject()
            for (i, n) in names.enumerated() { counts.add(n, m.counts[i]) }
            j.add("counts", object: counts)
            j.add("dataFrames", m.dataFrames)
            j.add("filterWords", m.filterWords)
            json(j)
            for (i, e) in footer.index.enumerated() {
                var x = JSONObject()
                x.add("kind", "run-index")
                x.add("file", file)
                x.add("number", i + 1)
                x.add("section", e.section.description)
                x.add("offset", e.offset)
                x.add("length", e.length)
                x.add("firstKey", Self.key(e.firstKey, e.section))
                x.add("lastKey", Self.key(e.lastKey, e.section))
                json(x)
            }
            json(Self.filterObject(footer.filter, file: file))
        } else {
            line("  meta position=\(m.position) journal-digest=\(Self.hex64(m.journalDigest)) generations=\(m.firstGeneration)...\(m.lastGeneration) central-seq=\(m.centralSequence) last-hlc=\(Render.hlc(HLCTimestamp(rawValue: m.lastHLC))) terminals=\(m.marks.isEmpty ? "none" : m.marks.map { "\($0.terminal):\($0.mark)" }.joined(separator: ","))")
            line("  counts " + names.enumerated().map { "\($1)=\(m.counts[$0])" }.joined(separator: " ") + " data-frames=\(m.dataFrames) filter-words=\(m.filterWords)")
            for (i, e) in footer.index.enumerated() {
                line("  index #\(i + 1) \(e.section) @\(e.offset) bytes=\(e.length) keys=\(Self.key(e.firstKey, e.section))...\(Self.key(e.lastKey, e.section))")
            }
            line("  " + Self.filterText(footer.filter))
        }
    }

    static func filterText(_ f: SnapshotRunFilterStatistics) -> String {
        "filter words=\(f.words) bits=\(f.bits) set=\(f.bitsSet) (\(percent(UInt64(f.bitsSet) * 1_000_000 / UInt64(max(f.bits, 1))))) probes=\(f.probes) bits-per-key=\(f.bitsPerKey) keyed-records=\(f.keyedRecords) false-positives=\(percent(f.falsePositivesPerMillion))"
    }

    static func filterObject(_ f: SnapshotRunFilterStatistics, file: String?) -> JSONObject {
        var j = JSONObject()
        j.add("kind", "run-filter")
        if let file { j.add("file", file) }
        j.add("words", f.words)
        j.add("bits", f.bits)
        j.add("bitsSet", f.bitsSet)
        j.add("probes", f.probes)
        j.add("bitsPerKey", f.bitsPerKey)
        j.add("keyedRecords", f.keyedRecords)
        j.add("falsePositivesPerMillion", f.falsePositivesPerMillion)
        return j
    }

    /// Parts per million as a percentage with two decimals: 12345 -> "1.23%".
    static func percent(_ ppm: UInt64) -> String {
        let hundredths = ppm / 100
        return "\(hundredths / 100).\(Render.pad(Int(hundredths % 100), 2))%"
    }
}

/// `--stats` on runs: per section records, frames and bytes; event types; the key filters.
struct RunStats {
    var sections: [SnapshotRunSection: (records: UInt64, frames: UInt64, blockBytes: UInt64, storedBytes: UInt64)] = [:]
    var types: [String: UInt64] = [:]
    var frames: UInt64 = 0, blockBytes: UInt64 = 0, storedBytes: UInt64 = 0
    var filters: [SnapshotRunFilterStatistics] = []

    mutating func frame(_ h: FrameHeader) {
        frames += 1
        blockBytes += UInt64(h.blockLength)
        storedBytes += UInt64(h.storedLength)
    }

    mutating func section(_ s: SnapshotRunSection, frame h: FrameHeader, records: Int) {
        var x = sections[s] ?? (0, 0, 0, 0)
        x.records += UInt64(records)
        x.frames += 1
        x.blockBytes += UInt64(h.blockLength)
        x.storedBytes += UInt64(h.storedLength)
        sections[s] = x
    }

    mutating func event(_ e: Event) { types[e.body.kind?.description ?? "unknown-\(e.body.typeByte)", default: 0] += 1 }
    mutating func filter(_ f: SnapshotRunFilterStatistics) { filters.append(f) }

    func print(to out: any LineOutput, json: Bool, path: String) {
        if json {
            var j = JSONObject()
            j.add("kind", "run-stats")
            j.add("path", path)
            j.add("frames", frames)
            j.add("blockBytes", blockBytes)
            j.add("storedBytes", storedBytes)
            j.add("sections", array: SnapshotRunSection.allCases.map { s in
                let x = sections[s] ?? (0, 0, 0, 0)
                var o = JSONObject()
                o.add("section", s.description)
                o.add("records", x.records)
                o.add("frames", x.frames)
                o.add("blockBytes", x.blockBytes)
                o.add("storedBytes", x.storedBytes)
                return o
            })
            j.add("types", array: types.sorted { $0.key < $1.key }.map { var o = JSONObject(); o.add("type", $0.key); o.add("count", $0.value); return o })
            j.add("filters", array: filters.map { RunDump.filterObject($0, file: nil) })
            out.line(j.string)
        } else {
            out.line("stats \(path)")
            out.line("  frames=\(frames) block-bytes=\(blockBytes) stored-bytes=\(storedBytes) ratio=\(TextFormat.ratio(blockBytes, storedBytes))")
            for s in SnapshotRunSection.allCases {
                let x = sections[s] ?? (0, 0, 0, 0)
                out.line("  section \(s) records=\(x.records) frames=\(x.frames) block-bytes=\(x.blockBytes) stored-bytes=\(x.storedBytes)")
            }
            for (t, n) in types.sorted(by: { $0.key < $1.key }) { out.line("  type \(t) events=\(n)") }
            for f in filters { out.line("  " + RunDump.filterText(f)) }
        }
    }
}
