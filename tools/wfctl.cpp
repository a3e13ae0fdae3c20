// wfctl: find, inspect and act on the workflows of a wf database.
//
//   wfctl --db URL [--schema wf] list [--name N] [--status S] [--owner O]
//         [--created-from T] [--created-until T] [--after GID] [--limit N] [--count] [--json]
//   wfctl --db URL [--schema wf] show GID [--json]
//
// It opens the store without migrating it (postgres_options::migrate =
// false): the schema must be at this release's version. Exit status: 0 done,
// 1 an error (the database, a schema at another version), 2 a usage error,
// 3 no such workflow. See docs/operations.md, "wfctl".
#include "text.hpp"

#include <wf/postgres_store.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <optional>
#include <string>

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

constexpr int exit_error = 1;
constexpr int exit_usage = 2;
constexpr int exit_not_found = 3;

// Runs `a` to completion on a fresh io_context and returns its value.
template <class T>
T run(asio::awaitable<T> a) {
  asio::io_context io;
  std::optional<T> out;
  std::exception_ptr error;
  asio::co_spawn(io, std::move(a), [&](std::exception_ptr e, T v) {
    error = e;
    if (!e) out = std::move(v);
  });
  io.run();
  if (error) std::rethrow_exception(error);
  return std::move(*out);
}

// "2026-12-07T13:30:01.123Z"
std::string iso_time(wf::wall_clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char out[96];  // (room for any int GCC's format check can imagine)
  std::snprintf(out, sizeof out, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return out;
}

// "2026-12-07T13:30:01Z" or "...01.123Z" (UTC), or seconds since the epoch.
std::optional<wf::wall_clock::time_point> parse_time(const std::string& s) {
  std::tm tm{};
  int ms = 0;
  char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (end) {
    if (*end == '.') {
      int digits = 0;
      for (++end; *end >= '0' && *end <= '9'; ++end, ++digits)
        if (digits < 3) ms = ms * 10 + (*end - '0');
      for (; digits < 3; ++digits) ms *= 10;
    }
    if (*end == 'Z') ++end;
    if (*end != '\0' || tm.tm_year + 1900 < 1970 || tm.tm_year + 1900 > 2200) return std::nullopt;
    return wf::wall_clock::from_time_t(timegm(&tm)) + std::chrono::milliseconds(ms);
  }
  try {
    std::size_t used = 0;
    const long long secs = std::stoll(s, &used);
    if (used == s.size() && secs >= 0 && secs < 7258118400LL)  // up to 2200
      return wf::wall_clock::from_time_t(static_cast<std::time_t>(secs));
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

std::optional<wf::workflow_status> parse_status(const std::string& s) {
  for (auto st : {wf::workflow_status::running, wf::workflow_status::succeeded, wf::workflow_status::failed,
                  wf::workflow_status::stuck})
    if (wf::to_string(st) == s) return st;
  return std::nullopt;
}

// Bytes shown as text: UTF-8 as it is, other bytes escaped (always valid UTF-8).
std::string shown(const std::string& bytes, std::size_t max = std::string::npos) {
  auto text = wf::detail::storable_text(bytes);
  for (auto& c : text)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  if (text.size() > max) text = text.substr(0, max) + "...";
  return text;
}

json::object state_json(const wf::workflow_state& s) {
  json::object o{{"gid", s.gid},
                 {"name", s.name},
                 {"status", std::string(wf::to_string(s.status))},
                 {"epoch", s.epoch},
                 {"owner", s.owner},
                 {"attempts", s.attempts},
                 {"last_error", shown(s.last_error)},
                 {"created_at", iso_time(s.created_at)},
                 {"updated_at", iso_time(s.updated_at)},
                 {"next_attempt_at", iso_time(s.next_attempt_at)},
                 {"input", shown(s.input)}};
  if (s.finished()) o["result"] = shown(s.result);
  if (s.deadline) o["deadline"] = iso_time(*s.deadline);
  return o;
}

std::string branch_text(std::uint32_t b) {
  if (b == 0) return "-";
  auto t = std::to_string(b);
  return t.size() < 2 ? "0" + t : t;
}

// What a record says happened.
std::string outcome_of(const wf::journal_record& r) {
  switch (r.kind) {
    case wf::record_kind::decision:
      return r.failed ? "rollback" : "commit";
    case wf::record_kind::commit:
    case wf::record_kind::rollback:
    case wf::record_kind::finish:
      return "done";
    default:
      return r.pending ? "started" : r.failed ? "failed" : "ok";
  }
}

std::string ops_list(const std::vector<std::uint32_t>& ops) {
  std::string out;
  for (auto op : ops) out += (out.empty() ? "" : ",") + std::to_string(op);
  return out;
}

json::object record_json(const wf::journal_record& r) {
  json::object o{{"seq", r.seq},
                 {"kind", std::string(wf::to_string(r.kind))},
                 {"name", r.name},
                 {"op", r.op},
                 {"branch", branch_text(r.branch)},
                 {"outcome", outcome_of(r)},
                 {"failed", r.failed},
                 {"pending", r.pending},
                 {"payload", shown(r.payload)},
                 {"payload_bytes", r.payload.size()}};
  if (!r.in_flight.empty()) {
    json::array in_flight;
    for (auto op : r.in_flight) in_flight.push_back(op);
    o["in_flight"] = std::move(in_flight);
  }
  return o;
}

struct list_args {
  std::string name, status, owner, created_from, created_until, after;
  std::size_t limit = 50;
  bool count = false;
};

int list(wf::store& store, const list_args& a, bool as_json) {
  wf::workflow_query q;
  if (!a.name.empty()) q.name = a.name;
  if (!a.owner.empty()) q.owner = a.owner;
  if (!a.status.empty()) {
    q.status = parse_status(a.status);
    if (!q.status) {
      std::cerr << "wfctl: --status must be running, succeeded, failed or stuck, not '" << a.status << "'\n";
      return exit_usage;
    }
  }
  for (auto [text, field] : {std::pair{&a.created_from, &q.created_from}, std::pair{&a.created_until, &q.created_until}}) {
    if (text->empty()) continue;
    *field = parse_time(*text);
    if (!*field) {
      std::cerr << "wfctl: a time is 2026-12-07T13:30:00Z (UTC, 1970 to 2200) or seconds since 1970, not '" << *text
                << "'\n";
      return exit_usage;
    }
  }
  q.after = a.after;
  q.limit = a.limit;
  q.count = a.count;
  const auto page = run(store.admin()->list(q));
  if (as_json) {
    json::array workflows;
    for (const auto& s : page.workflows) workflows.push_back(state_json(s));
    json::object o{{"workflows", std::move(workflows)}, {"next", page.next}};
    if (page.total) o["total"] = *page.total;
    std::cout << json::serialize(o) << "\n";
    return 0;
  }
  std::printf("%-32s %-20s %-10s %8s  %-24s %s\n", "GID", "NAME", "STATUS", "ATTEMPTS", "UPDATED", "RESULT / LAST ERROR");
  for (const auto& s : page.workflows) {
    const auto note = s.finished() ? shown(s.result, 60) : shown(s.last_error, 60);
    std::printf("%-32s %-20s %-10s %8u  %-24s %s\n", shown(s.gid).c_str(), shown(s.name).c_str(),
                std::string(wf::to_string(s.status)).c_str(), s.attempts, iso_time(s.updated_at).c_str(), note.c_str());
  }
  if (page.total) std::printf("%llu matching\n", static_cast<unsigned long long>(*page.total));
  if (!page.next.empty()) std::printf("more: --after %s\n", page.next.c_str());
  return 0;
}

int show(wf::store& store, const std::string& gid, bool as_json) {
  const auto state = run(store.find(gid));
  if (!state) {
    std::cerr << "wfctl: no workflow '" << gid << "'\n";
    return exit_not_found;
  }
  const auto journal = run(store.journal(gid));
  if (as_json) {
    json::array records;
    for (const auto& r : journal) records.push_back(record_json(r));
    std::cout << json::serialize(json::object{{"workflow", state_json(*state)}, {"journal", std::move(records)}}) << "\n";
    return 0;
  }
  const auto& s = *state;
  std::printf("%s  %s  %s\n", shown(s.gid).c_str(), shown(s.name).c_str(), std::string(wf::to_string(s.status)).c_str());
  std::printf("  created %s, updated %s; epoch %llu, owner '%s', %u attempt(s)\n", iso_time(s.created_at).c_str(),
              iso_time(s.updated_at).c_str(), static_cast<unsigned long long>(s.epoch), shown(s.owner).c_str(),
              s.attempts);
  std::printf("  input: %s\n", shown(s.input, 200).c_str());
  if (s.finished()) std::printf("  %s: %s\n", s.status == wf::workflow_status::succeeded ? "result" : "reason", shown(s.result, 200).c_str());
  if (!s.last_error.empty()) std::printf("  last error: %s\n", shown(s.last_error, 200).c_str());
  if (!s.finished()) std::printf("  next attempt: %s\n", iso_time(s.next_attempt_at).c_str());
  std::printf("\n  %4s  %-10s %-24s %4s %6s  %-9s %s\n", "SEQ", "RECORD", "NAME", "OP", "BRANCH", "OUTCOME", "PAYLOAD");
  for (const auto& r : journal) {
    std::string note = shown(r.payload, 60);
    if (!r.in_flight.empty()) note = "in flight: " + ops_list(r.in_flight) + (note.empty() ? "" : "; " + note);
    std::printf("  %4u  %-10s %-24s %4s %6s  %-9s %s\n", r.seq, std::string(wf::to_string(r.kind)).c_str(),
                shown(r.name, 24).c_str(), r.op ? std::to_string(r.op).c_str() : "-", branch_text(r.branch).c_str(),
                outcome_of(r).c_str(), note.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"wfctl: find, inspect and act on the workflows of a wf database"};
  app.require_subcommand(1);
  std::string db, schema = "wf";
  bool as_json = false;
  app.add_option("--db", db, "PostgreSQL connection string (or set WF_DB)")->envname("WF_DB");
  app.add_option("--schema", schema, "the service's wf schema")->capture_default_str();
  app.add_flag("--json", as_json, "print JSON instead of text");

  list_args la;
  auto* list_cmd = app.add_subcommand("list", "list workflows, a page at a time, in gid order");
  list_cmd->add_option("--name", la.name, "only workflows of this name");
  list_cmd->add_option("--status", la.status, "running, succeeded, failed or stuck");
  list_cmd->add_option("--owner", la.owner, "only those a runner holds (its executor id)");
  list_cmd->add_option("--created-from", la.created_from, "created at or after (2026-12-07T13:30:00Z)");
  list_cmd->add_option("--created-until", la.created_until, "created before");
  list_cmd->add_option("--after", la.after, "the page after this gid (what the last page says under 'more')");
  list_cmd->add_option("--limit", la.limit, "page size")->check(CLI::Range(std::size_t{1}, wf::workflow_query::max_limit))
      ->capture_default_str();
  list_cmd->add_flag("--count", la.count, "also count every match");
  list_cmd->add_flag("--json", as_json, "print JSON instead of text");

  std::string gid;
  auto* show_cmd = app.add_subcommand("show", "a workflow's state and its journal, record by record");
  show_cmd->add_option("gid", gid, "the workflow id")->required();
  show_cmd->add_flag("--json", as_json, "print JSON instead of text");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints the help or the error
    return code == 0 ? 0 : exit_usage;
  }
  if (db.empty()) {
    std::cerr << "wfctl: --db (or WF_DB) is required\n";
    return exit_usage;
  }
  try {
    wf::postgres_options o;
    o.connection = db;
    o.schema = schema;
    o.migrate = false;  // a tool looks at a service's schema; it never changes its version
    auto store = wf::postgres_store::open(o);
    if (*list_cmd) return list(*store, la, as_json);
    return show(*store, gid, as_json);
  } catch (const std::exception& e) {
    std::cerr << "wfctl: " << e.what() << "\n";
    return exit_error;
  }
}
