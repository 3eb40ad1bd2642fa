import Foundation
import PosCentralFiles
import PosHTTPClient
import PosLoad
import PosTestSupport
import Testing
import PosLedger
#if canImport(Glibc)
import Glibc
#endif

/// Connections that never send a request, against a server in a process of
/// its own (`sync-load --serve`), so its descriptors and memory are its own to
/// count: the connections' ends in this process, the server's in the child.
@Suite("server: idle connections", .serialized)
struct ServerIdleConnectionTests {
    /// Idle connections of the first test: POSSYNC_IDLE_CONNECTIONS for more (10,000 raises the
    /// descriptor limit to 10,256 in both processes; the hard limit must allow it).
    static let connections = ProcessInfo.processInfo.environment["POSSYNC_IDLE_CONNECTIONS"].flatMap(Int.init).map { max(1, $0) } ?? 2_000
    /// What the server may grow by while it holds them, in KiB: a fixed part, and a part per connection
    /// (its channel, pipeline and buffers; about 15 KiB each in a debug build: 29 MiB for 2,000).
    static let rssGrowthFixedKiBMax = 16 << 10
    static let rssGrowthPerConnectionKiBMax = 32

    @Test("2,000 idle connections are held until the request-arrival deadline, then closed; a terminal syncs among them; the server's memory and descriptors stay bounded",
          .timeLimit(.minutes(3)))
    func heldUntilTheDeadline() async throws {
        let n = Self.connections
        try raiseDescriptorLimit(to: n + 256)
        // Long enough to open them all (paced, about 1,000 a second here) and sync before the first closes.
        let deadlineMillis = 5_000 + n
        let idle = try IdleServer(deadlineMillis: deadlineMillis, connectionsMax: n + 64)
        let startRSSKiB = idle.server.rssKiB
        let (o, sampled) = try await blocking { () -> (IdleOutcome, (peak: Int, last: Int)) in
            let sampler = DescriptorSampler(idle)
            var o = IdleOutcome()
            let started = Date()
            let (sockets, opened) = try openPaced(n, to: idle, window: 100)
            o.openSeconds = Date().timeIntervalSince(started)
            waitUntil(seconds: 5) { idle.server.openDescriptors - idle.baseline >= n }
            o.heldAtSync = idle.server.openDescriptors - idle.baseline
            o.pushed = try idle.sync()
            o.syncEnded = Date()
            o.closedAt = awaitClosed(sockets, until: Date(timeIntervalSinceNow: Double(deadlineMillis) / 1000 + 10))
            o.closedAfter = zip(o.closedAt, opened).map { c, t in c.map { $0.timeIntervalSince(t) } }
            waitUntil(seconds: 5) { idle.server.openDescriptors == idle.baseline }
            return (o, (sampler.stop(), idle.server.openDescriptors - idle.baseline))
        }
        let growthKiB = idle.server.peakRSSKiB - startRSSKiB
        let status = idle.server.stop()
        let after = o.closedAfter.compactMap { $0 }
        let firstClosed = o.closedAt.compactMap { $0 }.min() ?? .distantFuture
        let boundKiB = (Self.rssGrowthFixedKiBMax + Self.rssGrowthPerConnectionKiBMax * n) * memoryBoundFactor
        print("idle connections: \(n) opened in \(String(format: "%.2f", o.openSeconds)) s, \(o.heldAtSync) held by the server at the sync "
              + "(\(sampled.peak) at most); each closed \(String(format: "%.2f", after.min() ?? -1))...\(String(format: "%.2f", after.max() ?? -1)) s after it opened "
              + "(deadline \(deadlineMillis) ms); server descriptors \(idle.baseline) before, \(sampled.last) after; RSS growth \(growthKiB / 1024) MiB (bound \(boundKiB / 1024) MiB)")
        #expect(o.heldAtSync == n && sampled.peak >= n, "the server held \(o.heldAtSync) of \(n) connections at the sync, \(sampled.peak) at most")
        #expect(o.pushed == 3)
        #expect(o.syncEnded < firstClosed, "the sync ended after the first idle connection was closed: it did not run among them all")
        #expect(after.count == n, "\(after.count) of \(n) idle connections closed by the server")
        #expect(after.allSatisfy { $0 >= Double(deadlineMillis - 50) / 1000 }, "a connection was closed before its deadline: \(after.min() ?? -1) s")
        // Thousands falling due at once take the server a while to close (10,000: up to 4.5 s late in a debug build).
        let lateMax = 5 + Double(n) / 2_000
        #expect(after.allSatisfy { $0 <= Double(deadlineMillis) / 1000 + lateMax }, "a connection was closed more than \(lateMax) s after its deadline: \(after.max() ?? -1) s")
        #expect(sampled.peak <= n + 4 && sampled.last == 0, "server descriptors above its baseline: \(sampled.peak) at most, \(sampled.last) at the end")
        #expect(growthKiB > 0 && growthKiB <= boundKiB, "the server grew by \(growthKiB) KiB holding \(n) connections; at most \(boundKiB) KiB")
        #expect(status == 0, "the server exited with status \(status) on SIGTERM")
        try idle.expectConverged()
    }

    @Test("above connectionsMax, connections wait in the listen backlog: the server never holds more, closes each after its deadline, and serves a terminal's sync in its turn",
          .timeLimit(.minutes(2)))
    func aboveTheLimit() async throws {
        // 300 idle connections, 64 at a time (the rest, 236, fit the listen backlog of 256).
        let n = 300, limit = 64, deadlineMillis = 1_000
        try raiseDescriptorLimit(to: n + 256)
        let idle = try IdleServer(deadlineMillis: deadlineMillis, connectionsMax: limit)
        let (o, sampled) = try await blocking { () -> (IdleOutcome, (peak: Int, last: Int)) in
            let sampler = DescriptorSampler(idle)
            var o = IdleOutcome()
            let (sockets, opened) = try openPaced(n, to: idle, window: n)  // all at once: the backlog takes them
            // The sync waits in the backlog behind them, on a thread of its own while this one watches them close.
            let synced = DispatchSemaphore(value: 0)
            nonisolated(unsafe) var sync: (pushed: Int, ended: Date)?
            Thread {
                sync = (try? idle.sync()).map { ($0, Date()) }
                synced.signal()
            }.start()
            o.closedAt = awaitClosed(sockets, until: Date(timeIntervalSinceNow: 30))
            if synced.wait(timeout: .now() + 30) == .success { (o.pushed, o.syncEnded) = sync ?? (0, .distantFuture) }
            o.closedAfter = zip(o.closedAt, opened).map { c, t in c.map { $0.timeIntervalSince(t) } }
            waitUntil(seconds: 5) { idle.server.openDescriptors == idle.baseline }
            return (o, (sampler.stop(), idle.server.openDescriptors - idle.baseline))
        }
        let status = idle.server.stop()
        let after = o.closedAfter.compactMap { $0 }
        let lastClosed = o.closedAt.compactMap { $0 }.max() ?? .distantPast
        print("above the limit: \(n) idle connections, connectionsMax \(limit): the server held \(sampled.peak) at most; closed \(String(format: "%.2f", after.min() ?? -1))"
              + "...\(String(format: "%.2f", after.max() ?? -1)) s after opening (deadline \(deadlineMillis) ms); the sync pushed \(o.pushed)")
        #expect(sampled.peak <= limit + 4 && sampled.peak >= limit, "the server held \(sampled.peak) connections at most; its limit is \(limit)")
        #expect(after.count == n, "\(after.count) of \(n) idle connections closed by the server")
        #expect(after.allSatisfy { $0 >= Double(deadlineMillis - 50) / 1000 }, "a connection was closed before its deadline: \(after.min() ?? -1) s")
        #expect(o.pushed == 3)
        #expect(o.syncEnded < lastClosed, "the sync ended after every idle connection: it was not served among them")
        #expect(sampled.last == 0 && status == 0, "descriptors above the baseline at the end: \(sampled.last); exit status \(status)")
        try idle.expectConverged()
    }
}

/// A server in a child process over a central store, and one terminal with 3 events to push.
private final class IdleServer: @unchecked Sendable {
    let world: ServerWorld
    let server: ServerProcess
    /// The server's descriptors before any connection (listener, store files, event loops).
    let baseline: Int

    init(deadlineMillis: Int, connectionsMax: Int) throws {
        let executable = try #require(builtExecutable("sync-load"), "sync-load not found next to the test bundle; build with `swift build --build-tests`")
        world = try ServerWorld(terminals: 1)
        var rng = SplitMix64(seed: 53)
        for _ in 0..<3 { try world.capture(0, 1500, rng: &rng) }
        try world.central.close()  // the child serves it
        server = try ServerProcess(executable: executable, arguments: [
            "--serve", world.dir.path + "/central", "--port", "0",
            "--request-arrival-millis", "\(deadlineMillis)", "--connections-max", "\(connectionsMax)",
        ])
        baseline = server.openDescriptors
    }

    /// The terminal's sync over HTTP; returns the events it pushed.
    func sync() throws -> Int {
        let transport = try HTTPSyncTransport(server: "http://127.0.0.1:\(server.port)", enrollment: world.enrollments[0])
        defer { transport.close() }
        return try world.terminals[0].sync(via: transport, wallMillis: world.tick()).pushed
    }

    /// Central (reopened once the server stopped) holds what the terminal holds.
    func expectConverged() throws {
        let central = try FileCentralStore.open(directory: world.dir.path + "/central")
        defer { try? central.close() }
        let problems = try ReplicaCheck.problems(central: central, terminals: world.terminals)
        #expect(problems.isEmpty, "\(problems)")
    }
}

/// Samples the server's open descriptors (above its baseline) every 20 ms on a thread of its own.
private final class DescriptorSampler: @unchecked Sendable {
    private let lock = NSLock()
    private var peak = 0, stopped = false
    private let done = DispatchSemaphore(value: 0)

    init(_ idle: IdleServer) {
        Thread { [self] in
            while !lock.withLock({ stopped }) {
                let held = idle.server.openDescriptors - idle.baseline
                lock.withLock { peak = max(peak, held) }
                usleep(20_000)
            }
            done.signal()
        }.start()
    }

    /// Stops sampling; returns the most held at once.
    func stop() -> Int {
        lock.withLock { stopped = true }
        done.wait()
        return lock.withLock { peak }
    }
}

/// Opens `n` connections, never more than `window` ahead of what the server accepted (a full
/// listen backlog drops connection attempts, which then wait a second to try again). Returns the
/// sockets and when each connected.
private func openPaced(_ n: Int, to idle: IdleServer, window: Int) throws -> ([LoopbackSocket], [Date]) {
    var sockets: [LoopbackSocket] = [], opened: [Date] = []
    sockets.reserveCapacity(n)
    for i in 0..<n {
        if i % window == 0 { waitUntil(seconds: 5) { idle.server.openDescriptors - idle.baseline >= i - window } }
        sockets.append(try LoopbackSocket(port: idle.server.port))
        opened.append(Date())
    }
    return (sockets, opened)
}

/// Waits for the server to close every socket (a read sees the end); when each closed (within 10 ms),
/// nil for those still open at `until`. Polls every socket still open at most every 10 ms, so that
/// thousands closing at once cost this process a pass over them per batch, not per socket.
private func awaitClosed(_ sockets: [LoopbackSocket], until: Date) -> [Date?] {
    var closedAt = [Date?](repeating: nil, count: sockets.count)
    var open = Array(sockets.indices)
    while !open.isEmpty, Date() < until {
        var fds = open.map { pollfd(fd: sockets[$0].fd, events: Int16(POLLIN), revents: 0) }
        guard poll(&fds, nfds_t(fds.count), 100) > 0 else { continue }
        usleep(10_000)  // let a batch gather
        guard poll(&fds, nfds_t(fds.count), 0) > 0 else { continue }
        let now = Date()
        var still: [Int] = []
        for (k, i) in open.enumerated() {
            if fds[k].revents != 0, sockets[i].isClosedByPeer(waitMillis: 0) { closedAt[i] = now } else { still.append(i) }
        }
        open = still
    }
    return closedAt
}

/// Raises this process's soft descriptor limit to `count` (children inherit it), within the hard limit.
private func raiseDescriptorLimit(to count: Int) throws {
    var limit = rlimit()
    getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
    if limit.rlim_cur < rlim_t(count), limit.rlim_max >= rlim_t(count) {
        limit.rlim_cur = rlim_t(count)
        setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
    }
    try #require(limit.rlim_cur >= rlim_t(count), "the test needs a descriptor limit of \(count); it is \(limit.rlim_cur) (hard \(limit.rlim_max))")
}

/// Checks `condition` every 10 ms until it holds or `seconds` have passed.
private func waitUntil(seconds: Double, _ condition: () -> Bool) {
    let until = Date(timeIntervalSinceNow: seconds)
    while !condition(), Date() < until { usleep(10_000) }
}

private struct IdleOutcome: Sendable {
    var openSeconds = 0.0
    var heldAtSync = 0
    var pushed = 0
    var syncEnded = Date.distantFuture
    var closedAt: [Date?] = []
    /// Seconds from each connection's opening to its closing by the server (nil: still open).
    var closedAfter: [Double?] = []
}
