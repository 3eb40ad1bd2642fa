import Foundation

/// The path of an executable product built next to the running test binary
/// (`swift build --build-tests` builds executables too): searched upward from
/// the test bundle and from the test binary. Nil when it is not built.
public func builtExecutable(_ name: String) -> String? {
    var starts = [Bundle.main.bundleURL, URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()]
    if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
        starts.append(URL(fileURLWithPath: exe).deletingLastPathComponent())
    }
    for start in starts {
        var dir = start
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent(name).path
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory), !isDirectory.boolValue,
               FileManager.default.isExecutableFile(atPath: candidate) {
                return candidate
            }
            dir = dir.deletingLastPathComponent()
        }
    }
    return nil
}
