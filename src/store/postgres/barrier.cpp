// The participant's barrier (see wf/barrier.hpp and docs/participants.md).
// Reading its ids from requests is in the core: src/participant/barrier_info.cpp.
#include "barrier_sql.hpp"
#include "schema.hpp"
#include "../../participant/barrier_check.hpp"

#include <wf/barrier.hpp>

#include <cstdio>
#include <stdexcept>

namespace wf {
namespace {

// The op a compensating op undoes; empty for the others.
std::string_view origin_of(std::string_view op) {
  if (op == "rollback" || op == "compensate") return "action";
  if (op == "cancel") return "try";
  return {};
}

[[noreturn]] void invalid(const std::string& what) { throw std::invalid_argument("wf::barrier: " + what); }

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
    invalid("invalid table name " + detail::quoted_for_error(name) +
            ": use schema.table or table, each 1-63 characters of a-z, 0-9 and _, not starting with a digit");
  return t;
}

}  // namespace

bool valid_identifier(std::string_view name) noexcept { return detail::pg::valid_identifier(name); }

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
  detail::check_barrier_info(info_);
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
