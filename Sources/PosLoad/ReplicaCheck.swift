import PosCentral
import PosLedger
import PosTerminal
import PosWire

/// The end-of-run checks of a sync run (after a final sync of every terminal):
/// every replica holds central's state, central holds each terminal's events
/// 1...lastSequence exactly once and with the bytes the terminal wrote, and
/// central recorded no loss and flagged no terminal. Terminals must all be of
/// one merchant (they then hold everything central holds). Returns the problems found.
public enum ReplicaCheck {
    public static func problems(central: CentralHandler, terminals: [TerminalReplica]) throws(SyncError) -> [String] {
        var problems: [String] = []
        let reference = try central.state.canonicalText
        for t in terminals {
            let text = t.state.canonicalText
            guard text != reference else { continue }
            let a = Set(reference.split(separator: "\n")), b = Set(text.split(separator: "\n"))
            problems.append("terminal \(t.terminal.rawValue) differs from central: central only [\(a.subtracting(b).sorted().prefix(3).joined(separator: " | "))]; "
                            + "terminal only [\(b.subtracting(a).sorted().prefix(3).joined(separator: " | "))]")
        }
        // Each dot in central's journal once.
        var seen: [Dot: Int] = [:]
        try central.withStorage { storage throws(SyncError) in
            let context = storage.recordContext
            try storage.scan(after: 0) { (position, record) throws(SyncError) -> Bool in
                do throws(LedgerError) { seen[try RecordCodec.decode(record, context: context).dot, default: 0] += 1 } catch {
                    throw SyncError(error, location: "central journal position \(position)")
                }
                return true
            }
        }
        for (dot, n) in seen.sorted(by: { $0.key < $1.key }) where n > 1 { problems.append("central's journal holds \(dot) \(n) times") }
        // Each terminal's events: exactly 1...lastSequence, acknowledged, with the bytes it wrote.
        for t in terminals {
            let last = t.lastSequence
            let acknowledged = central.acknowledged(t.terminal)
            if acknowledged != last {
                problems.append("central acknowledged terminal \(t.terminal.rawValue) through seq \(acknowledged); it wrote through \(last)")
            }
            let held = seen.keys.filter { $0.replica == t.terminal }.map(\.seq).sorted()
            if held != (last == 0 ? [] : Array(1...last)) {
                problems.append("central holds terminal \(t.terminal.rawValue)'s seq \(ranges(held)); it wrote 1...\(last)")
            }
            for seq in stride(from: 1, through: last, by: 1) {
                let own = try t.ownRecord(seq: seq).map(eventDigest)
                if try central.digest(of: try! Dot(replica: t.terminal, seq: seq)) != own {  // a terminal's seq ≥ 1 makes a dot
                    problems.append("central holds other bytes than terminal \(t.terminal.rawValue) wrote under seq \(seq)")
                }
            }
        }
        for loss in central.lossRecords { problems.append("central recorded a loss: \(loss)") }
        let flagged = central.flaggedTerminals.rewroteHistory
        if !flagged.isEmpty { problems.append("central flagged terminals \(flagged.map(\.rawValue)) for rewriting accepted events") }
        return problems
    }

    /// `1...5, 7...9` for [1, 2, 3, 4, 5, 7, 8, 9] (sorted input).
    static func ranges(_ seqs: [UInt64]) -> String {
        guard var low = seqs.first else { return "none" }
        var parts: [String] = []
        var high = low
        for s in seqs.dropFirst() {
            if s == high + 1 { high = s; continue }
            parts.append(low == high ? "\(low)" : "\(low)...\(high)")
            low = s; high = s
        }
        parts.append(low == high ? "\(low)" : "\(low)...\(high)")
        return parts.joined(separator: ", ")
    }
}
