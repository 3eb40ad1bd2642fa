// The money invariants every folded state must satisfy, whatever events it
// holds: checked by property tests and, after every step, by the simulator.

extension LedgerState {
    /// Descriptions of every money invariant this state breaks (empty when sound):
    /// - no ticket is completed on a sale that is not confirmed;
    /// - completed refunds of a sale never exceed its amount (and match `refundedMinor`);
    /// - live refund claims (not cancelled, rejected or held) never exceed the amount of a sale that may be paid;
    /// - each payment code (duplicate-detection key) stands for at most one sale.
    public func moneyInvariantViolations() -> [String] {
        var problems: [String] = []
        for id in sales.keys.sorted() {
            let sale = sales[id]!
            let ticketViews = sale.tickets.compactMap { tickets[$0] }
            let completed = ticketViews.filter { $0.status == .completed }
            if !completed.isEmpty && sale.status != .confirmed {
                problems.append("\(id): ticket completed on a \(sale.status) sale")
            }
            let refunded = completed.filter { $0.resolution == .refund }.reduce(Int64(0)) { $0 + $1.amount.minorUnits }
            if let amount = sale.amount, refunded > amount.minorUnits {
                problems.append("\(id): completed refunds \(refunded) exceed the sale amount \(amount.minorUnits)")
            }
            if refunded != sale.refundedMinor {
                problems.append("\(id): refundedMinor \(sale.refundedMinor) differs from completed refunds \(refunded)")
            }
            if sale.status == .captured || sale.status == .confirmed, let amount = sale.amount {
                let claimed = ticketViews.filter {
                    $0.resolution == .refund && ![.cancelled, .rejected].contains($0.status) && !Self.isHeld($0.status)
                }.reduce(Int64(0)) { $0 + $1.amount.minorUnits }
                if claimed > amount.minorUnits {
                    problems.append("\(id): live refund claims \(claimed) exceed the sale amount \(amount.minorUnits)")
                }
            }
        }
        var standing: [DuplicateKey: [SaleId]] = [:]
        for (id, sale) in sales where sale.status != .voidDuplicate {
            if let key = sale.duplicateKey { standing[key, default: []].append(id) }
        }
        for (key, ids) in standing where ids.count > 1 {
            problems.append("payment code \(key) stands for \(ids.count) sales: \(ids.sorted().map { "\($0)" }.joined(separator: ", "))")
        }
        return problems
    }

    private static func isHeld(_ s: TicketStatus) -> Bool {
        if case .held = s { return true }
        return false
    }
}
