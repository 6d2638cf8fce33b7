import KVMKit
import XCTest
@testable import VMMCore

final class FirecrackerConfigTests: XCTestCase {
    /// The shape of Firecracker's own tests/framework/vm_config.json, with every section.
    private let full = """
        {
          "boot-source": {"kernel_image_path": "vmlinux.bin", "boot_args": "console=ttyS0 reboot=k panic=1 pci=off", "initrd_path": null},
          "drives": [
            {"drive_id": "rootfs", "path_on_host": "bionic.rootfs.ext4", "is_root_device": true, "partuuid": null,
             "is_read_only": false, "cache_type": "Unsafe", "io_engine": "Sync", "rate_limiter": null},
            {"drive_id": "scratch", "path_on_host": "scratch.img", "is_root_device": false, "is_read_only": true}
          ],
          "machine-config": {"vcpu_count": 2, "mem_size_mib": 1024, "smt": false, "track_dirty_pages": false},
          "balloon": null,
          "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "06:00:ac:10:00:02"}],
          "vsock": null,
          "logger": {"log_path": "/tmp/fc.log", "level": "Info"},
          "metrics": {"metrics_path": "/tmp/fc.metrics"},
          "entropy": {}
        }
        """

    private func parse(_ text: String) -> Result<FirecrackerConfig, ConfigFileError> {
        FirecrackerAPI.parseConfigFile(Array(text.utf8))
    }

    private func fails(_ text: String, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        switch parse(text) {
        case .success(let c): XCTFail("accepted: \(c)", file: file, line: line)
        case .failure(let e): XCTAssertEqual("\(e)", message, file: file, line: line)
        }
    }

    func testFirecrackerFormatParsesAndRoundTrips() throws {
        let config = try parse(full).get()
        XCTAssertEqual(config.bootSource?.kernelImagePath, "vmlinux.bin")
        XCTAssertNil(config.bootSource?.initrdPath)
        XCTAssertEqual(config.drives.map(\.driveID), ["rootfs", "scratch"])
        XCTAssertTrue(config.drives[0].isRootDevice)
        XCTAssertTrue(config.drives[1].isReadOnly)
        XCTAssertEqual(config.machineConfig, .init(vcpuCount: 2, memSizeMiB: 1024))
        XCTAssertEqual(config.networkInterfaces.first?.hostDevName, "tap0")
        XCTAssertEqual(config.logger?.level, .info)
        XCTAssertEqual(config.metrics?.metricsPath, "/tmp/fc.metrics")
        XCTAssertEqual(config.entropy, .init())
        XCTAssertNil(config.balloon)
        // GET /vm/config's document is itself a valid config file describing the same VM.
        let exported = config.json
        guard case .object(let o) = exported else { return XCTFail() }
        XCTAssertEqual(o.keys, ["balloon", "drives", "boot-source", "cpu-config", "logger", "machine-config", "metrics",
                                "mmds-config", "network-interfaces", "vsock", "entropy"])
        XCTAssertEqual(try parse(exported.encoded(pretty: true)).get(), config)
    }

    func testEmptyConfigIsValid() throws {
        XCTAssertEqual(try parse("{}").get(), FirecrackerConfig())
    }

    func testErrorsNameTheKeyPath() {
        fails(#"{"drives": [{"drive_id": "a", "path_on_host": "/a", "is_root_device": true}, {"drive_id": "b", "path_on_host": 5, "is_root_device": false}]}"#,
              "config file: drives[1].path_on_host: expected a string, got an integer")
        fails(#"{"machine-config": {"vcpu_count": 99, "mem_size_mib": 128}}"#,
              "config file: machine-config.vcpu_count: must be between 1 and 32, got 99")
        fails(#"{"boot-source": {"kernel_image_path": "/k", "boot_arg": "x"}}"#,
              "config file: boot-source.boot_arg: unknown field, expected one of: kernel_image_path, boot_args, initrd_path")
        fails(#"{"boot_source": {}}"#, "config file: boot_source: unknown field, expected one of: boot-source, drives, machine-config, entropy, logger, metrics, network-interfaces, vsock, balloon, cpu-config, mmds-config, pmem, memory-hotplug, serial")
        fails(#"{"mmds-config": {"network_interfaces": []}}"#, "config file: mmds-config: not supported by swiftvmm")
        fails(#"{"drives": {}}"#, "config file: drives: expected an array, got an object")
        fails(#"{"drives": [{"drive_id": "a", "path_on_host": "/a", "is_root_device": false}, {"drive_id": "a", "path_on_host": "/b", "is_root_device": false}]}"#,
              #"config file: drives[1].drive_id: duplicate id "a""#)
        fails(#"{"network-interfaces": [{"iface_id": "eth0", "host_dev_name": "tap0", "rx_rate_limiter": {"ops": {"size": "1", "refill_time": 1}}}]}"#,
              "config file: network-interfaces[0].rx_rate_limiter.ops.size: expected an integer, got a string")
        fails(#"{"drives": [}"#, "config file: invalid JSON at byte 12: expected a value")
        fails("", "config file: invalid JSON at byte 0: unexpected end of input, expected a value")
        fails("[]", "config file: expected an object, got an array")
    }
}
