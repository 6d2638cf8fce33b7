// libFuzzer target: arbitrary index/data sequences on the CMOS RTC (ports 0x70/0x71 at
// offsets 0 and 1, any access size), with an arbitrary wall clock and RAM sizes, guest
// time writes (set-time through status B), and state capture/restore. Invariants: the
// index stays below 128; restoring a captured state gives it back.
// Input: 8-byte clock, 8-byte RAM size, then 4-byte operations (kind, offset, size, value).
// libfuzzer: -max_len=4096
import KVMKit

let sizes = [1, 2, 4, 0, 3]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size >= 16 else { return 0 }
    var clock: Int64 = 0
    var ram: UInt64 = 0
    for b in 0..<8 {
        clock |= Int64(data[b]) << (8 * Int64(b))
        ram |= UInt64(data[8 + b]) << (8 * UInt64(b))
    }
    let fixedClock = clock
    let rtc = CMOS(ramBelow4GiB: ram & 0xFFFF_FFFF, ramAbove4GiB: ram, clock: { fixedClock })
    var i = 16
    while i + 4 <= size {
        let (kind, offset, width, value) = (data[i], data[i + 1], sizes[Int(data[i + 2]) % sizes.count], data[i + 3])
        i += 4
        switch kind % 5 {
        case 0: _ = rtc.read(offset: UInt16(offset & 1), size: 1)
        case 1: rtc.write(offset: UInt16(offset & 1), size: 1, value: UInt32(value))
        case 2: _ = rtc.read(offset: UInt16(offset), size: width)
        case 3: rtc.write(offset: UInt16(offset), size: width, value: UInt32(value))
        default:
            let state = rtc.captureState()
            if state.index >= 128 { fatalError("index \(state.index)") }
            do { try rtc.restoreState(state) } catch { fatalError("own state refused: \(error)") }
            if rtc.captureState() != state { fatalError("state changed by a restore") }
        }
    }
    return 0
}
