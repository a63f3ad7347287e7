#include "core/log.h"

#include <atomic>
#include <cstdio>

namespace chassis {
namespace {
std::atomic<LogLevel> g_level{LogLevel::Warn};
}

void set_log_level(LogLevel level) { g_level = level; }
LogLevel log_level() { return g_level; }

void log(LogLevel level, const std::string& message) {
  if (level < g_level.load()) return;
  static const char* kPrefix[] = {"debug: ", "", "warning: ", "error: "};
  std::fprintf(stderr, "%s%s\n", kPrefix[static_cast<int>(level)], message.c_str());
}

}  // namespace chassis
