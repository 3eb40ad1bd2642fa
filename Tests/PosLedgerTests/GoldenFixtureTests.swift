import Foundation
import Testing
@testable import PosLedger

/// Golden fixtures pin the record bytes: Fixtures/records/<name>.hex holds the
/// exact encoding of Sample.goldenEvents()'s event of that name, and
/// dictionary-1.bin the preset dictionary. Regenerate (only when the format
/// deliberately changes, with sync-protocol.md) by running the tests with
/// POSSYNC_WRITE_FIXTURES=1.
@Suite("Golden record fixtures")
struct GoldenFixtureTests {
    static var writing: Bool { ProcessInfo.processInfo.environment["POSSYNC_WRITE_FIXTURES"] == "1" }

    @Test("encoding the golden values gives the golden bytes, and the bytes decode to them")
    func goldenBytes() throws {
        for (name, event) in Sample.goldenEvents() {
            let url = Sample.recordFixtures.appendingPathComponent("\(name).hex")
            let bytes = Sample.goldenVersion1.contains(name) ? RecordCodec.encode(event, version: Limits.recordVersion) : RecordCodec.encode(event)
            if GoldenFixtureTests.writing {
                try (bytes.hex + "\n").write(to: url, atomically: true, encoding: .utf8)
            }
            let text = try String(contentsOf: url, encoding: .utf8)
            let golden = try #require([UInt8](hex: text), "\(name).hex is not hex")
            #expect(bytes == golden, "\(name): encoding changed")
            #expect(try RecordCodec.decode(golden, context: Sample.recordContext) == event, "\(name): golden bytes decode differently")
        }
    }

    @Test("the preset dictionary bytes are unchanged")
    func dictionary() throws {
        let url = Sample.recordFixtures.appendingPathComponent("dictionary-1.bin")
        if GoldenFixtureTests.writing {
            try Data(RecordCodec.dictionaryBytes).write(to: url)
        }
        let golden = try [UInt8](Data(contentsOf: url))
        #expect(RecordCodec.dictionaryID == 1)
        #expect(RecordCodec.dictionaryBytes == golden)
        #expect(golden.count <= 32 * 1024)
    }

    /// Writes sample frames for measuring compression outside the test
    /// (POSSYNC_DUMP_SAMPLES=<dir>): one file per event kind with 100
    /// length-prefixed records, and a mixed 100-record frame.
    @Test("sample frames can be dumped for size measurements")
    func dumpSamples() throws {
        guard let dir = ProcessInfo.processInfo.environment["POSSYNC_DUMP_SAMPLES"] else { return }
        var r = SeededRandom(seed: 99)
        var mixed: [UInt8] = []
        for kind in EventKind.allCases {
            var frame: [UInt8] = []
            for i in 0..<100 {
                let e = realistic(&r, kind: kind, index: i)
                let bytes = RecordCodec.encode(e)
                frame += [UInt8(bytes.count)] + bytes
            }
            try Data(frame).write(to: URL(fileURLWithPath: dir).appendingPathComponent("\(kind).frame"))
        }
        let mix: [EventKind] = [.saleCaptured, .saleConfirmed, .saleCaptured, .saleConfirmed, .saleCaptured,
                                .saleConfirmed, .refundRequested, .refundApproved, .noteAdded, .refundCompleted]
        for i in 0..<100 {
            let bytes = RecordCodec.encode(realistic(&r, kind: mix[i % mix.count], index: i))
            mixed += [UInt8(bytes.count)] + bytes
        }
        try Data(mixed).write(to: URL(fileURLWithPath: dir).appendingPathComponent("mixed.frame"))
    }

    /// Realistic events of one terminal (t7) in one journal: consecutive seqs and close HLCs.
    func realistic(_ r: inout SeededRandom, kind: EventKind, index: Int) -> Event {
        let t = try! ReplicaId.terminal(7)
        let seq = UInt64(5000 + index)
        let dot = kind == .saleConfirmed || kind == .refundCompleted ? Sample.dot(.central, 90_000 + UInt64(index))
            : Sample.dot(t, seq)
        let hlc = Sample.hlc(UInt64(index) * 45_000 + UInt64(r.int(0...9000)))
        let amount = Sample.money(Int64(r.pick([500, 990, 1250, 2000, 3500, 4999, 12000])))
        let sale = SaleId(Sample.dot(t, seq - 1))
        let ticket = TicketId(Sample.dot(t, seq - 1))
        let body: EventBody
        switch kind {
        case .saleCaptured:
            body = .saleCaptured(try! SaleCapture(amount: amount, paymentCode: Gen.paymentCode(&r),
                                                  merchantKey: Sample.merchantKey))
        case .refundRequested:
            body = .refundRequested(try! RefundRequest(sale: sale, saleAmount: amount, amount: amount,
                                                       reason: .wrongSize, resolution: .refund, contact: nil))
        case .noteAdded: body = .noteAdded(ticket, try! NoteText("customer called back"))
        case .refundApproved: body = .refundApproved(ticket, .originalPayment)
        default: body = Gen.body(&r, kind: kind).withTarget(sale: sale, ticket: ticket)
        }
        let context = kind == .saleCaptured ? VersionVector() : VersionVector([(t, seq - 1)])
        return Event(dot: dot, hlc: hlc, context: context, body: body)
    }
}

extension EventBody {
    func withTarget(sale: SaleId, ticket: TicketId) -> EventBody {
        switch self {
        case .saleConfirmed: .saleConfirmed(sale)
        case .saleDeclined: .saleDeclined(sale)
        case .saleExpired: .saleExpired(sale)
        case .refundRejected: .refundRejected(ticket)
        case .refundCancelled: .refundCancelled(ticket)
        case .refundCompleted: .refundCompleted(ticket)
        case .refundEscalated: .refundEscalated(ticket)
        default: self
        }
    }
}
