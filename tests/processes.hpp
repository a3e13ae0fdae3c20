// Child processes for the tests that run wf's programs as processes (the
// process tests and the chaos bank test): start, wait, kill, and restart the
// throwaway PostgreSQL scripts/common.sh started. No test framework here.
#ifndef WF_TESTS_PROCESSES_HPP
#define WF_TESTS_PROCESSES_HPP

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace wf_test {

inline std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

/// Starts `argv` (searched in PATH), its output appended to `log` (empty: this
/// process's output). It is killed if this process dies. Returns its pid.
inline pid_t start_process(std::vector<std::string> argv, const std::string& log = {}) {
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // nothing outlives the test
    if (!log.empty()) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
    }
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  return pid;
}

/// Waits for `pid` to end; returns its exit status (128 + signal if killed).
inline int wait_for(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

inline void kill_now(pid_t pid) {
  ::kill(pid, SIGKILL);
  wait_for(pid);
}

/// Whether restart_postgres() can work: WF_TEST_PG_DATA and WF_TEST_PG_CTL are set.
inline bool can_restart_postgres() { return !env("WF_TEST_PG_DATA").empty() && !env("WF_TEST_PG_CTL").empty(); }

/// `pg_ctl VERB` on the test cluster (as WF_TEST_PG_RUNAS), waiting up to
/// `wait_s` seconds for it to finish, with `-m MODE` unless `mode` is empty;
/// its output is appended to `log`. Returns pg_ctl's exit status. (The
/// cluster's port and addresses are in its postgresql.conf, so a stop then a
/// start keeps them.)
inline int pg_ctl(const std::string& verb, const std::string& mode, const std::string& log, int wait_s = 60) {
  std::vector<std::string> cmd;
  std::istringstream runas(env("WF_TEST_PG_RUNAS"));
  for (std::string w; runas >> w;) cmd.push_back(w);
  const std::string data = env("WF_TEST_PG_DATA");
  const std::string dir = data.substr(0, data.rfind('/'));
  for (std::string a : {env("WF_TEST_PG_CTL"), std::string("-D"), data, std::string("-l"), dir + "/server.log",
                        std::string("-w"), std::string("-t"), std::to_string(wait_s)})
    cmd.push_back(std::move(a));
  if (!mode.empty()) {
    cmd.push_back("-m");
    cmd.push_back(mode);
  }
  cmd.push_back(verb);
  return wait_for(start_process(cmd, log));
}

/// The test cluster's server log (where pg_ctl -l sends it).
inline std::string postgres_server_log() {
  const std::string data = env("WF_TEST_PG_DATA");
  return data.substr(0, data.rfind('/')) + "/server.log";
}

/// `pg_ctl restart -m immediate` on the test cluster. An immediate stop is a
/// crash: the start replays the WAL written since the last checkpoint, which
/// on a loaded machine late in a suite run has taken more than a minute; a
/// caller that can should checkpoint first (`CHECKPOINT`). Waits up to 180 s.
inline int restart_postgres(const std::string& log) { return pg_ctl("restart", "immediate", log, 180); }

}  // namespace wf_test

#endif  // WF_TESTS_PROCESSES_HPP
