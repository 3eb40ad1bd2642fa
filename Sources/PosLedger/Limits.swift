// Every bound of the domain layer in one place, each with its unit in the
// name. Decoders check them before allocating; encoders precondition them.

public enum Limits {
    /// Largest encoded record the codec reads or writes.
    public static let recordBytesMax = 4096
    /// Record format version 1: every field stored (sync-protocol.md, "Records").
    public static let recordVersion: UInt8 = 1
    /// Record format version 2: as version 1, except that a capture holding its payment code leaves
    /// out its duplicate key (the reader derives it with the merchant key). Written for exactly such
    /// a capture; every other record is still written as version 1.
    public static let recordVersionDerived: UInt8 = 2

    /// Terminal replica ids are 1...terminalIdMax (6 decimal digits, so a
    /// return code stays short). Replica id 0 is central.
    public static let terminalIdMax: UInt32 = 999_999
    /// Sequence numbers are 1...sequenceMax (12 decimal digits: 31 years at
    /// 1,000 events per second, far beyond any terminal's life).
    public static let sequenceMax: UInt64 = 999_999_999_999

    /// Money: amounts are minor units, 1...amountMinorMax (10^15: no
    /// overflow when adding a million of them in Int64).
    public static let amountMinorMax: Int64 = 1_000_000_000_000_000

    public static let noteBytesMax = 1000
    public static let reasonTextBytesMax = 280
    public static let contactBytesMax = 64
    public static let accountBytesMax = 64
    /// Entries of one encoded version vector (distinct writers of one entity).
    public static let versionVectorEntriesMax = 1024
    /// Entries of a terminal's knowledge vector (hello, pull, checkpoint): the replicas whose events it
    /// holds or held, its merchant's terminals and central, so a chain of thousands of shops fits.
    public static let knowledgeEntriesMax = 65_536
    /// Terminals one merchant may enroll: a knowledge vector names each of them and central, so
    /// `knowledgeEntriesMax` - 1; central refuses the next enrollment of that merchant.
    public static let merchantTerminalsMax = knowledgeEntriesMax - 1

    public static let paymentCodeDigitsMin = 16
    public static let paymentCodeDigitsMax = 24
    public static let duplicateKeyBytes = 16

    /// Return code: 1 length digit + up to 6 replica digits + up to 12
    /// sequence digits + 1 Damm check digit.
    public static let returnCodeDigitsMax = 20

    /// HLC: 48-bit milliseconds since the Unix epoch, 16-bit logical counter.
    public static let hlcMillisMax: UInt64 = (1 << 48) - 1
    public static let hlcLogicalMax: UInt64 = (1 << 16) - 1
    /// A remote timestamp more than this ahead of our wall clock is refused.
    public static let hlcRemoteAheadMillisMaxDefault: Int64 = 24 * Millis.perHour
}
