import Foundation
import PosWire
#if canImport(Glibc)
import Glibc
#endif

/// A sync server in a child process (`sync-load --serve DIR --port 0`), so
/// what it costs is its own: its peak resident memory and its open file
/// descriptors are read from /proc. The child prints `port N` once it
/// listens, stops gracefully on SIGTERM, and exits when its standard input
/// closes (so it never outlives this process).
public final class ServerProcess: @unchecked Sendable {
    public let port: Int
    public var pid: Int32 { process.processIdentifier }
    private let process: Process
    private let input = Pipe()

    /// Starts `executable arguments…` and waits (at most `startMillisMax`) for its `port N` line.
    public init(executable: String, arguments: [String], startMillisMax: Int = 60_000) throws(SyncError) {
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardInput = input
        do { try process.run() } catch { throw SyncError(.io, "cannot start the server: \(error)", location: executable) }
        let reader = output.fileHandleForReading
        nonisolated(unsafe) var line = ""
        let got = DispatchSemaphore(value: 0)
        Thread {
            while !line.hasSuffix("\n") {
                let chunk = reader.availableData
                if chunk.isEmpty { break }
                line += String(decoding: chunk, as: UTF8.self)
            }
            got.signal()
        }.start()
        let inTime = got.wait(timeout: .now() + .milliseconds(startMillisMax)) == .success
        guard inTime, line.hasPrefix("port "), let port = Int(line.dropFirst(5).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            kill(process.processIdentifier, SIGKILL)
            if !inTime { got.wait() }  // the kill closed the pipe: the reader is done with `line`
            process.waitUntilExit()
            throw SyncError(.io, "the server did not say its port within \(startMillisMax) ms (it printed \"\(line)\", exit \(process.terminationStatus))",
                            location: executable)
        }
        self.port = port
    }

    /// The child's peak resident memory (VmHWM), in KiB; 0 once it has exited.
    public var peakRSSKiB: Int { ProcessMemory.statusKiB(pid: pid, field: "VmHWM") }
    /// The child's resident memory now (VmRSS), in KiB; 0 once it has exited.
    public var rssKiB: Int { ProcessMemory.statusKiB(pid: pid, field: "VmRSS") }

    /// The child's open file descriptors (its listening socket, connections, store files…): the
    /// entries of /proc/PID/fd, counted without making a name of each (tests sample it often, with
    /// thousands of connections open); 0 once it has exited.
    public var openDescriptors: Int {
        guard let dir = opendir("/proc/\(pid)/fd") else { return 0 }
        defer { closedir(dir) }
        var count = 0
        while let entry = readdir(dir) {
            if entry.pointee.d_name.0 != UInt8(ascii: ".") { count += 1 }  // not "." or ".."
        }
        return count
    }

    /// SIGTERM, then waits for the graceful stop (at most `waitMillis`, then SIGKILL). Returns the exit status.
    @discardableResult
    public func stop(waitMillis: Int = 30_000) -> Int32 {
        guard process.isRunning else { return process.terminationStatus }
        kill(pid, SIGTERM)
        let deadline = Date(timeIntervalSinceNow: Double(waitMillis) / 1000)
        while process.isRunning, Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(pid, SIGKILL) }
        process.waitUntilExit()
        try? input.fileHandleForWriting.close()
        return process.terminationStatus
    }

    deinit { stop() }
}
