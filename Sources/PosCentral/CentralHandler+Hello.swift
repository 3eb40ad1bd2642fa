import PosLedger
import PosWire

// The handshake, and the evidence of loss a hello carries
// (sync-protocol.md, "A session" step 1, "Losses and recovery").

extension CentralHandler {
    func hello(_ m: SyncMessage.Hello) throws(SyncError) -> SyncMessage.Welcome {
        guard m.central == centralID else {
            throw SyncError(.wrongCentral, "terminal \(m.terminal.rawValue) belongs to central \(m.central), this is \(centralID)")
        }
        var t = try entry(m.terminal)
        let now = wallClockValue()
        t.lastWallMillis = m.wallMillis
        // Overflow-safe: the terminal's clock comes from the wire.
        t.clockSkewed = HybridLogicalClock.isSkewed(terminalWallMillis: m.wallMillis, centralWallMillis: now, boundMillis: SyncLimits.clockSkewMillisMax)
        terminals[m.terminal] = t
        // Kept when off, and once more when back in bound: what central found outlives the process (the nightly report).
        if t.clockSkewed || storage.clockReadings()[m.terminal]?.skewed == true {
            do { try storage.saveClockReading(ClockReading(terminalMillis: m.wallMillis, centralMillis: now, skewed: t.clockSkewed), of: m.terminal) } catch {
                logger.warning("a clock reading could not be kept", metadata: ["sync.terminal": "\(m.terminal.rawValue)", "sync.error": "\(error)"])
            }
        }
        let acknowledged = storage.mark(of: m.terminal)
        let epochBefore = storage.losses.epoch
        try noteEvidence(of: m, holding: acknowledged, now: now)
        let head = storage.head
        let losses = storage.losses
        let epoch = losses.epoch
        let cursorMax: UInt64
        if m.epoch < epoch {
            cursorMax = min(head, losses.cursorLimit(sinceEpoch: m.epoch) ?? head)
        } else if m.epoch > epochBefore {
            // An epoch this loss log never had: central was restored from an older copy, and nothing
            // says which positions the terminal pulled are still the same (the digest check saw one).
            cursorMax = 0
        } else {
            cursorMax = head
        }
        return .init(acknowledged: acknowledged, head: head, clockSkewed: t.clockSkewed,
                     epoch: epoch, cursorMax: cursorMax, wallMillis: now)
    }

    /// A hello is evidence: a terminal that recorded an acknowledgement above
    /// what central holds of it, or that holds central's own events beyond
    /// central's, shows central lost them. Each is recorded once; the terminal
    /// then re-pushes what it still has.
    ///
    /// When the terminal's last session was in the current history epoch, that
    /// evidence, or a pull cursor beyond the journal's head, shows a loss no
    /// recorded cut explains: the journal lost its tail with no torn frame to
    /// show it (cut at a frame boundary, a segment lost, restored from a
    /// backup), and positions after the loss may hold other events now than
    /// the ones terminals pulled there. So does a cursor within the journal
    /// whose digest names another record than the one there now. Where the loss
    /// began is not known, so it is recorded as a history change from position
    /// 1: every pull cursor set before it starts again from the beginning (the
    /// knowledge vectors keep what is held from coming twice), and central's own
    /// numbers go on above its reservation.
    private func noteEvidence(of m: SyncMessage.Hello, holding acknowledged: UInt64, now: Int64) throws(SyncError) {
        defer { logNewLosses() }
        let losses = storage.losses
        let head = storage.head
        let centralSequence = storage.centralSequence
        let heldOwn = m.knowledge[.central]
        // Central reserves its own numbers durably before using them (the reservation), and a cut's
        // floor keeps what it reserved: no event of this central's history has a higher number. A
        // claim above that is not evidence (another history, or forged) and would move central's
        // numbering anywhere up to the end of the sequence space: refused, nothing recorded.
        let ownReserved = max(storage.reservedThrough, losses.centralSequenceFloor, centralSequence)
        guard heldOwn <= ownReserved else {
            throw SyncError(.invalidArgument, "terminal \(m.terminal.rawValue)'s hello claims central's own event 0:\(heldOwn); central never reserved a number above \(ownReserved): no event of its history has that number; refused, nothing recorded")
        }
        let terminalBehind = m.acknowledged > acknowledged
        // A loss an unresolved record already names was explained when that record was written
        // (a retry after an interrupted re-push shows it again: it is not a new loss).
        let newTerminalBehind = terminalBehind && !losses.unresolved(m.terminal).contains(where: { ($0.through ?? 0) >= m.acknowledged })
        let centralBehind = heldOwn > max(centralSequence, losses.centralSequenceFloor)
        // A cursor still within the journal must name the record the terminal pulled there; another one means
        // the positions were reused after a loss (unless a recorded cut since the terminal's epoch already rewinds it).
        var cursorRewritten = false
        if m.cursorDigest != 0, m.pullCursor >= 1, m.pullCursor <= head,
           m.epoch == losses.epoch || (losses.cursorLimit(sinceEpoch: m.epoch) ?? .max) >= m.pullCursor {
            cursorRewritten = try storage.record(at: m.pullCursor).map(eventDigest) != m.cursorDigest
        }
        let unexplained = (m.epoch == losses.epoch && (newTerminalBehind || centralBehind || m.pullCursor > head)) || cursorRewritten
        if newTerminalBehind {
            try storage.appendLoss(LossRecord(kind: .terminalBehind, recordedMillis: now, terminal: m.terminal.rawValue,
                                              from: acknowledged + 1, through: m.acknowledged,
                                              note: "terminal \(m.terminal.rawValue) recorded central's acknowledgement through seq \(m.acknowledged); central holds its events only through \(acknowledged): awaiting re-push"))
        }
        if centralBehind {
            let floor = max(heldOwn, storage.reservedThrough)
            try storage.appendLoss(LossRecord(kind: .centralBehind, recordedMillis: now, terminal: m.terminal.rawValue,
                                              from: centralSequence + 1, through: heldOwn, centralSequenceFloor: floor,
                                              note: "terminal \(m.terminal.rawValue) holds central's own events through 0:\(heldOwn); central holds them only through 0:\(centralSequence): they are lost at central and their numbers are never reused"))
        }
        if unexplained {
            let seen = [newTerminalBehind ? "acknowledged through seq \(m.acknowledged), central holds \(acknowledged)" : nil,
                        centralBehind ? "holds central's 0:\(heldOwn), central's own events end at 0:\(centralSequence)" : nil,
                        m.pullCursor > head ? "pulled through position \(m.pullCursor), the journal ends at \(head)" : nil,
                        cursorRewritten ? "pulled through position \(m.pullCursor), which holds another record now" : nil].compactMap { $0 }
            try storage.appendLoss(LossRecord(kind: .journalCut, recordedMillis: now, terminal: m.terminal.rawValue, positionsFrom: 1,
                                              file: "journal", centralSequenceFloor: max(heldOwn, storage.reservedThrough),
                                              note: "terminal \(m.terminal.rawValue)'s hello shows a loss no recorded cut explains (\(seen.joined(separator: "; "))): the journal lost its tail with no torn frame to show it; every pull cursor set before now starts again from position 0"))
        }
    }
}
