import KVMKit
import XCTest
@testable import VMMCore

final class FirecrackerRouterTests: XCTestCase {
    typealias API = FirecrackerAPI

    private func route(_ method: HTTPMethod, _ path: String, _ body: String = "") -> Result<APIRequest, APIError> {
        API.route(method: method, path: path, body: Array(body.utf8))
    }

    private func ok(_ method: HTTPMethod, _ path: String, _ body: String = "",
                    file: StaticString = #filePath, line: UInt = #line) -> APIRequest? {
        switch route(method, path, body) {
        case .success(let r): return r
        case .failure(let e):
            XCTFail("\(method.rawValue) \(path) \(body): \(e.message)", file: file, line: line)
            return nil
        }
    }

    private func fails(_ method: HTTPMethod, _ path: String, _ body: String = "", _ message: String,
                       file: StaticString = #filePath, line: UInt = #line) {
        switch route(method, path, body) {
        case .success(let r): XCTFail("accepted \(method.rawValue) \(path) \(body) as \(r)", file: file, line: line)
        case .failure(let e):
            XCTAssertEqual(e.status, .badRequest, file: file, line: line)
            XCTAssertEqual(e.message, message, file: file, line: line)
            XCTAssertFalse(e.message.contains("\n"), "one line", file: file, line: line)
            XCTAssertEqual(String(decoding: e.response.body, as: UTF8.self), JSONValue.object(["fault_message": .string(message)]).encoded(),
                           file: file, line: line)
        }
    }

    private func bodyError(_ detail: String) -> String {
        "An error occurred when deserializing the json body of a request: \(detail)."
    }

    // MARK: each endpoint, good bodies

    func testGetEndpoints() {
        XCTAssertEqual(ok(.get, "/"), .getInstanceInfo)
        XCTAssertEqual(ok(.get, "/version"), .getVersion)
        XCTAssertEqual(ok(.get, "/vm/config"), .getVMConfig)
        XCTAssertEqual(ok(.get, "/machine-config"), .getMachineConfig)
        XCTAssertEqual(ok(.get, "/metrics"), .getMetrics)
        XCTAssertEqual(ok(.get, "/balloon"), .getBalloon)
        XCTAssertEqual(ok(.get, "/balloon/statistics"), .getBalloonStatistics)
        XCTAssertEqual(ok(.get, "/machine-config/"), .getMachineConfig, "a trailing slash is ignored")
    }

    func testMachineConfig() {
        XCTAssertEqual(ok(.put, "/machine-config", #"{"vcpu_count": 2, "mem_size_mib": 256}"#),
                       .putMachineConfig(.init(vcpuCount: 2, memSizeMiB: 256)))
        XCTAssertEqual(ok(.put, "/machine-config", #"{"vcpu_count":4,"mem_size_mib":512,"smt":true,"track_dirty_pages":true,"huge_pages":"2M","cpu_template":"None"}"#),
                       .putMachineConfig(.init(vcpuCount: 4, memSizeMiB: 512, smt: true, trackDirtyPages: true, hugePages: .twoMiB)))
        guard case .patchMachineConfig(let u)? = ok(.patch, "/machine-config", #"{"mem_size_mib": 1024}"#) else { return XCTFail() }
        XCTAssertEqual(u.memSizeMiB, 1024)
        XCTAssertNil(u.vcpuCount)
        XCTAssertEqual(try API.MachineConfig(vcpuCount: 2).applying(u), .init(vcpuCount: 2, memSizeMiB: 1024))
        guard case .patchMachineConfig(let smt)? = ok(.patch, "/machine-config", #"{"smt": true}"#) else { return XCTFail() }
        XCTAssertThrowsError(try API.MachineConfig(vcpuCount: 3).applying(smt)) { e in
            XCTAssertEqual("\(e)", "vcpu_count: must be 1 or an even number when smt is enabled, got 3")
        }

        fails(.put, "/machine-config", #"{"vcpu_count": 0, "mem_size_mib": 256}"#, bodyError("vcpu_count: must be between 1 and 32, got 0"))
        fails(.put, "/machine-config", #"{"vcpu_count": 33, "mem_size_mib": 256}"#, bodyError("vcpu_count: must be between 1 and 32, got 33"))
        fails(.put, "/machine-config", #"{"vcpu_count": -1, "mem_size_mib": 256}"#, bodyError("vcpu_count: must be between 1 and 32, got -1"))
        fails(.put, "/machine-config", #"{"vcpu_count": 1.5, "mem_size_mib": 256}"#, bodyError("vcpu_count: expected an integer, got a number"))
        fails(.put, "/machine-config", #"{"vcpu_count": "2", "mem_size_mib": 256}"#, bodyError("vcpu_count: expected an integer, got a string"))
        fails(.put, "/machine-config", #"{"vcpu_count": 2}"#, bodyError("mem_size_mib: missing required field"))
        fails(.put, "/machine-config", #"{"vcpu_count": 2, "mem_size_mib": null}"#, bodyError("mem_size_mib: missing required field"))
        fails(.put, "/machine-config", #"{"vcpu_count": 2, "mem_size_mib": 0}"#, bodyError("mem_size_mib: must be between 1 and 1048576, got 0"))
        fails(.put, "/machine-config", #"{"vcpu_count": 2, "mem_size_mib": 18446744073709551615}"#,
              bodyError("mem_size_mib: must be between 1 and 1048576, got 18446744073709551615"))
        fails(.put, "/machine-config", #"{"vcpu_count": 3, "mem_size_mib": 256, "smt": true}"#,
              bodyError("vcpu_count: must be 1 or an even number when smt is enabled, got 3"))
        fails(.put, "/machine-config", #"{"vcpu_count": 2, "mem_size_mib": 255, "huge_pages": "2M"}"#,
              bodyError("mem_size_mib: must be a multiple of 2 with 2M huge pages, got 255"))
        fails(.put, "/machine-config", #"{"vcpu_count": 2, "mem_size_mib": 256, "huge_pages": "1G"}"#,
              bodyError(#"huge_pages: expected one of "None", "2M", got "1G""#))
        fails(.put, "/machine-config", #"{"vcpu_count": 2, "mem_size_mib": 256, "cpu_template": "T2"}"#,
              bodyError(#"cpu_template: CPU templates are not supported (only "None"), got "T2""#))
        fails(.put, "/machine-config", #"{"vcpu_count": 2, "mem_size_mib": 256, "smt": "yes"}"#, bodyError("smt: expected a boolean, got a string"))
        fails(.put, "/machine-config", #"{"vcpu_count": 2, "mem_size_mib": 256, "vcpus": 2}"#,
              bodyError("vcpus: unknown field, expected one of: vcpu_count, mem_size_mib, smt, track_dirty_pages, huge_pages, cpu_template"))
        fails(.patch, "/machine-config", #"{"vcpu_count": 64}"#, bodyError("vcpu_count: must be between 1 and 32, got 64"))
        fails(.put, "/machine-config", #"[1, 2]"#, bodyError("expected an object, got an array"))
    }

    func testBootSource() {
        XCTAssertEqual(ok(.put, "/boot-source", #"{"kernel_image_path": "/k", "boot_args": "console=ttyS0", "initrd_path": "/i"}"#),
                       .putBootSource(.init(kernelImagePath: "/k", bootArgs: "console=ttyS0", initrdPath: "/i")))
        XCTAssertEqual(ok(.put, "/boot-source", #"{"kernel_image_path": "/k"}"#), .putBootSource(.init(kernelImagePath: "/k")))
        fails(.put, "/boot-source", #"{"boot_args": "x"}"#, bodyError("kernel_image_path: missing required field"))
        fails(.put, "/boot-source", #"{"kernel_image_path": ""}"#, bodyError("kernel_image_path: must not be empty"))
        fails(.put, "/boot-source", #"{"kernel_image_path": 7}"#, bodyError("kernel_image_path: expected a string, got an integer"))
    }

    func testDrives() {
        let full = #"{"drive_id": "rootfs", "path_on_host": "/img", "is_root_device": true, "is_read_only": true, "partuuid": "p1", "cache_type": "Writeback", "io_engine": "Async", "rate_limiter": {"bandwidth": {"size": 1000, "one_time_burst": 10, "refill_time": 100}, "ops": {"size": 5, "refill_time": 1000}}}"#
        XCTAssertEqual(ok(.put, "/drives/rootfs", full), .putDrive(.init(
            driveID: "rootfs", pathOnHost: "/img", isRootDevice: true, isReadOnly: true, partUUID: "p1", cacheType: .writeback,
            ioEngine: .async, rateLimiter: .init(bandwidth: .init(size: 1000, oneTimeBurst: 10, refillTimeMillis: 100),
                                                 ops: .init(size: 5, refillTimeMillis: 1000)))))
        XCTAssertEqual(ok(.put, "/drives/d1", #"{"drive_id": "d1", "path_on_host": "/img", "is_root_device": false}"#),
                       .putDrive(.init(driveID: "d1", pathOnHost: "/img")))
        guard case .patchDrive(let u)? = ok(.patch, "/drives/d1", #"{"drive_id": "d1", "path_on_host": "/new"}"#) else { return XCTFail() }
        XCTAssertEqual(u.pathOnHost, "/new")

        fails(.put, "/drives/a", #"{"drive_id": "b", "path_on_host": "/img", "is_root_device": false}"#,
              "The id from the path does not match the id from the body!")
        fails(.patch, "/drives/a", #"{"drive_id": "b"}"#, "The id from the path does not match the id from the body!")
        fails(.put, "/drives/a-b", #"{"drive_id": "a-b", "path_on_host": "/img", "is_root_device": false}"#,
              "API Resource IDs can only contain alphanumeric characters and underscores.")
        fails(.put, "/drives/a", #"{"drive_id": "a", "path_on_host": "/img"}"#, bodyError("is_root_device: missing required field"))
        fails(.put, "/drives/a", #"{"drive_id": "a", "is_root_device": false}"#, bodyError("path_on_host: missing required field"))
        fails(.put, "/drives/a", #"{"drive_id": "a", "path_on_host": "/i", "is_root_device": false, "cache_type": "None"}"#,
              bodyError(#"cache_type: expected one of "Unsafe", "Writeback", got "None""#))
        fails(.put, "/drives/a", #"{"drive_id": "a", "path_on_host": "/i", "is_root_device": false, "io_engine": "sync"}"#,
              bodyError(#"io_engine: expected one of "Sync", "Async", got "sync""#))
        fails(.put, "/drives/a", #"{"drive_id": "a", "path_on_host": "/i", "is_root_device": false, "rate_limiter": {"ops": {"size": 100}}}"#,
              bodyError("rate_limiter.ops.refill_time: missing required field"))
        fails(.put, "/drives/a", #"{"drive_id": "a", "path_on_host": "/i", "is_root_device": false, "rate_limiter": {"bandwidth": {"size": -5, "refill_time": 1}}}"#,
              bodyError("rate_limiter.bandwidth.size: must be at least 0, got -5"))
        fails(.put, "/drives/a", #"{"drive_id": "a", "path_on_host": "/i", "is_root_device": false, "rate_limiter": {"bandwith": {}}}"#,
              bodyError("rate_limiter.bandwith: unknown field, expected one of: bandwidth, ops"))
        fails(.put, "/drives/a", #"{"drive_id": "a", "socket": "/vhost.sock", "is_root_device": false}"#,
              bodyError("socket: vhost-user drives are not supported"))
        fails(.patch, "/drives/a", #"{"drive_id": "a", "is_read_only": true}"#,
              bodyError("is_read_only: unknown field, expected one of: drive_id, path_on_host, rate_limiter"))
    }

    func testActionsVMEntropyLoggerMetrics() {
        XCTAssertEqual(ok(.put, "/actions", #"{"action_type": "InstanceStart"}"#), .action(.instanceStart))
        XCTAssertEqual(ok(.put, "/actions", #"{"action_type": "SendCtrlAltDel"}"#), .action(.sendCtrlAltDel))
        XCTAssertEqual(ok(.put, "/actions", #"{"action_type": "FlushMetrics"}"#), .action(.flushMetrics))
        fails(.put, "/actions", #"{"action_type": "Reboot"}"#,
              bodyError(#"action_type: expected one of "InstanceStart", "SendCtrlAltDel", "FlushMetrics", got "Reboot""#))
        fails(.put, "/actions", "{}", bodyError("action_type: missing required field"))

        XCTAssertEqual(ok(.patch, "/vm", #"{"state": "Paused"}"#), .patchVM(.paused))
        XCTAssertEqual(ok(.patch, "/vm", #"{"state": "Resumed"}"#), .patchVM(.resumed))
        fails(.patch, "/vm", #"{"state": "paused"}"#, bodyError(#"state: expected one of "Paused", "Resumed", got "paused""#))
        fails(.put, "/vm", #"{"state": "Paused"}"#, "Invalid request method and/or path: PUT /vm.")

        XCTAssertEqual(ok(.put, "/entropy", "{}"), .putEntropy(.init()))
        XCTAssertEqual(ok(.put, "/entropy", #"{"rate_limiter": {"bandwidth": {"size": 1, "refill_time": 2}}}"#),
                       .putEntropy(.init(rateLimiter: .init(bandwidth: .init(size: 1, refillTimeMillis: 2)))))

        XCTAssertEqual(ok(.put, "/logger", #"{"log_path": "/l", "level": "debug", "show_level": true, "show_log_origin": false, "module": "api"}"#),
                       .putLogger(.init(logPath: "/l", level: .debug, showLevel: true, showLogOrigin: false, module: "api")))
        fails(.put, "/logger", #"{"level": "Loud"}"#,
              bodyError(#"level: expected one of "Error", "Warning", "Info", "Debug", "Trace", "Off", got "Loud""#))
        XCTAssertEqual(ok(.put, "/metrics", #"{"metrics_path": "/m"}"#), .putMetrics(.init(metricsPath: "/m")))
        fails(.put, "/metrics", "{}", bodyError("metrics_path: missing required field"))
    }

    func testNetworkVsockSnapshotBalloon() {
        guard case .putNetworkInterface(let n)? = ok(.put, "/network-interfaces/eth0",
            #"{"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "06:00:AC:10:00:02", "mtu": 1500, "rx_rate_limiter": {"ops": {"size": 1, "refill_time": 1}}}"#)
        else { return XCTFail() }
        XCTAssertEqual(n.hostDevName, "tap0")
        XCTAssertEqual(n.mtu, 1500)
        XCTAssertNotNil(n.rxRateLimiter)
        fails(.put, "/network-interfaces/eth0", #"{"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "06:00:AC:10:00"}"#,
              bodyError(#"guest_mac: expected a MAC address like "06:00:ac:10:00:02", got "06:00:AC:10:00""#))
        fails(.put, "/network-interfaces/eth0", #"{"iface_id": "eth0", "host_dev_name": "tap0", "mtu": 9}"#,
              bodyError("mtu: must be between 68 and 65535, got 9"))
        guard case .patchNetworkInterface(let nu)? = ok(.patch, "/network-interfaces/eth0", #"{"iface_id": "eth0"}"#) else { return XCTFail() }
        XCTAssertEqual(nu.ifaceID, "eth0")

        guard case .putVsock(let v)? = ok(.put, "/vsock", #"{"guest_cid": 3, "uds_path": "/v.sock", "vsock_id": "vsock0"}"#) else { return XCTFail() }
        XCTAssertEqual(v.guestCID, 3)
        fails(.put, "/vsock", #"{"guest_cid": 2, "uds_path": "/v.sock"}"#, bodyError("guest_cid: must be between 3 and 4294967295, got 2"))

        guard case .createSnapshot(let c)? = ok(.put, "/snapshot/create", #"{"snapshot_path": "/s", "mem_file_path": "/m", "snapshot_type": "Diff"}"#)
        else { return XCTFail() }
        XCTAssertEqual(c.snapshotType, .diff)
        guard case .loadSnapshot(let l)? = ok(.put, "/snapshot/load", #"{"snapshot_path": "/s", "mem_backend": {"backend_type": "Uffd", "backend_path": "/u.sock"}, "resume_vm": true}"#)
        else { return XCTFail() }
        XCTAssertEqual(l.memBackend.backendType, .uffd)
        XCTAssertTrue(l.resumeVM)
        guard case .loadSnapshot(let old)? = ok(.put, "/snapshot/load", #"{"snapshot_path": "/s", "mem_file_path": "/m", "enable_diff_snapshots": true}"#)
        else { return XCTFail() }
        XCTAssertEqual(old.memBackend.backendType, .file)
        XCTAssertEqual(old.memBackend.backendPath, "/m")
        XCTAssertTrue(old.trackDirtyPages)
        fails(.put, "/snapshot/load", #"{"snapshot_path": "/s"}"#, bodyError("mem_backend: missing required field (or the deprecated mem_file_path)"))
        fails(.put, "/snapshot/load", #"{"snapshot_path": "/s", "mem_file_path": "/m", "mem_backend": {"backend_type": "File", "backend_path": "/m"}}"#,
              bodyError("mem_file_path: not allowed together with mem_backend"))
        fails(.put, "/snapshot/other", "{}", "Invalid request method and/or path: PUT /snapshot/other.")

        guard case .putBalloon(let b)? = ok(.put, "/balloon", #"{"amount_mib": 64, "deflate_on_oom": true, "stats_polling_interval_s": 1}"#)
        else { return XCTFail() }
        XCTAssertEqual(b.amountMiB, 64)
        guard case .patchBalloon(let bu)? = ok(.patch, "/balloon", #"{"amount_mib": 32}"#) else { return XCTFail() }
        XCTAssertEqual(bu.amountMiB, 32)
        guard case .patchBalloonStatistics(let bs)? = ok(.patch, "/balloon/statistics", #"{"stats_polling_interval_s": 5}"#) else { return XCTFail() }
        XCTAssertEqual(bs.statsPollingIntervalSeconds, 5)
        fails(.put, "/balloon", #"{"amount_mib": 64}"#, bodyError("deflate_on_oom: missing required field"))
    }

    /// Cloud Hypervisor's migration calls: its field names; a bad URL is refused by the
    /// router, before anything runs.
    func testMigrationEndpoints() {
        guard case .sendMigration(let s)? = ok(.put, "/vm.send-migration", #"{"destination_url": "tcp:10.0.0.2:4444", "downtime_ms": 300, "local": false}"#)
        else { return XCTFail() }
        XCTAssertEqual(s.destination, .tcp(host: "10.0.0.2", port: 4444))
        XCTAssertEqual(s.downtimeMillis, 300)
        guard case .sendMigration(let u)? = ok(.put, "/vm.send-migration", #"{"destination_url": "unix:/run/m.sock"}"#) else { return XCTFail() }
        XCTAssertEqual(u.destination, .unix("/run/m.sock"))
        XCTAssertNil(u.downtimeMillis)
        guard case .receiveMigration(let r)? = ok(.put, "/vm.receive-migration", #"{"receiver_url": "unix:/run/m.sock"}"#) else { return XCTFail() }
        XCTAssertEqual(r.receiver, .unix("/run/m.sock"))

        let use = "use unix:PATH (at most 107 bytes) or tcp:HOST:PORT"
        fails(.put, "/vm.send-migration", "{}", bodyError("destination_url: missing required field"))
        fails(.put, "/vm.send-migration", #"{"destination_url": "ftp://h/x"}"#, bodyError(#"destination_url: "ftp://h/x": \#(use)"#))
        fails(.put, "/vm.send-migration", #"{"destination_url": "tcp:h"}"#, bodyError(#"destination_url: "tcp:h": \#(use)"#))
        fails(.put, "/vm.send-migration", #"{"destination_url": "tcp:h:70000"}"#, bodyError(#"destination_url: "tcp:h:70000": \#(use)"#))
        fails(.put, "/vm.send-migration", #"{"destination_url": "unix:"}"#, bodyError(#"destination_url: "unix:": \#(use)"#))
        let long = "unix:/" + String(repeating: "p", count: 107)
        fails(.put, "/vm.send-migration", #"{"destination_url": "\#(long)"}"#, bodyError(#"destination_url: "\#(long.prefix(64))…": \#(use)"#))
        fails(.put, "/vm.send-migration", #"{"destination_url": 4}"#, bodyError("destination_url: expected a string, got an integer"))
        fails(.put, "/vm.send-migration", #"{"destination_url": "unix:/m", "downtime_ms": 0}"#, bodyError("downtime_ms: must be between 1 and 60000, got 0"))
        fails(.put, "/vm.send-migration", #"{"destination_url": "unix:/m", "local": true}"#,
              bodyError("local: local migration (memory handed over by file descriptor) is not supported; omit it or use false"))
        fails(.put, "/vm.send-migration", #"{"receiver_url": "unix:/m"}"#,
              bodyError("receiver_url: unknown field, expected one of: destination_url, downtime_ms, local"))
        fails(.put, "/vm.receive-migration", #"{"destination_url": "unix:/m"}"#,
              bodyError("destination_url: unknown field, expected one of: receiver_url"))
        fails(.put, "/vm.receive-migration", "{}", bodyError("receiver_url: missing required field"))
        fails(.get, "/vm.send-migration", "", "Invalid request method and/or path: GET /vm.send-migration.")
        fails(.put, "/vm.send-migration", "", "Empty PUT request.")
    }

    // MARK: paths, methods, bodies

    func testPathsMethodsAndBodyPresence() {
        fails(.get, "/nope", "", "Invalid request method and/or path: GET /nope.")
        fails(.get, "/drives/a", "", "Invalid request method and/or path: GET /drives/a.")
        fails(.patch, "/boot-source", "{}", "Invalid request method and/or path: PATCH /boot-source.")
        fails(.put, "/", "{}", "Invalid request method and/or path: PUT /.")
        fails(.put, "/drives/a/b", "{}", "Invalid request method and/or path: PUT /drives/a/b.")
        fails(.put, "/mmds", "{}", "PUT /mmds is not supported by swiftvmm.")
        fails(.put, "/cpu-config", "{}", "PUT /cpu-config is not supported by swiftvmm.")
        fails(.get, "/", "{}", "GET request cannot have a body.")
        fails(.put, "/boot-source", "", "Empty PUT request.")
        fails(.patch, "/vm", "", "Empty PATCH request.")
        fails(.put, "/boot-source", #"{"kernel_image_path": "/k",}"#, bodyError("invalid JSON at byte 27: expected a string key"))
        fails(.put, "/boot-source", #"{"kernel_image_path": "/k", "kernel_image_path": "/j"}"#,
              bodyError(#"invalid JSON at byte 28: duplicate key "kernel_image_path""#))
        fails(.put, "/actions", String(repeating: "[", count: 40), bodyError("invalid JSON at byte 16: nesting deeper than 16 levels"))
        let long = #"{"kernel_image_path": ""# + String(repeating: "k", count: 52000) + #""}"#
        fails(.put, "/boot-source", long, bodyError("invalid JSON at byte 51200: document is larger than 51200 bytes"))
    }

    /// Every route in the table is reachable and has a decoder (no 500 "no handler").
    func testEveryRouteInTheTableIsServed() {
        let bodies: [String: String] = [
            "/vm": #"{"state": "Paused"}"#, "/actions": #"{"action_type": "FlushMetrics"}"#,
            "/machine-config": #"{"vcpu_count": 1, "mem_size_mib": 128}"#, "/boot-source": #"{"kernel_image_path": "/k"}"#,
            "/drives/{drive_id}": #"{"drive_id": "x", "path_on_host": "/p", "is_root_device": false}"#, "/entropy": "{}",
            "/logger": "{}", "/metrics": #"{"metrics_path": "/m"}"#,
            "/network-interfaces/{iface_id}": #"{"iface_id": "x", "host_dev_name": "t"}"#,
            "/vsock": #"{"guest_cid": 3, "uds_path": "/v"}"#, "/snapshot/create": #"{"snapshot_path": "/s", "mem_file_path": "/m"}"#,
            "/snapshot/load": #"{"snapshot_path": "/s", "mem_file_path": "/m"}"#,
            "/vm.send-migration": #"{"destination_url": "unix:/m"}"#, "/vm.receive-migration": #"{"receiver_url": "unix:/m"}"#,
            "/balloon": #"{"amount_mib": 1, "deflate_on_oom": false}"#, "/balloon/statistics": #"{"stats_polling_interval_s": 1}"#,
        ]
        for r in API.routes {
            let path = r.pattern.replacingOccurrences(of: "{drive_id}", with: "x").replacingOccurrences(of: "{iface_id}", with: "x")
            let body = r.method == .get ? "" : bodies[r.pattern] ?? "?"
            if case .failure(let e) = route(r.method, path, body) {
                // PATCH bodies are subsets: the PUT body may carry fields PATCH does not take.
                XCTAssertNotEqual(e.status, .internalServerError, "\(r)")
                XCTAssertFalse(e.message.hasPrefix("Invalid request method"), "\(r): \(e.message)")
            }
        }
        XCTAssertEqual(Set(API.routes.map(\.description)).count, API.routes.count, "no route listed twice")
    }

    // MARK: encoders

    func testResponseEncoders() {
        XCTAssertEqual(API.instanceInfo(id: "vm1", state: .notStarted, vmmVersion: "0.1.0").encoded(),
                       #"{"id":"vm1","state":"Not started","vmm_version":"0.1.0","app_name":"swiftvmm"}"#)
        XCTAssertEqual(API.version("1.7.0").encoded(), #"{"firecracker_version":"1.7.0"}"#)
        XCTAssertEqual(API.MachineConfig(vcpuCount: 2, memSizeMiB: 256).json.encoded(),
                       #"{"vcpu_count":2,"mem_size_mib":256,"smt":false,"track_dirty_pages":false,"huge_pages":"None"}"#)
        XCTAssertEqual(APIError(.badRequest, "x").response.status, .badRequest)
        let report = MigrationReport(rounds: 3, bytesSent: 4096, pagesInFinalRound: 2, totalMilliseconds: 12.5, downtimeMilliseconds: 1.25)
        XCTAssertEqual(report.json.encoded(),
                       #"{"rounds":3,"bytes_sent":4096,"pages_in_final_round":2,"total_ms":12.5,"downtime_ms":1.25}"#)
    }
}

extension FirecrackerRouterTests {
    /// Found by APIRouterFuzz: a client's key with a newline made a two-line fault message.
    func testFaultMessagesStayOneLineWhateverTheKeys() {
        fails(.patch, "/vm", #"{"a\nb": 1}"#, bodyError(#""a\nb": unknown field, expected one of: state"#))
        fails(.patch, "/vm", #"{"state": "Paused", "state": "Resumed"}"#, bodyError(#"invalid JSON at byte 20: duplicate key "state""#))
        fails(.patch, "/vm", #"{"x\ny": 1, "x\ny": 2}"#, bodyError(#"invalid JSON at byte 12: duplicate key "x\ny""#))
        fails(.patch, "/vm", "{\"a\\\n\": 1}", bodyError("invalid JSON at byte 4: invalid escape '\\0xa'"))
        let long = String(repeating: "k", count: 100)
        fails(.patch, "/vm", "{\"\(long)\": 1}", bodyError("\"\(String(repeating: "k", count: 64))…\": unknown field, expected one of: state"))
    }
}
