// The timeline lines the example's processes print: "12:04:05.123  text",
// one write(2) per line, so that the lines of processes appending to one file
// (scripts/demo) never mix.
#ifndef WF_EXAMPLES_TRANSFER_TIMELINE_HPP
#define WF_EXAMPLES_TRANSFER_TIMELINE_HPP

#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

#include <unistd.h>

namespace transfer {

inline void print_line(const std::string& text) {
  const auto now = std::chrono::system_clock::now();
  const auto t = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  localtime_r(&t, &tm);
  char clock[32];
  std::snprintf(clock, sizeof clock, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  const std::string line = std::string(clock) + "  " + text + "\n";
  [[maybe_unused]] auto n = ::write(STDOUT_FILENO, line.data(), line.size());
}

}  // namespace transfer

#endif  // WF_EXAMPLES_TRANSFER_TIMELINE_HPP
