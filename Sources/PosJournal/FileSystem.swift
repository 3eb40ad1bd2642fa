#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How a file is opened.
public enum FileOpenMode: Sendable {
    case readOnly
    case readWrite
    /// Create a new file; fails if it exists.
    case createExclusive
}

/// One open file. Everything the journal does to a file goes through this,
/// so tests can substitute a fault-injecting implementation.
public protocol JournalFileHandle: AnyObject {
    func size() throws(JournalError) -> UInt64
    /// Reads up to `count` bytes at `offset`; fewer only at end of file.
    func read(at offset: UInt64, count: Int) throws(JournalError) -> [UInt8]
    /// Writes all of `bytes` at `offset`.
    func write(_ bytes: [UInt8], at offset: UInt64) throws(JournalError)
    /// Makes every completed write durable (fdatasync).
    func sync() throws(JournalError)
    func truncate(to size: UInt64) throws(JournalError)
    func close() throws(JournalError)
}

/// The journal's whole view of storage: files and one directory.
public protocol JournalFileSystem: Sendable {
    func listDirectory(_ path: String) throws(JournalError) -> [String]
    func createDirectory(_ path: String) throws(JournalError)
    func fileExists(_ path: String) -> Bool
    func openFile(_ path: String, mode: FileOpenMode) throws(JournalError) -> any JournalFileHandle
    /// Atomic rename within one directory (replaces `to` if it exists).
    func rename(_ from: String, to: String) throws(JournalError)
    func removeFile(_ path: String) throws(JournalError)
    /// Removes an empty directory.
    func removeDirectory(_ path: String) throws(JournalError)
    /// Makes directory entries (creations, renames, removals) durable.
    func syncDirectory(_ path: String) throws(JournalError)
    /// Takes the exclusive lock on the lock file at `path` (created if missing),
    /// waiting up to `waitMillis` for another holder to release it; fails with
    /// `locked`, naming the holder where known. The lock lasts until released
    /// or until the process ends.
    func lockExclusive(_ path: String, waitMillis: Int64) throws(JournalError) -> any StoreLockHandle
}

/// Paths as the journal's file systems use them: `/`-separated, no normalisation.
public enum FilePath {
    /// The directory holding `path`: "." for a bare name, "/" for an entry of the root.
    public static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}

/// The real file system, through POSIX calls.
public struct PosixFileSystem: JournalFileSystem {
    public init() {}

    static func error(_ what: String, _ path: String, offset: UInt64? = nil) -> JournalError {
        let e = errno
        let reason = String(cString: strerror(e))
        let code: JournalError.Code = (e == ENOSPC || e == EDQUOT) ? .diskFull : (e == ENOENT ? .notFound : .io)
        return JournalError(code, "\(what) failed: \(reason) (errno \(e))", file: path, offset: offset)
    }

    public func listDirectory(_ path: String) throws(JournalError) -> [String] {
        guard let dir = opendir(path) else { throw Self.error("opendir", path) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    public func createDirectory(_ path: String) throws(JournalError) {
        if mkdir(path, 0o700) != 0 && errno != EEXIST { throw Self.error("mkdir", path) }
    }

    public func fileExists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    public func openFile(_ path: String, mode: FileOpenMode) throws(JournalError) -> any JournalFileHandle {
        let flags: Int32
        switch mode {
        case .readOnly: flags = O_RDONLY
        case .readWrite: flags = O_RDWR
        case .createExclusive: flags = O_RDWR | O_CREAT | O_EXCL
        }
        let fd = open(path, flags | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Self.error("open", path) }
        return PosixFileHandle(fd: fd, path: path)
    }

    public func rename(_ from: String, to: String) throws(JournalError) {
        if Glibc.rename(from, to) != 0 { throw Self.error("rename to \(to)", from) }
    }

    public func removeFile(_ path: String) throws(JournalError) {
        if unlink(path) != 0 { throw Self.error("unlink", path) }
    }

    public func removeDirectory(_ path: String) throws(JournalError) {
        if rmdir(path) != 0 { throw Self.error("rmdir", path) }
    }

    public func lockExclusive(_ path: String, waitMillis: Int64) throws(JournalError) -> any StoreLockHandle {
        try PosixStoreLock.acquire(path, waitMillis: waitMillis)
    }

    public func syncDirectory(_ path: String) throws(JournalError) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw Self.error("open directory", path) }
        defer { Glibc.close(fd) }
        if fsync(fd) != 0 { throw Self.error("fsync directory", path) }
    }
}

final class PosixFileHandle: JournalFileHandle {
    private var fd: Int32
    let path: String

    init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit {
        if fd >= 0 { Glibc.close(fd) }
    }

    func size() throws(JournalError) -> UInt64 {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw PosixFileSystem.error("fstat", path) }
        return UInt64(st.st_size)
    }

    func read(at offset: UInt64, count: Int) throws(JournalError) -> [UInt8] {
        var result = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = result.withUnsafeMutableBytes { buf in
                pread(fd, buf.baseAddress! + done, count - done, off_t(offset) + off_t(done))
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw PosixFileSystem.error("pread", path, offset: offset)
            }
            if n == 0 { break }
            done += n
        }
        if done < count { result.removeLast(count - done) }
        return result
    }

    func write(_ bytes: [UInt8], at offset: UInt64) throws(JournalError) {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { buf in
                pwrite(fd, buf.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw PosixFileSystem.error("pwrite", path, offset: offset + UInt64(done))
            }
            done += n
        }
    }

    func sync() throws(JournalError) {
        if fdatasync(fd) != 0 { throw PosixFileSystem.error("fdatasync", path) }
    }

    func truncate(to size: UInt64) throws(JournalError) {
        if ftruncate(fd, off_t(size)) != 0 { throw PosixFileSystem.error("ftruncate", path, offset: size) }
    }

    func close() throws(JournalError) {
        guard fd >= 0 else { return }
        let result = Glibc.close(fd)
        fd = -1
        if result != 0 { throw PosixFileSystem.error("close", path) }
    }
}
