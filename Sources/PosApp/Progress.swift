/// Where long operations (import, sync, the demo) report how far they are.
/// The CLI draws a bar on a terminal and plain log lines otherwise.
/// `end()` is called on success only: a failed operation reports its error instead.
public protocol ProgressSink: AnyObject {
    func begin(_ label: String, total: Int, unit: String)
    func advance(by count: Int)
    func end()
}

/// Reports nothing.
public final class SilentProgress: ProgressSink {
    public init() {}
    public func begin(_ label: String, total: Int, unit: String) {}
    public func advance(by count: Int) {}
    public func end() {}
}
