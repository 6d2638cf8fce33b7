import KVMKit

/// Counters of one transport, read by the CLI's status and by tests.
public struct VirtioTransportMetrics: Equatable {
    /// Queue notifications handled (ioeventfd or MMIO write).
    public var notifications: UInt64 = 0
    /// QueueNotify writes that reached the transport as MMIO exits (with ioeventfds
    /// registered, these should stay 0).
    public var mmioNotifies: UInt64 = 0
    /// Reads or writes of a register that does not exist, is write-only/read-only,
    /// or has the wrong access width.
    public var invalidAccesses: UInt64 = 0
    /// Status writes that did not follow the §3.1.1 sequence (ignored).
    public var invalidStatusTransitions: UInt64 = 0
    /// Times the device entered DEVICE_NEEDS_RESET, and the last reason.
    public var needsReset: UInt64 = 0
    public var lastError: String?
    public var resets: UInt64 = 0
    public var activations: UInt64 = 0
}

extension VirtioMMIOTransport: MetricsReporting {
    /// The transport's counters, the interrupts it raised, then the device's own (read under
    /// the transport's lock, which guards the device's state).
    public var metricCounters: MetricCounters {
        let (t, device) = withDeviceLocked { ($0, ($1 as? MetricsReporting)?.metricCounters ?? []) }
        return [("notifications", t.notifications), ("mmio_notifies", t.mmioNotifies),
                ("interrupts", interrupt.count), ("invalid_accesses", t.invalidAccesses),
                ("invalid_status_transitions", t.invalidStatusTransitions), ("needs_reset", t.needsReset),
                ("resets", t.resets), ("activations", t.activations)] + device
    }
}

extension VirtioBlock: MetricsReporting {
    public var metricCounters: MetricCounters {
        let m = metrics
        return [("read_count", m.reads), ("write_count", m.writes), ("flush_count", m.flushes),
                ("get_id_count", m.getIDs), ("discard_count", m.discards), ("write_zeroes_count", m.writeZeroes),
                ("read_bytes", m.bytesRead), ("write_bytes", m.bytesWritten), ("invalid_requests", m.invalidRequests),
                ("unsupported_requests", m.unsupportedRequests), ("backend_errors", m.backendErrors),
                ("rate_limited", m.rateLimited)]
    }
}

extension VirtioRng: MetricsReporting {
    public var metricCounters: MetricCounters { [("bytes_provided", bytesProvided), ("failures", failures)] }
}

extension VirtioConsole: MetricsReporting {
    public var metricCounters: MetricCounters {
        [("bytes_in", bytesIn), ("bytes_out", bytesOut), ("dropped_output_bytes", output.droppedBytes)]
    }
}

extension VirtioNet: Pausable, MetricsReporting {
    public var metricCounters: MetricCounters {
        let m = metrics
        return [("rx_frames", m.rxFrames), ("rx_bytes", m.rxBytes), ("tx_frames", m.txFrames), ("tx_bytes", m.txBytes),
                ("dropped_frames", m.totalDrops), ("rx_no_buffers", m.rxNoBuffers), ("tx_tap_full", m.txTapFull),
                ("rx_rate_limited", m.rxRateLimited), ("tx_rate_limited", m.txRateLimited), ("link_down_events", m.linkDownEvents)]
    }
}

extension VirtioVsock: Pausable, MetricsReporting {
    public var metricCounters: MetricCounters {
        let m = metrics
        return [("host_connections", m.hostConnections), ("guest_connections", m.guestConnections),
                ("refused_connections", m.refusedConnections), ("resets", m.resets), ("bytes_to_guest", m.bytesToGuest),
                ("bytes_to_host", m.bytesToHost), ("invalid_packets", m.invalidPackets), ("bad_handshakes", m.badHandshakes),
                ("transport_reset_events", m.transportResetEvents)]
    }
}
