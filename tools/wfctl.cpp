// wfctl: find, inspect and act on the workflows of a wf database.
//
//   wfctl (--db URL [--schema wf] | --server HOST:PORT [--token T] [--tls-ca PEM]) COMMAND [--json]
//     list [--name N] [--status S] [--owner O] [--created-from T] [--created-until T]
//          [--after GID] [--limit N] [--count]
//     show GID
//   wfctl --server HOST:PORT [--token T] [--tls-ca PEM] COMMAND [--json]
//     resume GID
//     purge --before T [--limit N]
//     send GID TOPIC PAYLOAD --key K
//
// With --db it opens the store without migrating it (postgres_options::migrate
// = false): the schema must be at this release's version. With --server it
// calls the control API (proto/wf/control.proto) of wf-server or of a
// service's wf::control_server; what changes a workflow needs a server.
// Exit status: 0 done, 1 an error (the database, the server, a schema at
// another version), 2 a usage error, 3 no such workflow, 4 refused by the
// server (no token, a wrong one, a read-only one). See docs/operations.md.
#include "control/convert.hpp"
#include "control.grpc.pb.h"

#include <wf/postgres_store.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>

namespace asio = boost::asio;
namespace json = boost::json;
namespace v1 = wf::control::v1;

namespace {

constexpr int exit_error = 1;
constexpr int exit_usage = 2;
constexpr int exit_not_found = 3;
constexpr int exit_refused = 4;

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
std::string iso_time(std::int64_t ms) {
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

// Says what a time looks like; the usage error's exit status.
int bad_time(const std::string& text) {
  std::cerr << "wfctl: a time is 2026-12-07T13:30:00Z (UTC, 1970 to 2200) or seconds since 1970, not '" << text << "'\n";
  return exit_usage;
}

std::optional<v1::Status> parse_status(const std::string& s) {
  for (auto st : {v1::RUNNING, v1::SUCCEEDED, v1::FAILED, v1::STUCK})
    if (wf::control::status_name(st) == s) return st;
  return std::nullopt;
}

// Text (already valid UTF-8, other bytes escaped) on one line, cut at `max`.
std::string shown(std::string text, std::size_t max = std::string::npos) {
  for (auto& c : text)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  if (text.size() > max) text = text.substr(0, max) + "...";
  return text;
}

bool finished(const v1::Workflow& w) { return w.status() != v1::RUNNING; }

json::object state_json(const v1::Workflow& s) {
  json::object o{{"gid", s.gid()},
                 {"name", s.name()},
                 {"status", wf::control::status_name(s.status())},
                 {"epoch", s.epoch()},
                 {"owner", s.owner()},
                 {"attempts", s.attempts()},
                 {"last_error", shown(s.last_error())},
                 {"created_at", iso_time(s.created_at_ms())},
                 {"updated_at", iso_time(s.updated_at_ms())},
                 {"next_attempt_at", iso_time(s.next_attempt_at_ms())},
                 {"input", shown(s.input_text())}};
  if (finished(s)) o["result"] = shown(s.result_text());
  if (s.deadline_ms() != 0) o["deadline"] = iso_time(s.deadline_ms());
  return o;
}

std::string ops_list(const google::protobuf::RepeatedField<std::uint32_t>& ops) {
  std::string out;
  for (auto op : ops) out += (out.empty() ? "" : ",") + std::to_string(op);
  return out;
}

json::object record_json(const v1::JournalRecord& r) {
  json::object o{{"seq", r.seq()},
                 {"kind", r.kind()},
                 {"name", r.name()},
                 {"op", r.op()},
                 {"branch", r.branch()},
                 {"outcome", r.outcome()},
                 {"failed", r.failed()},
                 {"pending", r.pending()},
                 {"payload", shown(r.payload_text())},
                 {"payload_bytes", r.payload().size()}};
  if (r.in_flight_size() > 0) {
    json::array in_flight;
    for (auto op : r.in_flight()) in_flight.push_back(op);
    o["in_flight"] = std::move(in_flight);
  }
  return o;
}

// A failure that has its exit status.
struct exit_error_t : std::runtime_error {
  exit_error_t(int code, const std::string& what) : std::runtime_error(what), code(code) {}
  int code;
};

// Where the workflows are: the database itself (list and show only), or a
// control server (everything).
class source {
 public:
  virtual ~source() = default;
  virtual v1::ListWorkflowsResponse list(const v1::ListWorkflowsRequest& r) = 0;
  virtual v1::GetWorkflowResponse get(const std::string& gid) = 0;  // throws exit_error_t(exit_not_found)
  virtual v1::Control::Stub* control() { return nullptr; }
};

class database_source final : public source {
 public:
  explicit database_source(std::shared_ptr<wf::store> store) : store_(std::move(store)) {}
  v1::ListWorkflowsResponse list(const v1::ListWorkflowsRequest& r) override {
    const auto page = run(store_->admin()->list(wf::control::from_proto(r)));
    v1::ListWorkflowsResponse out;
    for (const auto& s : page.workflows) wf::control::to_proto(s, *out.add_workflows());
    out.set_next(page.next);
    if (page.total) {
      out.set_has_total(true);
      out.set_total(*page.total);
    }
    return out;
  }
  v1::GetWorkflowResponse get(const std::string& gid) override {
    const auto state = run(store_->find(gid));
    if (!state) throw exit_error_t(exit_not_found, "no workflow '" + gid + "'");
    v1::GetWorkflowResponse out;
    wf::control::to_proto(*state, *out.mutable_workflow());
    for (const auto& r : run(store_->journal(gid))) wf::control::to_proto(r, *out.add_journal());
    return out;
  }

 private:
  std::shared_ptr<wf::store> store_;
};

class server_source final : public source {
 public:
  server_source(const std::string& target, std::string token, const std::string& ca_file) : token_(std::move(token)) {
    std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
    if (!ca_file.empty()) {
      std::ifstream f(ca_file);
      if (!f) throw exit_error_t(exit_usage, "cannot read --tls-ca '" + ca_file + "'");
      std::stringstream pem;
      pem << f.rdbuf();
      grpc::SslCredentialsOptions ssl;
      ssl.pem_root_certs = pem.str();
      creds = grpc::SslCredentials(ssl);
    }
    stub_ = v1::Control::NewStub(grpc::CreateChannel(target, creds));
  }

  // Calls `method`; a status other than OK becomes an exit_error_t.
  template <class Req, class Resp, class Method>
  Resp call(Method method, const Req& req) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    if (!token_.empty()) ctx.AddMetadata("authorization", "Bearer " + token_);
    Resp resp;
    const auto status = ((*stub_).*method)(&ctx, req, &resp);
    if (status.ok()) return resp;
    const auto code = status.error_code();
    const int exit = code == grpc::StatusCode::NOT_FOUND                                              ? exit_not_found
                     : code == grpc::StatusCode::UNAUTHENTICATED || code == grpc::StatusCode::PERMISSION_DENIED ? exit_refused
                     : code == grpc::StatusCode::INVALID_ARGUMENT                                       ? exit_usage
                                                                                                          : exit_error;
    throw exit_error_t(exit, status.error_message().empty() ? "the server answered " + std::to_string(code)
                                                            : status.error_message());
  }
  v1::ListWorkflowsResponse list(const v1::ListWorkflowsRequest& r) override {
    return call<v1::ListWorkflowsRequest, v1::ListWorkflowsResponse>(&v1::Control::Stub::ListWorkflows, r);
  }
  v1::GetWorkflowResponse get(const std::string& gid) override {
    v1::GetWorkflowRequest r;
    r.set_gid(gid);
    return call<v1::GetWorkflowRequest, v1::GetWorkflowResponse>(&v1::Control::Stub::GetWorkflow, r);
  }

 private:
  std::string token_;
  std::unique_ptr<v1::Control::Stub> stub_;
};

struct list_args {
  std::string name, status, owner, created_from, created_until, after;
  std::size_t limit = 50;
  bool count = false;
};

int list(source& from, const list_args& a, bool as_json) {
  v1::ListWorkflowsRequest q;
  q.set_name(a.name);
  q.set_owner(a.owner);
  if (!a.status.empty()) {
    const auto st = parse_status(a.status);
    if (!st) {
      std::cerr << "wfctl: --status must be running, succeeded, failed or stuck, not '" << a.status << "'\n";
      return exit_usage;
    }
    q.set_status(*st);
  }
  std::optional<wf::wall_clock::time_point> from_t, until_t;
  for (auto [text, field] : {std::pair{&a.created_from, &from_t}, std::pair{&a.created_until, &until_t}}) {
    if (text->empty()) continue;
    *field = parse_time(*text);
    if (!*field) {
      return bad_time(*text);
    }
  }
  // (1970-01-01T00:00:00Z itself is "no bound" to the API: a millisecond later is the same filter.)
  if (from_t) q.set_created_from_ms(std::max<std::int64_t>(wf::control::to_ms(*from_t), 1));
  if (until_t) q.set_created_until_ms(std::max<std::int64_t>(wf::control::to_ms(*until_t), 1));
  q.set_after(a.after);
  q.set_limit(static_cast<std::uint32_t>(a.limit));
  q.set_count(a.count);
  const auto page = from.list(q);
  if (as_json) {
    json::array workflows;
    for (const auto& s : page.workflows()) workflows.push_back(state_json(s));
    json::object o{{"workflows", std::move(workflows)}, {"next", page.next()}};
    if (page.has_total()) o["total"] = page.total();
    std::cout << json::serialize(o) << "\n";
    return 0;
  }
  std::printf("%-32s %-20s %-10s %8s  %-24s %s\n", "GID", "NAME", "STATUS", "ATTEMPTS", "UPDATED", "RESULT / LAST ERROR");
  for (const auto& s : page.workflows()) {
    const auto note = finished(s) ? shown(s.result_text(), 60) : shown(s.last_error(), 60);
    std::printf("%-32s %-20s %-10s %8u  %-24s %s\n", shown(s.gid()).c_str(), shown(s.name()).c_str(),
                wf::control::status_name(s.status()).c_str(), s.attempts(), iso_time(s.updated_at_ms()).c_str(),
                note.c_str());
  }
  if (page.has_total()) std::printf("%llu matching\n", static_cast<unsigned long long>(page.total()));
  if (!page.next().empty()) std::printf("more: --after %s\n", page.next().c_str());
  return 0;
}

int show(source& from, const std::string& gid, bool as_json) {
  const auto got = from.get(gid);
  if (as_json) {
    json::array records;
    for (const auto& r : got.journal()) records.push_back(record_json(r));
    std::cout << json::serialize(json::object{{"workflow", state_json(got.workflow())}, {"journal", std::move(records)}})
              << "\n";
    return 0;
  }
  const auto& s = got.workflow();
  std::printf("%s  %s  %s\n", shown(s.gid()).c_str(), shown(s.name()).c_str(), wf::control::status_name(s.status()).c_str());
  std::printf("  created %s, updated %s; epoch %llu, owner '%s', %u attempt(s)\n", iso_time(s.created_at_ms()).c_str(),
              iso_time(s.updated_at_ms()).c_str(), static_cast<unsigned long long>(s.epoch()), shown(s.owner()).c_str(),
              s.attempts());
  std::printf("  input: %s\n", shown(s.input_text(), 200).c_str());
  if (finished(s))
    std::printf("  %s: %s\n", s.status() == v1::SUCCEEDED ? "result" : "reason", shown(s.result_text(), 200).c_str());
  if (!s.last_error().empty()) std::printf("  last error: %s\n", shown(s.last_error(), 200).c_str());
  if (!finished(s)) std::printf("  next attempt: %s\n", iso_time(s.next_attempt_at_ms()).c_str());
  std::printf("\n  %4s  %-10s %-24s %4s %6s  %-9s %s\n", "SEQ", "RECORD", "NAME", "OP", "BRANCH", "OUTCOME", "PAYLOAD");
  for (const auto& r : got.journal()) {
    std::string note = shown(r.payload_text(), 60);
    if (r.in_flight_size() > 0) note = "in flight: " + ops_list(r.in_flight()) + (note.empty() ? "" : "; " + note);
    std::printf("  %4u  %-10s %-24s %4s %6s  %-9s %s\n", r.seq(), r.kind().c_str(), shown(r.name(), 24).c_str(),
                r.op() ? std::to_string(r.op()).c_str() : "-", r.branch().empty() ? "-" : r.branch().c_str(),
                r.outcome().c_str(), note.c_str());
  }
  return 0;
}

// What an action prints: its answer as JSON, or a line of text.
void said(bool as_json, json::object o, const std::string& text) {
  if (as_json)
    std::cout << json::serialize(o) << "\n";
  else
    std::cout << text << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"wfctl: find, inspect and act on the workflows of a wf database"};
  app.require_subcommand(1);
  std::string db, schema = "wf", server, token, tls_ca;
  bool as_json = false;
  auto* db_opt = app.add_option("--db", db, "PostgreSQL connection string (or set WF_DB): list and show")->envname("WF_DB");
  app.add_option("--schema", schema, "the service's wf schema (with --db)")->capture_default_str();
  auto* server_opt = app.add_option("--server", server, "a control server, host:port (or set WF_SERVER)")->envname("WF_SERVER");
  app.add_option("--token", token, "the server's bearer token (or set WF_TOKEN)")->envname("WF_TOKEN");
  app.add_option("--tls-ca", tls_ca, "TLS to the server, trusting this PEM file's certificates");
  db_opt->excludes(server_opt);
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

  auto* resume_cmd = app.add_subcommand("resume", "run a stuck workflow again from its journal (--server)");
  resume_cmd->add_option("gid", gid, "the workflow id")->required();
  resume_cmd->add_flag("--json", as_json, "print JSON instead of text");

  std::string before;
  std::uint32_t purge_limit = 1000;
  auto* purge_cmd = app.add_subcommand("purge", "delete finished workflows and their journals (--server)");
  purge_cmd->add_option("--before", before, "last updated before this time (2026-12-07T13:30:00Z)")->required();
  purge_cmd->add_option("--limit", purge_limit, "at most this many")->check(CLI::Range(1u, 10000u))->capture_default_str();
  purge_cmd->add_flag("--json", as_json, "print JSON instead of text");

  std::string topic, payload, key;
  auto* send_cmd = app.add_subcommand("send", "put a message in a workflow's inbox (--server)");
  send_cmd->add_option("gid", gid, "the workflow id")->required();
  send_cmd->add_option("topic", topic, "the topic its code receives on")->required();
  send_cmd->add_option("payload", payload, "the message's bytes")->required();
  send_cmd->add_option("--key", key, "its idempotency key: sent again with the same key, it is dropped")->required();
  send_cmd->add_flag("--json", as_json, "print JSON instead of text");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints the help or the error
    return code == 0 ? 0 : exit_usage;
  }
  const bool changes = *resume_cmd || *purge_cmd || *send_cmd;
  if (server.empty() && (changes || db.empty())) {
    std::cerr << (changes ? "wfctl: this command needs --server (or WF_SERVER): a control server makes changes\n"
                          : "wfctl: --db (or WF_DB) or --server (or WF_SERVER) is required\n");
    return exit_usage;
  }
  try {
    std::unique_ptr<source> from;
    server_source* control = nullptr;
    if (!server.empty()) {
      auto s = std::make_unique<server_source>(server, token, tls_ca);
      control = s.get();
      from = std::move(s);
    } else {
      wf::postgres_options o;
      o.connection = db;
      o.schema = schema;
      o.migrate = false;  // a tool looks at a service's schema; it never changes its version
      from = std::make_unique<database_source>(wf::postgres_store::open(o));
    }
    if (*list_cmd) return list(*from, la, as_json);
    if (*show_cmd) return show(*from, gid, as_json);
    if (*resume_cmd) {
      v1::ResumeWorkflowRequest r;
      r.set_gid(gid);
      const auto a = control->call<v1::ResumeWorkflowRequest, v1::ResumeWorkflowResponse>(
          &v1::Control::Stub::ResumeWorkflow, r);
      said(as_json, {{"gid", gid}, {"resumed", a.resumed()}},
           a.resumed() ? "resumed " + gid : gid + " is not stuck: nothing done");
      return 0;
    }
    if (*purge_cmd) {
      const auto t = parse_time(before);
      if (!t) {
        return bad_time(before);
      }
      v1::PurgeWorkflowsRequest r;
      r.set_before_ms(wf::control::to_ms(*t));
      r.set_limit(purge_limit);
      const auto a = control->call<v1::PurgeWorkflowsRequest, v1::PurgeWorkflowsResponse>(
          &v1::Control::Stub::PurgeWorkflows, r);
      said(as_json, {{"purged", a.purged()}}, "purged " + std::to_string(a.purged()) + " workflow(s)");
      return 0;
    }
    v1::SendMessageRequest r;
    r.set_gid(gid);
    r.set_topic(topic);
    r.set_payload(payload);
    r.set_key(key);
    const auto a = control->call<v1::SendMessageRequest, v1::SendMessageResponse>(&v1::Control::Stub::SendMessage, r);
    said(as_json, {{"gid", gid}, {"outcome", a.outcome()}}, a.outcome() + ": " + gid);
    return 0;
  } catch (const exit_error_t& e) {
    std::cerr << "wfctl: " << e.what() << "\n";
    return e.code;
  } catch (const std::invalid_argument& e) {
    std::cerr << "wfctl: " << e.what() << "\n";
    return exit_usage;
  } catch (const std::exception& e) {
    std::cerr << "wfctl: " << e.what() << "\n";
    return exit_error;
  }
}
