import Foundation

/// Splits one direction of an HTTP/1.1 connection into whole messages (the
/// head and a `Content-Length` body), so the fault proxy knows which request
/// each reply answers. Enough for this server and its client: both always send
/// `Content-Length` (or no body); a chunked message stops the splitting
/// (`isLost`), and the proxy then leaves that connection's requests alone.
struct HTTPMessageSplitter {
    /// A head longer than this is not one of ours, in bytes.
    static let headBytesMax = 16 << 10

    private var buffer: [UInt8] = []
    private(set) var isLost = false

    /// Appends bytes as they were forwarded; returns the messages they completed, in order.
    mutating func feed(_ bytes: ArraySlice<UInt8>) -> [[UInt8]] {
        guard !isLost else { return [] }
        buffer += bytes
        var done: [[UInt8]] = []
        while let headEnd = Self.headEnd(buffer) {
            guard let bodyBytes = Self.contentLength(head: buffer[..<headEnd]) else {
                isLost = true
                buffer = []
                return done
            }
            guard buffer.count >= headEnd + bodyBytes else { break }
            done.append(Array(buffer[..<(headEnd + bodyBytes)]))
            buffer.removeFirst(headEnd + bodyBytes)
        }
        if Self.headEnd(buffer) == nil, buffer.count > Self.headBytesMax {
            isLost = true
            buffer = []
        }
        return done
    }

    /// The offset just past the blank line that ends the head; nil while it has not arrived.
    private static func headEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 {
            return i + 4
        }
        return nil
    }

    /// The body's length from the head: its Content-Length, 0 without one; nil for a chunked body.
    private static func contentLength(head: ArraySlice<UInt8>) -> Int? {
        var length = 0
        for line in String(decoding: head, as: UTF8.self).split(separator: "\r\n").dropFirst() {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let name = parts[0].lowercased(), value = parts[1].trimmingCharacters(in: .whitespaces)
            if name == "transfer-encoding" { return nil }
            if name == "content-length" {
                guard let n = Int(value), n >= 0 else { return nil }
                length = n
            }
        }
        return length
    }

    /// A request's path (`POST /v1/terminals/1/messages HTTP/1.1` gives `/v1/terminals/1/messages`).
    static func requestPath(_ message: [UInt8]) -> String {
        let line = String(decoding: message.prefix { $0 != 13 }, as: UTF8.self).split(separator: " ")
        return line.count >= 2 ? String(line[1]) : ""
    }

    /// A reply's status code (`HTTP/1.1 401 Unauthorized` gives 401; 0 when unreadable).
    static func status(_ message: [UInt8]) -> Int {
        let line = String(decoding: message.prefix { $0 != 13 }, as: UTF8.self).split(separator: " ")
        return line.count >= 2 ? Int(line[1]) ?? 0 : 0
    }
}
