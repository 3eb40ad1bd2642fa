import Foundation
import PosWire
#if canImport(Glibc)
import Glibc
#endif

/// A blocking loopback TCP socket (raw: for clients that misbehave on purpose).
final class LoopbackSocket {
    let fd: Int32
    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SyncError(.io, "socket: errno \(errno)") }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let r = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard r == 0 else { close(fd); throw SyncError(.io, "connect to port \(port): errno \(errno)") }
        noDelay()
    }

    /// Takes over a connected socket (one `accept` returned): closed when released.
    init(adopting fd: Int32) {
        self.fd = fd
        noDelay()
    }

    /// Each send goes out at once (no Nagle): a proxy forwarding a request in two writes
    /// otherwise waits for the peer's delayed acknowledgement, 40 ms on Linux, every time.
    private func noDelay() {
        var on: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { close(fd) }

    /// Sends bytes; false when the connection is gone.
    func send(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }

    /// Sends one whole HTTP request and returns its reply, whole (by its Content-Length);
    /// nil when the connection ends or `waitMillis` pass first.
    func exchange(_ request: [UInt8], waitMillis: Int32) -> [UInt8]? {
        guard send(request) else { return nil }
        var splitter = HTTPMessageSplitter()
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        let deadline = Date(timeIntervalSinceNow: Double(waitMillis) / 1000)
        while Date() < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 50) >= 0 else { return nil }
            guard p.revents != 0 else { continue }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { return nil }
            if let reply = splitter.feed(buffer[0..<n]).first { return reply }
        }
        return nil
    }

    /// `exchange` in text ("" for no reply).
    func exchange(_ request: String, waitMillis: Int32) -> String {
        exchange(Array(request.utf8), waitMillis: waitMillis).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    /// What one read returns within `waitMillis`, as text ("" for nothing).
    func receive(waitMillis: Int32) -> String {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, waitMillis) > 0 else { return "" }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : ""
    }

    /// True when the peer closed the connection (a read returns 0 or fails) within `waitMillis`.
    func isClosedByPeer(waitMillis: Int32) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, waitMillis) > 0 else { return false }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return n <= 0
    }
}
