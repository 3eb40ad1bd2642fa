// The preset deflate dictionary for journal frames (dictionary id 1).
// Deflate finds repeated strings of 3+ bytes within the previous 32 KiB; a
// preset dictionary lets even the first record of a frame refer to typical
// byte strings: record headers, field keys, common currencies and amounts,
// HLC high bytes of the current decade. zlib gives shorter distances (so
// cheaper codes) to strings near the END of the dictionary, so the most
// common kinds of record come last.
//
// Construction (deterministic; pinned by Fixtures/records/dictionary-1.bin):
// the concatenation, in this order, of the encodings of the sample events
// listed in `samples()` below. Never change it for id 1: add a new id instead.

import PosBytes

extension RecordCodec {
    public static let dictionaryBytes: [UInt8] = {
        var w = ByteWriter(capacity: 4096)
        // Version 1 encodings, as when id 1 was made: its bytes never change.
        for event in RecordDictionary.samples() { RecordCodec.encode(event, into: &w, version: Limits.recordVersion) }
        return w.bytes
    }()
}

enum RecordDictionary {
    /// HLC milliseconds used by the samples: 2026-01-01T00:00:00Z plus steps
    /// of ~4.7 days, so every year-2025..2028 timestamp shares its top bytes
    /// with some sample.
    static let hlcMillisBase: UInt64 = 1_735_689_600_000  // 2025-01-01T00:00:00Z
    static let hlcMillisStep: UInt64 = 1 << 29  // ~6.2 days

    static func samples() -> [Event] {
        var out: [Event] = []
        let terminal = ReplicaId(unchecked: 1)
        let central = ReplicaId.central
        func hlc(_ i: UInt64) -> HLCTimestamp {
            HLCTimestamp(millis: hlcMillisBase &+ (i % 64) &* hlcMillisStep, logical: 0)
        }
        func dot(_ r: ReplicaId, _ s: UInt64) -> Dot { Dot(unchecked: r, s) }
        let currencies: [Currency] = [.USD, .EUR, .CNY]
        let amounts: [Int64] = [100, 500, 1000, 1500, 2000, 5000, 9900, 10000]
        let key = DuplicateKey(bytes: Array(repeating: 0, count: 16))!

        // Least common first: notes, escalations, rejections, cancellations.
        let ticket = TicketId(dot(terminal, 2))
        for i in 0..<UInt64(4) {
            let t = TicketId(dot(terminal, 2 + i))
            let ctx = VersionVector([(terminal, 2 + i)])
            out.append(Event(dot: dot(terminal, 10 + i), hlc: hlc(i), context: ctx,
                             body: .noteAdded(t, try! NoteText("customer called"))))
            out.append(Event(dot: dot(terminal, 20 + i), hlc: hlc(i + 1), context: ctx, body: .refundEscalated(t)))
            out.append(Event(dot: dot(terminal, 30 + i), hlc: hlc(i + 2), context: ctx, body: .refundRejected(t)))
            out.append(Event(dot: dot(terminal, 40 + i), hlc: hlc(i + 3), context: ctx, body: .refundCancelled(t)))
        }
        // Refund requests, approvals, completions.
        let reasons: [ReturnReason] = [.quality, .wrongSize, .notAsDescribed, .changedMind]
        for (i, amount) in amounts.enumerated() {
            let n = UInt64(i)
            let currency = currencies[i % currencies.count]
            let request = try! RefundRequest(sale: SaleId(dot(terminal, 1 + n)), amount: Money(minorUnits: amount,
                                                currency: currency), reason: reasons[i % 4],
                                             resolution: i % 4 == 3 ? .exchange : .refund, contact: nil)
            out.append(Event(dot: dot(terminal, 50 + n), hlc: hlc(n + 4), context: VersionVector(),
                             body: .refundRequested(request)))
            let ctx = VersionVector([(terminal, 50 + n)])
            out.append(Event(dot: dot(terminal, 60 + n), hlc: hlc(n + 5), context: ctx,
                             body: .refundApproved(ticket, .originalPayment)))
            out.append(Event(dot: dot(central, 60 + n), hlc: hlc(n + 6), context: ctx,
                             body: .refundCompleted(ticket)))
        }
        // Sale outcomes from central, and captures; the most common come last.
        for i in 0..<UInt64(8) {
            let sale = SaleId(dot(ReplicaId(unchecked: UInt32(1 + i)), 100 + i))
            let ctx = VersionVector([(sale.dot.replica, sale.dot.seq)])
            out.append(Event(dot: dot(central, 200 + i), hlc: hlc(i + 7), context: ctx, body: .saleDeclined(sale)))
            out.append(Event(dot: dot(central, 210 + i), hlc: hlc(i + 8), context: ctx, body: .saleExpired(sale)))
        }
        // Captures with a code (digits of the common prefixes, zero key), then
        // without, each followed by its confirmation; one HLC per 2^32 ms
        // (~49.7 days) so the stable high bytes of any 2025-2033 HLC appear.
        for (i, amount) in amounts.enumerated() {
            let n = UInt64(i)
            for (j, currency) in currencies.enumerated() {
                let m = n * 3 + UInt64(j)
                let digits: [UInt8] = j % 2 == 0 ? [1, UInt8(3 + i % 3)] + Array(repeating: 0, count: 16)
                    : [2, 8] + Array(repeating: 0, count: 14)
                let code = try! PaymentCode(digits: digits)
                let capture = try! SaleCapture(amount: Money(minorUnits: amount, currency: currency),
                                               wallet: code.wallet, duplicateKey: key,
                                               paymentCode: m % 4 == 3 ? nil : code)
                let hlcAt = HLCTimestamp(millis: hlcMillisBase + m * (1 << 32), logical: 0)
                out.append(Event(dot: dot(terminal, 300 + m), hlc: hlcAt, context: VersionVector(),
                                 body: .saleCaptured(capture)))
                let sale = SaleId(dot(terminal, 300 + m))
                out.append(Event(dot: dot(central, 300 + m), hlc: hlcAt,
                                 context: VersionVector([(terminal, 300 + m)]), body: .saleConfirmed(sale)))
            }
        }
        return out
    }
}
