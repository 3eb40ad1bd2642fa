import Foundation
import PosCLI

// The command tree, its parsing and its exit codes are PosCLI's; this is the process around it.
exit(PosCLI.run(arguments: Array(CommandLine.arguments.dropFirst())))
