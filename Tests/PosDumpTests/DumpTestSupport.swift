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

/// The package root, from this file's path (Tests/PosDumpTests/…).
let packageRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

let journalFixtures = packageRoot + "/Fixtures/journals"
let dumpFixtures = packageRoot + "/Fixtures/dump"
/// The dictionary of the fixture journals (Fixtures/journals/README.md), id 1000.
let fixtureDictionary = CompressionDictionary(id: 1000, bytes: Array("fixture record : abcdefghijklmnopqrstuvwxyz".utf8))
/// The test key of the encrypted fixture, id 1.
let fixtureKeyFile = journalFixtures + "/valid-encrypted.key.hex"

/// The tests' seeded generator (PosLedger's SplitMix64), so every randomized test replays from its seed.
typealias SeededRandom = SplitMix64

func environmentInt(_ name: String) -> Int? {
    ProcessInfo.processInfo.environment[name].flatMap { Int($0) }
}

/// A fresh temporary directory, removed when released.
typealias TemporaryDirectory = TempDir
extension TempDir {
    func sub(_ name: String) -> String { path + "/" + name }
}

func copyDirectory(_ from: String, to: String) throws {
    try FileManager.default.createDirectory(atPath: to, withIntermediateDirectories: true)
    for name in try FileManager.default.contentsOfDirectory(atPath: from) {
        try FileManager.default.copyItem(atPath: from + "/" + name, toPath: to + "/" + name)
    }
}

func segmentNames(_ dir: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".seg") }.sorted()
}

func readBytes(_ path: String) -> [UInt8] { Array(FileManager.default.contents(atPath: path) ?? Data()) }
func writeBytes(_ bytes: [UInt8], _ path: String) { _ = FileManager.default.createFile(atPath: path, contents: Data(bytes)) }

/// Options for a fixture journal: its dictionary and the fixture key, paths shown relative to Fixtures/journals.
func fixtureOptions(_ path: String, display: String, key: Bool = true) -> DumpOptions {
    var o = DumpOptions(path: path, displayPath: display)
    o.dictionaries = [fixtureDictionary]
    if key { try! o.keys.load(file: fixtureKeyFile, keyID: 1) }
    return o
}

/// Keeps every item the scanner hands over (small journals only).
final class CollectingSink: DumpSink {
    var segments: [SegmentItem] = []
    var frames: [FrameItem] = []
    var records: [RecordItem] = []
    var damage: [DamageItem] = []
    var notices: [NoticeItem] = []
    var summary: DumpSummary?
    func segment(_ item: SegmentItem) { segments.append(item) }
    func bundle(_ item: BundleItem) {}
    func frame(_ item: FrameItem) { frames.append(item) }
    func record(_ item: RecordItem) { records.append(item) }
    func damage(_ item: DamageItem) { damage.append(item) }
    func notice(_ item: NoticeItem) { notices.append(item) }
    func finish(_ summary: DumpSummary) { self.summary = summary }
}

/// Runs the scanner and returns the collected items.
func collect(_ options: DumpOptions) throws -> CollectingSink {
    let sink = CollectingSink()
    try DumpScanner(options: options, sink: sink).run()
    return sink
}

/// Runs a dump into lines.
func dumpText(_ options: DumpOptions, mode: DumpRun.Mode = .init()) throws -> (String, DumpSummary) {
    let out = StringOutput()
    let summary = try DumpRun.run(options: options, mode: mode, out: out)
    return (out.text, summary)
}

// MARK: - Ledger journals

enum Ledger {
    static let central = CentralID(bytes: Array(0xA0...0xAF))!
    static let merchantKeyBytes = [UInt8](repeating: 0x5A, count: 32)
    static let merchantKey = MerchantKey(bytes: merchantKeyBytes)
    /// A WeChat Pay code (18 digits starting 13): must never appear unmasked in a dump.
    static let wechatDigits = "134512345678906789"
    /// An Alipay code (16 digits starting 28).
    static let alipayDigits = "2845678901234321"
    /// 2026-07-25T17:21:00.000Z.
    static let baseMillis: UInt64 = 1_785_000_060_000

    static func enrollment(terminal: UInt32, secretByte: UInt8 = 0x11) -> Enrollment {
        Enrollment(central: central, terminal: try! ReplicaId.terminal(terminal), merchant: "m-1",
                   secret: [UInt8](repeating: secretByte, count: 32), merchantKey: merchantKeyBytes)
    }

    static func money(_ minor: Int64, _ c: Currency = .CNY) -> Money { Money(minorUnits: minor, currency: c) }
    static func hlc(_ i: UInt64, logical: UInt16 = 0) -> HLCTimestamp { HLCTimestamp(millis: baseMillis + i * 1000, logical: logical) }

    /// Terminal `t`'s story, dots t:1...t:9, one of every kind a terminal writes plus an unknown type.
    static func terminalEvents(_ t: UInt32) -> [Event] {
        let r = try! ReplicaId.terminal(t)
        func d(_ s: UInt64) -> Dot { try! Dot(replica: r, seq: s) }
        func ctx(_ dots: [Dot]) -> VersionVector { var v = VersionVector(); for x in dots { v.add(x) }; return v }
        let sale1 = SaleId(d(1)), sale2 = SaleId(d(2))
        let ticket = TicketId(d(3))
        return [
            Event(dot: d(1), hlc: hlc(0), context: VersionVector(),
                  body: .saleCaptured(try! SaleCapture(amount: money(1250), paymentCode: try! PaymentCode(wechatDigits), merchantKey: merchantKey))),
            Event(dot: d(2), hlc: hlc(1, logical: 3), context: VersionVector(),
                  body: .saleCaptured(try! SaleCapture(amount: money(105), paymentCode: try! PaymentCode(alipayDigits), merchantKey: merchantKey))),
            Event(dot: d(3), hlc: hlc(2), context: ctx([d(1)]),
                  body: .refundRequested(try! RefundRequest(sale: sale1, saleAmount: money(1250), amount: money(500),
                                                            reason: .other(try! ReasonText("scratched")), resolution: .refund,
                                                            contact: try! CustomerContact(channel: .sms, address: "+8613800000000")))),
            Event(dot: d(4), hlc: hlc(3), context: ctx([d(1), d(3)]),
                  body: .refundApproved(ticket, .designatedAccount(try! AccountReference("acct-42")))),
            Event(dot: d(5), hlc: hlc(4), context: ctx([d(1), d(3), d(4)]), body: .noteAdded(ticket, try! NoteText("called the customer"))),
            Event(dot: d(6), hlc: hlc(5), context: VersionVector(), body: .unknown(type: 200, fields: [0x08, 0x01])),
            Event(dot: d(7), hlc: hlc(6), context: ctx([d(2)]),
                  body: .refundRequested(try! RefundRequest(sale: sale2, saleAmount: money(105), amount: money(105),
                                                            reason: .wrongSize, resolution: .exchange, contact: nil))),
            Event(dot: d(8), hlc: hlc(7), context: ctx([d(2), d(7)]), body: .refundCancelled(TicketId(d(7)))),
            Event(dot: d(9), hlc: hlc(8), context: VersionVector(),
                  body: .saleCaptured(try! SaleCapture(amount: money(99_999, .EUR), paymentCode: try! PaymentCode(wechatDigits), merchantKey: merchantKey))),
        ]
    }

    /// Writes `records` into a new journal at `dir` (one frame per `batch` records).
    static func writeJournal(_ dir: String, records: [[UInt8]], key: JournalKey?, segmentBytesMax: Int = 4 << 20, batch: Int = 1,
                             dictionary: CompressionDictionary? = ledgerDictionary) throws {
        let config = JournalConfiguration(durability: .none(bufferBytes: 0), segmentBytesMax: segmentBytesMax,
                                          dictionary: dictionary, key: key)
        let j = try Journal.open(directory: dir, configuration: config)
        var i = 0
        while i < records.count {
            let end = min(i + batch, records.count)
            try j.append(contentsOf: Array(records[i..<end]))
            i = end
        }
        try j.close()
    }
}
