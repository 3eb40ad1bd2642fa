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

/// The one table: a row per measure, HTTP beside in-process, and their ratio.
func printTable(http: SideResult, local: SideResult, terminals: Int, seconds: Int) {
    func ratio(_ a: Double, _ b: Double) -> String { b > 0 && a > 0 ? String(format: "%.2fx", a / b) : "" }
    func row(_ measure: String, _ h: Double, _ l: Double, decimals: Int = 0) {
        print("| \(measure) | \(number(h, decimals)) | \(number(l, decimals)) | \(ratio(h, l)) |")
    }
    func mib(_ kib: Int) -> Double { Double(kib) / 1024 }
    func perEvent(_ bytes: Int, _ r: SyncLoadReport) -> Double { Double(bytes) / Double(max(1, r.eventsPushed)) }
    let (h, l) = (http.report, local.report)
    print("| \(terminals) terminals, \(seconds) s each side | HTTP over loopback, server in a child process | in-process transport, central in the terminals' process | HTTP / in-process |")
    print("|---|---|---|---|")
    row("pushes/s", Double(h.pushes) / h.seconds, Double(l.pushes) / l.seconds)
    row("events/s (taken by central)", Double(h.eventsPushed) / h.seconds, Double(l.eventsPushed) / l.seconds)
    row("syncs/s (hello, push, pull)", Double(h.syncs) / h.seconds, Double(l.syncs) / l.seconds)
    row("push exchange latency p50 (ms)", h.pushMillis(0.5), l.pushMillis(0.5), decimals: 2)
    row("push exchange latency p99 (ms)", h.pushMillis(0.99), l.pushMillis(0.99), decimals: 2)
    print("| server peak RSS (VmHWM, MiB) | \(number(mib(http.serverPeakRSSKiB ?? 0), 1)) | — (central runs in the terminals' process: next row) |  |")
    row("terminals' process peak RSS (VmHWM, MiB; in-process: central included)", mib(http.ownPeakRSSKiB), mib(local.ownPeakRSSKiB), decimals: 1)
    row("wire bytes per event: push requests and replies (HTTP: heads included)", perEvent(h.pushBytes, h), perEvent(l.pushBytes, l), decimals: 1)
    row("wire bytes per event: every exchange (nonce, hello, push, pull; each event pulled by \(terminals - 1) terminals)",
        perEvent(h.bytes, h), perEvent(l.bytes, l), decimals: 1)
    row("requests (HTTP: nonce requests included)", Double(http.requests), Double(local.requests))
    print("| errors: failed records or syncs; HTTP retries | \(h.errorCount); \(http.retries) | \(l.errorCount); — |  |")
    print("| lost, duplicated or diverged after the final syncs | \(http.problems.count) | \(local.problems.count) |  |")
}

/// The HTTP side with the server's central on the file store beside the same with it on PostgreSQL.
func printPostgresTable(file: SideResult, postgres: SideResult, terminals: Int, seconds: Int) {
    func ratio(_ a: Double, _ b: Double) -> String { b > 0 && a > 0 ? String(format: "%.2fx", a / b) : "" }
    func row(_ measure: String, _ p: Double, _ f: Double, decimals: Int = 0) {
        print("| \(measure) | \(number(p, decimals)) | \(number(f, decimals)) | \(ratio(p, f)) |")
    }
    let (p, f) = (postgres.report, file.report)
    print("")
    print("| \(terminals) terminals, \(seconds) s each side, HTTP over loopback | server's central on PostgreSQL | server's central on the file store | PostgreSQL / file store |")
    print("|---|---|---|---|")
    row("pushes/s", Double(p.pushes) / p.seconds, Double(f.pushes) / f.seconds)
    row("events/s (taken by central)", Double(p.eventsPushed) / p.seconds, Double(f.eventsPushed) / f.seconds)
    row("syncs/s (hello, push, pull)", Double(p.syncs) / p.seconds, Double(f.syncs) / f.seconds)
    row("push exchange latency p50 (ms)", p.pushMillis(0.5), f.pushMillis(0.5), decimals: 2)
    row("push exchange latency p99 (ms)", p.pushMillis(0.99), f.pushMillis(0.99), decimals: 2)
    row("server peak RSS (VmHWM, MiB; PostgreSQL's own processes not counted)", Double(postgres.serverPeakRSSKiB ?? 0) / 1024,
        Double(file.serverPeakRSSKiB ?? 0) / 1024, decimals: 1)
    print("| errors: failed records or syncs; HTTP retries | \(p.errorCount); \(postgres.retries) | \(f.errorCount); \(file.retries) |  |")
    print("| lost, duplicated or diverged after the final syncs | \(postgres.problems.count) | \(file.problems.count) |  |")
}
