import Testing
@testable import PosLedger

/// One test per rule of DOMAIN.md "One ticket", events spelled out.
/// Replicas: t1 sells, t2 and t3 are shops handling the return, central is 0.
@Suite("Rules: one ticket")
struct TicketRuleTests {
    let t1 = Sample.t1, t2 = Sample.t2, t3 = Sample.t3
    // Sale 1:1 of 10.00 CNY, confirmed by central 0:1; ticket 2:1 for 4.00 on it.
    var sale: Event { B.capture(t1, 1, at: 0, amount: 1000) }
    var confirmed: Event { B.confirm(1, at: 10, sale: sale) }
    var ticket: Event { B.request(t2, 1, at: 100, sale: sale, amount: 400) }

    func fold(_ events: [Event]) -> LedgerState {
        let state = LedgerState.fold(events)
        // Every rule test also checks order independence on its own events.
        #expect(LedgerState.fold(events.reversed()) == state)
        return state
    }

    @Test("a single frontier event gives its status")
    func single() {
        let approve = B.decide(.refundApproved, t2, 2, at: 200, ticket: ticket, after: [ticket.dot])
        let s = fold([sale, confirmed, ticket, approve])
        #expect(s.status(ticket) == .approved)
        #expect(s.conflicts.isEmpty)
        #expect(fold([sale, confirmed, ticket]).status(ticket) == .requested)
    }

    @Test("rule 1: completed concurrent with cancelled -> completed (money already moved)")
    func rule1() {
        let approve = B.decide(.refundApproved, t2, 2, at: 200, ticket: ticket, after: [ticket.dot])
        let complete = B.decide(.refundCompleted, .central, 2, at: 300, ticket: ticket, after: [approve.dot])
        let cancel = B.decide(.refundCancelled, t3, 1, at: 250, ticket: ticket, after: [ticket.dot])
        let s = fold([sale, confirmed, ticket, approve, complete, cancel])
        #expect(s.status(ticket) == .completed)
        let c = s.conflicts(.concurrentDecision)
        #expect(c.count == 1 && c[0].rule == "precedence-1-completed" && c[0].events == [complete.dot, cancel.dot].sorted())
        #expect(s.sales[SaleId(sale.dot)]?.refundedMinor == 400)
    }

    @Test("rule 2: cancelled concurrent with approved -> cancelled (no money must move)")
    func rule2() {
        let approve = B.decide(.refundApproved, t2, 2, at: 200, ticket: ticket, after: [ticket.dot])
        let cancel = B.decide(.refundCancelled, t3, 1, at: 150, ticket: ticket, after: [ticket.dot])
        let s = fold([sale, confirmed, ticket, approve, cancel])
        #expect(s.status(ticket) == .cancelled)
        #expect(s.conflicts(.concurrentDecision).map(\.rule) == ["precedence-2-cancelled"])
    }

    @Test("rule 3: approved concurrent with rejected -> held(dispute)")
    func rule3Rejected() {
        let approve = B.decide(.refundApproved, t2, 2, at: 200, ticket: ticket, after: [ticket.dot])
        let reject = B.decide(.refundRejected, .central, 2, at: 210, ticket: ticket, after: [ticket.dot])
        let s = fold([sale, confirmed, ticket, approve, reject])
        #expect(s.status(ticket) == .held(.dispute))
        #expect(s.conflicts(.concurrentDecision).map(\.rule) == ["precedence-3-dispute"])
    }

    @Test("rule 3: approved concurrent with escalated -> held(dispute)")
    func rule3Escalated() {
        let approve = B.decide(.refundApproved, t2, 2, at: 200, ticket: ticket, after: [ticket.dot])
        let reject = B.decide(.refundRejected, t3, 1, at: 150, ticket: ticket, after: [ticket.dot])
        let escalate = B.decide(.refundEscalated, t3, 2, at: 160, ticket: ticket, after: [ticket.dot, reject.dot])
        let s = fold([sale, confirmed, ticket, approve, reject, escalate])
        #expect(s.status(ticket) == .held(.dispute))
    }

    @Test("rule 4: escalated concurrent with rejected -> escalated")
    func rule4() {
        let reject = B.decide(.refundRejected, t3, 1, at: 150, ticket: ticket, after: [ticket.dot])
        let escalate = B.decide(.refundEscalated, t3, 2, at: 160, ticket: ticket, after: [ticket.dot, reject.dot])
        let reject2 = B.decide(.refundRejected, t2, 2, at: 170, ticket: ticket, after: [ticket.dot])
        let s = fold([sale, confirmed, ticket, reject, escalate, reject2])
        #expect(s.status(ticket) == .escalated)
        #expect(s.conflicts(.concurrentDecision).map(\.rule) == ["precedence-4-escalated"])
    }

    @Test("rule 5: rejected concurrent with rejected -> rejected")
    func rule5() {
        let a = B.decide(.refundRejected, t3, 1, at: 150, ticket: ticket, after: [ticket.dot])
        let b = B.decide(.refundRejected, t2, 2, at: 170, ticket: ticket, after: [ticket.dot])
        let s = fold([sale, confirmed, ticket, a, b])
        #expect(s.status(ticket) == .rejected)
        #expect(s.conflicts(.concurrentDecision).map(\.rule) == ["precedence-5-rejected"])
    }

    @Test("rule 6: approved concurrent with approved -> approved")
    func rule6() {
        let a = B.decide(.refundApproved, t3, 1, at: 150, ticket: ticket, after: [ticket.dot])
        let b = B.decide(.refundApproved, t2, 2, at: 170, ticket: ticket, after: [ticket.dot])
        let s = fold([sale, confirmed, ticket, a, b])
        #expect(s.status(ticket) == .approved)
        #expect(s.conflicts(.concurrentDecision).map(\.rule) == ["precedence-6-approved"])
    }

    @Test("a decision causally after every frontier event resolves held(dispute)")
    func heldResolved() {
        let approve = B.decide(.refundApproved, t2, 2, at: 200, ticket: ticket, after: [ticket.dot])
        let reject = B.decide(.refundRejected, .central, 2, at: 210, ticket: ticket, after: [ticket.dot])
        let decide = B.decide(.refundApproved, .central, 3, at: 400, ticket: ticket, after: [approve.dot, reject.dot])
        let s = fold([sale, confirmed, ticket, approve, reject, decide])
        #expect(s.status(ticket) == .approved)
        #expect(s.conflicts(.concurrentDecision).isEmpty, "the resolved dispute leaves a single frontier")
        // A decision that saw only one side does not resolve it.
        let partial = B.decide(.refundApproved, t3, 1, at: 400, ticket: ticket, after: [ticket.dot, reject.dot])
        #expect(fold([sale, confirmed, ticket, approve, reject, partial]).status(ticket) == .held(.dispute))
    }

    @Test("an event that is not a valid transition from its causal past is ignored and recorded")
    func invalidTransition() {
        let approve = B.decide(.refundApproved, t2, 2, at: 200, ticket: ticket, after: [ticket.dot])
        let cancelLate = B.decide(.refundCancelled, t2, 3, at: 300, ticket: ticket, after: [approve.dot])
        let escalateEarly = B.decide(.refundEscalated, t3, 1, at: 250, ticket: ticket, after: [ticket.dot])
        let s = fold([sale, confirmed, ticket, approve, cancelLate, escalateEarly])
        #expect(s.status(ticket) == .approved)
        let invalid = s.conflicts(.invalidTransition)
        #expect(invalid.map(\.events) == [[cancelLate.dot], [escalateEarly.dot]].sorted { $0[0] < $1[0] })
        // A decision whose context does not contain the request is invalid too.
        let blind = B.decide(.refundApproved, t3, 2, at: 260, ticket: ticket, after: [])
        #expect(fold([sale, confirmed, ticket, blind]).status(ticket) == .requested)
    }

    @Test("notes merge as a union and never change the status")
    func notes() {
        let n1 = B.decide(.noteAdded, t2, 2, at: 200, ticket: ticket, after: [ticket.dot])
        let n2 = B.decide(.noteAdded, t3, 1, at: 200, ticket: ticket, after: [ticket.dot])
        let s = fold([sale, confirmed, ticket, n1, n2, n1])
        #expect(s.tickets[TicketId(ticket.dot)]?.noteCount == 2)
        #expect(s.status(ticket) == .requested)
    }

    @Test("concurrent sale outcomes: confirmed wins, conflict recorded")
    func saleOutcomes() {
        let c = B.confirm(1, at: 10, sale: sale)
        let d = Event(dot: B.dot(.central, 2), hlc: Sample.hlc(11), context: B.ctx([sale.dot]),
                      body: .saleDeclined(SaleId(sale.dot)))
        let s = fold([sale, c, d])
        #expect(s.saleStatus(sale) == .confirmed)
        #expect(s.conflicts(.concurrentSaleOutcome).count == 1)
        // Declined after confirmed (causally) is an invalid transition.
        let late = Event(dot: B.dot(.central, 3), hlc: Sample.hlc(12), context: B.ctx([c.dot]),
                         body: .saleDeclined(SaleId(sale.dot)))
        let s2 = fold([sale, c, late])
        #expect(s2.saleStatus(sale) == .confirmed)
        #expect(s2.conflicts(.invalidTransition).count == 1)
    }

    @Test("authority: a terminal's confirmation or completion is refused and recorded")
    func authority() {
        let forged = Event(dot: B.dot(t1, 2), hlc: Sample.hlc(5), context: B.ctx([sale.dot]),
                           body: .saleConfirmed(SaleId(sale.dot)))
        let s = fold([sale, forged])
        #expect(s.saleStatus(sale) == .captured)
        #expect(s.conflicts(.unauthorizedWriter).map(\.events) == [[forged.dot]])
        #expect(s.canonicalText.contains("refused-event 1:2 sale-confirmed"))
    }
}
