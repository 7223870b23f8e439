// A run's independent trainings (one sequence model of one split or fold): their numbering, and
// training several at once in child processes (run --jobs).
#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <optional>

#include "common/error.h"
#include "common/files.h"
#include "common/progress.h"
#include "protocol/internal.h"

extern char** environ;

namespace gg::protocol {

std::vector<TrainingTask> training_tasks(const RunOptions& o, const fs::path& out) {
  std::vector<TrainingTask> tasks;
  auto add = [&](int repeat, int fold, const fs::path& bundle) {
    for (io::Sequence s : io::kSequences)
      tasks.push_back({int(tasks.size()) + 1, repeat, fold, s, bundle});
  };
  if (o.folds == 0) {
    add(0, 0, out / "model");
  } else {
    for (int r = 0; r < o.repeats; ++r)
      for (int f = 0; f < o.folds; ++f) add(r + 1, f + 1, detail::cv_fold_dir(out, r, f) / "model");
  }
  return tasks;
}

std::string task_label(const TrainingTask& t) {
  if (t.fold == 0) return io::sequence_label(t.sequence);
  return fmt::format("repetition {}, fold {}, {}", t.repeat, t.fold,
                     io::sequence_label(t.sequence));
}

namespace detail {

namespace {

struct Child {
  pid_t pid = -1;
  const TrainingTask* task = nullptr;
  fs::path log;
  std::chrono::steady_clock::time_point start;
};

// The last non-empty line of a child's log: its error message, when it failed.
std::string last_line(const fs::path& log) {
  std::ifstream in(log);
  std::string line, last;
  while (std::getline(in, line)) {
    const auto end = line.find_last_not_of(" \r\t");
    if (end != std::string::npos) last = line.substr(0, end + 1);
  }
  return last;
}

pid_t spawn(const std::vector<std::string>& argv, const fs::path& log) {
  if (argv.empty()) throw_runtime("", "no command to start a training task with");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0)
    throw_runtime(argv[0], fmt::format("cannot start a training process: {}", std::strerror(rc)));
  return pid;
}

}  // namespace

namespace {

// The child's command line carries no option of the run: those travel typed in its order file.
std::vector<std::string> task_argv(const RunOptions& o, const fs::path& out, int task, int threads,
                                   const fs::path& order_file) {
  TaskOrder order{o, out};
  order.options.task = task;
  write_file_atomic(order_file, task_order_to_json(order));
  std::vector<std::string> argv{o.task_executable.string(), "--threads", std::to_string(threads)};
  if (!o.show_progress) argv.push_back("--quiet");
  argv.insert(argv.end(), {"run-task", order_file.string()});
  return argv;
}

}  // namespace

std::vector<double> train_in_processes(const std::vector<TrainingTask>& tasks, int total_tasks,
                                       int jobs, int threads, const RunOptions& options,
                                       const fs::path& out, const fs::path& log_dir) {
  fs::create_directories(log_dir);
  fmt::print(stderr, "  {} trainings, {} at a time with {} thread{} each; their output: {}/\n",
             tasks.size(), jobs, threads, threads == 1 ? "" : "s", log_dir.string());
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<Child> running;
  std::vector<double> seconds_of(tasks.size(), 0.0);
  std::optional<Error> failure;
  size_t next = 0, done = 0;
  while (true) {
    while (!failure && running.size() < size_t(jobs) && next < tasks.size()) {
      const TrainingTask& t = tasks[next++];
      Child c;
      c.task = &t;
      c.log = log_dir / fmt::format("task_{}.log", t.number);
      c.pid = spawn(task_argv(options, out, t.number, threads,
                              log_dir / fmt::format("task_{}.json", t.number)),
                    c.log);
      c.start = std::chrono::steady_clock::now();
      fmt::print(stderr, "  started task {}/{}: {}\n", t.number, total_tasks, task_label(t));
      running.push_back(c);
    }
    if (running.empty()) break;
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      throw_runtime("",
                    fmt::format("waiting for the training processes: {}", std::strerror(errno)));
    }
    const auto it =
        std::find_if(running.begin(), running.end(), [&](const Child& c) { return c.pid == pid; });
    if (it == running.end()) continue;  // not one of ours
    const Child c = *it;
    running.erase(it);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - c.start).count();
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (ok) {
      ++done;
      seconds_of[size_t(c.task - tasks.data())] = seconds;
      // Time left: the mean wall time per finished task spread over the jobs still to come.
      const double elapsed =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const size_t left = tasks.size() - done;
      fmt::print(stderr, "  done task {}/{}: {} in {}; {}/{} done{}\n", c.task->number, total_tasks,
                 task_label(*c.task), format_duration(seconds), done, tasks.size(),
                 left
                     ? ", about " + format_duration(elapsed / double(done) * double(left)) + " left"
                     : "");
      continue;
    }
    if (failure) continue;  // one we stopped
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    // The child's own one-line error, "gliomagrade: error: <what> (fix: <fix>)", taken apart.
    std::string child = last_line(c.log), child_fix;
    if (child.rfind("gliomagrade: error: ", 0) == 0) child = child.substr(20);
    if (const auto at = child.rfind(" (fix: "); at != std::string::npos && child.back() == ')') {
      child_fix = child.substr(at + 7, child.size() - at - 8);
      child.resize(at);
    }
    const std::string what = fmt::format("training task {} ({}) failed (exit code {}): {}",
                                         c.task->number, task_label(*c.task), code, child);
    const std::string fix =
        (child_fix.empty() ? "" : child_fix + "; then ") +
        fmt::format(
            "continue with --resume (its whole output: {}; the other trainings were "
            "stopped at their last checkpoint)",
            c.log.string());
    failure = Error(code == int(ExitCode::kBadInput) ? ExitCode::kBadInput : ExitCode::kRuntime, "",
                    what, fix);
    for (const Child& other : running) ::kill(other.pid, SIGTERM);
  }
  if (failure) throw *failure;
  return seconds_of;
}

}  // namespace detail

}  // namespace gg::protocol
