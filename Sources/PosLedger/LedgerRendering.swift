// The canonical textual rendering of a folded state: one line per sale,
// ticket, waiting ticket, unknown or refused event and conflict, each section
// sorted by id. Two replicas with the same events render byte-identical text.

extension LedgerState {
    public var canonicalText: String {
        var lines: [String] = []
        for id in sales.keys.sorted() {
            let s = sales[id]!
            var line = "sale \(id.dot) \(s.status)"
            if let amount = s.amount { line += " amount=\(amount.minorUnits) \(amount.currency)" }
            if let wallet = s.wallet { line += " wallet=\(wallet)" }
            if let key = s.duplicateKey { line += " key=\(key.hex)" }
            line += " refunded=\(s.refundedMinor)"
            line += " tickets=[\(s.tickets.map { "\($0.dot)" }.joined(separator: ","))]"
            lines.append(line)
        }
        for id in tickets.keys.sorted() {
            let t = tickets[id]!
            lines.append("ticket \(id.dot) sale=\(t.sale.dot) \(t.status) own=\(t.ownStatus) "
                + "\(t.resolution) amount=\(t.amount.minorUnits) \(t.amount.currency) reason=\(t.reason.description) "
                + "hlc=\(t.requestHLC) notes=\(t.noteCount)")
        }
        for id in ticketsAwaitingRequest {
            let g = ticketGroups[id]!
            lines.append("ticket \(id.dot) awaiting-request events=\(g.statusEvents.count) notes=\(g.notes.count)")
        }
        for dot in unknownEvents.keys.sorted() {
            lines.append("unknown-event \(dot) type=\(unknownEvents[dot]!.body.typeByte)")
        }
        for dot in unauthorized.keys.sorted() {
            lines.append("refused-event \(dot) \(unauthorized[dot]!.body.kind!)")
        }
        for c in conflicts { lines.append(c.description) }
        return lines.joined(separator: "\n") + (lines.isEmpty ? "" : "\n")
    }

    /// Number of distinct events the state holds (including unknown and refused ones).
    public var eventCount: Int {
        var n = unknownEvents.count + unauthorized.count
        for g in saleGroups.values { n += g.outcomes.count + (g.capture == nil ? 0 : 1) }
        for g in ticketGroups.values { n += g.statusEvents.count + g.notes.count + (g.request == nil ? 0 : 1) }
        return n
    }
}
