import PosJournal
import PosWire

/// A file of lines (each a JSON object and `\n`) that only grows: appended at
/// the end of its last whole line and fsynced. A last line without its `\n` is
/// a torn append: never relied upon, and the next append writes over it.
final class LineFile {
    let path: String
    let fs: any JournalFileSystem
    /// Bytes of whole lines: where the next line goes.
    private(set) var validBytes: UInt64

    /// Bytes read at once when streaming a file.
    static let readChunkBytes = 64 << 10

    /// Opens `path` (absent: empty), finding the end of its last whole line by reading its tail only.
    init(path: String, fs: any JournalFileSystem) throws(SyncError) {
        self.path = path
        self.fs = fs
        validBytes = try Self.wholeLineBytes(path: path, fs: fs)
    }

    /// Opens `path` after a full read (`scan`) found its whole lines end at `validBytes`.
    init(path: String, fs: any JournalFileSystem, validBytes: UInt64) {
        self.path = path
        self.fs = fs
        self.validBytes = validBytes
    }

    /// Appends `lines` (each without its `\n`) at the end of the whole lines, over a torn one, in one
    /// write and one fsync (FileStore's append); they count once fsynced.
    func append(_ lines: [[UInt8]]) throws(SyncError) {
        guard !lines.isEmpty else { return }
        var bytes: [UInt8] = []
        for l in lines { bytes += l; bytes.append(0x0A) }
        try FileStore(fs: fs).write(bytes, to: path, at: validBytes)
        validBytes += UInt64(bytes.count)
    }

    /// After an append of `bytes` bytes failed: whether they are in the file all the same, whole lines
    /// (only the fsync failed, or it failed after the write), so a reader may have taken them. Then they
    /// count, and the next append goes after them; otherwise it writes over what the failure left.
    func keepIfLanded(bytes: Int) -> Bool {
        guard let whole = try? Self.wholeLineBytes(path: path, fs: fs), whole == validBytes + UInt64(bytes) else { return false }
        validBytes = whole
        return true
    }

    /// The length of the whole lines of `path`: its size when it ends in `\n`, else up to its last `\n`
    /// (0 when it has none), found within the last `NotificationLimits.logLineBytesMax` bytes.
    static func wholeLineBytes(path: String, fs: any JournalFileSystem) throws(SyncError) -> UInt64 {
        guard fs.fileExists(path) else { return 0 }
        do {
            let h = try fs.openFile(path, mode: .readOnly)
            defer { try? h.close() }
            let size = try h.size()
            guard size > 0 else { return 0 }
            let window = min(size, UInt64(NotificationLimits.logLineBytesMax + 1))
            let tail = try h.read(at: size - window, count: Int(window))
            if let last = tail.lastIndex(of: 0x0A) { return size - window + UInt64(last) + 1 }
            guard window == size else {
                throw SyncError(.malformed, "no line end in its last \(window) bytes: not a file of JSON lines (or damaged)", location: path)
            }
            return 0
        } catch let e as SyncError {
            throw e
        } catch {
            throw SyncError(.io, "cannot read: \(error)", location: path)
        }
    }

    /// Reads `path` from the start, a chunk at a time, handing `body` each whole line (without
    /// its `\n`), its number from 1 and its byte offset. A line longer than
    /// `NotificationLimits.logLineBytesMax` is refused, naming its line and offset. Returns the
    /// length of the whole lines (a torn last line is left out). An absent file has none.
    @discardableResult
    static func scan(path: String, fs: any JournalFileSystem,
                     _ body: (_ line: ArraySlice<UInt8>, _ number: Int, _ offset: UInt64) throws(SyncError) -> Void) throws(SyncError) -> UInt64 {
        guard fs.fileExists(path) else { return 0 }
        let h: any JournalFileHandle
        let size: UInt64
        do {
            h = try fs.openFile(path, mode: .readOnly)
            size = try h.size()
        } catch { throw SyncError(.io, "cannot read: \(error.message)", location: path) }
        defer { try? h.close() }
        var pending: [UInt8] = []
        var pendingOffset: UInt64 = 0
        var offset: UInt64 = 0
        var number = 0
        while offset < size {
            let count = Int(min(UInt64(readChunkBytes), size - offset))
            let chunk: [UInt8]
            do { chunk = try h.read(at: offset, count: count) } catch { throw SyncError(.io, "cannot read: \(error.message)", location: path) }
            offset += UInt64(chunk.count)
            pending += chunk
            var start = 0
            while let end = pending[start...].firstIndex(of: 0x0A) {
                number += 1
                try checkLength(end - start, number: number, offset: pendingOffset, path: path)
                try body(pending[start..<end], number, pendingOffset)
                pendingOffset += UInt64(end - start + 1)
                start = end + 1
            }
            pending.removeFirst(start)
            try checkLength(pending.count, number: number + 1, offset: pendingOffset, path: path)
        }
        return pendingOffset
    }

    private static func checkLength(_ bytes: Int, number: Int, offset: UInt64, path: String) throws(SyncError) {
        guard bytes <= NotificationLimits.logLineBytesMax else {
            throw SyncError(.malformed, "line \(number) (byte offset \(offset)) is longer than \(NotificationLimits.logLineBytesMax) bytes: damaged", location: path)
        }
    }
}
