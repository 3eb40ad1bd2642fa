// A refund ticket's status and the transitions its events may make.
// requested -> approved -> completed; requested -> rejected -> escalated;
// requested -> cancelled; escalated -> approved | rejected (customer service
// decides); held(dispute) -> approved | rejected | cancelled (a decision that
// saw the dispute resolves it).

public enum HoldReason: String, Hashable, Sendable, CaseIterable {
    case dispute = "dispute"
    case overRefund = "over-refund"
    case saleNotPaid = "sale-not-paid"
}

public enum TicketStatus: Hashable, Sendable, CustomStringConvertible {
    case requested, approved, rejected, escalated, cancelled, completed
    case held(HoldReason)
    /// The ticket's sale is not known here yet.
    case pendingSale

    public var description: String {
        switch self {
        case .requested: "requested"
        case .approved: "approved"
        case .rejected: "rejected"
        case .escalated: "escalated"
        case .cancelled: "cancelled"
        case .completed: "completed"
        case .held(let reason): "held(\(reason.rawValue))"
        case .pendingSale: "pending-sale"
        }
    }

    /// The status after an event of `kind` applied to a ticket whose causal
    /// past has status `from` (nil: the writer saw no request), or nil when
    /// the transition is invalid. Notes are not status events.
    public static func after(_ kind: EventKind, from: TicketStatus?) -> TicketStatus? {
        switch (from, kind) {
        case (nil, .refundRequested): .requested
        case (.requested?, .refundApproved): .approved
        case (.requested?, .refundRejected): .rejected
        case (.requested?, .refundCancelled): .cancelled
        case (.approved?, .refundCompleted): .completed
        case (.rejected?, .refundEscalated): .escalated
        case (.escalated?, .refundApproved): .approved
        case (.escalated?, .refundRejected): .rejected
        case (.held(.dispute)?, .refundApproved): .approved
        case (.held(.dispute)?, .refundRejected): .rejected
        case (.held(.dispute)?, .refundCancelled): .cancelled
        default: nil
        }
    }

    /// Writer-side check: the transition must be valid on the state the writer sees.
    /// For a stamped event, `LedgerState.checkAdmission` asks the fold itself
    /// (causal past, sale confirmation, authority) and names the ticket.
    public static func validate(_ kind: EventKind, from: TicketStatus?) throws(LedgerError) -> TicketStatus {
        guard let next = after(kind, from: from) else {
            throw LedgerError(.invalidTransition,
                              "\(kind) is not allowed on a ticket that is \(from.map { "\($0)" } ?? "not requested")",
                              field: "status")
        }
        return next
    }
}
