import Foundation
import Metrics
import PosLedger
import Prometheus

/// The server's metrics (sync-protocol.md, "HTTP", "Observability"), kept in
/// this instance's own Prometheus registry through swift-metrics (no global
/// bootstrap, so servers in one test process do not mix their counts) and
/// exposed at `/metrics` in the Prometheus text format.
public final class ServerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory

    public init() {
        registry = PrometheusCollectorRegistry()
        var f = PrometheusMetricsFactory(registry: registry)
        f.defaultDurationHistogramBuckets = [.milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
                                             .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
                                             .seconds(1), .seconds(2), .seconds(5), .seconds(10)]
        factory = f
        // Present from the start, at zero.
        Counter(label: "possync_events_accepted_total", factory: factory).increment(by: 0)
        Counter(label: "possync_events_duplicate_total", factory: factory).increment(by: 0)
    }

    /// One answered request: counted by route and status, timed, its bytes added.
    func request(route: String, status: Int, seconds: Duration, bytesIn: Int, bytesOut: Int) {
        Counter(label: "possync_http_requests_total", dimensions: [("route", route), ("status", "\(status)")], factory: factory).increment()
        Metrics.Timer(label: "possync_http_request_duration_seconds", dimensions: [("route", route)], factory: factory).record(duration: seconds)
        Counter(label: "possync_http_received_bytes_total", dimensions: [("route", route)], factory: factory).increment(by: bytesIn)
        Counter(label: "possync_http_sent_bytes_total", dimensions: [("route", route)], factory: factory).increment(by: bytesOut)
    }

    func pushed(accepted: Int, duplicates: Int) {
        Counter(label: "possync_events_accepted_total", factory: factory).increment(by: accepted)
        Counter(label: "possync_events_duplicate_total", factory: factory).increment(by: duplicates)
    }

    /// Conflict records central's fold made, by kind and rule.
    func conflicts(_ records: [ConflictRecord]) {
        for r in records {
            Counter(label: "possync_conflicts_total", dimensions: [("kind", r.kind.rawValue), ("rule", r.rule)], factory: factory).increment()
        }
    }

    /// After a pull: how many central journal positions the terminal is still behind, and when it was last served.
    func lag(terminal: ReplicaId, positions: UInt64, wallMillis: Int64) {
        Gauge(label: "possync_sync_lag_positions", dimensions: [("terminal", "\(terminal.rawValue)")], factory: factory).record(Double(positions))
        Gauge(label: "possync_terminal_last_pull_timestamp_seconds", dimensions: [("terminal", "\(terminal.rawValue)")], factory: factory)
            .record(Double(wallMillis) / 1000)
    }

    /// The outcomes of notification delivery attempts (sync-protocol.md, "Notifications").
    public static let notificationOutcomes = ["delivered", "failed", "dead-letter"]

    /// Shows every notification outcome from the start, at zero (when the server delivers notifications).
    public func notificationOutcomesAtZero() {
        for outcome in Self.notificationOutcomes {
            Counter(label: "possync_notification_deliveries_total", dimensions: [("outcome", outcome)], factory: factory).increment(by: 0)
        }
    }

    /// A notification delivery attempt and its outcome: `delivered`, `failed` (to be retried) or `dead-letter`.
    public func notification(outcome: String) {
        precondition(Self.notificationOutcomes.contains(outcome), "unknown notification outcome \(outcome)")
        Counter(label: "possync_notification_deliveries_total", dimensions: [("outcome", outcome)], factory: factory).increment()
    }

    /// The Prometheus text exposition of every metric.
    public func exposition() -> [UInt8] {
        var out: [UInt8] = []
        registry.emit(into: &out)
        return out
    }
}
