/// The data frames of a run: section, offset and length of each, and their first
/// and last keys in one buffer (`keyStride` bytes a frame, each key zero-padded
/// to 28): a few long-lived allocations, not two per frame. The writer builds it,
/// the footer stores it, the reader searches it.
struct FrameIndex: Sendable {
    private(set) var frames: [(section: SnapshotSection, offset: UInt64, length: UInt32)] = []
    private(set) var keys: [UInt8] = []
    private static let keyStride = 56

    var count: Int { frames.count }
    subscript(i: Int) -> (section: SnapshotSection, offset: UInt64, length: UInt32) { frames[i] }

    mutating func append(_ section: SnapshotSection, offset: UInt64, length: UInt32,
                         firstKey: ArraySlice<UInt8>, lastKey: ArraySlice<UInt8>) {
        frames.append((section, offset, length))
        let pad = [UInt8](repeating: 0, count: 28 - section.keyBytes)
        keys += firstKey + pad + lastKey + pad
    }

    func firstKey(_ i: Int, _ count: Int) -> ArraySlice<UInt8> {
        keys[(i * Self.keyStride)..<(i * Self.keyStride + count)]
    }

    func lastKey(_ i: Int, _ count: Int) -> ArraySlice<UInt8> {
        keys[(i * Self.keyStride + 28)..<(i * Self.keyStride + 28 + count)]
    }

    /// Where each section's frames are (frames come in section order), indexed by the section's raw value
    /// (a lookup reads it once a run: an array, not a dictionary to hash).
    func sectionRanges() -> [Range<Int>?] {
        var ranges = [Range<Int>?](repeating: nil, count: Int(SnapshotSection.allCases.map(\.rawValue).max()!) + 1)
        for (i, f) in frames.enumerated() { ranges[Int(f.section.rawValue)] = (ranges[Int(f.section.rawValue)]?.lowerBound ?? i)..<i + 1 }
        return ranges
    }
}
