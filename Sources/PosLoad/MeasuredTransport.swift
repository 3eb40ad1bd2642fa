import Foundation
import PosLedger
import PosWire

/// A transport that times and weighs what goes through it, for the load
/// figures: the time of every push exchange (retries included, as the
/// terminal waits them), and the bytes of every exchange. Bytes are the
/// inner transport's own count when it keeps one (`wireBytes`: an HTTP
/// transport counts heads and bodies as sent), else the encoded messages.
/// One terminal's: not for sharing between threads.
public final class MeasuredTransport: SyncTransport, @unchecked Sendable {
    public let inner: any SyncTransport
    private let wireBytes: (() -> Int)?
    /// Exchanges, and pushes among them.
    public private(set) var exchanges = 0
    public private(set) var pushes = 0
    /// Each push exchange's duration, in nanoseconds, in order.
    public private(set) var pushNanos: [UInt64] = []
    /// Bytes of every exchange, and of the push exchanges alone (both directions).
    public private(set) var bytes = 0
    public private(set) var pushBytes = 0

    /// `wireBytes`: the inner transport's running total of bytes sent and received (nil: count encoded messages).
    public init(inner: any SyncTransport, wireBytes: (() -> Int)? = nil) {
        self.inner = inner
        self.wireBytes = wireBytes
    }

    public func exchange(_ request: SyncMessage) throws(SyncError) -> SyncMessage {
        let before = wireBytes?() ?? 0
        let started = DispatchTime.now().uptimeNanoseconds
        var reply: SyncMessage?
        defer {
            let elapsed = DispatchTime.now().uptimeNanoseconds - started
            let moved = wireBytes.map { $0() - before } ?? (request.encoded().count + (reply?.encoded().count ?? 0))
            exchanges += 1
            bytes += moved
            if case .push = request {
                pushes += 1
                pushBytes += moved
                pushNanos.append(elapsed)
            }
        }
        reply = try inner.exchange(request)
        return reply!
    }
}
