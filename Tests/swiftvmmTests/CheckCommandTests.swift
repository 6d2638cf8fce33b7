import Foundation
import TestSupport
import XCTest

final class CheckCommandTests: XCTestCase {
    func testCheckOnThisHost() throws {
        try requireKVMDevice()
        let r = try runProcess(swiftvmmExecutable(), ["check"])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.hasSuffix("KVM acceleration can be used\n"), r.stdout)
        XCTAssertTrue(r.stdout.contains("OK   vm: created a VM"))
        if FileManager.default.fileExists(atPath: "/sys/module/kvm_pvm") {
            XCTAssertTrue(r.stdout.contains("kvm_pvm"))
            XCTAssertTrue(r.stdout.contains("WARN guests:") && r.stdout.contains("CONFIG_PVM_GUEST"))
        }
    }

    func testJSON() throws {
        try requireKVMDevice()
        let r = try runProcess(swiftvmmExecutable(), ["check", "--json"])
        XCTAssertEqual(r.status, 0)
        let obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(obj["usable"] as? Bool, true)
        XCTAssertEqual(obj["apiVersion"] as? Int, 12)
        if FileManager.default.fileExists(atPath: "/sys/module/kvm_pvm") {
            XCTAssertEqual(obj["backend"] as? String, "pvm")
        }
        for key in ["cpuFlags", "device", "extensions", "maxVCPUs", "warnings", "failures"] {
            XCTAssertNotNil(obj[key], "missing \(key)")
        }
    }

    func testMissingDevice() throws {
        let r = try runProcess(swiftvmmExecutable(), ["check", "--kvm-device", "/nonexistent"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stdout.contains("FAIL device: /nonexistent does not exist"), r.stdout)
        XCTAssertTrue(r.stdout.contains("KVM acceleration can NOT be used"))
    }

    func testQuiet() throws {
        let r = try runProcess(swiftvmmExecutable(), ["check", "--quiet", "--kvm-device", "/nonexistent"])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stdout, "")
    }

    /// Runs as root (as CI does) and drops to nobody with setpriv.
    func testPermissionDeniedAsNobody() throws {
        guard getuid() == 0 else { throw missingPrerequisite("not root: cannot switch to nobody with setpriv") }
        try requireKVMDevice()
        // /dev/kvm here is root:root 0600 or root:kvm 0660; nobody is in neither.
        let r = try runProcess(URL(fileURLWithPath: "/usr/bin/setpriv"),
                               ["--reuid=nobody", "--regid=nogroup", "--clear-groups", swiftvmmExecutable().path, "check"])
        XCTAssertEqual(r.status, 1, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("permission denied"), r.stdout)
        XCTAssertTrue(r.stdout.contains("usermod -aG kvm nobody"), r.stdout)
    }

    func testUsageErrorExits2() throws {
        let r = try runProcess(swiftvmmExecutable(), ["check", "--no-such-option"])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.hasPrefix("swiftvmm: "), r.stderr)
    }
}
