import Foundation
import PosLoad
import PosTestSupport
import Testing
@testable import PosCentral
@testable import PosCentralFiles
@testable import PosHTTPClient
@testable import PosLedger
@testable import PosTerminal
@testable import PosWire
#if canImport(Glibc)
import Glibc
#endif

/// Thousands of connections that never send a request, against a server in a
/// process of its own (`sync-load --serve`), so its descriptors and memory are
/// its own to count: the connections in this process, the server's in the child,
/// each within the descriptor limit.
@Suite("server: idle connections")
struct ServerIdleConnectionTests {
    /// POSSYNC_IDLE_CONNECTIONS for more (10,000 needs `ulimit -n` above 10,256 in both processes).
    static let connections = ProcessInfo.processInfo.environment["POSSYNC_IDLE_CONNECTIONS"].flatMap(Int.init).map { max(1, $0) } ?? 2_000

    @Test("2,000 idle connections are closed by the request-arrival deadline while a sync succeeds; the server's descriptors return to where they were")
    func idleConnections() async throws {
        let n = Self.connections
        // Room for the connections (in this process, and in the child, which inherits the limit).
        var limit = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        if limit.rlim_cur < rlim_t(n + 256), limit.rlim_max >= rlim_t(n + 256) {
            limit.rlim_cur = rlim_t(n + 256)
            setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        }
        try #require(limit.rlim_cur >= rlim_t(n + 256), "\(n) idle connections need a descriptor limit of \(n + 256); it is \(limit.rlim_cur) (hard \(limit.rlim_max))")
        let executable = try #require(builtExecutable("sync-load"), "sync-load not found next to the test bundle; build with `swift build --build-tests`")

        let world = try ServerWorld(terminals: 1)
        var rng = SplitMix64(seed: 53)
        for _ in 0..<3 { try world.capture(0, 1500, rng: &rng) }
        try world.central.close()  // the child serves it
        // Long enough for every connection to be open, and the sync done, before the first is closed.
        let arrivalMillis = 3_000 + n / 2
        let server = try ServerProcess(executable: executable, arguments: [
            "--serve", world.dir.path + "/central", "--port", "0",
            "--request-arrival-millis", "\(arrivalMillis)", "--connections-max", "\(n + 64)",
        ])
        let baseline = server.openDescriptors
        let w = world
        let outcome = try await blocking { () -> IdleOutcome in
            var o = IdleOutcome()
            let started = Date()
            let sockets = try (0..<n).map { _ in try LoopbackSocket(port: server.port) }
            o.openSeconds = Date().timeIntervalSince(started)
            // The server holds them (it accepts in the background: wait for it, briefly).
            waitUntil(seconds: 5) { o.heldByServer = server.openDescriptors - baseline; return o.heldByServer >= n }
            // A terminal syncs meanwhile.
            let transport = try HTTPSyncTransport(server: "http://127.0.0.1:\(server.port)", enrollment: w.enrollments[0])
            o.pushed = try w.terminals[0].sync(via: transport, wallMillis: w.tick()).pushed
            transport.close()
            o.syncedAfterSeconds = Date().timeIntervalSince(started)
            // Every idle connection is closed by the server, none before the deadline.
            var open = Array(sockets.indices)
            let giveUp = Date(timeIntervalSinceNow: Double(arrivalMillis) / 1000 + 20)
            while !open.isEmpty, Date() < giveUp {
                var fds = open.map { pollfd(fd: sockets[$0].fd, events: Int16(POLLIN), revents: 0) }
                guard poll(&fds, nfds_t(fds.count), 100) > 0 else { continue }
                var still: [Int] = []
                for (k, i) in open.enumerated() {
                    if fds[k].revents != 0, sockets[i].isClosedByPeer(waitMillis: 0) {
                        o.closed += 1
                        o.firstClosedSeconds = o.firstClosedSeconds ?? Date().timeIntervalSince(started)
                    } else {
                        still.append(i)
                    }
                }
                open = still
            }
            o.lastClosedSeconds = Date().timeIntervalSince(started)
            // The server's descriptors: back to where they were (its side closes at once; allow it a moment).
            waitUntil(seconds: 5) { o.descriptorsAfter = server.openDescriptors; return o.descriptorsAfter == baseline }
            return o
        }
        let peakMiB = Double(server.peakRSSKiB) / 1024
        let status = server.stop()
        print("idle connections: \(n) opened in \(String(format: "%.2f", outcome.openSeconds)) s, \(outcome.heldByServer) held by the server; "
              + "sync done at \(String(format: "%.2f", outcome.syncedAfterSeconds)) s; closed from \(String(format: "%.2f", outcome.firstClosedSeconds ?? -1)) s "
              + "to \(String(format: "%.2f", outcome.lastClosedSeconds)) s (deadline \(arrivalMillis) ms); server descriptors \(baseline) before, "
              + "\(outcome.descriptorsAfter) after; server peak RSS \(String(format: "%.1f", peakMiB)) MiB")
        #expect(outcome.heldByServer >= n, "the server held \(outcome.heldByServer) of \(n) connections")
        #expect(outcome.pushed == 3)
        #expect(outcome.syncedAfterSeconds < Double(arrivalMillis) / 1000, "the sync ended after the idle connections' deadline: it did not run among them")
        #expect(outcome.closed == n, "\(outcome.closed) of \(n) idle connections closed by the server")
        #expect((outcome.firstClosedSeconds ?? 0) >= Double(arrivalMillis) / 1000 * 0.9, "a connection was closed before its deadline")
        #expect(outcome.descriptorsAfter == baseline, "the server holds \(outcome.descriptorsAfter) descriptors; \(baseline) before the connections")
        #expect(status == 0, "the server exited with status \(status) on SIGTERM")
        let central = try FileCentralStore.open(directory: world.dir.path + "/central")
        defer { try? central.close() }
        let problems = try ReplicaCheck.problems(central: central, terminals: world.terminals)
        #expect(problems.isEmpty, "\(problems)")
    }
}

/// Checks `condition` every 10 ms until it holds or `seconds` have passed.
private func waitUntil(seconds: Double, _ condition: () -> Bool) {
    let until = Date(timeIntervalSinceNow: seconds)
    while !condition(), Date() < until { usleep(10_000) }
}

private struct IdleOutcome: Sendable {
    var openSeconds = 0.0
    var heldByServer = 0
    var pushed = 0
    var syncedAfterSeconds = 0.0
    var closed = 0
    var firstClosedSeconds: Double?
    var lastClosedSeconds = 0.0
    var descriptorsAfter = 0
}
