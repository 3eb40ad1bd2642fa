// The events journals hold. Journals are append-only logs of immutable
// events; state is derived (see Fold.swift). Every event carries its dot,
// its writer's HLC timestamp and its causal context: the version vector of
// what its writer had seen of the entity (event f follows e exactly when
// f.context covers e.dot; HLC values never decide it).

public enum EventKind: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case saleCaptured = 1
    case saleConfirmed = 2
    case saleDeclined = 3
    case saleExpired = 4
    case refundRequested = 5
    case refundApproved = 6
    case refundRejected = 7
    case refundCancelled = 8
    case refundCompleted = 9
    case refundEscalated = 10
    case noteAdded = 11
    /// A terminal's sequence number lost at the terminal before central held it
    /// (written only by `terminal recover`): it carries nothing, and keeps the
    /// number from ever being given to another event.
    case sequenceVoid = 12

    public var description: String {
        switch self {
        case .saleCaptured: "sale-captured"
        case .saleConfirmed: "sale-confirmed"
        case .saleDeclined: "sale-declined"
        case .saleExpired: "sale-expired"
        case .refundRequested: "refund-requested"
        case .refundApproved: "refund-approved"
        case .refundRejected: "refund-rejected"
        case .refundCancelled: "refund-cancelled"
        case .refundCompleted: "refund-completed"
        case .refundEscalated: "refund-escalated"
        case .noteAdded: "note-added"
        case .sequenceVoid: "sequence-void"
        }
    }

    /// Authority: only central writes sale outcomes and refund completion;
    /// only terminals capture (they scan the customer's phone).
    public func mayBeWritten(by replica: ReplicaId) -> Bool {
        switch self {
        case .saleConfirmed, .saleDeclined, .saleExpired, .refundCompleted: replica.isCentral
        case .saleCaptured, .sequenceVoid: !replica.isCentral
        default: true
        }
    }
}

/// A captured payment: an unconfirmed claim until central learns the outcome.
public struct SaleCapture: Hashable, Sendable {
    public let amount: Money
    public let wallet: Wallet
    public let duplicateKey: DuplicateKey
    /// The code in clear (masked everywhere it is shown); nil once central
    /// relays the capture to other terminals.
    public let paymentCode: PaymentCode?

    /// A capture at the terminal that scanned the code.
    public init(amount: Money, paymentCode: PaymentCode, merchantKey: MerchantKey) throws(LedgerError) {
        self.amount = try Money.positive(amount.minorUnits, amount.currency)
        wallet = paymentCode.wallet
        duplicateKey = paymentCode.duplicateKey(merchantKey: merchantKey)
        self.paymentCode = paymentCode
    }

    /// A capture as stored or relayed (code possibly removed).
    public init(amount: Money, wallet: Wallet, duplicateKey: DuplicateKey,
                paymentCode: PaymentCode?) throws(LedgerError) {
        self.amount = try Money.positive(amount.minorUnits, amount.currency)
        if let paymentCode, paymentCode.wallet != wallet {
            throw LedgerError(.unknownWallet, "wallet \(wallet) does not match the code's shape (\(paymentCode))",
                              field: "wallet")
        }
        self.wallet = wallet
        self.duplicateKey = duplicateKey
        self.paymentCode = paymentCode
    }

    /// The same capture without the payment code, as central relays it.
    public func withoutPaymentCode() -> SaleCapture {
        // Cannot fail: the fields were validated when self was built.
        try! SaleCapture(amount: amount, wallet: wallet, duplicateKey: duplicateKey, paymentCode: nil)
    }
}

/// Why the customer returns the goods. "other" requires text.
public enum ReturnReason: Hashable, Sendable, CustomStringConvertible {
    case quality, wrongSize, notAsDescribed, changedMind
    case other(ReasonText)

    /// The reason codes a refund request's record carries (sync-protocol.md,
    /// "Records"): the one table, used by the encoder and the decoder.
    enum Code: UInt8 {
        case quality = 1, wrongSize = 2, notAsDescribed = 3, changedMind = 4, other = 5
    }

    var code: Code {
        switch self {
        case .quality: .quality
        case .wrongSize: .wrongSize
        case .notAsDescribed: .notAsDescribed
        case .changedMind: .changedMind
        case .other: .other
        }
    }

    /// The reason `code` names; `otherText` gives the text of `.other` (read only for it).
    init<E: Error>(code: Code, otherText: () throws(E) -> ReasonText) throws(E) {
        switch code {
        case .quality: self = .quality
        case .wrongSize: self = .wrongSize
        case .notAsDescribed: self = .notAsDescribed
        case .changedMind: self = .changedMind
        case .other: self = .other(try otherText())
        }
    }

    public var description: String {
        switch self {
        case .quality: "quality"
        case .wrongSize: "wrong-size"
        case .notAsDescribed: "not-as-described"
        case .changedMind: "changed-mind"
        case .other(let text): "other(\(text))"
        }
    }
}

public enum Resolution: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case refund = 1
    case exchange = 2
    public var description: String { self == .refund ? "refund" : "exchange" }
}

/// How an approved ticket is carried out.
public enum RefundRoute: Hashable, Sendable, CustomStringConvertible {
    case originalPayment
    case designatedAccount(AccountReference)
    /// Exchange / re-ship: no money moves.
    case reship

    /// The route codes an approval's record carries (sync-protocol.md,
    /// "Records"): the one table, used by the encoder and the decoder.
    enum Code: UInt8 {
        case originalPayment = 1, designatedAccount = 2, reship = 3
    }

    var code: Code {
        switch self {
        case .originalPayment: .originalPayment
        case .designatedAccount: .designatedAccount
        case .reship: .reship
        }
    }

    /// The route `code` names; `account` gives the account of `.designatedAccount` (read only for it).
    init<E: Error>(code: Code, account: () throws(E) -> AccountReference) throws(E) {
        switch code {
        case .originalPayment: self = .originalPayment
        case .designatedAccount: self = .designatedAccount(try account())
        case .reship: self = .reship
        }
    }

    public var description: String {
        switch self {
        case .originalPayment: "original-payment"
        case .designatedAccount(let a): "account(\(a))"
        case .reship: "reship"
        }
    }
}

/// A return request: opens a refund ticket named by this event's dot.
public struct RefundRequest: Hashable, Sendable {
    public let sale: SaleId
    public let amount: Money
    public let reason: ReturnReason
    public let resolution: Resolution
    public let contact: CustomerContact?

    /// Validates what the writer can see: amount > 0, same currency as the
    /// sale and <= the sale amount.
    public init(sale: SaleId, saleAmount: Money, amount: Money, reason: ReturnReason,
                resolution: Resolution, contact: CustomerContact?) throws(LedgerError) {
        guard amount.currency == saleAmount.currency else {
            throw LedgerError(.currencyMismatch,
                              "refund in \(amount.currency) for a sale in \(saleAmount.currency)", field: "amount")
        }
        guard amount.minorUnits <= saleAmount.minorUnits else {
            throw LedgerError(.invalidAmount,
                              "refund \(amount.minorUnits) exceeds the sale amount \(saleAmount.minorUnits) "
                                  + "by \(amount.minorUnits - saleAmount.minorUnits) minor units",
                              field: "amount")
        }
        try self.init(sale: sale, amount: amount, reason: reason, resolution: resolution, contact: contact)
    }

    /// As decoded from a record (the sale amount is not known here).
    init(sale: SaleId, amount: Money, reason: ReturnReason, resolution: Resolution,
         contact: CustomerContact?) throws(LedgerError) {
        self.sale = sale
        self.amount = try Money.positive(amount.minorUnits, amount.currency)
        self.reason = reason
        self.resolution = resolution
        self.contact = contact
    }
}

public enum EventBody: Hashable, Sendable {
    case saleCaptured(SaleCapture)
    case saleConfirmed(SaleId)
    case saleDeclined(SaleId)
    case saleExpired(SaleId)
    case refundRequested(RefundRequest)
    case refundApproved(TicketId, RefundRoute)
    case refundRejected(TicketId)
    case refundCancelled(TicketId)
    case refundCompleted(TicketId)
    case refundEscalated(TicketId)
    case noteAdded(TicketId, NoteText)
    /// A sequence number lost at its terminal: no entity, no fields; the fold ignores it.
    case sequenceVoid
    /// A record type this version does not know: its type byte and the raw
    /// field bytes after the common header, kept so it can be relayed.
    case unknown(type: UInt8, fields: [UInt8])

    public var kind: EventKind? {
        switch self {
        case .saleCaptured: .saleCaptured
        case .saleConfirmed: .saleConfirmed
        case .saleDeclined: .saleDeclined
        case .saleExpired: .saleExpired
        case .refundRequested: .refundRequested
        case .refundApproved: .refundApproved
        case .refundRejected: .refundRejected
        case .refundCancelled: .refundCancelled
        case .refundCompleted: .refundCompleted
        case .refundEscalated: .refundEscalated
        case .noteAdded: .noteAdded
        case .sequenceVoid: .sequenceVoid
        case .unknown: nil
        }
    }

    public var typeByte: UInt8 {
        if case .unknown(let type, _) = self { return type }
        return kind!.rawValue
    }
}

public struct Event: Hashable, Sendable, CustomStringConvertible {
    public let dot: Dot
    public let hlc: HLCTimestamp
    public let context: VersionVector
    public let body: EventBody

    public init(dot: Dot, hlc: HLCTimestamp, context: VersionVector, body: EventBody) {
        self.dot = dot
        self.hlc = hlc
        self.context = context
        self.body = body
    }

    /// True when `other` is in this event's causal past: this event's context
    /// covers `other`'s dot. An event never follows one with its own dot
    /// (itself, or a forged event reusing the dot).
    public func follows(_ other: Event) -> Bool { dot != other.dot && context.covers(other.dot) }

    /// The sale this event is about (the capture's own dot for a capture).
    public var saleId: SaleId? {
        switch body {
        case .saleCaptured: SaleId(dot)
        case .saleConfirmed(let s), .saleDeclined(let s), .saleExpired(let s): s
        case .refundRequested(let r): r.sale
        default: nil
        }
    }

    /// The ticket this event is about (the request's own dot for a request).
    public var ticketId: TicketId? {
        switch body {
        case .refundRequested: TicketId(dot)
        case .refundApproved(let t, _), .refundRejected(let t), .refundCancelled(let t),
             .refundCompleted(let t), .refundEscalated(let t), .noteAdded(let t, _): t
        default: nil
        }
    }

    public var description: String {
        "\(dot) \(body.kind.map { "\($0)" } ?? "unknown-\(body.typeByte)") hlc=\(hlc) ctx=\(context)"
    }
}
