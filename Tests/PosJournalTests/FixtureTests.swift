import Foundation
import Testing
@testable import PosJournal

/// The package root, found from this file's path (Tests/PosJournalTests/…).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
let journalFixtures = packageRoot + "/Fixtures/journals"

/// Mirrors tools/make-fixtures: record n of every valid fixture.
func fixtureRecord(_ n: Int) -> [UInt8] {
    Array("fixture record \(n): ".utf8) + (0..<(n % 97)).map { UInt8(97 + ($0 * 7 + n) % 26) }
}
let fixtureDictionary = CompressionDictionary(id: 1000, bytes: Array("fixture record : abcdefghijklmnopqrstuvwxyz".utf8))
let fixtureKey = JournalKey(id: 1, bytes: (0..<32).map { UInt8($0 * 3 + 1) })

@Suite("fixtures")
struct FixtureTests {
    @Test("the valid fixtures read back every record, plain and encrypted", arguments: ["valid-plain", "valid-encrypted"])
    func validFixtures(name: String) throws {
        let dir = journalFixtures + "/" + name
        let key = name == "valid-encrypted" ? fixtureKey : nil
        let reader = try JournalReader(directory: dir, dictionaries: [fixtureDictionary], key: key)
        var n = 0
        while let r = try reader.next() {
            n += 1
            #expect(r.sequence == UInt64(n))
            #expect(r.record == fixtureRecord(n))
        }
        #expect(n == 600)
        #expect(segmentFiles(dir).count > 1, "multi-segment")
        // The key on disk is the one the tests use.
        let hex = try String(contentsOfFile: journalFixtures + "/valid-encrypted.key.hex", encoding: .utf8)
        #expect(hex.trimmingCharacters(in: .whitespacesAndNewlines) == fixtureKey.key.withUnsafeBytes { $0.map { String(format: "%02x", $0) }.joined() })
    }
}
