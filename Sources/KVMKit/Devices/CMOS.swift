import Glibc

/// The MC146818-style CMOS RTC and NVRAM at ports 0x70 (index) and 0x71 (data): a guest
/// reads a sane wall-clock time (UTC) and the memory size fields firmware-era code expects.
///
/// Attach at base 0x70: offset 0 is the index register (bit 7 disables NMI; the low seven
/// bits pick one of 128 bytes), offset 1 the data register. Time registers are computed
/// from the injected clock on every read, in BCD unless register B selects binary, and in
/// 24-hour form unless it selects 12-hour. A guest that sets the clock moves an offset, not
/// the host clock. No RTC interrupts (IRQ 8) are generated: registers B's interrupt enables
/// are stored and register C reads 0.
public final class CMOS: PortIODevice, @unchecked Sendable {
    /// Seconds since the Unix epoch, UTC.
    public typealias Clock = @Sendable () -> Int64

    /// The host's real-time clock.
    public static let hostClock: Clock = { Int64(time(nil)) }

    /// CMOS byte indices.
    enum Index {
        /// Seconds (0–59).
        static let seconds: UInt8 = 0x00
        /// Seconds alarm.
        static let secondsAlarm: UInt8 = 0x01
        /// Minutes (0–59).
        static let minutes: UInt8 = 0x02
        /// Minutes alarm.
        static let minutesAlarm: UInt8 = 0x03
        /// Hours (0–23, or 1–12 with bit 7 = PM).
        static let hours: UInt8 = 0x04
        /// Hours alarm.
        static let hoursAlarm: UInt8 = 0x05
        /// Day of the week (1 = Sunday).
        static let dayOfWeek: UInt8 = 0x06
        /// Day of the month (1–31).
        static let dayOfMonth: UInt8 = 0x07
        /// Month (1–12).
        static let month: UInt8 = 0x08
        /// Year within the century (0–99).
        static let year: UInt8 = 0x09
        /// Status register A: update in progress, divider, rate.
        static let statusA: UInt8 = 0x0A
        /// Status register B: SET, interrupt enables, data mode, 24-hour mode.
        static let statusB: UInt8 = 0x0B
        /// Status register C: interrupt flags (read-only, cleared on read).
        static let statusC: UInt8 = 0x0C
        /// Status register D: valid RAM and time (read-only).
        static let statusD: UInt8 = 0x0D
        /// Base memory in KiB, low byte (0x16 high).
        static let baseMemoryLow: UInt8 = 0x15
        /// Extended memory from 1 MiB in KiB (max 0xFFFF), low byte (0x18 high).
        static let extendedMemoryLow: UInt8 = 0x17
        /// Standard checksum over 0x10–0x2D, high byte (0x2F low).
        static let checksumHigh: UInt8 = 0x2E
        /// Extended memory from 1 MiB in KiB as found by POST, low byte (0x31 high).
        static let postExtendedMemoryLow: UInt8 = 0x30
        /// Century (19, 20, …).
        static let century: UInt8 = 0x32
        /// Memory from 16 MiB to the end of low RAM in 64 KiB units, low byte (0x35 high).
        static let memoryAbove16MiBLow: UInt8 = 0x34
        /// Memory above 4 GiB in 64 KiB units: bits 0–7 (0x5C: 8–15, 0x5D: 16–23).
        static let memoryAbove4GiBLow: UInt8 = 0x5B
        /// Number of bytes of CMOS.
        static let count = 128
    }

    /// Register A: update-in-progress flag (always reads 0 here: no update cycle).
    static let statusAUpdateInProgress: UInt8 = 0x80
    /// Register A after reset: 32.768 kHz time base (divider 010), 1024 Hz rate (0110).
    static let statusAResetValue: UInt8 = 0x26
    /// Register B: SET — the guest is updating the time.
    static let statusBSet: UInt8 = 0x80
    /// Register B: data mode binary (clear: BCD).
    static let statusBBinary: UInt8 = 0x04
    /// Register B: 24-hour mode (clear: 12-hour with bit 7 of the hours = PM).
    static let statusB24Hour: UInt8 = 0x02
    /// Register B after reset: 24-hour, BCD.
    static let statusBResetValue: UInt8 = 0x02
    /// Register D: valid RAM and time (battery good).
    static let statusDValidRAM: UInt8 = 0x80
    /// Hours register bit 7 in 12-hour mode: PM.
    static let hoursPM: UInt8 = 0x80
    /// Index port bit 7: NMI disabled.
    static let nmiDisable: UInt8 = 0x80

    /// The CMOS contents and index as a value, for snapshots and tests.
    public struct State: Equatable, Sendable {
        /// The 128 bytes (time registers hold what was last written, not the time).
        public var bytes: [UInt8]
        /// Selected index (0–127).
        public var index: UInt8
        /// Whether the guest disabled NMI through the index port.
        public var nmiDisabled: Bool
        /// Seconds added to the clock because the guest set the time.
        public var clockOffset: Int64
    }

    /// Why a state could not be restored.
    public enum StateError: Error, Equatable, CustomStringConvertible {
        case wrongSize(Int)

        public var description: String {
            switch self {
            case let .wrongSize(count): return "CMOS state: \(count) bytes, expected \(Index.count)"
            }
        }
    }

    private let lock = Lock()
    private let clock: Clock
    private var bytes = [UInt8](repeating: 0, count: Index.count)
    private var index: UInt8 = 0
    private var nmiDisabled = false
    private var clockOffset: Int64 = 0

    /// - Parameters:
    ///   - ramBelow4GiB: bytes of RAM from address 0 up to the end of low RAM (≤ 3 GiB).
    ///   - ramAbove4GiB: bytes of RAM from 4 GiB up.
    ///   - clock: wall clock, UTC seconds since the epoch.
    public init(ramBelow4GiB: UInt64, ramAbove4GiB: UInt64, clock: @escaping Clock = CMOS.hostClock) {
        self.clock = clock
        bytes[Int(Index.statusA)] = CMOS.statusAResetValue
        bytes[Int(Index.statusB)] = CMOS.statusBResetValue
        bytes[Int(Index.statusD)] = CMOS.statusDValidRAM
        storeMemorySizes(ramBelow4GiB: ramBelow4GiB, ramAbove4GiB: ramAbove4GiB)
    }

    /// Whether the guest has disabled NMI through bit 7 of the index port.
    public var isNMIDisabled: Bool { lock.withLock { nmiDisabled } }

    // MARK: Bus access

    public func read(offset: UInt16, size: Int) -> UInt32 {
        switch offset {
        case 1: return UInt32(lock.withLock { readDataLocked() })
        default: return 0xFF  // the index port is write-only
        }
    }

    public func write(offset: UInt16, size: Int, value: UInt32) {
        let byte = UInt8(truncatingIfNeeded: value)
        lock.withLock {
            switch offset {
            case 0:
                index = byte & 0x7F
                nmiDisabled = (byte & CMOS.nmiDisable) != 0
            case 1:
                writeDataLocked(byte)
            default:
                break
            }
        }
    }

    // MARK: State

    public func captureState() -> State {
        lock.withLock { State(bytes: bytes, index: index, nmiDisabled: nmiDisabled, clockOffset: clockOffset) }
    }

    public func restoreState(_ state: State) throws {
        guard state.bytes.count == Index.count else { throw StateError.wrongSize(state.bytes.count) }
        lock.withLock {
            bytes = state.bytes
            index = state.index & 0x7F
            nmiDisabled = state.nmiDisabled
            clockOffset = state.clockOffset
        }
    }

    // MARK: Registers (lock held)

    private var binaryMode: Bool { bytes[Int(Index.statusB)] & CMOS.statusBBinary != 0 }
    private var twentyFourHour: Bool { bytes[Int(Index.statusB)] & CMOS.statusB24Hour != 0 }

    private func readDataLocked() -> UInt8 {
        switch index {
        case Index.seconds, Index.minutes, Index.hours, Index.dayOfWeek, Index.dayOfMonth,
             Index.month, Index.year, Index.century:
            return timeField(index, of: brokenDownTime())
        case Index.statusA:
            return bytes[Int(index)] & ~CMOS.statusAUpdateInProgress
        case Index.statusC:
            return 0  // no interrupt flags: nothing to clear
        case Index.statusD:
            return CMOS.statusDValidRAM
        default:
            return bytes[Int(index)]
        }
    }

    private func writeDataLocked(_ value: UInt8) {
        switch index {
        case Index.seconds, Index.minutes, Index.hours, Index.dayOfWeek, Index.dayOfMonth,
             Index.month, Index.year, Index.century:
            setTimeField(index, to: value)
        case Index.statusA:
            bytes[Int(index)] = value & ~CMOS.statusAUpdateInProgress
        case Index.statusC, Index.statusD:
            break  // read-only
        default:
            bytes[Int(index)] = value
        }
    }

    // MARK: Time

    private func brokenDownTime() -> tm {
        var seconds = time_t(clock() &+ clockOffset)
        var fields = tm()
        _ = gmtime_r(&seconds, &fields)
        return fields
    }

    private func timeField(_ field: UInt8, of t: tm) -> UInt8 {
        let year = Int(t.tm_year) + 1900
        switch field {
        case Index.seconds: return encode(Int(t.tm_sec))
        case Index.minutes: return encode(Int(t.tm_min))
        case Index.hours:
            let hour = Int(t.tm_hour)
            if twentyFourHour { return encode(hour) }
            let twelve = hour % 12 == 0 ? 12 : hour % 12
            return encode(twelve) | (hour >= 12 ? CMOS.hoursPM : 0)
        case Index.dayOfWeek: return encode(Int(t.tm_wday) + 1)
        case Index.dayOfMonth: return encode(Int(t.tm_mday))
        case Index.month: return encode(Int(t.tm_mon) + 1)
        case Index.year: return encode(year % 100)
        default: return encode(year / 100)  // Index.century
        }
    }

    /// A guest write to a time register: move the clock offset so the field reads back
    /// as written while the other fields keep their current values.
    private func setTimeField(_ field: UInt8, to raw: UInt8) {
        var t = brokenDownTime()
        let year = Int(t.tm_year) + 1900
        switch field {
        case Index.seconds: t.tm_sec = Int32(decode(raw) % 60)
        case Index.minutes: t.tm_min = Int32(decode(raw) % 60)
        case Index.hours:
            if twentyFourHour {
                t.tm_hour = Int32(decode(raw) % 24)
            } else {
                let twelve = decode(raw & ~CMOS.hoursPM) % 12
                t.tm_hour = Int32(twelve + (raw & CMOS.hoursPM != 0 ? 12 : 0))
            }
        case Index.dayOfWeek: return  // derived from the date
        case Index.dayOfMonth: t.tm_mday = Int32(min(max(decode(raw), 1), 31))
        case Index.month: t.tm_mon = Int32(min(max(decode(raw), 1), 12) - 1)
        case Index.year: t.tm_year = Int32((year / 100) * 100 + decode(raw) % 100 - 1900)
        default: t.tm_year = Int32((decode(raw) % 100) * 100 + year % 100 - 1900)  // century
        }
        let wanted = Int64(timegm(&t))
        if wanted != -1 { clockOffset = wanted &- clock() }
    }

    private func encode(_ value: Int) -> UInt8 {
        let v = UInt8(truncatingIfNeeded: value)
        return binaryMode ? v : ((v / 10) << 4) | (v % 10)
    }

    /// Lenient BCD decoding: a guest writing nibbles above 9 gets a clamped value, not a trap.
    private func decode(_ value: UInt8) -> Int {
        binaryMode ? Int(value) : Int(value >> 4) * 10 + Int(value & 0x0F)
    }

    // MARK: Memory size fields

    private func storeMemorySizes(ramBelow4GiB: UInt64, ramAbove4GiB: UInt64) {
        let kib: UInt64 = 1024, mib = kib * 1024
        func store16(_ at: UInt8, _ value: UInt64) {
            let v = min(value, 0xFFFF)
            bytes[Int(at)] = UInt8(v & 0xFF)
            bytes[Int(at) + 1] = UInt8(v >> 8)
        }
        store16(Index.baseMemoryLow, 640)
        let extendedKiB = ramBelow4GiB > mib ? (ramBelow4GiB - mib) / kib : 0
        store16(Index.extendedMemoryLow, extendedKiB)
        store16(Index.postExtendedMemoryLow, extendedKiB)
        let above16 = ramBelow4GiB > 16 * mib ? (ramBelow4GiB - 16 * mib) / (64 * kib) : 0
        store16(Index.memoryAbove16MiBLow, above16)
        let above4G = min(ramAbove4GiB / (64 * kib), 0xFF_FFFF)
        bytes[Int(Index.memoryAbove4GiBLow)] = UInt8(above4G & 0xFF)
        bytes[Int(Index.memoryAbove4GiBLow) + 1] = UInt8((above4G >> 8) & 0xFF)
        bytes[Int(Index.memoryAbove4GiBLow) + 2] = UInt8(above4G >> 16)
        let sum = bytes[0x10...0x2D].reduce(0) { $0 + Int($1) }
        bytes[Int(Index.checksumHigh)] = UInt8((sum >> 8) & 0xFF)
        bytes[Int(Index.checksumHigh) + 1] = UInt8(sum & 0xFF)
    }
}
