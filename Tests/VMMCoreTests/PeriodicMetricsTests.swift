import Foundation
import KVMKit
import VMMCore
import XCTest

/// The VMM thread's request loop writes a metrics record every period once the VM runs
/// and metrics are configured (Firecracker: every 60 s), and still serves requests.
final class PeriodicMetricsTests: XCTestCase {
    func testMetricsAreWrittenEveryPeriodWhileTheVMRuns() throws {
        let (vm, log) = try probeVM(commandLine: "console=ttyS0")
        let metrics = NSTemporaryDirectory() + "swiftvmm-metrics-\(UUID().uuidString).json"
        XCTAssertTrue(FileManager.default.createFile(atPath: metrics, contents: nil))
        defer { vm.shutdown(); unlink(log); unlink(metrics) }
        let controller = APIController(vm: vm, logger: VMMLogger(instanceID: "periodic"))
        let channel = try APIRequestChannel()
        func lines() -> [String] { readText(metrics).split(separator: "\n").map(String.init) }

        // Not started: no record however long the loop waits.
        try controller.configureMetrics(path: metrics)
        let idleDone = DispatchSemaphore(value: 0)
        Thread { controller.serve(channel, metricsPeriod: 50_000_000); idleDone.signal() }.start()
        usleep(300_000)
        XCTAssertEqual(channel.call(APICall(.getMetrics, line: "GET /metrics")).status, .ok)
        usleep(300_000)
        XCTAssertEqual(lines().count, 0, "a VM that has not started writes no periodic record")
        channel.close()
        idleDone.wait()

        // Running: a record every 200 ms between requests, each a JSON object of the counters.
        try vm.start()
        let running = try APIRequestChannel()
        let done = DispatchSemaphore(value: 0)
        let start = Date()
        Thread { controller.serve(running, metricsPeriod: 200_000_000); done.signal() }.start()
        usleep(1_100_000)
        XCTAssertEqual(running.call(APICall(.getMetrics, line: "GET /metrics")).status, .ok, "requests are served between records")
        usleep(500_000)
        running.close()
        done.wait()
        let periods = Int(Date().timeIntervalSince(start) / 0.2)
        let written = lines()
        // One per period; fewer only if the loop's thread was kept from running for a period.
        XCTAssertGreaterThanOrEqual(written.count, 4, "a record per 200 ms over \(periods) periods: \(written.count)")
        XCTAssertLessThanOrEqual(written.count, periods, "never more than one per period")
        for line in written {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            XCTAssertNotNil(object?["vcpu"], line)
        }
    }
}
