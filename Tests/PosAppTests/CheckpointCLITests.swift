import Foundation
@testable import PosApp
import PosLedger
import Testing
import PosTestSupport

/// The terminal's checkpoint through the command line (sync-protocol.md, "Terminal checkpoint and compaction").
@Suite("possync: a terminal's checkpoint")
struct CheckpointCLITests {
    @Test("a damaged checkpoint: status says so and changes nothing; the next write makes a good one")
    func damagedCheckpointStatus() throws {
        let tmp = TempDir("checkpoint-cli")
        let (hq, shops) = try setUpShops(tmp, count: 1)
        let shop = shops[0]
        _ = try CLI.json(["terminal", "scan", "--dir", shop, "--amount", "7.00", "--payment-code", "134567890123456783"], now: "2026-03-02T09:00:00Z")
        _ = try CLI.json(["terminal", "sync", "--dir", shop, "--central", hq], now: "2026-03-02T09:05:00Z")
        let path = shop + "/checkpoint.psc"
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(Array(bytes.prefix(8)) == Array("PSTCHKPT".utf8), "a sync that pushed writes the checkpoint")
        #expect(try CLI.json(["terminal", "status", "--dir", shop], now: "2026-03-02T09:06:00Z")["checkpointNote"] == nil)
        bytes[bytes.count - 3] ^= 0x10
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let before = treeHashes(tmp.path)
        let status = try CLI.json(["terminal", "status", "--dir", shop], now: "2026-03-02T09:07:00Z")
        let note = try #require(status["checkpointNote"] as? String)
        #expect(note.contains("checkpoint.psc") && note.contains("folded the journals"), "\(note)")
        let text = try CLI.run(["terminal", "status", "--dir", shop], now: "2026-03-02T09:07:00Z")
        #expect(text.stdout.contains("checkpoint: "), "\(text.stdout)")
        #expect(treeHashes(tmp.path).filter { !$0.key.hasSuffix("LOCK") } == before.filter { !$0.key.hasSuffix("LOCK") }, "a read-only command wrote")
        let shown = try CLI.run(["terminal", "show", "--dir", shop], now: "2026-03-02T09:08:00Z")
        #expect(shown.stdout.contains("sale 1:1"), "the journals hold the sale: \(shown.stdout)")
        _ = try CLI.json(["terminal", "scan", "--dir", shop, "--amount", "8.00", "--payment-code", "134567890123456784"], now: "2026-03-02T09:10:00Z")
        #expect(try CLI.json(["terminal", "status", "--dir", shop], now: "2026-03-02T09:11:00Z")["checkpointNote"] == nil)
        // journal-dump recognises the file.
        let dumpTool = URL(fileURLWithPath: CLI.binary).deletingLastPathComponent().appendingPathComponent("journal-dump").path
        let dump = try CLI.spawn([path], executable: dumpTool)
        #expect(dump.stderr.contains("terminal checkpoint (magic PSTCHKPT)") || dump.stdout.contains("terminal checkpoint (magic PSTCHKPT)"), "\(dump)")
        let store = try CLI.spawn([shop], executable: dumpTool)
        #expect(store.stdout.contains("checkpoint.psc") && store.stdout.contains("terminal checkpoint (magic PSTCHKPT)"), "\(store.stdout.suffix(2000))")
        #expect(store.stdout.contains("version 3") && store.stdout.contains("root index frame at offset") && store.stdout.contains("ending the file"),
                "\(store.stdout.suffix(2000))")
    }

    /// The payment code of sale i of these tests.
    static func code(_ i: Int) -> String { "1345678901234" + String(format: "%05d", i) }

    /// Two shops of one central: shop 2 sells `sales` sales (codes 0 …) and syncs; shop 1 sells one (code 100) and
    /// syncs, which writes its checkpoint. Returns shop 2's return codes.
    static func twoShops(_ tmp: TempDir, sales: Int) throws -> (hq: String, shops: [String], returnCodes: [String]) {
        let (hq, shops) = try setUpShops(tmp, count: 2)
        var returnCodes: [String] = []
        for i in 0..<sales {
            let r = try CLI.json(["terminal", "scan", "--dir", shops[1], "--amount", "\(10 + i).00", "--payment-code", code(i)], now: "2026-03-02T09:\(10 + i):00Z")
            returnCodes.append(try #require(r["returnCode"] as? String))
        }
        _ = try CLI.json(["terminal", "sync", "--dir", shops[1], "--central", hq], now: "2026-03-02T09:30:00Z")
        _ = try CLI.json(["terminal", "scan", "--dir", shops[0], "--amount", "5.00", "--payment-code", code(100)], now: "2026-03-02T09:31:00Z")
        _ = try CLI.json(["terminal", "sync", "--dir", shops[0], "--central", hq], now: "2026-03-02T09:31:30Z")
        return (hq, shops, returnCodes)
    }

    @Test("terminal scan, refund and a ticket decision on a terminal with a checkpoint open focused and print exactly what a full fold prints")
    func focusedCommandsAsBefore() throws {
        let tmp = TempDir("checkpoint-focus")
        let (hq, shops, returnCodes) = try Self.twoShops(tmp, sales: 12)
        let code = Self.code(_:)
        let ticket = try CLI.json(["terminal", "refund", "--dir", shops[0], "--return-code", returnCodes[3], "--reason", "quality", "--resolution", "refund",
                                   "--amount", "2.00"], now: "2026-03-02T09:32:00Z")
        let ticketNumber = try #require(ticket["ticket"] as? String)
        _ = try CLI.json(["terminal", "sync", "--dir", shops[0], "--central", hq], now: "2026-03-02T09:40:00Z")
        #expect(FileManager.default.fileExists(atPath: shops[0] + "/checkpoint.psc"), "a sync that pulled writes the checkpoint")
        // The same store without its checkpoint: every command there folds the journals (the behaviour before focused opens).
        let bare = tmp.path + "/bare"
        try FileManager.default.copyItem(atPath: shops[0], toPath: bare)
        try FileManager.default.removeItem(atPath: bare + "/checkpoint.psc")
        let commands: [[String]] = [
            ["terminal", "scan", "--amount", "3.00", "--payment-code", code(5)],              // held (sold at shop 2): refused
            ["terminal", "scan", "--amount", "3.00", "--payment-code", code(200)],            // a new code: captured
            ["terminal", "scan", "--amount", "3.00", "--payment-code", "12"],                 // not a code: refused before anything is read
            ["terminal", "refund", "--return-code", returnCodes[3], "--reason", "quality", "--resolution", "refund", "--amount", "99.00"],  // above what is left
            ["terminal", "refund", "--return-code", returnCodes[4], "--reason", "quality", "--resolution", "refund"],
            ["terminal", "refund", "--return-code", "1119", "--reason", "quality", "--resolution", "refund"],  // a sale not held
            ["terminal", "escalate", "--ticket", ticketNumber],
            ["terminal", "note", "--ticket", ticketNumber, "--note", "called back"],
        ]
        for (i, command) in commands.enumerated() {
            for json in [false, true] {
                let now = "2026-03-02T10:\(10 + 2 * i + (json ? 1 : 0)):00Z"
                let args = json ? command + ["--json"] : command
                let focused = try CLI.run(Array(args.prefix(2)) + ["--dir", shops[0]] + Array(args.dropFirst(2)), now: now)
                let folded = try CLI.run(Array(args.prefix(2)) + ["--dir", bare] + Array(args.dropFirst(2)), now: now)
                #expect(focused.status == folded.status && focused.stdout == folded.stdout
                        && focused.stderr.replacingOccurrences(of: shops[0], with: bare) == folded.stderr,
                        "\(args.joined(separator: " ")): focused \(focused), folded \(folded)")
            }
        }
        #expect(!FileManager.default.fileExists(atPath: bare + "/checkpoint.psc"), "the bare store kept folding its journals")
        // A focused open read the root, the meta frame and the few table frames its focus needs.
        let header = try [UInt8](Data(contentsOf: URL(fileURLWithPath: shops[0] + "/checkpoint.psc")).prefix(34))
        let frames = Int(header[18]) | Int(header[19]) << 8
        let desk = try TerminalDesk.open(directory: shops[0], focus: .sale(try EntityParsing.returnCode(returnCodes[3]).sale))
        defer { try? desk.close() }
        #expect(desk.openReport.focused && desk.openReport.usedCheckpoint, "\(desk.openReport)")
        #expect(desk.openReport.checkpointFramesRead >= 2 && desk.openReport.checkpointFramesRead <= frames, "\(desk.openReport), \(frames) frames")
    }

    @Test("terminal status (text and --json) with the checkpoint prints byte for byte what the journals' fold prints, own events after it included")
    func statusAsFolded() throws {
        let tmp = TempDir("checkpoint-status")
        let (_, shops, returnCodes) = try Self.twoShops(tmp, sales: 6)
        let code = Self.code(_:)
        // After the checkpoint: own captures (one of a code shop 2 holds: refused), refunds (one above what is left), a decision.
        _ = try CLI.run(["terminal", "scan", "--dir", shops[0], "--amount", "3.00", "--payment-code", code(200)], now: "2026-03-02T09:33:00Z")
        let ticket = try CLI.json(["terminal", "refund", "--dir", shops[0], "--return-code", returnCodes[2], "--reason", "quality", "--resolution", "refund",
                                   "--amount", "2.00"], now: "2026-03-02T09:34:00Z")
        _ = try CLI.run(["terminal", "refund", "--dir", shops[0], "--return-code", returnCodes[3], "--reason", "quality", "--resolution", "refund"],
                        now: "2026-03-02T09:35:00Z")
        _ = try CLI.run(["terminal", "reject", "--dir", shops[0], "--ticket", try #require(ticket["ticket"] as? String)], now: "2026-03-02T09:36:00Z")
        let header = try [UInt8](Data(contentsOf: URL(fileURLWithPath: shops[0] + "/checkpoint.psc")).prefix(10))
        #expect(header[8] == 3, "the sync wrote a version-3 checkpoint")
        let bare = tmp.path + "/bare"
        try FileManager.default.copyItem(atPath: shops[0], toPath: bare)
        try FileManager.default.removeItem(atPath: bare + "/checkpoint.psc")
        for json in [false, true] {
            let args = ["terminal", "status"] + (json ? ["--json"] : [])
            let counted = try CLI.run(args + ["--dir", shops[0]], now: "2026-03-02T10:00:00Z")
            let folded = try CLI.run(args + ["--dir", bare], now: "2026-03-02T10:00:00Z")
            #expect(counted.status == 0 && counted.status == folded.status && counted.stdout == folded.stdout
                    && counted.stderr.replacingOccurrences(of: shops[0], with: bare) == folded.stderr, "status open \(counted), fold \(folded)")
            #expect(counted.stdout.contains("rejected") && !counted.stdout.contains("checkpoint"), "\(counted.stdout)")
        }
        // The CLI's status opens with the status focus and reads the counts.
        let desk = try TerminalDesk.open(directory: shops[0], focus: .status)
        defer { try? desk.close() }
        #expect(desk.openReport.focused && desk.openReport.usedCheckpoint && desk.openReport.tailRecords > 0, "\(desk.openReport)")
    }
}
