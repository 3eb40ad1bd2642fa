import Testing
@testable import PosLedger

@Suite("Offline limits, return policy, transitions, outbox")
struct PolicyTests {
    let limits = try! OfflineRiskLimits(currency: .CNY, perPaymentMinorMax: 50_000, unsyncedTotalMinorMax: 200_000,
                                        offlineHoursMax: 24)
    let hour: Int64 = 3_600_000

    @Test("per-payment limit: accepted at it, refused one minor unit past it, saying by how much")
    func perPayment() throws {
        try limits.checkCapture(amount: Sample.money(50_000), unsyncedCaptured: Sample.money(0),
                                lastSyncMillis: 0, nowMillis: hour)
        do {
            try limits.checkCapture(amount: Sample.money(50_001), unsyncedCaptured: Sample.money(0),
                                    lastSyncMillis: 0, nowMillis: hour)
            Issue.record("accepted past the per-payment limit")
        } catch {
            #expect(error.code == .limitExceeded)
            #expect(error.field == "perPaymentMinorMax")
            #expect(error.message.contains("exceeded by 0.01 CNY"))
        }
    }

    @Test("unsynced total limit: accepted at it, refused one minor unit past it")
    func unsyncedTotal() throws {
        try limits.checkCapture(amount: Sample.money(50_000), unsyncedCaptured: Sample.money(150_000),
                                lastSyncMillis: 0, nowMillis: hour)
        do {
            try limits.checkCapture(amount: Sample.money(50_000), unsyncedCaptured: Sample.money(150_001),
                                    lastSyncMillis: 0, nowMillis: hour)
            Issue.record("accepted past the total limit")
        } catch {
            #expect(error.field == "unsyncedTotalMinorMax")
            #expect(error.message.contains("exceeded by 0.01 CNY"))
        }
    }

    @Test("offline time limit: accepted at 24 h, refused 1 ms past it")
    func offlineTime() throws {
        let t0: Int64 = 1_785_000_000_000
        try limits.checkCapture(amount: Sample.money(1), unsyncedCaptured: Sample.money(0),
                                lastSyncMillis: t0, nowMillis: t0 + 24 * hour)
        #expect(limits.offlineMillisLeft(lastSyncMillis: t0, nowMillis: t0 + 23 * hour) == hour)
        do {
            try limits.checkCapture(amount: Sample.money(1), unsyncedCaptured: Sample.money(0),
                                    lastSyncMillis: t0, nowMillis: t0 + 24 * hour + 1)
            Issue.record("accepted past the offline time limit")
        } catch {
            #expect(error.field == "offlineHoursMax")
            #expect(error.message.contains("exceeded by 1 ms"))
        }
    }

    @Test("limits have sensible defaults and refuse nonsense configuration")
    func limitConfig() throws {
        let d = try OfflineRiskLimits(currency: .EUR)
        #expect(d.offlineHoursMax == 24 && d.perPaymentMinorMax == 50_000)
        #expect(throws: LedgerError.self) { try OfflineRiskLimits(currency: .EUR, perPaymentMinorMax: 0) }
        #expect(throws: LedgerError.self) { try OfflineRiskLimits(currency: .EUR, offlineHoursMax: 24 * 8) }
        #expect(throws: LedgerError.self) {
            try OfflineRiskLimits(currency: .EUR, perPaymentMinorMax: 100, unsyncedTotalMinorMax: 99)
        }
    }

    func request(ageMillis: Int64, unused: Bool = true, intact: Bool = true, refunded: Int64 = 0,
                 tickets: Int = 0, amount: Int64 = 100) -> ReturnPolicy.Request {
        ReturnPolicy.Request(saleMillis: 1_000_000, nowMillis: 1_000_000 + ageMillis, goodsUnused: unused,
                             packagingIntact: intact, saleAmount: Sample.money(1000),
                             alreadyRefunded: Sample.money(refunded), refundTicketsSoFar: tickets,
                             requested: Sample.money(amount), resolution: .refund)
    }

    @Test("return window: accepted at exactly N days, refused 1 ms past")
    func window() throws {
        let policy = try ReturnPolicy(windowDays: 7)
        #expect(policy.evaluate(request(ageMillis: 7 * 86_400_000)).allHold)
        let late = policy.evaluate(request(ageMillis: 7 * 86_400_000 + 1))
        #expect(late.failing == [.withinWindow])
    }

    @Test("conditions unused and packaging intact: each reported when it fails, ignored when not required")
    func conditions() throws {
        let policy = try ReturnPolicy()
        let e = policy.evaluate(request(ageMillis: 0, unused: false, intact: false))
        #expect(e.failing == [.unused, .packagingIntact])
        #expect(e.results.count == ReturnPolicy.Condition.allCases.count)
        let lax = try ReturnPolicy(requiresUnused: false, requiresPackagingIntact: false)
        #expect(lax.evaluate(request(ageMillis: 0, unused: false, intact: false)).allHold)
    }

    @Test("refund amount: accepted up to what was paid, refused one minor unit past it")
    func amount() throws {
        let policy = try ReturnPolicy()
        #expect(policy.evaluate(request(ageMillis: 0, refunded: 400, amount: 600)).allHold)
        #expect(policy.evaluate(request(ageMillis: 0, refunded: 400, amount: 601)).failing == [.amountWithinPaid])
        #expect(throws: LedgerError.self) {
            try RefundRequest(sale: SaleId(Sample.dot(Sample.t1, 1)), saleAmount: Sample.money(1000),
                              amount: Sample.money(1001), reason: .quality, resolution: .refund, contact: nil)
        }
    }

    @Test("partial refunds per sale: the Nth accepted, the N+1th refused")
    func refundCount() throws {
        let policy = try ReturnPolicy(refundsPerSaleMax: 3)
        #expect(policy.evaluate(request(ageMillis: 0, tickets: 2)).allHold)
        #expect(policy.evaluate(request(ageMillis: 0, tickets: 3)).failing == [.refundCount])
    }

    @Test("reason other needs text; texts are bounded")
    func reasons() {
        #expect(throws: LedgerError.self) { try ReasonText("") }
        #expect(throws: LedgerError.self) {
            try ReasonText(String(repeating: "x", count: Limits.reasonTextBytesMax + 1))
        }
        #expect((try? ReasonText(String(repeating: "x", count: Limits.reasonTextBytesMax))) != nil)
        #expect(throws: LedgerError.self) { try NoteText(String(repeating: "x", count: Limits.noteBytesMax + 1)) }
        #expect(throws: LedgerError.self) { try CustomerContact(channel: .sms, address: "12345") }
    }

    @Test("each transition must be valid on the state its writer sees")
    func transitions() throws {
        #expect(try TicketStatus.validate(.refundApproved, from: .requested) == .approved)
        #expect(try TicketStatus.validate(.refundCompleted, from: .approved) == .completed)
        #expect(try TicketStatus.validate(.refundEscalated, from: .rejected) == .escalated)
        #expect(try TicketStatus.validate(.refundApproved, from: .held(.dispute)) == .approved)
        #expect(throws: LedgerError.self) { try TicketStatus.validate(.refundCompleted, from: .requested) }
        #expect(throws: LedgerError.self) { try TicketStatus.validate(.refundCancelled, from: .approved) }
        #expect(throws: LedgerError.self) { try TicketStatus.validate(.refundApproved, from: nil) }
        #expect(throws: LedgerError.self) { try TicketStatus.validate(.refundApproved, from: .completed) }
        #expect(EventKind.saleConfirmed.mayBeWritten(by: .central))
        #expect(!EventKind.saleConfirmed.mayBeWritten(by: Sample.t1))
        #expect(!EventKind.refundCompleted.mayBeWritten(by: Sample.t1))
        #expect(!EventKind.saleCaptured.mayBeWritten(by: .central))
    }

    @Test("an outbox entry is queued when a ticket is created or decided")
    func outbox() throws {
        let golden = Dictionary(uniqueKeysWithValues: Sample.goldenEvents().map { ($0.name, $0.event) })
        let requestEvent = golden["refund-requested"]!
        guard case .refundRequested(let request) = requestEvent.body else { Issue.record("fixture"); return }
        let created = try #require(NotificationOutbox.entry(for: requestEvent, request: request))
        #expect(created.kind == .ticketCreated)
        #expect(created.ticketNumber == TicketId(requestEvent.dot).ticketNumber)
        #expect(created.message.contains(created.ticketNumber.text))
        #expect(created.contact.address == "+8613800138000")
        #expect(NotificationOutbox.entry(for: golden["refund-approved"]!, request: request)?.kind == .ticketApproved)
        #expect(NotificationOutbox.entry(for: golden["refund-rejected"]!, request: request)?.kind == .ticketRejected)
        #expect(NotificationOutbox.entry(for: golden["note-added"]!, request: request) == nil)
    }
}
