import Foundation
import Testing

/// A usage error is one line on standard error, like every other failure: the
/// problem and where the help is; exit 2, nothing on standard output.
@Suite("possync: a usage error is one line", .serialized)
struct UsageCLITests {
    @Test("unknown option, missing value, bad integer, unknown or missing subcommand, conflicting options", arguments: [
        (["terminal", "status", "--dir", "d", "--frobnicate"], "Unknown option '--frobnicate' (see 'possync terminal status --help')"),
        (["terminal", "status", "--dir"], "Missing value for '--dir <dir>' (see 'possync terminal status --help')"),
        (["terminal", "scan", "--dir", "d"], "Missing expected argument '--payment-code <code>' (see 'possync terminal scan --help')"),
        (["central", "forward", "--dir", "d", "--expiry-hours", "abc"], "The value 'abc' is invalid for '--expiry-hours <expiry-hours>' (see 'possync central forward --help')"),
        (["demo", "--terminals", "99999999999999999999"], "is invalid for '--terminals <terminals>' (see 'possync demo --help')"),
        (["terminal", "frob"], "unknown subcommand 'frob' of 'possync terminal': expected one of init, scan, refund, cancel, approve, reject, escalate, note, status, show, sync, export, recover (see 'possync terminal --help')"),
        (["frob"], "unknown subcommand 'frob' of 'possync': expected one of central, terminal, nightly, demo (see 'possync --help')"),
        (["central"], "'possync central' needs a subcommand: one of init, enroll, show, status, approve, reject, complete, import, forward, statement, recover, serve, revoke, notify, notifications, migrate (see 'possync central --help')"),
        ([], "'possync' needs a subcommand: one of central, terminal, nightly, demo (see 'possync --help')"),
        (["terminal", "show", "--dir", "d", "--sale", "1:1", "--ticket", "1:2"], "give --sale or --ticket, not both (see 'possync terminal show --help')"),
        (["terminal", "status", "--dir", "d", "extra"], "Unexpected argument 'extra' (see 'possync terminal status --help')"),
        (["central", "status", "--dir", "d", "--postgres", "postgres://u@h/db"], "--dir and --postgres name two centrals: give one (see 'possync central status --help')"),
        (["central", "show"], "where is central? --dir DIR (a store directory) or --postgres URL (a PostgreSQL database) (see 'possync central show --help')"),
        (["central", "recover", "--postgres", "postgres://u@h/db"], "central recover works on a store directory (--dir); it does not take --postgres"),
        (["central", "status", "--postgres", "mysql://u:secret@h/db"], "--postgres: mysql://u:***@h/db: a PostgreSQL URL is postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"),
    ])
    func oneLine(_ args: [String], _ message: String) throws {
        let r = try CLI.run(args)
        #expect(r.status == 2, "exit \(r.status): \(r.stderr)")
        #expect(r.stdout.isEmpty, "\(r.stdout)")
        let lines = r.stderr.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 2 && lines[1].isEmpty, "not one line: \(r.stderr.debugDescription)")
        #expect(lines.first?.hasPrefix("possync: error: ") == true, "\(r.stderr)")
        #expect(r.stderr.contains(message), "expected \"\(message)\" in \(r.stderr)")
    }

    @Test("--help and --version still print to standard output and exit 0")
    func help() throws {
        for args in [["--help"], ["terminal", "--help"], ["terminal", "status", "--help"], ["--version"]] {
            let r = try CLI.run(args)
            #expect(r.status == 0, "\(args): \(r.stderr)")
            #expect(!r.stdout.isEmpty && r.stderr.isEmpty)
        }
    }
}
