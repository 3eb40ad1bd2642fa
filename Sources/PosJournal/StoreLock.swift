#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An exclusive lock on a store directory, held until `release()` (or until
/// the process ends: the operating system drops it on exit and on kill -9).
public protocol StoreLockHandle: AnyObject, Sendable {
    /// The lock file.
    var path: String { get }
    func release()
}

/// Bounds of store locking.
public enum StoreLockLimits {
    /// How long a second process waits for a store's lock by default, in milliseconds.
    public static let waitMillisDefault: Int64 = 10_000
    /// The longest wait a caller may ask for, in milliseconds (one hour).
    public static let waitMillisMax: Int64 = 3_600_000
    /// First pause between attempts while waiting, in microseconds; it doubles up to `pollMicrosMax`.
    static let pollMicrosFirst: UInt32 = 500
    static let pollMicrosMax: UInt32 = 20_000
    /// The name of the lock file in a store directory.
    public static let fileName = "LOCK"
    /// How much of the kernel's lock table (/proc/locks) a waiter reads to name the holder, at most, in bytes; and per read.
    static let lockTableBytesMax = 1 << 20
    static let lockTableReadBytes = 16_384
}

/// The real lock: `flock(LOCK_EX)` on the directory's `LOCK` file, as LevelDB
/// and SQLite lock their files. Advisory, so it binds every PosSync process
/// (they all take it) and nothing else. The file stays empty; a waiter names
/// the holder's pid from `/proc/locks` where the kernel tells.
final class PosixStoreLock: StoreLockHandle, @unchecked Sendable {
    let path: String
    private var fd: Int32

    private init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
    }

    deinit { release() }

    func release() {
        guard fd >= 0 else { return }
        // Closing the descriptor drops the flock; the pid in the file is left (a stale pid names nobody: the lock is free).
        _ = Glibc.close(fd)
        fd = -1
    }

    static func acquire(_ path: String, waitMillis: Int64) throws(JournalError) -> PosixStoreLock {
        precondition(waitMillis >= 0 && waitMillis <= StoreLockLimits.waitMillisMax, "lock wait out of range")
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw PosixFileSystem.error("open lock file", path) }
        let deadline = MonotonicClock.millis() + waitMillis
        var pause = StoreLockLimits.pollMicrosFirst
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            if e == EINTR { continue }
            guard e == EWOULDBLOCK else {
                let error = PosixFileSystem.error("flock", path)
                _ = Glibc.close(fd)
                throw error
            }
            if MonotonicClock.millis() >= deadline {
                let holder = holderDescription(fd: fd)
                _ = Glibc.close(fd)
                throw JournalError(.locked, "the store is locked by another process\(holder); waited \(waitMillis) ms (--lock-timeout)", file: path)
            }
            usleep(pause)
            pause = min(pause * 2, StoreLockLimits.pollMicrosMax)
        }
        return PosixStoreLock(path: path, fd: fd)
    }

    /// " (pid N)" when the kernel's lock table (/proc/locks) names the holder of this file's flock, else "".
    private static func holderDescription(fd: Int32) -> String {
        var st = stat()
        guard fstat(fd, &st) == 0, let table = readSmallFile("/proc/locks") else { return "" }
        // "1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234567 0 EOF": pid, then major:minor:inode.
        for line in table.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, fields[1] == "FLOCK", let pid = Int32(fields[4]) else { continue }
            let device = fields[5].split(separator: ":")
            if device.count == 3, UInt64(device[2]) == UInt64(st.st_ino) { return " (pid \(pid))" }
        }
        return ""
    }

    private static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { _ = Glibc.close(fd) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: StoreLockLimits.lockTableReadBytes)
        while out.count < StoreLockLimits.lockTableBytesMax {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            out += buffer[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }
}
