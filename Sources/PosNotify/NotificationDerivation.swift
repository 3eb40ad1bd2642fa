import PosLedger
import PosWire

/// What one journal event means for the customer (sync-protocol.md,
/// "Notifications", "Which events notify"), decided on central's folded state
/// around its ticket.
enum Derivation: Equatable {
    case notify(CustomerNotification)
    /// A decision the customer is not told of: `reason` says why.
    case skip(kind: String, reason: String)
    /// A decision on a ticket whose request central does not hold yet.
    case awaitingRequest(TicketId)
    /// Not a ticket's creation, approval, rejection or completion; or the request left no contact.
    case none

    static func of(_ event: Event, state: LedgerState, central: CentralID) -> Derivation {
        guard let ticket = event.ticketId else { return .none }
        switch event.body {
        case .refundRequested(let request):
            guard let entry = NotificationOutbox.entry(for: event, request: request) else { return .none }
            return .notify(CustomerNotification(central: central, event: event, entry: entry))
        case .refundApproved, .refundRejected, .refundCompleted:
            guard let held = state.request(of: ticket), case .refundRequested(let request) = held.body else { return .awaitingRequest(ticket) }
            guard let entry = NotificationOutbox.entry(for: event, request: request) else { return .none }
            if let ignored = state.conflicts.first(where: { Self.ignoring.contains($0.kind) && $0.events.contains(event.dot) }) {
                return .skip(kind: entry.kind.rawValue, reason: "\(ignored.kind.rawValue): \(ignored.outcome)")
            }
            if entry.kind != .refundCompleted, state.tickets[ticket]?.ownStatus == .held(.dispute) {
                return .skip(kind: entry.kind.rawValue, reason: "held(dispute): the decision that resolves it is notified")
            }
            return .notify(CustomerNotification(central: central, event: event, entry: entry))
        default:
            return .none
        }
    }

    /// Conflict kinds whose named events the fold ignored.
    static let ignoring: Set<ConflictRecord.Kind> = [.invalidTransition, .completionOnUnconfirmedSale, .unauthorizedWriter]
}
