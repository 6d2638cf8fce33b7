import Glibc
import KVMKit
import Synchronization

/// The human-readable log Firecracker's `PUT /logger` (or `--log-path`/`--level`) sets
/// up: one line per event,
///
///     2026-11-30T07:22:29.123456789 [vm0:api:INFO:MicroVM.swift:80] VM paused
///
/// with the level and origin shown on request. Nothing is written until a sink is set.
public final class VMMLogger: Sendable {
    public enum Level: Int, Comparable, Sendable, CaseIterable {
        case off = 0, error, warning, info, debug, trace

        /// Firecracker's spelling: "Error", "Warning", "Info", "Debug", "Trace", "Off".
        public var name: String {
            switch self {
            case .off: return "Off"
            case .error: return "Error"
            case .warning: return "Warning"
            case .info: return "Info"
            case .debug: return "Debug"
            case .trace: return "Trace"
            }
        }

        public init?(name: String) {
            guard let l = Level.allCases.first(where: { $0.name.lowercased() == name.lowercased() }) else { return nil }
            self = l
        }

        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
    }

    public struct Settings: Sendable, Equatable {
        public var path: String
        public var level = Level.warning
        public var showLevel = false
        public var showOrigin = false
        public init(path: String, level: Level = .warning, showLevel: Bool = false, showOrigin: Bool = false) {
            self.path = path; self.level = level; self.showLevel = showLevel; self.showOrigin = showOrigin
        }
    }

    private let instanceID: String
    private let state = Mutex<(settings: Settings, sink: OutputSink)?>(nil)

    public init(instanceID: String) { self.instanceID = instanceID }

    /// Open `settings.path` and log there from now on (replacing an earlier sink).
    public func configure(_ settings: Settings) throws(VMError) {
        let sink = try OutputSink(path: settings.path)
        state.withLock { $0 = (settings, sink) }
    }

    public var settings: Settings? { state.withLock { $0?.settings } }

    public func log(_ level: Level, _ message: @autoclosure () -> String, thread: String = "main",
                    file: StaticString = #fileID, line: UInt = #line) {
        guard let (settings, sink) = state.withLock({ $0 }), level != .off, level <= settings.level else { return }
        var tag = "\(instanceID):\(thread)"
        if settings.showLevel { tag += ":\(level.name.uppercased())" }
        if settings.showOrigin { tag += ":\(file):\(line)" }
        sink.writeLine("\(VMMLogger.timestamp()) [\(tag)] \(message())")
    }

    /// UTC, nanoseconds: 2026-11-30T07:22:29.123456789.
    static func timestamp() -> String {
        var t = timespec()
        clock_gettime(CLOCK_REALTIME, &t)
        var tm = tm()
        var seconds = t.tv_sec
        gmtime_r(&seconds, &tm)
        func pad(_ v: Int32, _ w: Int) -> String { let s = String(v); return String(repeating: "0", count: max(0, w - s.count)) + s }
        let ns = String(t.tv_nsec)
        return "\(pad(tm.tm_year + 1900, 4))-\(pad(tm.tm_mon + 1, 2))-\(pad(tm.tm_mday, 2))T\(pad(tm.tm_hour, 2)):\(pad(tm.tm_min, 2)):\(pad(tm.tm_sec, 2))."
            + String(repeating: "0", count: 9 - ns.count) + ns
    }
}
