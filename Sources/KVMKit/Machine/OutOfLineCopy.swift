import Glibc

// Byte copies and fills for throwing functions, kept out of line on purpose.
//
// Swift 6.3's LLVM can lower a memmove/memcpy/memset that ends the success path of a
// throwing function into a tail call that skips restoring the error register (r12 on
// x86-64): the caller then sees a "thrown error" that is a stale pointer and crashes on
// it (swiftlang/swift#90477, fixed upstream by llvm/llvm-project#214590). This hit
// `GuestMemory.write` in every release build (`swiftvmm run` crashed in
// `FirmwareImage.write`). A call to a Swift function is never made a tail call from a
// throwing function, so routing the copy through these keeps the epilogue intact; the
// callee itself does not throw, so its own memmove tail call is harmless.

@inline(never)
func outOfLineCopy(to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, count: Int) {
    destination.copyMemory(from: source, byteCount: count)
}

@inline(never)
func outOfLineZero(_ destination: UnsafeMutableRawPointer, count: Int) {
    memset(destination, 0, count)
}
