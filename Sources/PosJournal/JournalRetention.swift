import Logging

/// Retention: removing the oldest segments once every record in them has been
/// acknowledged (by the layer above, e.g. the server has them).
///
/// Segment i holds records `base(i) ... base(i+1) - 1`, so a segment can go
/// when the next segment's base - 1 is at or below the acknowledged sequence
/// number. The last segment (the one being written) never goes. Segments go
/// oldest first, one at a time, each removal made durable with a directory
/// fsync before the next: whatever a crash keeps is a suffix of the segments,
/// which opens (the first remaining segment's chain seed is trusted, as it
/// must be for any retired journal).
enum SegmentRetention {
    /// Removes what `acknowledged` allows; returns the removed names and the new first sequence number.
    static func retire(directory: String, fs: any JournalFileSystem, through acknowledged: UInt64,
                       writingBase: UInt64, logger: Logger) throws(JournalError) -> (removed: [String], firstSequence: UInt64?) {
        let segments = try JournalScan.segmentNames(in: directory, fs: fs)
        var removed: [String] = []
        var index = 0
        while index + 1 < segments.count {
            let (base, name) = segments[index]
            let lastRecord = segments[index + 1].base - 1
            guard lastRecord <= acknowledged, base < writingBase else { break }
            try fs.removeFile(directory + "/" + name)
            try fs.syncDirectory(directory)
            removed.append(name)
            logger.notice("journal segment retired", metadata: [
                "journal.file": "\(directory)/\(name)", "journal.first_sequence": "\(base)", "journal.last_sequence": "\(lastRecord)",
                "journal.acknowledged": "\(acknowledged)",
            ])
            index += 1
        }
        return (removed, index < segments.count ? segments[index].base : nil)
    }
}
