// The participant's barrier (see wf/barrier.hpp and docs/participants.md).
#include "barrier_sql.hpp"
#include "schema.hpp"
#include "../../text.hpp"

#include <wf/barrier.hpp>

#include <boost/url/encoding_opts.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/parse_query.hpp>
#include <boost/url/params_view.hpp>

#include <array>
#include <cstdio>
#include <optional>
#include <stdexcept>

namespace wf {
namespace {

// The fields of barrier_info, in this order, and their column widths in the
// table (DTM's, which a shared table may have been created with).
constexpr std::size_t n_fields = 4;
using field_names = std::array<const char*, n_fields>;
constexpr field_names query_names = {"trans_type", "gid", "branch_id", "op"};
constexpr field_names metadata_names = {"dtm-trans_type", "dtm-gid", "dtm-branch_id", "dtm-op"};
constexpr field_names struct_names = {"barrier_info.trans_type", "barrier_info.gid", "barrier_info.branch_id",
                                      "barrier_info.op"};
constexpr std::array<std::size_t, n_fields> max_chars = {45, 128, 128, 45};

// What wf's clients send (wf/workflow.hpp: action, rollback, commit, finish)
// and what DTM sends for TCC and sagas. DTM's "msg" is left out: its duplicate
// is an error, not a success.
constexpr std::array<std::string_view, 8> known_ops = {"action", "rollback", "commit",  "finish",
                                                       "try",    "confirm",  "cancel",  "compensate"};

// The op a compensating op undoes; empty for the others.
std::string_view origin_of(std::string_view op) {
  if (op == "rollback" || op == "compensate") return "action";
  if (op == "cancel") return "try";
  return {};
}

[[noreturn]] void invalid(const std::string& what) { throw std::invalid_argument("wf::barrier: " + what); }

// Characters as varchar(n) counts them (the database is UTF-8; `s` is valid UTF-8).
std::size_t utf8_length(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string shown(std::string_view s) {
  constexpr std::size_t max = 48;
  return "'" + std::string(s.substr(0, max)) + (s.size() > max ? "...'" : "'");
}

void validate(const std::array<std::string, n_fields>& v, const field_names& names, const std::string& kind) {
  for (std::size_t i = 0; i < n_fields; ++i) {
    const std::string name = kind + names[i];
    if (v[i].empty()) invalid(name + " is empty");
    // The table's columns are text in a UTF-8 database: PostgreSQL would refuse the row.
    if (const auto problem = detail::name_problem(v[i], std::string::npos); !problem.empty())
      invalid(name + " " + problem);
    if (utf8_length(v[i]) > max_chars[i])
      invalid(name + " is longer than " + std::to_string(max_chars[i]) + " characters");
  }
  const std::string& op = v[3];
  bool known = false;
  for (auto k : known_ops) known = known || op == k;
  if (!known)
    invalid(kind + names[3] + " " + shown(op) +
            " is not one of action, rollback, commit, finish, try, confirm, cancel, compensate");
}

// Collects the four fields from (name, value) pairs, whatever else comes with them.
class collector {
 public:
  collector(const field_names& names, std::string kind) : names_(names), kind_(std::move(kind)) {}

  void offer(std::string_view name, std::string value) {
    for (std::size_t i = 0; i < n_fields; ++i) {
      if (name != names_[i]) continue;
      if (found_[i] && *found_[i] != value) invalid(kind_ + names_[i] + " is given twice, with different values");
      found_[i] = std::move(value);
    }
  }

  barrier_info finish() {
    std::array<std::string, n_fields> v;
    for (std::size_t i = 0; i < n_fields; ++i) {
      if (!found_[i]) invalid(kind_ + names_[i] + " is missing");
      v[i] = std::move(*found_[i]);
    }
    validate(v, names_, kind_);
    return barrier_info{std::move(v[0]), std::move(v[1]), std::move(v[2]), std::move(v[3])};
  }

 private:
  const field_names& names_;
  std::string kind_;
  std::array<std::optional<std::string>, n_fields> found_;
};

struct table_name {
  std::string schema;  // empty: the search path decides
  std::string table;

  // valid_identifier() leaves nothing that could escape the quotes.
  std::string quoted() const {
    using detail::pg::quoted_identifier;
    return (schema.empty() ? "" : quoted_identifier(schema) + ".") + quoted_identifier(table);
  }
};

table_name checked_table(const std::string& name) {
  table_name t;
  const auto dot = name.find('.');
  if (dot == std::string::npos) {
    t.table = name;
  } else {
    t.schema = name.substr(0, dot);
    t.table = name.substr(dot + 1);
  }
  if ((dot != std::string::npos && !detail::pg::valid_identifier(t.schema)) || !detail::pg::valid_identifier(t.table))
    invalid("invalid table name " + shown(name) +
            ": use schema.table or table, each 1-63 characters of a-z, 0-9 and _, not starting with a digit");
  return t;
}

}  // namespace

barrier_info barrier_from_query(std::string_view target_or_query) {
  namespace urls = boost::urls;
  // Boost.URL 1.81's parse_query measures the query it was given with
  // strlen(), so it reads past the end of a view that is not followed by a
  // NUL (found by fuzz/barrier_fuzz.cpp). It only ever sees NUL-terminated copies.
  const std::string whole(target_or_query);
  std::string_view query = whole;
  if (!query.empty() && query.front() == '/') {
    auto target = urls::parse_origin_form(query);
    if (!target) invalid("malformed request target " + shown(target_or_query));
    query = target->encoded_query();
  } else if (query.find("://") != std::string_view::npos) {
    auto url = urls::parse_uri(query);
    if (!url) invalid("malformed URL " + shown(target_or_query));
    query = url->encoded_query();
  } else if (!query.empty() && query.front() == '?') {
    query.remove_prefix(1);
  }
  const std::string terminated(query);
  // Checked first, so that the view below cannot throw.
  if (!urls::parse_query(terminated)) invalid("malformed query " + shown(terminated));
  urls::encoding_opts form;  // '+' is a space in HTTP queries, as Go's url.Values writes them
  form.space_as_plus = true;
  collector fields(query_names, "query parameter ");
  for (const urls::param& p : urls::params_view(terminated, form)) fields.offer(p.key, p.value);
  return fields.finish();
}

barrier_info barrier_from_metadata(const std::multimap<std::string, std::string>& metadata) {
  collector fields(metadata_names, "metadata ");
  for (const auto& [key, value] : metadata) fields.offer(key, value);
  return fields.finish();
}

void create_barrier_table(pqxx::connection& c, const std::string& table) {
  const table_name t = checked_table(table);
  pqxx::work tx(c);
  tx.exec("SET LOCAL client_min_messages = warning");  // no "already exists, skipping" notices
  // CREATE ... IF NOT EXISTS is not safe against a concurrent creator: one at a time.
  tx.exec_params("SELECT pg_advisory_xact_lock(hashtext($1))", "wf.barrier_table." + table);
  if (!t.schema.empty()) tx.exec("CREATE SCHEMA IF NOT EXISTS " + detail::pg::quoted_identifier(t.schema));
  tx.exec("CREATE TABLE IF NOT EXISTS " + t.quoted() + " " + detail::pg::barrier_columns);  // from sql/barrier.sql
  tx.commit();
}

barrier::barrier(barrier_info info, std::string table) : info_(std::move(info)), table_(std::move(table)) {
  validate({info_.trans_type, info_.gid, info_.branch_id, info_.op}, struct_names, "");
  // The conflict target, not a constraint name, so that any unique index on
  // these columns will do (DTM's tables name theirs uniq_barrier).
  insert_sql_ = "INSERT INTO " + checked_table(table_).quoted() +
                " (trans_type, gid, branch_id, op, barrier_id, reason, create_time)"
                " VALUES ($1, $2, $3, $4, $5, $6, now())"
                " ON CONFLICT (gid, branch_id, op, barrier_id) DO NOTHING";
}

bool barrier::call(pqxx::connection& c, const std::function<void(pqxx::work&)>& business) {
  char id[16];
  std::snprintf(id, sizeof id, "%02d", ++calls_);
  auto record = [&](pqxx::work& tx, std::string_view op) {
    // Under READ COMMITTED, an insert that meets a row another transaction has
    // inserted but not yet committed waits for that transaction: the second
    // of two concurrent requests sees the outcome of the first.
    return tx.exec_params(insert_sql_, info_.trans_type, info_.gid, info_.branch_id, std::string(op), std::string(id),
                          info_.op)
               .affected_rows() == 1;
  };
  pqxx::work tx(c);
  bool null_compensation = false;
  if (const auto origin = origin_of(info_.op); !origin.empty()) null_compensation = record(tx, origin);
  // Recorded even for a null compensation, so that a repeated rollback is a duplicate.
  const bool first_time = record(tx, info_.op);
  if (null_compensation || !first_time) {
    tx.commit();
    return false;
  }
  business(tx);
  tx.commit();
  return true;
}

}  // namespace wf
