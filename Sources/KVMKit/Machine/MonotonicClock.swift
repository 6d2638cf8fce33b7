import Glibc

/// CLOCK_MONOTONIC in nanoseconds (start-up timings, time-outs).
public func monotonicNanoseconds() -> Int64 {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Int64(t.tv_sec) * 1_000_000_000 + Int64(t.tv_nsec)
}
