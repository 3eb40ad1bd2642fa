// CRC32C with the CPU's own instruction (SSE4.2 `crc32` on x86-64): about
// eight bytes a cycle against slicing-by-8's one to two, which is what a
// journal's open spends its time on (every frame's payload checksum).
// Compiled for the baseline x86-64 (no -msse4.2), so only the function itself
// is built for SSE4.2 and the caller checks `cpuid` first.
#include "CCRC32C.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <nmmintrin.h>
#include <string.h>

int ccrc32c_hardware_available(void) {
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    return (ecx & bit_SSE4_2) != 0;
}

__attribute__((target("sse4.2")))
uint32_t ccrc32c_hardware_update(uint32_t crc, const void *bytes, size_t count) {
    const unsigned char *p = (const unsigned char *)bytes;
    uint64_t c = crc;
    // Bytes up to an 8-byte boundary, then eight at a time, then the rest.
    while (count > 0 && ((uintptr_t)p & 7) != 0) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        count--;
    }
    while (count >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);  // little-endian load, as CRC32C's reflected order wants
        c = _mm_crc32_u64(c, word);
        p += 8;
        count -= 8;
    }
    while (count > 0) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        count--;
    }
    return (uint32_t)c;
}

#else

int ccrc32c_hardware_available(void) { return 0; }

uint32_t ccrc32c_hardware_update(uint32_t crc, const void *bytes, size_t count) {
    (void)crc; (void)bytes; (void)count;
    __builtin_trap();
}

#endif
