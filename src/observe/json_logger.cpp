#include <wf/log.hpp>

#include "../text.hpp"

#include <cstdio>
#include <ctime>
#include <type_traits>

namespace wf {

std::string_view to_string(log_level l) noexcept {
  switch (l) {
    case log_level::debug: return "debug";
    case log_level::info: return "info";
    case log_level::warn: return "warn";
    case log_level::error: return "error";
  }
  return "unknown";
}

namespace {

// "2026-11-28T05:01:02.123Z"
std::string utc(wall_clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];  // (room for any int, so that GCC sees no truncation)
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

double ms(std::chrono::nanoseconds d) { return static_cast<double>(d.count()) / 1e6; }

std::string call_name(const branch_context& c) { return std::string(c.branch_id) + " " + std::string(c.name); }

// `s` as a JSON string. Text is UTF-8 as JSON requires: a byte that is not
// part of a well-formed sequence is written as the text "\xNN" (wf's
// messages are text; this keeps a line valid whatever a participant sent).
void append_json_string(std::string& out, std::string_view s) {
  static const char hex[] = "0123456789abcdef";
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
      ++i;
    } else if (c < 0x20) {
      out += "\\u00";
      out += hex[c >> 4];
      out += hex[c & 15];
      ++i;
    } else if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
    } else if (const auto n = detail::utf8_sequence(s, i); n > 0) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\\\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
      ++i;
    }
  }
  out += '"';
}

}  // namespace

// One line being built: a JSON object with the common fields first.
class json_logger::line {
 public:
  line(log_level level, std::string_view event) : level_(level) {
    text_ = "{";
    with("ts", utc(wall_clock::now()));
    with("level", to_string(level));
    with("event", event);
  }
  line& about(const workflow_ref& w) {
    with("gid", w.gid);
    return with("workflow", w.name);
  }
  template <class T>
  line& with(std::string_view key, const T& value) {
    if (text_.size() > 1) text_ += ',';
    append_json_string(text_, key);
    text_ += ':';
    if constexpr (std::is_same_v<T, bool>) {
      text_ += value ? "true" : "false";
    } else if constexpr (std::is_integral_v<T>) {
      text_ += std::to_string(value);
    } else if constexpr (std::is_floating_point_v<T>) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.15g", static_cast<double>(value));
      text_ += buf;
    } else {
      append_json_string(text_, std::string_view(value));
    }
    return *this;
  }
  log_level level() const noexcept { return level_; }
  std::string text() const { return text_ + "}"; }

 private:
  log_level level_;
  std::string text_;
};

json_logger::json_logger(log_options options) : options_(std::move(options)) {}

void json_logger::write(const line& l) {
  if (!wants(l.level())) return;
  const auto text = l.text();
  std::lock_guard lock(mutex_);
  if (options_.sink) {
    options_.sink(text);
  } else {
    std::fwrite(text.data(), 1, text.size(), stderr);
    std::fputc('\n', stderr);
  }
}

void json_logger::workflow_created(const workflow_ref& w) {
  if (wants(log_level::info)) write(line(log_level::info, "workflow_created").about(w));
}

void json_logger::workflow_resumed(const workflow_ref& w, std::string_view previous_owner, bool takeover) {
  if (wants(log_level::info))
    write(line(log_level::info, "workflow_resumed").about(w).with("previous_owner", previous_owner).with("takeover", takeover));
}

void json_logger::workflow_finished(const workflow_ref& w, workflow_status status, std::string_view detail) {
  {
    std::lock_guard lock(mutex_);
    if (auto it = failed_call_.find(w.gid); it != failed_call_.end()) failed_call_.erase(it);
  }
  const auto level = status == workflow_status::stuck ? log_level::error : log_level::info;
  if (!wants(level)) return;
  line l(level, "workflow_finished");
  l.about(w).with("status", to_string(status));
  if (status == workflow_status::failed) l.with("reason", detail);
  if (status == workflow_status::stuck) l.with("error", detail);
  write(l);
}

void json_logger::attempt_started(const workflow_ref& w, std::uint32_t attempt, bool closing) {
  if (wants(log_level::debug))
    write(line(log_level::debug, "attempt_started").about(w).with("attempt", attempt).with("closing", closing));
}

void json_logger::attempt_ended(const workflow_ref& w, std::uint32_t attempt, attempt_end how, std::string_view error,
                                std::optional<wall_clock::time_point> next_attempt) {
  std::string failed;
  {
    std::lock_guard lock(mutex_);
    if (auto it = failed_call_.find(w.gid); it != failed_call_.end()) {
      failed = std::move(it->second);
      failed_call_.erase(it);
    }
  }
  const auto level = how == attempt_end::transient || how == attempt_end::lease_lost ? log_level::warn
                     : how == attempt_end::stuck                                       ? log_level::error
                                                                                       : log_level::debug;
  if (!wants(level)) return;
  line l(level, "attempt_ended");
  l.about(w).with("attempt", attempt).with("result", to_string(how));
  if (!error.empty()) l.with("error", error);
  if (!failed.empty()) l.with("branch", failed);
  if (next_attempt) l.with("next_attempt_at", utc(*next_attempt));
  write(l);
}

void json_logger::call_started(const workflow_ref& w, const branch_context& call) {
  if (wants(log_level::debug))
    write(line(log_level::debug, "call_started").about(w).with("branch", call_name(call)).with("op", call.op));
}

void json_logger::call_ended(const workflow_ref& w, const branch_context& call, call_end how,
                             std::chrono::nanoseconds latency, std::string_view error) {
  if (how != call_end::ok && how != call_end::failure) {
    // Kept for the attempt's line: which call failed.
    std::lock_guard lock(mutex_);
    failed_call_[std::string(w.gid)] = call_name(call);
  }
  const auto level = how == call_end::bug       ? log_level::error
                     : how == call_end::failure ? log_level::info
                                                : log_level::debug;
  if (!wants(level)) return;
  line l(level, "call_ended");
  l.about(w).with("branch", call_name(call)).with("op", call.op).with("result", to_string(how)).with("ms", ms(latency));
  if (!error.empty()) l.with("error", error);
  write(l);
}

void json_logger::journal_written(const workflow_ref& w, std::size_t records, std::chrono::nanoseconds latency) {
  if (wants(log_level::debug))
    write(line(log_level::debug, "journal_written").about(w).with("records", records).with("ms", ms(latency)));
}

void json_logger::leases_renewed(std::size_t count, std::size_t lost) {
  const auto level = lost > 0 ? log_level::warn : log_level::debug;
  if (wants(level)) write(line(level, "leases_renewed").with("count", count).with("lost", lost));
}

void json_logger::lease_lost(const workflow_ref& w) {
  if (wants(log_level::warn)) write(line(log_level::warn, "lease_lost").about(w));
}

void json_logger::group_committed(std::size_t writes, std::chrono::nanoseconds latency) {
  if (wants(log_level::debug))
    write(line(log_level::debug, "group_committed").with("writes", writes).with("ms", ms(latency)));
}

}  // namespace wf
