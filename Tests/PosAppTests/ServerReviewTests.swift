import Dispatch
import Foundation
import PosApp
import PosHTTPClient
import PosTestSupport
import Testing

/// Review of `terminal sync --server --watch` against a server whose link stalls mid-session
/// (it answers GET /health, then never answers a POST: a 2G link that drops without a reset).
@Suite("review: the watch daemon on a stalled link", .serialized)
struct WatchReviewTests {
    @Test("SIGTERM (the stop signal) ends the watch daemon promptly while a request hangs")
    func stopDuringStalledRequest() throws {
        let tmp = TempDir("review-watch-stop")
        let (_, shops) = try setUpShops(tmp, count: 1)
        let server = try StallingServer()
        defer { server.shutdown() }
        let stop = StopSignal()
        let watch = WatchThread(directory: shops[0], server: "http://127.0.0.1:\(server.port)", stop: stop)
        defer { stop.stop(); server.release(); _ = watch.wait(seconds: 60) }
        try #require(server.waitForPost(seconds: 20), "the daemon never sent a POST: \(watch.lines)")
        let asked = Date()
        stop.stop()
        let stopped = watch.wait(seconds: 5)
        #expect(stopped, "the daemon did not stop within 5 s of its stop signal: the request in flight is waited for up to --request-timeout (120 s) while the store's lock is held; log: \(watch.lines)")
        server.release()
        _ = watch.wait(seconds: 60)
        if !stopped { print("watch stopped \(Date().timeIntervalSince(asked)) s after the signal, once the server let go") }
    }

    @Test("while the daemon's request hangs, the cashier's command gets the store within about holdMillisMax (2 s)")
    func cashierNotLockedOutByStalledLink() throws {
        let tmp = TempDir("review-watch-lock")
        let (_, shops) = try setUpShops(tmp, count: 1)
        let server = try StallingServer()
        defer { server.shutdown() }
        let stop = StopSignal()
        let watch = WatchThread(directory: shops[0], server: "http://127.0.0.1:\(server.port)", stop: stop)
        defer { stop.stop(); server.release(); _ = watch.wait(seconds: 60) }
        try #require(server.waitForPost(seconds: 20), "the daemon never sent a POST: \(watch.lines)")
        let started = Date()
        var opened: String?
        do {
            let desk = try TerminalDesk.open(directory: shops[0], lockWaitMillis: 6000)
            try? desk.close()
        } catch {
            opened = error.message
        }
        #expect(opened == nil, "a cashier's command waited \(Date().timeIntervalSince(started)) s for the store and was refused (\(opened ?? "")): the daemon holds the lock for the whole hung request (attempts × --request-timeout, 3 × 120 s by default), not about holdMillisMax")
    }
}

@Suite("review: central serve's errors")
struct ServeReviewTests {
    @Test("central serve on a port already taken says which address and port it could not bind")
    func portTaken() throws {
        let tmp = TempDir("review-serve-port")
        let (central, _) = try setUpShops(tmp, count: 1)
        let taken = try StallingServer()
        defer { taken.shutdown() }
        let r = try CLI.spawn(["central", "serve", "--dir", central, "--port", "\(taken.port)"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("127.0.0.1:\(taken.port)") || r.stderr.contains("port \(taken.port)"), "the error names neither the address nor the port: \(r.stderr)")
    }
}

/// `TerminalDesk.watch` on its own thread, with short waits between rounds.
final class WatchThread: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var logged: [String] = []
    private var finished = false

    init(directory: String, server: String, stop: StopSignal) {
        var settings = WatchSettings()
        settings.intervalMillis = 1000
        settings.retryFirstMillis = 200
        let watchSettings = settings
        let thread = Thread { [self] in
            do {
                try TerminalDesk.watch(directory: directory, server: server, settings: watchSettings, lockWaitMillis: 1000,
                                       clock: { WallClock.systemMillis() }, stop: stop, log: { line in self.lock.withLock { self.logged.append(line) } })
            } catch {
                lock.withLock { logged.append("watch ended: \(error)") }
            }
            lock.withLock { finished = true }
            done.signal()
        }
        thread.start()
    }

    var lines: [String] { lock.withLock { logged } }

    /// True when the daemon has returned (within `seconds`).
    func wait(seconds: Double) -> Bool {
        if lock.withLock({ finished }) { return true }
        guard done.wait(timeout: .now() + seconds) == .success else { return false }
        done.signal()
        return true
    }
}

/// A loopback HTTP server that answers GET /health and holds every POST unanswered until released
/// (then it closes such connections at once).
final class StallingServer: @unchecked Sendable {
    let port: Int
    private let fd: Int32
    private let lock = NSLock()
    private var sawPost = false
    private var released = false
    private var stopped = false

    init() throws {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, listen(s, 64) == 0 else { close(s); throw BackgroundError("bind/listen: errno \(errno)") }
        var out = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &out) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) } }
        fd = s
        port = Int(UInt16(bigEndian: out.sin_port))
        Thread { [self] in acceptLoop() }.start()
    }

    func release() { lock.withLock { released = true } }

    func shutdown() {
        lock.withLock { released = true; stopped = true }
    }

    func waitForPost(seconds: Double) -> Bool {
        let deadline = Date(timeIntervalSinceNow: seconds)
        while Date() < deadline {
            if lock.withLock({ sawPost }) { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return false
    }

    private var isStopped: Bool { lock.withLock { stopped } }
    private var isReleased: Bool { lock.withLock { released } }

    private func acceptLoop() {
        defer { close(fd) }
        while !isStopped {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 100) > 0 else { continue }
            let c = accept(fd, nil, nil)
            guard c >= 0 else { continue }
            Thread { [self] in serve(c) }.start()
        }
    }

    private func serve(_ c: Int32) {
        defer { close(c) }
        var buffer: [UInt8] = []
        let end: [UInt8] = Array("\r\n\r\n".utf8)
        while !isStopped {
            var p = pollfd(fd: c, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, 100) > 0 {
                var chunk = [UInt8](repeating: 0, count: 4096)
                let n = chunk.withUnsafeMutableBytes { recv(c, $0.baseAddress, $0.count, 0) }
                if n <= 0 { return }
                buffer += chunk[..<n]
            }
            while let at = (0..<max(0, buffer.count - 3)).first(where: { Array(buffer[$0..<$0 + 4]) == end }) {
                let head = String(decoding: buffer[..<at], as: UTF8.self)
                buffer.removeFirst(at + 4)
                if head.hasPrefix("GET /health") {
                    let body = "{\"status\":\"ok\"}"
                    let reply = Array("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8)
                    _ = reply.withUnsafeBytes { send(c, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    continue
                }
                lock.withLock { sawPost = true }
                while !isReleased { Thread.sleep(forTimeInterval: 0.05) }
                return
            }
        }
    }
}
