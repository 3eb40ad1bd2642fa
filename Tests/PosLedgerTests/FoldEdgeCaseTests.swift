import Testing
@testable import PosLedger

/// Forged or corrupted input: the fold stays a function of the event set.
@Suite("Fold edge cases")
struct FoldEdgeCaseTests {
    let t1 = Sample.t1, t2 = Sample.t2, t3 = Sample.t3

    func expectOrderFree(_ events: [Event], _ comment: Comment) -> LedgerState {
        let state = LedgerState.fold(events)
        var r = SeededRandom(seed: Property.seed(40))
        for _ in 0..<20 {
            let other = LedgerState.fold(events.shuffled(using: &r))
            #expect(other == state, comment)
            #expect(other.canonicalText == state.canonicalText, comment)
        }
        return state
    }

    @Test("two different events with one dot: the smaller encoding is kept, in any order, and recorded")
    func dotReuse() {
        let saleA = B.capture(t1, 1, at: 0, amount: 1000)
        let saleB = B.capture(t1, 1, at: 0, amount: 900, code: Sample.alipayCode)
        let other = B.capture(t2, 1, at: 5, amount: 1000)  // same code as saleA
        let s1 = expectOrderFree([saleA, saleB, other], "captures")
        #expect(s1.conflicts(.dotReused).count == 1)

        let sale2 = B.capture(t3, 1, at: 1, amount: 500, code: Sample.alipayCode)
        let reqA = B.request(t2, 2, at: 100, sale: saleA, amount: 100)
        let reqB = B.request(t2, 2, at: 100, sale: sale2, amount: 100)
        let s2 = expectOrderFree([saleA, sale2, reqA, reqB], "requests")
        #expect(s2.tickets.count == 1)
        #expect(s2.sales.values.reduce(0) { $0 + $1.tickets.count } == 1)

        let noteA = B.decide(.noteAdded, t2, 3, at: 200, ticket: reqA, after: [reqA.dot])
        let noteB = Event(dot: noteA.dot, hlc: noteA.hlc, context: noteA.context,
                          body: .noteAdded(TicketId(reqA.dot), try! NoteText("other text")))
        let approveA = B.decide(.refundApproved, t2, 4, at: 300, ticket: reqA, after: [reqA.dot])
        let approveB = Event(dot: approveA.dot, hlc: approveA.hlc, context: approveA.context,
                             body: .refundRejected(TicketId(reqA.dot)))
        let s3 = expectOrderFree([saleA, reqA, noteA, noteB, approveA, approveB], "ticket events")
        #expect(s3.conflicts(.dotReused).count == 2)
    }

    @Test("events whose contexts name each other do not loop: HLC order breaks the cycle")
    func cyclicContexts() {
        let sale = B.capture(t1, 1, at: 0, amount: 1000)
        let request = B.request(t2, 1, at: 100, sale: sale, amount: 100)
        let a = Event(dot: B.dot(t2, 2), hlc: Sample.hlc(200), context: B.ctx([request.dot, B.dot(t3, 1)]),
                      body: .refundApproved(TicketId(request.dot), .originalPayment))
        let b = Event(dot: B.dot(t3, 1), hlc: Sample.hlc(210), context: B.ctx([request.dot, a.dot]),
                      body: .refundRejected(TicketId(request.dot)))
        let s = expectOrderFree([sale, request, a, b], "cycle")
        #expect(s.status(request) == .approved || s.status(request) == .rejected)
        #expect(s.conflicts(.invalidTransition).count == 1, "b saw a (approved): reject from approved is invalid")
    }

    @Test("ticket events before their request wait, then apply")
    func orphanThenRequest() {
        let sale = B.capture(t1, 1, at: 0, amount: 1000)
        let confirmed = B.confirm(1, at: 10, sale: sale)
        let request = B.request(t2, 1, at: 100, sale: sale, amount: 100)
        let approve = B.decide(.refundApproved, t2, 2, at: 200, ticket: request, after: [request.dot])
        var state = LedgerState.fold([sale, confirmed, approve])
        #expect(state.ticketsAwaitingRequest == [TicketId(request.dot)])
        #expect(state.canonicalText.contains("awaiting-request"))
        state.apply(request)
        #expect(state.ticketsAwaitingRequest.isEmpty)
        #expect(state.status(request) == .approved)
        #expect(state == LedgerState.fold([sale, confirmed, request, approve]))
    }
}
