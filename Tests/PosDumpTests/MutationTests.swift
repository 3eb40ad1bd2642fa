import Foundation
import PosDump
import PosJournal
import PosLedger
import PosCentral
import PosCentralFiles
import PosTerminal
import PosWire
import Testing
import PosTestSupport

/// Seeded random damage — bit flips, zeroed runs, truncations, inserted and
/// deleted bytes, lost segments — run through the whole dump (scanner and
/// both formatters). It must never crash, never show a record whose bytes
/// differ from what was written under its sequence number, and never call a
/// flipped byte clean. POSSYNC_DUMP_FUZZ_RUNS raises the count (default
/// 1,000); POSSYNC_SEED replays one seed; a failure prints its seed.
@Suite("seeded random mutations")
struct MutationTests {
    /// A small ledger journal, several segments, some frames of several records.
    static func makeJournal(_ dir: String, encrypted: Bool) throws -> [UInt64: [UInt8]] {
        var records: [[UInt8]] = []
        for i in 1...80 {
            let dot = try Dot(replica: try ReplicaId.terminal(5), seq: UInt64(i))
            let body: EventBody = i % 4 == 0
                ? .saleConfirmed(SaleId(try Dot(replica: try ReplicaId.terminal(5), seq: UInt64(i - 1))))
                : .saleCaptured(try SaleCapture(amount: Money(minorUnits: Int64(100 * i + 7), currency: .CNY),
                                                paymentCode: try PaymentCode(Ledger.alipayDigits), merchantKey: Ledger.merchantKey))
            records.append(RecordCodec.encode(Event(dot: dot, hlc: Ledger.hlc(UInt64(i)), context: VersionVector(), body: body)))
        }
        let key: JournalKey? = encrypted ? Ledger.enrollment(terminal: 5).journalKey : nil
        try Ledger.writeJournal(dir, records: records, key: key, segmentBytesMax: 1024, batch: 3)
        var bySeq: [UInt64: [UInt8]] = [:]
        for (i, r) in records.enumerated() { bySeq[UInt64(i + 1)] = r }
        return bySeq
    }

    enum Mutation: CustomStringConvertible {
        case flip(file: Int, offset: Int, bit: Int)
        case zero(file: Int, offset: Int, count: Int)
        case truncate(file: Int, length: Int)
        case insert(file: Int, offset: Int, bytes: [UInt8])
        case delete(file: Int, offset: Int, count: Int)
        case removeFile(Int)

        var description: String {
            switch self {
            case .flip(let f, let o, let b): "flip segment \(f) byte \(o) bit \(b)"
            case .zero(let f, let o, let n): "zero segment \(f) bytes \(o)..<\(o + n)"
            case .truncate(let f, let l): "truncate segment \(f) to \(l)"
            case .insert(let f, let o, let b): "insert \(b.count) bytes in segment \(f) at \(o)"
            case .delete(let f, let o, let n): "delete segment \(f) bytes \(o)..<\(o + n)"
            case .removeFile(let f): "remove segment \(f)"
            }
        }

        /// True when the mutation must be detected (every byte of a segment is under a checksum).
        var changesCoveredBytes: Bool {
            if case .flip = self { return true }
            return false
        }
    }

    static func randomMutation(_ rng: inout SeededRandom, files: [[UInt8]]) -> Mutation {
        let candidates = files.indices.filter { !files[$0].isEmpty }
        let f = candidates[Int.random(in: 0..<candidates.count, using: &rng)]
        let size = files[f].count
        switch Int.random(in: 0..<100, using: &rng) {
        case 0..<50: return .flip(file: f, offset: Int.random(in: 0..<size, using: &rng), bit: Int.random(in: 0..<8, using: &rng))
        case 50..<62: let o = Int.random(in: 0..<size, using: &rng); return .zero(file: f, offset: o, count: Int.random(in: 1...min(200, size - o), using: &rng))
        case 62..<78: return .truncate(file: f, length: Int.random(in: 0..<size, using: &rng))
        case 78..<86: return .insert(file: f, offset: Int.random(in: 0...size, using: &rng), bytes: (0..<Int.random(in: 1...60, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) })
        case 86..<96: let o = Int.random(in: 0..<size, using: &rng); return .delete(file: f, offset: o, count: Int.random(in: 1...min(100, size - o), using: &rng))
        default: return .removeFile(f)
        }
    }

    static func apply(_ m: Mutation, to files: inout [[UInt8]?]) {
        switch m {
        case .flip(let f, let o, let b): files[f]?[o] ^= UInt8(1 << b)
        case .zero(let f, let o, let n): for i in o..<min(o + n, files[f]?.count ?? 0) { files[f]![i] = 0 }
        case .truncate(let f, let l): if let c = files[f]?.count, l < c { files[f]!.removeLast(c - l) }
        case .insert(let f, let o, let b): if let c = files[f]?.count { files[f]!.insert(contentsOf: b, at: min(o, c)) }
        case .delete(let f, let o, let n): if let c = files[f]?.count, o < c { files[f]!.removeSubrange(o..<min(o + n, c)) }
        case .removeFile(let f): files[f] = nil
        }
    }

    @Test("seeded mutations of a bundle: no crash, no damaged record shown as valid, every flip detected")
    func bundleMutations() throws {
        let runs = (environmentInt("POSSYNC_DUMP_FUZZ_RUNS") ?? 1_000) / 5
        let baseSeed = UInt64(environmentInt("POSSYNC_SEED") ?? 20_261_128)
        let t = TemporaryDirectory("fuzz-bundle")
        let e = Ledger.enrollment(terminal: 5)
        let records = (1...30).map { i in
            RecordCodec.encode(Event(dot: try! Dot(replica: try! ReplicaId.terminal(5), seq: UInt64(i)), hlc: Ledger.hlc(UInt64(i)), context: VersionVector(),
                                     body: .saleCaptured(try! SaleCapture(amount: Ledger.money(Int64(i)), paymentCode: try! PaymentCode(Ledger.alipayDigits), merchantKey: Ledger.merchantKey))))
        }
        let sealer = FrameSealer(dictionary: ledgerDictionary, key: e.journalKey)
        let path = t.sub("b.bundle")
        var chain: UInt32 = 0
        var frames: [[UInt8]] = []
        for start in stride(from: 0, to: records.count, by: 4) {
            let (bytes, header) = try sealer.seal(Array(records[start..<min(start + 4, records.count)]), firstSequence: UInt64(start + 1), previousChecksum: chain)
            chain = header.checksum
            frames.append(bytes)
        }
        let w = try BundleWriter(path: path, header: BundleHeader(central: Ledger.central, terminal: try ReplicaId.terminal(5), dictionaryID: 1, keyID: 5,
                                                                  firstSequence: 1, lastSequence: 30, frameCount: UInt32(frames.count)))
        for f in frames { try w.write(f) }
        try w.finish()
        let original = readBytes(path)
        for run in 0..<runs {
            let seed = baseSeed &+ UInt64(run)
            var rng = SeededRandom(seed: seed)
            var files: [[UInt8]?] = [original]
            let m = Self.randomMutation(&rng, files: [original])
            if case .removeFile = m { continue }
            Self.apply(m, to: &files)
            writeBytes(files[0]!, path)
            var o = DumpOptions(path: path, displayPath: "b")
            o.keys.add(e.journalKey, source: "test")
            let sink = CollectingSink()
            let summary: DumpSummary
            do {
                summary = try DumpScanner(options: o, sink: FanOutSink([sink, TextFormat(out: CountingOutput(), options: o)])).run()
            } catch {
                // A bundle whose magic was hit is no longer recognised: a usage error, not a crash.
                #expect(error.description.contains("not a journal segment"), "seed \(seed): \(m): \(error)")
                continue
            }
            for r in sink.records where records[Int(r.sequence) - 1] != r.bytes {
                Issue.record("seed \(seed): \(m): record \(r.sequence) shown with bytes never written there")
            }
            if case .flip = m { #expect(summary.status != .clean, "seed \(seed): \(m) went undetected") }
        }
    }

    @Test("1,000 seeded mutations: no crash, no damaged record shown as valid, every flip detected")
    func mutations() throws {
        let runs = environmentInt("POSSYNC_DUMP_FUZZ_RUNS") ?? 1_000
        let baseSeed = UInt64(environmentInt("POSSYNC_SEED") ?? 20_261_127)
        let t = TemporaryDirectory("fuzz")
        var originals: [(dir: String, records: [UInt64: [UInt8]], names: [String], files: [[UInt8]], key: JournalKey?)] = []
        for encrypted in [false, true] {
            let dir = t.sub(encrypted ? "enc" : "plain")
            let records = try Self.makeJournal(dir, encrypted: encrypted)
            let names = segmentNames(dir)
            #expect(names.count >= 3, "the journal should span several segments")
            originals.append((dir, records, names, names.map { readBytes(dir + "/" + $0) }, encrypted ? Ledger.enrollment(terminal: 5).journalKey : nil))
        }
        let work = t.sub("work")
        var failures = 0
        for run in 0..<runs {
            let seed = baseSeed &+ UInt64(run)
            var rng = SeededRandom(seed: seed)
            let original = originals[run % 2]
            var files: [[UInt8]?] = original.files
            var mutations: [Mutation] = []
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let live = files.compactMap { $0 }.filter { !$0.isEmpty }
                guard !live.isEmpty else { break }
                let m = Self.randomMutation(&rng, files: files.map { $0 ?? [] })
                mutations.append(m)
                Self.apply(m, to: &files)
            }
            try? FileManager.default.removeItem(atPath: work)
            try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
            for (i, name) in original.names.enumerated() {
                if let b = files[i] { writeBytes(b, work + "/" + name) }
            }
            var options = DumpOptions(path: work, displayPath: "j")
            if let key = original.key { options.keys.add(key, source: "test") }
            options.raw = run % 7 == 0
            let sink = CollectingSink()
            let text = CountingOutput(), json = CountingOutput()
            let fan = FanOutSink([sink, TextFormat(out: text, options: options), JSONFormat(out: json, options: options),
                                  StatsSink(out: CountingOutput(), json: run % 2 == 0)])
            let context = "seed \(seed) (replay: POSSYNC_SEED=\(seed) POSSYNC_DUMP_FUZZ_RUNS=1): \(mutations)"
            let summary: DumpSummary
            do {
                summary = try DumpScanner(options: options, sink: fan).run()
            } catch {
                // Only a directory with no segment left may refuse to dump.
                if !segmentNames(work).isEmpty {
                    Issue.record("dump failed: \(error) — \(context)")
                    failures += 1
                }
                continue
            }
            var seen = Set<UInt64>()
            for r in sink.records {
                if original.records[r.sequence] != r.bytes {
                    Issue.record("record \(r.sequence) shown with bytes that were never written there — \(context)")
                    failures += 1
                }
                if !seen.insert(r.sequence).inserted {
                    Issue.record("record \(r.sequence) shown twice — \(context)")
                    failures += 1
                }
            }
            let flipped = mutations.contains { $0.changesCoveredBytes }
            // Two flips of one bit cancel: then nothing changed.
            let onlyFlips = mutations.allSatisfy { $0.changesCoveredBytes } && files.map { $0 ?? [] } != original.files
            if flipped && onlyFlips && summary.status == .clean {
                Issue.record("a flipped byte went undetected — \(context)")
                failures += 1
            }
            if summary.status == .clean && sink.records.count != original.records.count && onlyFlips {
                Issue.record("clean status but \(sink.records.count) of \(original.records.count) records — \(context)")
                failures += 1
            }
            if failures > 10 { break }
        }
    }
}
