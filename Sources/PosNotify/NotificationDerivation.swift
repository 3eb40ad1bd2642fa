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
            if let contrary = disputing(event, state: state) {
                return .skip(kind: entry.kind.rawValue, reason: "held(dispute) with event \(contrary.dot): the decision that resolves it is notified")
            }
            return .notify(CustomerNotification(central: central, event: event, entry: entry))
        default:
            return .none
        }
    }

    /// For an approval, a valid rejection or escalation of its ticket concurrent with it (neither follows
    /// the other); for a rejection, such an approval: the two put the ticket on hold for a dispute ("One
    /// ticket", precedence 3). Decided on the events alone, so a dispute already resolved when the pass
    /// reads them is still recognised: the customer hears of the resolving decision only.
    static func disputing(_ decision: Event, state: LedgerState) -> Event? {
        let contraryKinds: Set<EventKind>
        switch decision.body {
        case .refundApproved: contraryKinds = [.refundRejected, .refundEscalated]
        case .refundRejected: contraryKinds = [.refundApproved]
        default: return nil
        }
        guard let ticket = decision.ticketId else { return nil }
        let ignored = Set(state.conflicts.filter { ignoring.contains($0.kind) }.flatMap(\.events))
        return state.statusEvents(of: ticket).first { e in
            guard let kind = e.body.kind, contraryKinds.contains(kind), !ignored.contains(e.dot) else { return false }
            return !e.follows(decision) && !decision.follows(e)
        }
    }

    /// Conflict kinds whose named events the fold ignored.
    static let ignoring: Set<ConflictRecord.Kind> = [.invalidTransition, .completionOnUnconfirmedSale, .unauthorizedWriter]
}
