import PosBytes
import PosJournal
import PosLedger

/// The default output: one readable line per segment, frame, record, damaged
/// range and notice, then the summary. Deterministic: no run times, paths as
/// given.
public final class TextFormat: DumpSink {
    let out: any LineOutput
    let options: DumpOptions
    let items: Bool
    let summaryLines: Bool

    public init(out: any LineOutput, options: DumpOptions, items: Bool = true, summary: Bool = true) {
        self.out = out
        self.options = options
        self.items = items
        self.summaryLines = summary
    }

    public func segment(_ s: SegmentItem) {
        guard items else { return }
        if let h = s.header {
            out.line("segment \(s.file) bytes=\(s.bytes) version=\(h.version) journal=\(h.journalID) base=\(h.baseSequence) dictionary=\(h.dictionaryID) key=\(h.keyID) chain-seed=\(Hex.word(h.chainSeed))")
        } else {
            out.line("segment \(s.file) bytes=\(s.bytes) header=unreadable")
        }
    }

    public func bundle(_ b: BundleItem) {
        guard items else { return }
        out.line("bundle \(b.file) bytes=\(b.bytes) version=\(b.version) central=\(b.central) terminal=\(b.terminal) dictionary=\(b.dictionaryID) key=\(b.keyID) seq=\(b.firstSequence)...\(b.lastSequence) frames=\(b.frameCount) sha256=\(b.sha256OK ? "ok" : "MISMATCH")")
    }

    static func flags(_ f: FrameFlags) -> String {
        switch (f.contains(.deflated), f.contains(.encrypted)) {
        case (true, true): "deflated+encrypted"
        case (true, false): "deflated"
        case (false, true): "encrypted"
        case (false, false): "uncompressed"
        }
    }

    public func frame(_ f: FrameItem) {
        guard items else { return }
        let h = f.header
        var line = "  frame @\(f.offset) seq=\(h.firstSequence)...\(h.lastSequence) records=\(h.recordCount) block=\(h.blockLength) stored=\(h.storedLength) \(Self.flags(h.flags)) crc=\(Hex.word(h.payloadChecksum)) checksum=\(Hex.word(h.checksum)) prev=\(Hex.word(h.previousChecksum)) ok"
        if let u = f.undecoded { line += " | records not decoded: \(u.code): \(u.message)" }
        out.line(line)
        if let raw = f.rawBytes { hexDump(raw, total: h.frameBytes, indent: "    ") }
    }

    public func record(_ r: RecordItem) {
        guard items else { return }
        var line = "    #\(r.sequence) "
        switch r.content {
        case .event(let e):
            line += Self.event(e)
        case .pulled(let position, let e):
            line += "pulled central-position=\(position) " + Self.event(e)
        case .acknowledged(let seq):
            line += "inbound-ack acknowledged=\(seq)"
        case .pullCursor(let position, let digest):
            line += "inbound-cursor pull-cursor=\(position)"
            if let digest { line += " digest=\(String(digest, radix: 16))" }
        case .synced(let ms, let central):
            line += "inbound-synced wall=\(ms >= 0 ? Render.isoTime(millis: UInt64(ms)) : String(ms))"
            if let central { line += " central-wall=\(central >= 0 ? Render.isoTime(millis: UInt64(central)) : String(central))" }
        case .centralBehind(let seq):
            line += "inbound-central-behind central-holds=\(seq)"
        case .epoch(let epoch):
            line += "inbound-epoch epoch=\(epoch)"
        case .recovered(let through):
            line += "inbound-recovered through=\(through)"
        case .reserved(let through):
            line += "inbound-reserved through=\(through)"
        case .scopeFloor(let millis):
            line += "inbound-scope-floor millis=\(millis) at=\(Render.isoTime(millis: millis))"
        case .raw(let reason):
            line += "raw \(r.bytes.count) bytes"
            if let text = Render.printable(r.bytes) {
                line += " text=" + PrintableText.escaped(text)
            } else if !options.raw {
                line += " hex=" + Render.maskedHex(r.bytes.prefix(options.previewBytesMax)) + (r.bytes.count > options.previewBytesMax ? "..." : "")
            }
            line += " (\(reason))"
        }
        out.line(line)
        if options.raw { out.line("      hex " + Render.maskedHex(r.bytes.prefix(options.rawBytesMax)) + (r.bytes.count > options.rawBytesMax ? "..." : "")) }
    }

    /// One event on one line: type, dot, HLC as ISO time/logical, context, then its fields.
    static func event(_ e: Event) -> String {
        var s = "\(e.body.kind?.description ?? "unknown-\(e.body.typeByte)") dot=\(e.dot) hlc=\(Render.hlc(e.hlc)) ctx=\(Render.context(e.context))"
        switch e.body {
        case .saleCaptured(let c):
            s += " amount=\(Render.money(c.amount)) wallet=\(c.wallet) code=\(c.paymentCode?.masked ?? "(relayed, removed)") dup=\(c.duplicateKey.hex)"
        case .saleConfirmed(let sale), .saleDeclined(let sale), .saleExpired(let sale):
            s += " sale=\(sale.dot)"
        case .refundRequested(let r):
            s += " sale=\(r.sale.dot) amount=\(Render.money(r.amount))"
            if case .other(let text) = r.reason {
                s += " reason=other reason-text=\(PrintableText.escaped(text.text))"
            } else {
                s += " reason=\(r.reason.description)"
            }
            s += " resolution=\(r.resolution)"
            if let c = r.contact { s += " contact=\(c.channel):\(PrintableText.escaped(c.address))" }
        case .refundApproved(let t, let route):
            if case .designatedAccount(let a) = route {
                s += " ticket=\(t.dot) route=designated-account account=\(PrintableText.escaped(a.text))"
            } else {
                s += " ticket=\(t.dot) route=\(route)"
            }
        case .refundRejected(let t), .refundCancelled(let t), .refundCompleted(let t), .refundEscalated(let t):
            s += " ticket=\(t.dot)"
        case .noteAdded(let t, let note):
            s += " ticket=\(t.dot) note=\(PrintableText.escaped(note.text))"
        case .sequenceVoid:
            s += " (a number lost at the terminal before central held it)"
        case .unknown(let type, let fields):
            s += " (type \(type) unknown to this version) fields=\(Render.maskedHex(fields))"
        }
        return s
    }

    /// 32 bytes a line, offsets relative to the item.
    func hexDump(_ bytes: [UInt8], total: Int, indent: String) {
        var i = 0
        while i < bytes.count {
            let end = min(i + 32, bytes.count)
            let offset = String(i, radix: 16)
            out.line(indent + String(repeating: "0", count: max(0, 6 - offset.count)) + offset + ": " + Render.maskedHex(bytes[i..<end]))
            i = end
        }
        if total > bytes.count { out.line(indent + "... \(total - bytes.count) more bytes (--raw-bytes-max)") }
    }

    static func damageLine(_ d: DamageItem) -> String {
        let label: String
        switch d.kind {
        case .damaged: label = "DAMAGED"
        case .tornTail: label = "TORN-TAIL"
        case .missing: label = "MISSING"
        }
        var s = "\(label) \(d.file) @\(d.offset) bytes=\(d.bytes) \(d.code): \(d.reason)"
        if let f = d.missingFrom, let t = d.missingThrough { s += " [records \(f)...\(t)]" }
        return s
    }

    public func damage(_ d: DamageItem) {
        guard items else { return }
        out.line("  " + Self.damageLine(d))
        if let raw = d.rawBytes { hexDump(raw, total: Int(d.bytes), indent: "    ") }
    }

    public func notice(_ n: NoticeItem) {
        guard items else { return }
        out.line("  note \(n.file)\(n.offset.map { " @\($0)" } ?? "") \(n.code): \(n.message)")
    }

    public func finish(_ s: DumpSummary) {
        if summaryLines { Self.summary(s, to: out, listDamage: !items) }
        out.flush()
    }

    /// "1.50": x/y with two decimals, integers only (nil when y is 0).
    static func ratio(_ x: UInt64, _ y: UInt64) -> String {
        guard y > 0 else { return "n/a" }
        let hundredths = (x.multipliedReportingOverflow(by: 100).overflow ? x / y * 100 : x * 100 / y)
        let frac = hundredths % 100
        return "\(hundredths / 100).\(frac < 10 ? "0" : "")\(frac)"
    }

    static func summary(_ s: DumpSummary, to out: any LineOutput, listDamage: Bool) {
        out.line("summary \(s.path)")
        var what = "  segments=\(s.segments)"
        if s.bundles > 0 { what += " bundles=\(s.bundles)" }
        if s.runs > 0 { what += " runs=\(s.runs)" }
        what += " frames=\(s.frames) records=\(s.records)"
        if let f = s.firstSequence, let l = s.lastSequence { what += " seq=\(f)...\(l)" }
        what += " bytes=\(s.bytes)"
        out.line(what)
        out.line("  decoded=\(s.decodedRecords) raw=\(s.rawRecords) unknown-type=\(s.unknownTypeRecords) block-bytes=\(s.blockBytes) stored-bytes=\(s.storedBytes) ratio=\(ratio(s.blockBytes, s.storedBytes))")
        if !s.undecodedFrames.isEmpty {
            out.line("  frames not decoded: " + s.undecodedFrames.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ") + " (not damage: checksums hold)")
        }
        out.line("  damaged-ranges=\(s.damagedRanges) damaged-bytes=\(s.damagedBytes) missing-records=\(s.missingRecords) torn-tail=\(s.tornTail.map { "\($0.bytes) bytes at \($0.file) @\($0.offset)" } ?? "none") notes=\(s.notices)")
        if listDamage {
            for d in s.damage { out.line("  " + damageLine(d)) }
            if s.damageListTruncated { out.line("  ... more damaged ranges not listed (the first \(s.damage.count) are)") }
        }
        out.line("  status=\(s.status.rawValue) exit=\(s.status.exitCode)")
    }
}
