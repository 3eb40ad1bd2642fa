import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A listening TCP socket on 127.0.0.1 at a free port (what test servers and proxies accept on).
/// Returns the socket and its port, or the errno of the step that failed.
func loopbackListener(backlog: Int32 = 64) -> Result<(fd: Int32, port: Int), LoopbackListenerError> {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return .failure(LoopbackListenerError(step: "socket", errno: errno)) }
    var yes: Int32 = 1
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
    var addr = loopbackAddress(port: 0)
    let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    guard bound == 0, listen(fd, backlog) == 0 else {
        let e = errno
        close(fd)
        return .failure(LoopbackListenerError(step: "bind/listen on 127.0.0.1", errno: e))
    }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return .success((fd, Int(UInt16(bigEndian: addr.sin_port))))
}

/// 127.0.0.1:`port` as a socket address.
func loopbackAddress(port: Int) -> sockaddr_in {
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    return addr
}

struct LoopbackListenerError: Error, CustomStringConvertible {
    let step: String
    let errno: Int32
    var description: String { "\(step): errno \(errno)" }
}
