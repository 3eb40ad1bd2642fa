import PosLedger
import PosWire

/// One entry of central's loss log (`losses.jsonl`): evidence that data central
/// acknowledged, or may have acknowledged, went missing, and what became of it.
/// Nothing is ever cut or skipped at central without one (sync-protocol.md,
/// "Losses and recovery").
public struct LossRecord: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        /// Open cut a damaged or torn tail off central's journal: positions from `positionsFrom` on are gone.
        case journalCut = "journal-cut"
        /// A terminal's hello showed an acknowledgement (`through`) above what central holds (`from` - 1).
        case terminalBehind = "terminal-behind"
        /// The terminal re-pushed what a `terminal-behind` record (`refersTo`) missed.
        case repaired
        /// The terminal could no longer supply `from`...`through` (retired): lost for good, skipped.
        case unrecoverable
        /// A terminal holds central's own events `from`...`through` that central no longer has.
        case centralBehind = "central-behind"
        /// `possync central recover` rebuilt or cut the journal (what it kept and dropped is in `note`).
        case recovered
        /// A terminal pushed `sequence-void` events for `from`...`through`: lost at the terminal before central held them.
        case voided
    }

    /// 1, 2, ... in file order.
    public var id: Int
    public var kind: Kind
    /// Central's wall clock when it was recorded, in Unix milliseconds.
    public var recordedMillis: Int64
    public var terminal: UInt32?
    /// Sequence numbers (of `terminal`, or of central's own events for `central-behind`).
    public var from: UInt64?
    public var through: UInt64?
    /// Central journal positions concerned (`journal-cut`, `recovered`).
    public var positionsFrom: UInt64?
    public var file: String?
    public var offset: UInt64?
    public var bytes: UInt64?
    /// The record a `repaired` or `unrecoverable` one resolves.
    public var refersTo: Int?
    /// Central's own events are numbered above this from now on (none of the lost ones is reused).
    public var centralSequenceFloor: UInt64?
    /// What happened, in one line.
    public var note: String

    public init(id: Int = 0, kind: Kind, recordedMillis: Int64, terminal: UInt32? = nil, from: UInt64? = nil, through: UInt64? = nil,
                positionsFrom: UInt64? = nil, file: String? = nil, offset: UInt64? = nil, bytes: UInt64? = nil,
                refersTo: Int? = nil, centralSequenceFloor: UInt64? = nil, note: String) {
        self.id = id
        self.kind = kind
        self.recordedMillis = recordedMillis
        self.terminal = terminal
        self.from = from
        self.through = through
        self.positionsFrom = positionsFrom
        self.file = file
        self.offset = offset
        self.bytes = bytes
        self.refersTo = refersTo
        self.centralSequenceFloor = centralSequenceFloor
        self.note = note
    }

    /// Whether a terminal's re-push can still repair it.
    public var awaitsRepush: Bool { kind == .terminalBehind }
}

/// What a loss log says, derived from its records alone (the same for every storage).
extension Array where Element == LossRecord {
    /// The records that changed central's journal positions, in order: the i-th begins epoch i.
    private var historyChanges: [LossRecord] { filter { $0.kind == .journalCut || $0.kind == .recovered } }

    /// Central's history epoch: how many times its journal was cut or rebuilt.
    public var epoch: UInt64 { UInt64(historyChanges.count) }

    /// The last journal position a pull cursor set in epoch `e` may still trust:
    /// positions from the earliest cut since then were removed (and may have been
    /// reused). Nil when nothing changed since `e`.
    public func cursorLimit(sinceEpoch e: UInt64) -> UInt64? {
        let later = historyChanges.dropFirst(Int(Swift.min(e, UInt64(Int.max))))
        return later.map { ($0.positionsFrom ?? 1) - 1 }.min()
    }

    /// Central's own sequence numbers at or below this may have been used by lost events.
    public var centralSequenceFloor: UInt64 { compactMap(\.centralSequenceFloor).max() ?? 0 }

    /// `terminal-behind` records of `terminal` not yet resolved.
    public func unresolved(_ terminal: ReplicaId) -> [LossRecord] {
        let resolved = Set(compactMap(\.refersTo))
        return filter { $0.kind == .terminalBehind && $0.terminal == terminal.rawValue && !resolved.contains($0.id) }
    }

    /// Ranges of `terminal`'s sequence numbers recorded as lost for good (skipped in its sequence).
    public func skipped(_ terminal: ReplicaId) -> [ClosedRange<UInt64>] {
        filter { $0.kind == .unrecoverable && $0.terminal == terminal.rawValue }.compactMap { r in
            guard let a = r.from, let b = r.through, a <= b else { return nil }
            return a...b
        }
    }

    /// A journal cut already recorded for this exact cut: a crash between the record and the cut
    /// repeats the open, which finds the same tail (file, offset, bytes) with nothing recorded since.
    /// A cut recorded earlier at the same offset is another cut once anything came after it (the
    /// journal grew past the offset again; what was written there is gone now).
    public func hasCut(file: String, offset: UInt64, bytes: UInt64, floor: UInt64) -> Bool {
        guard let last else { return false }
        return last.kind == .journalCut && last.file == file && last.offset == offset && last.bytes == bytes && last.centralSequenceFloor == floor
    }
}
