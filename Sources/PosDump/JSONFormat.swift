import PosBytes
import PosJournal
import PosLedger

/// One JSON object built field by field, in the order added (so output is
/// stable and diffable). Field names are documented in docs/journal-dump.md.
struct JSONObject {
    private(set) var text = "{"
    private var first = true

    private mutating func key(_ k: String) {
        if !first { text += "," }
        first = false
        text += "\""
        text += k
        text += "\":"
    }

    mutating func add(_ k: String, _ v: String) { key(k); JSONObject.appendString(v, to: &text) }
    mutating func add(_ k: String, _ v: String?) { if let v { add(k, v) } else { key(k); text += "null" } }
    mutating func add(_ k: String, _ v: UInt64) { key(k); text += String(v) }
    mutating func add(_ k: String, _ v: UInt64?) { key(k); text += v.map { String($0) } ?? "null" }
    mutating func add(_ k: String, _ v: Int64) { key(k); text += String(v) }
    mutating func add(_ k: String, _ v: Int) { key(k); text += String(v) }
    mutating func add(_ k: String, _ v: UInt32) { key(k); text += String(v) }
    mutating func add(_ k: String, _ v: Bool) { key(k); text += v ? "true" : "false" }
    mutating func add(_ k: String, object v: JSONObject) { key(k); text += v.string }
    mutating func add(_ k: String, array v: [JSONObject]) {
        key(k)
        text += "["
        text += v.map(\.string).joined(separator: ",")
        text += "]"
    }
    mutating func addNull(_ k: String) { key(k); text += "null" }
    mutating func add(_ k: String, strings v: [String]) {
        key(k)
        text += "["
        for (i, s) in v.enumerated() {
            if i > 0 { text += "," }
            JSONObject.appendString(s, to: &text)
        }
        text += "]"
    }

    var string: String { text + "}" }

    static func appendString(_ s: String, to out: inout String) {
        out += "\""
        var plain = true
        for u in s.utf8 where u < 0x20 || u == 0x22 || u == 0x5C { plain = false; break }
        if plain {
            out += s
        } else {
            for scalar in s.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                default:
                    if scalar.value < 0x20 {
                        let h = String(scalar.value, radix: 16)
                        out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                    } else {
                        out.unicodeScalars.append(scalar)
                    }
                }
            }
        }
        out += "\""
    }
}

/// `--json`: one JSON object per line, for jq. Every object has "kind":
/// segment, bundle, frame, record, damage, notice, summary (and stats with --stats).
public final class JSONFormat: DumpSink {
    let out: any LineOutput
    let options: DumpOptions
    /// Print items as they come (false for --verify / --stats: summary only).
    let items: Bool
    let summaryLine: Bool

    public init(out: any LineOutput, options: DumpOptions, items: Bool = true, summary: Bool = true) {
        self.out = out
        self.options = options
        self.items = items
        self.summaryLine = summary
    }

    public func segment(_ s: SegmentItem) {
        guard items else { return }
        var j = JSONObject()
        j.add("kind", "segment")
        j.add("file", s.file)
        j.add("bytes", s.bytes)
        j.add("headerOk", s.header != nil)
        if let h = s.header {
            j.add("version", UInt64(h.version))
            j.add("journalId", h.journalID.description)
            j.add("baseSeq", h.baseSequence)
            j.add("dictionaryId", h.dictionaryID)
            j.add("keyId", h.keyID)
            j.add("chainSeed", Hex.word(h.chainSeed))
        } else {
            j.add("baseSeq", s.nameBase)
        }
        out.line(j.string)
    }

    public func bundle(_ b: BundleItem) {
        guard items else { return }
        var j = JSONObject()
        j.add("kind", "bundle")
        j.add("file", b.file)
        j.add("bytes", b.bytes)
        j.add("version", UInt64(b.version))
        j.add("central", b.central)
        j.add("terminal", b.terminal)
        j.add("dictionaryId", b.dictionaryID)
        j.add("keyId", b.keyID)
        j.add("firstSeq", b.firstSequence)
        j.add("lastSeq", b.lastSequence)
        j.add("frames", b.frameCount)
        j.add("sha256Ok", b.sha256OK)
        out.line(j.string)
    }

    public func frame(_ f: FrameItem) {
        guard items else { return }
        let h = f.header
        var j = JSONObject()
        j.add("kind", "frame")
        j.add("file", f.file)
        j.add("offset", f.offset)
        j.add("firstSeq", h.firstSequence)
        j.add("lastSeq", h.lastSequence)
        Self.frameFields(h, decoded: f.undecoded == nil && options.decodeRecords, undecoded: f.undecoded, raw: f.rawBytes, into: &j)
        out.line(j.string)
    }

    /// A valid frame's header fields, whether its records were decoded, its hex with --raw (journals and runs alike).
    static func frameFields(_ h: FrameHeader, decoded: Bool, undecoded: Undecoded?, raw: [UInt8]?, into j: inout JSONObject) {
        j.add("records", h.recordCount)
        j.add("blockBytes", h.blockLength)
        j.add("storedBytes", h.storedLength)
        j.add("deflated", h.flags.contains(.deflated))
        j.add("encrypted", h.flags.contains(.encrypted))
        j.add("payloadCrc", Hex.word(h.payloadChecksum))
        j.add("checksum", Hex.word(h.checksum))
        j.add("previousChecksum", Hex.word(h.previousChecksum))
        j.add("checksumOk", true)
        j.add("decoded", decoded)
        if let u = undecoded {
            j.add("undecodedCode", u.code)
            j.add("undecodedReason", u.message)
        }
        if let raw {
            j.add("hex", Render.maskedHex(raw))
            if raw.count < h.frameBytes { j.add("hexTruncated", true) }
        }
    }

    public func record(_ r: RecordItem) {
        guard items else { return }
        var j = JSONObject()
        j.add("kind", "record")
        j.add("file", r.file)
        j.add("frameOffset", r.frameOffset)
        j.add("seq", r.sequence)
        j.add("bytes", r.bytes.count)
        j.add("type", typeName(r.content))
        switch r.content {
        case .event(let e):
            Self.event(e, into: &j)
        case .pulled(let position, let e):
            j.add("centralPosition", position)
            Self.event(e, into: &j)
        case .acknowledged(let seq):
            j.add("acknowledged", seq)
        case .pullCursor(let position, let digest):
            j.add("pullCursor", position)
            if let digest { j.add("cursorDigest", String(digest, radix: 16)) }
        case .synced(let ms, let central):
            j.add("wallMillis", ms)
            j.add("wallTime", ms >= 0 ? Render.isoTime(millis: UInt64(ms)) : nil)
            if let central {
                j.add("centralWallMillis", central)
                j.add("centralWallTime", central >= 0 ? Render.isoTime(millis: UInt64(central)) : nil)
            }
        case .centralBehind(let seq):
            j.add("centralHolds", seq)
        case .epoch(let epoch):
            j.add("epoch", epoch)
        case .recovered(let through):
            j.add("recoveredThrough", through)
        case .reserved(let through):
            j.add("reservedThrough", through)
        case .scopeFloor(let millis):
            j.add("scopeFloorMillis", millis)
        case .raw(let reason):
            j.add("reason", reason)
            if let text = Render.printable(r.bytes) { j.add("text", text) }
        }
        if options.raw {
            j.add("hex", Render.maskedHex(r.bytes.prefix(options.rawBytesMax)))
        } else if case .raw = r.content, Render.printable(r.bytes) == nil {
            j.add("hex", Render.maskedHex(r.bytes.prefix(options.previewBytesMax)))
            if r.bytes.count > options.previewBytesMax { j.add("hexTruncated", true) }
        }
        out.line(j.string)
    }

    static func event(_ e: Event, into j: inout JSONObject) {
        j.add("typeCode", UInt64(e.body.typeByte))
        j.add("dot", e.dot.description)
        j.add("replica", e.dot.replica.rawValue)
        j.add("replicaSeq", e.dot.seq)
        j.add("hlc", e.hlc.rawValue)
        j.add("hlcTime", Render.isoTime(millis: e.hlc.millis))
        j.add("hlcLogical", UInt64(e.hlc.logical))
        var ctx = JSONObject()
        for entry in e.context.entries { ctx.add(String(entry.replica.rawValue), entry.seq) }
        j.add("context", object: ctx)
        func money(_ m: Money) {
            j.add("amount", Render.majorUnits(m.minorUnits, m.currency))
            j.add("amountMinor", m.minorUnits)
            j.add("currency", m.currency.code)
        }
        switch e.body {
        case .saleCaptured(let c):
            j.add("sale", e.dot.description)
            money(c.amount)
            j.add("wallet", c.wallet.description)
            j.add("paymentCode", c.paymentCode?.masked)  // masked: first 2 and last 4 digits
            j.add("duplicateKey", c.duplicateKey.hex)
        case .saleConfirmed(let s), .saleDeclined(let s), .saleExpired(let s):
            j.add("sale", s.dot.description)
        case .refundRequested(let r):
            j.add("sale", r.sale.dot.description)
            j.add("ticket", e.dot.description)
            money(r.amount)
            switch r.reason {
            case .other(let text):
                j.add("reason", "other")
                j.add("reasonText", text.text)
            default:
                j.add("reason", r.reason.description)
            }
            j.add("resolution", r.resolution.description)
            j.add("contact", r.contact?.description)
        case .refundApproved(let t, let route):
            j.add("ticket", t.dot.description)
            switch route {
            case .designatedAccount(let a):
                j.add("route", "designated-account")
                j.add("account", a.text)
            default:
                j.add("route", route.description)
            }
        case .refundRejected(let t), .refundCancelled(let t), .refundCompleted(let t), .refundEscalated(let t):
            j.add("ticket", t.dot.description)
        case .noteAdded(let t, let note):
            j.add("ticket", t.dot.description)
            j.add("note", note.text)
        case .sequenceVoid:
            break
        case .unknown(_, let fields):
            j.add("fieldsHex", Render.maskedHex(fields))
        }
    }

    static func damageObject(_ d: DamageItem, options: DumpOptions) -> JSONObject {
        var j = JSONObject()
        j.add("kind", "damage")
        j.add("damage", d.kind.rawValue)
        j.add("file", d.file)
        j.add("offset", d.offset)
        j.add("bytes", d.bytes)
        j.add("code", d.code)
        j.add("reason", d.reason)
        j.add("missingFrom", d.missingFrom)
        j.add("missingThrough", d.missingThrough)
        if let raw = d.rawBytes { j.add("hex", Render.maskedHex(raw)) }
        return j
    }

    public func damage(_ d: DamageItem) {
        guard items else { return }
        out.line(Self.damageObject(d, options: options).string)
    }

    public func notice(_ n: NoticeItem) {
        guard items else { return }
        var j = JSONObject()
        j.add("kind", "notice")
        j.add("file", n.file)
        j.add("offset", n.offset)
        j.add("code", n.code)
        j.add("message", n.message)
        out.line(j.string)
    }

    public func finish(_ s: DumpSummary) {
        if summaryLine { out.line(Self.summaryObject(s, options: options).string) }
        out.flush()
    }

    static func summaryObject(_ s: DumpSummary, options: DumpOptions) -> JSONObject {
        var j = JSONObject()
        j.add("kind", "summary")
        j.add("path", s.path)
        j.add("status", s.status.rawValue)
        j.add("exitCode", Int(s.status.exitCode))
        j.add("segments", s.segments)
        j.add("bundles", s.bundles)
        if s.runs > 0 { j.add("runs", s.runs) }
        j.add("frames", s.frames)
        j.add("records", s.records)
        j.add("decodedRecords", s.decodedRecords)
        j.add("rawRecords", s.rawRecords)
        j.add("unknownTypeRecords", s.unknownTypeRecords)
        j.add("firstSeq", s.firstSequence)
        j.add("lastSeq", s.lastSequence)
        j.add("bytes", s.bytes)
        j.add("storedBytes", s.storedBytes)
        j.add("blockBytes", s.blockBytes)
        var undecoded = JSONObject()
        for (code, n) in s.undecodedFrames.sorted(by: { $0.key < $1.key }) { undecoded.add(code, n) }
        j.add("undecodedFrames", object: undecoded)
        j.add("damagedRanges", s.damagedRanges)
        j.add("damagedBytes", s.damagedBytes)
        j.add("missingRecords", s.missingRecords)
        if let t = s.tornTail { j.add("tornTail", object: damageObject(t, options: options)) } else { j.addNull("tornTail") }
        j.add("damage", array: s.damage.map { damageObject($0, options: options) })
        j.add("damageListTruncated", s.damageListTruncated)
        j.add("notices", s.notices)
        return j
    }
}
