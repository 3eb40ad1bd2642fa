import Testing
@testable import PosLedger

/// DOMAIN.md "What 'follows' means": B follows A exactly when B's context
/// contains A's dot; HLC values never decide it. The worked examples of
/// sync-protocol.md "Causality used by the fold", events spelled out.
@Suite("Causality from contexts alone")
struct CausalityTests {
    let t1 = Sample.t1, t2 = Sample.t2, t3 = Sample.t3
    let sale = Common.sale, confirmed = Common.confirmed, ticket = Common.ticket

    func fold(_ events: [Event]) -> LedgerState { Common.fold(events) }

    @Test("example (a): a terminal 30 h behind escalates central's rejection with a lower HLC: escalated")
    func escalationBelowRejection() {
        let reject = B.decide(.refundRejected, .central, 2, at: 500, ticket: ticket, after: [ticket.dot])
        let escalate = B.decide(.refundEscalated, t3, 1, at: 100, ticket: ticket, after: [ticket.dot, reject.dot])
        let s = fold([sale, confirmed, ticket, reject, escalate])
        #expect(s.status(ticket) == .escalated)
        #expect(s.conflicts.isEmpty, "the escalation follows the rejection: no invalid-transition")
    }

    @Test("example (b): a decision that saw the whole dispute resolves it though its HLC is below a frontier event")
    func resolutionBelowFrontier() {
        let approve = B.decide(.refundApproved, t2, 2, at: 200, ticket: ticket, after: [ticket.dot])
        let reject = B.decide(.refundRejected, .central, 2, at: 210, ticket: ticket, after: [ticket.dot])
        #expect(fold([sale, confirmed, ticket, approve, reject]).status(ticket) == .held(.dispute))
        let decide = B.decide(.refundRejected, t3, 1, at: 150, ticket: ticket, after: [approve.dot, reject.dot])
        let s = fold([sale, confirmed, ticket, approve, reject, decide])
        #expect(s.status(ticket) == .rejected)
        #expect(s.conflicts.isEmpty, "the decision is the single frontier")
    }

    @Test("example (c): forged events whose contexts cover each other: the smaller (HLC, dot) is placed first")
    func forgedMutualCover() {
        // 2:2 and 3:1 each claim to have seen the other.
        let a = Event(dot: B.dot(t2, 2), hlc: Sample.hlc(200), context: B.ctx([ticket.dot, B.dot(t3, 1)]),
                      body: .refundApproved(TicketId(ticket.dot), .originalPayment))
        let b = Event(dot: B.dot(t3, 1), hlc: Sample.hlc(210), context: B.ctx([ticket.dot, a.dot]),
                      body: .refundRejected(TicketId(ticket.dot)))
        let s = fold([sale, confirmed, ticket, a, b])
        #expect(s.status(ticket) == .approved)
        #expect(s.conflicts.map(\.kind) == [.invalidTransition] && s.conflicts[0].events == [b.dot],
                "3:1 follows 2:2: reject on approved is ignored")
        // The other way round in HLC: 3:1 first, 2:2 follows it and is ignored.
        let a2 = Event(dot: a.dot, hlc: Sample.hlc(220), context: a.context, body: a.body)
        let s2 = fold([sale, confirmed, ticket, a2, b])
        #expect(s2.status(ticket) == .rejected)
        #expect(s2.conflicts.map(\.events) == [[a.dot]])
    }

    @Test("example (c): a forged cycle of three is broken once; the rest follow their contexts, not their HLCs")
    func forgedCycleOfThree() {
        // 2:2 names 1:2, 3:1 names 2:2, 1:2 names 3:1. Broken at 2:2 (smallest HLC):
        // then 2:2 rejected -> 3:1 escalated -> 4:1 approved, each following the one before.
        let rejected = Event(dot: B.dot(t2, 2), hlc: Sample.hlc(100), context: B.ctx([ticket.dot, B.dot(t1, 2)]),
                             body: .refundRejected(TicketId(ticket.dot)))
        let escalated = Event(dot: B.dot(t3, 1), hlc: Sample.hlc(300), context: B.ctx([ticket.dot, rejected.dot]),
                              body: .refundEscalated(TicketId(ticket.dot)))
        let approved = Event(dot: B.dot(t1, 2), hlc: Sample.hlc(200), context: B.ctx([ticket.dot, escalated.dot]),
                             body: .refundApproved(TicketId(ticket.dot), .originalPayment))
        let s = fold([sale, confirmed, ticket, rejected, escalated, approved])
        #expect(s.status(ticket) == .approved, "HLC order alone would hold it as a dispute")
        #expect(s.conflicts.isEmpty)
    }

    @Test("a sale outcome written below the HLC of the outcome it saw still follows it")
    func saleOutcomeBelowWhatItSaw() {
        let declined = Event(dot: B.dot(.central, 2), hlc: Sample.hlc(5), context: B.ctx([sale.dot, confirmed.dot]),
                             body: .saleDeclined(SaleId(sale.dot)))
        let s = fold([sale, confirmed, declined])
        #expect(s.saleStatus(sale) == .confirmed)
        #expect(s.conflicts.map(\.kind) == [.invalidTransition], "declined after confirmed is invalid, not concurrent")
    }
}
