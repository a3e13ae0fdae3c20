// Creating and migrating wf's tables.
#ifndef WF_SRC_STORE_POSTGRES_SCHEMA_HPP
#define WF_SRC_STORE_POSTGRES_SCHEMA_HPP

#include <pqxx/connection>

#include <string>

namespace wf::detail::pg {

/// `name` if it is a valid lower-case identifier; throws postgres_error otherwise.
/// Schema names come from configuration and are spliced into SQL, so they are checked.
std::string checked_schema(const std::string& name);

/// Creates or migrates the schema in one transaction; returns the version
/// found before (0: none). Throws schema_too_new_error for a newer schema.
int migrate(pqxx::connection& c, const std::string& schema);

}  // namespace wf::detail::pg

#endif  // WF_SRC_STORE_POSTGRES_SCHEMA_HPP
