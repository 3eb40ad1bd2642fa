import PosLedger
import PosWire

// The relay scope of one pull (sync-protocol.md, "Relay scope"): which events
// of the terminal's merchant it relays, decided on central's folded state (the
// sale each event belongs to and that sale's capture time), and the key-group
// partners a capture in scope brings with it.

struct PullScope {
    /// Key-group partners sent with one capture, at most (a payment
    /// code is single-use: a group this large is an attack, not a shop).
    static let partnersMax = 1024

    /// The pull's floor, HLC milliseconds (0: unscoped, every event relayed as before).
    let floorMillis: UInt64
    let terminal: ReplicaId
    /// Dots relayed in this batch.
    private(set) var sent: Set<Dot> = []
    /// Per sale: its capture's HLC milliseconds (inner nil: central holds no capture).
    private var captureMillis: [SaleId: UInt64?] = [:]
    /// Per sale: whether its capture or one sharing its duplicate key is in scope.
    private var groupInScope: [SaleId: Bool] = [:]
    /// Partners left out of replies by `partnersMax` (logged by the handler).
    private(set) var partnersLeftOut = 0

    init(floorMillis: UInt64, terminal: ReplicaId) {
        self.floorMillis = floorMillis
        self.terminal = terminal
    }

    mutating func relayed(_ dot: Dot) { sent.insert(dot) }

    /// What the pull relays for `event` (another terminal's, of the merchant, not
    /// covered by the knowledge vector), in order: nothing (out of scope), the
    /// event, or for a capture in scope its key-group partners and their
    /// outcomes, then the capture.
    mutating func selection(of event: Event, storage: any CentralStorage) throws(SyncError) -> [Event] {
        guard floorMillis > 0 else { return [event] }
        switch event.body {
        case .saleCaptured(let capture):
            let sale = SaleId(event.dot)
            if holds(event.hlc.millis) { return try partners(of: sale, key: capture.duplicateKey, storage) + [event] }
            return try keyGroupInScope(sale, storage) ? [event] : []
        case .saleConfirmed(let sale), .saleDeclined(let sale), .saleExpired(let sale):
            // An outcome goes with its capture: in scope, or a partner of a capture in scope.
            guard try millis(of: sale, storage) != nil else { return [event] }  // capture unknown here: central cannot tell
            return try keyGroupInScope(sale, storage) ? [event] : []
        default:
            // Tickets (request, decisions, notes) go with their sale when it is in scope itself.
            guard let sale = try sale(of: event, storage), let captured = try millis(of: sale, storage) else { return [event] }
            return holds(captured) ? [event] : []
        }
    }

    /// For the pulling terminal's own capture in scope: its key-group partners and their outcomes
    /// (the terminal's journal holds the capture, not the captures of its code elsewhere).
    mutating func partners(ofOwn event: Event, storage: any CentralStorage) throws(SyncError) -> [Event] {
        guard floorMillis > 0, case .saleCaptured(let capture) = event.body, holds(event.hlc.millis) else { return [] }
        return try partners(of: SaleId(event.dot), key: capture.duplicateKey, storage)
    }

    /// Whether a sale captured at these HLC milliseconds is in the pull's scope (the one rule: `RelayScope`).
    private func holds(_ captureMillis: UInt64) -> Bool {
        RelayScope.holds(capture: HLCTimestamp(millis: captureMillis, logical: 0), floorMillis: Int64(floorMillis))
    }

    /// The sale a ticket event belongs to (nil: central holds no request for its ticket, or not a ticket event).
    private func sale(of event: Event, _ storage: any CentralStorage) throws(SyncError) -> SaleId? {
        if case .refundRequested(let r) = event.body { return r.sale }
        guard case .ticket(let ticket)? = EntityKey.of(event) else { return nil }
        try storage.prepare(.ticket(ticket))
        guard case .refundRequested(let r)? = storage.resident.request(of: ticket)?.body else { return nil }
        return r.sale
    }

    /// The HLC milliseconds of a sale's capture as central holds it (nil: none held).
    private mutating func millis(of sale: SaleId, _ storage: any CentralStorage) throws(SyncError) -> UInt64? {
        if let known = captureMillis[sale] { return known }
        try storage.prepare(.sale(sale))
        let found = storage.resident.capture(of: sale)?.hlc.millis
        captureMillis[sale] = found
        return found
    }

    /// Whether the sale's capture, or one sharing its duplicate key, is in scope.
    private mutating func keyGroupInScope(_ sale: SaleId, _ storage: any CentralStorage) throws(SyncError) -> Bool {
        if let known = groupInScope[sale] { return known }
        try storage.prepare(.sale(sale))
        guard case .saleCaptured(let capture)? = storage.resident.capture(of: sale)?.body else { return true }
        let group = storage.resident.captures(withKey: capture.duplicateKey)
        var inScope = false
        for s in group where try holds(millis(of: s, storage) ?? 0) {
            inScope = true
            break
        }
        for s in group + [sale] { groupInScope[s] = inScope }
        return inScope
    }

    /// A capture in scope needs its key group: a partner out of scope was skipped
    /// when a scan passed it (the group had no capture in scope then), and central
    /// keeps no position per event to tell which partners a scan passed, so every
    /// partner and its outcomes are sent now (the terminal keeps what it lacks).
    /// The terminal does not count them in its knowledge vector: one the scan has
    /// not reached yet is relayed again where the scan finds it.
    private mutating func partners(of sale: SaleId, key: DuplicateKey, _ storage: any CentralStorage) throws(SyncError) -> [Event] {
        try storage.prepare(.sale(sale))
        let group = storage.resident.captures(withKey: key)
        for s in group + [sale] { groupInScope[s] = true }
        var out: [Event] = []
        var partners = 0
        for p in group where p != sale {
            guard let capture = storage.resident.capture(of: p) else { continue }
            guard partners < Self.partnersMax else {
                partnersLeftOut += 1
                continue
            }
            partners += 1
            // The terminal's own capture too: its retention may have retired it (a terminal that holds it skips it).
            let events = [capture] + storage.resident.outcomes(of: p)
            for e in events where !sent.contains(e.dot) { out.append(e) }
        }
        return out
    }
}
