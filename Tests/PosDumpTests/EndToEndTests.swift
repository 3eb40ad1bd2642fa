import Foundation
import PosDump
import PosJournal
import PosLedger
import PosCentral
import PosCentralFiles
import PosTerminal
import PosWire
import Testing
#if canImport(Glibc)
import Glibc
import PosTestSupport
#endif

/// The built `journal-dump` executable, next to the test bundle
/// (`swift build --build-tests` builds executables too), or POSSYNC_JOURNAL_DUMP.
let journalDumpBinary: String? = ProcessInfo.processInfo.environment["POSSYNC_JOURNAL_DUMP"] ?? builtExecutable("journal-dump")

/// A finished child process: exit code, output files, peak resident memory.
struct ChildRun {
    let exitCode: Int32
    let stdout: String
    let stderr: String
    /// The child's own peak RSS (VmHWM) in KiB, from --memory-report; nil without it.
    /// (wait4's ru_maxrss would not do: after posix_spawn it includes the
    /// test process's own peak, which the child's memory map started as.)
    var peakRSSKiB: Int? {
        guard let r = stderr.range(of: "peak RSS ") else { return nil }
        return Int(stderr[r.upperBound...].prefix { $0.isNumber })
    }
}

/// Runs the binary with stdout and stderr to files (or /dev/null).
func runDump(_ arguments: [String], keepStdout: Bool = true, directory: TemporaryDirectory) throws -> ChildRun {
    let binary = try #require(journalDumpBinary, "journal-dump not found next to the test bundle: build with swift build --build-tests")
    let outPath = keepStdout ? directory.sub("stdout-\(UUID().uuidString)") : "/dev/null"
    let errPath = directory.sub("stderr-\(UUID().uuidString)")
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    let argv: [UnsafeMutablePointer<CChar>?] = ([binary] + arguments).map { strdup($0) } + [nil]
    defer { for p in argv { free(p) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, binary, &actions, nil, argv, environ)
    #expect(rc == 0, "posix_spawn failed: \(rc)")
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let signaled = status & 0x7F
    #expect(signaled == 0, "journal-dump \(arguments) died of signal \(signaled)")
    let stdout = keepStdout ? (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "" : ""
    let stderr = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
    return ChildRun(exitCode: (status >> 8) & 0xFF, stdout: stdout, stderr: stderr)
}

@Suite("journal-dump binary, end to end")
struct EndToEndTests {
    let dictionaryArgs = ["--dictionary", "1000=" + dumpFixtures + "/fixture-dictionary-1000.bin"]

    @Test("--verify exit codes: 0 clean, 1 damaged, 3 torn tail, 2 usage or I/O")
    func verifyExitCodes() throws {
        let t = TemporaryDirectory("e2e")
        let clean = try runDump([journalFixtures + "/valid-plain", "--verify"] + dictionaryArgs, directory: t)
        #expect(clean.exitCode == 0 && clean.stdout.contains("status=clean exit=0"))

        try copyDirectory(journalFixtures + "/valid-plain", to: t.sub("flip"))
        let seg = t.sub("flip") + "/" + segmentNames(t.sub("flip"))[1]
        var b = readBytes(seg)
        b[1002] ^= 0x10
        writeBytes(b, seg)
        let damaged = try runDump([t.sub("flip"), "--verify"] + dictionaryArgs, directory: t)
        #expect(damaged.exitCode == 1 && damaged.stdout.contains("DAMAGED " + seg + " @932"))

        try copyDirectory(journalFixtures + "/valid-plain", to: t.sub("torn"))
        let last = t.sub("torn") + "/" + segmentNames(t.sub("torn")).last!
        writeBytes(Array(readBytes(last).dropLast(10)), last)
        let torn = try runDump([t.sub("torn"), "--verify", "--json"] + dictionaryArgs, directory: t)
        #expect(torn.exitCode == 3)
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(torn.stdout.utf8)) as? [String: Any])
        #expect(summary["status"] as? String == "torn-tail" && summary["exitCode"] as? Int == 3)

        let missing = try runDump([t.sub("nothing-here"), "--verify"], directory: t)
        #expect(missing.exitCode == 2 && missing.stderr.contains("nothing-here"))
        let help = try runDump(["--help"], directory: t)
        #expect(help.exitCode == 0 && help.stdout.contains("Exit codes"))
        let usage = try runDump([journalFixtures + "/valid-plain", "--no-such-option"], directory: t)
        #expect(usage.exitCode == 2)
        let conflicting = try runDump([journalFixtures + "/valid-plain", "--verify", "--type", "raw"], directory: t)
        #expect(conflicting.exitCode == 2)
        let badKey = try runDump([journalFixtures + "/valid-plain", "--key-file", t.sub("absent.json")], directory: t)
        #expect(badKey.exitCode == 2 && badKey.stderr.contains("absent.json"))
        // Nothing was modified by any of it.
        #expect(readBytes(last).count == readBytes(journalFixtures + "/valid-plain/" + segmentNames(journalFixtures + "/valid-plain").last!).count - 10)
    }

    @Test("paths print as given: relative in, relative out; a single segment file and the encrypted fixture with its key")
    func pathsAndKeys() throws {
        let t = TemporaryDirectory("e2e-paths")
        let segment = journalFixtures + "/valid-encrypted/00000000000000000171.seg"
        let run = try runDump([segment, "--json", "--key-file", fixtureKeyFile, "--key-id", "1"] + dictionaryArgs, directory: t)
        #expect(run.exitCode == 0)
        let lines = run.stdout.split(separator: "\n")
        let objects = try lines.map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        #expect(objects.first?["kind"] as? String == "segment" && objects.first?["file"] as? String == segment)
        #expect(objects.filter { $0["kind"] as? String == "record" }.count == 170)
        #expect(objects.last?["kind"] as? String == "summary")
    }

    @Test("--follow with a bounded idle stop prints records appended meanwhile")
    func follow() throws {
        let t = TemporaryDirectory("e2e-follow")
        let dir = t.sub("j")
        let journal = try Journal.open(directory: dir, configuration: JournalConfiguration(durability: .perRecord, segmentBytesMax: 4096))
        try journal.append(Array("first".utf8))
        let writer = Thread {
            usleep(300_000)
            for i in 2...40 {
                try! journal.append(Array("record \(i)".utf8))
                usleep(10_000)
            }
        }
        writer.start()
        let run = try runDump([dir, "--follow", "--poll-ms", "25", "--stop-after-idle-ms", "1500", "--records", "opaque"], directory: t)
        try journal.close()
        #expect(run.exitCode == 0)
        #expect(run.stdout.contains("#1 raw 5 bytes text=\"first\""))
        #expect(run.stdout.contains("#40 raw 9 bytes text=\"record 40\""))
        #expect(run.stdout.contains("status=clean"))
    }

    /// The records of the big journal: small ledger events, captures and confirmations.
    static func bigRecords(_ count: Int) -> [[UInt8]] {
        let capture = try! SaleCapture(amount: Money(minorUnits: 1999, currency: .CNY), paymentCode: try! PaymentCode(Ledger.wechatDigits),
                                       merchantKey: Ledger.merchantKey)
        let t = try! ReplicaId.terminal(3)
        return (1...count).map { i in
            let dot = try! Dot(replica: i % 4 == 0 ? .central : t, seq: UInt64(i))
            let body: EventBody = i % 4 == 0 ? .saleConfirmed(SaleId(try! Dot(replica: t, seq: UInt64(i - 1)))) : .saleCaptured(capture)
            return RecordCodec.encode(Event(dot: dot, hlc: Ledger.hlc(UInt64(i)), context: VersionVector(), body: body))
        }
    }

    /// Bounded memory without a timed assertion: the dumper streams, so the
    /// child's peak RSS (its VmHWM, the kernel's own high-water mark) stays
    /// under 200 MiB for the whole journal, and within 16 MiB of the peak for
    /// its first segment alone — the retained state does not grow with the
    /// records. CI writes 100,000 records; POSSYNC_DUMP_BIG_RECORDS=1000000 runs the
    /// 1M-record journal (in bundled 64-record appends, durability .none).
    @Test("a big journal dumps in bounded memory (text, JSON, verify, stats; 1M records with POSSYNC_DUMP_BIG_RECORDS)")
    func boundedMemory() throws {
        let count = environmentInt("POSSYNC_DUMP_BIG_RECORDS") ?? 100_000
        let t = TemporaryDirectory("e2e-big")
        let dir = t.sub("big")
        let config = JournalConfiguration(durability: .none(bufferBytes: 16 * 1024), segmentBytesMax: 256 * 1024, dictionary: ledgerDictionary)
        let journal = try Journal.open(directory: dir, configuration: config)
        let clock = ContinuousClock()
        let started = clock.now
        let records = Self.bigRecords(count)
        var i = 0
        while i < records.count {
            try journal.append(contentsOf: Array(records[i..<min(i + 64, records.count)]))
            i += 64
        }
        try journal.close()
        print("big journal: \(count) records written in \(clock.now - started)")
        if let out = ProcessInfo.processInfo.environment["POSSYNC_DUMP_BENCH_OUT"] {
            // For the figures in docs/journal-dump.md (measured by hand): the same records
            // in frames of ~16 KiB, and one record per frame as a terminal writes them.
            try? FileManager.default.removeItem(atPath: out)
            try copyDirectory(dir, to: out + "/grouped")
            try Ledger.writeJournal(out + "/per-record", records: records, key: nil)
        }
        let segments = segmentNames(dir)
        #expect(segments.count >= 2)

        let firstOnly = try runDump([dir + "/" + segments[0], "--memory-report"], keepStdout: false, directory: t)
        #expect(firstOnly.exitCode == 0)
        let firstPeak = try #require(firstOnly.peakRSSKiB, "no peak RSS in: \(firstOnly.stderr)")
        let limitKiB = 200 * 1024
        for args in [[dir], [dir, "--json"], [dir, "--verify"], [dir, "--stats"]] {
            let before = clock.now
            let run = try runDump(args + ["--memory-report"], keepStdout: args.contains("--verify"), directory: t)
            let peak = try #require(run.peakRSSKiB, "no peak RSS in: \(run.stderr)")
            print("journal-dump \(args.dropFirst()): peak RSS \(peak) KiB (first segment alone: \(firstPeak) KiB), \(clock.now - before)")
            #expect(run.exitCode == 0, "\(args): \(run.stderr)")
            #expect(peak < limitKiB, "\(args): peak RSS \(peak) KiB for \(count) records")
            #expect(peak < firstPeak + 16 * 1024, "\(args): peak RSS \(peak) KiB vs \(firstPeak) KiB for the first segment alone")
            if args.contains("--verify") { #expect(run.stdout.contains("records=\(count) seq=1...\(count)")) }
        }
    }
}
