import XCTest
@testable import VMMCore

final class VMStateTests: XCTestCase {
    func testFirecrackerNamesForTheFirstThreeStates() {
        XCTAssertEqual(VMState.notStarted.rawValue, "Not started")
        XCTAssertEqual(VMState.running.rawValue, "Running")
        XCTAssertEqual(VMState.paused.rawValue, "Paused")
    }
}
