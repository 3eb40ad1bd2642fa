import PosJournal
import PosLedger

/// Sorted, disjoint, closed ranges of sequence numbers; appending in order
/// is O(1). At most `rangesMax` are kept; past that the set says so.
struct SequenceRanges {
    static let rangesMax = 4_096
    private(set) var ranges: [ClosedRange<UInt64>] = []
    private(set) var count: UInt64 = 0
    private(set) var overflowed = false

    mutating func insert(_ v: UInt64) {
        count += 1
        if let last = ranges.last {
            if last.contains(v) { return }
            if v == last.upperBound + 1 { ranges[ranges.count - 1] = last.lowerBound...v; return }
            if v > last.upperBound { append(v); return }
        } else {
            append(v); return
        }
        // Out of order: binary search for the place.
        var lo = 0, hi = ranges.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if ranges[mid].upperBound < v { lo = mid + 1 } else { hi = mid }
        }
        if lo < ranges.count && ranges[lo].contains(v) { return }
        let joinsLeft = lo > 0 && ranges[lo - 1].upperBound + 1 == v
        let joinsRight = lo < ranges.count && ranges[lo].lowerBound == v + 1
        switch (joinsLeft, joinsRight) {
        case (true, true):
            ranges[lo - 1] = ranges[lo - 1].lowerBound...ranges[lo].upperBound
            ranges.remove(at: lo)
        case (true, false): ranges[lo - 1] = ranges[lo - 1].lowerBound...v
        case (false, true): ranges[lo] = v...ranges[lo].upperBound
        case (false, false):
            if ranges.count < Self.rangesMax { ranges.insert(v...v, at: lo) } else { overflowed = true }
        }
    }

    private mutating func append(_ v: UInt64) {
        if ranges.count < Self.rangesMax { ranges.append(v...v) } else { overflowed = true }
    }

    /// The holes between the ranges.
    var gaps: [ClosedRange<UInt64>] {
        guard ranges.count > 1 else { return [] }
        return (1..<ranges.count).map { (ranges[$0 - 1].upperBound + 1)...(ranges[$0].lowerBound - 1) }
    }
}

/// `--stats`: counts and amounts by event type, compression, HLC range, and
/// the sequence ranges of every replica whose events the journal holds.
public final class StatsSink: DumpSink {
    struct TypeStats {
        var count: UInt64 = 0
        /// Sum of amounts by currency code, in minor units; nil after an Int64 overflow.
        var amounts: [String: Int64?] = [:]
    }

    let out: any LineOutput
    let json: Bool
    var byType: [String: TypeStats] = [:]
    var frames = 0, deflatedFrames = 0, encryptedFrames = 0
    var blockBytes: UInt64 = 0, storedBytes: UInt64 = 0
    var hlcMin: HLCTimestamp? = nil, hlcMax: HLCTimestamp? = nil
    var replicas: [UInt32: SequenceRanges] = [:]
    var records: UInt64 = 0

    public init(out: any LineOutput, json: Bool) {
        self.out = out
        self.json = json
    }

    public func segment(_ item: SegmentItem) {}
    public func bundle(_ item: BundleItem) {}
    public func damage(_ item: DamageItem) {}
    public func notice(_ item: NoticeItem) {}

    public func frame(_ f: FrameItem) {
        frames += 1
        if f.header.flags.contains(.deflated) { deflatedFrames += 1 }
        if f.header.flags.contains(.encrypted) { encryptedFrames += 1 }
        blockBytes += UInt64(f.header.blockLength)
        storedBytes += UInt64(f.header.storedLength)
    }

    public func record(_ r: RecordItem) {
        records += 1
        let name = typeName(r.content)
        var t = byType[name] ?? TypeStats()
        t.count += 1
        if let e = r.event {
            if hlcMin == nil || e.hlc < hlcMin! { hlcMin = e.hlc }
            if hlcMax == nil || e.hlc > hlcMax! { hlcMax = e.hlc }
            replicas[e.dot.replica.rawValue, default: SequenceRanges()].insert(e.dot.seq)
            var money: Money? = nil
            if case .saleCaptured(let c) = e.body { money = c.amount }
            if case .refundRequested(let q) = e.body { money = q.amount }
            if let m = money {
                let code = m.currency.code
                if let current = t.amounts[code] {
                    if let c = current {
                        let (sum, overflow) = c.addingReportingOverflow(m.minorUnits)
                        t.amounts[code] = overflow ? .some(nil) : .some(sum)
                    }
                } else {
                    t.amounts[code] = .some(m.minorUnits)
                }
            }
        }
        byType[name] = t
    }

    static func amountText(_ code: String, _ minor: Int64?) -> String {
        guard let minor else { return "overflow \(code)" }
        guard let currency = try? Currency(code) else { return "\(minor) minor \(code)" }
        return Render.money(Money(minorUnits: minor, currency: currency))
    }

    public func finish(_ s: DumpSummary) {
        let types = byType.sorted { $0.key < $1.key }
        let reps = replicas.sorted { $0.key < $1.key }
        if json {
            var j = JSONObject()
            j.add("kind", "stats")
            j.add("path", s.path)
            j.add("records", records)
            j.add("frames", frames)
            j.add("firstSeq", s.firstSequence)
            j.add("lastSeq", s.lastSequence)
            j.add("types", array: types.map { (name, t) in
                var o = JSONObject()
                o.add("type", name)
                o.add("count", t.count)
                o.add("amounts", array: t.amounts.sorted { $0.key < $1.key }.map { (code, minor) in
                    var a = JSONObject()
                    a.add("currency", code)
                    if let minor, let c = try? Currency(code) {
                        a.add("amount", Render.majorUnits(minor, c))
                        a.add("amountMinor", minor)
                    } else {
                        a.add("overflow", true)
                    }
                    return a
                })
                return o
            })
            var c = JSONObject()
            c.add("blockBytes", blockBytes)
            c.add("storedBytes", storedBytes)
            c.add("ratio", TextFormat.ratio(blockBytes, storedBytes))
            c.add("deflatedFrames", deflatedFrames)
            c.add("encryptedFrames", encryptedFrames)
            j.add("compression", object: c)
            j.add("hlcMin", hlcMin.map { Render.hlc($0) })
            j.add("hlcMax", hlcMax.map { Render.hlc($0) })
            j.add("replicas", array: reps.map { (id, r) in
                var o = JSONObject()
                o.add("replica", id)
                o.add("events", r.count)
                o.add("firstSeq", r.ranges.first?.lowerBound)
                o.add("lastSeq", r.ranges.last?.upperBound)
                o.add("ranges", array: r.ranges.prefix(100).map { range in
                    var x = JSONObject()
                    x.add("from", range.lowerBound)
                    x.add("through", range.upperBound)
                    return x
                })
                o.add("rangeCount", r.ranges.count)
                o.add("rangesOverflowed", r.overflowed)
                return o
            })
            out.line(j.string)
        } else {
            out.line("stats \(s.path)")
            out.line("  records=\(records) frames=\(frames)" + (s.firstSequence.map { " seq=\($0)...\(s.lastSequence!)" } ?? ""))
            for (name, t) in types {
                var line = "  type \(name) count=\(t.count)"
                if !t.amounts.isEmpty {
                    line += " amount=" + t.amounts.sorted { $0.key < $1.key }.map { Self.amountText($0.key, $0.value) }.joined(separator: ", ")
                }
                out.line(line)
            }
            out.line("  compression block-bytes=\(blockBytes) stored-bytes=\(storedBytes) ratio=\(TextFormat.ratio(blockBytes, storedBytes)) deflated-frames=\(deflatedFrames) encrypted-frames=\(encryptedFrames)")
            if let lo = hlcMin, let hi = hlcMax { out.line("  hlc \(Render.hlc(lo)) ... \(Render.hlc(hi))") }
            for (id, r) in reps {
                let name = id == 0 ? "central(0)" : "terminal \(id)"
                var line = "  replica \(name) events=\(r.count)"
                if let f = r.ranges.first, let l = r.ranges.last { line += " seq=\(f.lowerBound)...\(l.upperBound)" }
                let gaps = r.gaps
                if gaps.isEmpty {
                    line += r.overflowed ? " (too fragmented to list)" : " contiguous"
                } else {
                    line += " gaps=\(gaps.count): " + gaps.prefix(10).map { "\($0.lowerBound)...\($0.upperBound)" }.joined(separator: ", ") + (gaps.count > 10 ? ", ..." : "")
                }
                out.line(line)
            }
        }
        out.flush()
    }
}
