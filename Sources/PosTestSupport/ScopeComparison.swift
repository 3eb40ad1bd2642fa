import PosLedger

/// Compares a terminal's folded state with central's for every sale in the
/// terminal's relay scope (sync-protocol.md, "Relay scope"): the sale's view,
/// its tickets' views, its conflict records, the events held of it and of its
/// tickets, and its key group. Used by the simulator and the scope tests.
public struct ScopeComparison {
    /// Sales compared (central's sales captured at or after the floor).
    public private(set) var compared = 0
    /// What differs, one line per difference, naming the sale.
    public private(set) var differences: [String] = []

    public init(central: LedgerState, terminal: LedgerState, floorMillis: UInt64) {
        for (id, sale) in central.sales.sorted(by: { $0.key < $1.key }) {
            guard let capture = central.capture(of: id), RelayScope.holds(capture: capture.hlc, floorMillis: Int64(floorMillis)) else { continue }
            compared += 1
            func differ<T: Equatable>(_ what: String, _ c: T, _ t: T) {
                if c != t { differences.append("sale \(id.dot) (captured at \(capture.hlc.millis), floor \(floorMillis)): \(what): central \(c), terminal \(t)") }
            }
            differ("view", Optional(sale), terminal.sales[id])
            differ("events", central.eventDots(of: id), terminal.eventDots(of: id))
            differ("conflicts", central.conflicts(of: id), terminal.conflicts(of: id))
            if case .saleCaptured(let c) = capture.body {
                differ("key group", central.captures(withKey: c.duplicateKey), terminal.captures(withKey: c.duplicateKey))
            }
            for ticket in sale.tickets {
                differ("ticket \(ticket.dot)", central.tickets[ticket], terminal.tickets[ticket])
                differ("ticket \(ticket.dot) events", central.eventDots(of: ticket), terminal.eventDots(of: ticket))
            }
        }
    }
}
