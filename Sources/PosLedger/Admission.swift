// The writer's admission check (DOMAIN.md "A writer never records what its
// own fold would ignore"): before a replica journals one of its own events,
// it asks whether its fold, given that event, would ignore it. The
// `invalid-transition` rule then only ever catches events that became
// invalid once other replicas' events arrived.
//
// The check runs the one entity's machine (TicketRules.own / SaleRules.own)
// on the events this state holds of it plus the new event; it never copies
// the state (a central state holds hundreds of thousands of sales).

extension LedgerState {
    /// Throws when the fold of this state plus `event` would ignore `event`;
    /// returns when the event would count. `event` is fully stamped (dot, HLC,
    /// context, body), as it would be journaled. Nothing is changed.
    ///
    /// Refused, with the error's message naming the entity and its state:
    /// - a type its writer may not write (`unauthorizedWriter`, as
    ///   `Event.checkAuthority`);
    /// - a record type this version does not know (`unsupportedVersion`);
    /// - a dot the entity already holds (`fieldDuplicated`): a duplicate or a dot reuse;
    /// - a ticket event (decision or note) on a ticket whose request this state
    ///   does not hold, or a sale outcome on a sale whose capture it does not
    ///   hold (`unknownEntity`);
    /// - a decision or outcome that is not a valid transition from the status
    ///   of its causal past, or whose context does not contain the request or
    ///   capture (`invalidTransition`, e.g. "ticket 2:1 is approved: escalate is
    ///   not a valid transition (only a ticket that is rejected can be escalated)");
    /// - a completion on a ticket whose sale is not the standing, confirmed
    ///   capture (`invalidTransition`, field `sale`).
    /// Captures and requests are always admitted (a request on a sale not known
    /// here is pending-sale, not ignored); so are notes on a known ticket.
    public func checkAdmission(_ event: Event) throws(LedgerError) {
        try event.checkAuthority()
        switch event.body {
        case .unknown(let type, _):
            throw LedgerError(.unsupportedVersion, "event \(event.dot) has record type \(type), unknown to this "
                + "version: a writer records only types it knows", field: "type")
        case .saleCaptured:
            let sale = SaleId(event.dot)
            if saleGroups[sale]?.capture != nil { throw Self.dotUsed(event.dot, "\(sale)") }
        case .refundRequested:
            let ticket = TicketId(event.dot)
            if ticketGroups[ticket]?.request != nil { throw Self.dotUsed(event.dot, "\(ticket)") }
        case .saleConfirmed(let sale), .saleDeclined(let sale), .saleExpired(let sale):
            try checkOutcome(event, on: sale)
        case .noteAdded(let ticket, _):
            _ = try knownTicket(ticket, event)
        case .sequenceVoid:
            break  // holds nothing; only `terminal recover` writes it
        case .refundApproved(let ticket, _), .refundRejected(let ticket), .refundCancelled(let ticket),
             .refundCompleted(let ticket), .refundEscalated(let ticket):
            try checkDecision(event, on: ticket)
        }
    }

    /// The ticket's events and request, when the request is known and none of
    /// its events already has `event`'s dot.
    private func knownTicket(_ ticket: TicketId, _ event: Event) throws(LedgerError)
        -> (group: TicketGroup, request: Event)
    {
        guard let group = ticketGroups[ticket], let request = group.request else {
            throw LedgerError(.unknownEntity, "\(ticket) is not known here (its request has not arrived): "
                + "\(event.body.kind!) \(event.dot) cannot follow it; sync first", field: "ticket")
        }
        let dot = event.dot
        if request.dot == dot || group.notes[dot] != nil || group.statusEvents.contains(where: { $0.dot == dot }) {
            throw Self.dotUsed(dot, "\(ticket)")
        }
        return (group, request)
    }

    private func checkDecision(_ event: Event, on ticket: TicketId) throws(LedgerError) {
        let (group, request) = try knownTicket(ticket, event)
        guard case .refundRequested(let r) = request.body else { return }
        let saleStatus = sales[r.sale]?.status
        let m = TicketRules.own(request: request, events: group.statusEvents + [event],
                                saleConfirmed: saleStatus == .confirmed, probe: event.dot)
        guard let probe = m.probe, !probe.accepted else { return }
        let kind = event.body.kind!
        let (verb, done) = Self.verbs(kind)
        guard let past = probe.past else {
            throw LedgerError(.invalidTransition, "\(ticket): \(verb) \(event.dot) does not follow its request "
                + "(its context \(event.context) does not cover \(request.dot))", field: "context")
        }
        if TicketStatus.after(kind, from: past) != nil {
            throw LedgerError(.invalidTransition, "\(ticket) is \(past) but its \(r.sale) is "
                + "\(saleStatus.map { "\($0)" } ?? "not known here"), not confirmed: a refund is completed only "
                + "on a confirmed sale", field: "sale")
        }
        let from: [TicketStatus] = [.requested, .approved, .rejected, .escalated, .held(.dispute)]
        let allowed = from.filter { TicketStatus.after(kind, from: $0) != nil }.map { "\($0)" }
        let list = allowed.count < 2 ? allowed.joined()
            : allowed.dropLast().joined(separator: ", ") + " or " + allowed.last!
        throw LedgerError(.invalidTransition, "\(ticket) is \(past): \(verb) is not a valid transition "
            + "(only a ticket that is \(list) can be \(done))", field: "status")
    }

    private func checkOutcome(_ event: Event, on sale: SaleId) throws(LedgerError) {
        guard let group = saleGroups[sale], let capture = group.capture else {
            throw LedgerError(.unknownEntity, "\(sale) is not known here (its capture has not arrived): "
                + "\(event.body.kind!) \(event.dot) cannot follow it", field: "sale")
        }
        if capture.dot == event.dot || group.outcomes.contains(where: { $0.dot == event.dot }) {
            throw Self.dotUsed(event.dot, "\(sale)")
        }
        let m = SaleRules.own(capture: capture, outcomes: group.outcomes + [event], probe: event.dot)
        guard let probe = m.probe, !probe.accepted else { return }
        guard let past = probe.past else {
            throw LedgerError(.invalidTransition, "\(sale): \(event.body.kind!) \(event.dot) does not follow its "
                + "capture (its context \(event.context) does not cover \(capture.dot))", field: "context")
        }
        throw LedgerError(.invalidTransition, "\(sale) is \(past): \(event.body.kind!) is not a valid transition "
            + "(only a captured sale gets an outcome)", field: "status")
    }

    private static func dotUsed(_ dot: Dot, _ entity: String) -> LedgerError {
        LedgerError(.fieldDuplicated, "dot \(dot) is already used by an event of \(entity): a writer never "
            + "reuses a sequence number", field: "dot")
    }

    /// "escalate" / "escalated" for refund-escalated: how the messages name a decision.
    private static func verbs(_ kind: EventKind) -> (verb: String, done: String) {
        switch kind {
        case .refundApproved: ("approve", "approved")
        case .refundRejected: ("reject", "rejected")
        case .refundCancelled: ("cancel", "cancelled")
        case .refundCompleted: ("complete", "completed")
        case .refundEscalated: ("escalate", "escalated")
        default: ("\(kind)", "\(kind)")
        }
    }
}
