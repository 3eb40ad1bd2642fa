import Foundation
import PosLoad

/// `v` with `decimals` digits after the point and thousands grouped by commas
/// (Foundation's NumberFormatter on Linux did not keep to the digit counts).
func number(_ v: Double, _ decimals: Int = 0) -> String {
    let text = String(format: "%.\(decimals)f", v)
    let parts = text.split(separator: ".", maxSplits: 1)
    var digits = String(parts[0])
    let negative = digits.hasPrefix("-")
    if negative { digits.removeFirst() }
    var grouped = ""
    for (i, d) in digits.reversed().enumerated() {
        if i > 0, i % 3 == 0 { grouped.append(",") }
        grouped.append(d)
    }
    return (negative ? "-" : "") + String(grouped.reversed()) + (parts.count > 1 ? "." + parts[1] : "")
}

/// One row of a two-column table: the measure, both figures and their ratio (empty when either is 0).
func comparisonRow(_ measure: String, _ a: Double, _ b: Double, decimals: Int = 0) {
    let ratio = b > 0 && a > 0 ? String(format: "%.2fx", a / b) : ""
    print("| \(measure) | \(number(a, decimals)) | \(number(b, decimals)) | \(ratio) |")
}

/// The rows both tables have: throughput and push latency of two sides.
func loadRows(_ a: SyncLoadReport, _ b: SyncLoadReport) {
    comparisonRow("pushes/s", Double(a.pushes) / a.seconds, Double(b.pushes) / b.seconds)
    comparisonRow("events/s (taken by central)", Double(a.eventsPushed) / a.seconds, Double(b.eventsPushed) / b.seconds)
    comparisonRow("syncs/s (hello, push, pull)", Double(a.syncs) / a.seconds, Double(b.syncs) / b.seconds)
    comparisonRow("push exchange latency p50 (ms)", a.pushMillis(0.5), b.pushMillis(0.5), decimals: 2)
    comparisonRow("push exchange latency p99 (ms)", a.pushMillis(0.99), b.pushMillis(0.99), decimals: 2)
}

/// The one table: a row per measure, HTTP beside in-process, and their ratio.
func printTable(http: SideResult, local: SideResult, terminals: Int, seconds: Int) {
    func mib(_ kib: Int) -> Double { Double(kib) / 1024 }
    func perEvent(_ bytes: Int, _ r: SyncLoadReport) -> Double { Double(bytes) / Double(max(1, r.eventsPushed)) }
    let (h, l) = (http.report, local.report)
    print("| \(terminals) terminals, \(seconds) s each side | HTTP over loopback, server in a child process | in-process transport, central in the terminals' process | HTTP / in-process |")
    print("|---|---|---|---|")
    loadRows(h, l)
    print("| server peak RSS (VmHWM, MiB) | \(number(mib(http.serverPeakRSSKiB ?? 0), 1)) | — (central runs in the terminals' process: next row) |  |")
    comparisonRow("terminals' process peak RSS (VmHWM, MiB; in-process: central included)", mib(http.ownPeakRSSKiB), mib(local.ownPeakRSSKiB), decimals: 1)
    comparisonRow("wire bytes per event: push requests and replies (HTTP: heads included)", perEvent(h.pushBytes, h), perEvent(l.pushBytes, l), decimals: 1)
    comparisonRow("wire bytes per event: every exchange (nonce, hello, push, pull; each event pulled by \(terminals - 1) terminals)",
        perEvent(h.bytes, h), perEvent(l.bytes, l), decimals: 1)
    comparisonRow("requests (HTTP: nonce requests included)", Double(http.requests), Double(local.requests))
    print("| errors: failed records or syncs; HTTP retries | \(h.errorCount); \(http.retries) | \(l.errorCount); — |  |")
    print("| lost, duplicated or diverged after the final syncs | \(http.problems.count) | \(local.problems.count) |  |")
}

/// The HTTP side with the server's central on the file store beside the same with it on PostgreSQL.
func printPostgresTable(file: SideResult, postgres: SideResult, terminals: Int, seconds: Int) {
    let (p, f) = (postgres.report, file.report)
    print("")
    print("| \(terminals) terminals, \(seconds) s each side, HTTP over loopback | server's central on PostgreSQL | server's central on the file store | PostgreSQL / file store |")
    print("|---|---|---|---|")
    loadRows(p, f)
    comparisonRow("server peak RSS (VmHWM, MiB; PostgreSQL's own processes not counted)", Double(postgres.serverPeakRSSKiB ?? 0) / 1024,
        Double(file.serverPeakRSSKiB ?? 0) / 1024, decimals: 1)
    print("| errors: failed records or syncs; HTTP retries | \(p.errorCount); \(postgres.retries) | \(f.errorCount); \(file.retries) |  |")
    print("| lost, duplicated or diverged after the final syncs | \(postgres.problems.count) | \(file.problems.count) |  |")
}
