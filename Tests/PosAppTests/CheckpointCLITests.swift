import Foundation
import PosApp
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
    }
}
