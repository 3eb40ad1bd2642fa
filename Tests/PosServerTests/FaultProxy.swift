import Foundation
import PosLedger
#if canImport(Glibc)
import Glibc
#endif

/// What a `FaultProxy` does to one connection, drawn from the proxy's seed and
/// the connection's number, so a run replays from its seed.
struct ProxyPlan: Sendable, CustomStringConvertible {
    enum Cut: Sendable, Equatable {
        case none
        /// Forward this many bytes from the client (over every request the connection carries), then close both sides.
        case request(afterBytes: Int)
        /// Forward this many bytes from the server (over every reply), then close both sides.
        case response(afterBytes: Int)
    }
    var cut: Cut
    /// Forwarded data is written in pieces of at most this many bytes (a short read at the other end).
    var pieceBytesMax: Int
    /// Each piece waits up to this long first, in microseconds (0: none).
    var delayMicrosMax: Int
    /// The connection's first messages request answered 200 is sent again, byte for byte, on a connection
    /// of the proxy's own once its reply has been forwarded: a replay the server must refuse (its nonce is used).
    var replay: Bool

    /// Cuts fall within a request's or a reply's head in about half the connections and anywhere
    /// in the first bodies otherwise; offsets past what the connection carries leave it whole.
    static func draw(_ rng: inout SplitMix64) -> ProxyPlan {
        func offset() -> Int { rng.chance(50) ? rng.int(0...255) : rng.int(0...2047) }
        let cut: Cut
        switch rng.int(0...99) {
        case 0..<30: cut = .none
        case 30..<65: cut = .request(afterBytes: offset())
        default: cut = .response(afterBytes: offset())
        }
        return ProxyPlan(cut: cut, pieceBytesMax: rng.chance(30) ? rng.int(1...64) : Int.max,
                         delayMicrosMax: rng.chance(30) ? rng.int(1...2000) : 0, replay: rng.chance(40))
    }

    var description: String {
        "\(cut), pieces ≤ \(pieceBytesMax == Int.max ? "any" : "\(pieceBytesMax)") bytes, delay ≤ \(delayMicrosMax) µs\(replay ? ", replayed" : "")"
    }
}

/// A loopback TCP proxy that breaks connections on purpose: between a client
/// and a server on 127.0.0.1, each accepted connection is forwarded by two
/// threads (one per direction) under its `ProxyPlan`: cut after a number of
/// bytes of the requests or of the replies (both sides closed), written in
/// small pieces, delayed, and its answered requests sent again (a byte-for-byte
/// replay the server must refuse). `stop()` ends every connection and waits
/// for the threads; nothing outlives it.
final class FaultProxy: @unchecked Sendable {
    /// What the proxy did, for the test to show that faults happened.
    struct Counts: Sendable {
        var connections = 0
        var requestCuts = 0
        var responseCuts = 0
        var delayedPieces = 0
        /// Answered requests sent again, and what went wrong with them (a replay not refused 401).
        var replays = 0
        var replayProblems: [String] = []
    }

    let port: Int
    private let listener: LoopbackSocket
    private let upstreamPort: Int
    private let seed: UInt64
    private let state = NSCondition()
    private var stopped = false
    private var threadsRunning = 0
    private var live: [Int: ProxiedConnection] = [:]
    private var countsValue = Counts()

    /// Listens on 127.0.0.1 (a free port) and forwards to 127.0.0.1:`upstreamPort`.
    init(upstreamPort: Int, seed: UInt64) throws {
        self.upstreamPort = upstreamPort
        self.seed = seed
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ProxyError("socket: errno \(errno)") }
        listener = LoopbackSocket(adopting: fd)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && listen(fd, 128) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard bound else { throw ProxyError("bind/listen on 127.0.0.1: errno \(errno)") }
        port = Int(UInt16(bigEndian: addr.sin_port))
        spawn { self.acceptLoop() }
    }

    var counts: Counts { state.withLock { countsValue } }

    /// Stops accepting, closes every connection, and waits (at most a replay's wait and 10 s) for every thread; false when some still run.
    @discardableResult
    func stop() -> Bool {
        let connections = state.withLock { () -> [ProxiedConnection] in
            stopped = true
            return Array(live.values)
        }
        for c in connections { c.cut() }
        let deadline = Date(timeIntervalSinceNow: Double(Self.replayWaitMillis) / 1000 + 10)
        return state.withLock {
            while threadsRunning > 0, state.wait(until: deadline) {}
            return threadsRunning == 0
        }
    }

    // MARK: - Threads

    private func spawn(_ body: @escaping @Sendable () -> Void) {
        state.withLock { threadsRunning += 1 }
        let thread = Thread { [self] in
            body()
            state.withLock { threadsRunning -= 1; state.broadcast() }
        }
        thread.start()
    }

    private var isStopped: Bool { state.withLock { stopped } }

    private func acceptLoop() {
        var number = 0
        while !isStopped {
            var p = pollfd(fd: listener.fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 20) > 0 else { continue }
            let fd = accept(listener.fd, nil, nil)
            guard fd >= 0 else { continue }
            let client = LoopbackSocket(adopting: fd)
            guard let server = try? LoopbackSocket(port: upstreamPort) else { continue }  // client released: closed
            number += 1
            var rng = SplitMix64(seed: seed ^ (UInt64(number) &* 0x9E37_79B9_7F4A_7C15))
            let c = ProxiedConnection(client: client, server: server, plan: ProxyPlan.draw(&rng), rngSeed: rng.next())
            let admitted = state.withLock { () -> Bool in
                guard !stopped else { return false }
                live[number] = c
                countsValue.connections += 1
                return true
            }
            guard admitted else { break }
            let id = number
            spawn { self.pump(c, fromClient: true, id: id) }
            spawn { self.pump(c, fromClient: false, id: id) }
        }
    }

    /// Forwards one direction of `c` until either side ends or the plan cuts it.
    private func pump(_ c: ProxiedConnection, fromClient: Bool, id: Int) {
        let (src, dst) = fromClient ? (c.client, c.server) : (c.server, c.client)
        var limit: Int?
        switch c.plan.cut {
        case .request(let n) where fromClient: limit = n
        case .response(let n) where !fromClient: limit = n
        default: limit = nil
        }
        var rng = SplitMix64(seed: c.rngSeed ^ (fromClient ? 1 : 2))
        var splitter = HTTPMessageSplitter()
        var forwarded = 0
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        var cutHere = false
        forwarding: while true {
            let n = buffer.withUnsafeMutableBytes { recv(src.fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { break }
            var end = n
            if let limit, forwarded + n >= limit {
                end = limit - forwarded
                cutHere = true
            }
            // A request is noted before its last byte goes out, so its reply cannot come back first.
            if fromClient { c.sent(splitter.feed(buffer[0..<end])) }
            var at = 0
            while at < end {
                let piece = min(end - at, c.plan.pieceBytesMax)
                if c.plan.delayMicrosMax > 0 {
                    usleep(UInt32(rng.int(0...c.plan.delayMicrosMax)))
                    state.withLock { countsValue.delayedPieces += 1 }
                }
                let sent = buffer.withUnsafeBytes { send(dst.fd, $0.baseAddress! + at, piece, Int32(MSG_NOSIGNAL)) }
                guard sent > 0 else { break forwarding }
                at += sent
            }
            if !fromClient { for reply in splitter.feed(buffer[0..<end]) { replayIfPlanned(c, answeredBy: reply) } }
            forwarded += end
            if cutHere { break }
        }
        if cutHere {
            state.withLock { if fromClient { countsValue.requestCuts += 1 } else { countsValue.responseCuts += 1 } }
            c.cut()
        } else {
            shutdown(dst.fd, Int32(SHUT_WR))  // the end of this direction, passed on (a half-close)
            if fromClient == false { c.cut() }  // the server is done with the connection: so is the client
        }
        if c.finishOneDirection() { state.withLock { _ = live.removeValue(forKey: id) } }
    }

    /// How long a replay waits for the server's answer, in milliseconds (generous: ThreadSanitizer and a busy machine).
    static let replayWaitMillis: Int32 = 30_000

    /// Once a reply is forwarded: under a replaying plan, its request (the first messages request
    /// answered 200) goes to the server again on a new connection, on a thread of its own (the
    /// connection's forwarding goes on), and must be refused 401.
    private func replayIfPlanned(_ c: ProxiedConnection, answeredBy reply: [UInt8]) {
        guard let request = c.answered(), c.plan.replay, HTTPMessageSplitter.requestPath(request).hasSuffix("/messages"),
              HTTPMessageSplitter.status(reply) == 200, c.takeReplay() else { return }
        let port = upstreamPort
        spawn { [self] in
            let status = (try? LoopbackSocket(port: port))?.exchange(request, waitMillis: Self.replayWaitMillis).map(HTTPMessageSplitter.status)
            state.withLock {
                countsValue.replays += 1
                if status != 401 {
                    countsValue.replayProblems.append("a replayed \(HTTPMessageSplitter.requestPath(request)) request was answered "
                                                      + (status.map { "\($0)" } ?? "nothing within \(Self.replayWaitMillis) ms") + ", not 401")
                }
            }
        }
    }
}

/// One proxied connection: its two sockets (closed when both directions are
/// done and the connection is released, never while a thread may use them).
final class ProxiedConnection: @unchecked Sendable {
    let client: LoopbackSocket
    let server: LoopbackSocket
    let plan: ProxyPlan
    let rngSeed: UInt64
    private let lock = NSLock()
    private var directionsLeft = 2
    /// Requests forwarded whole and not answered yet, oldest first (HTTP/1.1 answers in order).
    private var unanswered: [[UInt8]] = []
    private var replayed = false

    init(client: LoopbackSocket, server: LoopbackSocket, plan: ProxyPlan, rngSeed: UInt64) {
        self.client = client
        self.server = server
        self.plan = plan
        self.rngSeed = rngSeed
    }

    /// Ends both directions at once: a reader on either socket wakes with end of stream.
    func cut() {
        shutdown(client.fd, Int32(SHUT_RDWR))
        shutdown(server.fd, Int32(SHUT_RDWR))
    }

    /// Requests the client sent whole, as forwarded.
    func sent(_ requests: [[UInt8]]) { lock.withLock { unanswered += requests } }

    /// The request a reply just forwarded answers (nil when the proxy lost track).
    func answered() -> [UInt8]? { lock.withLock { unanswered.isEmpty ? nil : unanswered.removeFirst() } }

    /// True the first time only: one replay per connection.
    func takeReplay() -> Bool { lock.withLock { defer { replayed = true }; return !replayed } }

    /// True for the second direction to finish.
    func finishOneDirection() -> Bool { lock.withLock { directionsLeft -= 1; return directionsLeft == 0 } }
}

struct ProxyError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
