// Recomputing the entities an insertion touched: own statuses, the
// duplicate-payment-code rule, then each sale's tickets with the
// cross-entity rules (pending-sale, sale-not-paid, over-refund).

extension LedgerState {
    mutating func recompute(dirtySales: Set<SaleId>) {
        // Captures sharing a payment code decide together: such a sale waits until
        // every member of its code group has its own status. Every other sale (a
        // code of its own, the usual case) is finished in one visit.
        var keys = Set<DuplicateKey>()
        var shared: [SaleId] = []
        // A fold from nothing makes a view per dirty sale: room for them at once.
        if sales.isEmpty { sales.reserveCapacity(dirtySales.count) }
        for id in dirtySales {
            guard let g = saleGroups.index(forKey: id) else {
                sales[id] = nil
                conflictsByScope[.sale(id)] = nil
                continue
            }
            if let key = saleGroups.values[g].captureKey(), let list = capturesByKey[key], list.count > 1 {
                if keys.insert(key).inserted { shared.append(contentsOf: list) }
                continue
            }
            let own = saleGroups.values[g].recomputeOwn()
            recomputeSale(id, g, ownConflicts: own)
        }
        guard !keys.isEmpty else { return }
        // The code groups' members, each once (a group's members may not all be dirty).
        var ownConflicts: [SaleId: [ConflictRecord]] = [:]
        var members: [(SaleId, [SaleId: SaleGroup].Index)] = []
        var seen = Set<SaleId>()
        for id in shared where seen.insert(id).inserted {
            guard let g = saleGroups.index(forKey: id) else { continue }
            ownConflicts[id] = saleGroups.values[g].recomputeOwn()
            members.append((id, g))
        }
        for key in keys { applyDuplicateRule(key) }
        for (id, g) in members { recomputeSale(id, g, ownConflicts: ownConflicts[id] ?? []) }
    }

    /// Duplicate payment code: a confirmed capture stands; if none is
    /// confirmed, the earliest by (HLC, dot); every other is void-duplicate.
    /// Called for codes held by more than one capture.
    private mutating func applyDuplicateRule(_ key: DuplicateKey) {
        let ids = capturesByKey[key] ?? []
        guard ids.count > 1 else {
            conflictsByScope[.paymentCode(key)] = nil
            return
        }
        let captures = ids.compactMap { saleGroups[$0]?.capture }
        let confirmed = captures.filter { saleGroups[SaleId($0.dot)]?.ownStatus == .confirmed }
        let pool = confirmed.isEmpty ? captures : confirmed
        let standing = pool.min(by: hlcDotOrder)!
        for id in ids where id.dot != standing.dot { saleGroups[id]?.voided = true }
        let rule = confirmed.isEmpty ? "earliest-capture-stands" : "confirmed-capture-stands"
        conflictsByScope[.paymentCode(key)] = [ConflictRecord(
            .duplicatePaymentCode, rule: rule, events: ids.map(\.dot),
            outcome: "sale \(standing.dot) stands; \(ids.filter { $0.dot != standing.dot }.map { "\($0.dot)" }.joined(separator: ",")) void-duplicate")]
    }

    private mutating func recomputeSale(_ id: SaleId, _ g: [SaleId: SaleGroup].Index, ownConflicts: [ConflictRecord]) {
        let (capture, status, saleTickets) = saleGroups.values[g].viewInputs()
        var records = ownConflicts
        let confirmed = status == .confirmed

        struct Entry {
            let id: TicketId
            let request: RefundRequest
            let event: Event
            let own: TicketStatus
            var shown: TicketStatus
            let notes: Int
        }
        var entries: [Entry] = []
        for t in saleTickets {
            guard let tg = ticketGroups[t], let req = tg.request, case .refundRequested(let r) = req.body,
                  r.sale == id else { continue }
            let m = TicketRules.own(request: req, events: tg.statusEvents, saleConfirmed: confirmed)
            conflictsByScope[.ticket(t)] = m.conflicts.isEmpty ? nil : m.conflicts.sorted()
            entries.append(Entry(id: t, request: r, event: req, own: m.status, shown: m.status, notes: tg.notes.count))
        }

        var refunded: Int64 = 0
        switch status {
        case .awaitingCapture:
            for i in entries.indices { entries[i].shown = .pendingSale }
        case .declined, .expired, .voidDuplicate:
            for i in entries.indices where ![.cancelled, .rejected, .completed].contains(entries[i].own) {
                entries[i].shown = .held(.saleNotPaid)
                records.append(ConflictRecord(
                    .saleNotPaid, rule: "refund-on-unpaid-sale", events: [entries[i].id.dot, id.dot],
                    outcome: "ticket \(entries[i].id.dot) held(sale-not-paid): sale is \(status)"))
            }
        case .captured, .confirmed:
            let saleAmount = capture!.amount
            // Refund tickets that still claim money: completed first, then by (request HLC, dot).
            let order = entries.indices.filter {
                entries[$0].request.resolution == .refund && ![.cancelled, .rejected].contains(entries[$0].own)
            }.sorted { a, b in
                let ca = entries[a].own == .completed, cb = entries[b].own == .completed
                if ca != cb { return ca }
                return hlcDotOrder(entries[a].event, entries[b].event)
            }
            var total: Int64 = 0
            var counted: [Dot] = []
            for i in order {
                let amount = entries[i].request.amount
                let fits = amount.currency == saleAmount.currency && total + amount.minorUnits <= saleAmount.minorUnits
                if fits {
                    total += amount.minorUnits
                    counted.append(entries[i].id.dot)
                    if entries[i].own == .completed { refunded += amount.minorUnits }
                } else {
                    if entries[i].own != .held(.dispute) { entries[i].shown = .held(.overRefund) }
                    records.append(ConflictRecord(
                        .overRefund, rule: "over-refund-order", events: [entries[i].id.dot] + counted,
                        outcome: "ticket \(entries[i].id.dot) \(entries[i].shown) not counted: \(total) + "
                            + "\(amount.minorUnits) \(amount.currency) > sale \(saleAmount.minorUnits) \(saleAmount.currency)"))
                }
            }
        }

        for e in entries {
            tickets[e.id] = TicketView(id: e.id, sale: id, status: e.shown, ownStatus: e.own, amount: e.request.amount,
                                       resolution: e.request.resolution, reason: e.request.reason,
                                       requestHLC: e.event.hlc, noteCount: e.notes)
        }
        sales[id] = SaleView(id: id, status: status, amount: capture?.amount, wallet: capture?.wallet,
                             duplicateKey: capture?.duplicateKey, tickets: entries.map(\.id),
                             refundedMinor: refunded)
        conflictsByScope[.sale(id)] = records.isEmpty ? nil : records.sorted()
    }
}
