// wf/metrics.hpp - Prometheus metrics from what a runtime reports.
//
//     auto metrics = std::make_shared<wf::metrics>();
//     wf::runtime rt(io.get_executor(), store, {.observer = metrics});
//     auto pg = wf::postgres_store::open({..., .observer = metrics});   // group commits too
//     ...
//     std::string text = metrics->prometheus();   // serve it on /metrics
//
// Counters and histograms (the Prometheus text exposition format 0.0.4):
//   wf_workflows_created_total{workflow}
//   wf_workflows_resumed_total{workflow,takeover}         takeover: "true" when another runner held it
//   wf_workflows_finished_total{workflow,status}          succeeded, failed, stuck
//   wf_attempts_total{workflow,result}                    finished, transient, stuck, lease_lost, stopped
//   wf_calls_total{workflow,branch,op,result}             ok, failure, ongoing, transient, bug
//   wf_call_duration_seconds{workflow,branch,op}          histogram
//   wf_journal_write_duration_seconds                     histogram
//   wf_journal_records_per_write                          histogram
//   wf_leases_renewed_total, wf_leases_lost_total
//   wf_store_group_commit_duration_seconds                histogram (PostgreSQL)
//   wf_store_group_commit_writes                          histogram: writes per group commit (PostgreSQL)
// Label values are escaped as the format requires.
//
// Thread-safety: one object may serve several runtimes and a store's writer thread.
#ifndef WF_METRICS_HPP
#define WF_METRICS_HPP

#include <wf/observer.hpp>

#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace wf {

class metrics final : public observer {
 public:
  metrics();

  /// Everything counted so far, in the Prometheus text format.
  std::string prometheus() const;

  void workflow_created(const workflow_ref& w) override;
  void workflow_resumed(const workflow_ref& w, std::string_view previous_owner, bool takeover) override;
  void workflow_finished(const workflow_ref& w, workflow_status status, std::string_view detail) override;
  void attempt_ended(const workflow_ref& w, std::uint32_t attempt, attempt_end how, std::string_view error,
                     std::optional<wall_clock::time_point> next_attempt) override;
  void call_ended(const workflow_ref& w, const branch_context& call, call_end how, std::chrono::nanoseconds latency,
                  std::string_view error) override;
  void journal_written(const workflow_ref& w, std::size_t records, std::chrono::nanoseconds latency) override;
  void leases_renewed(std::size_t count, std::size_t lost) override;
  void lease_lost(const workflow_ref& w) override;
  void group_committed(std::size_t writes, std::chrono::nanoseconds latency) override;

  struct histogram {
    std::vector<double> bounds;        // upper bounds, ascending (+Inf implied)
    std::vector<std::uint64_t> counts;  // per bucket (not cumulative), one more than bounds
    double sum = 0;
    std::uint64_t count = 0;
    void add(double v);
  };

 private:
  using labels = std::vector<std::pair<std::string, std::string>>;
  struct family {
    std::string help;
    bool is_histogram = false;
    std::vector<double> bounds;
    std::map<labels, double> counters;
    std::map<labels, histogram> histograms;
  };
  void count(const std::string& name, labels l, double by = 1);
  void observe(const std::string& name, labels l, double value);

  mutable std::mutex mutex_;
  std::map<std::string, family> families_;
};

}  // namespace wf

#endif  // WF_METRICS_HPP
