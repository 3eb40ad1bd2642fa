import Foundation
import Hummingbird
import HummingbirdTesting
import PosLoad
import PosTestSupport
import Testing
@testable import PosCentral
@testable import PosHTTPClient
@testable import PosLedger
@testable import PosServer
@testable import PosTerminal
@testable import PosWire

/// Many terminals at once against one live server on loopback. Correctness
/// under load only: the figures (throughput, latency, the server's memory in
/// a process of its own) are `sync-load`'s (BENCHMARKS.md, "sync-load").
@Suite("server under load")
struct ServerLoadTests {
    /// How long the terminals work, in seconds: POSSYNC_LOAD_SECONDS for longer.
    static let seconds = ProcessInfo.processInfo.environment["POSSYNC_LOAD_SECONDS"].flatMap(Double.init).map { max(1, $0) } ?? 30
    static let terminals = 50

    @Test("50 terminals, each on its own thread, record and sync over HTTP for 30 s: no error or retry, nothing lost or duplicated, every replica converges, the server's bounds hold")
    func fiftyTerminals() async throws {
        let world = try ServerWorld(terminals: Self.terminals)
        let (load, final) = try await world.application().test(.live) { client in
            let server = "http://127.0.0.1:\(client.port!)"
            let w = world
            let outcome = try await blocking {
                let http = try w.enrollments.map { try HTTPSyncTransport(server: server, enrollment: $0) }
                defer { for t in http { t.close() } }
                let measured = http.map { t in MeasuredTransport(inner: t, wireBytes: { t.wireBytesSent + t.wireBytesReceived }) }
                let load = SyncLoad.run(terminals: w.terminals, transports: measured, seconds: Self.seconds, wallMillis: { w.tick() })
                let retries = http.reduce(0) { $0 + $1.retries }
                var final = retries == 0 ? [] : ["\(retries) HTTP requests were retried (on loopback with no faults, none should be)"]
                final += SyncLoad.converge(terminals: w.terminals, transports: http, wallMillis: { w.tick() })
                return (load, final)
            }
            // Bounds the server keeps, whatever the load: no request left admitted, nonces per terminal capped.
            #expect(world.service.gate.inFlight == 0)
            #expect(world.service.outstandingNonces <= Self.terminals * world.service.settings.noncesPerTerminalMax)
            return outcome
        }
        print("load: \(Self.terminals) terminals for \(String(format: "%.1f", load.seconds)) s: \(load.eventsRecorded) events recorded, "
              + "\(load.syncs) syncs, \(load.pushes) pushes, p50 push \(String(format: "%.1f", load.pushMillis(0.5))) ms, p99 \(String(format: "%.1f", load.pushMillis(0.99))) ms")
        #expect(load.errorCount == 0, "\(load.errorCount) errors: \(load.errors)")
        #expect(final.isEmpty, "\(final)")
        // Every terminal got work done, and everything recorded reached central.
        #expect(load.syncs >= Self.terminals && load.eventsPushed == load.eventsRecorded, "\(load.syncs) syncs, \(load.eventsPushed) of \(load.eventsRecorded) events pushed")
        let problems = try ReplicaCheck.problems(central: world.central, terminals: world.terminals)
        #expect(problems.isEmpty, "\(problems.prefix(10))")
    }
}
