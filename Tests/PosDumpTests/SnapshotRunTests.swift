import PosBytes
import Foundation
import PosDump
import PosJournal
import PosLedger
@_spi(Testing) import PosCentral
import PosCentralFiles
import PosTerminal
import PosWire
import Testing

/// The snapshot-run fixture (Fixtures/snapshots/README.md): a small central
/// store written by a deterministic central (fixed secrets and clock), whose
/// one run holds a record in every section, and its expected dumps. The
/// dumps name every header field and every frame's checksums, so they change
/// when a byte of the run does.
///
///     POSSYNC_UPDATE_SNAPSHOT_FIXTURE=1 swift test --filter PosDumpTests.SnapshotRunTests
///
/// rewrites the store and the dumps (the frames' nonces are random, so the
/// bytes and checksums change; the decoded records do not).
/// `POSSYNC_UPDATE_GOLDEN=1` rewrites the dumps of the store as it is.
@Suite("snapshot runs: the fixture run, store directories, damage")
struct SnapshotRunTests {
    static let root = packageRoot + "/Fixtures/snapshots"
    static let central = root + "/central"
    static let runName = "run-00000001-00000001.pss"
    static let run = central + "/state/" + runName
    static var updateFixture: Bool { ProcessInfo.processInfo.environment["POSSYNC_UPDATE_SNAPSHOT_FIXTURE"] == "1" }
    static var updateGolden: Bool { updateFixture || ProcessInfo.processInfo.environment["POSSYNC_UPDATE_GOLDEN"] == "1" }

    /// Secrets 1, 2, 3, ... as central asks for them: the central id (first 16 bytes of the
    /// first), central's secret, the merchant key, each terminal's secret. Fixture secrets only.
    final class Secrets: @unchecked Sendable {
        private let lock = NSLock()
        private var n: UInt8 = 0
        func next() -> [UInt8] {
            lock.lock()
            defer { lock.unlock() }
            n += 1
            let k = n
            return (0..<32).map { UInt8(truncatingIfNeeded: Int(k) &* 37 &+ $0 &* 11) }
        }
    }

    /// Writes the fixture store at `directory`: terminals 7 and 8 of merchant m-1; two
    /// captures of one code (a duplicate key), a refund ticket approved and completed,
    /// a confirmation and an expiry, a loose decision; one flush after 9 events, then a
    /// note and a capture that stay in the journal only.
    static func writeStore(_ directory: String) throws {
        let scratch = TemporaryDirectory("snapshot-fixture")
        let secrets = Secrets()
        let clock = Ledger.baseMillis
        let environment = CentralEnvironment(wallMillis: { Int64(clock) }, secret: { secrets.next() })
        let c = try FileCentralStore.create(directory: directory, environment: environment, snapshotEvents: 9)
        let e7 = try c.enroll(terminal: try ReplicaId.terminal(7), merchant: "m-1")
        let e8 = try c.enroll(terminal: try ReplicaId.terminal(8), merchant: "m-1")
        let t7 = try TerminalReplica.initialize(directory: scratch.sub("t7"), enrollment: e7)
        let t8 = try TerminalReplica.initialize(directory: scratch.sub("t8"), enrollment: e8)
        var now = Int64(clock)
        func tick() -> Int64 { now += 1_000; return now }
        let transport = InProcessTransport(central: c)
        let a = try t7.record(.saleCaptured(try SaleCapture(amount: Ledger.money(1250), paymentCode: try PaymentCode(Ledger.wechatDigits), merchantKey: e7.ledgerMerchantKey)), wallMillis: tick())
        let b = try t7.record(.saleCaptured(try SaleCapture(amount: Ledger.money(105), paymentCode: try PaymentCode(Ledger.alipayDigits), merchantKey: e7.ledgerMerchantKey)), wallMillis: tick())
        let request = try t7.record(.refundRequested(try RefundRequest(sale: SaleId(a.dot), saleAmount: Ledger.money(1250), amount: Ledger.money(500),
                                                                       reason: .quality, resolution: .refund, contact: nil)), wallMillis: tick())
        _ = try t7.sync(via: transport, wallMillis: tick())
        _ = try t8.record(.saleCaptured(try SaleCapture(amount: Ledger.money(1250), paymentCode: try PaymentCode(Ledger.wechatDigits), merchantKey: e8.ledgerMerchantKey)), wallMillis: tick())
        _ = try t8.sync(via: transport, wallMillis: tick())
        let ticket = TicketId(request.dot)
        try c.record(.saleConfirmed(SaleId(a.dot)), wallMillis: tick())
        try c.record(.saleExpired(SaleId(b.dot)), wallMillis: tick())
        try c.record(.refundApproved(ticket, .originalPayment), wallMillis: tick())
        try c.record(.refundCompleted(ticket), wallMillis: tick())
        // A decision on a ticket central does not hold: a loose event (the ninth: the flush).
        try c.record(.refundRejected(TicketId(try Dot(replica: try ReplicaId.terminal(8), seq: 99))), wallMillis: tick(), checkingAdmission: false)
        #expect(c.snapshotStatistics.written == 1)
        // After the run: in the journal only.
        _ = try t7.record(.noteAdded(ticket, try NoteText("refunded at the desk")), wallMillis: tick())
        _ = try t7.sync(via: transport, wallMillis: tick())
        #expect(c.snapshotStatistics.written == 1)
        try c.close()
        try t7.close()
        try t8.close()
        try? FileManager.default.removeItem(atPath: directory + "/LOCK")
    }

    static func options(_ path: String, display: String, key: Bool = true) throws -> DumpOptions {
        var o = DumpOptions(path: path, displayPath: display)
        if key { try o.keys.load(file: central + "/central.json", keyID: nil) }
        return o
    }

    func check(_ actual: String, golden file: String) throws {
        let path = Self.root + "/" + file
        if Self.updateGolden {
            try actual.write(toFile: path, atomically: true, encoding: .utf8)
            return
        }
        let expected = try #require(try? String(contentsOfFile: path, encoding: .utf8),
                                    "no expected dump \(file): run POSSYNC_UPDATE_GOLDEN=1 swift test --filter PosDumpTests.SnapshotRunTests")
        if expected != actual {
            let e = expected.split(separator: "\n", omittingEmptySubsequences: false)
            let a = actual.split(separator: "\n", omittingEmptySubsequences: false)
            let i = (0..<min(e.count, a.count)).first { e[$0] != a[$0] } ?? min(e.count, a.count)
            Issue.record("""
                Fixtures/snapshots/\(file) differs at line \(i + 1) (a byte of the run changed, or the dump's format did):
                expected: \(i < e.count ? String(e[i]) : "<end>")
                actual:   \(i < a.count ? String(a[i]) : "<end>")
                """)
        }
    }

    @Test("the fixture run decodes as its expected dumps (text, JSON, verify, stats, without the key)")
    func fixtureDumps() throws {
        if Self.updateFixture {
            try? FileManager.default.removeItem(atPath: Self.central)
            try Self.writeStore(Self.central)
        }
        let display = "central/state/" + Self.runName
        let o = try Self.options(Self.run, display: display)
        let (text, summary) = try dumpText(o)
        #expect(summary.status == .clean && summary.runs == 1 && summary.damagedRanges == 0)
        try check(text, golden: Self.runName + ".txt")
        let (json, _) = try dumpText(o, mode: .init(json: true))
        try check(json, golden: Self.runName + ".jsonl")
        for line in json.split(separator: "\n") {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object?["kind"] is String, "\(line.prefix(80))")
        }
        try check(try dumpText(o, mode: .init(verify: true, stats: true)).0, golden: Self.runName + ".stats.txt")
        let (nokey, nokeySummary) = try dumpText(try Self.options(Self.run, display: display, key: false))
        #expect(nokeySummary.status == .clean && nokeySummary.undecodedFrames["missingKey"] == nokeySummary.frames)
        try check(nokey, golden: Self.runName + ".nokey.txt")
        // The whole store: its journal and run, with the keys found in it.
        try check(try dumpText(DumpOptions(path: Self.central, displayPath: "central")).0, golden: "central.txt")
    }

    @Test("the fixture run holds what the scenario wrote: every section, the meta record, a filter that finds its keys")
    func fixtureContent() throws {
        let reader = try SnapshotRunReader(path: Self.run)
        let header = try reader.header()
        #expect(header.version == 1 && header.firstGeneration == 1 && header.lastGeneration == 1)
        let identity = try JSONSerialization.jsonObject(with: Data(readBytes(Self.central + "/central.json"))) as? [String: Any]
        let secret = try #require(Hex.decode(identity?["secret"] as? String ?? ""))
        #expect(header.central.hex == identity?["central"] as? String)
        let footer = try reader.footer(key: SnapshotRunReader.key(secret: secret))
        #expect(footer.meta.position == header.position && footer.meta.position == 9)
        #expect(footer.meta.marks.map(\.terminal) == [7, 8] && footer.meta.marks.map(\.mark) == [3, 1])
        #expect(footer.meta.centralSequence == 5)
        // components: 3 + 1 captures' sales... every section holds records.
        #expect(footer.meta.counts.allSatisfy { $0 > 0 }, "\(footer.meta.counts)")
        #expect(footer.meta.counts == [8, 1, 3, 3, 1])
        #expect(Int(footer.meta.dataFrames) == footer.index.count && footer.index.map(\.section) == SnapshotRunSection.allCases)
        #expect(footer.filter.bits == footer.filter.words * 64 && footer.filter.bitsSet > 0 && footer.filter.bitsSet <= 7 * 12)
        // The meta record's journal digest is the digest of central's journal record at P.
        let journal = try JournalReader(directory: Self.central + "/journal", dictionaries: [ledgerDictionary],
                                        key: KeyDerivation.centralJournalKey(secret: secret), from: footer.meta.position, through: footer.meta.position)
        defer { journal.close() }
        let (position, record) = try #require(try journal.next())
        #expect(position == 9 && eventDigest(record) == footer.meta.journalDigest)
        // The run opens as central's (the same checks central makes at open).
        let copy = try copyOfFixture()
        let c = try FileCentralStore.open(directory: copy.path)
        #expect(c.snapshotStatistics.runs == 1)
        try c.close()
    }

    /// A writable copy of the fixture store (opening a store takes its lock and may change it).
    func copyOfFixture() throws -> TemporaryDirectory {
        let t = TemporaryDirectory("snapshot-copy")
        try FileManager.default.removeItem(atPath: t.path)
        try FileManager.default.copyItem(atPath: Self.central, toPath: t.path)
        return t
    }

    @Test("a damaged run: a flipped payload byte is damage at that frame's offset and the next frame is read; a cut trailer is named at its offset")
    func damagedRun() throws {
        let t = try copyOfFixture()
        let path = t.path + "/state/" + Self.runName
        let clean = try collectRun(path)
        let frames = clean.index
        #expect(frames.count == 5)
        var bytes = readBytes(path)
        let victim = frames[1]
        bytes[Int(victim.offset) + 60] ^= 0x04
        writeBytes(bytes, path)
        let (text, summary) = try dumpText(try Self.options(path, display: "run"))
        #expect(summary.status == .damaged && summary.damagedRanges == 1)
        #expect(summary.damage.first?.offset == victim.offset && summary.damage.first?.code == "payloadChecksum")
        #expect(summary.damage.first?.bytes == UInt64(victim.length))
        // The frames after it are read and decoded: the duplicate keys (section 3) are shown.
        #expect(text.contains("duplicate-keys key="))
        #expect(text.contains("  frame @\(frames[2].offset) #3 duplicate-keys"))
        // A run cut short loses its trailer: named at the end magic's offset, data frames still checked.
        bytes = readBytes(Self.run)
        writeBytes(Array(bytes.dropLast(3)), path)
        let (_, cut) = try dumpText(try Self.options(path, display: "run"))
        #expect(cut.status == .damaged && cut.damage.first?.offset == UInt64(bytes.count - 3 - 8))
        #expect(cut.frames >= 5)
    }

    /// The footer of a run, through the public reader.
    func collectRun(_ path: String) throws -> SnapshotRunFooter {
        let identity = try JSONSerialization.jsonObject(with: Data(readBytes(Self.central + "/central.json"))) as? [String: Any]
        let secret = try #require(Hex.decode(identity?["secret"] as? String ?? ""))
        return try SnapshotRunReader(path: path).footer(key: SnapshotRunReader.key(secret: secret))
    }

    @Test("--entity on a run shows one sale's component and its ticket entry; --from-seq is refused for runs")
    func filters() throws {
        var o = try Self.options(Self.run, display: "run")
        o.entity = try Dot(replica: try ReplicaId.terminal(7), seq: 1)
        let (text, _) = try dumpText(o)
        let records = text.split(separator: "\n").filter { $0.hasPrefix("    ") }
        #expect(records.count == 7, "\(records)")  // capture, request, confirmation, approval, completion; ticket entry; its duplicate-key entry
        #expect(records.allSatisfy { $0.contains("7:1") })
        o.entity = nil
        o.types = ["sale-captured"]
        #expect(try dumpText(o).0.split(separator: "\n").filter { $0.hasPrefix("    ") }.count == 3)
        o.types = []
        o.fromSequence = 1
        #expect(throws: DumpError.self) { try dumpText(o) }
    }

    @Test("a terminal directory dumps outbound and inbound with its enrollment's key, no --key-file")
    func terminalDirectory() throws {
        let t = TemporaryDirectory("terminal-dir")
        let c = try FileCentralStore.create(directory: t.sub("central"))
        let e = try c.enroll(terminal: try ReplicaId.terminal(3), merchant: "shop")
        let till = try TerminalReplica.initialize(directory: t.sub("t3"), enrollment: e)
        _ = try till.record(.saleCaptured(try SaleCapture(amount: Ledger.money(990), paymentCode: try PaymentCode(Ledger.alipayDigits), merchantKey: e.ledgerMerchantKey)),
                            wallMillis: Int64(Ledger.baseMillis))
        _ = try till.sync(via: InProcessTransport(central: c), wallMillis: Int64(Ledger.baseMillis) + 10)
        try till.close()
        try c.close()
        let (text, summary) = try dumpText(DumpOptions(path: t.sub("t3"), displayPath: "t3"))
        #expect(summary.status == .clean && summary.segments == 2 && summary.undecodedFrames.isEmpty, "\(text)")
        #expect(text.contains("#1 sale-captured dot=3:1"))
        #expect(text.contains("inbound-ack acknowledged=1"))
        #expect(text.contains("store t3 terminal: t3/outbound clean, t3/inbound clean"))
        // Central's directory: its journal and (none yet) runs with central.json's keys.
        let (central, centralSummary) = try dumpText(DumpOptions(path: t.sub("central"), displayPath: "c"), mode: .init(json: true))
        #expect(centralSummary.status == .clean && centralSummary.undecodedFrames.isEmpty)
        #expect(central.contains(#""kind":"store","path":"c","store":"central""#))
    }

    @Test("the binary dumps the fixture central directory without a key file and exits 0")
    func binary() throws {
        let t = TemporaryDirectory("snapshot-e2e")
        let run = try runDump([Self.central, "--verify"], directory: t)
        #expect(run.exitCode == 0, "\(run.stderr)")
        #expect(run.stdout.contains("runs=1") && run.stdout.contains("status=clean exit=0"))
        let stats = try runDump([Self.run, "--stats", "--key-file", Self.central + "/central.json"], directory: t)
        #expect(stats.exitCode == 0 && stats.stdout.contains("section components records=8"))
    }
}

/// The run format as sync-protocol.md writes it down, implemented here from the
/// text alone (not from PosCentralFiles): the key filter's hashing and sizing and
/// the digests section, checked against the fixture run.
@Suite("snapshot runs: the spec's key filter and digests, independently")
struct SnapshotRunSpecTests {
    /// FNV-1a-64 over the section byte and the key, finished with splitmix64; double hashing.
    static func probes(section: UInt8, key: ArraySlice<UInt8>, bits: UInt64) -> [UInt64] {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in [section] + Array(key) { h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        func mix(_ x: UInt64) -> UInt64 {
            var z = x &+ 0x9e37_79b9_7f4a_7c15
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            return z ^ (z >> 31)
        }
        let h1 = mix(h), h2 = mix(h ^ 0x5bd1_e995) | 1
        return (0..<UInt64(7)).map { (h1 &+ $0 &* h2) % bits }
    }

    @Test("the filter recomputed from the run's records by the spec's hashing equals the stored words; digests are the journal records' digests")
    func filterAndDigests() throws {
        let identity = try JSONSerialization.jsonObject(with: Data(readBytes(SnapshotRunTests.central + "/central.json"))) as? [String: Any]
        let secret = try #require(Hex.decode(identity?["secret"] as? String ?? ""))
        let reader = try SnapshotRunReader(path: SnapshotRunTests.run)
        let footer = try reader.footer(key: SnapshotRunReader.key(secret: secret))
        let decoder = SnapshotRunReader.decoder(key: SnapshotRunReader.key(secret: secret))
        var bySection: [SnapshotRunSection: [[UInt8]]] = [:]
        for e in footer.index {
            let f = try reader.frame(at: e.offset, end: e.offset + UInt64(e.length))
            bySection[e.section, default: []] += try reader.records(f.bytes, offset: e.offset, decoder: decoder)
        }
        // Sizing: W = ceil(max(64, 10 N) / 64), N = the records of sections 1-3 at a flush.
        let n = (bySection[.components]?.count ?? 0) + (bySection[.tickets]?.count ?? 0) + (bySection[.duplicateKeys]?.count ?? 0)
        let words = (max(64, 10 * n) + 63) / 64
        #expect(footer.filterWords.count == words)
        var expected = [UInt64](repeating: 0, count: words)
        func insert(_ s: UInt8, _ k: ArraySlice<UInt8>) {
            for b in Self.probes(section: s, key: k, bits: UInt64(words * 64)) { expected[Int(b / 64)] |= 1 << (b % 64) }
        }
        for r in bySection[.components] ?? [] { insert(1, r[0..<12]) }
        for r in bySection[.tickets] ?? [] { insert(2, r[0..<12]) }
        for r in bySection[.duplicateKeys] ?? [] { insert(3, r[0..<16]) }
        #expect(expected == footer.filterWords)

        // Digests: key = replica u32 BE + first seq u64 BE; payload = u64 LE digests of seqs first, first+1, ...
        // Every event of the journal through P has its digest there: the first 8 bytes of SHA-256 of its record.
        var stored: [String: UInt64] = [:]
        for r in bySection[.digests] ?? [] {
            let replica = r[0..<4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            let first = r[4..<12].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            for i in stride(from: 12, to: r.count, by: 8) {
                stored["\(replica):\(first + UInt64((i - 12) / 8))"] = r[i..<i + 8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            }
        }
        let journal = try JournalReader(directory: SnapshotRunTests.central + "/journal", dictionaries: [ledgerDictionary],
                                        key: KeyDerivation.centralJournalKey(secret: secret), from: 1, through: footer.meta.position)
        defer { journal.close() }
        var count = 0
        while let (_, record) = try journal.next() {
            let event = try RecordCodec.decode(record)
            #expect(stored[event.dot.description] == eventDigest(record), "digest of \(event.dot)")
            count += 1
        }
        #expect(count == stored.count && count == Int(footer.meta.position))
    }
}
