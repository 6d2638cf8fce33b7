// Raw deflate (RFC 1951) decoding for qcow2 compressed clusters, through Debian's zlib
// (linked statically into the release binary). Same conventions as ckvm.h.
#ifndef CKVM_INFLATE_H
#define CKVM_INFLATE_H

#include <stddef.h>

// Inflate the raw deflate stream in [input, input+input_length) into output. Returns the
// number of bytes produced (at most output_length; trailing input is ignored once
// output is full), or -1 if the stream is malformed or zlib could not start.
long ckvm_inflate_raw(const void *input, size_t input_length, void *output, size_t output_length);

#endif
