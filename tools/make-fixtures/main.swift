// Regenerates the journal fixtures under Fixtures/journals/.
// Usage: swift run make-fixtures [Fixtures/journals] [--damaged-only]
// (--damaged-only rebuilds only the damaged fixtures from the valid-plain/ on
// disk; the encrypted fixture uses random nonces, so regenerating it changes bytes.)
// Run it whenever the journal format changes; Fixtures/journals/README.md says
// what each fixture is and what open and salvage must do with it.
import Foundation
import PosJournal

let options = CommandLine.arguments.dropFirst().filter { $0.hasPrefix("--") }
let paths = CommandLine.arguments.dropFirst().filter { !$0.hasPrefix("--") }
let root = paths.first ?? "Fixtures/journals"
let damagedOnly = options.contains("--damaged-only")
let fm = FileManager.default

/// Deterministic fixture records: record n is "fixture record n: " then n % 97 bytes of a pattern.
func fixtureRecord(_ n: Int) -> [UInt8] {
    Array("fixture record \(n): ".utf8) + (0..<(n % 97)).map { UInt8(97 + ($0 * 7 + n) % 26) }
}

let fixtureRecordCount = 600
let fixtureJournalID = JournalID(bytes: Array(0x10...0x1F))!
let fixtureDictionary = CompressionDictionary(id: 1000, bytes: Array("fixture record : abcdefghijklmnopqrstuvwxyz".utf8))
/// The test key of the encrypted fixture (also written to test-key.hex). Never a real key.
let fixtureKeyBytes: [UInt8] = (0..<32).map { UInt8($0 * 3 + 1) }

func make(_ name: String, key: JournalKey?) throws {
    let dir = root + "/" + name
    try? fm.removeItem(atPath: dir)
    let config = JournalConfiguration(durability: .none(bufferBytes: 0), segmentBytesMax: 8 * 1024,
                                      dictionary: fixtureDictionary, key: key,
                                      compressionLevel: 6,  // the level the fixtures were made at (regenerating today splits frames differently: other bytes, same meaning)
                                      journalID: fixtureJournalID)
    let journal = try Journal.open(directory: dir, configuration: config)
    var n = 1
    while n <= fixtureRecordCount {
        // Frames of 1 to 5 records.
        let batch = min(1 + n % 5, fixtureRecordCount - n + 1)
        try journal.append(contentsOf: (n..<(n + batch)).map(fixtureRecord))
        n += batch
    }
    try journal.close()
    print("wrote \(dir): \(fixtureRecordCount) records in \(try fm.contentsOfDirectory(atPath: dir).count) segments")
}

try fm.createDirectory(atPath: root, withIntermediateDirectories: true)
if !damagedOnly {
    try make("valid-plain", key: nil)
    try make("valid-encrypted", key: JournalKey(id: 1, bytes: fixtureKeyBytes))
    try fixtureKeyBytes.map { String(format: "%02x", $0) }.joined().appending("\n")
        .write(toFile: root + "/valid-encrypted.key.hex", atomically: true, encoding: .utf8)
}
try makeDamagedFixtures()
