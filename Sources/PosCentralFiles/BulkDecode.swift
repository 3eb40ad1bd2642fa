import Foundation
import PosLedger

/// Decoding a batch of event records on two threads, for the passes over many
/// records (the full-state read, the replay at open): decoding costs more than
/// reading the records or folding them, and the records are independent. The
/// results come back in record order, so what follows (the checks, the fold)
/// sees exactly what a decode on one thread gives.
enum BulkDecode {
    /// Records a batch holds, at least, to be decoded on two threads: below, starting the second costs more than it saves.
    static let parallelRecordsMin = 256

    /// A record that did not decode: its index in the batch and why.
    struct Failure: Error {
        let index: Int
        let error: LedgerError
    }

    /// `decode` of each record, in record order, or the first record (lowest index) it fails on. `decode` runs on
    /// two threads at once (each on its own contiguous half) when there are `parallelRecordsMin` records or more:
    /// it must touch nothing but its record and what is safe to share (a decode context is).
    static func map<T>(_ records: [[UInt8]], _ decode: ([UInt8]) throws(LedgerError) -> T) -> Result<[T], Failure> {
        let count = records.count
        guard count > 0 else { return .success([]) }
        let out = UnsafeMutableBufferPointer<T?>.allocate(capacity: count)
        out.initialize(repeating: nil)
        defer { out.deinitialize(); out.deallocate() }
        let failures = UnsafeMutableBufferPointer<Failure?>.allocate(capacity: 2)
        failures.initialize(repeating: nil)
        defer { failures.deinitialize(); failures.deallocate() }
        func run(_ worker: Int, _ range: Range<Int>) {
            for i in range {
                do throws(LedgerError) { out[i] = try decode(records[i]) } catch {
                    failures[worker] = Failure(index: i, error: error)
                    return
                }
            }
        }
        if count < parallelRecordsMin {
            run(0, 0..<count)
        } else {
            let half = count / 2
            withoutActuallyEscaping(run) { run in
                // Each thread writes only its own half's slots and its own failure: no slot is shared.
                let work = Work(run: run)
                DispatchQueue.concurrentPerform(iterations: 2) { worker in work.run(worker, worker == 0 ? 0..<half : half..<count) }
            }
        }
        // A failure in the first half comes first in record order.
        if let f = failures[0] ?? failures[1] { return .failure(f) }
        return .success(out.map { $0! })
    }

    /// What both threads run, each on its own range of slots.
    private struct Work: @unchecked Sendable {
        let run: (Int, Range<Int>) -> Void
    }
}
