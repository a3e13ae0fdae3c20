#include <wf/metrics.hpp>

#include <cstdio>

namespace wf {

namespace {

const std::vector<double> latency_bounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                            0.1,    0.25,  0.5,    1,     2.5,  5,     10};
const std::vector<double> size_bounds = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};

double seconds(std::chrono::nanoseconds d) { return static_cast<double>(d.count()) / 1e9; }

// A label value as the text format wants it: backslash, double quote and
// newline escaped.
std::string escaped(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  return buf;
}

}  // namespace

void metrics::histogram::add(double v) {
  std::size_t i = 0;
  while (i < bounds.size() && v > bounds[i]) ++i;
  counts[i] += 1;
  sum += v;
  count += 1;
}

metrics::metrics() {
  auto counter = [this](const char* name, const char* help) { families_[name].help = help; };
  auto hist = [this](const char* name, const char* help, const std::vector<double>& bounds) {
    auto& f = families_[name];
    f.help = help;
    f.is_histogram = true;
    f.bounds = bounds;
  };
  counter("wf_workflows_created_total", "Workflows created by this process.");
  counter("wf_workflows_resumed_total", "Existing workflows claimed by this process to run them.");
  counter("wf_workflows_finished_total", "Workflows that ended here, by final status.");
  counter("wf_attempts_total", "Attempts (runs of a workflow's code over its journal), by how they ended.");
  counter("wf_calls_total", "Calls of branch actions and handlers, by how they ended.");
  hist("wf_call_duration_seconds", "Latency of calls of branch actions and handlers.", latency_bounds);
  hist("wf_journal_write_duration_seconds", "Latency of durable journal writes.", latency_bounds);
  hist("wf_journal_records_per_write", "Records carried by one journal write.", size_bounds);
  counter("wf_leases_renewed_total", "Leases renewed.");
  counter("wf_leases_lost_total", "Running workflows whose lease was lost to another runner.");
  hist("wf_store_group_commit_duration_seconds", "Latency of one group commit (PostgreSQL).", latency_bounds);
  hist("wf_store_group_commit_writes", "Writes and creations per group commit (PostgreSQL).", size_bounds);
}

void metrics::count(const std::string& name, labels l, double by) {
  std::lock_guard lock(mutex_);
  families_.at(name).counters[std::move(l)] += by;
}

void metrics::observe(const std::string& name, labels l, double value) {
  std::lock_guard lock(mutex_);
  auto& f = families_.at(name);
  auto [it, fresh] = f.histograms.try_emplace(std::move(l));
  if (fresh) {
    it->second.bounds = f.bounds;
    it->second.counts.assign(f.bounds.size() + 1, 0);
  }
  it->second.add(value);
}

void metrics::workflow_created(const workflow_ref& w) {
  count("wf_workflows_created_total", {{"workflow", std::string(w.name)}});
}

void metrics::workflow_resumed(const workflow_ref& w, std::string_view, bool takeover) {
  count("wf_workflows_resumed_total", {{"workflow", std::string(w.name)}, {"takeover", takeover ? "true" : "false"}});
}

void metrics::workflow_finished(const workflow_ref& w, workflow_status status, std::string_view) {
  count("wf_workflows_finished_total", {{"workflow", std::string(w.name)}, {"status", std::string(to_string(status))}});
}

void metrics::attempt_ended(const workflow_ref& w, std::uint32_t, attempt_end how, std::string_view,
                            std::optional<wall_clock::time_point>) {
  count("wf_attempts_total", {{"workflow", std::string(w.name)}, {"result", std::string(to_string(how))}});
}

void metrics::call_ended(const workflow_ref& w, const branch_context& call, call_end how,
                         std::chrono::nanoseconds latency, std::string_view) {
  labels l{{"workflow", std::string(w.name)}, {"branch", std::string(call.name)}, {"op", std::string(call.op)}};
  observe("wf_call_duration_seconds", l, seconds(latency));
  l.emplace_back("result", std::string(to_string(how)));
  count("wf_calls_total", std::move(l));
}

void metrics::journal_written(const workflow_ref&, std::size_t records, std::chrono::nanoseconds latency) {
  observe("wf_journal_write_duration_seconds", {}, seconds(latency));
  observe("wf_journal_records_per_write", {}, static_cast<double>(records));
}

void metrics::leases_renewed(std::size_t count_renewed, std::size_t) {
  count("wf_leases_renewed_total", {}, static_cast<double>(count_renewed));
}

void metrics::lease_lost(const workflow_ref&) { count("wf_leases_lost_total", {}); }

void metrics::group_committed(std::size_t writes, std::chrono::nanoseconds latency) {
  observe("wf_store_group_commit_duration_seconds", {}, seconds(latency));
  observe("wf_store_group_commit_writes", {}, static_cast<double>(writes));
}

std::string metrics::prometheus() const {
  auto render = [](const labels& l, const std::pair<std::string, std::string>* extra = nullptr) {
    if (l.empty() && !extra) return std::string();
    std::string out = "{";
    bool first = true;
    auto add = [&](const std::string& k, const std::string& v) {
      if (!first) out += ',';
      first = false;
      out += k + "=\"" + escaped(v) + "\"";
    };
    for (const auto& [k, v] : l) add(k, v);
    if (extra) add(extra->first, extra->second);
    return out + "}";
  };
  std::lock_guard lock(mutex_);
  std::string out;
  for (const auto& [name, f] : families_) {
    out += "# HELP " + name + " " + f.help + "\n";
    out += "# TYPE " + name + (f.is_histogram ? " histogram\n" : " counter\n");
    if (!f.is_histogram) {
      if (f.counters.empty() && name.find("lease") != std::string::npos) out += name + " 0\n";
      for (const auto& [l, v] : f.counters) out += name + render(l) + " " + number(v) + "\n";
      continue;
    }
    for (const auto& [l, h] : f.histograms) {
      std::uint64_t cumulative = 0;
      for (std::size_t i = 0; i <= h.bounds.size(); ++i) {
        cumulative += h.counts[i];
        const std::pair<std::string, std::string> le{"le", i < h.bounds.size() ? number(h.bounds[i]) : "+Inf"};
        out += name + "_bucket" + render(l, &le) + " " + std::to_string(cumulative) + "\n";
      }
      out += name + "_sum" + render(l) + " " + number(h.sum) + "\n";
      out += name + "_count" + render(l) + " " + std::to_string(h.count) + "\n";
    }
  }
  return out;
}

}  // namespace wf
