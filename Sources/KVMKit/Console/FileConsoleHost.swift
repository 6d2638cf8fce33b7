import Glibc

/// `--serial file:PATH`: guest output written to a file (created or truncated, mode
/// 0644); no input. Regular-file writes do not block for long, so they are plain writes.
final class FileConsoleHost: ConsoleHost {
    let path: String
    private var fd: Int32 = -1
    private(set) var discardedBytes: UInt64 = 0

    init(path: String) { self.path = path }

    func start() throws {
        let f = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if f < 0 { throw ConsoleError.systemCall("open", errno: errno, context: "console output file \(path)") }
        fd = f
    }

    var acceptsOutput: Bool { true }

    func write(_ bytes: UnsafeRawBufferPointer) {
        guard fd >= 0 else { return }
        if !ConsoleIO.writeAll(fd, bytes, socket: false, deadline: ConsoleIO.monotonicMillis() + 1000) {
            discardedBytes += UInt64(bytes.count)  // disk full or similar: the guest keeps running
        }
    }

    func inputResumed() {}
    func writeFinal(_ bytes: UnsafeRawBufferPointer, deadline: Int64) { write(bytes) }

    func close(deadline: Int64) {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }
}
