import Foundation
import XCTest

/// What a test does when something it needs is missing: a visible skip on a developer's
/// machine, a failure under CI=true (CI runs as root on a host with /dev/kvm, every guest
/// built and every Makefile package installed, so nothing may be missing there).
/// Use as `throw missingPrerequisite("…")`.
public func missingPrerequisite(_ what: String, file: StaticString = #filePath, line: UInt = #line) -> Error {
    if isCI {
        XCTFail("CI=true but \(what)", file: file, line: line)
        return PrerequisiteMissing(what: what)
    }
    print("SKIPPED (\(what))")
    return XCTSkip(what)
}

public var isCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

public struct PrerequisiteMissing: Error, CustomStringConvertible {
    public let what: String
    public var description: String { "missing prerequisite: \(what)" }
}
