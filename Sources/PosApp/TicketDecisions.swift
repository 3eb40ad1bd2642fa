import PosLedger

/// What a manager (at a terminal) or the back office (central) can do to a ticket.
public enum TicketAction: String, CaseIterable, Sendable, Codable {
    case approve, reject, cancel, escalate, complete, note

    var kind: EventKind? {
        switch self {
        case .approve: .refundApproved
        case .reject: .refundRejected
        case .cancel: .refundCancelled
        case .escalate: .refundEscalated
        case .complete: .refundCompleted
        case .note: nil
        }
    }

    /// The status the decision leads to.
    var leadsTo: TicketStatus? {
        switch self {
        case .approve: .approved
        case .reject: .rejected
        case .cancel: .cancelled
        case .escalate: .escalated
        case .complete: .completed
        case .note: nil
        }
    }
}

/// Checks a decision against the ticket as this replica sees it and returns the
/// events to write (the decision, then the note if any). Nothing is written here.
public enum TicketDecisions {
    public static func plan(_ action: TicketAction, ticket id: TicketId, state: LedgerState,
                            route: RefundRoute?, note: NoteText?) throws(AppError) -> [EventBody] {
        let number = id.ticketNumber
        guard let t = state.tickets[id] else {
            throw AppError(.refused, "ticket \(number) is not known here (sync first if it was opened elsewhere)")
        }
        var bodies: [EventBody] = []
        if let kind = action.kind {
            // A disputed (held) ticket is decided by a decision that saw the dispute;
            // other holds are cross-entity rules, and the ticket's own status decides.
            let from: TicketStatus = t.status == .held(.dispute) ? t.status : t.ownStatus
            guard TicketStatus.after(kind, from: from) != nil else {
                // The status that decided, and the shown one when it differs (a cross-entity rule).
                throw AppError(.refused, "cannot \(action.rawValue) ticket \(number): it is \(action.leadsTo == from ? "already " : "")\(from)"
                    + (t.status == from ? "" : " (shown as \(t.status) because \(why(t.status, sale: t.sale, state: state)))"))
            }
            switch action {
            case .approve:
                let r = route ?? (t.resolution == .refund ? .originalPayment : .reship)
                if t.resolution == .exchange, r != .reship {
                    throw AppError(.refused, "ticket \(number) is an exchange: its route is reship")
                }
                bodies.append(.refundApproved(id, r))
            case .reject: bodies.append(.refundRejected(id))
            case .cancel: bodies.append(.refundCancelled(id))
            case .escalate: bodies.append(.refundEscalated(id))
            case .complete:
                // It is approved (the check above); money moves only on a confirmed sale, and never past it.
                switch state.sales[t.sale]?.status {
                case .confirmed?: break
                case .captured?:
                    throw AppError(.refused, "cannot complete ticket \(number): its sale \(t.sale.dot) is captured, not confirmed (forward it first)")
                case .awaitingCapture?, nil:
                    throw AppError(.refused, "cannot complete ticket \(number): its sale \(t.sale.dot) is not known here (sync first)")
                case let status?:
                    throw AppError(.refused, "cannot complete ticket \(number): its sale \(t.sale.dot) is \(status), not confirmed: no money was paid, none moves back")
                }
                guard t.status == .approved else {
                    throw AppError(.refused, "cannot complete ticket \(number): it is approved, but shown as \(t.status) because \(why(t.status, sale: t.sale, state: state))")
                }
                bodies.append(.refundCompleted(id))
            case .note: break
            }
        } else if note == nil {
            throw AppError(.refused, "note: give the text with --note")
        }
        if let note { bodies.append(.noteAdded(id, note)) }
        return bodies
    }

    /// Why a ticket is shown with `shown` rather than its own status: the cross-entity rule that applies.
    static func why(_ shown: TicketStatus, sale: SaleId, state: LedgerState) -> String {
        switch shown {
        case .held(.saleNotPaid): "its sale \(sale.dot) is \(state.sales[sale].map { "\($0.status)" } ?? "not paid")"
        case .held(.overRefund): "with the other refunds of its sale \(sale.dot) it would refund more than the sale"
        case .held(.dispute): "concurrent decisions on it disagree"
        case .pendingSale: "its sale \(sale.dot) is not known here"
        default: "of the rules across tickets and sales"
        }
    }
}

/// What a decision did, for printing.
public struct DecisionResult: Codable, Sendable, Equatable {
    public var ticket: String
    public var action: String
    public var events: [String]
    public var status: String
    public var heldReason: String?
    public var notification: String?
}

extension DecisionResult {
    init(ticket id: TicketId, action: TicketAction, events: [Event], state: LedgerState) {
        ticket = id.ticketNumber.text
        self.action = action.rawValue
        self.events = events.map { "\($0.dot)" }
        let view = state.tickets[id]
        status = view.map { LedgerReport.statusName($0.status) } ?? "unknown"
        heldReason = view.flatMap { LedgerReport.heldReason($0.status) }
        if let requestEvent = state.request(of: id), case .refundRequested(let request) = requestEvent.body {
            notification = events.lazy.compactMap { NotificationOutbox.entry(for: $0, request: request) }.first?.description
        }
    }
}
