import Glibc
import KVMKit
import VMMCore

/// A VM driven by the control API and/or a Firecracker `--config-file`: what
/// `swiftvmm --api-sock …` (Firecracker's command line) and `swiftvmm run --api-sock …`
/// run. The process lives until the VM stops (as Firecracker's does), or until a signal.
///
/// Threads, as Firecracker's: the API thread (the server's, filtered before its first
/// accept) only parses and routes; the main thread — the VMM thread — executes every
/// request it is handed through an `APIRequestChannel`, so the VM is built, and snapshots
/// loaded, here. vCPU and event-loop threads filter themselves before guest code runs;
/// the main thread installs its `control` filter as soon as the VM runs (or is paused
/// from a loaded snapshot) and serves post-boot requests under it.
struct ManagedRun {
    var apiSocket: String?
    var configFile: String?
    var id = "anonymous-instance"
    var logPath: String?
    var level: VMMLogger.Level?
    var showLevel = false
    var showLogOrigin = false
    var metricsPath: String?
    /// The configuration before the API or the config file changes it.
    var initial = VMConfiguration()
    /// Start without waiting for `InstanceStart` (a kernel was given on the command line).
    var startImmediately = false
    /// The seccomp filters (`--no-seccomp`, `--seccomp-filter`; built-in by default).
    var seccomp = SeccompPolicy.disabled

    func run() throws {
        Seccomp.processPolicy = seccomp
        let vm = try MicroVM(id: id, configuration: initial, kvm: {
            do { return try KVM() } catch { throw RuntimeFailure("\(error)") }
        })
        let logger = VMMLogger(instanceID: id)
        let controller = APIController(vm: vm, logger: logger)
        do {
            if let p = logPath {
                try controller.configureLogger(.init(logPath: p, level: level.flatMap { .init(rawValue: $0.name) },
                                                     showLevel: showLevel, showLogOrigin: showLogOrigin))
            }
            if let m = metricsPath { try controller.configureMetrics(path: m) }
        } catch {
            throw ValidationError("\(APIControllerFault(error))")
        }
        let channel: APIRequestChannel
        do { channel = try APIRequestChannel() } catch { throw RuntimeFailure("\(error)") }
        vm.onStop { channel.close() }
        var server: APIServer?
        if let path = apiSocket {
            let s = APIServer(path: path) { controller.route($0, execute: channel.call) }
            do { try s.start() } catch { throw ValidationError("\(error)") }
            server = s
            logger.log(.info, "API server listening on \(path)")
        }
        defer {
            server?.stop()
            server?.join()
        }
        if let file = configFile {
            let config: FirecrackerConfig
            switch FirecrackerAPI.parseConfigFile(try readConfigFile(file)) {
            case .success(let c): config = c
            case .failure(let e): throw ValidationError("\(file): \(e)")
            }
            do { try controller.apply(config) } catch { throw ValidationError("\(file): \(APIControllerFault(error))") }
            try vm.start()
        } else if startImmediately {
            try vm.start()
        }
        var filtered = false
        controller.serve(channel) {
            // Last, once the VM runs: the VM's threads exist and filter themselves.
            if !filtered, vm.state != .notStarted {
                Seccomp.installOnThreadStart(.control)
                filtered = true
            }
        }
        let reason = vm.waitForStop()
        vm.shutdown()
        controller.flushMetricsIfConfigured()
        logger.log(.info, "microVM stopped: \(reason)")
        reportHandOver(reason)
        try finish(reason)
    }

    private func readConfigFile(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ValidationError("--config-file \(path): \(errnoText(errno))") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw ValidationError("--config-file \(path): \(errnoText(errno))") }
            if n == 0 { return bytes }
            bytes += chunk[0..<n]
            if bytes.count > 1 << 20 { throw ValidationError("--config-file \(path): larger than 1 MiB") }
        }
    }
}

/// An API-side error as one line (APIError's message, or the error's own description).
func APIControllerFault(_ error: Error) -> String {
    (error as? APIError)?.message ?? "\(error)"
}
