import Dispatch
import PosWire

/// Work started on a second thread at once: `result()` waits for it, `poll()` takes it only if it is done.
/// Used for the journal's write while an append is folded (FileCentralStorage) and for the snapshot runs'
/// merges between flushes (CentralState).
final class SecondThread<T: Sendable>: @unchecked Sendable {  // `outcome` is written before `done` is signalled, read after
    private var outcome: Result<T, SyncError>?
    private let done = DispatchSemaphore(value: 0)
    /// Whether `done`'s one signal has been taken (by `result()` or a successful `poll()`).
    private var taken = false

    init(_ work: @escaping @Sendable () throws(SyncError) -> T) {
        DispatchQueue.global().async {
            do throws(SyncError) { self.outcome = .success(try work()) } catch { self.outcome = .failure(error) }
            self.done.signal()
        }
    }

    /// The work's result, once it is done (waits). Called from one thread (the owner's).
    func result() throws(SyncError) -> T {
        if !taken {
            done.wait()
            taken = true
        }
        return try outcome!.get()
    }

    /// The work's result if it is done, else nil at once. Called from one thread (the owner's).
    func poll() -> Result<T, SyncError>? {
        if !taken {
            guard done.wait(timeout: .now()) == .success else { return nil }
            taken = true
        }
        return outcome
    }
}
