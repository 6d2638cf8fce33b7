import CKVM
import Glibc
import KVMKit
import XCTest

/// The built-in filters, run for real in a forked child (a filter cannot be removed from
/// a thread, and a forbidden call ends the process).
final class SeccompFilterTests: XCTestCase {
    struct ChildResult {
        let status: Int32   // exit status, or 128 + signal
        let stderr: String
    }

    /// Fork; in the child install `kind`'s built-in filter, run `body`, exit 0.
    func inFilteredChild(_ kind: ThreadKind, _ body: @escaping () -> Void) throws -> ChildResult {
        let policy = try SeccompPolicy.builtIn()   // compiled before fork: the child only loads it
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        let pid = fork()
        if pid == 0 {
            dup2(fds[1], 2)
            do { try Seccomp.install(for: kind, policy: policy) } catch { _exit(99) }
            body()
            _exit(0)
        }
        close(fds[1])
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(fds[0], &buf, buf.count)
            if n <= 0 { break }
            out += buf[..<n]
        }
        close(fds[0])
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        let exited = status & 0x7f == 0
        return ChildResult(status: exited ? (status >> 8) & 0xff : 128 + (status & 0x7f), stderr: String(decoding: out, as: UTF8.self))
    }

    func testEveryKindRefusesOpeningAFileWithTheLogLine() throws {
        // `control` opens files for post-boot requests (snapshots, drive updates).
        for kind in ThreadKind.allCases where kind != .control {
            let r = try inFilteredChild(kind) { _ = open("/etc/hostname", O_RDONLY) }
            XCTAssertEqual(r.status, Seccomp.forbiddenCallExitStatus, "\(kind): \(r.stderr)")
            XCTAssertEqual(r.stderr, "swiftvmm: seccomp: \(kind.rawValue) thread made a forbidden system call: openat (257)\n")
        }
    }

    func testEveryKindRefusesExecWithTheLogLine() throws {
        for kind in ThreadKind.allCases {
            let r = try inFilteredChild(kind) { _ = execv("/bin/true", [strdup("true"), nil]) }
            XCTAssertEqual(r.status, Seccomp.forbiddenCallExitStatus, "\(kind): \(r.stderr)")
            XCTAssertEqual(r.stderr, "swiftvmm: seccomp: \(kind.rawValue) thread made a forbidden system call: execve (59)\n")
        }
    }

    /// The thread-start hook: an event loop started as the API server's runs under the
    /// api list, whatever its handlers do.
    func testEventLoopThreadInstallsItsKindsFilter() throws {
        let policy = try SeccompPolicy.builtIn()
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        let pid = fork()
        if pid == 0 {
            dup2(fds[1], 2)
            Seccomp.processPolicy = policy
            guard let loop = try? EventLoop(), let wake = try? EventFD(),
                  (try? loop.register(fd: wake.fd, events: .readable) { _ in _ = open("/etc/hostname", O_RDONLY) }) != nil,
                  (try? loop.start(name: "api-test", threadKind: .api)) != nil else { _exit(98) }
            wake.signal()
            sleep(5)
            _exit(0)
        }
        close(fds[1])
        var buf = [UInt8](repeating: 0, count: 512)
        var out: [UInt8] = []
        while true {
            let n = read(fds[0], &buf, buf.count)
            if n <= 0 { break }
            out += buf[..<n]
        }
        close(fds[0])
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        XCTAssertEqual((status >> 8) & 0xff, Seccomp.forbiddenCallExitStatus)
        XCTAssertEqual(String(decoding: out, as: UTF8.self), "swiftvmm: seccomp: api thread made a forbidden system call: openat (257)\n")
    }

    func testAllowedCallsRunAndTheProcessEndsNormally() throws {
        let r = try inFilteredChild(.vcpu) {
            var t = timespec()
            clock_gettime(CLOCK_MONOTONIC, &t)
            _ = write(2, "still here\n", 11)
            // An allowed ioctl reaches the kernel (and fails on the bad fd).
            _ = ckvm_run(-1)
        }
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stderr, "still here\n")
    }

    func testVCPUIoctlsAreCheckedByRequestNumber() throws {
        // KVM_RUN is allowed; KVM_CREATE_VCPU is not, even on a bad fd.
        let r = try inFilteredChild(.vcpu) { _ = ckvm_run(-1); _ = ckvm_create_vcpu(-1, 0) }
        XCTAssertEqual(r.status, Seccomp.forbiddenCallExitStatus)
        XCTAssertEqual(r.stderr, "swiftvmm: seccomp: vcpu thread made a forbidden system call: ioctl (16)\n")
    }

    func testAPIThreadCannotReachKVM() throws {
        let r = try inFilteredChild(.api) { _ = ckvm_run(-1) }
        XCTAssertEqual(r.status, Seccomp.forbiddenCallExitStatus)
        XCTAssertTrue(r.stderr.hasPrefix("swiftvmm: seccomp: api thread made a forbidden system call: ioctl"), r.stderr)
    }

    /// Only the device thread may make a socket, a Unix one (vsock's guest-to-host
    /// connections), and connect it; only API mode's main thread may open a file (post-boot
    /// requests: snapshots, drive updates).
    func testNoThreadMayExecOrCreateThreadsOrSockets() throws {
        for kind in ThreadKind.allCases {
            let rules = SeccompAllowLists.rules(for: kind)
            let names = Set(rules.map(\.name))
            for forbidden in ["execve", "execveat", "clone", "clone3", "fork", "ptrace", "mount", "setuid", "open", "creat"] {
                XCTAssertFalse(names.contains(forbidden), "\(kind) allows \(forbidden)")
            }
            XCTAssertEqual(names.contains("openat"), kind == .control, "\(kind) and openat")
            if kind == .vmm || kind == .control {
                // vsock's Unix sockets; a migration's stream (unix: or tcp:) from the control thread.
                let families = kind == .vmm ? [AF_UNIX] : [AF_UNIX, AF_INET, AF_INET6]
                let socket = rules.first { $0.name == "socket" }
                XCTAssertEqual(socket?.argumentIndex, 0)
                XCTAssertEqual(socket?.allowedValues.map(\.value), families.map { UInt32($0) }, "\(kind): socket families")
            } else {
                XCTAssertFalse(names.contains("socket"), "\(kind) allows socket")
                XCTAssertFalse(names.contains("connect"), "\(kind) allows connect")
            }
        }
    }

    func testProgramsFollowTheLayout() throws {
        for kind in ThreadKind.allCases {
            let rules = SeccompAllowLists.rules(for: kind)
            let p = try SeccompProgram.compile(rules)
            XCTAssertEqual(p.first?.k, 4, "first loads the architecture")
            XCTAssertEqual(p.last?.code, 0x06)
            XCTAssertEqual(p.last?.k, 0x0003_0000, "default: trap")
            XCTAssertLessThan(p.count, 512, "\(kind): \(p.count) instructions")
        }
        XCTAssertThrowsError(try SeccompProgram.compile([SyscallRule("no_such_call", "")])) {
            XCTAssertEqual($0 as? SeccompError, .unknownSyscall("no_such_call"))
        }
        XCTAssertThrowsError(try SeccompProgram.compile([SyscallRule("read", ""), SyscallRule("read", "")]))
    }

    func testFilterFileRoundTripsAndFallsBackToVMMForMainControlAndBlock() throws {
        guard case .filters(let programs) = try SeccompPolicy.builtIn() else { return XCTFail("no filters") }
        XCTAssertEqual(try SeccompFilterFile.parse(SeccompFilterFile.serialize(programs), path: "f")[.block]?.map(\.k),
                       programs[.block]?.map(\.k))
        var firecrackers = programs
        firecrackers[.main] = nil
        firecrackers[.control] = nil
        firecrackers[.block] = nil
        let parsed = try SeccompFilterFile.parse(SeccompFilterFile.serialize(firecrackers), path: "f")
        for kind in ThreadKind.allCases {
            let want = kind == .main || kind == .control || kind == .block ? programs[.vmm]! : programs[kind]!
            XCTAssertEqual(parsed[kind]?.map(\.k), want.map(\.k), "\(kind)")
            XCTAssertEqual(parsed[kind]?.map(\.code), want.map(\.code), "\(kind)")
            XCTAssertEqual(parsed[kind]?.map(\.jf), want.map(\.jf), "\(kind)")
        }
    }

    func testMalformedFilterFilesAreRefusedWithTheReason() throws {
        guard case .filters(let programs) = try SeccompPolicy.builtIn() else { return XCTFail("no filters") }
        let good = SeccompFilterFile.serialize(programs)
        var noVCPU = programs
        noVCPU[.vcpu] = nil
        var huge = good
        huge.replaceSubrange(0..<8, with: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
        let cases: [([UInt8], String)] = [
            ([], "ends inside the entry count"),
            (Array(good.prefix(good.count - 3)), "ends inside"),
            (good + [0], "1 bytes after the last program"),
            (SeccompFilterFile.serialize(noVCPU), "no program for thread category vcpu"),
            (huge, "thread categories"),
            ([UInt8](repeating: 0, count: SeccompFilterFile.maxBytes + 1), "more than"),
        ]
        for (bytes, problem) in cases {
            XCTAssertThrowsError(try SeccompFilterFile.parse(bytes, path: "f.bpf")) { error in
                let text = "\(error)"
                XCTAssertTrue(text.hasPrefix("f.bpf: not a seccomp filter file: ") && text.contains(problem), text)
            }
        }
        // A program of zero instructions.
        let empty: [UInt8] = [1, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0] + Array("vmm".utf8) + [UInt8](repeating: 0, count: 8)
        XCTAssertThrowsError(try SeccompFilterFile.parse(empty, path: "f"))
    }

    /// docs/sandbox.md lists every allow-list with its size: keep it true.
    func testTheNoteListsExactlyTheBuiltInAllowLists() throws {
        let note = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/sandbox.md")
        let text = try String(contentsOf: note, encoding: .utf8)
        for kind in ThreadKind.allCases {
            let rules = SeccompAllowLists.rules(for: kind)
            let heading = "### `\(kind.rawValue)`: \(rules.count) system calls"
            guard let start = text.range(of: heading) else { XCTFail("missing heading: \(heading)"); continue }
            let section = text[start.upperBound...].prefix { _ in true }
            let end = section.range(of: "\n### ")?.lowerBound ?? section.endIndex
            let rows = section[..<end].split(separator: "\n").filter { $0.hasPrefix("| `") }
            let listed = rows.compactMap { $0.split(separator: "`").dropFirst().first.map(String.init) }
            XCTAssertEqual(listed, rules.map(\.name), "\(kind)")
        }
    }
}
