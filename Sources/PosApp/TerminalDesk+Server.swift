import Foundation
import PosHTTPClient
import PosLedger
import PosTerminal
import PosWire

// `terminal sync --server`, `terminal sync --server --watch` and `terminal recover --server`:
// a terminal and central over HTTP (sync-protocol.md, "HTTP").

extension TerminalDesk {
    /// What a sync over HTTP cost on the wire.
    public struct WireUse: Codable, Sendable, Equatable {
        public var requests: Int
        public var retries: Int
        public var bytesSent: Int
        public var bytesReceived: Int
    }

    /// One sync session with a server, in batches sized for the link (`settings.pushBatchBytes`/`pullBatchBytes`).
    public func sync(server: String, settings: HTTPClientSettings, nowMillis: Int64, stop: StopSignal = StopSignal(),
                     yield: (() -> Bool)? = nil, progress: ProgressSink = SilentProgress()) throws(AppError) -> (SyncResult, WireUse) {
        let transport = try Self.transport(server: server, enrollment: replica.enrollment, settings: settings, stop: stop)
        defer { transport.close() }
        let result: SyncResult
        do {
            result = try sync(via: transport, nowMillis: nowMillis, pushBatchBytes: settings.pushBatchBytes,
                              pullBatchBytes: settings.pullBatchBytes, yield: yield, progress: progress)
        } catch {
            throw Self.unreachable(error, server: transport.server)
        }
        return (result, WireUse(requests: transport.requestsSent, retries: transport.retries,
                                bytesSent: transport.wireBytesSent, bytesReceived: transport.wireBytesReceived))
    }

    /// `terminal recover --server URL`: as with `--central`, with central's copy fetched over HTTP.
    public static func recover(directory: String, server: String, settings: HTTPClientSettings, nowMillis: Int64,
                               lockWaitMillis: Int64 = SyncLimits.storeLockWaitMillisDefault) throws(AppError) -> RecoverResult {
        try StoreKind.terminal.checkOpening(directory)
        let enrollment: Enrollment
        do { enrollment = try Enrollment.read(from: directory + "/enrollment.json") } catch {
            throw AppError(.store, "terminal store: \(error.description)")
        }
        var transport: HTTPSyncTransport?
        defer { transport?.close() }
        do {
            return try recover(directory: directory, nowMillis: nowMillis, lockWaitMillis: lockWaitMillis) { () throws(AppError) -> any SyncTransport in
                transport = try Self.transport(server: server, enrollment: enrollment, settings: settings, stop: StopSignal())
                return transport!
            }
        } catch {
            throw Self.unreachable(error, server: transport?.server ?? server)
        }
    }

    /// A failure of the link (an io error the client located at the server) is `unreachable` (exit 5), not a store error.
    static func unreachable(_ error: AppError, server: String) -> AppError {
        error.kind == .store && error.message.hasPrefix(server + ": ") ? AppError(.unreachable, error.message) : error
    }

    static func transport(server: String, enrollment: Enrollment, settings: HTTPClientSettings, stop: StopSignal) throws(AppError) -> HTTPSyncTransport {
        do { return try HTTPSyncTransport(server: server, enrollment: enrollment, settings: settings, stop: stop) } catch {
            throw AppError(.refused, error.description)
        }
    }
}

// MARK: - The watch daemon

/// How `terminal sync --watch` paces itself (each bound with its unit).
public struct WatchSettings: Sendable {
    /// Between syncs while the link is up, in milliseconds (`--interval`).
    public var intervalMillis: Int64 = 5 * Millis.perMinute
    /// The first wait after a failed round, in milliseconds; it doubles each failure, up to the interval.
    public var retryFirstMillis: Int64 = 5 * Millis.perSecond
    /// A session gives the store back after this much work, in milliseconds, and the next
    /// round goes on at once: the cashier's commands wait at most about this long.
    public var holdMillisMax: Int64 = 2 * Millis.perSecond
    /// Between two rounds that go on with a backlog, in milliseconds: a cashier's command takes the store then.
    public var pauseMillis: Int64 = 250
    /// The HTTP client's bounds while the daemon holds the store: one try per request, given up after
    /// 4 s, so a link that stalls mid-session gives the store back within about `holdMillisMax` + 4 s;
    /// the daemon's own backoff takes over. Batches start at 16 KiB (about 2.6 s at 50 kbit/s).
    public var client: HTTPClientSettings = {
        var c = HTTPClientSettings()
        c.attemptsMax = 1
        c.requestTimeoutMillis = 4 * Millis.perSecond
        c.pushBatchBytes = 16 << 10
        c.pullBatchBytes = 16 << 10
        return c
    }()
    /// Batches shrink to this, in bytes, at the least: a round that fails halves them (a link too slow
    /// for a batch within the request timeout), a round that completes doubles them back up to `client`'s.
    public var batchBytesMin = 1 << 10
    public init() {}
}

extension TerminalDesk {
    /// One round of the daemon, as it logs it.
    public enum WatchRound: Sendable, Equatable {
        case synced(SyncResult, WireUse, millis: Int64)
        case unreachable(String)
        case failed(AppError)
    }

    /// `terminal sync --server URL --watch`: syncs every `intervalMillis` while the server answers,
    /// backs off while it does not, and holds the terminal's lock only while a session works (at most
    /// about `holdMillisMax` at a time). Returns when `stop` is set (SIGTERM); a refusal that retrying
    /// cannot cure (revoked, the store damaged) ends it with that error. `log` hears one line per round.
    public static func watch(directory: String, server: String, settings: WatchSettings, lockWaitMillis: Int64,
                             clock: @escaping () -> Int64, stop: StopSignal, log: (String) -> Void) throws(AppError) {
        try StoreKind.terminal.checkOpening(directory)
        let enrollment: Enrollment
        do { enrollment = try Enrollment.read(from: directory + "/enrollment.json") } catch {
            throw AppError(.store, "terminal store: \(error.description)")
        }
        let prober = try transport(server: server, enrollment: enrollment, settings: settings.client, stop: stop)
        defer { prober.close() }
        var failures = 0
        var random = SystemRandomNumberGenerator()
        var client = settings.client
        let batchMax = (push: settings.client.pushBatchBytes, pull: settings.client.pullBatchBytes)
        log("watching: terminal \(enrollment.terminal.rawValue) syncs with \(server) every \(WallClock.seconds(settings.intervalMillis))")
        while !stop.isStopped {
            let wait: Int64
            if let problem = prober.probe() {
                failures += 1
                wait = retryWait(failures: failures, settings: settings, random: &random)
                log("\(WallClock.format(clock())) server unreachable (\(TextOutput.plain(String(problem.prefix(200))))); next try in \(WallClock.seconds(wait))")
            } else {
                let started = WallClock.monotonicMillis()
                do throws(AppError) {
                    let desk = try TerminalDesk.open(directory: directory, lockWaitMillis: lockWaitMillis)
                    defer { try? desk.close() }
                    let (r, wire) = try desk.sync(server: server, settings: client, nowMillis: clock(), stop: stop,
                                                  yield: { WallClock.monotonicMillis() - started >= settings.holdMillisMax })
                    failures = 0
                    client.pushBatchBytes = min(batchMax.push, client.pushBatchBytes * 2)
                    client.pullBatchBytes = min(batchMax.pull, client.pullBatchBytes * 2)
                    let took = WallClock.monotonicMillis() - started
                    log("\(WallClock.format(clock())) \(r.complete ? "synced" : "synced part"): pushed \(r.pushed), pulled \(r.pulled), acknowledged through seq \(r.acknowledgedThrough); \(wire.requests) requests, \(wire.bytesSent + wire.bytesReceived) bytes, \(took) ms" + (r.complete ? "" : "; more to do, going on"))
                    wait = r.complete ? settings.intervalMillis : settings.pauseMillis
                } catch {
                    if stop.isStopped { break }
                    // Worth another round: the store busy with a cashier's command, or the link (errors located at the server).
                    guard error.kind == .busy || error.kind == .unreachable else {
                        log("\(WallClock.format(clock())) sync refused: \(error.message); stopping")
                        throw error
                    }
                    failures += 1
                    client.pushBatchBytes = max(settings.batchBytesMin, client.pushBatchBytes / 2)
                    client.pullBatchBytes = max(settings.batchBytesMin, client.pullBatchBytes / 2)
                    wait = retryWait(failures: failures, settings: settings, random: &random)
                    log("\(WallClock.format(clock())) sync failed: \(error.message); next try in \(WallClock.seconds(wait)), batches of \(client.pushBatchBytes) bytes")
                }
            }
            if stop.wait(millis: wait) { break }
        }
        log("\(WallClock.format(clock())) stopped")
    }

    /// After `failures` failed rounds in a row: the first retry wait, doubled each time, capped at the interval, jittered by up to a quarter.
    static func retryWait(failures: Int, settings: WatchSettings, random: inout SystemRandomNumberGenerator) -> Int64 {
        let base = min(settings.intervalMillis, min(settings.retryFirstMillis, settings.intervalMillis) << min(failures - 1, 20))
        return base - Int64.random(in: 0...(base / 4), using: &random)
    }
}
