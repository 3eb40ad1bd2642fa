// Runs `possync ARGS...` (through PosCLI, in this process) and kills itself with
// SIGKILL the COUNT-th time the nightly job passes POINT: a real crash, lock and
// all, at a chosen step (Tests/PosAppTests/NightlyCrashTests.swift).
//
//   nightly-crash-child POINT COUNT BATCH_FRAMES possync-arguments...
//
// BATCH_FRAMES: frames per import batch (0: the default), so small bundles import in several batches.
import Foundation
@_spi(Testing) import PosApp
import PosCLI

let args = CommandLine.arguments
guard args.count >= 4, let count = Int(args[2]), count >= 1, let frames = Int(args[3]) else {
    FileHandle.standardError.write(Data("usage: nightly-crash-child POINT COUNT BATCH_FRAMES possync-arguments...\n".utf8))
    exit(2)
}
let point = args[1]
final class Hits: @unchecked Sendable { var n = 0 }
let hits = Hits()
NightlyJob.testOnlyCrashHook = { p in
    guard p == point else { return }
    hits.n += 1
    if hits.n == count { kill(getpid(), SIGKILL) }
}
if frames > 0 { NightlyJob.testOnlyImportBatchFramesMax = frames }
exit(PosCLI.run(arguments: Array(args.dropFirst(4))))
