import Foundation
import Testing
@testable import PosJournal
@testable import PosLedger
@testable import PosTerminal
@testable import PosWire
import PosTestSupport

/// The checkpoint fixture (Fixtures/checkpoint/README.md): a small checkpoint of
/// terminal 7 sealed under a fixture key, and what reading it must give. Its
/// frames use random AES-GCM nonces, so regenerating it (POSSYNC_WRITE_FIXTURES=1)
/// changes its bytes but not what it reads to.
@Suite("terminal checkpoint fixture")
struct CheckpointFixtureTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        + "/Fixtures/checkpoint"
    /// A fixture key, never a real one: byte i is (5·i + 2) mod 256.
    static let key = JournalKey(id: 7, bytes: (0..<32).map { UInt8((5 * $0 + 2) % 256) })
    static let terminal = try! ReplicaId.terminal(7)

    /// The checkpoint the fixture holds.
    static func expected() throws -> TerminalCheckpoint {
        let merchant = MerchantKey(bytes: Array(repeating: 0x42, count: 32))
        let t8 = try ReplicaId.terminal(8)
        let own = Event(dot: try Dot(replica: terminal, seq: 1), hlc: HLCTimestamp(millis: 1_785_000_000_000, logical: 0), context: VersionVector(),
                        body: .saleCaptured(try SaleCapture(amount: Money(minorUnits: 1250, currency: .CNY), paymentCode: try PaymentCode("134512345678906789"), merchantKey: merchant)))
        let relayed = Event(dot: try Dot(replica: t8, seq: 1), hlc: HLCTimestamp(millis: 1_785_000_001_000, logical: 0), context: VersionVector(),
                            body: .saleCaptured(try SaleCapture(amount: Money(minorUnits: 105, currency: .CNY), paymentCode: try PaymentCode("2845678901234321"), merchantKey: merchant).withoutPaymentCode()))
        let confirmed = Event(dot: try Dot(replica: .central, seq: 2), hlc: HLCTimestamp(millis: 1_785_000_002_000, logical: 1),
                              context: VersionVector([(terminal, 1)]), body: .saleConfirmed(SaleId(own.dot)))
        var summary = InboundSummary()
        summary.acknowledged = 1
        summary.centralHolds = 1
        summary.echoed = 1
        summary.reserved = 256
        summary.epoch = 3
        summary.pullCursor = 9
        summary.pullCursorDigest = 0x0123_4567_89AB_CDEF
        summary.lastSync = (1_785_000_003_000, 1_785_000_003_500)
        summary.scopeFloor = 1_784_000_000_000
        return TerminalCheckpoint.of([(own, 0), (confirmed, 5), (relayed, 4)], terminal: terminal,
                                     outboundJournal: JournalID(bytes: Array(0x10...0x1F))!, outboundThrough: 1,
                                     inboundJournal: JournalID(bytes: Array(0x20...0x2F))!, inboundThrough: 6, summary: summary,
                                     clock: HLCTimestamp(millis: 1_785_000_003_500, logical: 2),
                                     knowledge: VersionVector([(.central, 2), (terminal, 1), (t8, 1)]),
                                     status: TerminalCheckpoint.StatusCounts(outboundFirst: 1, counts: LedgerCounts(LedgerState.fold([own, confirmed, relayed]))))
    }

    @Test("Fixtures/checkpoint/checkpoint.psc reads to the documented fields, byte offsets as the spec gives them")
    func fixtureReads() throws {
        let path = Self.root + "/checkpoint.psc"
        if ProcessInfo.processInfo.environment["POSSYNC_WRITE_FIXTURES"] == "1" {
            try Data(try Self.expected().encoded(key: Self.key)).write(to: URL(fileURLWithPath: path))
        }
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        // The plain header, by the spec's offsets.
        #expect(Array(bytes[0..<8]) == Array("PSTCHKPT".utf8))
        #expect(bytes[8] == 3 && bytes[9] == 0)
        #expect(bytes[10] == 7 && bytes[11...13].allSatisfy { $0 == 0 })
        #expect(bytes[14] == 7 && bytes[15...17].allSatisfy { $0 == 0 })
        #expect(bytes[18] == 4 && bytes[19...21].allSatisfy { $0 == 0 }, "the meta frame, one entry frame, one key table frame, the root")
        // The root index frame's offset (u64 at 22) and length (u32 at 30) end the file.
        let rootOffset = bytes[22..<30].reversed().reduce(0) { $0 << 8 | Int($1) }
        let rootLength = bytes[30..<34].reversed().reduce(0) { $0 << 8 | Int($1) }
        #expect(rootOffset + rootLength == bytes.count && rootOffset > 34)
        let c = try TerminalCheckpoint.decode(bytes, terminal: Self.terminal, key: Self.key, path: path)
        let e = try Self.expected()
        #expect(c.outboundJournal == e.outboundJournal && c.outboundThrough == 1 && c.inboundJournal == e.inboundJournal && c.inboundThrough == 6)
        #expect(c.summary.acknowledged == 1 && c.summary.centralHolds == 1 && c.summary.echoed == 1 && c.summary.reserved == 256)
        #expect(c.summary.epoch == 3 && c.summary.pullCursor == 9 && c.summary.pullCursorDigest == 0x0123_4567_89AB_CDEF)
        #expect(c.summary.lastSync?.wallMillis == 1_785_000_003_000 && c.summary.lastSync?.centralWallMillis == 1_785_000_003_500)
        #expect(c.summary.scopeFloor == 1_784_000_000_000 && c.clock == e.clock && c.knowledge == e.knowledge)
        #expect(c.entries.map(\.inboundSeq) == e.entries.map(\.inboundSeq))
        #expect(c.entries.map(\.record) == e.entries.map(\.record))
        // Sorted by (group, dot): central's confirmation and the own capture in group 7:1, then 8:1's capture.
        #expect(c.entries.map { $0.group.map { "\($0.dot)" } ?? "0:0" } == ["7:1", "7:1", "8:1"])
        #expect(c.entries.map(\.inboundSeq) == [5, 0, 4])
        #expect(c.keys.map { "\($0.sale.dot)" }.sorted() == ["7:1", "8:1"] && c.keys.count == 2 && c.tickets.isEmpty)
        // No payment code in clear.
        let digits = Array("134512345678906789".utf8)
        #expect(!bytes.indices.contains { i in i + digits.count <= bytes.count && Array(bytes[i..<(i + digits.count)]) == digits })
        // The meta record's bytes, as the spec's table gives them (the same encoder as the file).
        let meta = try #require(try Frames.records(Array(bytes[34..<(34 + Int(FrameHeader.inspect(Array(bytes[34..<74]), file: path, offset: 34).get().frameBytes))]),
                                                   dictionaryID: 1, keyID: 7, decoder: FrameDecoder(dictionaries: [ledgerDictionary], key: Self.key)).records.first)
        // Version 3: the status counts after the knowledge vector (207): outbound first seq, 10 ticket status counts, 9 conflict kind counts.
        #expect(meta.count == 171 + 12 * 3 + 8 + 1 + 8 * 10 + 1 + 8 * 9)
        #expect(meta[207] == 1 && meta[208..<215].allSatisfy { $0 == 0 } && meta[215] == 10 && meta[296] == 9)
        #expect(c.status == e.status && c.status?.counts == LedgerCounts())
        #expect(meta[0] == 1 && meta[101] == 1 && meta[110] == 2)
        #expect(meta[143] == 3 && meta[151] == 2 && meta[159] == 0 && meta[167] == 3, "E, K, T and n")
        #expect(Array(meta[5..<21]) == Array(0x10...0x1F) && Array(meta[29..<45]) == Array(0x20...0x2F))
    }

    @Test("Fixtures/checkpoint/checkpoint-v2.psc (version 2, no status counts) still reads, to the same entries and tables")
    func versionTwoFixtureReads() throws {
        let path = Self.root + "/checkpoint-v2.psc"
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(bytes[8] == 2 && bytes[9] == 0)
        let c = try TerminalCheckpoint.decode(bytes, terminal: Self.terminal, key: Self.key, path: path)
        let e = try Self.expected()
        #expect(c.status == nil && c.entries == e.entries && c.keys.map(\.sale) == e.keys.map(\.sale) && c.knowledge == e.knowledge)
        #expect(c.summary.scopeFloor == e.summary.scopeFloor && c.clock == e.clock && c.outboundThrough == 1 && c.inboundThrough == 6)
        // Version 2 with version 3's status counts appended to its meta record (or version 3 without them) is refused at the meta record.
        var v2 = e
        v2.status = nil
        var mislabeled = try e.encoded(key: Self.key)
        mislabeled[8] = 2
        #expect(throws: SyncError.self) { try TerminalCheckpoint.decode(mislabeled, terminal: Self.terminal, key: Self.key, path: "c") }
        var unlabeled = try v2.encoded(key: Self.key)
        #expect(unlabeled[8] == 2)
        unlabeled[8] = 3
        #expect(throws: SyncError.self) { try TerminalCheckpoint.decode(unlabeled, terminal: Self.terminal, key: Self.key, path: "c") }
    }

    @Test("entries out of dot order, repeated, or outside what the meta record covers are refused, naming the entry")
    func entryChecks() throws {
        let good = try Self.expected()
        func refused(_ entries: [TerminalCheckpoint.Entry], _ expected: String) throws {
            var c = good
            c.entries = entries
            let bytes = try c.encoded(key: Self.key)
            // The entry frame is frame 2, right after the meta frame.
            let entryFrame = 34 + (try FrameHeader.inspect(Array(bytes[34..<74]), file: "c", offset: 34).get().frameBytes)
            do {
                _ = try TerminalCheckpoint.decode(bytes, terminal: Self.terminal, key: Self.key, path: "c")
                Issue.record("read: \(expected)")
            } catch {
                #expect(error.message.contains(expected) && error.location == "c offset \(entryFrame)", "\(error)")
            }
        }
        #expect(try TerminalCheckpoint.decode(try good.encoded(key: Self.key), terminal: Self.terminal, key: Self.key, path: "c").entries.count == 3)
        try refused(good.entries.reversed(), "frame 2 record 1: not after record 0")             // out of order
        try refused([good.entries[0], good.entries[0]], "strictly ascending")                     // repeated
        var own = good.entries[1]
        own.inboundSeq = 9
        try refused([good.entries[0], own, good.entries[2]], "pulled event 7:1 with inbound seq 9, inbound covered through 6")
        var notOwn = good.entries[2]
        notOwn.inboundSeq = 0
        try refused([good.entries[0], good.entries[1], notOwn], "event 8:1 with inbound seq 0 is not an own event")
        var pulled = good.entries[2]
        pulled.inboundSeq = 7
        try refused([good.entries[0], good.entries[1], pulled], "pulled event 8:1 with inbound seq 7, inbound covered through 6")
        // An own event retention retired and central sent back as a key-group partner: brought by an inbound record.
        var partner = good
        partner.entries[1].inboundSeq = 3
        #expect(try TerminalCheckpoint.decode(try partner.encoded(key: Self.key), terminal: Self.terminal, key: Self.key, path: "c").entries[1].inboundSeq == 3)
    }

    @Test("a checkpoint of another terminal or under another key is refused, naming the file and offset")
    func refusals() throws {
        let bytes = try Self.expected().encoded(key: Self.key)
        #expect(throws: SyncError.self) { try TerminalCheckpoint.decode(bytes, terminal: try ReplicaId.terminal(8), key: Self.key, path: "c") }
        do {
            _ = try TerminalCheckpoint.decode(bytes, terminal: Self.terminal, key: JournalKey(id: 7, bytes: Array(repeating: 1, count: 32)), path: "c")
            Issue.record("a checkpoint read under the wrong key")
        } catch {
            #expect(error.location?.hasPrefix("c") == true, "\(error)")
        }
        do {
            _ = try TerminalCheckpoint.decode(Array(bytes.prefix(60)), terminal: Self.terminal, key: Self.key, path: "c")
            Issue.record("a truncated checkpoint was read")
        } catch {
            #expect(error.location == "c offset 22" && error.message.contains("root index frame offset"), "\(error)")
        }
        // A version-1 file (22-byte header) is refused at the version field: the terminal folds its journals.
        var v1 = Array("PSTCHKPT".utf8) + [1, 0, 7, 0, 0, 0, 7, 0, 0, 0, 2, 0, 0, 0]
        v1 += [UInt8](repeating: 0, count: 100)
        do {
            _ = try TerminalCheckpoint.decode(v1, terminal: Self.terminal, key: Self.key, path: "c")
            Issue.record("a version-1 checkpoint was read")
        } catch {
            #expect(error.code == .versionUnsupported && error.location == "c offset 8" && error.message.contains("version 1; this build reads 2 to 3"), "\(error)")
        }
    }
}
