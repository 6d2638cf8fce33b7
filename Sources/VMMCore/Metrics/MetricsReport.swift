import Glibc
import KVMKit

/// One metrics record as Firecracker writes them: a JSON object with `utc_timestamp_ms`,
/// then one object of counters per device (by registry id) and `vcpu`.
public enum MetricsReport {
    public static func json(_ metrics: [(id: String, counters: MetricCounters)], utcMillis: Int64 = utcNowMillis()) -> JSONValue {
        var root = JSONObject()
        root["utc_timestamp_ms"] = .number(.int(utcMillis))
        for (id, counters) in metrics {
            var group = JSONObject()
            for c in counters { group[c.name] = .number(c.value <= UInt64(Int64.max) ? .int(Int64(c.value)) : .uint(c.value)) }
            root[id] = .object(group)
        }
        return .object(root)
    }

    public static func utcNowMillis() -> Int64 {
        var t = timespec()
        clock_gettime(CLOCK_REALTIME, &t)
        return Int64(t.tv_sec) * 1000 + Int64(t.tv_nsec) / 1_000_000
    }
}
