import Testing
@testable import PosLedger
