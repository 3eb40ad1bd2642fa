import PosLedger
import PosReconcile

/// The report as one self-contained page (docs/nightly.md, "The report"):
/// per-merchant totals, per-terminal bars for sales and refunds and for sync
/// lag (inline SVG), conflicts by rule, held tickets, the discrepancy table,
/// the night's bundles, the statement and the loss log. No script, no
/// network resource, readable printed. Figures carry `data-*` attributes
/// (merchant, currency, field) so a test reads them back from the DOM.
enum ReportHTML {
    static let file = "report.html"
    /// Width of the charts, in CSS pixels; a bar row's height.
    static let chartWidthPixels = 640
    static let barRowPixels = 34
    static let labelPixels = 90

    static func render(_ r: NightlyReport) -> String {
        var h = HTMLText()
        h.raw("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
        h.raw("<title>PosSync nightly report \(esc(r.date))</title>\n<style>\(style)</style>\n</head>\n<body>\n")
        header(&h, r)
        summary(&h, r)
        for m in r.merchants { merchant(&h, m, r) }
        bundles(&h, r)
        statement(&h, r)
        losses(&h, r)
        h.raw("<footer>Written by <code>possync nightly</code> from central's store, the inbox and the statement alone: the same night gives the same page.</footer>\n")
        h.raw("</body>\n</html>\n")
        return h.text
    }

    static func header(_ h: inout HTMLText, _ r: NightlyReport) {
        h.raw("<header>\n<h1>Nightly report <span id=\"date\">\(esc(r.date))</span></h1>\n")
        h.raw("<p>Central <code>\(esc(r.central))</code>; ages count to \(esc(WallClock.format(r.asOfMillis)))")
        if let m = r.merchantFilter { h.raw("; merchant <strong>\(esc(m))</strong> only") }
        h.raw(".</p>\n")
        let s = r.summary
        h.raw(s.attention
            ? "<p id=\"status\" class=\"attention\" data-attention=\"true\">Attention: \(esc(attentionReasons(s)))</p>\n"
            : "<p id=\"status\" class=\"ok\" data-attention=\"false\">Nothing to look at.</p>\n")
        h.raw("</header>\n")
    }

    static func attentionReasons(_ s: Summary) -> String {
        var parts: [String] = []
        if s.bundlesRejected > 0 { parts.append("\(s.bundlesRejected) rejected bundle(s)") }
        if s.statement == StatementStatusName.refused { parts.append("the statement was refused") }
        if s.discrepancies > 0 { parts.append("\(s.discrepancies) discrepancy(ies)") }
        if s.unresolvedLosses > 0 { parts.append("\(s.unresolvedLosses) unresolved loss(es)") }
        return parts.joined(separator: ", ")
    }

    static func summary(_ h: inout HTMLText, _ r: NightlyReport) {
        let s = r.summary
        h.raw("<section id=\"summary\">\n<h2>Summary</h2>\n<table class=\"summary\">\n")
        let rows: [(String, String, String)] = [
            ("bundlesImported", "Bundles imported", "\(s.bundlesImported)"), ("bundlesRejected", "Bundles rejected", "\(s.bundlesRejected)"),
            ("statement", "Statement", s.statement), ("discrepancies", "Discrepancies", "\(s.discrepancies)"),
            ("terminals", "Terminals", "\(s.terminals)"), ("silentTerminals", "Silent terminals (over \(r.silentDaysMin) days)", "\(s.silentTerminals)"),
            ("clockAheadTerminals", "Terminals with a clock off", "\(s.clockAheadTerminals)"),
            ("terminalsWithGaps", "Terminals with sequence gaps", "\(s.terminalsWithGaps)"), ("heldTickets", "Held tickets", "\(s.heldTickets)"),
            ("conflicts", "Conflict records", "\(s.conflicts)"), ("unresolvedLosses", "Unresolved losses", "\(s.unresolvedLosses)"),
        ]
        for (field, label, value) in rows { h.raw("<tr><th>\(esc(label))</th><td data-field=\"\(field)\">\(esc(value))</td></tr>\n") }
        h.raw("</table>\n</section>\n")
    }

    static func merchant(_ h: inout HTMLText, _ m: MerchantSection, _ r: NightlyReport) {
        let id = esc(m.merchant)
        h.raw("<section class=\"merchant\" id=\"merchant-\(id)\" data-merchant=\"\(id)\">\n<h2>Merchant \(id)</h2>\n")
        h.raw("<h3>Totals</h3>\n")
        totals(&h, m.currencies, merchant: m.merchant)
        for c in Set(m.terminals.flatMap { $0.currencies.map(\.currency) }).sorted() {
            h.raw("<h3>Sales and refunds per terminal, \(esc(c))</h3>\n")
            h.raw(ReportCharts.salesAndRefunds(m, currency: c))
        }
        h.raw("<h3>Sync lag per terminal</h3>\n")
        h.raw(ReportCharts.syncLag(m, silentDays: r.silentDaysMin))
        terminalTable(&h, m)
        h.raw("<h3>Conflicts by rule</h3>\n")
        table(&h, "conflicts", ["Kind", "Rule", "Records"], m.conflicts.map { [$0.kind, $0.rule, "\($0.count)"] }, empty: "No conflict records.")
        h.raw("<h3>Held tickets, oldest first</h3>\n")
        table(&h, "held", ["Ticket", "Sale", "Terminal", "Reason", "Amount", "Requested"],
              m.heldTickets.map { [$0.ticket, $0.sale, "\($0.terminal)", $0.reason, money($0.amountMinor, $0.currency), WallClock.format($0.requestedMillis)] },
              empty: "No held ticket.")
        if m.heldTicketsNotListed > 0 { h.raw("<p>\(m.heldTicketsNotListed) more held tickets not listed.</p>\n") }
        h.raw("<h3>Discrepancies with the statement</h3>\n")
        table(&h, "discrepancies", ["Kind", "Terminal", "Order", "Refund", "Ledger", "Statement", "Difference"], m.discrepancies.map { d in
            [d.kind.rawValue, d.terminal.map { "\($0)" } ?? "", d.orderId ?? "", d.refundId ?? "", side(d.ledger, d.currency), side(d.statement, d.currency),
             money(d.differenceMinor, d.currency)]
        }, empty: r.statement == nil ? "No statement was given." : "None.")
        h.raw("</section>\n")
    }

    static func totals(_ h: inout HTMLText, _ currencies: [CurrencyFigures], merchant: String) {
        let columns: [(String, String, (CurrencyFigures) -> Tally)] = [
            ("captured", "Captured (not yet forwarded)", { $0.captures.captured }), ("confirmed", "Confirmed", { $0.captures.confirmed }),
            ("declined", "Declined", { $0.captures.declined }), ("expired", "Expired", { $0.captures.expired }),
            ("voidDuplicate", "Void duplicate", { $0.captures.voidDuplicate }), ("refundsCompleted", "Refunds completed", { $0.refunds.completed }),
            ("refundsHeld", "Refunds held", { $0.refunds.held }),
            ("refundsOpen", "Refunds open", { var t = $0.refunds.requested; t.merge($0.refunds.approved); t.merge($0.refunds.escalated); return t }),
        ]
        h.raw("<table class=\"totals\">\n<tr><th>Currency</th>" + columns.map { "<th>\(esc($0.1))</th>" }.joined() + "<th>Net</th></tr>\n")
        for c in currencies {
            let attrs = "data-merchant=\"\(esc(merchant))\" data-currency=\"\(esc(c.currency))\""
            h.raw("<tr><td>\(esc(c.currency))</td>")
            for (field, _, tally) in columns {
                let t = tally(c)
                h.raw("<td \(attrs) data-field=\"\(field)\" data-count=\"\(t.count)\" data-minor=\"\(t.amountMinor)\">\(t.count) · \(esc(money(t.amountMinor, c.currency)))</td>")
            }
            h.raw("<td \(attrs) data-field=\"net\" data-minor=\"\(c.netMinor)\"><strong>\(esc(money(c.netMinor, c.currency)))</strong></td></tr>\n")
        }
        if currencies.isEmpty { h.raw("<tr><td colspan=\"\(columns.count + 2)\">No sale yet.</td></tr>\n") }
        h.raw("</table>\n")
    }

    static func terminalTable(_ h: inout HTMLText, _ m: MerchantSection) {
        table(&h, "terminals", ["Terminal", "Events held", "Last event", "Sync lag", "Silent", "Clock", "Sequence gaps"], m.terminals.map { t in
            ["\(t.terminal)", "1...\(t.acknowledgedThrough)", t.lastEventMillis.map(WallClock.format) ?? "never",
             t.syncLagMillis.map(WallClock.duration) ?? "—", t.silent ? "SILENT" : "no", clock(t),
             t.sequenceGaps.isEmpty ? "none" : t.sequenceGaps.map { "\($0.kind) \($0.from)...\($0.through)" }.joined(separator: "; ")]
        }, empty: "No terminal.")
    }

    /// "ok", "OFF: ahead 2d 3h 0m at its last sync", "OFF: its newest event is dated after the day".
    static func clock(_ t: TerminalSection) -> String {
        if let o = t.clockOffsetMillis { return "OFF: \(o >= 0 ? "ahead" : "behind") \(WallClock.duration(o == .min ? .max : abs(o))) at its last sync" }
        if t.clockAhead { return "OFF: its newest event is dated after the day" }
        return "ok"
    }

    static func bundles(_ h: inout HTMLText, _ r: NightlyReport) {
        h.raw("<section id=\"bundles\">\n<h2>The night's bundles</h2>\n")
        table(&h, "bundles", ["File", "Outcome", "Terminal", "Merchant", "Sequence", "Reason"], r.bundles.map { b in
            [b.file, b.outcome, b.terminal.map { "\($0)" } ?? "", b.merchant ?? "",
             b.firstSequence.map { "\($0)...\(b.lastSequence ?? $0)" } ?? "", b.reason.map { "\($0): \(b.detail ?? "")" } ?? ""]
        }, empty: "The inbox held no bundle tonight.")
        h.raw("</section>\n")
    }

    static func statement(_ h: inout HTMLText, _ r: NightlyReport) {
        h.raw("<section id=\"statement\">\n<h2>The acquirer's statement</h2>\n")
        guard let s = r.statement else {
            h.raw("<p>No statement was given: nothing was reconciled.</p>\n</section>\n")
            return
        }
        h.raw("<p><code>\(esc(s.file))</code>: <strong data-field=\"statementStatus\">\(esc(s.status))</strong>\(s.rows.map { ", \($0) rows" } ?? "").</p>\n")
        table(&h, "settlement", ["Merchant", "Currency", "Ledger paid", "Ledger refunded", "Ledger net", "Statement paid", "Statement refunded",
                                 "Statement net", "Fees", "Difference"], s.totals.map { t in
            [t.merchant, t.currency] + [t.ledgerPaidMinor, t.ledgerRefundedMinor, t.ledgerNetMinor, t.statementPaidMinor, t.statementRefundedMinor,
                                        t.statementNetMinor, t.statementFeeMinor, t.differenceMinor].map { money($0, t.currency) }
        }, empty: "Nothing reconciled.")
        if !s.problems.isEmpty {
            table(&h, "problems", ["Line", "Field", "Problem", "What"], s.problems.map { ["\($0.line)", $0.field ?? "", $0.kind.rawValue, $0.message] }, empty: "")
        }
        h.raw("</section>\n")
    }

    static func losses(_ h: inout HTMLText, _ r: NightlyReport) {
        h.raw("<section id=\"losses\">\n<h2>Central's loss log</h2>\n")
        table(&h, "losses", ["#", "Kind", "Terminal", "Sequence", "Resolved", "Note"], r.losses.map { l in
            ["\(l.id)", l.kind, l.terminal.map { "\($0)" } ?? "", l.from.map { "\($0)...\(l.through ?? $0)" } ?? "", l.resolved ? "yes" : "NO", l.note]
        }, empty: "No loss recorded.")
        h.raw("</section>\n")
    }
}
