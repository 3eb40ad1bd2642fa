import PosLedger

// What people type to name a sale or a ticket.

public enum EntityParsing {
    /// A sale: its id "3:17" or the return code on its receipt ("3421 0785").
    public static func sale(_ text: String) throws(AppError) -> SaleId {
        if text.contains(":") { return SaleId(try dot(text, what: "sale id")) }
        return try returnCode(text).sale
    }

    /// A return code, checked digit by digit: a mistyped code is refused, not misread.
    public static func returnCode(_ text: String) throws(AppError) -> ReturnCode {
        do { return try ReturnCode(parsing: text) } catch {
            throw AppError(.refused, "return code \(PrintableText.escaped(String(text.prefix(24)))): \(error.message)")
        }
    }

    /// A ticket: its number "42-1078-5" or its id "42:1078".
    public static func ticket(_ text: String) throws(AppError) -> TicketId {
        if text.contains(":") { return TicketId(try dot(text, what: "ticket id")) }
        do { return try TicketNumber(parsing: text).ticket } catch {
            throw AppError(.refused, "ticket number \(PrintableText.escaped(String(text.prefix(24)))): \(error.message)")
        }
    }

    static func dot(_ text: String, what: String) throws(AppError) -> Dot {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let r = UInt32(parts[0]), let s = UInt64(parts[1]) else {
            throw AppError(.refused, "\(what) \(PrintableText.escaped(String(text.prefix(24)))): expected REPLICA:SEQ like 3:17")
        }
        return try ledger { () throws(LedgerError) in try Dot(replica: try ReplicaId(r), seq: s) }
    }

    /// A contact: "+8613800138000" (SMS) or "app:HANDLE".
    public static func contact(_ text: String) throws(AppError) -> CustomerContact {
        try ledger { () throws(LedgerError) in
            text.hasPrefix("app:") ? try CustomerContact(channel: .app, address: String(text.dropFirst(4)))
                : try CustomerContact(channel: .sms, address: text)
        }
    }
}
