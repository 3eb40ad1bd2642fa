// Damaged journal fixtures, each derived from valid-plain/ by deterministic
// byte surgery (no randomness), so regenerating them gives the same bytes.
// Fixtures/journals/README.md says what open and salvage must do with each.
import Foundation
import PosJournal

/// The frames of one segment file, in order (the file must be intact).
func frames(ofSegment path: String) throws -> [RawFrame] {
    let cursor = try SegmentCursor(file: PosixFileSystem().openFile(path, mode: .readOnly), path: path)
    defer { cursor.close() }
    var result: [RawFrame] = []
    while case .frame(let f) = try cursor.next() { result.append(f) }
    return result
}

func copyJournal(_ from: String, _ to: String) throws {
    try? fm.removeItem(atPath: to)
    try fm.createDirectory(atPath: to, withIntermediateDirectories: true)
    for name in try fm.contentsOfDirectory(atPath: from).sorted() where name.hasSuffix(SegmentName.suffix) {
        try fm.copyItem(atPath: from + "/" + name, toPath: to + "/" + name)
    }
}

func bytes(_ path: String) -> [UInt8] { Array(fm.contents(atPath: path)!) }
func store(_ b: [UInt8], _ path: String) throws { try Data(b).write(to: URL(fileURLWithPath: path)) }

/// Writes the damaged fixtures next to `valid-plain/` and prints what each removed or changed.
func makeDamagedFixtures() throws {
    let valid = root + "/valid-plain"
    let segments = try fm.contentsOfDirectory(atPath: valid).filter { $0.hasSuffix(SegmentName.suffix) }.sorted()
    precondition(segments.count == 3, "valid-plain must have 3 segments")
    let last = segments[2], middle = segments[1]

    // Torn tail: the last segment ends halfway through its last frame's payload.
    do {
        let dir = root + "/torn-tail"
        try copyJournal(valid, dir)
        let f = try frames(ofSegment: dir + "/" + last).last!
        let cut = Int(f.offset) + JournalLimits.frameHeaderBytes + Int(f.header.storedLength) / 2
        try store(Array(bytes(dir + "/" + last)[0..<cut]), dir + "/" + last)
        print("torn-tail: \(last) cut at \(cut), inside frame seq \(f.header.firstSequence)...\(f.header.lastSequence) at offset \(f.offset)")
    }
    // Zero-filled tail: the last frame's bytes read back as zeros and 4 KiB more of
    // zeros follow (the file size reached the disk, the data did not).
    do {
        let dir = root + "/zero-tail"
        try copyJournal(valid, dir)
        let f = try frames(ofSegment: dir + "/" + last).last!
        var b = bytes(dir + "/" + last)
        for i in Int(f.offset)..<b.count { b[i] = 0 }
        b += [UInt8](repeating: 0, count: 4096)
        try store(b, dir + "/" + last)
        print("zero-tail: \(last) zeros from offset \(f.offset) (frame seq \(f.header.firstSequence)...\(f.header.lastSequence)) to \(b.count)")
    }
    // Bit flip mid-log: one bit of the payload of the 10th frame of the middle segment.
    do {
        let dir = root + "/bitflip-mid"
        try copyJournal(valid, dir)
        let f = try frames(ofSegment: dir + "/" + middle)[9]
        var b = bytes(dir + "/" + middle)
        let at = Int(f.offset) + JournalLimits.frameHeaderBytes + Int(f.header.storedLength) / 2
        b[at] ^= 0x10
        try store(b, dir + "/" + middle)
        print("bitflip-mid: \(middle) byte \(at) ^= 0x10, in frame seq \(f.header.firstSequence)...\(f.header.lastSequence) at offset \(f.offset)")
    }
    // Truncated segment header: the last segment is cut to 40 of its 64 header bytes.
    do {
        let dir = root + "/truncated-header"
        try copyJournal(valid, dir)
        try store(Array(bytes(dir + "/" + last)[0..<40]), dir + "/" + last)
        print("truncated-header: \(last) cut to 40 bytes")
    }
    // Missing middle segment.
    do {
        let dir = root + "/missing-middle"
        try copyJournal(valid, dir)
        try fm.removeItem(atPath: dir + "/" + middle)
        print("missing-middle: \(middle) removed")
    }
    // Future format version: every segment header says version 2 (checksum recomputed).
    do {
        let dir = root + "/future-version"
        try copyJournal(valid, dir)
        for name in segments {
            var b = bytes(dir + "/" + name)
            b[8] = 2
            b[9] = 0
            let crc = CRC32C.checksum(Array(b[0..<60]))
            for i in 0..<4 { b[60 + i] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i))) }
            try store(b, dir + "/" + name)
        }
        print("future-version: version 2 in every segment header")
    }
}
