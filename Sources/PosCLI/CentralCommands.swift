import ArgumentParser
import Foundation
import PosApp

struct CentralCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "central",
        abstract: "The central store (back office): enroll terminals, decide and complete tickets, import bundles, forward sales.",
        discussion: """
            Example:
              possync central init --dir hq
              possync central init --postgres postgres://possync@db.example:5432/central
            """,
        subcommands: [Init.self, Enroll.self, Show.self, Status.self, Approve.self, Reject.self, Complete.self, Import.self, Forward.self, Statement.self, Recover.self,
                      Serve.self, Revoke.self, Notify.self, Notifications.self, Migrate.self]
    )

    struct Init: ConsoleCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an empty central store.",
            discussion: "Example:\n  possync central init --dir hq")
        @OptionGroup var store: CentralDirOption
        @OptionGroup var clock: ClockOptions
        @OptionGroup var output: OutputOptions
        func run(_ console: Console) throws {
            let now = try clock.millis(console.environment)
            let desk = try CentralDesk.create(at: store.location, clockMillis: { now }, lockWaitMillis: try store.lock.millis(console.environment))
            defer { try? desk.close() }
            struct Created: Encodable { var central: String; var directory: String?; var postgres: String? }
            let r = Created(central: desk.centralID, directory: store.dir, postgres: desk.postgres)
            console.show(r, json: output.json) { "central store \(r.central) created in \(TextOutput.plain(desk.directory))" }
        }
    }

    struct Enroll: ConsoleCommand {
        static let configuration = CommandConfiguration(
            abstract: "Enroll a terminal: issue its identity and 256-bit secret (and the merchant key) in a file of mode 0600.",
            discussion: """
                Hand the file to the terminal (`possync terminal init --enrollment FILE`), then delete it.

                Example:
                  possync central enroll --dir hq --terminal 1 --merchant acme --out t1.json
                """)
        @OptionGroup var store: CentralDirOption
        @Option(help: "The terminal's id, 1...999999 (short: it is part of every return code).")
        var terminal: UInt32
        @Option(help: "The merchant the terminal belongs to (1 to 64 of A-Z a-z 0-9 - _).")
        var merchant: String
        @Option(help: ArgumentHelp("The enrollment file to write (must not exist).", valueName: "file"))
        var out: String
        @OptionGroup var clock: ClockOptions
        @OptionGroup var output: OutputOptions
        func run(_ console: Console) throws {
            let now = try clock.millis(console.environment)
            let desk = try CentralDesk.open(at: store.location, clockMillis: { now }, lockWaitMillis: try store.lock.millis(console.environment))
            defer { try? desk.close() }
            let r = try desk.enroll(terminal: terminal, merchant: merchant, out: out)
            console.show(r, json: output.json) { r.text }
        }
    }

    struct Show: ConsoleCommand {
        static let configuration = CommandConfiguration(
            abstract: "The folded state central holds: sales, tickets (status, held reason), conflicts (rule).",
            discussion: """
                Same shape as `possync terminal show`, so replicas compare with a plain diff;
                central's loss records, when it has any, follow (one `loss` line each).

                Example:
                  possync central show --dir hq --sale 1119 --json
                """)
        @OptionGroup var store: CentralDirOption
        @OptionGroup var filter: ShowFilter
        @OptionGroup var clock: ClockOptions
        @OptionGroup var output: OutputOptions
        func run(_ console: Console) throws {
            let now = try clock.millis(console.environment)
            let desk = try CentralDesk.open(at: store.location, clockMillis: { now }, lockWaitMillis: try store.lock.millis(console.environment), readOnly: true)
            defer { try? desk.close() }
            let report = try desk.report(try filter.filter())
            console.show(report, json: output.json) { report.text }
        }
    }

    struct Status: ConsoleCommand {
        static let configuration = CommandConfiguration(
            abstract: "Central's journal, terminals (how far each is held, flags) and every loss record.",
            discussion: """
                Exit 0 even with losses; a loss awaiting a terminal's re-push says so.

                Example:
                  possync central status --dir hq --json
                """)
        @OptionGroup var store: CentralDirOption
        @OptionGroup var clock: ClockOptions
        @OptionGroup var output: OutputOptions
        func run(_ console: Console) throws {
            let now = try clock.millis(console.environment)
            let desk = try CentralDesk.open(at: store.location, clockMillis: { now }, lockWaitMillis: try store.lock.millis(console.environment), readOnly: true)
            defer { try? desk.close() }
            let s = desk.status()
            console.show(s, json: output.json) { s.text }
        }
    }

    struct Recover: ConsoleCommand {
        static let configuration = CommandConfiguration(
            abstract: "After central refused to open: cut or rebuild its journal, set aside runs covering what is gone, and record every loss.",
            discussion: """
                Central refuses to open when its journal is shorter than a snapshot run proves it was, or is
                damaged inside. This is the explicit path: it keeps every intact event, records in
                losses.jsonl what is gone (terminals re-push what they still hold at their next sync), keeps
                the damaged journal beside the new one, and never reuses a number a lost event may have had.

                Example:
                  possync central recover --dir hq
                """)
        @OptionGroup var store: CentralDirOption
        @OptionGroup var clock: ClockOptions
        @OptionGroup var output: OutputOptions
        func run(_ console: Console) throws {
            let now = try clock.millis(console.environment)
            let r = try CentralDesk.recover(directory: try store.directory(for: "central recover"), clockMillis: { now }, lockWaitMillis: try store.lock.millis(console.environment))
            console.show(r, json: output.json) { r.text }
        }
    }

    struct Approve: ConsoleCommand {
        static let configuration = CommandConfiguration(
            abstract: "The back office approves a return ticket (also resolves a held dispute it has seen).",
            discussion: "Example:\n  possync central approve --dir hq --ticket 2-1-7 --route account:6222020200112233")
        @OptionGroup var store: CentralDirOption
        @OptionGroup var ticket: TicketOptions
        @Option(help: ArgumentHelp("original, account:REF or reship.", valueName: "route"))
        var route: RouteArgument?
        @OptionGroup var clock: ClockOptions
        @OptionGroup var output: OutputOptions
        func validate() throws { _ = try TicketCommandRunner.parse(ticket, route: route) }
        func run(_ console: Console) throws { try TicketCommandRunner.central(.approve, store: store, ticket: ticket, route: route, clock: clock, output: output, console: console) }
    }

    struct Reject: ConsoleCommand {
        static let configuration = CommandConfiguration(
            abstract: "The back office rejects a return ticket.",
            discussion: "Example:\n  possync central reject --dir hq --ticket 2-1-7 --note \"outside the return window\"")
        @OptionGroup var store: CentralDirOption
        @OptionGroup var ticket: TicketOptions
        @OptionGroup var clock: ClockOptions
        @OptionGroup var output: OutputOptions
        func run(_ console: Console) throws { try TicketCommandRunner.central(.reject, store: store, ticket: ticket, clock: clock, output: output, console: console) }
    }

    struct Complete: ConsoleCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record that an approved refund's money moved (only on a confirmed sale).",
            discussion: "Example:\n  possync central complete --dir hq --ticket 2-1-7")
        @OptionGroup var store: CentralDirOption
        @OptionGroup var ticket: TicketOptions
        @OptionGroup var clock: ClockOptions
        @OptionGroup var output: OutputOptions
        func run(_ console: Console) throws { try TicketCommandRunner.central(.complete, store: store, ticket: ticket, clock: clock, output: output, console: console) }
    }

    struct Import: ConsoleCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import courier bundles (terminal exports), in order; idempotent.",
            discussion: "Example:\n  possync central import --dir hq /media/usb/shop3.bundle /media/usb/shop4.bundle")
        @OptionGroup var store: CentralDirOption
        @Argument(help: ArgumentHelp("Bundle files.", valueName: "file"))
        var files: [String]
        @Flag(name: .customLong("allow-revoked"), help: "Take a revoked terminal's bundle too (operations decided to take its queued events).")
        var allowRevoked = false
        @OptionGroup var clock: ClockOptions
        @OptionGroup var output: OutputOptions
        func validate() throws { if files.isEmpty { throw ValidationError("give at least one bundle file") } }
        func run(_ console: Console) throws {
            let now = try clock.millis(console.environment)
            let desk = try CentralDesk.open(at: store.location, clockMillis: { now }, lockWaitMillis: try store.lock.millis(console.environment))
            defer { try? desk.close() }
            let r = try desk.importBundles(files, allowRevoked: allowRevoked, progress: ProgressBar(console))
            console.show(r, json: output.json) { r.map(\.text).joined(separator: "\n") }
        }
    }

    struct Forward: ConsoleCommand {
        static let configuration = CommandConfiguration(
            abstract: "Forward every captured sale to the acquirer (never a void-duplicate) and record confirmed / declined / expired.",
            discussion: """
                The default acquirer is the deterministic simulator: a sale forwarded more than
                --expiry-hours after capture is expired; a payment code ending in 0 is declined;
                every other is confirmed.

                Example:
                  possync central forward --dir hq --expiry-hours 72
                """)
        @OptionGroup var store: CentralDirOption
        @Option(name: .customLong("expiry-hours"), help: "The acquirer's window after capture, in hours.")
        var expiryHours: Int64 = SimulatedAcquirer.expiryHoursDefault
        @OptionGroup var clock: ClockOptions
        @OptionGroup var output: OutputOptions
        func run(_ console: Console) throws {
            let now = try clock.millis(console.environment)
            let acquirer = try SimulatedAcquirer(expiryHours: expiryHours)
            let desk = try CentralDesk.open(at: store.location, clockMillis: { now }, lockWaitMillis: try store.lock.millis(console.environment))
            defer { try? desk.close() }
            let r = try desk.forward(to: acquirer, nowMillis: now, progress: ProgressBar(console))
            console.show(r, json: output.json) { r.text }
        }
    }
}
