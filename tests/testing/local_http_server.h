// A throw-away HTTP server on 127.0.0.1 for download tests: python3's http.server serving one
// directory on a free port, started by the constructor and stopped (SIGTERM, then SIGKILL) by
// stop() or the destructor. Loopback only; nothing leaves the machine. Header-only so that any
// test binary can use it.
//
//   LocalHttpServer server(dir);
//   if (!server.running()) GG_MISSING(server.why_not());
//   download(server.url("file.bin"));
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>

namespace gg::testing {

class LocalHttpServer {
 public:
  explicit LocalHttpServer(const std::filesystem::path& root) { start(root); }
  ~LocalHttpServer() { stop(); }
  LocalHttpServer(const LocalHttpServer&) = delete;
  LocalHttpServer& operator=(const LocalHttpServer&) = delete;

  bool running() const { return pid_ > 0; }
  const std::string& why_not() const { return why_not_; }
  int port() const { return port_; }
  std::string url(const std::string& name) const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/" + name;
  }

  // Stops the server; later requests to its port fail to connect.
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    if (!reap_within(std::chrono::seconds(5))) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    pid_ = -1;
  }

  // The python3 on PATH, or "" when there is none.
  static std::string find_python3() {
    const char* path = std::getenv("PATH");
    std::istringstream dirs(path ? path : "");
    for (std::string dir; std::getline(dirs, dir, ':');) {
      const std::string candidate = (dir.empty() ? "." : dir) + "/python3";
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    return {};
  }

 private:
  void start(const std::filesystem::path& root) {
    const std::string python = find_python3();
    if (python.empty()) {
      why_not_ = "python3 not found on PATH";
      return;
    }
    // Port 0: the kernel picks a free port; the server prints it once it listens.
    static const char* kScript =
        "import functools, http.server, sys\n"
        "class Quiet(http.server.SimpleHTTPRequestHandler):\n"
        "    def log_message(self, *a): pass\n"
        "h = functools.partial(Quiet, directory=sys.argv[1])\n"
        "s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), h)\n"
        "print(s.server_address[1], flush=True)\n"
        "s.serve_forever()\n";
    int fds[2];
    if (::pipe(fds) != 0) {
      why_not_ = "pipe() failed";
      return;
    }
    const std::string root_arg = root.string();
    const pid_t pid = ::fork();
    if (pid < 0) {
      why_not_ = "fork() failed";
      ::close(fds[0]);
      ::close(fds[1]);
      return;
    }
    if (pid == 0) {                        // child: only async-signal-safe calls until exec
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);  // never outlive the test binary
      ::dup2(fds[1], STDOUT_FILENO);
      const int devnull = ::open("/dev/null", O_WRONLY);  // no tracebacks for aborted clients
      if (devnull >= 0) ::dup2(devnull, STDERR_FILENO);
      ::close(fds[0]);
      ::close(fds[1]);
      ::execl(python.c_str(), "python3", "-c", kScript, root_arg.c_str(),
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(fds[1]);
    pid_ = pid;
    port_ = read_port(fds[0]);
    ::close(fds[0]);
    if (port_ <= 0) {
      stop();
      why_not_ = "python3 http.server did not start within 20 s";
    }
  }

  // Reads the port line with a bounded wait; -1 on timeout or early exit.
  static int read_port(int fd) {
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) continue;
      char c;
      if (::read(fd, &c, 1) != 1) return -1;
      if (c == '\n') return std::atoi(line.c_str());
      line += c;
    }
    return -1;
  }

  bool reap_within(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  pid_t pid_ = -1;
  int port_ = -1;
  std::string why_not_;
};

}  // namespace gg::testing
