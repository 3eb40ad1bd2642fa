import PosLedger
import PosReconcile

/// A page being written.
struct HTMLText {
    var text = ""
    mutating func raw(_ s: String) { text += s }
}

extension ReportHTML {
    /// Text as HTML: `& < > " '` escaped (everything a report shows goes through here).
    static func esc(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// "331.50 CNY" (the currency's decimals); the minor units when the code is not a currency.
    static func money(_ minor: Int64, _ code: String) -> String {
        guard let c = try? Currency(code) else { return "\(minor) \(code)" }
        return AmountFormat.format(minorUnits: minor, currency: c) + " " + code
    }

    /// One side of a discrepancy, in words.
    static func side(_ s: DiscrepancySide?, _ currency: String) -> String {
        guard let s else { return "absent" }
        var parts: [String] = []
        if let st = s.status { parts.append(st) }
        if let a = s.amountMinor { parts.append(money(a, currency)) }
        if let r = s.refundAmountMinor { parts.append("refund " + money(r, currency)) }
        if let n = s.netMinor { parts.append("net " + money(n, currency)) }
        if let l = s.line { parts.append("line \(l)") }
        if let at = s.atMillis { parts.append(WallClock.format(at)) }
        return parts.joined(separator: ", ")
    }

    /// A table of text cells (escaped), or `empty` in a paragraph when there is no row.
    static func table(_ h: inout HTMLText, _ cls: String, _ head: [String], _ rows: [[String]], empty: String) {
        guard !rows.isEmpty else {
            if !empty.isEmpty { h.raw("<p class=\"\(cls) empty\">\(esc(empty))</p>\n") }
            return
        }
        h.raw("<table class=\"\(cls)\">\n<tr>" + head.map { "<th>\(esc($0))</th>" }.joined() + "</tr>\n")
        for r in rows { h.raw("<tr>" + r.map { "<td>\(esc($0))</td>" }.joined() + "</tr>\n") }
        h.raw("</table>\n")
    }

    static let style = """
        body { font: 14px/1.4 system-ui, sans-serif; color: #111; background: #fff; margin: 2em auto; max-width: 70em; padding: 0 1em; }
        h1 { font-size: 1.6em; margin: 0 0 .3em; } h2 { border-bottom: 2px solid #333; padding-bottom: .2em; margin-top: 1.6em; } h3 { margin: 1.2em 0 .4em; }
        table { border-collapse: collapse; margin: .4em 0; font-variant-numeric: tabular-nums; }
        th, td { border: 1px solid #999; padding: .25em .5em; text-align: left; vertical-align: top; }
        th { background: #eee; } td[data-minor] { text-align: right; white-space: nowrap; }
        .attention { background: #fde2e2; border: 2px solid #b00; padding: .5em; font-weight: bold; }
        .ok { background: #e2f5e2; border: 2px solid #070; padding: .5em; }
        svg { display: block; margin: .4em 0; } svg text { font: 12px system-ui, sans-serif; fill: #111; }
        .sales { fill: #2b6cb0; } .refunds { fill: #dd6b20; } .lag { fill: #4a5568; } .silent { fill: #c53030; }
        footer { margin-top: 2em; color: #555; font-size: .9em; }
        @media print {
          body { margin: 0; max-width: none; font-size: 11px; } section { break-inside: avoid-page; }
          .attention, .ok, th, svg rect { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
        }
        """
}

/// The report's charts, inline SVG: one row of bars per terminal, scaled to the largest value.
enum ReportCharts {
    static func salesAndRefunds(_ m: MerchantSection, currency: String) -> String {
        let rows = m.terminals.map { t -> (UInt32, Tally, Tally) in
            let c = t.currencies.first { $0.currency == currency }
            return (t.terminal, c?.captures.confirmed ?? Tally(), c?.refunds.completed ?? Tally())
        }
        let most = max(1, rows.map { max($0.1.amountMinor, $0.2.amountMinor) }.max() ?? 1)
        var bars: [String] = []
        for (i, (terminal, sales, refunds)) in rows.enumerated() {
            let y = i * ReportHTML.barRowPixels + 4
            bars.append(label(y + 14, "terminal \(terminal)"))
            bars.append(bar(y, sales.amountMinor, most, "sales", "sales \(terminal)", "confirmed \(sales.count) · \(ReportHTML.money(sales.amountMinor, currency))"))
            bars.append(bar(y + 14, refunds.amountMinor, most, "refunds", "refunds \(terminal)",
                            "refunded \(refunds.count) · \(ReportHTML.money(refunds.amountMinor, currency))"))
        }
        return svg(rows.count, "Confirmed sales (blue) and completed refunds (orange) per terminal of \(m.merchant), \(currency)", bars)
    }

    static func syncLag(_ m: MerchantSection, silentDays: Int) -> String {
        let most = max(Int64(silentDays) * Millis.perDay, m.terminals.compactMap(\.syncLagMillis).max() ?? 1)
        var bars: [String] = []
        for (i, t) in m.terminals.enumerated() {
            let y = i * ReportHTML.barRowPixels + 4
            bars.append(label(y + 14, "terminal \(t.terminal)"))
            let lag = t.syncLagMillis ?? most
            let what = t.syncLagMillis.map { "\(WallClock.duration($0)) since its last event" } ?? "never heard from"
            bars.append(bar(y + 6, lag, most, t.silent ? "silent" : "lag", "lag \(t.terminal)", what + (t.silent ? " (silent)" : "")))
        }
        return svg(m.terminals.count, "Time from each terminal's newest event to the end of the day; red: silent over \(silentDays) days", bars)
    }

    static func svg(_ rows: Int, _ title: String, _ parts: [String]) -> String {
        let height = max(1, rows) * ReportHTML.barRowPixels + 8
        return "<svg role=\"img\" width=\"\(ReportHTML.chartWidthPixels)\" height=\"\(height)\" "
            + "viewBox=\"0 0 \(ReportHTML.chartWidthPixels) \(height)\"><title>\(ReportHTML.esc(title))</title>\n" + parts.joined(separator: "\n") + "\n</svg>\n"
    }

    static func label(_ y: Int, _ text: String) -> String { "<text x=\"0\" y=\"\(y)\">\(ReportHTML.esc(text))</text>" }

    /// A bar `value / most` of the chart's bar area wide, with its value written after it.
    static func bar(_ y: Int, _ value: Int64, _ most: Int64, _ cls: String, _ id: String, _ text: String) -> String {
        let area = Int64(ReportHTML.chartWidthPixels - ReportHTML.labelPixels - 200)
        let width = max(value > 0 ? 1 : 0, Int(value.clampedMultiplied(by: area) / most))
        return "<rect class=\"\(cls)\" data-bar=\"\(ReportHTML.esc(id))\" x=\"\(ReportHTML.labelPixels)\" y=\"\(y)\" width=\"\(width)\" height=\"12\"/>"
            + "<text x=\"\(ReportHTML.labelPixels + width + 4)\" y=\"\(y + 10)\">\(ReportHTML.esc(text))</text>"
    }
}

extension Int64 {
    /// A product that stops at the bounds instead of trapping.
    func clampedMultiplied(by other: Int64) -> Int64 {
        let (p, o) = multipliedReportingOverflow(by: other)
        return o ? ((self < 0) != (other < 0) ? .min : .max) : p
    }
}
