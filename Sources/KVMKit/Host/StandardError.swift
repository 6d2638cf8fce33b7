import Glibc

/// The process's one way to print a message: a line to stderr in one write(2) — no stdio
/// buffer and no `stderr` global (shared mutable state the Swift 6 checker refuses), and
/// usable on a thread whose seccomp filter allows `write` alone.
public enum StandardError {
    public static func write(_ text: String) {
        var text = text
        text.withUTF8 { bytes in
            var rest = UnsafeRawBufferPointer(bytes)
            while !rest.isEmpty {
                let n = Glibc.write(STDERR_FILENO, rest.baseAddress, rest.count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                rest = UnsafeRawBufferPointer(rebasing: rest[n...])
            }
        }
    }
}
