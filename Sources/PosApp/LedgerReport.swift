import Foundation
import PosLedger
import PosCentral
import PosCentralFiles
import PosTerminal
import PosWire

/// The folded state as `show` prints it, the same shape at a terminal and at
/// central, so two replicas can be compared with a plain diff. Holds nothing
/// one replica has and another lacks by design (no payment codes, no paths,
/// no times of the local clock): replicas with the same events print the same.
public struct LedgerReport: Codable, Sendable, Equatable {
    public struct Sale: Codable, Sendable, Equatable {
        public var id: String
        public var returnCode: String
        public var status: String
        public var amount: String?
        public var currency: String?
        public var amountMinor: Int64?
        public var wallet: String?
        public var refunded: String?
        public var tickets: [String]
        public var capturedAt: String?
    }
    public struct Ticket: Codable, Sendable, Equatable {
        public var number: String
        public var id: String
        public var sale: String
        public var status: String
        public var heldReason: String?
        public var ownStatus: String
        public var resolution: String
        public var amount: String
        public var currency: String
        public var amountMinor: Int64
        public var reason: String
        public var requestedAt: String
        public var notes: [String]
    }
    public struct Conflict: Codable, Sendable, Equatable {
        public var kind: String
        public var rule: String
        public var events: [String]
        public var outcome: String
    }

    /// A loss central recorded (central only; absent at terminals and when there is none).
    public struct Loss: Codable, Sendable, Equatable {
        public var id: Int
        public var kind: String
        public var recordedAt: String
        public var terminal: UInt32?
        public var from: UInt64?
        public var through: UInt64?
        public var positionsFrom: UInt64?
        public var resolved: Bool
        public var note: String
    }

    public var sales: [Sale]
    public var tickets: [Ticket]
    public var conflicts: [Conflict]
    public var losses: [Loss]? = nil

    public enum Filter: Sendable {
        case all
        case sale(SaleId)
        case ticket(TicketId)
    }

    public init(_ state: LedgerState, filter: Filter = .all) throws(AppError) {
        var saleIDs = state.sales.keys.sorted()
        var ticketIDs = state.tickets.keys.sorted()
        switch filter {
        case .all: break
        case .sale(let id):
            guard let s = state.sales[id] else { throw AppError(.refused, "sale \(id.dot) is not known here") }
            saleIDs = [id]
            ticketIDs = s.tickets.filter { state.tickets[$0] != nil }
        case .ticket(let id):
            guard let t = state.tickets[id] else { throw AppError(.refused, "ticket \(id.ticketNumber) is not known here") }
            ticketIDs = [id]
            saleIDs = state.sales[t.sale] == nil ? [] : [t.sale]
        }
        sales = saleIDs.map { id in
            let s = state.sales[id]!
            return Sale(id: "\(id.dot)", returnCode: id.returnCode.description, status: s.status.rawValue,
                        amount: s.amount.map(AmountFormat.format), currency: s.amount?.currency.code,
                        amountMinor: s.amount?.minorUnits, wallet: s.wallet?.description,
                        refunded: s.amount.map { AmountFormat.format(minorUnits: s.refundedMinor, currency: $0.currency) },
                        tickets: s.tickets.map(\.ticketNumber.text),
                        capturedAt: state.capture(of: id).map { WallClock.format(Int64($0.hlc.millis)) })
        }
        tickets = ticketIDs.map { id in
            let t = state.tickets[id]!
            return Ticket(number: id.ticketNumber.text, id: "\(id.dot)", sale: "\(t.sale.dot)",
                          status: Self.statusName(t.status), heldReason: Self.heldReason(t.status),
                          ownStatus: Self.statusName(t.ownStatus), resolution: t.resolution.description,
                          amount: AmountFormat.format(t.amount), currency: t.amount.currency.code,
                          amountMinor: t.amount.minorUnits, reason: t.reason.description,
                          requestedAt: WallClock.format(Int64(t.requestHLC.millis)),
                          notes: state.notes(of: id).map(\.note.text))
        }
        let all = state.conflicts
        let selected: [ConflictRecord]
        if case .all = filter { selected = all } else {
            // A conflict concerns the entities shown when it names one of their events.
            let shown = Set(saleIDs.flatMap { state.eventDots(of: $0) } + ticketIDs.flatMap { state.eventDots(of: $0) })
            selected = all.filter { c in c.events.contains { shown.contains($0) } }
        }
        conflicts = selected.map { Conflict(kind: $0.kind.rawValue, rule: $0.rule, events: $0.events.map(\.description), outcome: $0.outcome) }
    }

    /// Central's loss records as `show` and `status` list them: every one, with whether it was resolved.
    public static func losses(_ records: [LossRecord]) -> [Loss] {
        let resolved = Set(records.compactMap(\.refersTo))
        return records.map { r in
            Loss(id: r.id, kind: r.kind.rawValue, recordedAt: WallClock.format(r.recordedMillis), terminal: r.terminal, from: r.from,
                 through: r.through, positionsFrom: r.positionsFrom,
                 resolved: r.kind != .terminalBehind || resolved.contains(r.id), note: r.note)
        }
    }

    static func lossLine(_ l: Loss) -> String {
        var line = "loss #\(l.id)  \(l.kind)"
        if let t = l.terminal { line += "  terminal \(t)" }
        if let a = l.from, let b = l.through { line += "  seq \(a)...\(b)" }
        if let p = l.positionsFrom { line += "  positions from \(p)" }
        if l.kind == "terminal-behind" { line += l.resolved ? "  resolved" : "  AWAITING RE-PUSH" }
        return line + "  at \(l.recordedAt): \(PrintableText.escaped(l.note, quoted: false))"
    }

    public static func statusName(_ s: TicketStatus) -> String {
        if case .held = s { return "held" }
        return s.description
    }

    public static func heldReason(_ s: TicketStatus) -> String? {
        if case .held(let r) = s { return r.rawValue }
        return nil
    }

    /// Pretty, key-sorted JSON: byte-identical for equal reports.
    public func json() -> String { Self.json(self) }

    public static func json<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try! encoder.encode(value), as: UTF8.self)
    }

    /// One line per sale, ticket and conflict.
    public var text: String {
        var lines: [String] = []
        for s in sales {
            var line = "sale \(s.id)  \(s.status)"
            if let a = s.amount, let c = s.currency { line += "  \(a) \(c)" }
            if let w = s.wallet { line += "  \(w)" }
            if let r = s.refunded { line += "  refunded \(r)" }
            line += "  return code \(s.returnCode)"
            if !s.tickets.isEmpty { line += "  tickets \(s.tickets.joined(separator: ","))" }
            lines.append(line)
        }
        for t in tickets {
            var line = "ticket \(t.number)  sale \(t.sale)  \(t.status)"
            if let h = t.heldReason { line += "(\(h))" }
            if t.ownStatus != t.status || t.heldReason != nil { line += "  own \(t.ownStatus)" }
            line += "  \(t.resolution) \(t.amount) \(t.currency)  \(TextOutput.reason(t.reason))"
            if !t.notes.isEmpty { line += "  notes: " + t.notes.map { PrintableText.escaped($0) }.joined(separator: "; ") }
            lines.append(line)
        }
        for c in conflicts {
            lines.append("conflict \(c.kind)  rule \(c.rule)  events \(c.events.joined(separator: ","))  -> \(c.outcome)")
        }
        for l in losses ?? [] { lines.append(Self.lossLine(l)) }
        if lines.isEmpty { lines.append("(no sales, tickets or conflicts)") }
        return lines.joined(separator: "\n")
    }
}
