// Timing, statistics, /proc/self/io, and the competitors' plumbing
// (system SQLite, raw file + fdatasync, gzip through zlib).
import CSQLite
import CZlib
import Foundation

func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

/// One figure per repetition.
struct Sample {
    var values: [Double] = []
    mutating func add(_ v: Double) { values.append(v) }
    var median: Double {
        let s = values.sorted()
        guard !s.isEmpty else { return .nan }
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
    var min: Double { values.min() ?? .nan }
    var max: Double { values.max() ?? .nan }
    /// "median [min–max]" with `digits` decimals.
    func text(_ digits: Int) -> String {
        if values.count < 2 || min == max { return fmt(median, digits) }
        return "\(fmt(median, digits)) [\(fmt(min, digits))–\(fmt(max, digits))]"
    }
}

func fmt(_ v: Double, _ digits: Int) -> String {
    if digits == 0 {
        // Thousands separators make events/s readable.
        let n = Int(v.rounded())
        let s = String(abs(n))
        var out = ""
        for (i, c) in s.enumerated() {
            if i > 0 && (s.count - i) % 3 == 0 { out += "," }
            out.append(c)
        }
        return (n < 0 ? "-" : "") + out
    }
    return String(format: "%.\(digits)f", v)
}

/// Bytes this process has caused to be sent to the storage layer
/// (/proc/self/io `write_bytes`: counted when a page is dirtied, so a
/// 50-byte append into a clean page counts 4,096). -1 when unavailable.
func processWriteBytes() -> Int {
    let fd = open("/proc/self/io", O_RDONLY)
    guard fd >= 0 else { return -1 }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 512)
    let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    guard n > 0 else { return -1 }
    let text = String(decoding: buffer[0..<n], as: UTF8.self)
    for line in text.split(separator: "\n") where line.hasPrefix("write_bytes:") {
        return Int(line.dropFirst("write_bytes:".count).trimmingCharacters(in: .whitespaces)) ?? -1
    }
    return -1
}

/// Bytes of the regular files in `dir` and below.
func directoryBytes(_ dir: String) -> Int {
    (try? FileManager.default.subpathsOfDirectory(atPath: dir))?.reduce(0) { sum, name in
        let a = try? FileManager.default.attributesOfItem(atPath: dir + "/" + name)
        return sum + (a?[.type] as? FileAttributeType == .typeRegular ? (a?[.size] as? Int) ?? 0 : 0)
    } ?? 0
}

func fileBytes(_ path: String) -> Int {
    (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
}

/// A file that records are appended to with write + fdatasync: the floor.
final class RawLog {
    let fd: Int32
    init(path: String) {
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        precondition(fd >= 0, "open \(path) failed: errno \(errno)")
    }
    func appendDurably(_ bytes: [UInt8]) {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        precondition(n == bytes.count, "raw write failed")
        precondition(fdatasync(fd) == 0, "fdatasync failed: errno \(errno)")
    }
    deinit { close(fd) }
}

/// The system SQLite as a shop would use it for its sales: WAL mode,
/// synchronous=FULL (every commit fsynced), one row per event holding the
/// event's JSON.
final class SQLiteStore {
    let path: String
    private var db: OpaquePointer?
    private var insert: OpaquePointer?
    private var begin: OpaquePointer?
    private var commit: OpaquePointer?
    private var nextSeq: Int64 = 1

    init(path: String, blob: Bool = false) {
        self.path = path
        precondition(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nil) == SQLITE_OK, "sqlite3_open \(path)")
        exec("PRAGMA journal_mode=WAL")
        exec("PRAGMA synchronous=FULL")
        exec("CREATE TABLE IF NOT EXISTS events(seq INTEGER PRIMARY KEY, body \(blob ? "BLOB" : "TEXT") NOT NULL)")
        insert = prepare("INSERT INTO events(seq, body) VALUES (?, ?)")
        begin = prepare("BEGIN")
        commit = prepare("COMMIT")
    }

    deinit { close() }

    func close() {
        for s in [insert, begin, commit] where s != nil { sqlite3_finalize(s) }
        insert = nil; begin = nil; commit = nil
        if db != nil { sqlite3_close(db) }
        db = nil
    }

    func exec(_ sql: String) {
        var message: UnsafeMutablePointer<CChar>? = nil
        let rc = sqlite3_exec(db, sql, nil, nil, &message)
        precondition(rc == SQLITE_OK, "sqlite: \(sql): \(message.map { String(cString: $0) } ?? "rc \(rc)")")
    }

    private func prepare(_ sql: String) -> OpaquePointer? {
        var s: OpaquePointer? = nil
        precondition(sqlite3_prepare_v2(db, sql, -1, &s, nil) == SQLITE_OK, "sqlite prepare \(sql): \(String(cString: sqlite3_errmsg(db)))")
        return s
    }

    private func step(_ s: OpaquePointer?) {
        let rc = sqlite3_step(s)
        precondition(rc == SQLITE_DONE, "sqlite step: \(String(cString: sqlite3_errmsg(db)))")
        sqlite3_reset(s)
    }

    private func insertRow(_ body: [UInt8]) {
        body.withUnsafeBytes { p in
            sqlite3_bind_int64(insert, 1, nextSeq)
            // SQLITE_STATIC (nil): the bytes outlive the step below.
            _ = sqlite3_bind_blob(insert, 2, p.baseAddress, Int32(p.count), nil)
            step(insert)
            sqlite3_clear_bindings(insert)
        }
        nextSeq += 1
    }

    /// One INSERT in its own (autocommit) transaction: durable when it returns.
    func appendDurably(_ body: [UInt8]) { insertRow(body) }

    /// The rows in one transaction: durable when it returns.
    func appendDurably(contentsOf bodies: ArraySlice<[UInt8]>) {
        step(begin)
        for b in bodies { insertRow(b) }
        step(commit)
    }

    /// Moves the WAL into the database file and truncates the WAL.
    func checkpoint() { exec("PRAGMA wal_checkpoint(TRUNCATE)") }

    /// Database file plus WAL.
    var bytesOnDisk: Int { fileBytes(path) + fileBytes(path + "-wal") }
}

/// gzip (RFC 1952, zlib windowBits 31) of `input` at `level`.
func gzip(_ input: [UInt8], level: Int32 = 6) -> [UInt8] { deflated(input, level: level, windowBits: 31, dictionary: nil) }

/// Raw deflate (RFC 1951, windowBits -15, as journal frames use it) of `input` at
/// `level` with an optional preset dictionary: what deflating a block alone gives,
/// whatever the journal itself decides to store.
func rawDeflate(_ input: [UInt8], level: Int32, dictionary: [UInt8]?) -> [UInt8] {
    deflated(input, level: level, windowBits: -15, dictionary: dictionary)
}

/// One zlib deflate stream over `input` (windowBits: 31 gzip, -15 raw).
func deflated(_ input: [UInt8], level: Int32, windowBits: Int32, dictionary: [UInt8]?) -> [UInt8] {
    var stream = z_stream()
    precondition(possync_deflateInit2(&stream, level, windowBits, 8, Z_DEFAULT_STRATEGY) == Z_OK)
    defer { deflateEnd(&stream) }
    if let dictionary {
        _ = dictionary.withUnsafeBufferPointer { deflateSetDictionary(&stream, $0.baseAddress, uInt($0.count)) }
    }
    var out = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(input.count))) + 32)
    var produced = 0
    let rc = input.withUnsafeBufferPointer { i in
        out.withUnsafeMutableBufferPointer { o in
            stream.next_in = UnsafeMutablePointer(mutating: i.baseAddress)
            stream.avail_in = uInt(i.count)
            stream.next_out = o.baseAddress
            stream.avail_out = uInt(o.count)
            let r = deflate(&stream, Z_FINISH)
            produced = o.count - Int(stream.avail_out)
            return r
        }
    }
    precondition(rc == Z_STREAM_END)
    return Array(out[0..<produced])
}

/// Raw inflate (windowBits -15) with a preset dictionary, reusing one stream:
/// what a decoder cannot go below for the same deflated payloads.
final class RawInflater {
    private var stream = z_stream()
    private let dictionary: [UInt8]
    private var out: [UInt8] = []
    init(dictionary: [UInt8]) {
        self.dictionary = dictionary
        precondition(possync_inflateInit2(&stream, -15) == Z_OK)
    }
    deinit { inflateEnd(&stream) }
    /// Inflates `payload` (inflated size `length`); returns the bytes produced.
    func inflate(_ payload: [UInt8], length: Int) -> Int {
        inflateReset(&stream)
        if !dictionary.isEmpty {
            _ = dictionary.withUnsafeBufferPointer { inflateSetDictionary(&stream, $0.baseAddress, uInt($0.count)) }
        }
        if out.count < length + 1 { out = [UInt8](repeating: 0, count: length + 1) }
        var produced = 0
        let rc = payload.withUnsafeBufferPointer { i in
            out.withUnsafeMutableBufferPointer { o in
                stream.next_in = UnsafeMutablePointer(mutating: i.baseAddress)
                stream.avail_in = uInt(i.count)
                stream.next_out = o.baseAddress
                stream.avail_out = uInt(o.count)
                let r = CZlib.inflate(&stream, Z_FINISH)
                produced = o.count - Int(stream.avail_out)
                return r
            }
        }
        precondition(rc == Z_STREAM_END && produced == length, "raw inflate: rc \(rc), \(produced) of \(length) bytes")
        return produced
    }
}
