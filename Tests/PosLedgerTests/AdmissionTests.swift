import Testing
@testable import PosLedger

/// DOMAIN.md "A writer never records what its own fold would ignore":
/// `LedgerState.checkAdmission` refuses, with a message naming the entity and
/// its state, exactly the events the fold of the state plus the event would ignore.
@Suite("Writer's admission check")
struct AdmissionTests {
    let t1 = Sample.t1, t2 = Sample.t2, t3 = Sample.t3
    let sale = Common.sale, confirmed = Common.confirmed, ticket = Common.ticket
    var ticketId: TicketId { TicketId(ticket.dot) }

    func refusal(_ state: LedgerState, _ event: Event) -> LedgerError? {
        do {
            try state.checkAdmission(event)
            return nil
        } catch {
            return error
        }
    }

    /// A decision on the ticket stamped as a writer does: its context is everything the state holds of the ticket.
    func decision(_ kind: EventKind, _ r: ReplicaId, _ s: UInt64, at ms: UInt64, on state: LedgerState) -> Event {
        Event(dot: B.dot(r, s), hlc: Sample.hlc(ms), context: state.context(of: ticketId),
              body: B.body(kind, ticketId, note: "n"))
    }

    @Test("an escalate on an approved ticket is refused with a message naming the ticket and 'approved'")
    func escalateOnApproved() {
        let approve = B.decide(.refundApproved, t2, 2, at: 200, ticket: ticket, after: [ticket.dot])
        let state = LedgerState.fold([sale, confirmed, ticket, approve])
        let escalate = decision(.refundEscalated, t3, 1, at: 300, on: state)
        let error = refusal(state, escalate)
        #expect(error?.code == .invalidTransition)
        #expect(error?.message == "ticket 2:1 is approved: escalate is not a valid transition "
            + "(only a ticket that is rejected can be escalated)")
        var after = state
        after.apply(escalate)
        #expect(after.conflicts(.invalidTransition).map(\.events) == [[escalate.dot]], "the fold would ignore it")
    }

    @Test("an escalate after seeing a rejection is admitted even with an HLC below the rejection's")
    func escalateBelowRejection() {
        let reject = B.decide(.refundRejected, .central, 2, at: 500, ticket: ticket, after: [ticket.dot])
        let state = LedgerState.fold([sale, confirmed, ticket, reject])
        let escalate = decision(.refundEscalated, t3, 1, at: 100, on: state)
        #expect(refusal(state, escalate) == nil)
        var after = state
        after.apply(escalate)
        #expect(after.status(ticket) == .escalated)
    }

    @Test("a decision on a held(dispute) ticket that saw the whole frontier is admitted, whatever its HLC")
    func decisionOnDispute() {
        let approve = B.decide(.refundApproved, t2, 2, at: 200, ticket: ticket, after: [ticket.dot])
        let reject = B.decide(.refundRejected, .central, 2, at: 210, ticket: ticket, after: [ticket.dot])
        let state = LedgerState.fold([sale, confirmed, ticket, approve, reject])
        #expect(state.status(ticket) == .held(.dispute))
        let decide = decision(.refundApproved, t3, 1, at: 150, on: state)
        #expect(refusal(state, decide) == nil)
        var after = state
        after.apply(decide)
        #expect(after.status(ticket) == .approved)
        // One that saw only the rejection decides on a rejected ticket: approve is refused.
        let partial = B.decide(.refundApproved, t3, 1, at: 400, ticket: ticket, after: [ticket.dot, reject.dot])
        #expect(refusal(state, partial)?.message == "ticket 2:1 is rejected: approve is not a valid transition "
            + "(only a ticket that is requested, escalated or held(dispute) can be approved)")
    }

    @Test("a completion on an unconfirmed sale is refused, naming the sale's status; on a confirmed one it is admitted")
    func completionOnUnconfirmedSale() {
        let approve = B.decide(.refundApproved, t2, 2, at: 200, ticket: ticket, after: [ticket.dot])
        let unconfirmed = LedgerState.fold([sale, ticket, approve])
        let complete = decision(.refundCompleted, .central, 5, at: 300, on: unconfirmed)
        let error = refusal(unconfirmed, complete)
        #expect(error?.code == .invalidTransition && error?.field == "sale")
        #expect(error?.message == "ticket 2:1 is approved but its sale 1:1 is captured, not confirmed: "
            + "a refund is completed only on a confirmed sale")
        #expect(refusal(LedgerState.fold([sale, confirmed, ticket, approve]), complete) == nil)
    }

    @Test("events about a ticket or sale not known here are refused; notes, captures and requests are admitted")
    func unknownAndAlwaysAdmitted() {
        let empty = LedgerState()
        let note = B.decide(.noteAdded, t3, 1, at: 150, ticket: ticket, after: [ticket.dot])
        #expect(refusal(empty, note)?.code == .unknownEntity)
        #expect(refusal(empty, B.decide(.refundApproved, t3, 1, at: 150, ticket: ticket, after: [ticket.dot]))?
            .message == "ticket 2:1 is not known here (its request has not arrived): refund-approved 3:1 cannot "
            + "follow it; sync first")
        #expect(refusal(empty, confirmed)?.code == .unknownEntity)
        #expect(refusal(LedgerState.fold([sale, ticket]), note) == nil)
        #expect(refusal(empty, sale) == nil)
        #expect(refusal(empty, ticket) == nil, "a request on a sale not known here is pending-sale, not ignored")
    }

    @Test("unauthorized writers, blind contexts, outcomes on decided sales and reused dots are refused")
    func otherRefusals() {
        let state = LedgerState.fold([sale, confirmed, ticket])
        let byTerminal = decision(.refundCompleted, t1, 2, at: 300, on: state)
        #expect(refusal(state, byTerminal)?.code == .unauthorizedWriter)
        let blind = B.decide(.refundApproved, t3, 1, at: 300, ticket: ticket, after: [])
        #expect(refusal(state, blind)?.message == "ticket 2:1: approve 3:1 does not follow its request "
            + "(its context {} does not cover 2:1)")
        let declined = Event(dot: B.dot(.central, 2), hlc: Sample.hlc(20), context: state.context(of: SaleId(sale.dot)),
                             body: .saleDeclined(SaleId(sale.dot)))
        #expect(refusal(state, declined)?.message == "sale 1:1 is confirmed: sale-declined is not a valid "
            + "transition (only a captured sale gets an outcome)")
        let reused = decision(.refundApproved, t2, 1, at: 300, on: state)
        #expect(refusal(state, reused)?.code == .fieldDuplicated)
        #expect(refusal(state, B.capture(t1, 1, at: 5, amount: 900))?.code == .fieldDuplicated)
    }

    @Test("the admission check refuses exactly what the fold would ignore, on random states and events")
    func agreesWithFold() {
        let seed = Property.seed(30)
        var r = SeededRandom(seed: seed)
        let ignoredKinds: Set<ConflictRecord.Kind> = [.invalidTransition, .completionOnUnconfirmedSale,
                                                      .unauthorizedWriter]
        var admitted = 0, refused = 0
        let cases = Property.cases(default: 4000)
        for i in 0..<cases {
            let state = LedgerState.fold(ScenarioGen.events(&r, skewed: r.chance(50)))
            let e = Self.candidate(&r, state, UInt64(i))
            let verdict = refusal(state, e)
            var after = state
            after.apply(e)
            let ignored = after.conflicts.contains { $0.events == [e.dot] && ignoredKinds.contains($0.kind) }
            let agrees = switch verdict?.code {
            case nil: !ignored
            case .invalidTransition?, .unauthorizedWriter?: ignored
            case .unknownEntity?: e.ticketId.map { state.request(of: $0) == nil }
                ?? e.saleId.map { state.capture(of: $0) == nil } ?? false
            default: false
            }
            if !agrees {
                Issue.record(Comment(rawValue: "seed \(seed) case \(i): \(e) verdict \(verdict.map { "\($0)" } ?? "admitted") "
                    + "but the fold \(ignored ? "ignores" : "keeps") it\n\(after.canonicalText)"))
                return
            }
            if verdict == nil { admitted += 1 } else { refused += 1 }
        }
        #expect(cases < 100 || (admitted > cases / 10 && refused > cases / 10),
                "seed \(seed): \(admitted) admitted, \(refused) refused: the generator must reach both")
    }

    /// A decision, note or sale outcome on an entity of `state` (sometimes an unknown one), by a random
    /// writer, with a fresh dot, a random HLC and a context that is all or part of what the state holds.
    static func candidate(_ r: inout SeededRandom, _ state: LedgerState, _ n: UInt64) -> Event {
        let writer = r.pick([ReplicaId.central, Sample.t1, Sample.t2, Sample.t3])
        let dot = Sample.dot(writer, 10_000 + n)
        let hlc = r.chance(50) ? Sample.hlc(UInt64(r.int(0...20_000))) : Gen.hlc(&r)
        let kind = r.pick([EventKind.refundApproved, .refundRejected, .refundCancelled, .refundCompleted,
                           .refundEscalated, .noteAdded, .saleConfirmed, .saleDeclined, .saleExpired])
        func context(_ all: VersionVector, _ dots: [Dot]) -> VersionVector {
            if r.chance(50) { return all }
            var v = VersionVector()
            for d in dots where r.chance(60) { v.add(d) }
            return v
        }
        if [.saleConfirmed, .saleDeclined, .saleExpired].contains(kind) {
            let known = state.sales.keys.sorted()
            let sale = !known.isEmpty && r.chance(90) ? r.pick(known) : SaleId(Sample.dot(Sample.t3, 999))
            let body: EventBody = kind == .saleConfirmed ? .saleConfirmed(sale)
                : kind == .saleDeclined ? .saleDeclined(sale) : .saleExpired(sale)
            return Event(dot: dot, hlc: hlc, context: context(state.context(of: sale), state.eventDots(of: sale)),
                         body: body)
        }
        let known = state.tickets.keys.sorted() + state.ticketsAwaitingRequest
        let ticket = !known.isEmpty && r.chance(90) ? r.pick(known) : TicketId(Sample.dot(Sample.t3, 998))
        return Event(dot: dot, hlc: hlc, context: context(state.context(of: ticket), state.eventDots(of: ticket)),
                     body: B.body(kind, ticket, note: "n"))
    }
}
