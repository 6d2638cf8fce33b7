import XCTest
@testable import VMMCore

final class VMLifecycleTests: XCTestCase {
    func testFirecrackerNamesForTheFirstThreeStates() {
        XCTAssertEqual(VMState.notStarted.rawValue, "Not started")
        XCTAssertEqual(VMState.running.rawValue, "Running")
        XCTAssertEqual(VMState.paused.rawValue, "Paused")
    }

    /// Every (from, to) pair: exactly these are legal.
    func testEveryTransition() {
        let legal: Set<String> = ["Not started>Running", "Not started>Stopped", "Not started>Paused",
                                  "Running>Paused", "Paused>Running",
                                  "Running>Stopped", "Running>Crashed", "Paused>Stopped", "Paused>Crashed"]
        for from in VMState.allCases {
            for to in VMState.allCases {
                let key = "\(from.rawValue)>\(to.rawValue)"
                XCTAssertEqual(VMLifecycle.canTransition(from: from, to: to), legal.contains(key), key)
            }
        }
    }

    /// Every request in every state.
    func testEveryRequestInEveryState() {
        let allowed: [VMRequest: Set<VMState>] = [
            .configure: [.notStarted], .start: [.notStarted], .pause: [.running], .resume: [.paused],
            .sendCtrlAltDel: [.running], .readRegisters: [.paused],
            .createSnapshot: [.paused], .loadSnapshot: [.notStarted], .migrate: [.running],
            .receiveMigration: [.notStarted],
        ]
        for request in VMRequest.allCases {
            for state in VMState.allCases {
                XCTAssertEqual(request.isAllowed(in: state), allowed[request]!.contains(state), "\(request) in \(state)")
            }
        }
    }

    /// A request that is allowed leads along a legal transition (or none).
    func testAllowedRequestsFollowLegalTransitions() {
        let target: [VMRequest: VMState] = [.start: .running, .pause: .paused, .resume: .running,
                                            .loadSnapshot: .paused, .migrate: .stopped,
                                            .receiveMigration: .running]
        for (request, to) in target {
            for from in VMState.allCases where request.isAllowed(in: from) {
                XCTAssertTrue(VMLifecycle.canTransition(from: from, to: to), "\(request) from \(from)")
            }
        }
    }

    func testIllegalRequestMessagesNameRequestAndState() {
        XCTAssertEqual(VMError.illegal(.resume, state: .running).description, "cannot resume a VM that is running")
        XCTAssertEqual(VMError.illegal(.start, state: .paused).description, "cannot start a VM that is paused")
        XCTAssertEqual(VMError.illegal(.configure, state: .running).description,
                       "the requested operation is not supported after starting the microVM")
    }

    func testConfigurationKeepsOneRootDriveAndReplacesById() throws {
        var c = VMConfiguration()
        try c.upsertDrive(.init(id: "root", path: "/a", isRootDevice: true))
        try c.upsertDrive(.init(id: "data", path: "/b"))
        XCTAssertThrowsError(try c.upsertDrive(.init(id: "other", path: "/c", isRootDevice: true)))
        try c.upsertDrive(.init(id: "data", path: "/d", readOnly: true))
        XCTAssertEqual(c.drives.map(\.id), ["root", "data"])
        XCTAssertEqual(c.drives[1].path, "/d")
        XCTAssertThrowsError(try c.upsertDrive(.init(id: "", path: "/e")))
    }
}
