import Glibc
import KVMKit
import Synchronization

/// A log or metrics destination: an existing regular file (appended to) or named pipe, as
/// Firecracker requires (it creates neither, so an API client cannot make files appear). Writes never block: a pipe whose reader lags loses whole lines, which are
/// counted, so neither the API thread nor a vCPU ever waits for a slow consumer.
public final class OutputSink: Sendable {
    public let path: String
    private let fd: Int32
    private let dropped = Mutex<UInt64>(0)  // also serialises the writes

    public init(path: String) throws(VMError) {
        // Read-write so that opening a FIFO does not wait for (or fail without) a reader.
        let fd = open(path, O_RDWR | O_APPEND | O_NONBLOCK | O_CLOEXEC)
        if fd < 0 { throw VMError.invalidConfiguration("\(path): cannot open: \(errnoText(errno))") }
        var st = stat()
        if fstat(fd, &st) != 0 || ((st.st_mode & S_IFMT) != S_IFREG && (st.st_mode & S_IFMT) != S_IFIFO) {
            close(fd)
            throw VMError.invalidConfiguration("\(path): not a regular file or a named pipe")
        }
        self.path = path
        self.fd = fd
    }

    deinit { close(fd) }

    /// Write one line (a newline is added) in one `write`, or count it as dropped.
    public func writeLine(_ text: String) {
        var bytes = Array(text.utf8)
        bytes.append(0x0A)
        dropped.withLock { d in
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n != bytes.count { d &+= 1 }
        }
    }

    /// Lines lost to a full pipe or a failed write.
    public var droppedLines: UInt64 { dropped.withLock { $0 } }
}
