import Foundation
@testable import PosApp
import PosReconcile
import Testing

/// The HTML page carries whatever text the night held without running or loading anything.
@Suite("the nightly report page")
struct ReportHTMLTests {
    @Test("every text is escaped: a file name or a reason holding markup stays text")
    func escaped() {
        let hostile = "x.bundle\"><script>alert(1)</script><img src=http://example.invalid/a.png>"
        var r = NightlyReport(date: "2026-03-03", asOfMillis: 1_772_582_400_000, central: "c0ffee", merchantFilter: nil, silentDaysMin: 3,
                              bundles: [BundleEntry(file: hostile, outcome: BundleOutcome.rejected, reason: "malformed", detail: hostile, sha256: nil)],
                              statement: nil, merchants: [], centralConflicts: [], losses: [])
        r.summary = Summary(of: r)
        let page = ReportHTML.render(r)
        #expect(!page.contains("<script") && !page.contains("<img") && !page.contains("src=\""))
        #expect(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        #expect(page.contains("data-attention=\"true\"") && page.contains("1 rejected bundle(s)"))
        let csv = ReportCSV.field("a,b\"c")
        #expect(csv == "\"a,b\"\"c\"")
    }
}
