import Foundation
import Testing

/// The same failure gets the same exit code in every command (docs/cli.md,
/// "Exit codes"): a missing store or a store of the other kind is 3; init on a
/// directory that holds a store, a missing or unreadable input file, an output
/// file that exists or whose directory does not exist is 1. Nothing changes.
@Suite("possync: the same failure gets the same exit code in every command", .serialized)
struct ExitCodeCLITests {
    @Test("store directories, input files and output files, across commands")
    func table() throws {
        let s = try BadInputCLITests.Shop()
        let tmp = s.tmp.path
        let nowhere = tmp + "/nowhere", empty = tmp + "/empty", file = tmp + "/a-file"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: false)
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        let ticket = ["--ticket", s.ticket]
        let terminalCommands: [[String]] = [
            ["terminal", "status"], ["terminal", "show"], ["terminal", "scan", "--amount", "1.00", "--payment-code", "134567890123456782"],
            ["terminal", "refund", "--return-code", s.returnCode, "--reason", "quality", "--resolution", "refund"],
            ["terminal", "approve"] + ticket, ["terminal", "note", "--note", "n"] + ticket, ["terminal", "sync", "--central", s.c],
            ["terminal", "export", "--out", tmp + "/x.bundle"],
        ]
        let centralCommands: [[String]] = [
            ["central", "show"], ["central", "enroll", "--terminal", "2", "--merchant", "acme", "--out", tmp + "/t2.json"],
            ["central", "approve"] + ticket, ["central", "forward"], ["central", "import", file],
        ]
        var rows: [(args: [String], status: Int32, message: String)] = []
        // A store directory that is missing, empty, or holds the other kind of store: 3, the store is missing.
        for c in terminalCommands {
            rows.append((c + ["--dir", nowhere], 3, "\(nowhere): no such directory (no terminal store here)"))
            rows.append((c + ["--dir", empty], 3, "\(empty): no terminal store here"))
            rows.append((c + ["--dir", s.c], 3, "\(s.c): this is a central store, not a terminal store"))
        }
        for c in centralCommands {
            rows.append((c + ["--dir", nowhere], 3, "\(nowhere): no such directory (no central store here)"))
            rows.append((c + ["--dir", empty], 3, "\(empty): no central store here"))
            rows.append((c + ["--dir", s.t1], 3, "\(s.t1): this is a terminal store, not a central store"))
        }
        rows += [
            (["terminal", "sync", "--dir", s.t1, "--central", s.t1], 3, "\(s.t1): this is a terminal store, not a central store"),
            (["terminal", "sync", "--dir", s.t1, "--central", nowhere], 3, "\(nowhere): no such directory (no central store here)"),
            // init on a directory that holds a store of either kind, or is not a directory: 1.
            (["central", "init", "--dir", s.t1], 1, "\(s.t1): a terminal store is here; a central store needs a directory of its own"),
            (["terminal", "init", "--dir", s.c, "--enrollment", tmp + "/t1.json"], 1, "\(s.c): a central store is here; a terminal store needs a directory of its own"),
            (["central", "init", "--dir", s.c], 1, "\(s.c): a central store already exists here"),
            (["terminal", "init", "--dir", s.t1, "--enrollment", tmp + "/t1.json"], 1, "\(s.t1): a terminal store already exists here"),
            (["central", "init", "--dir", file], 1, "\(file): not a directory"),
            (["central", "init", "--dir", file + "/hq"], 1, "\(file)/hq: \(file) is not a directory"),
            (["terminal", "init", "--dir", file + "/shop", "--enrollment", tmp + "/t1.json"], 1, "\(file) is not a directory"),
            (["demo", "--dir", empty], 1, "\(empty): already exists"),
            (["demo", "--dir", file + "/run"], 1, "\(file)/run: \(file) is not a directory"),
            // An input file that is missing or not a readable file: 1.
            (["terminal", "init", "--dir", tmp + "/shop9", "--enrollment", nowhere], 1, "\(nowhere): no such enrollment file"),
            (["terminal", "init", "--dir", tmp + "/shop9", "--enrollment", empty], 1, "\(empty): is a directory; expected the enrollment file"),
            (["central", "import", "--dir", s.c, nowhere], 1, "\(nowhere): no such bundle file"),
            (["central", "import", "--dir", s.c, empty], 1, "\(empty): is a directory; expected the bundle file"),
            // An output file that exists, or whose directory is missing or not a directory: 1 (checked before central enrolls anything).
            (["central", "enroll", "--dir", s.c, "--terminal", "2", "--merchant", "acme", "--out", tmp + "/t1.json"], 1, "\(tmp)/t1.json: already exists"),
            (["terminal", "export", "--dir", s.t1, "--out", tmp + "/t1.json"], 1, "\(tmp)/t1.json: already exists"),
            (["central", "enroll", "--dir", s.c, "--terminal", "2", "--merchant", "acme", "--out", nowhere + "/t2.json"], 1,
             "\(nowhere)/t2.json: directory \(nowhere) does not exist"),
            (["terminal", "export", "--dir", s.t1, "--out", nowhere + "/x.bundle"], 1, "\(nowhere)/x.bundle: directory \(nowhere) does not exist"),
            (["central", "enroll", "--dir", s.c, "--terminal", "2", "--merchant", "acme", "--out", file + "/t2.json"], 1,
             "\(file)/t2.json: \(file) is not a directory"),
            (["terminal", "export", "--dir", s.t1, "--out", file + "/x.bundle"], 1, "\(file)/x.bundle: \(file) is not a directory"),
        ]
        for row in rows {
            try s.refuses(row.args, status: row.status, message: row.message)
        }
    }
}
