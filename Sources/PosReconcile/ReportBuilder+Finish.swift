import PosLedger

extension ReportBuilder {
    /// What the report says besides central's state: the night, and what the job did.
    public struct Night: Sendable {
        public var date: String
        public var central: String
        public var silentDaysMin: Int
        /// A terminal whose newest event is dated past the end of the date by more than this runs ahead, milliseconds.
        public var clockSkewMillisMax: Int64
        public var bundles: [BundleEntry]
        /// The statement's file name and what reading it found (nil: none given).
        public var statementFile: String?
        public var statementRows: Int?
        public var statementProblems: [StatementProblem]
        public var losses: [LossEntry]

        public init(date: String, central: String, silentDaysMin: Int, clockSkewMillisMax: Int64, bundles: [BundleEntry], statementFile: String?,
                    statementRows: Int?, statementProblems: [StatementProblem], losses: [LossEntry]) {
            self.date = date
            self.central = central
            self.silentDaysMin = silentDaysMin
            self.clockSkewMillisMax = clockSkewMillisMax
            self.bundles = bundles
            self.statementFile = statementFile
            self.statementRows = statementRows
            self.statementProblems = statementProblems
            self.losses = losses
        }
    }

    /// The report, once every part was added.
    public mutating func finish(_ night: Night) -> NightlyReport {
        let asOf = day.upperBound
        var reconciliation = reconciler.map { r -> Reconciliation in var r = r; return r.finish() }
        if night.statementFile != nil && !night.statementProblems.isEmpty { reconciliation = nil }
        let gaps = Self.gaps(night.losses)
        var sections: [String: [TerminalSection]] = [:]
        for t in terminals.values.sorted(by: { $0.terminal < $1.terminal }) where merchantFilter == nil || merchantFilter == t.merchant {
            let f = figures[t.terminal] ?? Figures()
            let lag = f.lastEventMillis.map { max(0, asOf.clampedSubtracting($0)) }
            sections[t.merchant, default: []].append(TerminalSection(
                terminal: t.terminal, currencies: f.currencies.values.sorted { $0.currency < $1.currency },
                conflicts: Self.counts(f.conflicts), acknowledgedThrough: t.acknowledgedThrough, lastEventMillis: f.lastEventMillis, syncLagMillis: lag,
                silent: lag.map { $0 > Int64(night.silentDaysMin) * Millis.perDay } ?? true,
                clockAhead: f.lastEventMillis.map { $0.clampedSubtracting(asOf) > night.clockSkewMillisMax } ?? false,
                clockSkewedAtSync: t.clockOffsetMillis != nil, clockOffsetMillis: t.clockOffsetMillis, sequenceGaps: gaps[t.terminal] ?? []))
        }
        let discrepancies = reconciliation?.discrepancies ?? []
        let merchants = Set(sections.keys).union(discrepancies.map(\.merchant))
        var out: [MerchantSection] = []
        for m in merchants.sorted() {
            let terminals = sections[m] ?? []
            var currencies: [String: CurrencyFigures] = [:]
            var conflicts: [RuleKey: Int] = [:]
            for t in terminals {
                for c in t.currencies { currencies[c.currency, default: CurrencyFigures(currency: c.currency)].merge(c) }
                for r in t.conflicts { conflicts[RuleKey(kind: r.kind, rule: r.rule), default: 0] += r.count }
            }
            trimHeld(m)
            out.append(MerchantSection(merchant: m, currencies: currencies.values.sorted { $0.currency < $1.currency }, terminals: terminals,
                                       conflicts: Self.counts(conflicts), heldTickets: (held[m] ?? []).map(\.ticket),
                                       heldTicketsNotListed: heldDropped[m] ?? 0, discrepancies: discrepancies.filter { $0.merchant == m }))
        }
        var statement: StatementSection?
        if let file = night.statementFile {
            let listed = Array(night.statementProblems.prefix(StatementLimits.problemsListedMax))
            statement = StatementSection(file: file, status: reconciliation == nil ? StatementStatusName.refused : StatementStatusName.reconciled,
                                         rows: night.statementRows, problems: listed, problemsNotListed: night.statementProblems.count - listed.count,
                                         totals: reconciliation?.totals ?? [], discrepancies: discrepancies.count,
                                         rowsOfOtherMerchants: reconciliation?.rowsOfOtherMerchants ?? 0)
        }
        return NightlyReport(date: night.date, asOfMillis: asOf, central: night.central, merchantFilter: merchantFilter, silentDaysMin: night.silentDaysMin,
                             bundles: night.bundles, statement: statement, merchants: out, centralConflicts: Self.counts(centralConflicts),
                             losses: night.losses)
    }

    static func counts(_ byRule: [RuleKey: Int]) -> [RuleCount] {
        byRule.sorted { $0.key < $1.key }.map { RuleCount(kind: $0.key.kind, rule: $0.key.rule, count: $0.value) }
    }

    /// Each terminal's sequence numbers central will never hold, or waits for, from the loss log.
    static func gaps(_ losses: [LossEntry]) -> [UInt32: [SequenceGap]] {
        var out: [UInt32: [SequenceGap]] = [:]
        for l in losses {
            guard let t = l.terminal, let from = l.from, let through = l.through else { continue }
            let kind: String
            switch l.kind {
            case "voided": kind = "void"
            case "unrecoverable": kind = "lost"
            case "terminal-behind" where !l.resolved: kind = "awaiting"
            default: continue
            }
            out[t, default: []].append(SequenceGap(from: from, through: through, kind: kind, lossId: l.id))
        }
        return out.mapValues { $0.sorted { ($0.from, $0.lossId) < ($1.from, $1.lossId) } }
    }
}

extension Tally {
    public mutating func merge(_ o: Tally) {
        count += o.count
        amountMinor = amountMinor.clampedAdding(o.amountMinor)
    }
}

extension CurrencyFigures {
    public mutating func merge(_ o: CurrencyFigures) {
        captures.captured.merge(o.captures.captured); captures.confirmed.merge(o.captures.confirmed)
        captures.declined.merge(o.captures.declined); captures.expired.merge(o.captures.expired)
        captures.voidDuplicate.merge(o.captures.voidDuplicate); captures.awaitingCapture.merge(o.captures.awaitingCapture)
        refunds.requested.merge(o.refunds.requested); refunds.approved.merge(o.refunds.approved); refunds.rejected.merge(o.refunds.rejected)
        refunds.escalated.merge(o.refunds.escalated); refunds.cancelled.merge(o.refunds.cancelled); refunds.completed.merge(o.refunds.completed)
        refunds.held.merge(o.refunds.held); refunds.pendingSale.merge(o.refunds.pendingSale)
        exchanges += o.exchanges
    }
}
