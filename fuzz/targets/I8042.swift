// libFuzzer target: arbitrary command/data sequences on the i8042 keyboard controller
// (ports 0x60 and 0x64 at offsets 0 and 4, any access size), with state capture/restore
// and restores of arbitrary states. Invariant: a restore of a captured state gives it
// back; an arbitrary state is accepted or refused with an error, never a trap.
// Input: 4-byte operations (kind, offset, size, value).
// libfuzzer: -max_len=4096
import KVMKit

let sizes = [1, 2, 4, 0, 3]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    var resets = 0
    let kbc = I8042(onReset: { resets += 1 })
    var i = 0
    while i + 4 <= size {
        let (kind, offset, width, value) = (data[i], data[i + 1], sizes[Int(data[i + 2]) % sizes.count], data[i + 3])
        i += 4
        switch kind % 5 {
        case 0: _ = kbc.read(offset: UInt16(offset & 4), size: 1)
        case 1: kbc.write(offset: UInt16(offset & 4), size: 1, value: UInt32(value))
        case 2: _ = kbc.read(offset: UInt16(offset), size: width)
        case 3: kbc.write(offset: UInt16(offset), size: width, value: UInt32(value))
        default:
            var state = kbc.captureState()
            do { try kbc.restoreState(state) } catch { fatalError("own state refused: \(error)") }
            if kbc.captureState() != state { fatalError("state changed by a restore") }
            // A hostile snapshot: mismatched queues, odd bytes.
            state.outputBytes += Array(repeating: value, count: Int(offset & 31))
            state.outputFromAux = Array(state.outputFromAux.prefix(Int(width)))
            state.pendingCommand = value
            _ = try? kbc.restoreState(state)
        }
    }
    _ = resets
    return 0
}
