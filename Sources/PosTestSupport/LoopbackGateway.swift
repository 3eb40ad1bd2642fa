import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An HTTP/1.1 receiver on 127.0.0.1 for tests of senders (a webhook's SMS
/// gateway): it records every request it read whole and answers each as its
/// script says — a status, nothing at all (the connection closed after the
/// request was read: the answer is lost), or no answer until it is stopped.
/// Plain blocking sockets, one thread per connection, so it misbehaves
/// exactly as told; loopback only, bounded in connections and bytes. Call
/// `stop()` when done: its threads hold it until then.
public final class LoopbackGateway: @unchecked Sendable {
    public enum Behaviour: Sendable, Equatable {
        /// Answers `status` with `body` (and `Retry-After` when given), then closes.
        case answer(status: Int, body: String = "", retryAfter: String? = nil)
        /// Reads the whole request, then closes without a byte of answer.
        case closeAfterReading
        /// Reads the whole request and keeps the connection open, silent, until `stop()`.
        case hold
    }

    public struct Request: Sendable {
        public var method: String
        public var path: String
        /// Header names in lowercase (HTTP names are case-insensitive).
        public var headers: [String: String]
        public var body: [UInt8]
        public func header(_ name: String) -> String? { headers[name.lowercased()] }
    }

    /// A request's head and body together, at most, in bytes: a larger one is answered 413.
    public static let requestBytesMax = 64 << 10
    /// Connections handled at once, at most; more wait in the listen backlog.
    public static let connectionsMax = 16
    /// How often the accept loop looks at the stop flag, in milliseconds.
    static let pollMillis: Int32 = 20

    public let port: Int
    private let listener: Int32
    private let lock = NSLock()
    private var script: [Behaviour]
    private let afterScript: Behaviour
    private var seen: [Request] = []
    private var open: Set<Int32> = []
    private var stopped = false
    private let finished = DispatchGroup()

    /// `script[i]` answers the i-th request (from 0); `then` every request after the script.
    public init(_ script: [Behaviour] = [], then: Behaviour = .answer(status: 200, body: "ok")) throws {
        self.script = script
        afterScript = then
        let fd: Int32
        switch loopbackListener() {
        case .success(let l): (fd, port) = l
        case .failure(let e): throw GatewayError("\(e)")
        }
        listener = fd
        finished.enter()
        Thread { [self] in acceptLoop(); finished.leave() }.start()
    }

    /// `http://127.0.0.1:PORT` and `path`.
    public func url(_ path: String = "/hook") -> String { "http://127.0.0.1:\(port)\(path)" }

    /// Every request read whole so far, in arrival order.
    public var requests: [Request] { lock.withLock { seen } }

    /// Waits until `count` requests were read (false after `seconds`).
    public func waitForRequests(_ count: Int, seconds: Double) -> Bool {
        let deadline = Date(timeIntervalSinceNow: seconds)
        while requests.count < count {
            guard Date() < deadline else { return false }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return true
    }

    /// Stops listening and closes every connection (held ones included); returns once every thread ended.
    public func stop() {
        let first = lock.withLock { () -> Bool in
            defer { stopped = true }
            for fd in open { shutdown(fd, Int32(SHUT_RDWR)) }
            return !stopped
        }
        if first { finished.wait() }
    }

    private var isStopped: Bool { lock.withLock { stopped } }

    private func acceptLoop() {
        defer { close(listener) }
        while !isStopped {
            var p = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, Self.pollMillis) > 0 else { continue }
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else { continue }
            let admitted = lock.withLock { () -> Bool in
                guard !stopped, open.count < Self.connectionsMax else { return false }
                open.insert(fd)
                return true
            }
            guard admitted else { close(fd); continue }
            finished.enter()
            Thread { [self] in serve(fd); finished.leave() }.start()
        }
    }

    private func serve(_ fd: Int32) {
        defer {
            lock.withLock { _ = open.remove(fd) }
            close(fd)
        }
        guard let request = readRequest(fd) else {
            send(fd, status: 413, body: "too large or malformed", retryAfter: nil)
            return
        }
        let behaviour = lock.withLock { () -> Behaviour in
            seen.append(request)
            return script.isEmpty ? afterScript : script.removeFirst()
        }
        switch behaviour {
        case .answer(let status, let body, let retryAfter): send(fd, status: status, body: body, retryAfter: retryAfter)
        case .closeAfterReading: return
        case .hold:
            var byte: UInt8 = 0
            while !isStopped, recv(fd, &byte, 1, 0) > 0 {}  // until the client or stop() ends it
        }
    }

    /// One request: its head up to the blank line, then `Content-Length` bytes; nil when it breaks a bound or does not parse.
    private func readRequest(_ fd: Int32) -> Request? {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        var headEnd: Int?
        var bodyBytes = 0
        while true {
            if headEnd == nil, let range = bytes.firstRange(of: separator) {
                headEnd = range.upperBound
                let head = String(decoding: bytes[..<range.lowerBound], as: UTF8.self)
                let length = head.split(separator: "\r\n").dropFirst().first { $0.lowercased().hasPrefix("content-length:") }
                bodyBytes = length.flatMap { Int($0.split(separator: ":", maxSplits: 1)[1].trimmingCharacters(in: .whitespaces)) } ?? 0
            }
            if let end = headEnd, bytes.count >= end + bodyBytes { break }
            guard bytes.count <= Self.requestBytesMax else { return nil }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { return nil }
            bytes += buffer[..<n]
        }
        let end = headEnd!
        let lines = String(decoding: bytes[..<(end - 4)], as: UTF8.self).split(separator: "\r\n")
        let first = lines.first?.split(separator: " ") ?? []
        guard first.count == 3 else { return nil }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { return nil }
            headers[parts[0].lowercased()] = parts[1].trimmingCharacters(in: .whitespaces)
        }
        return Request(method: String(first[0]), path: String(first[1]), headers: headers, body: Array(bytes[end..<(end + bodyBytes)]))
    }

    private func send(_ fd: Int32, status: Int, body: String, retryAfter: String?) {
        var head = "HTTP/1.1 \(status) Status\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n"
        if let retryAfter { head += "Retry-After: \(retryAfter)\r\n" }
        let bytes = Array((head + "\r\n" + body).utf8)
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }
}

public struct GatewayError: Error, CustomStringConvertible {
    public let description: String
    init(_ d: String) { description = d }
}
