@testable import swiftvmm
import XCTest

/// The hand-written command-line parser and its help text (no swift-argument-parser).
final class CommandLineTests: XCTestCase {
    func parseRun(_ args: [String]) throws -> RunOptions { try RunOptions.command.parse(args, into: RunOptions()) }

    func usageError(_ args: [String], file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            try SwiftVMM.main(args)
            XCTFail("\(args) was accepted", file: file, line: line)
        } catch let e as ValidationError {
            return e.description
        } catch {
            XCTFail("\(args): \(error)", file: file, line: line)
        }
        return ""
    }

    func testEveryRunOptionIsStored() throws {
        let o = try parseRun(["--kernel", "k", "--initrd=i", "--cmdline", "console=ttyS0 quiet", "--memory", "256", "--cpus=2",
                              "--serial", "socket:/tmp/x", "--serial-mmio", "0xd1000000", "--elf-entry", "pvh",
                              "--disk", "a.img,ro", "--disk=b.img,id=beta", "--rng", "--console", "hvc",
                              "--no-virtio-cmdline", "--timings"])
        XCTAssertEqual(o.kernel, "k")
        XCTAssertEqual(o.initrd, "i")
        XCTAssertEqual(o.cmdline, "console=ttyS0 quiet")
        XCTAssertEqual(o.memory, 256)
        XCTAssertEqual(o.cpus, 2)
        XCTAssertEqual(o.serial, "socket:/tmp/x")
        XCTAssertEqual(o.serialMMIO, "0xd1000000")
        XCTAssertEqual(o.elfEntry, "pvh")
        XCTAssertEqual(o.disks, ["a.img,ro", "b.img,id=beta"])
        XCTAssertTrue(o.rng)
        XCTAssertEqual(o.console, "hvc")
        XCTAssertTrue(o.noVirtioCommandLine)
        XCTAssertTrue(o.timings)
    }

    func testDefaults() throws {
        let o = try parseRun([])
        XCTAssertNil(o.kernel)
        XCTAssertEqual(o.memory, 512)
        XCTAssertEqual(o.cpus, 1)
        XCTAssertEqual(o.serial, "stdio")
        XCTAssertEqual(o.console, "serial")
        XCTAssertEqual(o.disks, [])
        XCTAssertFalse(o.rng || o.timings || o.noVirtioCommandLine)
    }

    func testAValueStartingWithADashNeedsTheEqualsForm() throws {
        XCTAssertEqual(try parseRun(["--cmdline=-v quiet"]).cmdline, "-v quiet")
        XCTAssertEqual(try parseRun(["--cpus=-1"]).cpus, -1)  // refused later, by the machine configuration
        XCTAssertTrue(usageError(["run", "--kernel", "--rng"]).contains("--kernel needs a value PATH"))
    }

    func testUsageErrorsNameTheProblem() {
        XCTAssertEqual(usageError([]), "missing subcommand: run, attach, check, snapshot, jail, info, pause, resume, stop, metrics, config, migrate or api (swiftvmm --help)")
        XCTAssertEqual(usageError(["boot"]), "unknown subcommand 'boot': use run, attach, check, snapshot, jail, info, pause, resume, stop, metrics, config, migrate or api (swiftvmm --help)")
        XCTAssertEqual(usageError(["run", "--frobnicate", "x"]), "run: unknown option '--frobnicate' (swiftvmm run --help)")
        XCTAssertEqual(usageError(["run", "-x"]), "run: unknown option '-x' (swiftvmm run --help)")
        XCTAssertEqual(usageError(["run", "--memory", "lots"]), "--memory lots: not a number")
        XCTAssertEqual(usageError(["run", "--memory", "1", "--memory", "2"]), "--memory given more than once")
        XCTAssertEqual(usageError(["run", "--rng=yes"]), "--rng takes no value")
        XCTAssertEqual(usageError(["run", "positional"]), "run: unexpected argument 'positional' (swiftvmm run --help)")
        XCTAssertEqual(usageError(["attach"]), "attach: missing PATH (swiftvmm attach --help)")
        XCTAssertEqual(usageError(["attach", "a", "b"]), "attach: unexpected argument 'b' (swiftvmm attach --help)")
        XCTAssertEqual(usageError(["check", "--json=1"]), "--json takes no value")
        XCTAssertEqual(usageError(["info"]), "info: --api-sock PATH is required (swiftvmm info --help)")
        XCTAssertEqual(usageError(["api", "--api-sock", "s"]), "api: missing METHOD (swiftvmm api --help)")
        XCTAssertEqual(usageError(["api", "--api-sock", "s", "DELETE", "/"]), "DELETE: use GET, PUT or PATCH")
    }

    /// `swiftvmm api PUT /vm.receive-migration …` answers once the VM has arrived, which
    /// can be minutes later: the clients wait an hour for the long requests, whatever
    /// subcommand sends them, and 30 s for the rest.
    func testLongRequestsWaitForTheirAnswer() {
        for path in ["/vm.send-migration", "/vm.receive-migration", "/snapshot/create", "/snapshot/load"] {
            XCTAssertEqual(responseTimeoutSeconds(method: "PUT", path: path), 3600, path)
        }
        for (method, path) in [("GET", "/"), ("PATCH", "/vm"), ("PUT", "/actions"), ("GET", "/vm.receive-migration")] {
            XCTAssertEqual(responseTimeoutSeconds(method: method, path: path), 30, "\(method) \(path)")
        }
    }

    func testAVariadicLastArgumentTakesTheRest() throws {
        let spec = ClientCommand.all.first { $0.spec.name == "api" }!.spec
        let o = try spec.parse(["--api-sock", "s", "PUT", "/machine-config", "vcpu_count:=2", "mem_size_mib:=256"],
                               into: ClientCommand.Options())
        XCTAssertEqual(o.socket, "s")
        XCTAssertEqual([o.method, o.path], ["PUT", "/machine-config"])
        XCTAssertEqual(o.body, ["vcpu_count:=2", "mem_size_mib:=256"])
        XCTAssertEqual(try spec.parse(["GET", "/"], into: ClientCommand.Options()).body, [])
        XCTAssertTrue(try helpText(["api", "--help"]).contains("USAGE: swiftvmm api [--api-sock PATH] METHOD PATH [BODY...]"))
    }

    func testPositionalsShortFlagsAndDoubleDash() throws {
        XCTAssertEqual(try AttachCommand.command.parse(["/tmp/s"], into: AttachCommand()).path, "/tmp/s")
        XCTAssertEqual(try AttachCommand.command.parse(["--", "-odd-name"], into: AttachCommand()).path, "-odd-name")
        let c = try CheckCommand.command.parse(["-q", "--kvm-device", "/dev/null"], into: CheckCommand())
        XCTAssertTrue(c.quiet)
        XCTAssertFalse(c.json)
        XCTAssertEqual(c.kvmDevice, "/dev/null")
    }

    func helpText(_ args: [String]) throws -> String {
        do {
            try SwiftVMM.main(args)
        } catch let h as HelpRequest {
            return h.text
        }
        XCTFail("\(args) gave no help")
        return ""
    }

    func testHelpListsEveryOptionAndSubcommand() throws {
        let top = try helpText(["--help"])
        for s in ["run", "attach", "check", "info", "pause", "resume", "stop", "metrics", "config", "api"] {
            XCTAssertTrue(top.contains("\n  \(s) "), top)
        }
        XCTAssertEqual(try helpText(["-h"]), top)
        XCTAssertEqual(try helpText(["help"]), top)
        let run = try helpText(["run", "--help"])
        XCTAssertEqual(try helpText(["help", "run"]), run)
        XCTAssertEqual(try helpText(["run", "--memory", "64", "-h"]), run)
        for o in RunOptions.command.options {
            XCTAssertTrue(run.contains("  --\(o.name)"), "--\(o.name) missing from help:\n\(run)")
        }
        XCTAssertTrue(run.contains("USAGE: swiftvmm run [--kernel PATH]"), run)
        XCTAssertTrue(run.contains("[--disk PATH[,ro][,id=NAME][,format=raw|qcow2]]..."), run)
        XCTAssertTrue(run.contains("Exit status: 0 when the guest powers off"), run)
        XCTAssertTrue(try helpText(["check", "--help"]).contains("-q, --quiet"))
        XCTAssertTrue(try helpText(["attach", "--help"]).contains("USAGE: swiftvmm attach PATH"))
        for line in (top + run).split(separator: "\n") {
            XCTAssertLessThanOrEqual(line.count, helpWidth, "too wide: \(line)")
        }
    }
}
