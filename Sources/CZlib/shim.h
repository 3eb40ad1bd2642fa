#ifndef POSSYNC_CZLIB_SHIM_H
#define POSSYNC_CZLIB_SHIM_H

#include <zlib.h>

// deflateInit2 and inflateInit2 are C macros (they pass ZLIB_VERSION and the
// size of z_stream for an ABI check), so Swift cannot call them directly.
// These wrappers give Swift a plain function with the same meaning.

static inline int possync_deflateInit2(z_streamp strm, int level, int windowBits,
                                       int memLevel, int strategy) {
    return deflateInit2(strm, level, Z_DEFLATED, windowBits, memLevel, strategy);
}

static inline int possync_inflateInit2(z_streamp strm, int windowBits) {
    return inflateInit2(strm, windowBits);
}

#endif
