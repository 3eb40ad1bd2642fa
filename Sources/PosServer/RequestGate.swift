import Foundation
import PosLedger

/// Admission of protocol requests (sync-protocol.md, "HTTP", "Limits"): one
/// request per terminal at a time (another is answered 409), and at most
/// `SyncServerSettings.requestsInFlightMax` over all terminals working on or
/// waiting for the store (more are answered 429). Both are answered with
/// `Retry-After` before the body is decoded, so a refused request costs
/// nothing but its bytes.
final class RequestGate: @unchecked Sendable {
    enum Refusal: Equatable {
        /// This terminal already has a request in flight.
        case terminalBusy
        /// The server-wide bound is reached.
        case serverBusy
    }

    private let lock = NSLock()
    private var busyTerminals: Set<ReplicaId> = []
    private let inFlightMax: Int

    init(inFlightMax: Int) {
        precondition(inFlightMax > 0)
        self.inFlightMax = inFlightMax
    }

    /// Admits a request of `terminal`, or says why not. Every admitted request is `leave`d once.
    func enter(_ terminal: ReplicaId) -> Refusal? {
        lock.withLock {
            if busyTerminals.contains(terminal) { return .terminalBusy }
            if busyTerminals.count >= inFlightMax { return .serverBusy }
            busyTerminals.insert(terminal)
            return nil
        }
    }

    func leave(_ terminal: ReplicaId) {
        _ = lock.withLock { busyTerminals.remove(terminal) }
    }

    var inFlight: Int { lock.withLock { busyTerminals.count } }
}
