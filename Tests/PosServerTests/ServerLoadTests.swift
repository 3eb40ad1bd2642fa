import Foundation
import PosCentralFiles
import PosHTTPClient
import PosLoad
import PosTestSupport
import Testing

/// Many terminals at once against one server on loopback, the server in a
/// process of its own (`sync-load --serve`) so its memory and descriptors are
/// its own to measure. Correctness and bounds only: the figures (throughput,
/// latency) are `sync-load`'s (BENCHMARKS.md, "sync-load").
@Suite("server under load")
struct ServerLoadTests {
    /// How long the terminals work, in seconds: POSSYNC_LOAD_SECONDS for longer.
    static let seconds = ProcessInfo.processInfo.environment["POSSYNC_LOAD_SECONDS"].flatMap(Double.init).map { max(1, $0) } ?? 10
    static let terminals = 50
    /// What the server may grow by over the run, in KiB: a fixed part (the event loops' buffers, the
    /// thread pool, the metrics' histograms) and a part per event central holds (its fold of the ledger,
    /// the key filter, the frame index, the journal's pages). The run fails above it.
    static let rssGrowthFixedKiBMax = 32 << 10
    static let rssGrowthPerEventKiBMax = 4

    @Test("50 terminals, each on its own thread, record and sync over HTTP: no error or retry, nothing lost or duplicated, every replica converges, the server's memory and descriptors stay bounded",
          .timeLimit(.minutes(5)))
    func fiftyTerminals() async throws {
        let executable = try #require(builtExecutable("sync-load"), "sync-load not found next to the test bundle; build with `swift build --build-tests`")
        let world = try ServerWorld(terminals: Self.terminals)
        try world.central.close()  // the child serves it
        let server = try ServerProcess(executable: executable, arguments: ["--serve", world.dir.path + "/central", "--port", "0"])
        let startRSSKiB = server.rssKiB
        let startDescriptors = server.openDescriptors
        let url = "http://127.0.0.1:\(server.port)"
        let w = world
        let (load, final, retries) = try await blocking {
            let http = try w.enrollments.map { try HTTPSyncTransport(server: url, enrollment: $0) }
            let measured = http.map { t in MeasuredTransport(inner: t, wireBytes: { t.wireBytesSent + t.wireBytesReceived }) }
            let load = SyncLoad.run(terminals: w.terminals, transports: measured, seconds: Self.seconds, wallMillis: { w.tick() })
            let final = SyncLoad.converge(terminals: w.terminals, transports: http, wallMillis: { w.tick() })
            let retries = http.reduce(0) { $0 + $1.retries }
            for t in http { t.close() }
            return (load, final, retries)
        }
        // Every client connection closed: the server's descriptors return to where they were.
        var descriptors = server.openDescriptors
        let until = Date(timeIntervalSinceNow: 5)
        while descriptors != startDescriptors, Date() < until {
            usleep(10_000)
            descriptors = server.openDescriptors
        }
        let health = try LoopbackSocket(port: server.port).exchange("GET /health HTTP/1.1\r\nHost: x\r\n\r\n", waitMillis: 2_000)
        let peakKiB = server.peakRSSKiB
        let status = server.stop()
        let events = load.eventsRecorded
        let growthKiB = peakKiB - startRSSKiB
        let boundKiB = (Self.rssGrowthFixedKiBMax + Self.rssGrowthPerEventKiBMax * events) * memoryBoundFactor
        print("load: \(Self.terminals) terminals for \(String(format: "%.1f", load.seconds)) s: \(events) events recorded, \(load.syncs) syncs, "
              + "\(load.pushes) pushes, \(load.exchanges) exchanges, p50 push \(String(format: "%.1f", load.pushMillis(0.5))) ms, "
              + "p99 \(String(format: "%.1f", load.pushMillis(0.99))) ms; \(load.errorCount) errors, \(retries) retries; server RSS \(startRSSKiB / 1024) MiB at start, "
              + "peak \(peakKiB / 1024) MiB (growth \(growthKiB / 1024) MiB, bound \(boundKiB / 1024) MiB); descriptors \(startDescriptors) before, \(descriptors) after")
        #expect(load.errorCount == 0, "\(load.errorCount) errors: \(load.errors)")
        #expect(retries == 0, "\(retries) HTTP requests were retried (on loopback with no faults, none should be)")
        #expect(final.isEmpty, "\(final)")
        // Every terminal got work done, and everything recorded reached central during the run.
        #expect(load.syncs >= Self.terminals && load.eventsPushed == events, "\(load.syncs) syncs, \(load.eventsPushed) of \(events) events pushed")
        #expect(growthKiB > 0 && growthKiB <= boundKiB, "the server grew by \(growthKiB) KiB for \(events) events; at most \(boundKiB) KiB")
        #expect(descriptors == startDescriptors, "the server holds \(descriptors) descriptors; \(startDescriptors) before the terminals connected")
        #expect(health.hasPrefix("HTTP/1.1 200") && health.contains("\"requestsInFlight\":0"), "\(health)")
        #expect(status == 0, "the server exited with status \(status) on SIGTERM")
        let central = try FileCentralStore.open(directory: world.dir.path + "/central")
        defer { try? central.close() }
        let problems = try ReplicaCheck.problems(central: central, terminals: world.terminals)
        #expect(problems.isEmpty, "\(problems.prefix(10))")
    }
}
