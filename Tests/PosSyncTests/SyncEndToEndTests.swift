import Foundation
import Testing
@testable import PosJournal
@testable import PosLedger
@testable import PosCentral
@testable import PosCentralFiles
@testable import PosTerminal
@testable import PosWire

@Suite("sync end to end")
struct SyncEndToEndTests {
    @Test("three terminals and central converge: returns at another shop, concurrent decisions, several sync orders",
          arguments: [[0, 1, 2], [2, 1, 0], [1, 2, 0]], CentralKind.allCases)
    func convergence(order: [Int], store: CentralKind) throws {
        guard store.available(for: "convergence on \(store)") else { return }
        var rng = Rng(state: 7)
        let w = try World(terminals: 3, store: store)
        // Offline trading at each shop.
        let s1 = try w.capture(0, 12_000, code: wechatCode(&rng))
        let s2 = try w.capture(1, 5_000, code: wechatCode(&rng))
        _ = try w.capture(2, 800, code: wechatCode(&rng))
        // Everyone syncs so the sales are known everywhere.
        for i in order { try w.sync(i) }
        for i in order { try w.sync(i) }
        // A return at shop 3 of a sale made at shop 1.
        let ticket = try w.requestRefund(2, sale: s1, saleMinor: 12_000, 4_000)
        try w.sync(2)
        try w.syncAll()
        // Central confirms the sales; concurrently shop 1 approves the ticket while central rejects it.
        try w.central.record(.saleConfirmed(s1), wallMillis: w.tick())
        try w.central.record(.saleConfirmed(s2), wallMillis: w.tick())
        try w.terminals[0].record(.refundApproved(ticket, .originalPayment), wallMillis: w.tick())
        try w.central.record(.refundRejected(ticket), wallMillis: w.tick())
        for i in order { try w.sync(i) }
        for i in order.reversed() { try w.sync(i) }
        let centralState = (try w.central.state)
        for (i, t) in w.terminals.enumerated() {
            #expect(t.state.canonicalText == centralState.canonicalText, "terminal \(i + 1) differs from central (order \(order))")
            #expect(t.state.conflicts == centralState.conflicts)
            #expect(t.acknowledged == t.lastSequence)
        }
        #expect(centralState.tickets[ticket] != nil)
        #expect(!centralState.conflicts.isEmpty, "approve vs reject must leave a conflict record")
        // Reopening restores the same state and cursors from the journals.
        for i in w.terminals.indices {
            let before = (w.terminals[i].state.canonicalText, w.terminals[i].acknowledged, w.terminals[i].pullCursor)
            try w.reopenTerminal(i)
            #expect(w.terminals[i].state.canonicalText == before.0)
            #expect(w.terminals[i].acknowledged == before.1)
            // The restored cursor is the last position of a held event; batches that held
            // nothing new for this terminal are not recorded, and are filtered again.
            #expect(w.terminals[i].pullCursor <= before.2)
            #expect(try w.sync(i).pulled == 0)
        }
        try w.reopenCentral()
        #expect((try w.central.state).canonicalText == centralState.canonicalText)
    }

    @Test("other terminals never receive a payment code", arguments: CentralKind.allCases)
    func noForeignPaymentCodes(store: CentralKind) throws {
        guard store.available(for: "no foreign payment codes on \(store)") else { return }
        var rng = Rng(state: 9)
        let w = try World(terminals: 2, store: store)
        let code = wechatCode(&rng)
        let sale = try w.capture(0, 1_000, code: code)
        try w.syncAll()
        let relayed = w.terminals[1].state.sales[sale]
        #expect(relayed != nil)
        // Nothing the second terminal stores holds the code's digits.
        let clear = Array(code.revealedDigits().utf8)
        let fold = "\(w.terminals[1].state)"
        #expect(!fold.contains(code.revealedDigits()))
        // Its inbound journal, decrypted, holds no payment code either.
        let reader = try JournalReader(directory: w.dir.path + "/t2/inbound", dictionaries: [ledgerDictionary], key: w.terminals[1].enrollment.journalKey)
        while let (_, record) = try reader.next() {
            #expect(!record.indices.contains { i in i + clear.count <= record.count && Array(record[i..<(i + clear.count)]) == clear })
        }
    }
}
