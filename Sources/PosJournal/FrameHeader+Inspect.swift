/// Frame headers for tools that walk frames themselves (journal-dump reads
/// past damage, which `SegmentCursor` deliberately does not).
extension FrameHeader {
    /// Decodes and checks one 40-byte frame header: sync marker, header
    /// checksum, flags and field bounds, exactly as `SegmentCursor` does. The
    /// payload is not looked at. The error names `file` and `offset`.
    public static func inspect(_ bytes: UnsafeRawBufferPointer, file: String, offset: UInt64) -> Result<FrameHeader, JournalError> {
        switch decode(bytes) {
        case .header(let h):
            return .success(h)
        case .invalid(let code, let message):
            return .failure(JournalError(code, message, file: file, offset: offset))
        }
    }
}
