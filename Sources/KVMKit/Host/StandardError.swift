/// The process's one way to print a message: text to stderr with `write(2)` (through
/// `ConsoleIO.writeAll`, which also waits out a non-blocking stderr that is full) — no stdio
/// buffer and no `stderr` global (shared mutable state the Swift 6 checker refuses).
public enum StandardError {
    public static func write(_ text: String) {
        ConsoleIO.writeAll(2, text, socket: false, deadline: ConsoleIO.monotonicMillis() + 1000)
    }
}
