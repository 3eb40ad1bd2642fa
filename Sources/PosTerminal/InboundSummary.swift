import PosJournal
import PosLedger
import PosWire

/// What a terminal's inbound journal says, read in journal order
/// (sync-protocol.md, "Terminal storage"): the pulled events, the cursors, and
/// the evidence of what central held of the terminal's own events.
struct InboundSummary {
    var events: [Event] = []
    /// Dots of events pulled as key-group partners (kind-1 position 0): folded, not counted in the knowledge vector.
    var partners: Set<Dot> = []
    /// The largest kind-2 acknowledgement ever recorded.
    var acknowledged: UInt64 = 0
    /// The last kind-2 or kind-5 value: what central holds now as last heard.
    var centralHolds: UInt64 = 0
    /// Set by each kind-4 record, raised by the position of each kind-1 record after it.
    var pullCursor: UInt64 = 0
    /// The digest of central's record at `pullCursor`, when the last kind-4 gave it and no kind-1 raised the cursor since.
    var pullCursorDigest: UInt64?
    /// The last kind-3 record.
    var lastSync: (wallMillis: Int64, centralWallMillis: Int64?)?
    /// The last kind-6 record (0 without one).
    var epoch: UInt64 = 0
    /// The largest kind-8 reservation: own numbers through it may be in use.
    var reserved: UInt64 = 0
    /// The highest of the terminal's own sequence numbers that the causal
    /// context of an event central wrote covers: central held that event.
    /// (Central computes its contexts from what it holds; another terminal's
    /// context is not taken as evidence, so no terminal can lock another out.)
    var echoed: UInt64 = 0

    /// The outbound journal must reach this: the larger of the two proofs, with its source.
    var evidence: DurableEvidence? {
        guard max(acknowledged, echoed) > 0 else { return nil }
        return acknowledged >= echoed
            ? DurableEvidence(sequence: acknowledged, source: "acknowledged by central (an inbound acknowledgement record)")
            : DurableEvidence(sequence: echoed, source: "seen by central (the causal context of a pulled central event covers it)")
    }

    static func read(_ inbound: Journal, terminal: ReplicaId, context: RecordDecodeContext, location: String) throws(SyncError) -> InboundSummary {
        var s = InboundSummary()
        let reader = try journal { () throws(JournalError) in try inbound.reader(from: inbound.firstSequence) }
        defer { reader.close() }
        while let (seq, record) = try journal({ () throws(JournalError) in try reader.next() }) {
            switch try InboundRecord.decode(record, location: "\(location) seq \(seq)") {
            case .pulled(let position, let bytes):
                let event: Event
                do { event = try RecordCodec.decode(bytes, context: context) } catch { throw SyncError(error, location: "\(location) seq \(seq)") }
                if event.dot.replica.isCentral { s.echoed = max(s.echoed, event.context[terminal]) }
                s.events.append(event)
                if position == 0 { s.partners.insert(event.dot) } else { s.partners.remove(event.dot) }
                if position > s.pullCursor { s.pullCursor = position; s.pullCursorDigest = nil }
            case .pullCursor(let position, let digest):
                s.pullCursor = position  // as the last session left it (it may have been reset)
                s.pullCursorDigest = digest
            case .acknowledged(let sequence):
                s.acknowledged = max(s.acknowledged, sequence)
                s.centralHolds = sequence
            case .centralBehind(let sequence):
                s.centralHolds = sequence
            case .synced(let wallMillis, let centralWallMillis):
                s.lastSync = (wallMillis, centralWallMillis)
            case .epoch(let epoch):
                s.epoch = epoch
            case .reserved(let through):
                s.reserved = max(s.reserved, through)
            case .recovered(let through):
                s.acknowledged = min(s.acknowledged, through)
                s.centralHolds = min(s.centralHolds, through)
                s.echoed = min(s.echoed, through)
            }
        }
        return s
    }
}
