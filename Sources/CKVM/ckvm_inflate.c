#include "ckvm_inflate.h"
#include <string.h>
#include <zlib.h>

long ckvm_inflate_raw(const void *input, size_t input_length, void *output, size_t output_length) {
    z_stream s;
    memset(&s, 0, sizeof s);
    if (inflateInit2(&s, -15) != Z_OK) return -1;  // -15: raw deflate, 32 KiB window
    s.next_in = (Bytef *)input;
    s.avail_in = (uInt)input_length;
    s.next_out = (Bytef *)output;
    s.avail_out = (uInt)output_length;
    int r = inflate(&s, Z_FINISH);
    long produced = (long)(output_length - s.avail_out);
    inflateEnd(&s);
    // Z_BUF_ERROR with a full output is how QEMU's images end: compressed data padded to
    // a sector, the stream not finished within the cluster's bytes.
    if (r == Z_STREAM_END || (r == Z_BUF_ERROR && s.avail_out == 0) || (r == Z_OK && s.avail_out == 0)) return produced;
    return -1;
}
