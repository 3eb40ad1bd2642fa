import PosLedger

/// Central's side of the protocol, whatever stores it: the embedded
/// `FileCentralStore` by default, PostgreSQL at scale. One contract.
public protocol CentralStore: AnyObject, Sendable {
    var centralID: CentralID { get }
    /// Answers one protocol request (hello, push or pull) with its reply or a refusal.
    func handle(_ request: SyncMessage) -> SyncMessage
    /// Applies a courier's bundle file: what was new or already held.
    func importBundle(path: String) throws(SyncError) -> BundleImportReport
}

/// What importing a bundle did.
public struct BundleImportReport: Sendable, Equatable, CustomStringConvertible {
    public var terminal: ReplicaId
    public var events: Int
    public var new: Int
    public var duplicates: Int
    public var acknowledged: UInt64
    public var description: String {
        "terminal \(terminal): \(events) events, \(new) new, \(duplicates) already held; acknowledged through seq \(acknowledged)"
    }
}
