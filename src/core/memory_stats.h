// Resident memory of this process, read from /proc/self/status (Linux); 0 where unavailable.
#pragma once
#include <cstdint>

namespace chassis {

uint64_t resident_bytes();       // VmRSS: now
uint64_t peak_resident_bytes();  // VmHWM: the high-water mark since the process started

}  // namespace chassis
