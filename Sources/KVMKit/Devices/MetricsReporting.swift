/// A device's counters, by name, for the metrics registry (exported as JSON). Names are
/// snake_case, as in Firecracker's metrics.
public typealias MetricCounters = [(name: String, value: UInt64)]

/// Anything with counters worth exporting. Safe to call from any thread.
public protocol MetricsReporting: AnyObject {
    var metricCounters: MetricCounters { get }
}

extension Serial16550: MetricsReporting {
    public var metricCounters: MetricCounters {
        let m = metrics
        return [("transmitted_bytes", m.transmittedBytes), ("received_bytes", m.receivedBytes),
                ("overrun_bytes", m.overrunBytes), ("interrupt_level_changes", m.interruptLevelChanges)]
    }
}
