import Foundation

/// A process's memory as Linux reports it in /proc (the load figures and the server's bounds).
public enum ProcessMemory {
    /// A /proc/PID/status figure in KiB (VmHWM: peak resident; VmRSS: resident now); 0 when absent.
    public static func statusKiB(pid: Int32, field: String) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        for line in status.split(separator: "\n") where line.hasPrefix(field + ":") {
            return line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first.flatMap { Int($0) } ?? 0
        }
        return 0
    }

    /// This process's peak resident memory (VmHWM), in KiB.
    public static var ownPeakKiB: Int { statusKiB(pid: getpid(), field: "VmHWM") }
}
