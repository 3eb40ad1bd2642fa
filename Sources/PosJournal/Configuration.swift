/// When an append is durable.
public enum Durability: Sendable, Equatable {
    /// Every append call writes its records as one frame and returns only after
    /// fdatasync. Concurrent callers arriving while a write is under way share
    /// the next frame and fsync.
    case perRecord
    /// Appends wait in a batch that is written as one frame and fsynced when it
    /// holds `maxBytes` of records or its oldest record has waited
    /// `maxDelayMilliseconds`; every waiting caller resumes only after that fsync.
    case groupCommit(maxBytes: Int, maxDelayMilliseconds: Int)
    /// Appends return at once; records are written (not fsynced) when the buffer
    /// reaches `bufferBytes`, and on `flush()`, `sync()` and `close()`.
    case none(bufferBytes: Int)
}

/// How a journal is opened. The layer above supplies the meaning-bearing
/// parts: the compression dictionary and the key.
public struct JournalConfiguration: Sendable {
    public var durability: Durability
    /// A segment is sealed and the next one begun once its size would pass this many bytes.
    public var segmentBytesMax: Int
    /// Dictionary for frames written from now on (nil: plain deflate).
    public var dictionary: CompressionDictionary?
    /// Further dictionaries that older segments may name, for reading only.
    public var readDictionaries: [CompressionDictionary]
    /// Key for frames written from now on and for reading (nil: not encrypted).
    public var key: JournalKey?
    /// zlib level 1...9 of the frames written (a reader reads any level).
    public var compressionLevel: Int32
    /// The default level: 1. A terminal's journal seals a frame per durable append, on
    /// the path a sale waits for; at 1 sealing a 100-event frame costs about two thirds
    /// of what it costs at 6 and the frame is about 1% larger (BENCHMARKS.md rows 3,
    /// 3b, 4). Blocks under `FrameEncoder.deflateBlockBytesMin` are not deflated at all.
    public static let compressionLevelDefault: Int32 = 1
    /// Journal id for a journal created by this open (random when nil).
    public var journalID: JournalID?
    /// Sequence number of the first record of a journal created by this open
    /// (a rebuilt journal continues where the old one's retired segments ended).
    public var firstSequence: UInt64 = 1
    /// The clock group commit's delay is measured on: the monotonic clock
    /// (tests give one that reads as they choose).
    var monotonicNanos: @Sendable () -> UInt64 = MonotonicClock.nanos

    public init(durability: Durability = .perRecord,
                segmentBytesMax: Int = JournalLimits.segmentBytesDefault,
                dictionary: CompressionDictionary? = nil,
                readDictionaries: [CompressionDictionary] = [],
                key: JournalKey? = nil,
                compressionLevel: Int32 = JournalConfiguration.compressionLevelDefault,
                journalID: JournalID? = nil) {
        precondition(segmentBytesMax >= JournalLimits.segmentHeaderBytes + JournalLimits.frameHeaderBytes)
        precondition((1...9).contains(compressionLevel))
        self.durability = durability
        self.segmentBytesMax = segmentBytesMax
        self.dictionary = dictionary
        self.readDictionaries = readDictionaries
        self.key = key
        self.compressionLevel = compressionLevel
        self.journalID = journalID
    }

    var allDictionaries: [CompressionDictionary] {
        (dictionary.map { [$0] } ?? []) + readDictionaries
    }
}
