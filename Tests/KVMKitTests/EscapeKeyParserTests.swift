@testable import KVMKit
import XCTest

final class EscapeKeyParserTests: XCTestCase {
    private func run(_ bytes: [UInt8]) -> [EscapeKeyParser.Output] {
        var p = EscapeKeyParser()
        return bytes.map { p.feed($0) }
    }

    func testOrdinaryBytesPassThrough() {
        XCTAssertEqual(run(Array("ls\r".utf8)), [.byte(0x6c), .byte(0x73), .byte(0x0d)])
    }

    func testCtrlAxQuits() {
        XCTAssertEqual(run([0x01, 0x78]), [.pending, .command(.quit, key: 0x78)])
        XCTAssertEqual(run([0x01, 0x58]), [.pending, .command(.quit, key: 0x58)])
    }

    func testCtrlACtrlAIsLiteral() {
        XCTAssertEqual(run([0x01, 0x01, 0x61]), [.pending, .command(.literalEscape, key: 0x01), .byte(0x61)])
    }

    func testHelpAndDetach() {
        XCTAssertEqual(run([0x01, 0x68]), [.pending, .command(.help, key: 0x68)])
        XCTAssertEqual(run([0x01, 0x3f]), [.pending, .command(.help, key: 0x3f)])
        XCTAssertEqual(run([0x01, 0x64]), [.pending, .command(.detach, key: 0x64)])
    }

    func testUnknownCommandIsSwallowedAndStateResets() {
        XCTAssertEqual(run([0x01, 0x7a, 0x7a]), [.pending, .command(.unknown, key: 0x7a), .byte(0x7a)])
    }

    func testXWithoutEscapeIsJustX() {
        XCTAssertEqual(run([0x78, 0x01, 0x78, 0x78]), [.byte(0x78), .pending, .command(.quit, key: 0x78), .byte(0x78)])
    }

    func testCtrlCIsForwarded() {
        XCTAssertEqual(run([0x03]), [.byte(0x03)])
    }

    func testHelpTextMentionsKeys() {
        XCTAssertTrue(EscapeKeyParser.helpText(detachAvailable: true).contains("Ctrl-A d"))
        XCTAssertFalse(EscapeKeyParser.helpText(detachAvailable: false).contains("Ctrl-A d"))
    }
}
