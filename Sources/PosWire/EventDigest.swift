import Crypto
import PosBytes

/// The digest central keeps of every accepted event, and the one a pull
/// cursor carries: the first 8 bytes of SHA-256 of the record (its event
/// encoding), read as a little-endian u64.
public func eventDigest(_ record: [UInt8]) -> UInt64 {
    let d = SHA256.hash(data: record)
    return ByteReader<ByteReadError>(Array(d)).getLE(UInt64.self, at: 0)!  // SHA-256 has 32 bytes
}
