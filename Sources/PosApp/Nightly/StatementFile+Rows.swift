import PosLedger
import PosReconcile
import PosWire

// The rows and the totals line of a statement file, and the end of reading.

extension StatementFile.Parser {
    /// A row, or nil after recording its first problem.
    mutating func row(_ f: [String], _ line: Int) -> StatementRow? {
        let names = StatementLayout.rowHeader
        guard f.count == names.count else {
            problem(.malformed, line, nil, "\(f.count) columns, expected \(names.count)")
            return nil
        }
        func bad(_ i: Int, _ why: String) -> StatementRow? {
            problem(.malformed, line, names[i], "\(PrintableText.escaped(String(f[i].prefix(StatementLimits.idBytesMax)))): \(why)")
            return nil
        }
        guard let time = try? WallClock.parse(f[0], source: names[0]) else { return bad(0, "expected an ISO 8601 time like 2026-03-03T21:00:00Z") }
        for i in [1, 2] where !Self.isID(f[i]) { return bad(i, "expected 1 to \(StatementLimits.idBytesMax) of A-Z a-z 0-9 - _ . :") }
        guard Enrollment.isValidMerchant(f[3]) else { return bad(3, "expected a merchant id: 1 to 64 of A-Z a-z 0-9 - _") }
        guard let terminalNumber = Self.integer(f[4], max: Int64(Limits.terminalIdMax)), terminalNumber > 0 else {
            return bad(4, "expected a terminal number 1...\(Limits.terminalIdMax)")
        }
        guard let status = StatementStatus(rawValue: f[5]) else {
            return bad(5, "expected one of \(StatementStatus.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let rowCurrency = try? Currency(f[6]) else { return bad(6, "expected an ISO 4217 code like CNY") }
        guard let amount = Self.integer(f[7], max: Limits.amountMinorMax), amount > 0 else {
            return bad(7, "expected an amount in minor units, 1...\(Limits.amountMinorMax), digits only")
        }
        var refundIDs: (String, String)?, refund: Money?
        if status == .refund {
            for i in [8, 9] where !Self.isID(f[i]) { return bad(i, "a REFUND row needs its refund ids: 1 to \(StatementLimits.idBytesMax) of A-Z a-z 0-9 - _ . :") }
            guard let r = Self.integer(f[10], max: Limits.amountMinorMax), r > 0 else {
                return bad(10, "a REFUND row needs the amount refunded in minor units, 1...\(Limits.amountMinorMax)")
            }
            refundIDs = (f[8], f[9])
            refund = Money(minorUnits: r, currency: rowCurrency)
        } else {
            for i in [8, 9, 10] where !f[i].isEmpty { return bad(i, "only a REFUND row has refund columns; this is \(status.rawValue)") }
        }
        guard let fee = Self.integer(f[11], max: Limits.amountMinorMax) else {
            return bad(11, "expected the fee in minor units, 0...\(Limits.amountMinorMax), digits only")
        }
        return StatementRow(line: line, transactionMillis: time, acquirerOrderId: f[1], merchantOrderId: f[2], merchant: f[3],
                            terminal: UInt32(terminalNumber), status: status, amount: Money(minorUnits: amount, currency: rowCurrency),
                            acquirerRefundId: refundIDs?.0, merchantRefundId: refundIDs?.1, refundAmount: refund,
                            fee: Money(minorUnits: fee, currency: rowCurrency))
    }

    mutating func totalsLine(_ f: [String], _ line: Int) -> StatementTotals? {
        let names = StatementLayout.totalsHeader
        guard f.count == names.count else {
            problem(.malformed, line, nil, "the totals line has \(f.count) columns, expected \(names.count)")
            return nil
        }
        var values: [Int64] = []
        for (i, text) in f.enumerated() {
            guard let v = Self.integer(text, max: .max) else {
                problem(.malformed, line, names[i], "\(PrintableText.escaped(String(text.prefix(24)))): expected a whole number, digits only")
                return nil
            }
            values.append(v)
        }
        guard values[0] <= Int64(StatementLimits.rowsMax) else {
            problem(.malformed, line, names[0], "more than \(StatementLimits.rowsMax) rows")
            return nil
        }
        return StatementTotals(line: line, rows: Int(values[0]), paidMinor: values[1], refundedMinor: values[2], feeMinor: values[3])
    }

    /// Digits only, no sign, no leading zero (but "0"), at most `max`.
    static func integer(_ text: String, max: Int64) -> Int64? {
        let b = Array(text.utf8)
        guard !b.isEmpty, b.count <= 19, b.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              b.count == 1 || b[0] != UInt8(ascii: "0") else { return nil }
        var v: Int64 = 0
        for d in b {
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(Int64(d - UInt8(ascii: "0")))
            guard !o1, !o2 else { return nil }
            v = s
        }
        return v <= max ? v : nil
    }

    /// The statement and every problem, once the last line was taken.
    mutating func finish(expectedDate: String, lines: Int) -> StatementFile.Reading {
        switch section {
        case .preambleHeader, .preamble, .rowHeader:
            if problems.isEmpty { problem(.malformed, lines + 1, nil, "the file ends before the rows' header") }
            return .init(statement: nil, problems: problems)
        case .rows:
            problem(.totalsMismatch, lines + 1, nil, "the file ends without the totals header and line (\(StatementLayout.totalsHeader.joined(separator: ",")))")
        case .totals:
            problem(.totalsMismatch, lines + 1, nil, "the file ends after the totals header, without the totals line")
        case .end:
            break
        }
        guard let currency, let (start, end) = try? StatementFile.day(date) else { return .init(statement: nil, problems: problems) }
        let statement = Statement(date: date, dayStartMillis: start, dayEndMillis: end, currency: currency, acquirer: acquirer, rows: rows,
                                  totals: totals ?? StatementTotals(line: lines, rows: -1, paidMinor: -1, refundedMinor: -1, feeMinor: -1))
        // A missing row makes the totals differ: they are compared only when every row was read.
        problems += StatementCheck.problems(statement, expectedDate: expectedDate, checkTotals: totals != nil && !rowsMalformed)
        problems.sort { ($0.line, $0.field ?? "") < ($1.line, $1.field ?? "") }
        return .init(statement: problems.isEmpty ? statement : nil, problems: problems)
    }
}
