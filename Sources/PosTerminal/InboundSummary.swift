import PosJournal
import PosLedger
import PosWire

/// What a terminal's inbound journal says, read in journal order
/// (sync-protocol.md, "Terminal storage"): the pulled events, the cursors, and
/// the evidence of what central held of the terminal's own events.
struct InboundSummary {
    /// Pulled events read, with the inbound sequence number of the record holding each.
    var events: [(event: Event, inboundSeq: UInt64)] = []
    /// Dots of the events read that a kind-1 record of a position above 0 brought: these count in the knowledge
    /// vector; one brought only at position 0 (a key-group partner, an event carried forward) does not, and a
    /// position-0 record never takes a count back.
    var counted: Set<Dot> = []
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

    /// The largest kind-9 record: the relay scope floor (HLC ms; 0 holds every sale).
    var scopeFloor: UInt64 = 0

    /// Reads the inbound journal from `from` (its first record when nil), in
    /// journal order, continuing `start` (a checkpoint's summary, or empty).
    /// `events` gets the pulled events read, each with its inbound sequence number.
    static func read(_ inbound: Journal, terminal: ReplicaId, context: RecordDecodeContext, location: String, from: UInt64? = nil,
                     continuing start: InboundSummary = InboundSummary()) throws(SyncError) -> InboundSummary {
        var s = start
        let first = from ?? inbound.firstSequence
        guard first <= inbound.lastSequence else { return s }
        let reader = try journal { () throws(JournalError) in try inbound.reader(from: first) }
        defer { reader.close() }
        while let (seq, record) = try journal({ () throws(JournalError) in try reader.next() }) {
            try s.apply(InboundRecord.decode(record, location: "\(location) seq \(seq)"), seq: seq, terminal: terminal, context: context, location: location)
        }
        return s
    }

    /// Applies one inbound record (read at inbound sequence `seq`).
    mutating func apply(_ record: InboundRecord, seq: UInt64, terminal: ReplicaId, context: RecordDecodeContext, location: String) throws(SyncError) {
        switch record {
        case .pulled(let position, let bytes):
            let event: Event
            do { event = try RecordCodec.decode(bytes, context: context) } catch { throw SyncError(error, location: "\(location) seq \(seq)") }
            notePulled(event, position: position, terminal: terminal)
            if position > 0 { counted.insert(event.dot) }
            events.append((event, seq))
        case .pullCursor(let position, let digest):
            pullCursor = position  // as the last session left it (it may have been reset)
            pullCursorDigest = digest
        case .acknowledged(let sequence):
            acknowledged = max(acknowledged, sequence)
            centralHolds = sequence
        case .centralBehind(let sequence):
            centralHolds = sequence
        case .synced(let wallMillis, let centralWallMillis):
            lastSync = (wallMillis, centralWallMillis)
        case .epoch(let epoch):
            self.epoch = epoch
        case .reserved(let through):
            reserved = max(reserved, through)
        case .recovered(let through):
            acknowledged = min(acknowledged, through)
            centralHolds = min(centralHolds, through)
            echoed = min(echoed, through)
        case .scopeFloor(let millis):
            scopeFloor = max(scopeFloor, millis)
        }
    }

    /// What a pulled event (kind 1) at central `position` says: the echo and the cursor.
    mutating func notePulled(_ event: Event, position: UInt64, terminal: ReplicaId) {
        if event.dot.replica.isCentral { echoed = max(echoed, event.context[terminal]) }
        if position > pullCursor { pullCursor = position; pullCursorDigest = nil }
    }

    /// Records that restate this summary: appended to the inbound journal before
    /// its oldest segments are retired, so the journal alone still reads to the
    /// same cursors, acknowledgements, reservation and floor (every rule above
    /// gives the same value when a record restating it is read again).
    var restatement: [InboundRecord] {
        var out: [InboundRecord] = []
        if acknowledged > 0 { out.append(.acknowledged(sequence: acknowledged)) }
        if centralHolds != acknowledged { out.append(.centralBehind(sequence: centralHolds)) }
        if epoch > 0 { out.append(.epoch(epoch)) }
        out.append(.pullCursor(position: pullCursor, digest: pullCursorDigest))
        if reserved > 0 { out.append(.reserved(through: reserved)) }
        if scopeFloor > 0 { out.append(.scopeFloor(millis: scopeFloor)) }
        if let lastSync { out.append(.synced(wallMillis: lastSync.wallMillis, centralWallMillis: lastSync.centralWallMillis)) }
        return out
    }
}
