/// A request the router accepted: what the client asked for, with its body decoded and
/// checked. Executing it (and answering 400 for the wrong state) is the VMM's job.
public enum APIRequest: Sendable, Equatable {
    case getInstanceInfo
    case getVersion
    case getVMConfig
    case getMachineConfig
    /// swiftvmm's extension: the device counters as JSON (Firecracker only flushes them
    /// to the metrics file).
    case getMetrics
    case putMachineConfig(FirecrackerAPI.MachineConfig)
    case patchMachineConfig(FirecrackerAPI.MachineConfigUpdate)
    case putBootSource(FirecrackerAPI.BootSource)
    case putDrive(FirecrackerAPI.Drive)
    case patchDrive(FirecrackerAPI.DriveUpdate)
    case putEntropy(FirecrackerAPI.Entropy)
    case action(FirecrackerAPI.ActionType)
    case patchVM(FirecrackerAPI.VMStateChange)
    case putLogger(FirecrackerAPI.Logger)
    case putMetrics(FirecrackerAPI.Metrics)
    case putNetworkInterface(FirecrackerAPI.NetworkInterface)
    case patchNetworkInterface(FirecrackerAPI.NetworkInterfaceUpdate)
    case putVsock(FirecrackerAPI.Vsock)
    case createSnapshot(FirecrackerAPI.SnapshotCreate)
    case loadSnapshot(FirecrackerAPI.SnapshotLoad)
    /// Cloud Hypervisor's live-migration calls (Firecracker has none).
    case sendMigration(FirecrackerAPI.SendMigration)
    case receiveMigration(FirecrackerAPI.ReceiveMigration)
    case getBalloon
    case putBalloon(FirecrackerAPI.Balloon)
    case patchBalloon(FirecrackerAPI.BalloonUpdate)
    case getBalloonStatistics
    case patchBalloonStatistics(FirecrackerAPI.BalloonStatsUpdate)
}

/// A routed request on its way from the API thread to the VMM thread, with its request
/// line ("PUT /actions") for the log.
public struct APICall: Sendable, Equatable {
    public var request: APIRequest
    public var line: String

    public init(_ request: APIRequest, line: String) {
        self.request = request
        self.line = line
    }
}
