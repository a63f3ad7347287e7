// Logging to stderr: stdout carries only what a command was asked to print.
#pragma once
#include <string>

namespace chassis {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3, Quiet = 4 };

void set_log_level(LogLevel level);
LogLevel log_level();
void log(LogLevel level, const std::string& message);
inline void log_info(const std::string& m) { log(LogLevel::Info, m); }
inline void log_warn(const std::string& m) { log(LogLevel::Warn, m); }
inline void log_error(const std::string& m) { log(LogLevel::Error, m); }
inline void log_debug(const std::string& m) { log(LogLevel::Debug, m); }

}  // namespace chassis
