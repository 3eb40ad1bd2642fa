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

/// Journals of real ledger events: decoded lines, masking, filters, stats,
/// keys from enrollment and central files, bundles, inbound journals, follow.
@Suite("ledger events in a dump")
struct EventDumpTests {
    /// Terminal 7's outbound journal, encrypted with its enrollment key, plus the enrollment file.
    func terminalJournal(_ t: TemporaryDirectory, segmentBytesMax: Int = 4 << 20) throws -> (dir: String, enrollment: String) {
        let e = Ledger.enrollment(terminal: 7)
        let file = t.sub("enrollment.json")
        try e.write(to: file)
        let dir = t.sub("outbound")
        try Ledger.writeJournal(dir, records: Ledger.terminalEvents(7).map(RecordCodec.encode), key: e.journalKey, segmentBytesMax: segmentBytesMax)
        return (dir, file)
    }

    func options(_ dir: String, key: String?) throws -> DumpOptions {
        var o = DumpOptions(path: dir, displayPath: "outbound")
        if let key { try o.keys.load(file: key, keyID: nil) }
        return o
    }

    @Test("events decode on one line each: major units, masked codes, ISO HLC with logical counter")
    func decodedLines() throws {
        let t = TemporaryDirectory("events")
        let (dir, enrollment) = try terminalJournal(t)
        let (text, summary) = try dumpText(try options(dir, key: enrollment))
        #expect(summary.status == .clean && summary.decodedRecords == 9 && summary.unknownTypeRecords == 1)
        let lines = text.split(separator: "\n").map(String.init)
        let l1 = try #require(lines.first { $0.hasPrefix("    #1 ") })
        #expect(l1.contains("sale-captured dot=7:1 hlc=2026-07-25T17:21:00.000Z/0 ctx={}"))
        #expect(l1.contains("amount=12.50 CNY") && l1.contains("wallet=wechat-pay") && l1.contains("code=13************6789"))
        let l2 = try #require(lines.first { $0.hasPrefix("    #2 ") })
        #expect(l2.contains("hlc=2026-07-25T17:21:01.000Z/3") && l2.contains("amount=1.05 CNY") && l2.contains("code=28**********4321"))
        #expect(lines.contains { $0.hasPrefix("    #3 refund-requested") && $0.contains("sale=7:1 amount=5.00 CNY reason=other reason-text=\"scratched\"") })
        #expect(lines.contains { $0.hasPrefix("    #6 unknown-200 dot=7:6") && $0.contains("fields=0801") })
        #expect(lines.contains { $0.hasPrefix("    #9 ") && $0.contains("amount=999.99 EUR") })
        // Payment codes never appear in clear, in any output.
        let (json, _) = try dumpText(try options(dir, key: enrollment), mode: .init(json: true))
        for out in [text, json] {
            #expect(!out.contains(Ledger.wechatDigits) && !out.contains(Ledger.alipayDigits))
        }
        let record = try #require(json.split(separator: "\n").first { $0.contains("\"seq\":1,") })
        let o = try #require(try JSONSerialization.jsonObject(with: Data(record.utf8)) as? [String: Any])
        #expect(o["type"] as? String == "sale-captured" && o["amount"] as? String == "12.50" && o["amountMinor"] as? Int == 1250)
        #expect(o["currency"] as? String == "CNY" && o["paymentCode"] as? String == "13************6789")
        #expect(o["hlcTime"] as? String == "2026-07-25T17:21:00.000Z" && o["hlcLogical"] as? Int == 0 && o["dot"] as? String == "7:1")
    }

    @Test("filters: sequence range, type, and an entity with its tickets in order")
    func filters() throws {
        let t = TemporaryDirectory("filters")
        let (dir, enrollment) = try terminalJournal(t)
        var o = try options(dir, key: enrollment)
        o.fromSequence = 3
        o.toSequence = 5
        #expect(try collect(o).records.map(\.sequence) == [3, 4, 5])

        o = try options(dir, key: enrollment)
        o.types = ["sale-captured"]
        let captured = try collect(o)
        #expect(captured.records.map(\.sequence) == [1, 2, 9] && captured.frames.isEmpty)
        o.types = ["unknown"]
        #expect(try collect(o).records.map(\.sequence) == [6])
        o.types = ["11"]
        #expect(try collect(o).records.map(\.sequence) == [5])

        // Sale 7:1: its capture, the request on it (ticket 7:3), and the ticket's approval and note.
        o = try options(dir, key: enrollment)
        o.entity = parseEntity("7:1")
        #expect(try collect(o).records.map(\.sequence) == [1, 3, 4, 5])
        // The same sale by its return code, and a ticket by its ticket number.
        o.entity = parseEntity(SaleId(try Dot(replica: try ReplicaId.terminal(7), seq: 1)).returnCode.description)
        #expect(try collect(o).records.map(\.sequence) == [1, 3, 4, 5])
        o.entity = parseEntity(TicketId(try Dot(replica: try ReplicaId.terminal(7), seq: 7)).ticketNumber.text)
        #expect(try collect(o).records.map(\.sequence) == [7, 8])
    }

    @Test("stats: counts and exact amounts by type, HLC range, replica sequence ranges")
    func stats() throws {
        let t = TemporaryDirectory("stats")
        let (dir, enrollment) = try terminalJournal(t)
        let (text, _) = try dumpText(try options(dir, key: enrollment), mode: .init(stats: true))
        #expect(text.contains("type sale-captured count=3 amount=13.55 CNY, 999.99 EUR"))
        #expect(text.contains("type refund-requested count=2 amount=6.05 CNY"))
        #expect(text.contains("type unknown-200 count=1"))
        #expect(text.contains("hlc 2026-07-25T17:21:00.000Z/0 ... 2026-07-25T17:21:08.000Z/0"))
        #expect(text.contains("replica terminal 7 events=9 seq=1...9 contiguous"))
        let (json, _) = try dumpText(try options(dir, key: enrollment), mode: .init(json: true, stats: true))
        let o = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(o["kind"] as? String == "stats" && o["records"] as? Int == 9)
    }

    @Test("keys: enrollment of another terminal is a wrong key per frame; central.json opens central's journal and its terminals' bundles")
    func keys() throws {
        let t = TemporaryDirectory("keys")
        let (dir, _) = try terminalJournal(t)
        let other = t.sub("other.json")
        try Ledger.enrollment(terminal: 8).write(to: other)
        let wrong = try collect(try options(dir, key: other))
        #expect(wrong.summary?.status == .clean && wrong.records.isEmpty && wrong.frames.allSatisfy { $0.undecoded?.code == "wrongKey" })
        let sameID = t.sub("same-id.json")
        try Ledger.enrollment(terminal: 7, secretByte: 0x22).write(to: sameID)
        let auth = try collect(try options(dir, key: sameID))
        #expect(auth.summary?.status == .clean && auth.frames.allSatisfy { $0.undecoded?.code == "authenticationFailed" })

        // Central: central.json and terminals/7.json beside it.
        let central = t.sub("central")
        try FileManager.default.createDirectory(atPath: central + "/terminals", withIntermediateDirectories: true)
        let secret = [UInt8](repeating: 0x33, count: 32)
        try #"{"format": "possync-central-v1", "central": "\#(Ledger.central.hex)", "secret": "\#(secret.map { String(format: "%02x", $0) }.joined())"}"#
            .write(toFile: central + "/central.json", atomically: true, encoding: .utf8)
        try Ledger.enrollment(terminal: 7).write(to: central + "/terminals/7.json")
        try Ledger.writeJournal(central + "/journal", records: Ledger.terminalEvents(7).map(RecordCodec.encode),
                                key: KeyDerivation.centralJournalKey(secret: secret))
        var co = DumpOptions(path: central + "/journal", displayPath: "journal")
        try co.keys.load(file: central + "/central.json", keyID: nil)
        #expect(try collect(co).records.count == 9)
        // The terminal's own journal opens with central's file too (the enrollment beside it).
        var to = DumpOptions(path: dir, displayPath: "outbound")
        try to.keys.load(file: central + "/central.json", keyID: nil)
        #expect(try collect(to).records.count == 9)
    }

    @Test("a key file that is neither enrollment, central.json nor hex is a usage error naming the file")
    func badKeyFile() throws {
        let t = TemporaryDirectory("badkey")
        try "not a key".write(toFile: t.sub("k"), atomically: true, encoding: .utf8)
        var keys = KeyRing()
        #expect(throws: DumpError.self) { try keys.load(file: t.sub("k"), keyID: nil) }
        do { try keys.load(file: t.sub("k"), keyID: nil) } catch { #expect(error.description.contains(t.sub("k"))) }
    }

    @Test("bundle: header, SHA-256, frames and records; a damaged bundle is still read frame by frame")
    func bundle() throws {
        let t = TemporaryDirectory("bundle")
        let e = Ledger.enrollment(terminal: 7)
        try e.write(to: t.sub("e.json"))
        let sealer = FrameSealer(dictionary: ledgerDictionary, key: e.journalKey)
        let records = Ledger.terminalEvents(7).map(RecordCodec.encode)
        var frames: [[UInt8]] = []
        var chain: UInt32 = 0
        for (i, pair) in stride(from: 0, to: records.count, by: 3).map({ ($0, Array(records[$0..<min($0 + 3, records.count)])) }).enumerated() {
            _ = i
            let (bytes, header) = try sealer.seal(pair.1, firstSequence: UInt64(pair.0 + 1), previousChecksum: chain)
            chain = header.checksum
            frames.append(bytes)
        }
        let path = t.sub("t7.bundle")
        let w = try BundleWriter(path: path, header: BundleHeader(central: Ledger.central, terminal: try ReplicaId.terminal(7), dictionaryID: 1,
                                                                  keyID: 7, firstSequence: 1, lastSequence: 9, frameCount: UInt32(frames.count)))
        for f in frames { try w.write(f) }
        try w.finish()
        var o = DumpOptions(path: path, displayPath: "t7.bundle")
        try o.keys.load(file: t.sub("e.json"), keyID: nil)
        let (text, summary) = try dumpText(o)
        #expect(summary.status == .clean && summary.bundles == 1 && summary.decodedRecords == 9)
        #expect(text.hasPrefix("bundle t7.bundle bytes=") && text.contains("terminal=7") && text.contains("sha256=ok"))

        var b = readBytes(path)
        b[58 + frames[0].count + 50] ^= 0x01  // inside the second frame
        writeBytes(b, path)
        let damaged = try collect(o)
        #expect(damaged.summary?.status == .damaged)
        #expect(damaged.damage.contains { $0.code == "checksum" })
        #expect(damaged.damage.contains { $0.code == "payloadChecksum" && $0.offset == UInt64(58 + frames[0].count) })
        #expect(damaged.records.map(\.sequence) == [1, 2, 3, 7, 8, 9])
    }

    @Test("inbound journal: pulled events, acknowledgements and sync marks")
    func inbound() throws {
        let t = TemporaryDirectory("inbound")
        let e = Ledger.enrollment(terminal: 7)
        // Version 1, as central relays (this dump has no merchant key for a version-2 capture).
        let events = Ledger.terminalEvents(8).prefix(2).map { RecordCodec.encode($0, version: 1) }
        let records = [InboundRecord.pulled(position: 41, event: events[0]).encoded(),
                       InboundRecord.pulled(position: 42, event: events[1]).encoded(),
                       InboundRecord.acknowledged(sequence: 9).encoded(),
                       InboundRecord.synced(wallMillis: Int64(Ledger.baseMillis), centralWallMillis: nil).encoded()]
        try Ledger.writeJournal(t.sub("inbound"), records: records, key: e.journalKey)
        var o = DumpOptions(path: t.sub("inbound"), displayPath: "inbound")
        o.keys.add(e.journalKey, source: "test")
        let (text, _) = try dumpText(o)
        #expect(text.contains("#1 pulled central-position=41 sale-captured dot=8:1"))
        #expect(text.contains("#3 inbound-ack acknowledged=9"))
        #expect(text.contains("#4 inbound-synced wall=2026-07-25T17:21:00.000Z"))
    }

    @Test("free text cannot break the one-line-per-record layout")
    func controlCharacters() throws {
        let t = TemporaryDirectory("ctl")
        let ticket = TicketId(try Dot(replica: try ReplicaId.terminal(1), seq: 1))
        let e = Event(dot: try Dot(replica: try ReplicaId.terminal(1), seq: 2), hlc: Ledger.hlc(0), context: VersionVector(),
                      body: .noteAdded(ticket, try NoteText("line one\nline \"two\"\u{1B}[31m")))
        try Ledger.writeJournal(t.sub("j"), records: [RecordCodec.encode(e)], key: nil)
        let (text, _) = try dumpText(DumpOptions(path: t.sub("j"), displayPath: "j"))
        let line = try #require(text.split(separator: "\n").first { $0.contains("note-added") })
        #expect(line.hasSuffix(#"note="line one\nline \"two\"\u{1b}[31m""#))
        #expect(!text.contains("\u{1B}"))
    }

    @Test("ISO time and major units are exact")
    func rendering() throws {
        let t = TemporaryDirectory("render")
        // Dates at the edges: the epoch, a leap day, the end of a year.
        let events = [0, 951_782_400_000, 1_767_225_599_999].enumerated().map { i, ms in
            Event(dot: try! Dot(replica: try! ReplicaId.terminal(1), seq: UInt64(i + 1)), hlc: HLCTimestamp(millis: UInt64(ms), logical: 65535),
                  context: VersionVector(), body: .saleCaptured(try! SaleCapture(amount: Money(minorUnits: [1, 100_000_000_000_000, 7][i], currency: [try! Currency("JPY"), .USD, try! Currency("KWD")][i]),
                                                                                   paymentCode: try! PaymentCode(Ledger.wechatDigits), merchantKey: Ledger.merchantKey)))
        }
        // Version 1: dumped with no enrollment, so no merchant key for a version-2 capture.
        try Ledger.writeJournal(t.sub("j"), records: events.map { RecordCodec.encode($0, version: 1) }, key: nil)
        let (text, _) = try dumpText(DumpOptions(path: t.sub("j"), displayPath: "j"))
        #expect(text.contains("hlc=1970-01-01T00:00:00.000Z/65535") && text.contains("amount=1 JPY"))
        #expect(text.contains("hlc=2000-02-29T00:00:00.000Z/65535") && text.contains("amount=1000000000000.00 USD"))
        #expect(text.contains("hlc=2025-12-31T23:59:59.999Z/65535") && text.contains("amount=0.007 KWD"))
    }

    @Test("--follow prints records appended while it runs (bounded run)")
    func follow() throws {
        let t = TemporaryDirectory("follow")
        let dir = t.sub("j")
        let config = JournalConfiguration(durability: .perRecord, segmentBytesMax: 2048, dictionary: ledgerDictionary)
        let journal = try Journal.open(directory: dir, configuration: config)
        let events = (1...60).map { i in
            RecordCodec.encode(Event(dot: try! Dot(replica: try! ReplicaId.terminal(3), seq: UInt64(i)), hlc: Ledger.hlc(UInt64(i)), context: VersionVector(),
                                     body: .saleCaptured(try! SaleCapture(amount: Ledger.money(Int64(i)), paymentCode: try! PaymentCode(Ledger.wechatDigits), merchantKey: Ledger.merchantKey))))
        }
        for r in events.prefix(10) { try journal.append(r) }
        let writer = Thread {
            for r in events.dropFirst(10) {
                try! journal.append(r)
                usleep(5_000)
            }
        }
        writer.start()
        let sink = CollectingSink()
        let scanner = DumpScanner(options: DumpOptions(path: dir, displayPath: "j"), sink: sink)
        try scanner.run(follow: .init(pollMilliseconds: 20, stopAfterIdleMilliseconds: 800))
        try journal.close()
        #expect(sink.records.map(\.sequence) == Array(1...60))
        #expect(sink.summary?.status == .clean)
        #expect(sink.segments.count > 1)  // it followed into new segments
    }

    @Test("a central snapshot run, or the state/ directory holding runs, is named as such, not called an unknown file")
    func snapshotRunsAreNamed() throws {
        let t = TemporaryDirectory("dump-runs")
        let central = try FileCentralStore.create(directory: t.path + "/central", snapshotEvents: 1)
        let e = try central.enroll(terminal: try ReplicaId.terminal(1), merchant: "shop")
        let terminal = try TerminalReplica.initialize(directory: t.path + "/t1", enrollment: e)
        _ = try terminal.record(.saleCaptured(try SaleCapture(amount: Ledger.money(1250), paymentCode: try PaymentCode(Ledger.wechatDigits), merchantKey: e.ledgerMerchantKey)),
                                wallMillis: 1_785_000_000_000)
        _ = try terminal.sync(via: InProcessTransport(central: central), wallMillis: 1_785_000_000_100)
        try central.close()
        let state = t.path + "/central/state"
        let run = try #require(try FileManager.default.contentsOfDirectory(atPath: state).first { $0.hasSuffix(".pss") })
        for (path, expected) in [(state + "/" + run, "a central snapshot run (magic PSSNAPSH)"), (state, "central's state/ directory of snapshot runs")] {
            #expect {
                _ = try collect(DumpOptions(path: path))
            } throws: { error in
                "\(error)".contains(expected)
            }
        }
    }
}
