import CZlib

/// A preset deflate dictionary, identified by a number stored in each segment
/// header. The journal does not know what records mean: the layer above
/// supplies the dictionary (typical record bytes) and its id. Id 0 means none.
public struct CompressionDictionary: Sendable, Equatable {
    public let id: UInt32
    public let bytes: [UInt8]
    /// zlib uses at most the last 32 KiB of a dictionary.
    public static let bytesMax = 32 * 1024

    public init(id: UInt32, bytes: [UInt8]) {
        precondition(id != 0, "dictionary id 0 is reserved for 'no dictionary'")
        precondition(bytes.count <= Self.bytesMax, "dictionary larger than 32 KiB")
        self.id = id
        self.bytes = bytes
    }
}

/// Raw deflate (RFC 1951, zlib windowBits -15) with an optional preset
/// dictionary. The z_stream is initialised once and reset per frame
/// (`deflateReset` + `deflateSetDictionary`), not re-created.
final class Deflater {
    private var stream = z_stream()
    private let dictionary: [UInt8]
    private var scratch: [UInt8] = []

    init(level: Int32, dictionary: CompressionDictionary?) {
        self.dictionary = dictionary?.bytes ?? []
        let rc = possync_deflateInit2(&stream, level, -15, 8, Z_DEFAULT_STRATEGY)
        precondition(rc == Z_OK, "deflateInit2 failed: \(rc)")
    }

    deinit { deflateEnd(&stream) }

    /// Compresses `input`; nil when the output would not be smaller (store it instead).
    func compress(_ input: [UInt8]) -> [UInt8]? {
        var rc = deflateReset(&stream)
        precondition(rc == Z_OK)
        if !dictionary.isEmpty {
            rc = dictionary.withUnsafeBufferPointer { deflateSetDictionary(&stream, $0.baseAddress, uInt($0.count)) }
            precondition(rc == Z_OK)
        }
        let bound = Int(deflateBound(&stream, uLong(input.count)))
        if scratch.count < bound { scratch = [UInt8](repeating: 0, count: bound) }
        var produced = 0
        rc = input.withUnsafeBufferPointer { inBuf in
            scratch.withUnsafeMutableBufferPointer { outBuf in
                stream.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress)
                stream.avail_in = uInt(inBuf.count)
                stream.next_out = outBuf.baseAddress
                stream.avail_out = uInt(outBuf.count)
                let r = deflate(&stream, Z_FINISH)
                produced = outBuf.count - Int(stream.avail_out)
                stream.next_in = nil
                stream.next_out = nil
                return r
            }
        }
        precondition(rc == Z_STREAM_END, "deflate with a deflateBound-sized buffer must finish: \(rc)")
        guard produced < input.count else { return nil }
        return Array(scratch[0..<produced])
    }
}

/// Raw inflate with an optional preset dictionary; output is capped at the
/// length the frame header states, so a decompression bomb stops at that cap
/// (which `FrameHeader` already bounds by `frameRecordBytesMax`).
final class Inflater {
    private var stream = z_stream()
    private let dictionary: [UInt8]

    init(dictionary: CompressionDictionary?) {
        self.dictionary = dictionary?.bytes ?? []
        let rc = possync_inflateInit2(&stream, -15)
        precondition(rc == Z_OK, "inflateInit2 failed: \(rc)")
    }

    deinit { inflateEnd(&stream) }

    enum Failure: Error {
        case corrupt(String)
        case longer(stated: Int)
        case shorter(stated: Int, actual: Int)
    }

    func decompress(_ input: UnsafeRawBufferPointer, statedLength: Int) -> Result<[UInt8], Failure> {
        var rc = inflateReset(&stream)
        precondition(rc == Z_OK)
        if !dictionary.isEmpty {
            rc = dictionary.withUnsafeBufferPointer { inflateSetDictionary(&stream, $0.baseAddress, uInt($0.count)) }
            precondition(rc == Z_OK)
        }
        // One spare byte detects output longer than stated without a second buffer.
        var output = [UInt8](repeating: 0, count: statedLength + 1)
        var produced = 0
        var unread = 0
        rc = output.withUnsafeMutableBufferPointer { outBuf in
            stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: UInt8.self))
            stream.avail_in = uInt(input.count)
            stream.next_out = outBuf.baseAddress
            stream.avail_out = uInt(outBuf.count)
            let r = inflate(&stream, Z_FINISH)
            produced = outBuf.count - Int(stream.avail_out)
            unread = Int(stream.avail_in)
            stream.next_in = nil
            stream.next_out = nil
            return r
        }
        if produced > statedLength { return .failure(.longer(stated: statedLength)) }
        guard rc == Z_STREAM_END else {
            let reason = stream.msg.map { String(cString: $0) } ?? zError(rc).map { String(cString: $0) } ?? "code \(rc)"
            if rc == Z_BUF_ERROR { return .failure(.corrupt("deflate stream ends early after \(produced) bytes")) }
            return .failure(.corrupt("inflate: \(reason)"))
        }
        guard produced == statedLength else { return .failure(.shorter(stated: statedLength, actual: produced)) }
        guard unread == 0 else { return .failure(.corrupt("\(unread) bytes follow the end of the deflate stream")) }
        output.removeLast()
        return .success(output)
    }
}
