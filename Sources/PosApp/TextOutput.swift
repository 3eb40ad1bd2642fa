import PosLedger

// The text form of each command's result (the JSON form is the value itself,
// encoded exactly). Every value a user or the wire supplied — a reason's text,
// a note, a SKU, a contact in a notification, a merchant id, a path — goes
// through `PrintableText.escaped`, so one result prints as the lines written
// here and no value can add a line or control the operator's terminal.

public enum TextOutput {
    /// A reason as text output prints it: `wrong-size`, or `other:"TEXT"` with
    /// TEXT escaped and quoted (the `--reason other:TEXT` form). `description`
    /// is `ReturnReason.description`, as the JSON carries it ("other(TEXT)").
    public static func reason(_ description: String) -> String {
        guard description.hasPrefix("other("), description.hasSuffix(")") else { return PrintableText.escaped(description, quoted: false) }
        return "other:" + PrintableText.escaped(String(description.dropFirst(6).dropLast()))
    }

    /// A value that is normally plain (a path, an id, a notification): printed
    /// unchanged unless it holds a character unsafe on a terminal line.
    public static func plain(_ text: String) -> String { PrintableText.escaped(text, quoted: false) }
}

extension TerminalDesk.ScanResult {
    public var text: String {
        (["sale \(sale) captured: \(amount) \(currency), \(wallet) \(paymentCode)"]
            + items.map { "  \(TextOutput.plain($0))" } + ["return code: \(returnCode)"]).joined(separator: "\n")
    }
}

extension TerminalDesk.ReturnResult {
    public var text: String {
        var lines = ["ticket \(ticket) opened for sale \(sale): \(resolution) \(amount) \(currency), reason \(TextOutput.reason(reason))"]
        lines.append("return policy: " + (policyHolds ? "every condition holds" : "some conditions FAIL (the merchant decides)"))
        for c in conditions { lines.append("  \(c.holds ? "ok   " : "FAILS") \(c.condition): \(c.detail)") }
        lines.append(notification.map { "notification queued: \(TextOutput.plain($0))" } ?? "no contact given: no notification")
        return lines.joined(separator: "\n")
    }
}

extension DecisionResult {
    public var text: String {
        var line = "ticket \(ticket): \(action) recorded (event \(events.joined(separator: ", "))); status now \(status)"
        if let h = heldReason { line += " (\(h))" }
        if let n = notification { line += "\nnotification queued: \(TextOutput.plain(n))" }
        return line
    }
}

extension CentralDesk.EnrollResult {
    public var text: String {
        "terminal \(terminal) enrolled for merchant \(TextOutput.plain(merchant)); enrollment written to \(TextOutput.plain(file)) (mode 0600)"
    }
}

extension CentralDesk.ForwardResult {
    public var text: String {
        var lines = forwarded.map { "sale \($0.sale) \($0.amount) \($0.currency): \($0.outcome) (\(TextOutput.plain($0.reason)))" }
        lines += skippedDuplicates.map { "sale \($0): void-duplicate, not forwarded" }
        if lines.isEmpty { lines.append("nothing to forward") }
        return lines.joined(separator: "\n")
    }
}

extension CentralDesk.ImportResult {
    public var text: String {
        "\(TextOutput.plain(file)): terminal \(terminal), \(events) events, \(new) new, \(alreadyHeld) already held; acknowledged through seq \(acknowledgedThrough)"
    }
}

extension TerminalDesk.SyncResult {
    public var text: String {
        var lines = ["synced: pushed \(pushed) events (\(alreadyAtCentral) central already had), acknowledged through seq \(acknowledgedThrough); pulled \(pulled) events"]
        if let a = centralLostFrom, let b = centralLostThrough {
            lines.append("warning: central had lost this terminal's events \(a)...\(b) after acknowledging them; re-pushed what this terminal still holds (central's loss log says what it could not get back)")
        }
        if clockSkewed { lines.append("warning: central says this terminal's clock is off") }
        return lines.joined(separator: "\n")
    }
}

extension TerminalDesk.RecoverResult {
    public var text: String {
        if nothingToDo { return "\(TextOutput.plain(directory)): both journals open and hold what central acknowledged: nothing to recover" }
        var lines: [String] = []
        if outboundRebuilt {
            lines.append("outbound journal rebuilt: seq \(firstSeq)...\(lastSeq); the next event is seq \(lastSeq + 1)")
            if let c = fromCentral { lines.append("  from central's copy (byte for byte as acknowledged): seq \(c)") }
            if let k = keptLocal { lines.append("  kept from the damaged journal (not yet acknowledged): seq \(k)") }
            for l in lost {
                lines.append("  LOST (\(damageFound ? "damaged here" : "missing here"), not held by central): seq \(l); written as void, so no other sale gets these numbers (receipts with their return codes cannot be refunded here)")
            }
            for k in keptAfterLoss { lines.append("  kept after a lost one (not yet acknowledged): seq \(k)") }
            if let v = voidedUnused {
                lines.append("  seq \(v): numbers this terminal had reserved beyond the last one known used, written as void; if the lost part of the journal held sales there, they are lost too")
            }
            if !differedFromCentral.isEmpty {
                lines.append("  differed from what central accepted (central's kept): seq \(differedFromCentral.map(String.init).joined(separator: ","))")
            }
            for e in lostEverywhere { lines.append("  of those, acknowledged once and lost at central too: seq \(e)") }
            if let d = damagedOutbound { lines.append("  the damaged journal was kept as \(TextOutput.plain(d))") }
        }
        if inboundRebuilt {
            lines.append("inbound journal started again (its events are pulled again at the next sync)" + (damagedInbound.map { "; the damaged one was kept as \(TextOutput.plain($0))" } ?? ""))
        }
        return lines.joined(separator: "\n")
    }
}

extension CentralDesk.RecoverResult {
    public var text: String {
        if nothingToDo { return "\(TextOutput.plain(directory)): the journal opens and nothing covers more than it holds: nothing to recover" }
        var lines: [String] = []
        if let c = journalCut { lines.append("journal tail cut: \(TextOutput.plain(c))") }
        if rebuilt {
            lines.append("journal rebuilt from its intact frames: \(eventsKept) events kept, \(eventsDropped) dropped (a terminal re-pushes what it still holds)")
            if let d = damagedJournal { lines.append("  the damaged journal was kept as \(TextOutput.plain(d))") }
        }
        if !runsSetAside.isEmpty { lines.append("snapshot runs set aside: \(runsSetAside.map(TextOutput.plain).joined(separator: ", "))") }
        if let r = sequenceReservationRenewed {
            lines.append("sequence-reservation.json did not read (kept as sequence-reservation.json.damaged): central's own numbers reserved afresh through \(r)")
        }
        for l in losses { lines.append(LedgerReport.lossLine(l)) }
        return lines.joined(separator: "\n")
    }
}

extension CentralDesk.Status {
    public var text: String {
        var lines = ["central \(central): \(journalPositions) journal positions, history epoch \(epoch)"]
        for t in terminals {
            var line = "terminal \(t.terminal)  merchant \(TextOutput.plain(t.merchant))  held through seq \(t.acknowledgedThrough)"
            if t.rewroteHistory { line += "  FLAGGED: rewrote history" }
            if t.clockSkewed { line += "  clock skewed" }
            lines.append(line)
        }
        lines.append(losses.isEmpty ? "no losses recorded" : "\(losses.count) loss records, \(unresolvedLosses) awaiting a terminal's re-push")
        for l in losses { lines.append(LedgerReport.lossLine(l)) }
        return lines.joined(separator: "\n")
    }
}
