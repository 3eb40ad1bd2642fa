#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where formatted lines go.
public protocol LineOutput: AnyObject {
    /// Appends one line; the output adds the newline.
    func line(_ text: String)
    func flush()
}

/// Lines to a file descriptor through a 64 KiB buffer (one write call per
/// buffer, not per line). With `lineBuffered` (--follow) every line is written at once.
public final class FileOutput: LineOutput {
    private let fd: Int32
    private var buffer: [UInt8] = []
    private let bufferBytesMax = 64 * 1024
    public var lineBuffered = false
    /// Set when a write failed (a closed pipe, a full disk): later lines are dropped.
    public private(set) var failed = false

    public init(fd: Int32 = 1) {
        self.fd = fd
        buffer.reserveCapacity(bufferBytesMax + 4096)
    }

    deinit { flush() }

    public func line(_ text: String) {
        var t = text
        t.withUTF8 { buffer.append(contentsOf: $0) }
        buffer.append(0x0A)
        if lineBuffered || buffer.count >= bufferBytesMax { flush() }
    }

    public func flush() {
        guard !buffer.isEmpty, !failed else { buffer.removeAll(keepingCapacity: true); return }
        var done = 0
        buffer.withUnsafeBytes { p in
            while done < p.count {
                let n = write(fd, p.baseAddress! + done, p.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    failed = true
                    return
                }
                done += n
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }
}

/// Lines collected in memory (tests, golden files).
public final class StringOutput: LineOutput {
    public private(set) var lines: [String] = []
    public init() {}
    public func line(_ text: String) { lines.append(text) }
    public func flush() {}
    public var text: String { lines.isEmpty ? "" : lines.joined(separator: "\n") + "\n" }
}

/// Counts lines and bytes without keeping them (the bounded-memory test).
public final class CountingOutput: LineOutput {
    public private(set) var lineCount = 0
    public private(set) var byteCount = 0
    public init() {}
    public func line(_ text: String) {
        lineCount += 1
        byteCount += text.utf8.count + 1
    }
    public func flush() {}
}
