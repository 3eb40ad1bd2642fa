import Testing
@testable import PosLedger

/// One test per cross-entity rule of DOMAIN.md, events spelled out.
@Suite("Rules: across entities")
struct CrossEntityRuleTests {
    let t1 = Sample.t1, t2 = Sample.t2, t3 = Sample.t3
    var sale: Event { B.capture(t1, 1, at: 0, amount: 1000) }
    var confirmed: Event { B.confirm(1, at: 10, sale: sale) }

    func fold(_ events: [Event]) -> LedgerState {
        let state = LedgerState.fold(events)
        #expect(LedgerState.fold(events.reversed()) == state)
        return state
    }

    @Test("over-refund: two shops refunding one receipt offline; the later one is held, a smaller one still fits")
    func overRefund() {
        let a = B.request(t2, 1, at: 100, sale: sale, amount: 700)
        let b = B.request(t3, 1, at: 200, sale: sale, amount: 600)  // 700 + 600 > 1000
        let c = B.request(t3, 2, at: 300, sale: sale, amount: 300)  // 700 + 300 = 1000 fits
        let s = fold([sale, confirmed, a, b, c])
        #expect(s.status(a) == .requested)
        #expect(s.status(b) == .held(.overRefund))
        #expect(s.status(c) == .requested)
        let records = s.conflicts(.overRefund)
        #expect(records.count == 1 && records[0].events == [a.dot, b.dot].sorted())
    }

    @Test("over-refund: completed tickets count first, then (request HLC, dot); cancelled and exchanges do not count")
    func overRefundOrder() {
        let early = B.request(t2, 1, at: 100, sale: sale, amount: 700)
        let late = B.request(t3, 1, at: 200, sale: sale, amount: 600)
        let approve = B.decide(.refundApproved, t3, 2, at: 210, ticket: late, after: [late.dot])
        let complete = B.decide(.refundCompleted, .central, 2, at: 220, ticket: late, after: [approve.dot])
        let s = fold([sale, confirmed, early, late, approve, complete])
        #expect(s.status(late) == .completed)
        #expect(s.status(early) == .held(.overRefund), "the completed later ticket counts first")
        let cancel = B.decide(.refundCancelled, t2, 2, at: 300, ticket: early, after: [early.dot])
        let exchange = B.request(t2, 3, at: 400, sale: sale, amount: 1000, resolution: .exchange)
        let s2 = fold([sale, confirmed, early, late, approve, complete, cancel, exchange])
        #expect(s2.status(early) == .cancelled)
        #expect(s2.status(exchange) == .requested)
        #expect(s2.conflicts(.overRefund).isEmpty)
    }

    @Test("duplicate payment code: without a confirmation the earliest capture stands")
    func duplicateEarliest() {
        let first = B.capture(t1, 1, at: 0, amount: 1000)
        let second = B.capture(t2, 1, at: 50, amount: 1000)
        let s = fold([first, second])
        #expect(s.saleStatus(first) == .captured)
        #expect(s.saleStatus(second) == .voidDuplicate)
        #expect(s.conflicts(.duplicatePaymentCode).map(\.rule) == ["earliest-capture-stands"])
    }

    @Test("duplicate payment code: a confirmed capture stands even if it is later")
    func duplicateConfirmed() {
        let first = B.capture(t1, 1, at: 0, amount: 1000)
        let second = B.capture(t2, 1, at: 50, amount: 1000)
        let ok = B.confirm(1, at: 60, sale: second)
        let s = fold([first, second, ok])
        #expect(s.saleStatus(first) == .voidDuplicate)
        #expect(s.saleStatus(second) == .confirmed)
        #expect(s.conflicts(.duplicatePaymentCode).map(\.rule) == ["confirmed-capture-stands"])
    }

    @Test("refund before its sale is known is pending-sale, then evaluated when the sale arrives, in any order")
    func pendingSale() {
        let request = B.request(t2, 1, at: 100, sale: sale, amount: 400)
        var state = LedgerState.fold([request])
        #expect(state.status(request) == .pendingSale)
        #expect(state.saleStatus(sale) == .awaitingCapture)
        state.apply([sale, confirmed])
        #expect(state.status(request) == .requested)
        #expect(state == LedgerState.fold([sale, confirmed, request]))
    }

    @Test("refund on a declined, expired or void-duplicate sale is held(sale-not-paid); cancelled stays cancelled")
    func saleNotPaid() {
        let request = B.request(t2, 1, at: 100, sale: sale, amount: 400)
        let declined = B.decline(1, at: 10, sale: sale)
        let s = fold([sale, declined, request])
        #expect(s.status(request) == .held(.saleNotPaid))
        #expect(s.conflicts(.saleNotPaid).count == 1)
        let expired = B.outcome(.saleExpired, 1, at: 10, sale: sale)
        #expect(fold([sale, expired, request]).status(request) == .held(.saleNotPaid))
        let dup = B.capture(t3, 9, at: 5, amount: 1000)  // same code, confirmed: stands
        let dupConfirmed = B.confirm(2, at: 20, sale: dup)
        let s2 = fold([sale, dup, dupConfirmed, request])
        #expect(s2.saleStatus(sale) == .voidDuplicate)
        #expect(s2.status(request) == .held(.saleNotPaid))
        let cancel = B.decide(.refundCancelled, t2, 2, at: 200, ticket: request, after: [request.dot])
        #expect(fold([sale, declined, request, cancel]).status(request) == .cancelled)
    }

    @Test("completion only on a confirmed sale: a completion on an unconfirmed sale is ignored and recorded")
    func completionNeedsConfirmed() {
        let request = B.request(t2, 1, at: 100, sale: sale, amount: 400)
        let approve = B.decide(.refundApproved, t2, 2, at: 200, ticket: request, after: [request.dot])
        let complete = B.decide(.refundCompleted, .central, 5, at: 300, ticket: request, after: [approve.dot])
        let s = fold([sale, request, approve, complete])
        #expect(s.saleStatus(sale) == .captured)
        #expect(s.status(request) == .approved)
        #expect(s.conflicts(.completionOnUnconfirmedSale).map(\.events) == [[complete.dot]])
        // Once the confirmation is known, the same completion stands.
        #expect(fold([sale, confirmed, request, approve, complete]).status(request) == .completed)
    }

    @Test("unknown record types are kept, counted and rendered, not dropped")
    func unknownKept() {
        let unknown = Event(dot: B.dot(t3, 5), hlc: Sample.hlc(1), context: VersionVector(),
                            body: .unknown(type: 77, fields: [8, 1]))
        let s = fold([sale, unknown])
        #expect(s.unknownEvents.count == 1)
        #expect(s.eventCount == 2)
        #expect(s.canonicalText.contains("unknown-event 3:5 type=77"))
    }
}
