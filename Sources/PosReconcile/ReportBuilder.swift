import PosLedger

/// Builds the nightly report from central's state streamed part by part
/// (`add`), never the whole state at once: it keeps per terminal and currency
/// tallies, per rule counts, the oldest held tickets (bounded) and the
/// reconciler's statement. Every sale and ticket is filed under the terminal
/// that made the sale (a ticket too, wherever it was opened: its money is the
/// sale's), and that terminal's merchant.
public struct ReportBuilder {
    /// An enrolled terminal, as central knows it.
    public struct Terminal: Sendable {
        public var terminal: UInt32
        public var merchant: String
        public var acknowledgedThrough: UInt64
        /// Its clock minus central's at the last sync central found it off and kept (nil: in bound, or never found off).
        public var clockOffsetMillis: Int64?
        public init(terminal: UInt32, merchant: String, acknowledgedThrough: UInt64, clockOffsetMillis: Int64?) {
            self.terminal = terminal
            self.merchant = merchant
            self.acknowledgedThrough = acknowledgedThrough
            self.clockOffsetMillis = clockOffsetMillis
        }
    }

    struct Figures {
        var currencies: [String: CurrencyFigures] = [:]
        var conflicts: [RuleKey: Int] = [:]
        var lastEventMillis: Int64?
        mutating func saw(_ millis: Int64) { lastEventMillis = max(lastEventMillis ?? millis, millis) }
        mutating func figures(_ currency: Currency, _ body: (inout CurrencyFigures) -> Void) {
            body(&currencies[currency.code, default: CurrencyFigures(currency: currency.code)])
        }
    }
    struct RuleKey: Hashable, Comparable {
        var kind: String, rule: String
        static func < (a: RuleKey, b: RuleKey) -> Bool { (a.kind, a.rule) < (b.kind, b.rule) }
    }
    struct Held { var dot: Dot; var ticket: HeldTicket }

    let terminals: [UInt32: Terminal]
    let merchantFilter: String?
    let day: Range<Int64>
    var figures: [UInt32: Figures] = [:]
    var centralConflicts: [RuleKey: Int] = [:]
    var held: [String: [Held]] = [:]
    var heldDropped: [String: Int] = [:]
    var reconciler: Reconciler?

    /// `day`: the report's date; `reconciler`: the statement to match (nil: none given).
    public init(terminals: [Terminal], merchant: String?, day: Range<Int64>, reconciler: Reconciler?) {
        self.terminals = Dictionary(uniqueKeysWithValues: terminals.map { ($0.terminal, $0) })
        merchantFilter = merchant
        self.day = day
        self.reconciler = reconciler
    }

    func merchant(of terminal: UInt32) -> String? {
        guard let m = terminals[terminal]?.merchant, merchantFilter == nil || merchantFilter == m else { return nil }
        return m
    }

    /// Adds one part of central's state (exact for what it holds; see `CentralStorage.forEachStatePart`).
    public mutating func add(_ part: LedgerState) {
        for (id, sale) in part.sales {
            let t = id.dot.replica.rawValue
            guard merchant(of: t) != nil else { continue }
            if let capture = part.capture(of: id) { figures[t, default: Figures()].saw(Int64(capture.hlc.millis)) }
            guard let amount = sale.amount else { continue }
            figures[t, default: Figures()].figures(amount.currency) { f in
                switch sale.status {
                case .captured: f.captures.captured.add(amount.minorUnits)
                case .confirmed: f.captures.confirmed.add(amount.minorUnits)
                case .declined: f.captures.declined.add(amount.minorUnits)
                case .expired: f.captures.expired.add(amount.minorUnits)
                case .voidDuplicate: f.captures.voidDuplicate.add(amount.minorUnits)
                case .awaitingCapture: f.captures.awaitingCapture.add(amount.minorUnits)
                }
            }
        }
        for (id, ticket) in part.tickets {
            // The events of a ticket are activity of whoever wrote them.
            if let request = part.request(of: id) { noteActivity(request) }
            for e in part.statusEvents(of: id) { noteActivity(e) }
            let t = ticket.sale.dot.replica.rawValue
            guard let m = merchant(of: t) else { continue }
            figures[t, default: Figures()].figures(ticket.amount.currency) { f in
                guard ticket.resolution == .refund else { f.exchanges += 1; return }
                let minor = ticket.amount.minorUnits
                switch ticket.status {
                case .requested: f.refunds.requested.add(minor)
                case .approved: f.refunds.approved.add(minor)
                case .rejected: f.refunds.rejected.add(minor)
                case .escalated: f.refunds.escalated.add(minor)
                case .cancelled: f.refunds.cancelled.add(minor)
                case .completed: f.refunds.completed.add(minor)
                case .held: f.refunds.held.add(minor)
                case .pendingSale: f.refunds.pendingSale.add(minor)
                }
            }
            if case .held(let reason) = ticket.status {
                holdTicket(m, Held(dot: id.dot, ticket: HeldTicket(ticket: id.ticketNumber.text, sale: "\(ticket.sale.dot)", terminal: t, reason: reason.rawValue,
                                                                   currency: ticket.amount.currency.code, amountMinor: ticket.amount.minorUnits,
                                                                   requestedMillis: Int64(ticket.requestHLC.millis))))
            }
        }
        for c in part.conflicts {
            let key = RuleKey(kind: c.kind.rawValue, rule: c.rule)
            if let t = c.events.first(where: { !$0.replica.isCentral })?.replica.rawValue {
                if merchant(of: t) != nil { figures[t, default: Figures()].conflicts[key, default: 0] += 1 }
            } else if merchantFilter == nil {
                centralConflicts[key, default: 0] += 1
            }
        }
        if reconciler != nil {
            let (payments, refunds) = LedgerDay.records(in: part, day: day) { terminals[$0.rawValue]?.merchant }
            for p in payments { reconciler!.add(p) }
            for r in refunds { reconciler!.add(r) }
        }
    }

    mutating func noteActivity(_ e: Event) {
        let t = e.dot.replica.rawValue
        if !e.dot.replica.isCentral, merchant(of: t) != nil { figures[t, default: Figures()].saw(Int64(e.hlc.millis)) }
    }

    /// Keeps the oldest held tickets per merchant, within the bound.
    mutating func holdTicket(_ merchant: String, _ h: Held) {
        held[merchant, default: []].append(h)
        if held[merchant]!.count >= 2 * ReportLimits.heldTicketsListedMax { trimHeld(merchant) }
    }

    mutating func trimHeld(_ merchant: String) {
        var list = held[merchant] ?? []
        list.sort { ($0.ticket.requestedMillis, $0.dot) < ($1.ticket.requestedMillis, $1.dot) }
        if list.count > ReportLimits.heldTicketsListedMax {
            heldDropped[merchant, default: 0] += list.count - ReportLimits.heldTicketsListedMax
            list.removeLast(list.count - ReportLimits.heldTicketsListedMax)
        }
        held[merchant] = list
    }
}
