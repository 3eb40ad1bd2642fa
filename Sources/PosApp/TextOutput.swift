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
