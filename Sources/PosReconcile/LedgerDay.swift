import PosLedger

/// A payment the ledger says the acquirer decided on the day: a sale's
/// outcome, as central recorded the acquirer's answer.
public struct LedgerPayment: Sendable, Equatable {
    /// The sale's dot, "1:5": the merchant order id the statement carries.
    public var orderId: String
    public var merchant: String
    /// The terminal that made the sale.
    public var terminal: UInt32
    /// confirmed, declined or expired.
    public var status: SaleStatus
    public var amount: Money
    /// The HLC time of central's outcome event, Unix milliseconds.
    public var decidedMillis: Int64

    public init(orderId: String, merchant: String, terminal: UInt32, status: SaleStatus, amount: Money, decidedMillis: Int64) {
        self.orderId = orderId
        self.merchant = merchant
        self.terminal = terminal
        self.status = status
        self.amount = amount
        self.decidedMillis = decidedMillis
    }
}

/// A refund the ledger says was paid out on the day: a refund ticket completed.
public struct LedgerRefund: Sendable, Equatable {
    /// The ticket number, "2-10-5": the merchant refund id the statement carries.
    public var refundId: String
    /// The sale refunded ("1:5").
    public var orderId: String
    public var merchant: String
    /// The terminal that made the sale.
    public var terminal: UInt32
    public var amount: Money
    public var saleAmount: Money
    /// The HLC time of central's completion event, Unix milliseconds.
    public var completedMillis: Int64

    public init(refundId: String, orderId: String, merchant: String, terminal: UInt32, amount: Money, saleAmount: Money, completedMillis: Int64) {
        self.refundId = refundId
        self.orderId = orderId
        self.merchant = merchant
        self.terminal = terminal
        self.amount = amount
        self.saleAmount = saleAmount
        self.completedMillis = completedMillis
    }
}

/// What a part of the ledger says happened with the acquirer on one day.
public enum LedgerDay {
    /// The payments decided and the refunds completed in `day` (start inclusive,
    /// end exclusive, Unix milliseconds) among the sales and tickets of `part`
    /// (a state exact for what it holds), in id order. `merchant` names a
    /// terminal's merchant (nil: not enrolled here; such sales are left out).
    public static func records(in part: LedgerState, day: Range<Int64>,
                               merchant: (ReplicaId) -> String?) -> (payments: [LedgerPayment], refunds: [LedgerRefund]) {
        var payments: [LedgerPayment] = []
        for (id, sale) in part.sales.sorted(by: { $0.key < $1.key }) {
            guard let amount = sale.amount, let m = merchant(id.dot.replica), let kind = decisionKind(sale.status) else { continue }
            let decided = part.outcomes(of: id).filter { $0.body.kind == kind }.map { Int64($0.hlc.millis) }.max()
            guard let decided, day.contains(decided) else { continue }
            payments.append(LedgerPayment(orderId: "\(id.dot)", merchant: m, terminal: id.dot.replica.rawValue, status: sale.status,
                                          amount: amount, decidedMillis: decided))
        }
        var refunds: [LedgerRefund] = []
        for (id, ticket) in part.tickets.sorted(by: { $0.key < $1.key }) where ticket.status == .completed && ticket.resolution == .refund {
            guard let sale = part.sales[ticket.sale], let saleAmount = sale.amount, let m = merchant(ticket.sale.dot.replica) else { continue }
            let completed = part.statusEvents(of: id).filter { $0.body.kind == .refundCompleted }.map { Int64($0.hlc.millis) }.max()
            guard let completed, day.contains(completed) else { continue }
            refunds.append(LedgerRefund(refundId: id.ticketNumber.text, orderId: "\(ticket.sale.dot)", merchant: m,
                                        terminal: ticket.sale.dot.replica.rawValue, amount: ticket.amount, saleAmount: saleAmount,
                                        completedMillis: completed))
        }
        return (payments, refunds)
    }

    /// The event kind that gives a sale this status (nil: the acquirer did not decide it).
    static func decisionKind(_ status: SaleStatus) -> EventKind? {
        switch status {
        case .confirmed: .saleConfirmed
        case .declined: .saleDeclined
        case .expired: .saleExpired
        case .awaitingCapture, .captured, .voidDuplicate: nil
        }
    }
}
