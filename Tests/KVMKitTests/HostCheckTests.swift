@testable import KVMKit
import XCTest

final class HostCheckTests: XCTestCase {
    static let cpuinfoVMX = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vme de pse tsc msr pae vmx smx est\n\nprocessor\t: 1\nflags\t\t: fpu\n"
    static let cpuinfoSVM = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu vme de pse tsc msr pae svm npt hypervisor\n"
    static let cpuinfoNone = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vme de pse tsc msr pae hypervisor\n"

    /// A host whose /dev/kvm opened and answered everything.
    func workingFacts(cpuinfo: String, modules: Set<String>, nested: String? = nil) -> HostFacts {
        var f = HostFacts(cpuFlags: HostFacts.cpuFlags(fromCPUInfo: cpuinfo), modules: modules, nested: nested)
        f.device = .opened
        f.apiVersion = 12
        for e in HostCheck.extensions { f.extensions[e.name] = 1 }
        f.maxVCPUs = 1024
        f.recommendedVCPUs = 8
        f.vmCreateError = ""
        f.vcpuCreateError = ""
        return f
    }

    func testCPUFlagsParsing() {
        XCTAssertTrue(HostFacts.cpuFlags(fromCPUInfo: Self.cpuinfoVMX).contains("vmx"))
        XCTAssertFalse(HostFacts.cpuFlags(fromCPUInfo: Self.cpuinfoVMX).contains("hypervisor"))
        XCTAssertTrue(HostFacts.cpuFlags(fromCPUInfo: Self.cpuinfoSVM).contains("svm"))
        XCTAssertTrue(HostFacts.cpuFlags(fromCPUInfo: Self.cpuinfoSVM).contains("hypervisor"))
        XCTAssertEqual(HostFacts.cpuFlags(fromCPUInfo: "garbage\nno colon here\n"), [])
    }

    func testIntelHostIsUsable() {
        let r = HostCheck.evaluate(workingFacts(cpuinfo: Self.cpuinfoVMX, modules: ["kvm", "kvm_intel"], nested: "Y\n"))
        XCTAssertTrue(r.usable)
        XCTAssertEqual(r.backend, "intel")
        XCTAssertEqual(r.cpuVirtualization, "vmx")
        XCTAssertTrue(r.items.contains { $0.label == "backend" && $0.detail.contains("nested virtualization enabled") })
        XCTAssertTrue(r.warnings.isEmpty, "\(r.warnings)")
        XCTAssertEqual(r.verdict, "KVM acceleration can be used")
    }

    func testAMDHostIsUsable() {
        let r = HostCheck.evaluate(workingFacts(cpuinfo: Self.cpuinfoSVM, modules: ["kvm", "kvm_amd"], nested: "0"))
        XCTAssertTrue(r.usable)
        XCTAssertEqual(r.backend, "amd")
        XCTAssertEqual(r.cpuVirtualization, "svm")
        XCTAssertTrue(r.items.contains { $0.detail.contains("nested virtualization disabled") })
    }

    func testPVMHostIsUsableWithWarning() {
        let r = HostCheck.evaluate(workingFacts(cpuinfo: Self.cpuinfoNone, modules: ["kvm", "kvm_pvm"]))
        XCTAssertTrue(r.usable, "PVM gives a working KVM without vmx/svm; kvm-ok and kvmtool get this wrong")
        XCTAssertEqual(r.backend, "pvm")
        XCTAssertEqual(r.cpuVirtualization, "none")
        XCTAssertTrue(r.warnings.contains { $0.contains("CONFIG_PVM_GUEST") && $0.contains("stock distribution kernel") })
        XCTAssertTrue(r.failures.isEmpty)
    }

    func testNoModuleNoDevice() {
        var f = HostFacts(cpuFlags: HostFacts.cpuFlags(fromCPUInfo: Self.cpuinfoVMX), modules: [])
        f.device = .missing
        let r = HostCheck.evaluate(f)
        XCTAssertFalse(r.usable)
        XCTAssertEqual(r.backend, "none")
        XCTAssertTrue(r.verdict.hasPrefix("KVM acceleration can NOT be used"))
        XCTAssertTrue(r.failures.contains { $0.contains("does not exist") && $0.contains("modprobe") })
    }

    func testNoVirtualizationAtAll() {
        var f = HostFacts(cpuFlags: HostFacts.cpuFlags(fromCPUInfo: Self.cpuinfoNone), modules: [])
        f.device = .missing
        let r = HostCheck.evaluate(f)
        XCTAssertFalse(r.usable)
        XCTAssertTrue(r.failures.contains { $0.hasPrefix("cpu:") })
    }

    func testPermissionDeniedGivesTheFix() {
        var f = workingFacts(cpuinfo: Self.cpuinfoVMX, modules: ["kvm", "kvm_intel"])
        f.device = .permissionDenied
        f.userName = "alice"
        let r = HostCheck.evaluate(f)
        XCTAssertFalse(r.usable)
        let failure = r.failures.joined()
        XCTAssertTrue(failure.contains("permission denied"))
        XCTAssertTrue(failure.contains("usermod -aG kvm alice"))
        XCTAssertTrue(failure.contains("udev"))
    }

    func testNotACharacterDevice() {
        var f = workingFacts(cpuinfo: Self.cpuinfoVMX, modules: ["kvm", "kvm_intel"])
        f.device = .notCharacterDevice
        XCTAssertFalse(HostCheck.evaluate(f).usable)
    }

    func testMissingRequiredExtensionFails() {
        var f = workingFacts(cpuinfo: Self.cpuinfoSVM, modules: ["kvm", "kvm_amd"])
        f.extensions["irqfd"] = 0
        let r = HostCheck.evaluate(f)
        XCTAssertFalse(r.usable)
        XCTAssertTrue(r.failures.contains { $0.contains("irqfd missing") })
    }

    func testMissingOptionalExtensionWarns() {
        var f = workingFacts(cpuinfo: Self.cpuinfoSVM, modules: ["kvm", "kvm_amd"])
        f.extensions["split_irqchip"] = 0
        let r = HostCheck.evaluate(f)
        XCTAssertTrue(r.usable)
        XCTAssertTrue(r.warnings.contains { $0.contains("split_irqchip") })
    }

    func testWrongAPIVersionFails() {
        var f = workingFacts(cpuinfo: Self.cpuinfoVMX, modules: ["kvm", "kvm_intel"])
        f.apiVersion = 11
        XCTAssertFalse(HostCheck.evaluate(f).usable)
    }

    func testVMCreationFailureFails() {
        var f = workingFacts(cpuinfo: Self.cpuinfoVMX, modules: ["kvm", "kvm_intel"])
        f.vmCreateError = "KVM_CREATE_VM failed: Cannot allocate memory"
        let r = HostCheck.evaluate(f)
        XCTAssertFalse(r.usable)
        XCTAssertTrue(r.verdict.contains("Cannot allocate memory"))
    }

    func testJSONShape() throws {
        let r = HostCheck.evaluate(workingFacts(cpuinfo: Self.cpuinfoNone, modules: ["kvm", "kvm_pvm"]))
        let obj = try JSONSerialization.jsonObject(with: Data(r.json().utf8)) as? [String: Any]
        XCTAssertEqual(obj?["usable"] as? Bool, true)
        XCTAssertEqual(obj?["backend"] as? String, "pvm")
        XCTAssertEqual(obj?["apiVersion"] as? Int, 12)
        XCTAssertEqual((obj?["extensions"] as? [String: Bool])?["irqfd"], true)
        XCTAssertEqual((obj?["warnings"] as? [String])?.count, 2)
        XCTAssertEqual(obj?["maxVCPUs"] as? Int, 1024)
    }

    func testCollectorOnMissingDevice() {
        let f = HostFactsCollector.collect(devicePath: "/nonexistent/kvm")
        XCTAssertEqual(f.device, .missing)
        XCTAssertFalse(HostCheck.evaluate(f).usable)
    }

    func testCollectorOnRegularFile() {
        let f = HostFactsCollector.collect(devicePath: "/etc/hostname")
        XCTAssertEqual(f.device, .notCharacterDevice)
    }
}
