import Foundation
import XCTest

/// Issue 12 in the nested bed: Debian's kernel on AMD-V KVM mounts ext4 from a qcow2
/// overlay over a qcow2 base, writes dd patterns, deletes a file and runs fstrim; then
/// `qemu-img check` is clean, the base is untouched and the files match the guest's
/// md5sums. The work is guests/nested/qcow2-overlay-check (one L1 boot, under the
/// nested bed's flock).
final class NestedQcow2Tests: XCTestCase {
    func testExt4OnAQcow2OverlayInTheNestedBed() throws {
        for tool in ["/usr/bin/qemu-system-x86_64", "/usr/bin/qemu-img", "/sbin/mkfs.ext4", "/sbin/debugfs"]
        where !FileManager.default.fileExists(atPath: tool) {
            if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("CI=true but \(tool) is missing") }
            throw XCTSkip("\(tool) is missing")
        }
        let root = repositoryRoot()
        guard FileManager.default.fileExists(atPath: root.appendingPathComponent("guests/out/linux/vmlinuz").path) else {
            XCTFail("guests/out/linux/vmlinuz is missing: run guests/linux/build (make test does)")
            return
        }
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("nested-qcow2-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: work) }
        let r = try runProcess(root.appendingPathComponent("guests/nested/qcow2-overlay-check"), [work],
                               timeout: 3600, currentDirectory: root)
        XCTAssertEqual(r.status, 0, String(r.stdout.suffix(3000)) + String(r.stderr.suffix(2000)))
        XCTAssertTrue(r.stdout.contains("qcow2-overlay-check: OK"), String(r.stdout.suffix(3000)))
        XCTAssertTrue(r.stdout.contains("No errors were found on the image."), String(r.stdout.suffix(3000)))
        XCTAssertNotNil(r.stdout.range(of: #"/mnt: \d+ bytes trimmed"#, options: .regularExpression), "fstrim reached the disk")
    }
}
