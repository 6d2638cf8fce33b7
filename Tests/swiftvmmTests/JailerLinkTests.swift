import Foundation
import XCTest

/// Invoked as `jailer` (Firecracker's jailer's name, which tools built for it run),
/// swiftvmm is `swiftvmm jail`. No root needed: bad input is refused before anything.
final class JailerLinkTests: XCTestCase {
    func jailerLink() throws -> URL {
        let dir = try temporaryFile("placeholder", bytes: [])
        let link = URL(fileURLWithPath: dir).deletingLastPathComponent().appendingPathComponent("jailer")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: swiftvmmExecutable())
        return link
    }

    func testJailerLinkParsesTheJailersFlags() throws {
        let jailer = try jailerLink()
        for args in [["--id", "bad id!", "--exec-file", "/bin/true", "--uid", "1", "--gid", "1"],
                     ["--id", "vm1", "--exec-file", "/bin/true", "--uid", "x", "--gid", "1"],
                     ["--no-such-flag"]] {
            let viaLink = try runProcess(jailer, args, timeout: 30)
            let viaSubcommand = try runProcess(swiftvmmExecutable(), ["jail"] + args, timeout: 30)
            XCTAssertEqual(viaLink.status, 2, viaLink.stderr)
            XCTAssertEqual(viaLink.stderr, viaSubcommand.stderr, "\(args)")
            XCTAssertEqual(viaLink.stderr.split(separator: "\n").count, 1, viaLink.stderr)
        }
        let help = try runProcess(jailer, ["--help"], timeout: 30)
        XCTAssertEqual(help.status, 0, help.stderr)
        XCTAssertEqual(help.stdout, try runProcess(swiftvmmExecutable(), ["jail", "--help"], timeout: 30).stdout)
        XCTAssertTrue(help.stdout.contains("--exec-file"), help.stdout)
    }
}
