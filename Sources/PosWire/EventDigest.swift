import Crypto

/// The digest central keeps of every accepted event, and the one a pull
/// cursor carries: the first 8 bytes of SHA-256 of the record (its event
/// encoding), read as a little-endian u64.
public func eventDigest(_ record: [UInt8]) -> UInt64 {
    // Hashed from the record's own buffer and read in place: no copy of the record or of the digest.
    var hasher = SHA256()
    record.withUnsafeBytes { hasher.update(bufferPointer: $0) }
    return hasher.finalize().withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }  // SHA-256 has 32 bytes
}
