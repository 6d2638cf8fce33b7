import Foundation
import TestSupport
import XCTest

/// Outside judges of the control API: a Firecracker client from PyPI that manages VMs
/// (firecracker-python) and schemathesis checking the server against docs/api.json. Both
/// come from `make pyenv` (part of `make test`).
final class ThirdPartyClientTests: XCTestCase {
    private func pyenvTool(_ name: String) throws -> String {
        let path = repositoryRoot().appendingPathComponent(".build/pyenv/bin/\(name)").path
        try requirePrerequisite(FileManager.default.isExecutableFile(atPath: path), "\(path) missing (make pyenv)")
        return path
    }

    private func requirePrerequisite(_ ok: Bool, _ what: String) throws {
        guard !ok else { return }
        throw missingPrerequisite(what)
    }

    /// The client's own code starts swiftvmm (as `firecracker`), configures it with the
    /// probe kernel and a disk, pauses, resumes, reads its state and deletes it.
    func testFirecrackerPythonManagesAVM() throws {
        try requireKVMDevice()
        try requirePrerequisite(getuid() == 0, "not root (the client needs /var/lib/firecracker and a tap; run in namespaces as root)")
        let python = try pyenvTool("python")
        let disk = try temporaryFile("rootfs.ext4", bytes: [UInt8](repeating: 0, count: 1 << 20))
        let script = repositoryRoot().appendingPathComponent("Tests/ThirdParty/run-firecracker-python.sh").path
        let r = try runProcess(URL(fileURLWithPath: "/bin/sh"),
                               [script, python, swiftvmmExecutable().path, try probeKernel(), disk], timeout: 180)
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        for step in ["network interface on tap_", "configured and started", "paused at count", "resumed, count", "removed", "CLIENT-OK"] {
            XCTAssertTrue(r.stdout.contains(step), "\(step):\n\(r.stdout)\n\(r.stderr)")
        }
    }

    /// Generated requests, valid and not, for every documented operation: no 5xx, no
    /// crash, every answer as documented.
    func testSchemathesisAgainstTheOpenAPIDocument() throws {
        try requireKVMDevice()
        let st = try pyenvTool("schemathesis")
        try requirePrerequisite(FileManager.default.isExecutableFile(atPath: "/usr/bin/socat"), "socat missing")
        let script = repositoryRoot().appendingPathComponent("Tests/ThirdParty/run-schemathesis.sh").path
        let r = try runProcess(URL(fileURLWithPath: "/bin/sh"), [script, st, swiftvmmExecutable().path, "45"], timeout: 240)
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("swiftvmm still serving after the run"), r.stdout)
        XCTAssertNotNil(r.stdout.range(of: #"\d+ generated, \d+ passed"#, options: .regularExpression), r.stdout)
    }
}
