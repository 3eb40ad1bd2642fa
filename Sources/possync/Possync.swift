import ArgumentParser
import Foundation
import PosApp

@main
struct Possync: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "possync",
        abstract: "Offline-first sync for point-of-sale terminals: sales, returns, sync, reconciliation.",
        discussion: """
            Example:
              possync demo --seed 1

            Exit codes:
              0  ok
              1  refused: the input or the request is wrong (bad return code, amount above the sale, offline limit, invalid transition)
              2  usage: the command line cannot be parsed
              3  store: a store is missing, damaged, unreadable or shorter than it knows it was (run `recover`), or a disk operation failed
              4  busy: another possync process held the store's lock past --lock-timeout; retry
            A failed command prints one line on standard error and changes nothing.

            Locks: one possync process at a time works on a store directory; another waits up to --lock-timeout SECONDS (default 10, or $POSSYNC_LOCK_TIMEOUT).

            Clock: every command uses the wall clock unless --now TIME or the environment variable POSSYNC_NOW gives one (ISO 8601: 2026-03-02T08:00:00Z, 2026-03-02T16:00+08:00, 2026-03-02).
            """,
        version: "0.1.0",
        subcommands: [CentralCommand.self, TerminalCommand.self, DemoCommand.self]
    )

    /// Parses, runs, and maps every failure to its documented exit code.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if let missing = Usage.missingSubcommand(command) { Output.fail(missing) }
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as AppError {
            Output.fail(error)
        } catch {
            let code = exitCode(for: error)
            if code == .success { exit(withError: error) }  // --help, --version
            if error is ExitCode { exit(withError: error) }
            Output.fail(Usage.error(fullMessage(for: error)))
        }
    }
}
