import ArgumentParser
import PosApp
import PosLedger

/// Runs one decision on a ticket at a terminal or at central and prints it.
enum TicketCommandRunner {
    static func terminal(_ action: TicketAction, dir: String, lock: LockOptions, ticket: TicketOptions, route: String?, clock: ClockOptions, output: OutputOptions) throws {
        let now = try clock.millis()
        let (id, routeValue, note) = try parse(ticket, route: route)
        let desk = try TerminalDesk.open(directory: dir, lockWaitMillis: try lock.millis())
        defer { try? desk.close() }
        print(try desk.decide(action, ticket: id, route: routeValue, note: note, nowMillis: now), json: output.json)
    }

    static func central(_ action: TicketAction, dir: String, lock: LockOptions, ticket: TicketOptions, route: String?, clock: ClockOptions, output: OutputOptions) throws {
        let now = try clock.millis()
        let (id, routeValue, note) = try parse(ticket, route: route)
        let desk = try CentralDesk.open(directory: dir, clockMillis: { now }, lockWaitMillis: try lock.millis())
        defer { try? desk.close() }
        print(try desk.decide(action, ticket: id, route: routeValue, note: note, nowMillis: now), json: output.json)
    }

    static func parse(_ t: TicketOptions, route: String?) throws(AppError) -> (TicketId, RefundRoute?, NoteText?) {
        let id = try EntityParsing.ticket(t.ticket)
        let r = try route.map { text throws(AppError) in try EntityParsing.route(text) }
        let note = try t.note.map { text throws(AppError) in try ledger { () throws(LedgerError) in try NoteText(text) } }
        return (id, r, note)
    }

    static func print(_ r: DecisionResult, json: Bool) {
        Output.show(r, json: json) { r.text }
    }
}

extension TerminalCommand {
    struct Cancel: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The customer withdraws a return request before it is decided.",
            discussion: "Example:\n  possync terminal cancel --dir shop2 --ticket 2-1-7 --note \"customer kept the goods\"")
        @OptionGroup var store: TerminalDirOption
        @OptionGroup var ticket: TicketOptions
        @OptionGroup var clock: ClockOptions
        @OptionGroup var output: OutputOptions
        func run() throws { try TicketCommandRunner.terminal(.cancel, dir: store.dir, lock: store.lock, ticket: ticket, route: nil, clock: clock, output: output) }
    }

    struct Approve: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The shop manager approves a return ticket.",
            discussion: "Example:\n  possync terminal approve --dir shop2 --ticket 2-1-7 --route original")
        @OptionGroup var store: TerminalDirOption
        @OptionGroup var ticket: TicketOptions
        @Option(help: ArgumentHelp("original, account:REF or reship (default: original for a refund, reship for an exchange).", valueName: "route"))
        var route: String?
        @OptionGroup var clock: ClockOptions
        @OptionGroup var output: OutputOptions
        func run() throws { try TicketCommandRunner.terminal(.approve, dir: store.dir, lock: store.lock, ticket: ticket, route: route, clock: clock, output: output) }
    }

    struct Reject: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The shop manager rejects a return ticket.",
            discussion: "Example:\n  possync terminal reject --dir shop2 --ticket 2-1-7 --note \"goods were worn\"")
        @OptionGroup var store: TerminalDirOption
        @OptionGroup var ticket: TicketOptions
        @OptionGroup var clock: ClockOptions
        @OptionGroup var output: OutputOptions
        func run() throws { try TicketCommandRunner.terminal(.reject, dir: store.dir, lock: store.lock, ticket: ticket, route: nil, clock: clock, output: output) }
    }

    struct Escalate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The customer escalates a rejected ticket to customer service.",
            discussion: "Example:\n  possync terminal escalate --dir shop2 --ticket 2-1-7")
        @OptionGroup var store: TerminalDirOption
        @OptionGroup var ticket: TicketOptions
        @OptionGroup var clock: ClockOptions
        @OptionGroup var output: OutputOptions
        func run() throws { try TicketCommandRunner.terminal(.escalate, dir: store.dir, lock: store.lock, ticket: ticket, route: nil, clock: clock, output: output) }
    }

    struct Note: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a note to a ticket (any time).",
            discussion: "Example:\n  possync terminal note --dir shop2 --ticket 2-1-7 --note \"customer called back\"")
        @OptionGroup var store: TerminalDirOption
        @OptionGroup var ticket: TicketOptions
        @OptionGroup var clock: ClockOptions
        @OptionGroup var output: OutputOptions
        func validate() throws { if ticket.note == nil { throw ValidationError("give the note's text with --note") } }
        func run() throws { try TicketCommandRunner.terminal(.note, dir: store.dir, lock: store.lock, ticket: ticket, route: nil, clock: clock, output: output) }
    }
}
