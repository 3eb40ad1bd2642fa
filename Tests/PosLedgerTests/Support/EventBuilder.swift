import Testing
@testable import PosLedger

/// Spells out events for rule tests: `B.capture(t1, 1, at: 0, ...)` etc.
/// `after` lists the dots the writer had seen (its causal context).
enum B {
    typealias R = ReplicaId

    static func ctx(_ dots: [Dot]) -> VersionVector {
        var v = VersionVector()
        for d in dots { v.add(d) }
        return v
    }

    static func dot(_ r: R, _ s: UInt64) -> Dot { Sample.dot(r, s) }

    static func capture(_ r: R, _ s: UInt64, at ms: UInt64, amount: Int64,
                        code: PaymentCode = Sample.wechatCode) -> Event {
        Event(dot: dot(r, s), hlc: Sample.hlc(ms), context: VersionVector(),
              body: .saleCaptured(try! SaleCapture(amount: Sample.money(amount), paymentCode: code,
                                                   merchantKey: Sample.merchantKey)))
    }

    static func outcome(_ kind: EventKind, _ s: UInt64, at ms: UInt64, sale: Event, after: [Dot]? = nil) -> Event {
        let id = SaleId(sale.dot)
        let body: EventBody = switch kind {
        case .saleConfirmed: .saleConfirmed(id)
        case .saleDeclined: .saleDeclined(id)
        default: .saleExpired(id)
        }
        return Event(dot: dot(.central, s), hlc: Sample.hlc(ms), context: ctx(after ?? [sale.dot]), body: body)
    }

    static func confirm(_ s: UInt64, at ms: UInt64, sale: Event) -> Event { outcome(.saleConfirmed, s, at: ms, sale: sale) }
    static func decline(_ s: UInt64, at ms: UInt64, sale: Event) -> Event { outcome(.saleDeclined, s, at: ms, sale: sale) }

    static func request(_ r: R, _ s: UInt64, at ms: UInt64, sale: Event, amount: Int64,
                        resolution: Resolution = .refund) -> Event {
        request(r, s, at: ms, saleId: SaleId(sale.dot), amount: amount, resolution: resolution)
    }

    static func request(_ r: R, _ s: UInt64, at ms: UInt64, saleId: SaleId, amount: Int64,
                        resolution: Resolution = .refund) -> Event {
        Event(dot: dot(r, s), hlc: Sample.hlc(ms), context: ctx([saleId.dot]),
              body: .refundRequested(try! RefundRequest(sale: saleId, amount: Sample.money(amount), reason: .quality,
                                                        resolution: resolution, contact: nil)))
    }

    static func decide(_ kind: EventKind, _ r: R, _ s: UInt64, at ms: UInt64, ticket: Event, after: [Dot]) -> Event {
        Event(dot: dot(r, s), hlc: Sample.hlc(ms), context: ctx(after),
              body: body(kind, TicketId(ticket.dot), note: "note \(s)"))
    }

    /// A decision of `kind` on `t` (approved: to the original payment); any other kind: a note saying `note`.
    static func body(_ kind: EventKind, _ t: TicketId, note: String) -> EventBody {
        switch kind {
        case .refundApproved: .refundApproved(t, .originalPayment)
        case .refundRejected: .refundRejected(t)
        case .refundCancelled: .refundCancelled(t)
        case .refundCompleted: .refundCompleted(t)
        case .refundEscalated: .refundEscalated(t)
        default: .noteAdded(t, try! NoteText(note))
        }
    }
}

/// The events most rule tests start from: sale 1:1 of 10.00 CNY captured by
/// terminal 1, confirmed by central 0:1, and ticket 2:1 (terminal 2) for 4.00 on it.
enum Common {
    static let sale = B.capture(Sample.t1, 1, at: 0, amount: 1000)
    static let confirmed = B.confirm(1, at: 10, sale: sale)
    static let ticket = B.request(Sample.t2, 1, at: 100, sale: sale, amount: 400)

    /// Folds `events`, checking that reversed order and one-by-one application give the same state.
    static func fold(_ events: [Event]) -> LedgerState {
        let state = LedgerState.fold(events)
        #expect(LedgerState.fold(events.reversed()) == state)
        var oneByOne = LedgerState()
        for e in events.reversed() { oneByOne.apply(e) }
        #expect(oneByOne == state)
        return state
    }
}

extension LedgerState {
    func status(_ ticket: Event) -> TicketStatus? { tickets[TicketId(ticket.dot)]?.status }
    func saleStatus(_ capture: Event) -> SaleStatus? { sales[SaleId(capture.dot)]?.status }
    func conflicts(_ kind: ConflictRecord.Kind) -> [ConflictRecord] { conflicts.filter { $0.kind == kind } }
}
