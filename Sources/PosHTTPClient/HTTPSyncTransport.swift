import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import PosLedger
import PosWire

/// How the terminal's HTTP client behaves on a slow or flaky link, each bound with its unit
/// (sync-protocol.md, "HTTP", "Retries").
public struct HTTPClientSettings: Sendable {
    /// Giving up on opening a connection after this, in milliseconds.
    public var connectTimeoutMillis: Int64 = 10_000
    /// Giving up on one request (sending it and reading its reply) after this, in milliseconds.
    public var requestTimeoutMillis: Int64 = 120_000
    /// Tries of one message before the sync fails (the session can be run again: it resumes).
    public var attemptsMax = 8
    /// The first retry waits up to this, in milliseconds; each further one up to twice as long ("full jitter").
    public var backoffBaseMillis: Int64 = 500
    /// No wait between tries is longer than this, in milliseconds (a server's `Retry-After` included).
    public var backoffMaxMillis: Int64 = 60_000
    /// Frames per push, at most, in bytes: sized for a 2G link (64 KiB is about 10 s at 50 kbit/s).
    public var pushBatchBytes = HTTPClientSettings.pushBatchBytesDefault
    /// Records per pull, at most, in bytes (central seals at most this much per reply).
    public var pullBatchBytes = HTTPClientSettings.pullBatchBytesDefault

    /// The largest batch either way, in bytes (the protocol's bound).
    public static let batchBytesMax = SyncLimits.pushBatchBytesMax
    public static let pushBatchBytesDefault = 64 << 10
    public static let pullBatchBytesDefault = 64 << 10
    public init() {}
}

/// Set once to stop: a sync in progress stops before its next request, and waits between tries end.
public final class StopSignal: @unchecked Sendable {
    private let condition = NSCondition()
    private var stopped = false
    public init() {}

    public func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    public var isStopped: Bool {
        condition.lock()
        defer { condition.unlock() }
        return stopped
    }

    /// Waits `millis` or until stopped; true when stopped.
    @discardableResult
    public func wait(millis: Int64) -> Bool {
        let until = Date(timeIntervalSinceNow: TimeInterval(max(0, millis)) / 1000)
        condition.lock()
        defer { condition.unlock() }
        while !stopped, condition.wait(until: until) {}
        return stopped
    }
}

/// The sync protocol over HTTP (sync-protocol.md, "HTTP"): each message is one
/// authenticated POST; a reply lost, a connection cut, a timeout, a 409, 429 or
/// 503 are retried (the protocol makes every request safe to repeat: a push
/// again is acknowledged without being stored twice, a pull again resumes from
/// the same cursor), with exponential backoff and jitter, honoring `Retry-After`.
/// Blocking: `exchange` returns when the reply is in, or throws once the tries are spent.
public final class HTTPSyncTransport: SyncTransport, @unchecked Sendable {
    public let server: String
    public let settings: HTTPClientSettings
    private let enrollment: Enrollment
    private let authKey: SymmetricKey
    private let client: HTTPClient
    private let logger: Logger
    private let stop: StopSignal
    /// The nonce the last reply carried, for the next request (nil: ask for one).
    private var nonce: String?
    private var random = SystemRandomNumberGenerator()
    /// Bytes sent and received (bodies and headers as encoded by HTTP/1.1), for the wire-cost figures.
    public private(set) var wireBytesSent = 0
    public private(set) var wireBytesReceived = 0
    /// Requests sent, retries among them.
    public private(set) var requestsSent = 0
    public private(set) var retries = 0

    /// `server`: `http://host:port` or `https://host:port` (a path after it is kept as a prefix).
    public init(server: String, enrollment: Enrollment, settings: HTTPClientSettings = HTTPClientSettings(),
                stop: StopSignal = StopSignal(),
                logger: Logger = Logger(label: "possync.client", factory: { _ in SwiftLogNoOpLogHandler() })) throws(SyncError) {
        var base = server
        while base.hasSuffix("/") { base.removeLast() }
        guard let url = URL(string: base), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = url.host, !host.isEmpty else {
            throw SyncError(.invalidArgument, "server \"\(PrintableText.escaped(server))\": expected http://HOST:PORT or https://HOST:PORT", location: "--server")
        }
        precondition(settings.attemptsMax > 0 && settings.backoffBaseMillis > 0 && settings.backoffMaxMillis >= settings.backoffBaseMillis)
        precondition(settings.pushBatchBytes > 0 && settings.pushBatchBytes <= SyncLimits.pushBatchBytesMax)
        precondition(settings.pullBatchBytes > 0 && settings.pullBatchBytes <= SyncLimits.pullBatchBytesMax)
        self.server = base
        self.settings = settings
        self.enrollment = enrollment
        self.stop = stop
        self.logger = logger
        authKey = KeyDerivation.terminalAuthKey(secret: enrollment.secret, terminal: enrollment.terminal)
        var configuration = HTTPClient.Configuration(
            timeout: .init(connect: .milliseconds(settings.connectTimeoutMillis), read: .milliseconds(settings.requestTimeoutMillis)))
        configuration.redirectConfiguration = .disallow
        configuration.connectionPool = .init(idleTimeout: .seconds(30))
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    deinit { try? client.syncShutdown() }

    /// Closes the client's connections.
    public func close() { try? client.syncShutdown() }

    public func exchange(_ request: SyncMessage) throws(SyncError) -> SyncMessage {
        let path = HTTPSync.messagePath(terminal: enrollment.terminal)
        let body = request.encoded()
        var lastProblem = ""
        var attempt = 0
        var refreshedNonce = false
        while attempt < settings.attemptsMax {
            if attempt > 0 { retries += 1 }
            attempt += 1
            guard !stop.isStopped else { throw SyncError(.io, "stopped before the request was sent", location: server) }
            let outcome: Outcome
            do {
                let nonce = try self.nonce ?? fetchNonce()
                self.nonce = nil  // a nonce serves one request, answered or not
                let mac = HTTPSync.mac(key: authKey, method: "POST", path: path, body: body, nonce: nonce)
                let headers = HTTPHeaders([
                    ("Content-Type", HTTPSync.contentType),
                    ("Authorization", HTTPSync.authorization(terminal: enrollment.terminal, nonce: nonce, mac: mac)),
                ])
                outcome = try send(path: path, headers: headers, body: body)
            } catch let problem as TransportProblem {
                lastProblem = problem.text
                logger.debug("sync request failed; retrying", metadata: ["http.attempt": "\(attempt)", "http.problem": "\(problem.text)"])
                try pause(backoffMillis(attempt: attempt))
                continue
            } catch let error as SyncError {
                throw error  // the server refused (a nonce for a terminal it does not know), or stopped: final
            } catch {
                lastProblem = "\(error)"
                try pause(backoffMillis(attempt: attempt))
                continue
            }
            nonce = outcome.nonce
            switch outcome.status {
            case 200:
                do { return try SyncMessage.decode(outcome.body) } catch {
                    throw SyncError(error.code, "the server's reply: \(error.message)", location: server)
                }
            case 401 where !refreshedNonce:
                // A nonce the server no longer knows (it restarted, or the nonce expired): one more try with a fresh one.
                refreshedNonce = true
                nonce = nil
                attempt -= 1
                continue
            case 409, 429, 500...599:
                lastProblem = "HTTP \(outcome.status): \(refusalText(outcome.body))"
                let wait = outcome.retryAfterSeconds.map { min(Int64($0) * 1000, settings.backoffMaxMillis) } ?? backoffMillis(attempt: attempt)
                try pause(wait)
                continue
            case 400, 401, 403, 413, 415, 422:
                // Retrying will not help: the refusal is the reply (the session throws it as it would in-process).
                if let reply = try? SyncMessage.decode(outcome.body), case .refusal = reply { return reply }
                throw SyncError(.malformed, "HTTP \(outcome.status) without a refusal message", location: server)
            default:
                // 404, 405, another 4xx or 3xx: not a PosSync server at this address, or not this version of it.
                throw SyncError(.malformed, "HTTP \(outcome.status) to POST \(path): is \(server) a PosSync sync server (possync central serve)?", location: server)
            }
        }
        throw SyncError(.io, "no reply after \(settings.attemptsMax) tries; the last: \(lastProblem)", location: server)
    }

    /// One try at `GET /health`, without authentication: is the server there? (nil: yes; else what failed.)
    /// The watch daemon asks before it takes the store's lock, so a link that is down costs the cashier nothing.
    public func probe() -> String? {
        let request: HTTPClient.Request
        do { request = try HTTPClient.Request(url: server + HTTPSync.healthPath, method: .GET) } catch { return "\(error)" }
        do {
            let response = try client.execute(request: request, delegate: ResponseAccumulator(request: request, maxBodySize: 4096),
                                              deadline: .now() + .milliseconds(settings.connectTimeoutMillis)).wait()
            return response.status == .ok ? nil : "HTTP \(response.status.code)"
        } catch {
            return describe(error)
        }
    }

    // MARK: - Steps

    private struct Outcome {
        var status: Int
        var body: [UInt8]
        var nonce: String?
        var retryAfterSeconds: Int?
    }

    /// How often a request in flight looks at the stop signal, in milliseconds.
    static let stopPollMillis: Int64 = 100

    /// The connection failed, timed out or was cut: worth another try.
    private struct TransportProblem: Error { var text: String }

    private func fetchNonce() throws -> String {
        let outcome = try send(path: HTTPSync.noncePath(terminal: enrollment.terminal), headers: HTTPHeaders(), body: [])
        guard (200..<300).contains(outcome.status), let nonce = outcome.nonce else {
            if outcome.status == 401 || outcome.status == 403 {
                // The server does not know this terminal (notEnrolled) or will not serve it: retrying will not help.
                let refusal = (try? SyncMessage.decode(outcome.body)).flatMap { reply -> SyncMessage.Refusal? in
                    if case .refusal(let r) = reply { return r } else { return nil }
                }
                let code = refusal.map { SyncError.Code(refusal: $0.code) } ?? .notAuthorized
                throw SyncError(code, "the server refused a nonce (HTTP \(outcome.status)): \(refusalText(outcome.body))", location: server)
            }
            if (500..<600).contains(outcome.status) || outcome.status == 429 { throw TransportProblem(text: "nonce: HTTP \(outcome.status)") }
            throw SyncError(.malformed, "HTTP \(outcome.status) to POST \(HTTPSync.noncePath(terminal: enrollment.terminal)): is \(server) a PosSync sync server (possync central serve)?", location: server)
        }
        return nonce
    }

    private func send(path: String, headers: HTTPHeaders, body: [UInt8]) throws -> Outcome {
        let request: HTTPClient.Request
        do { request = try HTTPClient.Request(url: server + path, method: .POST, headers: headers, body: .bytes(body)) } catch {
            throw SyncError(.invalidArgument, "server URL \(server)\(path): \(error)", location: "--server")
        }
        requestsSent += 1
        wireBytesSent += Self.requestHeadBytes(request, bodyBytes: body.count) + body.count
        let deadline = NIODeadline.now() + .milliseconds(settings.requestTimeoutMillis)
        let response: HTTPClient.Response
        let task = client.execute(request: request, delegate: ResponseAccumulator(request: request, maxBodySize: SyncLimits.messageBytesMax + 4096),
                                  deadline: deadline)
        // Waits for the reply, watching the stop signal: a stop cancels the request in flight.
        let done = DispatchSemaphore(value: 0)
        task.futureResult.whenComplete { _ in done.signal() }
        while done.wait(timeout: .now() + .milliseconds(Int(Self.stopPollMillis))) == .timedOut {
            if stop.isStopped {
                task.cancel()
                _ = done.wait(timeout: .now() + .seconds(5))
                throw SyncError(.io, "stopped while a request was in flight (the session resumes where it stopped)", location: server)
            }
        }
        do {
            response = try task.futureResult.wait()
        } catch {
            throw TransportProblem(text: describe(error))
        }
        let bytes = response.body.map { Array($0.readableBytesView) } ?? []
        wireBytesReceived += Self.responseHeadBytes(response) + bytes.count
        return Outcome(status: Int(response.status.code), body: bytes,
                       nonce: response.headers.first(name: HTTPSync.nonceHeader),
                       retryAfterSeconds: response.headers.first(name: "Retry-After").flatMap { Int($0) }.map { max(0, $0) })
    }

    /// What went wrong on the link, in the words of the bound it hit: NIO's own descriptions
    /// ("connection reset (error set): Connection refused (errno: 111)") name the mechanism, not the cause.
    private func describe(_ error: any Error) -> String {
        if let e = error as? HTTPClientError {
            switch e {
            case .connectTimeout: return "no connection within \(settings.connectTimeoutMillis / 1000) s (--connect-timeout)"
            case .deadlineExceeded, .readTimeout: return "no reply within \(settings.requestTimeoutMillis / 1000) s (--request-timeout)"
            case .remoteConnectionClosed: return "the server closed the connection before its reply was complete"
            default: return "\(e)"
            }
        }
        if let e = error as? IOError { return "\(String(cString: strerror(e.errnoCode)).lowercased()) (errno \(e.errnoCode))" }
        if let e = error as? NIOConnectionError, let first = e.connectionErrors.first {
            return "cannot connect to \(e.host):\(e.port): \(describe(first.error))"
        }
        return "\(error)"
    }

    /// Waits, or throws when stopped meanwhile.
    private func pause(_ millis: Int64) throws(SyncError) {
        if stop.wait(millis: millis) { throw SyncError(.io, "stopped while waiting to retry", location: server) }
    }

    /// Full jitter: a random wait up to base × 2^(attempt−1), capped.
    private func backoffMillis(attempt: Int) -> Int64 {
        let ceiling = min(settings.backoffMaxMillis, settings.backoffBaseMillis << min(attempt - 1, 20))
        return Int64.random(in: 0...ceiling, using: &random)
    }

    private func refusalText(_ body: [UInt8]) -> String {
        if let m = try? SyncMessage.decode(body), case .refusal(let r) = m { return "\(r.code): \(r.message)" }
        return "\(body.count) bytes"
    }

    /// The bytes of an HTTP/1.1 request head as sent: request line, Host, headers, Content-Length, blank line.
    private static func requestHeadBytes(_ request: HTTPClient.Request, bodyBytes: Int) -> Int {
        var n = "POST \(request.url.path) HTTP/1.1\r\n".utf8.count
        n += "Host: \(request.host):\(request.port)\r\n".utf8.count
        for h in request.headers { n += h.name.utf8.count + 2 + h.value.utf8.count + 2 }
        n += "Content-Length: \(bodyBytes)\r\n\r\n".utf8.count
        return n
    }

    private static func responseHeadBytes(_ response: HTTPClient.Response) -> Int {
        var n = "HTTP/1.1 \(response.status.code) \(response.status.reasonPhrase)\r\n".utf8.count
        for h in response.headers { n += h.name.utf8.count + 2 + h.value.utf8.count + 2 }
        return n + 2
    }
}
