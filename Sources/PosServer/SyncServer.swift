import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import Metrics
import NIOCore
import NIOPosix
import PosCentral
import PosJournal
import PosLedger
import PosWire
import Prometheus
import ServiceLifecycle

/// The bounds of the sync server, each with its unit (sync-protocol.md, "HTTP", "Limits").
public struct SyncServerSettings: Sendable {
    /// Largest request body, in bytes (413 above it).
    public var requestBytesMax = SyncLimits.messageBytesMax
    /// Events one push may carry, at most, counted from its frame headers (413 above it).
    public var eventsPerRequestMax = 16_384
    /// Protocol requests working on or waiting for the store at once, over all terminals (429 above it).
    public var requestsInFlightMax = 64
    /// Open connections at once; more wait in the listen backlog.
    public var connectionsMax = 4_096
    /// A connection's next request must arrive whole within this, in milliseconds, or the connection is closed.
    public var requestArrivalMillisMax: Int64 = 60_000
    /// How long an issued nonce stays good, in milliseconds of the server's monotonic clock.
    public var nonceLifetimeMillis: Int64 = 10 * 60 * 1000
    /// Used nonces remembered at once (each until it expires), at most: 503 beyond it.
    public var usedNoncesMax = 1_048_576
    /// `Retry-After` of a 409 (this terminal has a request in flight), in seconds.
    public var retryAfterBusyTerminalSeconds = 1
    /// `Retry-After` of a 429 (the server-wide bound is reached), in seconds.
    public var retryAfterServerBusySeconds = 2
    /// `Retry-After` of a 503 (the store is unavailable), in seconds.
    public var retryAfterUnavailableSeconds = 5
    public init() {}
}

/// Everything one server instance shares between requests: central's
/// protocol handler, the nonces it issued, admission, metrics.
public final class SyncService: @unchecked Sendable {
    public let handler: CentralHandler
    public let settings: SyncServerSettings
    public let metrics: ServerMetrics
    let nonces: NonceStore
    let gate: RequestGate
    let wallMillis: @Sendable () -> Int64
    /// The clock nonces are issued and checked on, in milliseconds (monotonic: wall clocks jump).
    let nonceClockMillis: @Sendable () -> Int64
    private let lock = NSLock()
    /// Authentication keys and merchants of enrolled terminals (read from the handler on a miss).
    private var known: [ReplicaId: (key: SymmetricKey, merchant: String)] = [:]

    public init(handler: CentralHandler, settings: SyncServerSettings = SyncServerSettings(),
                metrics: ServerMetrics = ServerMetrics(),
                wallMillis: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) },
                nonceClockMillis: @escaping @Sendable () -> Int64 = { Int64(DispatchTime.now().uptimeNanoseconds / 1_000_000) }) {
        self.handler = handler
        self.settings = settings
        self.metrics = metrics
        self.wallMillis = wallMillis
        self.nonceClockMillis = nonceClockMillis
        nonces = NonceStore(lifetimeMillis: settings.nonceLifetimeMillis, usedMax: settings.usedNoncesMax)
        gate = RequestGate(inFlightMax: settings.requestsInFlightMax)
        for e in handler.enrolledTerminals {
            known[e.terminal] = (KeyDerivation.terminalAuthKey(secret: e.secret, terminal: e.terminal), e.merchant)
        }
        handler.appendObserver = { [metrics] _, conflicts in metrics.conflicts(conflicts) }
    }

    /// The authentication key and merchant of an enrolled terminal; nil when central never enrolled it.
    /// A terminal enrolled after the server started is looked up on a pool thread: central's lock
    /// (held through a push) is never waited for on the server's own threads.
    func identity(of terminal: ReplicaId) async -> (key: SymmetricKey, merchant: String)? {
        if let k = lock.withLock({ known[terminal] }) { return k }
        let handler = self.handler
        guard let e = try? await NIOThreadPool.singleton.runIfActive({ handler.enrollment(of: terminal) }) else { return nil }
        let k = (KeyDerivation.terminalAuthKey(secret: e.secret, terminal: e.terminal), e.merchant)
        lock.withLock { known[terminal] = k }
        return k
    }

    /// Used nonces remembered (tests bound them).
    public var usedNonces: Int { nonces.usedCount }
}

/// The server's HTTP application over `service` (what `possync central serve` runs and tests call).
public func buildApplication(service: SyncService, host: String = "127.0.0.1", port: Int = 0,
                             logger: Logger = Logger(label: "possync.server"), services: [any Service] = [],
                             onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }) -> some ApplicationProtocol {
    let arrival = TimeAmount.milliseconds(service.settings.requestArrivalMillisMax)
    return Application(
        router: buildRouter(service: service),
        server: .http1(configuration: .init(additionalChannelHandlers: [RequestDeadlineHandler(limit: arrival)])),
        configuration: .init(address: .hostname(host, port: port), serverName: "possync",
                             availableConnectionsDelegate: MaximumAvailableConnections(service.settings.connectionsMax)),
        services: services,
        onServerRunning: onServerRunning,
        logger: logger
    )
}

/// Every route of the server (sync-protocol.md, "HTTP", "Endpoints").
public func buildRouter(service: SyncService) -> Router<BasicRequestContext> {
    let router = Router(context: BasicRequestContext.self)
    router.post("/v1/terminals/{terminal}/nonce") { request, context in
        await service.nonceRoute(request, context)
    }
    router.post("/v1/terminals/{terminal}/messages") { request, context in
        await service.messageRoute(request, context)
    }
    router.get(.init(stringLiteral: HTTPSync.healthPath)) { _, _ in service.healthRoute() }
    router.get(.init(stringLiteral: HTTPSync.metricsPath)) { _, _ in service.metricsRoute() }
    return router
}

extension HTTPField.Name {
    static let possyncNonce = HTTPField.Name(HTTPSync.nonceHeader)!
}

/// Why an authenticated request was not processed: its status, refusal code and message.
struct RouteRefusal: Error {
    var status: HTTPResponse.Status
    var code: String
    var message: String
    var retryAfterSeconds: Int? = nil
    var closeConnection = false
}

extension SyncService {
    // MARK: - Routes

    func nonceRoute(_ request: Request, _ context: BasicRequestContext) async -> Response {
        let started = ContinuousClock.now
        let response: Response
        do {
            let terminal = try pathTerminal(context)
            guard await identity(of: terminal) != nil else {
                throw RouteRefusal(status: .unauthorized, code: "\(SyncError.Code.notEnrolled)", message: "terminal \(terminal.rawValue) is not enrolled at central \(handler.centralID)")
            }
            var fields = HTTPFields()
            fields[.possyncNonce] = nonces.issue(for: terminal, nowMillis: nonceClockMillis())
            fields[.cacheControl] = "no-store"
            response = Response(status: .noContent, headers: fields)
        } catch {
            response = refusalResponse(error as? RouteRefusal ?? RouteRefusal(status: .badRequest, code: "malformed", message: "\(error)"))
        }
        metrics.request(route: "nonce", status: response.status.code, seconds: started.duration(to: .now), bytesIn: 0, bytesOut: 0)
        return response
    }

    func messageRoute(_ request: Request, _ context: BasicRequestContext) async -> Response {
        let started = ContinuousClock.now
        var log = context.logger
        var bytesIn = 0
        /// Set once the request authenticated: every answer after that carries the next nonce.
        var authenticated: ReplicaId?
        let response: Response
        do {
            let terminal = try pathTerminal(context)
            log[metadataKey: "terminal"] = "\(terminal.rawValue)"
            guard let type = request.headers[.contentType], type.split(separator: ";").first.map({ $0.trimmingCharacters(in: .whitespaces) }) == HTTPSync.contentType else {
                throw RouteRefusal(status: .unsupportedMediaType, code: "malformed", message: "Content-Type must be \(HTTPSync.contentType)")
            }
            if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > settings.requestBytesMax {
                throw RouteRefusal(status: .contentTooLarge, code: "\(SyncError.Code.tooLarge)",
                                   message: "body of \(length) bytes exceeds the server's requestBytesMax (\(settings.requestBytesMax) bytes)", closeConnection: true)
            }
            // Steps 4 to 6 before the body is read: a caller without a good nonce costs no body buffer.
            let (auth, identity) = try await authorization(request, terminal: terminal)
            let body: ByteBuffer
            do { body = try await request.body.collect(upTo: settings.requestBytesMax) } catch is NIOTooManyBytesError {
                throw RouteRefusal(status: .contentTooLarge, code: "\(SyncError.Code.tooLarge)",
                                   message: "body exceeds the server's requestBytesMax (\(settings.requestBytesMax) bytes)", closeConnection: true)
            }
            let bytes = Array(body.readableBytesView)
            bytesIn = bytes.count
            try verify(request, auth: auth, key: identity.key, terminal: terminal, body: bytes)
            authenticated = terminal
            log[metadataKey: "merchant"] = "\(identity.merchant)"
            let message: SyncMessage
            do { message = try SyncMessage.decode(bytes) } catch {
                throw RouteRefusal(status: .badRequest, code: "\(error.code)", message: error.description)
            }
            try checkRequest(message, of: terminal, log: &log)
            if let refusal = gate.enter(terminal) {
                switch refusal {
                case .terminalBusy:
                    throw RouteRefusal(status: .conflict, code: "busy", message: "terminal \(terminal.rawValue) already has a request in flight",
                                       retryAfterSeconds: settings.retryAfterBusyTerminalSeconds)
                case .serverBusy:
                    throw RouteRefusal(status: .tooManyRequests, code: "busy", message: "the server is working on \(settings.requestsInFlightMax) requests; try again",
                                       retryAfterSeconds: settings.retryAfterServerBusySeconds)
                }
            }
            let reply: SyncMessage
            do {
                defer { gate.leave(terminal) }
                let handler = self.handler
                reply = try await NIOThreadPool.singleton.runIfActive { handler.handle(message) }
            } catch {
                throw RouteRefusal(status: .serviceUnavailable, code: "\(SyncError.Code.io)", message: "the server could not run the request: \(error)",
                                   retryAfterSeconds: settings.retryAfterUnavailableSeconds)
            }
            response = replyResponse(reply, terminal: terminal, log: &log)
        } catch {
            let refusal = error as? RouteRefusal ?? RouteRefusal(status: .internalServerError, code: "\(SyncError.Code.io)", message: "\(error)")
            log[metadataKey: "refusal"] = "\(refusal.code)"
            response = refusalResponse(refusal, nonceFor: authenticated)
        }
        let bytesOut = response.body.contentLength ?? 0
        log[metadataKey: "bytes_in"] = "\(bytesIn)"
        log[metadataKey: "bytes_out"] = "\(bytesOut)"
        log[metadataKey: "status"] = "\(response.status.code)"
        log.info("sync request")
        metrics.request(route: "messages", status: response.status.code, seconds: started.duration(to: .now), bytesIn: bytesIn, bytesOut: bytesOut)
        return response
    }

    func healthRoute() -> Response {
        let body = "{\"status\":\"ok\",\"central\":\"\(handler.centralID)\",\"head\":\(handler.publishedHead),\"requestsInFlight\":\(gate.inFlight)}\n"
        return Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                        body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    func metricsRoute() -> Response {
        Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                 body: .init(byteBuffer: ByteBuffer(bytes: metrics.exposition())))
    }

    // MARK: - Steps

    private func pathTerminal(_ context: BasicRequestContext) throws -> ReplicaId {
        guard let raw = context.parameters.get("terminal", as: UInt32.self), let t = try? ReplicaId.terminal(raw) else {
            throw RouteRefusal(status: .badRequest, code: "malformed",
                               message: "the path names no terminal: /v1/terminals/{1...\(Limits.terminalIdMax)}/…")
        }
        return t
    }

    private func unauthorized(_ why: String) -> RouteRefusal {
        RouteRefusal(status: .unauthorized, code: "\(SyncError.Code.notAuthorized)", message: why)
    }

    /// Steps 4 to 6: the Authorization header parses and names the path's terminal, the terminal is
    /// enrolled, and its nonce is one this server issued to it, unexpired and unused.
    private func authorization(_ request: Request, terminal: ReplicaId) async throws
        -> (auth: (terminal: UInt32, nonce: String, mac: [UInt8]), identity: (key: SymmetricKey, merchant: String)) {
        guard let header = request.headers[.authorization] else { throw unauthorized("no Authorization header") }
        guard let auth = HTTPSync.parseAuthorization(header) else {
            throw unauthorized("the Authorization header is not \(HTTPSync.authorizationScheme) terminal=T, nonce=N, mac=M (T decimal, N 64 and M 64 lowercase hex digits, each field once)")
        }
        guard auth.terminal == terminal.rawValue else {
            throw unauthorized("the Authorization header names terminal \(auth.terminal); the path names terminal \(terminal.rawValue)")
        }
        guard let identity = await identity(of: terminal) else {
            throw RouteRefusal(status: .unauthorized, code: "\(SyncError.Code.notEnrolled)", message: "terminal \(terminal.rawValue) is not enrolled at central \(handler.centralID)")
        }
        switch nonces.check(auth.nonce, for: terminal, nowMillis: nonceClockMillis()) {
        case .good: break
        case .unknown:
            throw unauthorized("nonce \(auth.nonce) was not issued to terminal \(terminal.rawValue) by this server (or before it restarted): ask \(HTTPSync.noncePath(terminal: terminal)) for a new one")
        case .expired:
            throw unauthorized("nonce \(auth.nonce) expired (nonces are good for \(settings.nonceLifetimeMillis / 1000) s): ask \(HTTPSync.noncePath(terminal: terminal)) for a new one")
        case .used:
            throw unauthorized("nonce \(auth.nonce) was used already (a replayed request): ask \(HTTPSync.noncePath(terminal: terminal)) for a new one")
        case .full:
            throw RouteRefusal(status: .serviceUnavailable, code: "busy", message: "the server remembers \(settings.usedNoncesMax) used nonces (usedNoncesMax); try again",
                               retryAfterSeconds: settings.retryAfterUnavailableSeconds)
        }
        return (auth, identity)
    }

    /// Step 8: the MAC matches the request under the terminal's key; the nonce is used up.
    private func verify(_ request: Request, auth: (terminal: UInt32, nonce: String, mac: [UInt8]), key: SymmetricKey,
                        terminal: ReplicaId, body: [UInt8]) throws {
        let expected = HTTPSync.mac(key: key, method: request.method.rawValue, path: request.uri.path, body: body, nonce: auth.nonce)
        guard expected.count == auth.mac.count, zip(expected, auth.mac).reduce(UInt8(0), { $0 | ($1.0 ^ $1.1) }) == 0 else {
            throw unauthorized("the MAC does not match this request (method, path, body and nonce) under terminal \(terminal.rawValue)'s key")
        }
        guard nonces.use(auth.nonce, nowMillis: nonceClockMillis()) else {
            throw unauthorized("nonce \(auth.nonce) was used already (a replayed request): ask \(HTTPSync.noncePath(terminal: terminal)) for a new one")
        }
    }

    /// The message is a request, of the authenticated terminal, within the server's bounds.
    private func checkRequest(_ message: SyncMessage, of terminal: ReplicaId, log: inout Logger) throws {
        let named: ReplicaId
        switch message {
        case .hello(let m): named = m.terminal; log[metadataKey: "message"] = "hello"
        case .pull(let m): named = m.terminal; log[metadataKey: "message"] = "pull"; log[metadataKey: "cursor"] = "\(m.cursor)"
        case .fetch(let m): named = m.terminal; log[metadataKey: "message"] = "fetch"; log[metadataKey: "from"] = "\(m.from)"
        case .push(let m):
            named = m.terminal
            log[metadataKey: "message"] = "push"
        default:
            throw RouteRefusal(status: .badRequest, code: "malformed", message: "a \(message.typeByte)-type message is not a request central takes")
        }
        guard named == terminal else {
            throw RouteRefusal(status: .forbidden, code: "\(SyncError.Code.notAuthorized)",
                               message: "the request is authenticated as terminal \(terminal.rawValue) and its message names terminal \(named.rawValue)")
        }
        guard case .push(let m) = message else { return }
        var events = 0
        var first: UInt64?, last: UInt64 = 0
        for (i, frame) in m.frames.enumerated() {
            guard let h = try? Frames.header(frame, file: "push frame \(i)") else { continue }  // the handler says what is wrong with it
            events += Int(h.recordCount)
            first = first ?? h.firstSequence
            last = h.lastSequence
        }
        if let first { log[metadataKey: "seq"] = "\(first)...\(last)" }
        guard events <= settings.eventsPerRequestMax else {
            throw RouteRefusal(status: .contentTooLarge, code: "\(SyncError.Code.tooLarge)",
                               message: "the push carries \(events) events; the server takes at most \(settings.eventsPerRequestMax) per request")
        }
    }

    private func replyResponse(_ reply: SyncMessage, terminal: ReplicaId, log: inout Logger) -> Response {
        var fields = HTTPFields()
        fields[.contentType] = HTTPSync.contentType
        fields[.cacheControl] = "no-store"
        fields[.possyncNonce] = nonces.issue(for: terminal, nowMillis: nonceClockMillis())
        var status = HTTPResponse.Status.ok
        switch reply {
        case .refusal(let r):
            status = .init(code: HTTPSync.status(forRefusal: r.code))
            if let after = HTTPSync.retryAfterSeconds(forRefusal: r.code, settings: settings) { fields[.retryAfter] = "\(after)" }
            log[metadataKey: "refusal"] = "\(r.code)"
        case .ack(let a):
            log[metadataKey: "accepted"] = "\(a.accepted)"
            log[metadataKey: "acknowledged"] = "\(a.acknowledged)"
            metrics.pushed(accepted: Int(a.accepted), duplicates: Int(a.duplicates))
        case .events(let e):
            log[metadataKey: "cursor_reached"] = "\(e.cursor)"
            let head = handler.publishedHead
            metrics.lag(terminal: terminal, positions: head > e.cursor ? head - e.cursor : 0, wallMillis: wallMillis())
        default: break
        }
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: reply.encoded())))
    }

    private func refusalResponse(_ r: RouteRefusal, nonceFor terminal: ReplicaId? = nil) -> Response {
        var fields = HTTPFields()
        if let terminal { fields[.possyncNonce] = nonces.issue(for: terminal, nowMillis: nonceClockMillis()) }
        fields[.contentType] = HTTPSync.contentType
        fields[.cacheControl] = "no-store"
        if let after = r.retryAfterSeconds { fields[.retryAfter] = "\(after)" }
        if r.closeConnection { fields[.connection] = "close" }
        let body = SyncMessage.refusal(.init(code: r.code, message: r.message)).encoded()
        return Response(status: r.status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

extension HTTPSync {
    /// `Retry-After` for a refusal the handler gave, in seconds (nil: retrying will not help).
    static func retryAfterSeconds(forRefusal code: String, settings: SyncServerSettings) -> Int? {
        status(forRefusal: code) == 503 ? settings.retryAfterUnavailableSeconds : nil
    }
}

/// Runs the server until SIGTERM or SIGINT (swift-service-lifecycle's graceful shutdown):
/// the listener closes, requests in flight finish — a push is applied whole or not at
/// all — and this returns. `listening` hears the bound port (port 0 picks a free one).
public func runSyncServer(service: SyncService, host: String, port: Int, logger: Logger, services: [any Service] = [],
                          listening: @escaping @Sendable (_ port: Int) -> Void) async throws {
    let bound = ServerStartError.Bound()
    let app = buildApplication(service: service, host: host, port: port, logger: logger, services: services) { channel in
        bound.set()
        listening(channel.localAddress?.port ?? port)
    }
    do {
        try await app.runService(gracefulShutdownSignals: [.sigterm, .sigint])
    } catch where !bound.isSet {
        throw ServerStartError(host: host, port: port, underlying: error)
    }
}

/// The server could not start listening (the port taken, a privileged port, an address this machine does not have).
public struct ServerStartError: Error, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var reason: String

    init(host: String, port: Int, underlying: any Error) {
        self.host = host
        self.port = port
        if let io = underlying as? IOError {
            reason = "\(String(cString: strerror(io.errnoCode)).lowercased()) (errno \(io.errnoCode))"
        } else {
            reason = "\(underlying)"
        }
    }

    public var description: String { "cannot listen on \(host.contains(":") ? "[\(host)]" : host):\(port): \(reason)" }

    final class Bound: @unchecked Sendable {
        private let lock = NSLock()
        private var value = false
        func set() { lock.withLock { value = true } }
        var isSet: Bool { lock.withLock { value } }
    }
}
