// Creating and migrating wf's tables.
#ifndef WF_SRC_STORE_POSTGRES_SCHEMA_HPP
#define WF_SRC_STORE_POSTGRES_SCHEMA_HPP

#include <pqxx/connection>

#include <string>
#include <string_view>

namespace wf::detail::pg {

/// 1-63 characters of a-z, 0-9 and _, not starting with a digit: safe to
/// splice into SQL between double quotes.
bool valid_identifier(std::string_view s);
/// `s` between double quotes (for a valid_identifier), so that a name that
/// happens to be an SQL keyword still works.
std::string quoted_identifier(std::string_view s);

/// `name` if it is a valid lower-case identifier; throws postgres_error otherwise.
/// Schema names come from configuration and are spliced into SQL, so they are checked.
std::string checked_schema(const std::string& name);

/// Creates or migrates the schema in one transaction, up to `target` (0:
/// this library's version; tests make older schemas); returns the version
/// found before (0: none). Throws schema_too_new_error for a newer schema.
int migrate(pqxx::connection& c, const std::string& schema, int target = 0);

/// The schema's version as it is (0: no wf schema there), changing nothing.
int current_version(pqxx::connection& c, const std::string& schema);

}  // namespace wf::detail::pg

#endif  // WF_SRC_STORE_POSTGRES_SCHEMA_HPP
