// wf/log.hpp - a ready logger: one JSON line per event a runtime reports.
//
//     auto log = std::make_shared<wf::json_logger>();          // info and up, to stderr
//     wf::runtime rt(io.get_executor(), store, {.observer = log});
//
// Each line is one JSON object: "ts" (UTC, milliseconds), "level", "event"
// (the observer hook's name, see wf/observer.hpp), "gid", "workflow", and the
// event's own fields. A transient error is logged at "warn" as
// `attempt_ended` with the attempt number, the error, the branch whose call
// failed ("branch": "02 TransIn", when one did) and "next_attempt_at", so a
// retry loop is never silent; a workflow that becomes stuck is logged at
// "error" with why. Nothing secret is logged: wf's errors never carry
// connection passwords or HTTP header values.
//
// Levels: debug (every call, write and lease renewal), info (workflows
// created, resumed, finished; business failures of calls), warn (transient
// errors, lost leases), error (stuck workflows, bugs).
//
// Thread-safety: one logger may serve several runtimes (and a store's
// writer thread): lines are written whole, one at a time.
#ifndef WF_LOG_HPP
#define WF_LOG_HPP

#include <wf/observer.hpp>

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace wf {

enum class log_level : std::uint8_t { debug, info, warn, error };

std::string_view to_string(log_level l) noexcept;

struct log_options {
  /// Lines below this level are not written.
  log_level level = log_level::info;
  /// Where each line goes (without its newline). Null: standard error.
  std::function<void(std::string_view line)> sink{};
};

class json_logger final : public observer {
 public:
  explicit json_logger(log_options options = {});

  void workflow_created(const workflow_ref& w) override;
  void workflow_resumed(const workflow_ref& w, std::string_view previous_owner, bool takeover) override;
  void workflow_finished(const workflow_ref& w, workflow_status status, std::string_view detail) override;
  void attempt_started(const workflow_ref& w, std::uint32_t attempt, bool closing) override;
  void attempt_ended(const workflow_ref& w, std::uint32_t attempt, attempt_end how, std::string_view error,
                     std::optional<wall_clock::time_point> next_attempt) override;
  void call_started(const workflow_ref& w, const branch_context& call) override;
  void call_ended(const workflow_ref& w, const branch_context& call, call_end how, std::chrono::nanoseconds latency,
                  std::string_view error) override;
  void journal_written(const workflow_ref& w, std::size_t records, std::chrono::nanoseconds latency) override;
  void leases_renewed(std::size_t count, std::size_t lost) override;
  void lease_lost(const workflow_ref& w) override;
  void group_committed(std::size_t writes, std::chrono::nanoseconds latency) override;

 private:
  class line;
  bool wants(log_level l) const noexcept { return l >= options_.level; }
  void write(const line& l);

  log_options options_;
  std::mutex mutex_;
  std::map<std::string, std::string, std::less<>> failed_call_;  // gid -> the call that failed in this attempt
};

}  // namespace wf

#endif  // WF_LOG_HPP
