// The child of the crash test (Tests/PosJournalTests/CrashTests.swift): opens
// the journal in the given directory (recovering it), then appends records with
// per-record durability until it is killed, printing one line per record whose
// append returned (was acknowledged):
//
//     open <lastSequence>
//     ack <sequence> <FNV-1a 64 of the record, hex>
//
// Record contents are a function of (round, sequence) so the parent can check
// any record found after the kill, acknowledged or not.
// Usage: journal-crash-child <journal directory> <round> [records max]
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import PosJournal

/// Mirrors `crashRecord` in Tests/PosJournalTests/CrashTests.swift.
func crashRecord(round: Int, sequence: UInt64) -> [UInt8] {
    let length = Int((sequence &* 7919 &+ UInt64(round) &* 104_729) % 1500)
    return Array("round \(round) seq \(sequence): ".utf8) + (0..<length).map { UInt8(truncatingIfNeeded: (UInt64($0) &* 31 &+ sequence &+ UInt64(round)) % 251) }
}

func fnv1a(_ bytes: [UInt8]) -> UInt64 {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
    return h
}

/// One unbuffered write(2) per line, so a line printed is a line the parent sees.
func say(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeBytes { write(1, $0.baseAddress! + done, bytes.count - done) }
        if n <= 0 { exit(3) }
        done += n
    }
}

let arguments = CommandLine.arguments
guard arguments.count >= 3, let round = Int(arguments[2]) else {
    say("usage: journal-crash-child <journal directory> <round> [records max]")
    exit(2)
}
let recordsMax = arguments.count > 3 ? Int(arguments[3]) ?? 100_000 : 100_000
/// Must match the parent's configuration.
let configuration = JournalConfiguration(durability: .perRecord, segmentBytesMax: 32 * 1024)
do {
    let journal = try Journal.open(directory: arguments[1], configuration: configuration)
    var sequence = journal.lastSequence
    say("open \(sequence)")
    for _ in 0..<recordsMax {
        let record = crashRecord(round: round, sequence: sequence + 1)
        sequence = try journal.append(record)
        say("ack \(sequence) \(String(fnv1a(record), radix: 16))")
    }
    try journal.close()
} catch {
    say("error \(error)")
    exit(1)
}
