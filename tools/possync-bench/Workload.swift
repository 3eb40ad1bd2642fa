// The events every competitor gets: real ledger events (RecordCodec records
// for PosSync, their JSON for SQLite and gzip), seeded, so each run and each
// competitor sees the same ones.
import Foundation
import PosLedger

/// The workload's seeded generator (PosLedger's SplitMix64).
typealias SplitMix = SplitMix64
extension SplitMix64 {
    init(s: UInt64) { self.init(seed: s) }
}

let baseMillis: UInt64 = 1_785_000_000_000
let notes = ["customer called back", "checked", "receipt photo attached", "item returned to shelf", "manager informed"]

func randomPaymentCode(_ rng: inout SplitMix) -> PaymentCode {
    // Mostly WeChat Pay (18 digits, 10-15), some Alipay (16-24 digits, 25-30): the shapes the terminals scan.
    if Int.random(in: 0..<10, using: &rng) < 7 {
        return try! PaymentCode(String(Int.random(in: 10...15, using: &rng)) + (0..<16).map { _ in String(Int.random(in: 0...9, using: &rng)) }.joined())
    }
    return try! PaymentCode(String(Int.random(in: 25...30, using: &rng)) + (0..<16).map { _ in String(Int.random(in: 0...9, using: &rng)) }.joined())
}

/// One terminal's journal: `count` events with seqs 1...count, as the terminal
/// writes them. Mix (default): 85% sale captures carrying their payment code,
/// 5% refund requests, 5% approvals or rejections, 5% notes on tickets.
func terminalEvents(terminal: ReplicaId, merchantKey: MerchantKey, count: Int, seed: UInt64, capturePercent: Int = 85) -> [Event] {
    let rest = 100 - capturePercent
    var rng = SplitMix(s: seed)
    var out: [Event] = []
    out.reserveCapacity(count)
    var sales: [(Dot, Int64)] = []
    var tickets: [Dot] = []
    var clock = baseMillis
    for i in 0..<count {
        let seq = UInt64(i + 1)
        clock += UInt64.random(in: 5_000...90_000, using: &rng)
        let dot = try! Dot(replica: terminal, seq: seq)
        let hlc = HLCTimestamp(millis: clock, logical: 0)
        let roll = sales.isEmpty ? 0 : Int.random(in: 0..<100, using: &rng)
        if roll < capturePercent {
            let amount = Int64.random(in: 100...99_999, using: &rng)
            let capture = try! SaleCapture(amount: Money(minorUnits: amount, currency: .CNY), paymentCode: randomPaymentCode(&rng), merchantKey: merchantKey)
            out.append(Event(dot: dot, hlc: hlc, context: VersionVector(), body: .saleCaptured(capture)))
            sales.append((dot, amount))
        } else if roll < capturePercent + rest / 3 || tickets.isEmpty {
            let (sale, amount) = sales[Int.random(in: max(0, sales.count - 200)..<sales.count, using: &rng)]
            let reasons: [ReturnReason] = [.quality, .wrongSize, .notAsDescribed, .changedMind]
            let request = try! RefundRequest(sale: SaleId(sale), saleAmount: Money(minorUnits: amount, currency: .CNY),
                                             amount: Money(minorUnits: max(1, amount / Int64.random(in: 1...3, using: &rng)), currency: .CNY),
                                             reason: reasons[Int.random(in: 0..<reasons.count, using: &rng)],
                                             resolution: .refund, contact: nil)
            out.append(Event(dot: dot, hlc: hlc, context: VersionVector([(sale.replica, sale.seq)]), body: .refundRequested(request)))
            tickets.append(dot)
        } else if roll < capturePercent + 2 * rest / 3 {
            let t = tickets[Int.random(in: max(0, tickets.count - 50)..<tickets.count, using: &rng)]
            let body: EventBody = Int.random(in: 0..<10, using: &rng) < 8 ? .refundApproved(TicketId(t), .originalPayment) : .refundRejected(TicketId(t))
            out.append(Event(dot: dot, hlc: hlc, context: VersionVector([(t.replica, t.seq)]), body: body))
        } else {
            let t = tickets[Int.random(in: max(0, tickets.count - 50)..<tickets.count, using: &rng)]
            let note = try! NoteText(notes[Int.random(in: 0..<notes.count, using: &rng)])
            out.append(Event(dot: dot, hlc: hlc, context: VersionVector([(t.replica, t.seq)]), body: .noteAdded(TicketId(t), note)))
        }
    }
    return out
}

/// The event as a shop's own system would keep it: one JSON object, named fields.
struct JSONEvent: Codable {
    var terminal: UInt32
    var seq: UInt64
    var hlc: UInt64
    var type: String
    var context: [String]?
    var amount: Int64?
    var currency: String?
    var wallet: String?
    var paymentCode: String?
    var duplicateKey: String?
    var sale: String?
    var ticket: String?
    var reason: String?
    var resolution: String?
    var route: String?
    var note: String?

    init(_ e: Event) {
        terminal = e.dot.replica.rawValue
        seq = e.dot.seq
        hlc = e.hlc.rawValue
        type = e.body.kind.map { "\($0)" } ?? "unknown"
        context = e.context.isEmpty ? nil : e.context.entries.map { "\($0.replica.rawValue):\($0.seq)" }
        switch e.body {
        case .saleCaptured(let c):
            amount = c.amount.minorUnits
            currency = c.amount.currency.code
            wallet = "\(c.wallet)"
            paymentCode = c.paymentCode?.revealedDigits()
            duplicateKey = c.duplicateKey.hex
        case .saleConfirmed(let s), .saleDeclined(let s), .saleExpired(let s):
            sale = "\(s.dot)"
        case .refundRequested(let r):
            sale = "\(r.sale.dot)"
            amount = r.amount.minorUnits
            currency = r.amount.currency.code
            reason = "\(r.reason)"
            resolution = "\(r.resolution)"
        case .refundApproved(let t, let route):
            ticket = "\(t.dot)"
            self.route = "\(route)"
        case .refundRejected(let t), .refundCancelled(let t), .refundCompleted(let t), .refundEscalated(let t):
            ticket = "\(t.dot)"
        case .noteAdded(let t, let n):
            ticket = "\(t.dot)"
            note = n.text
        case .unknown, .sequenceVoid:
            break
        }
    }
}

/// One compact JSON object per event (JSONEncoder, no whitespace).
func jsonLines(_ events: [Event]) -> [[UInt8]] {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return events.map { Array(try! encoder.encode(JSONEvent($0))) }
}

/// sync-bench's fold workload: 1M events over 10,000 sales and 2,000 tickets
/// (5% with a concurrent rejection), 50 terminals and central, the rest notes.
func foldWorkload(total: Int) -> [Event] {
    var rng = SplitMix(s: 1)
    var out: [Event] = []
    out.reserveCapacity(total)
    var seqs: [ReplicaId: UInt64] = [:]
    var clock: UInt64 = 0
    let terminals = (1...50).map { try! ReplicaId.terminal(UInt32($0)) }
    let key = MerchantKey(bytes: Array(0..<32))
    func next(_ w: ReplicaId) -> (Dot, HLCTimestamp) {
        seqs[w, default: 0] += 1
        clock += 7
        return (try! Dot(replica: w, seq: seqs[w]!), HLCTimestamp(millis: baseMillis + clock, logical: 0))
    }
    func any() -> ReplicaId { terminals[Int.random(in: 0..<terminals.count, using: &rng)] }
    var captures: [(Dot, Int64)] = []
    for _ in 0..<min(10_000, total / 4) {
        let (d, h) = next(any())
        let amount = Int64.random(in: 1...100, using: &rng) * 100
        out.append(Event(dot: d, hlc: h, context: VersionVector(),
                         body: .saleCaptured(try! SaleCapture(amount: Money(minorUnits: amount, currency: .CNY), paymentCode: randomPaymentCode(&rng), merchantKey: key))))
        captures.append((d, amount))
        let (cd, ch) = next(.central)
        out.append(Event(dot: cd, hlc: ch, context: VersionVector([(d.replica, d.seq)]), body: .saleConfirmed(SaleId(d))))
    }
    var requests: [Dot] = []
    for _ in 0..<min(2_000, total / 20) {
        let (sale, amount) = captures[Int.random(in: 0..<captures.count, using: &rng)]
        let (d, h) = next(any())
        out.append(Event(dot: d, hlc: h, context: VersionVector([(sale.replica, sale.seq)]),
                         body: .refundRequested(try! RefundRequest(sale: SaleId(sale), saleAmount: Money(minorUnits: amount, currency: .CNY),
                                                                   amount: Money(minorUnits: max(1, amount / 2), currency: .CNY),
                                                                   reason: .quality, resolution: .refund, contact: nil))))
        requests.append(d)
        let (ad, ah) = next(any())
        out.append(Event(dot: ad, hlc: ah, context: VersionVector([(d.replica, d.seq)]), body: .refundApproved(TicketId(d), .originalPayment)))
        if Int.random(in: 0..<100, using: &rng) < 5 {
            let (xd, xh) = next(any())
            out.append(Event(dot: xd, hlc: xh, context: VersionVector([(d.replica, d.seq)]), body: .refundRejected(TicketId(d))))
        } else {
            let (cd, ch) = next(.central)
            out.append(Event(dot: cd, hlc: ch, context: VersionVector([(d.replica, d.seq), (ad.replica, ad.seq)]), body: .refundCompleted(TicketId(d))))
        }
    }
    let note = try! NoteText("checked")
    while out.count < total {
        let req = requests[Int.random(in: 0..<requests.count, using: &rng)]
        let (d, h) = next(any())
        out.append(Event(dot: d, hlc: h, context: VersionVector([(req.replica, req.seq)]), body: .noteAdded(TicketId(req), note)))
    }
    return out.shuffled(using: &rng)
}
