#ifndef CCRC32C_H
#define CCRC32C_H

#include <stddef.h>
#include <stdint.h>

/// 1 when this CPU has a CRC32C instruction this shim uses (x86-64: SSE4.2
/// `crc32`, found with `cpuid`), else 0. Checked at run time: the binary runs
/// on CPUs without it, where PosJournal uses its portable Swift loop.
int ccrc32c_hardware_available(void);

/// Continues a CRC32C over `count` bytes at `bytes` on the raw register value
/// `crc` (no initial or final inversion: the caller does those, as in the Swift
/// loop). Only call when `ccrc32c_hardware_available()` returned 1; elsewhere it
/// traps.
uint32_t ccrc32c_hardware_update(uint32_t crc, const void *bytes, size_t count);

#endif
