import Dispatch
import Foundation
import PosHTTPClient

/// Sets a stop signal on SIGTERM or SIGINT (what a long-running command stops on cleanly),
/// until cancelled; the signals' default action is back after `cancel()`.
final class SignalStop {
    private var sources: [any DispatchSourceSignal] = []
    private let signals: [Int32] = [SIGTERM, SIGINT]

    init(_ stop: StopSignal) {
        for s in signals {
            signal(s, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: s, queue: .global())
            source.setEventHandler { stop.stop() }
            source.resume()
            sources.append(source)
        }
    }

    func cancel() {
        for s in sources { s.cancel() }
        for s in signals { signal(s, SIG_DFL) }
    }
}
