import Foundation
import PosLedger
#if canImport(Glibc)
import Glibc
#endif

/// A loopback TCP proxy that cuts connections at seeded points: what a database
/// connection killed mid-transaction looks like to both ends. Between a client and
/// a server on 127.0.0.1 it forwards each accepted connection in both directions
/// (one thread per direction). While armed, each connection gets a cut point the
/// proxy's generator draws: a direction and a byte count (up to `cutWithinBytes`
/// more bytes of that direction); when it is reached the bytes before it are
/// forwarded and both sides are shut down. `stop()` ends every connection and waits
/// for the threads; nothing outlives it.
public final class CuttingProxy: @unchecked Sendable {
    /// The port the proxy listens on (127.0.0.1).
    public let port: Int
    private let targetPort: Int
    private let listener: Int32
    private let lock = NSLock()
    private var rng: SplitMix64
    private var cutWithinBytes: Int? = nil
    private var links: [Link] = []
    private var stopped = false
    private let group = DispatchGroup()
    private var cutsValue = 0
    private var connectionsValue = 0

    /// Bytes read from a socket at a time.
    static let readBytesMax = 16_384

    /// One proxied connection: its two sockets and the cut planned for it (nil: forwarded whole).
    private final class Link: @unchecked Sendable {  // every mutable field under the proxy's lock
        let client: Int32
        let server: Int32
        /// Bytes forwarded so far, client to server and server to client.
        var forwarded = [0, 0]
        /// The direction (0: client to server, 1: server to client) and the byte count at which the link is cut.
        var cut: (direction: Int, atBytes: Int)?
        var closed = false
        init(client: Int32, server: Int32) { self.client = client; self.server = server }
    }

    /// Listens on 127.0.0.1 (a free port) and forwards to 127.0.0.1:`targetPort`. `seed` draws every cut.
    public init(to targetPort: Int, seed: UInt64) throws {
        self.targetPort = targetPort
        rng = SplitMix64(seed: seed)
        switch loopbackListener() {
        case .success(let l): (listener, port) = l
        case .failure(let e): throw ProxyError("\(e)")
        }
        group.enter()
        Thread.detachNewThread { [self] in acceptLoop(); group.leave() }
    }

    /// Connections from now on, and those open now, are cut within `bytes` more bytes of a drawn direction.
    public func arm(cutWithinBytes bytes: Int) {
        precondition(bytes >= 1, "cutWithinBytes must be positive")
        lock.withLock {
            cutWithinBytes = bytes
            for l in links where !l.closed && l.cut == nil { l.cut = drawCut(l) }
        }
    }

    /// No more cuts: every connection, open or new, is forwarded whole.
    public func disarm() {
        lock.withLock {
            cutWithinBytes = nil
            for l in links { l.cut = nil }
        }
    }

    /// Connections cut so far, and connections accepted.
    public var cuts: Int { lock.withLock { cutsValue } }
    public var connections: Int { lock.withLock { connectionsValue } }

    /// Closes the listener and every connection, and waits for every thread.
    public func stop() {
        let open: [Link] = lock.withLock {
            stopped = true
            return links
        }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        lock.withLock { for l in open { shutDown(l) } }
        group.wait()
    }

    deinit { if !lock.withLock({ stopped }) { stop() } }

    // MARK: - Forwarding

    /// Under `lock`.
    private func drawCut(_ l: Link) -> (direction: Int, atBytes: Int)? {
        guard let within = cutWithinBytes else { return nil }
        let direction = rng.chance(70) ? 0 : 1
        return (direction, l.forwarded[direction] + rng.int(0...within))
    }

    /// Under `lock`: the link is killed as a network failure kills it: the client's side is reset (SO_LINGER 0,
    /// so its close sends RST, not an orderly FIN), the server's side shut down; the pumps' reads return 0 and
    /// they close the sockets. (postgres-nio 1.33.2 traps in RowStreamStateMachine when an orderly end of
    /// stream arrives while a result is streaming: see the closing note of issue 18.)
    private func shutDown(_ l: Link) {
        guard !l.closed else { return }
        l.closed = true
        var reset = linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(l.client, SOL_SOCKET, SO_LINGER, &reset, socklen_t(MemoryLayout<linger>.size))
        shutdown(l.client, Int32(SHUT_RD))
        shutdown(l.server, Int32(SHUT_RDWR))
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0 else {
                if errno == EINTR { continue }
                return  // the listener was closed
            }
            let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = loopbackAddress(port: targetPort)
            let connected = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            guard server >= 0, connected == 0 else { close(client); if server >= 0 { close(server) }; continue }
            let link = Link(client: client, server: server)
            let refused: Bool = lock.withLock {
                guard !stopped else { return true }
                connectionsValue += 1
                link.cut = drawCut(link)
                links.append(link)
                return false
            }
            if refused { close(client); close(server); return }
            // Each pump closes its reading socket when done; the link's sockets are both closed once both pumps are.
            let pumps = DispatchGroup()
            for direction in 0...1 {
                group.enter()
                pumps.enter()
                Thread.detachNewThread { [self] in pump(link, direction: direction); pumps.leave(); group.leave() }
            }
            group.enter()
            pumps.notify(queue: .global()) { [self] in
                close(link.client)
                close(link.server)
                lock.withLock { links.removeAll { $0 === link } }
                group.leave()
            }
        }
    }

    /// Forwards one direction until either side closes or the cut is reached.
    private func pump(_ l: Link, direction: Int) {
        let from = direction == 0 ? l.client : l.server, to = direction == 0 ? l.server : l.client
        var buffer = [UInt8](repeating: 0, count: Self.readBytesMax)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(from, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { break }
            // How much of this read goes through before the cut (all of it when none falls inside).
            let through: Int = lock.withLock {
                guard let cut = l.cut, cut.direction == direction else { return n }
                return max(0, min(n, cut.atBytes - l.forwarded[direction]))
            }
            if through > 0, !sendAll(buffer, count: through, to: to) { break }
            let cutNow: Bool = lock.withLock {
                l.forwarded[direction] += through
                guard through < n else { return false }
                cutsValue += 1
                shutDown(l)
                return true
            }
            if cutNow { break }
        }
        // Either side gone: end the other direction too.
        lock.withLock { shutDown(l) }
    }

    private func sendAll(_ buffer: [UInt8], count: Int, to fd: Int32) -> Bool {
        var sent = 0
        while sent < count {
            let n = buffer.withUnsafeBytes { send(fd, $0.baseAddress! + sent, count - sent, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { return false }
            sent += n
        }
        return true
    }
}

/// What went wrong setting a proxy up.
public struct ProxyError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}
