import PosJournal
import PosCentral
import PosCentralFiles
import PosTerminal
import PosWire
import PosTestSupport
import PosLedger

/// The link between one terminal and central: it can be partitioned, lose a
/// request or a reply, deliver a request twice, and replay an old request
/// late (reordering). Every choice comes from the simulation's generator.
final class SimulatedLink: SyncTransport {
    struct Faults {
        var lossPercent = 8
        var duplicatePercent = 5
        var replayPercent = 5
    }
    var central: () -> any SyncEndpoint
    var partitioned = false
    var faults: Faults
    private var rng: SplitMix64
    /// Requests seen, for late replays (bounded).
    private var history: [SyncMessage] = []
    static let historyMax = 16
    private(set) var counts = (lost: 0, duplicated: 0, replayed: 0)

    init(seed: UInt64, faults: Faults, central: @escaping () -> any SyncEndpoint) {
        rng = SplitMix64(seed: seed)
        self.faults = faults
        self.central = central
    }

    private func roll(_ percent: Int) -> Bool { Int.random(in: 0..<100, using: &rng) < percent }

    func exchange(_ request: SyncMessage) throws(SyncError) -> SyncMessage {
        if partitioned { throw SyncError(.io, "partitioned from central") }
        let onWire = try SyncMessage.decode(request.encoded())
        let target = central()
        if !history.isEmpty && roll(faults.replayPercent) {
            counts.replayed += 1
            _ = target.handle(history[Int.random(in: 0..<history.count, using: &rng)])
        }
        if roll(faults.lossPercent) { counts.lost += 1; throw SyncError(.io, "request lost") }
        var reply = target.handle(onWire)
        if roll(faults.duplicatePercent) { counts.duplicated += 1; reply = target.handle(onWire) }
        history.append(onWire)
        if history.count > Self.historyMax { history.removeFirst() }
        if roll(faults.lossPercent) { counts.lost += 1; throw SyncError(.io, "reply lost") }
        return try SyncMessage.decode(reply.encoded())
    }
}
