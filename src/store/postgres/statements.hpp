// The SQL wf runs, as prepared statements, and the conversions around them.
#ifndef WF_SRC_STORE_POSTGRES_STATEMENTS_HPP
#define WF_SRC_STORE_POSTGRES_STATEMENTS_HPP

#include <wf/journal.hpp>

#include <pqxx/connection>
#include <pqxx/row>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace wf::detail::pg {

/// Session settings, then every statement below prepared on `c`, for tables in `schema`.
void prepare_session(pqxx::connection& c, const std::string& schema, std::chrono::milliseconds idle_in_transaction,
                     std::chrono::milliseconds lock_timeout);

/// Microseconds since the epoch, as stored.
std::int64_t to_us(wall_clock::time_point t);
wall_clock::time_point from_us(std::int64_t us);

/// A row of the statements that return a workflow's columns.
workflow_state state_from_row(const pqxx::row& r);
/// A row of `wf_journal`.
journal_record record_from_row(const pqxx::row& r);

/// A PostgreSQL array literal of text values: {"a","b\"c"}.
std::string text_array(const std::vector<std::string>& values);

}  // namespace wf::detail::pg

#endif  // WF_SRC_STORE_POSTGRES_STATEMENTS_HPP
