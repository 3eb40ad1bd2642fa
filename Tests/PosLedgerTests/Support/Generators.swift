@testable import PosLedger

/// Random valid domain values for property tests.
enum Gen {
    static let currencies: [Currency] = [.CNY, .EUR, .USD, try! Currency("JPY"), try! Currency("ZZZ")]

    static func replica(_ r: inout SeededRandom, includeCentral: Bool = true) -> ReplicaId {
        if includeCentral && r.chance(20) { return .central }
        let raw: UInt32 = r.chance(50) ? UInt32(r.int(1...20)) : UInt32(r.int(1...Int(Limits.terminalIdMax)))
        return try! ReplicaId.terminal(raw)
    }

    static func seq(_ r: inout SeededRandom) -> UInt64 {
        r.chance(50) ? UInt64(r.int(1...1000)) : UInt64.random(in: 1...Limits.sequenceMax, using: &r)
    }

    static func dot(_ r: inout SeededRandom) -> Dot { try! Dot(replica: replica(&r), seq: seq(&r)) }

    static func money(_ r: inout SeededRandom) -> Money {
        let minor: Int64 = r.chance(70) ? Int64(r.int(1...100_000)) : Int64.random(in: 1...Limits.amountMinorMax,
                                                                                    using: &r)
        return Money(minorUnits: minor, currency: r.pick(currencies))
    }

    static func digits(_ r: inout SeededRandom, count: Int) -> String {
        String((0..<count).map { _ in Character(String(r.int(0...9))) })
    }

    static func paymentCode(_ r: inout SeededRandom) -> PaymentCode {
        if r.chance(50) {
            return try! PaymentCode("1\(r.int(0...5))" + digits(&r, count: 16))
        }
        let prefix = r.int(25...30)
        return try! PaymentCode("\(prefix)" + digits(&r, count: r.int(14...22)))
    }

    static func text(_ r: inout SeededRandom, maxBytes: Int) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz ABC0123456789-é中")
        var out = ""
        let target = r.int(1...min(maxBytes / 3, 40))
        for _ in 0..<target { out.append(r.pick(alphabet)) }
        return out
    }

    static func context(_ r: inout SeededRandom) -> VersionVector {
        var v = VersionVector()
        for _ in 0..<r.int(0...4) { v.raise(replica(&r), to: seq(&r)) }
        return v
    }

    static func hlc(_ r: inout SeededRandom) -> HLCTimestamp {
        r.chance(20) ? HLCTimestamp(rawValue: r.next())
            : HLCTimestamp(millis: 1_767_225_600_000 + UInt64(r.int(0...400_000_000_000)),
                           logical: UInt16(r.int(0...3)))
    }

    static func reason(_ r: inout SeededRandom) -> ReturnReason {
        switch r.int(0...4) {
        case 0: .quality
        case 1: .wrongSize
        case 2: .notAsDescribed
        case 3: .changedMind
        default: .other(try! ReasonText(text(&r, maxBytes: Limits.reasonTextBytesMax)))
        }
    }

    static func contact(_ r: inout SeededRandom) -> CustomerContact? {
        switch r.int(0...2) {
        case 0: nil
        case 1: try! CustomerContact(channel: .sms, address: "+" + digits(&r, count: r.int(6...15)))
        default: try! CustomerContact(channel: .app, address: text(&r, maxBytes: Limits.contactBytesMax))
        }
    }

    static func body(_ r: inout SeededRandom, kind: EventKind) -> EventBody {
        let ticket = TicketId(dot(&r)), sale = SaleId(dot(&r))
        switch kind {
        case .saleCaptured:
            let code = paymentCode(&r)
            let key = DuplicateKey(bytes: (0..<16).map { _ in UInt8(r.int(0...255)) })!
            let amount = money(&r)
            // A capture holding its code has the code's key (version 2 stores only the code); a relayed one, any key.
            if r.chance(70) { return .saleCaptured(try! SaleCapture(amount: amount, paymentCode: code, merchantKey: Sample.merchantKey)) }
            return .saleCaptured(try! SaleCapture(amount: amount, wallet: code.wallet, duplicateKey: key, paymentCode: nil))
        case .saleConfirmed: return .saleConfirmed(sale)
        case .saleDeclined: return .saleDeclined(sale)
        case .saleExpired: return .saleExpired(sale)
        case .refundRequested:
            return .refundRequested(try! RefundRequest(sale: sale, amount: money(&r), reason: reason(&r),
                                                       resolution: r.pick(Resolution.allCases),
                                                       contact: contact(&r)))
        case .refundApproved:
            let route: RefundRoute = switch r.int(0...2) {
            case 0: .originalPayment
            case 1: .designatedAccount(try! AccountReference(text(&r, maxBytes: Limits.accountBytesMax)))
            default: .reship
            }
            return .refundApproved(ticket, route)
        case .refundRejected: return .refundRejected(ticket)
        case .refundCancelled: return .refundCancelled(ticket)
        case .refundCompleted: return .refundCompleted(ticket)
        case .refundEscalated: return .refundEscalated(ticket)
        case .sequenceVoid: return .sequenceVoid
        case .noteAdded: return .noteAdded(ticket, try! NoteText(text(&r, maxBytes: Limits.noteBytesMax)))
        }
    }

    static func event(_ r: inout SeededRandom, kind: EventKind? = nil) -> Event {
        let k = kind ?? r.pick(EventKind.allCases)
        return Event(dot: dot(&r), hlc: hlc(&r), context: context(&r), body: body(&r, kind: k))
    }
}
