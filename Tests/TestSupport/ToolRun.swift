import Foundation

/// A helper program's exit status and its stdout and stderr together, for tests that judge
/// swiftvmm's output with other tools (qemu-img, iasl, acpiexec, losetup).
public struct ToolRun {
    public let status: Int32
    public let output: String

    /// Run `program` (a path) with `arguments`, in `directory` if given, to its exit.
    public init(_ program: String, _ arguments: [String], in directory: URL? = nil) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: program)
        p.arguments = arguments
        p.currentDirectoryURL = directory
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        status = p.terminationStatus
        output = String(decoding: data, as: UTF8.self)
    }
}
