import PosLedger
import PosReconcile

/// The report's CSV files, for spreadsheets (docs/nightly.md, "The report"):
/// one row per terminal and currency, one row per discrepancy. Amounts are
/// integer minor units beside their currency; times ISO 8601 UTC; a value
/// holding a comma, a quote or a line end is quoted (RFC 4180).
enum ReportCSV {
    static let terminalsFile = "terminals.csv"
    static let discrepanciesFile = "discrepancies.csv"

    static let terminalColumns = [
        "merchant", "terminal", "currency",
        "captured_count", "captured_minor", "confirmed_count", "confirmed_minor", "declined_count", "declined_minor",
        "expired_count", "expired_minor", "void_duplicate_count", "void_duplicate_minor",
        "refunds_requested_count", "refunds_requested_minor", "refunds_approved_count", "refunds_approved_minor",
        "refunds_held_count", "refunds_held_minor", "refunds_completed_count", "refunds_completed_minor",
        "refunds_rejected_count", "refunds_cancelled_count", "refunds_escalated_count", "refunds_pending_sale_count", "exchanges",
        "net_minor", "conflicts", "acknowledged_through", "last_event", "sync_lag_minutes", "silent", "clock_off", "clock_offset_minutes", "sequence_gaps",
    ]

    static func terminals(_ r: NightlyReport) -> String {
        var rows = [terminalColumns]
        for m in r.merchants {
            for t in m.terminals {
                let gaps = t.sequenceGaps.map { "\($0.kind) \($0.from)-\($0.through)" }.joined(separator: "; ")
                let tail = ["\(t.conflicts.map(\.count).reduce(0, +))", "\(t.acknowledgedThrough)", t.lastEventMillis.map(WallClock.format) ?? "",
                            t.syncLagMillis.map { "\($0 / Millis.perMinute)" } ?? "", "\(t.silent)", "\(t.clockAhead || t.clockSkewedAtSync)",
                            t.clockOffsetMillis.map { "\($0 / Millis.perMinute)" } ?? "", gaps]
                // A terminal with nothing yet still has its row.
                for c in t.currencies.isEmpty ? [CurrencyFigures(currency: "")] : t.currencies {
                    let k = c.captures, f = c.refunds
                    let tallies = [k.captured, k.confirmed, k.declined, k.expired, k.voidDuplicate, f.requested, f.approved, f.held, f.completed]
                    rows.append([m.merchant, "\(t.terminal)", c.currency] + tallies.flatMap { ["\($0.count)", "\($0.amountMinor)"] }
                                + ["\(f.rejected.count)", "\(f.cancelled.count)", "\(f.escalated.count)", "\(f.pendingSale.count)", "\(c.exchanges)",
                                   "\(c.netMinor)"] + tail)
                }
            }
        }
        return text(rows)
    }

    static let discrepancyColumns = [
        "merchant", "kind", "terminal", "order_id", "refund_id", "currency", "difference_minor",
        "ledger_status", "ledger_amount_minor", "ledger_refund_minor", "ledger_net_minor", "ledger_at",
        "statement_status", "statement_amount_minor", "statement_refund_minor", "statement_net_minor", "statement_at", "statement_line", "acquirer_id",
    ]

    static func discrepancies(_ r: NightlyReport) -> String {
        var rows = [discrepancyColumns]
        func side(_ s: DiscrepancySide?) -> [String] {
            [s?.status ?? "", s?.amountMinor.map { "\($0)" } ?? "", s?.refundAmountMinor.map { "\($0)" } ?? "", s?.netMinor.map { "\($0)" } ?? "",
             s?.atMillis.map(WallClock.format) ?? ""]
        }
        for m in r.merchants {
            for d in m.discrepancies {
                rows.append([d.merchant, d.kind.rawValue, d.terminal.map { "\($0)" } ?? "", d.orderId ?? "", d.refundId ?? "", d.currency, "\(d.differenceMinor)"]
                            + side(d.ledger) + side(d.statement) + [d.statement?.line.map { "\($0)" } ?? "", d.statement?.acquirerId ?? ""])
            }
        }
        return text(rows)
    }

    static func text(_ rows: [[String]]) -> String {
        rows.map { $0.map(field).joined(separator: ",") }.joined(separator: "\n") + "\n"
    }

    /// A value as a CSV field: quoted, with quotes doubled, when it holds a comma, a quote or a line end.
    static func field(_ v: String) -> String {
        guard v.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return v }
        return "\"" + v.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
