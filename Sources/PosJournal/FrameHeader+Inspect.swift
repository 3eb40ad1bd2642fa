/// Frame headers for code that reads frames outside a journal's segments
/// (bundles, snapshot runs).
extension FrameHeader {
    /// Decodes and checks the 40-byte frame header at the start of `bytes`:
    /// sync marker, header checksum, flags and field bounds, exactly as
    /// `FrameScanner` does. The payload is not looked at. The error names
    /// `file` and `offset`.
    public static func inspect(_ bytes: [UInt8], file: String, offset: UInt64) -> Result<FrameHeader, JournalError> {
        switch decode(bytes) {
        case .header(let h):
            return .success(h)
        case .invalid(let code, let message):
            return .failure(JournalError(code, message, file: file, offset: offset))
        }
    }
}
