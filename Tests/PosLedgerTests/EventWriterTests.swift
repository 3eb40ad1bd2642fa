import Testing
@testable import PosLedger

@Suite("Writing events")
struct EventWriterTests {
    @Test("a writer assigns consecutive dots and increasing HLCs, and refuses types it may not write")
    func writer() throws {
        var terminal = EventWriter(replica: Sample.t1)
        let capture = try terminal.write(.saleCaptured(try SaleCapture(amount: Sample.money(500),
                                                                       paymentCode: Sample.wechatCode,
                                                                       merchantKey: Sample.merchantKey)),
                                         context: VersionVector(), wallMillis: 1_785_000_000_000)
        #expect(capture.dot == Sample.dot(Sample.t1, 1))
        let note = try terminal.write(.noteAdded(TicketId(capture.dot), try NoteText("x")), context: VersionVector(),
                                      wallMillis: 1_784_000_000_000)  // clock jumped back
        #expect(note.dot.seq == 2 && note.hlc > capture.hlc)
        do {
            _ = try terminal.write(.saleConfirmed(SaleId(capture.dot)), context: VersionVector(), wallMillis: 0)
            Issue.record("a terminal wrote a confirmation")
        } catch {
            #expect(error.code == .unauthorizedWriter)
        }
        #expect(terminal.lastSeq == 2, "a refused write consumes no sequence number")
        let forged = Event(dot: Sample.dot(Sample.t1, 3), hlc: note.hlc, context: VersionVector(),
                           body: .refundCompleted(TicketId(capture.dot)))
        #expect(throws: LedgerError.self) { try forged.checkAuthority() }
        try capture.checkAuthority()
    }

    @Test("a terminal deciding after seeing the ticket stamps the context that resolves a dispute")
    func contextResolvesDispute() throws {
        let sale = B.capture(Sample.t1, 1, at: 0, amount: 1000)
        let request = B.request(Sample.t2, 1, at: 100, sale: sale, amount: 400)
        let approve = B.decide(.refundApproved, Sample.t2, 2, at: 200, ticket: request, after: [request.dot])
        let reject = B.decide(.refundRejected, Sample.t3, 1, at: 210, ticket: request, after: [request.dot])
        var state = LedgerState.fold([sale, B.confirm(1, at: 10, sale: sale), request, approve, reject])
        #expect(state.status(request) == .held(.dispute))
        var central = EventWriter(replica: .central, lastSeq: 1)
        let ticket = TicketId(request.dot)
        let own = try #require(state.tickets[ticket]?.ownStatus)
        _ = try TicketStatus.validate(.refundApproved, from: own)
        let decision = try central.write(.refundApproved(ticket, .originalPayment), context: state.context(of: ticket),
                                         wallMillis: Int64(Sample.baseMillis) + 500)
        state.apply(decision)
        #expect(state.status(request) == .approved)
        #expect(state.context(of: ticket).covers(decision.dot))
        #expect(state.context(of: SaleId(sale.dot)).covers(sale.dot))
    }
}
