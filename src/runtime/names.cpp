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
