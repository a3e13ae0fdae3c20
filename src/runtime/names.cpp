// The plain functions of the core: names of kinds and statuses, and error
// constructors. Kept out of runtime.cpp (coroutines, Asio) so that the replay
// engine links without it (the fuzz targets, fuzz/).
#include <wf/errors.hpp>
#include <wf/journal.hpp>

#include <functional>

namespace wf {

std::string_view to_string(record_kind k) noexcept {
  switch (k) {
    case record_kind::branch: return "branch";
    case record_kind::step: return "step";
    case record_kind::value: return "value";
    case record_kind::decision: return "decision";
    case record_kind::commit: return "commit";
    case record_kind::rollback: return "rollback";
    case record_kind::finish: return "finish";
    case record_kind::completion: return "completion";
  }
  return "unknown";
}

std::string_view to_string(workflow_status s) noexcept {
  switch (s) {
    case workflow_status::running: return "running";
    case workflow_status::succeeded: return "succeeded";
    case workflow_status::failed: return "failed";
    case workflow_status::stuck: return "stuck";
  }
  return "unknown";
}

nondeterminism_error::nondeterminism_error(std::string gid, std::string expected, std::string recorded)
    : std::logic_error("wf: non-determinism in workflow '" + gid + "': the code reached " + expected +
                       " but the journal holds " + recorded),
      gid_(std::move(gid)),
      expected_(std::move(expected)),
      recorded_(std::move(recorded)) {}

}  // namespace wf

namespace wf {

error_kind classify(const std::exception_ptr& e) noexcept {
  if (!e) return error_kind::transient;
  try {
    std::rethrow_exception(e);
  } catch (const failure&) {
    return error_kind::business;
  } catch (const ongoing&) {
    return error_kind::transient;
  } catch (const decode_error&) {
    return error_kind::bug;
  } catch (const std::logic_error&) {
    return error_kind::bug;
  } catch (const std::bad_function_call&) {
    return error_kind::bug;
  } catch (...) {
    return error_kind::transient;
  }
}

}  // namespace wf

#include <wf/observer.hpp>

namespace wf {

std::string_view to_string(attempt_end e) noexcept {
  switch (e) {
    case attempt_end::finished: return "finished";
    case attempt_end::transient: return "transient";
    case attempt_end::stuck: return "stuck";
    case attempt_end::lease_lost: return "lease_lost";
    case attempt_end::stopped: return "stopped";
  }
  return "unknown";
}

std::string_view to_string(call_end e) noexcept {
  switch (e) {
    case call_end::ok: return "ok";
    case call_end::failure: return "failure";
    case call_end::ongoing: return "ongoing";
    case call_end::transient: return "transient";
    case call_end::bug: return "bug";
  }
  return "unknown";
}

namespace {
// Calls each observer in turn; one that throws does not keep the others from hearing.
class fan_out final : public observer {
 public:
  explicit fan_out(std::vector<std::shared_ptr<observer>> all) : all_(std::move(all)) {}

  void workflow_created(const workflow_ref& w) override {
    each([&](observer& o) { o.workflow_created(w); });
  }
  void workflow_resumed(const workflow_ref& w, std::string_view previous_owner, bool takeover) override {
    each([&](observer& o) { o.workflow_resumed(w, previous_owner, takeover); });
  }
  void workflow_finished(const workflow_ref& w, workflow_status s, std::string_view detail) override {
    each([&](observer& o) { o.workflow_finished(w, s, detail); });
  }
  void attempt_started(const workflow_ref& w, std::uint32_t attempt, bool closing) override {
    each([&](observer& o) { o.attempt_started(w, attempt, closing); });
  }
  void attempt_ended(const workflow_ref& w, std::uint32_t attempt, attempt_end how, std::string_view error,
                     std::optional<wall_clock::time_point> next_attempt) override {
    each([&](observer& o) { o.attempt_ended(w, attempt, how, error, next_attempt); });
  }
  void call_started(const workflow_ref& w, const branch_context& call) override {
    each([&](observer& o) { o.call_started(w, call); });
  }
  void call_ended(const workflow_ref& w, const branch_context& call, call_end how, std::chrono::nanoseconds latency,
                  std::string_view error) override {
    each([&](observer& o) { o.call_ended(w, call, how, latency, error); });
  }
  void journal_written(const workflow_ref& w, std::size_t records, std::chrono::nanoseconds latency) override {
    each([&](observer& o) { o.journal_written(w, records, latency); });
  }
  void leases_renewed(std::size_t count, std::size_t lost) override {
    each([&](observer& o) { o.leases_renewed(count, lost); });
  }
  void lease_lost(const workflow_ref& w) override {
    each([&](observer& o) { o.lease_lost(w); });
  }
  void group_committed(std::size_t writes, std::chrono::nanoseconds latency) override {
    each([&](observer& o) { o.group_committed(writes, latency); });
  }

 private:
  template <class Hook>
  void each(Hook&& hook) {
    for (const auto& o : all_) {
      try {
        hook(*o);
      } catch (...) {
      }
    }
  }
  std::vector<std::shared_ptr<observer>> all_;
};
}  // namespace

std::shared_ptr<observer> observe_all(std::vector<std::shared_ptr<observer>> all) {
  std::erase(all, nullptr);
  return std::make_shared<fan_out>(std::move(all));
}

}  // namespace wf
