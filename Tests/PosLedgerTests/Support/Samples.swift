import Foundation
@testable import PosLedger

/// Fixed example values shared by golden fixtures and rule tests.
enum Sample {
    static let merchantKey = MerchantKey(bytes: Array(0..<32))
    /// Decodes the samples' records: a version-2 capture derives its duplicate key with `merchantKey`.
    static var recordContext: RecordDecodeContext { RecordDecodeContext(merchantKey: merchantKey) }
    /// Golden fixtures pinned in record format version 1 (written before version 2 existed and still
    /// read); every other golden fixture is in the version this code writes.
    static let goldenVersion1: Set<String> = ["sale-captured"]
    static let t1 = try! ReplicaId.terminal(1)
    static let t2 = try! ReplicaId.terminal(2)
    static let t3 = try! ReplicaId.terminal(3)
    static let central = ReplicaId.central
    static let wechatCode = try! PaymentCode("134567890123456789")
    static let alipayCode = try! PaymentCode("2812345678901234")
    static let baseMillis: UInt64 = 1_785_000_000_000  // 2026-07-25

    static func dot(_ r: ReplicaId, _ s: UInt64) -> Dot { try! Dot(replica: r, seq: s) }
    static func hlc(_ offsetMillis: UInt64, _ logical: UInt16 = 0) -> HLCTimestamp {
        HLCTimestamp(millis: baseMillis + offsetMillis, logical: logical)
    }
    static func money(_ minor: Int64, _ c: Currency = .CNY) -> Money { Money(minorUnits: minor, currency: c) }

    /// Package root, found from this file's path (Tests/PosLedgerTests/Support/Samples.swift).
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let recordFixtures = packageRoot.appendingPathComponent("Fixtures/records")

    /// One fixed event per kind, for golden fixtures.
    static func goldenEvents() -> [(name: String, event: Event)] {
        let sale = SaleId(dot(t1, 41))
        let ticket = TicketId(dot(t2, 7))
        let capture = try! SaleCapture(amount: money(1250), paymentCode: wechatCode, merchantKey: merchantKey)
        let request = try! RefundRequest(sale: sale, saleAmount: money(1250), amount: money(500),
                                         reason: .wrongSize, resolution: .refund,
                                         contact: try! CustomerContact(channel: .sms, address: "+8613800138000"))
        let tctx = VersionVector([(t2, 7)])
        let sctx = VersionVector([(t1, 41)])
        return [
            ("sale-captured", Event(dot: dot(t1, 41), hlc: hlc(0), context: VersionVector(),
                                    body: .saleCaptured(capture))),
            ("sale-captured-v2", Event(dot: dot(t1, 41), hlc: hlc(0), context: VersionVector(),
                                       body: .saleCaptured(capture))),
            ("sale-captured-relayed", Event(dot: dot(t1, 41), hlc: hlc(0), context: VersionVector(),
                                            body: .saleCaptured(capture.withoutPaymentCode()))),
            ("sale-confirmed", Event(dot: dot(central, 900), hlc: hlc(60_000), context: sctx,
                                     body: .saleConfirmed(sale))),
            ("sale-declined", Event(dot: dot(central, 901), hlc: hlc(60_001), context: sctx,
                                    body: .saleDeclined(sale))),
            ("sale-expired", Event(dot: dot(central, 902), hlc: hlc(60_002), context: sctx, body: .saleExpired(sale))),
            ("refund-requested", Event(dot: dot(t2, 7), hlc: hlc(3_600_000), context: sctx,
                                       body: .refundRequested(request))),
            ("refund-requested-other", Event(
                dot: dot(t2, 8), hlc: hlc(3_600_001), context: sctx,
                body: .refundRequested(try! RefundRequest(sale: sale, saleAmount: money(1250), amount: money(1250),
                                                          reason: .other(try! ReasonText("zip broken")),
                                                          resolution: .exchange, contact: nil)))),
            ("refund-approved", Event(dot: dot(t2, 9), hlc: hlc(3_700_000), context: tctx,
                                      body: .refundApproved(ticket, .originalPayment))),
            ("refund-approved-account", Event(dot: dot(t2, 10), hlc: hlc(3_700_001), context: tctx,
                                              body: .refundApproved(ticket, .designatedAccount(
                                                  try! AccountReference("IBAN DE00 1234"))))),
            ("refund-rejected", Event(dot: dot(t2, 11), hlc: hlc(3_700_002), context: tctx,
                                      body: .refundRejected(ticket))),
            ("refund-cancelled", Event(dot: dot(t2, 12), hlc: hlc(3_700_003), context: tctx,
                                       body: .refundCancelled(ticket))),
            ("refund-completed", Event(dot: dot(central, 903), hlc: hlc(3_800_000),
                                       context: VersionVector([(t2, 9)]), body: .refundCompleted(ticket))),
            ("refund-escalated", Event(dot: dot(t2, 13), hlc: hlc(3_700_004), context: VersionVector([(t2, 11)]),
                                       body: .refundEscalated(ticket))),
            ("note-added", Event(dot: dot(t2, 14), hlc: hlc(3_700_005), context: tctx,
                                 body: .noteAdded(ticket, try! NoteText("box dented")))),
            ("sequence-void", Event(dot: dot(t2, 15), hlc: hlc(3_700_006), context: VersionVector(), body: .sequenceVoid)),
            ("unknown-type-200", Event(dot: dot(t3, 5), hlc: hlc(5), context: VersionVector(),
                                       body: .unknown(type: 200, fields: [0x08, 0x2A, 0x12, 0x02, 0x68, 0x69]))),
        ]
    }
}

extension Array where Element == UInt8 {
    var hex: String { map { String(format: "%02x", $0) }.joined() }
    init?(hex: String) {
        let chars = [Character](hex.filter { !$0.isWhitespace })
        guard chars.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        var i = 0
        while i < chars.count {
            guard let b = UInt8(String([chars[i], chars[i + 1]]), radix: 16) else { return nil }
            out.append(b)
            i += 2
        }
        self = out
    }
}
