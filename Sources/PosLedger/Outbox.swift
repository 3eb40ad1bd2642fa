// Notification outbox: when a ticket is created, decided or its refund paid
// out, an entry for a sender (SMS / app) to deliver later. Pure: central
// derives the entries from its journal and delivers them (PosNotify).

public struct OutboxEntry: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: String, Hashable, Sendable {
        case ticketCreated = "ticket-created"
        case ticketApproved = "ticket-approved"
        case ticketRejected = "ticket-rejected"
        case refundCompleted = "refund-completed"
    }

    /// The event that caused the notification: senders deduplicate on it.
    public let cause: Dot
    public let kind: Kind
    public let ticketNumber: TicketNumber
    public let contact: CustomerContact
    public let message: String

    public var description: String { "\(kind.rawValue) \(ticketNumber) -> \(contact): \(message)" }
}

public enum NotificationOutbox {
    /// The entry to queue for `event`, or nil when the event is not a ticket
    /// creation, approval, rejection or completion, or the request left no contact. `request` is the
    /// ticket's request (the event's own body for a creation).
    public static func entry(for event: Event, request: RefundRequest) -> OutboxEntry? {
        guard let contact = request.contact, let ticket = event.ticketId else { return nil }
        let number = ticket.ticketNumber
        let what = request.resolution == .refund ? "refund of \(request.amount)" : "exchange"
        switch event.body {
        case .refundRequested:
            return OutboxEntry(cause: event.dot, kind: .ticketCreated, ticketNumber: number, contact: contact,
                               message: "Return ticket \(number) received (\(what)). Quote this number.")
        case .refundApproved:
            return OutboxEntry(cause: event.dot, kind: .ticketApproved, ticketNumber: number, contact: contact,
                               message: "Return ticket \(number) approved (\(what)).")
        case .refundRejected:
            return OutboxEntry(cause: event.dot, kind: .ticketRejected, ticketNumber: number, contact: contact,
                               message: "Return ticket \(number) rejected. You may escalate to customer service.")
        case .refundCompleted:
            return OutboxEntry(cause: event.dot, kind: .refundCompleted, ticketNumber: number, contact: contact,
                               message: request.resolution == .refund ? "Return ticket \(number): refund of \(request.amount) paid out."
                                   : "Return ticket \(number) completed (exchange).")
        default:
            return nil
        }
    }
}
