// The c10d side of dist: TCPStore rendezvous, the Gloo process group (and NCCL's for CUDA tensors
// where libtorch has it), the collectives, and what a rank does when another fails. The only file
// that includes c10d's headers.
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_NCCL  // set by src/dist/CMakeLists.txt for a CUDA LibTorch
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <fmt/format.h>
#include <glog/logging.h>

#include <csignal>
#include <cstdlib>
#include <thread>

#include "dist/collectives.h"
#include "dist/dist.h"

namespace gg::dist {

namespace {

// How long the survivors of a failure wait for each other to check in before naming the ranks
// that did not as lost. Short: a rank that is alive reaches the store within milliseconds.
constexpr std::chrono::milliseconds kGrace{5000};

std::string first_line(const std::string& s) {
  std::string line = s.substr(0, s.find('\n'));
  // c10d prefixes messages with the source location: "[../torch/csrc/...:123] message".
  if (!line.empty() && line[0] == '[') {
    const size_t close = line.find("] ");
    if (close != std::string::npos) line = line.substr(close + 2);
  }
  return line;
}

// What a socket error comes down to: "errno: 98 - Address already in use" where c10d says it.
std::string socket_cause(const std::string& s) {
  const size_t at = s.find("(errno: ");
  if (at == std::string::npos) return first_line(s);
  return s.substr(at + 1, s.find(')', at) - at - 1);
}

std::vector<uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }
std::string text(const std::vector<uint8_t>& b) { return {b.begin(), b.end()}; }

std::string key(const char* kind, int rank) {
  return std::string(kind) + "/" + std::to_string(rank);
}

std::shared_ptr<::gloo::transport::Device> gloo_device(const std::string& master_addr) {
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
    return c10d::ProcessGroupGloo::createDeviceForInterface(ifname);
  // All ranks on this machine (torchrun --standalone, tests): stay on the loopback interface.
  if (master_addr == "localhost" || master_addr.rfind("127.", 0) == 0)
    return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

std::string ranks_list(const std::vector<int>& ranks) {
  std::string s;
  for (int r : ranks) s += (s.empty() ? "" : ", ") + std::to_string(r);
  return s;
}

}  // namespace

struct Communicator::Impl {
  WorldConfig world;
  std::chrono::milliseconds timeout{0};
  c10::intrusive_ptr<c10d::Store> store;  // our keys ("gg/...")
  c10::intrusive_ptr<c10d::Store> base;   // the rendezvous store, for the process groups
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
  // CUDA tensors' collectives, made at the first one (every rank reaches it in the same order).
  // Untested: this build's libtorch has no CUDA (see the README's "Distributed training").
  c10::intrusive_ptr<c10d::ProcessGroup> nccl;
  bool failed = false;  // an error of the distributed layer is already on its way

  std::string where() const { return fmt::format("{}:{}", world.master_addr, world.master_port); }

  // A collective threw: find out why from the store (another rank's reported error, or which ranks
  // no longer answer) and throw one error that says so.
  [[noreturn]] void fail(const std::string& what, const std::exception& cause) {
    failed = true;
    const std::string gloo = first_line(cause.what());
    group.reset();  // close our connections: ranks still waiting on us fail at once too
    nccl.reset();
    const int me = world.rank;
    try {
      store->set(key("down", me), bytes("1"));
    } catch (const std::exception&) {
      if (me != 0 || world.agent_store)
        throw Error(ExitCode::kRuntime, "",
                    fmt::format("lost rank 0 of {} during {}: the rendezvous store at {} no "
                                "longer answers ({})",
                                world.world_size, what, where(), gloo),
                    "check rank 0's log (killed, out of memory, or its host is down); --resume "
                    "continues from the last checkpoint");
    }
    std::vector<int> lost;
    const auto deadline = std::chrono::steady_clock::now() + kGrace;
    for (;;) {
      lost.clear();
      for (int r = 0; r < world.world_size; ++r) {
        if (r == me) continue;
        bool reported = false, down = false;
        try {
          reported = store->check({key("error", r)});
          down = !reported && store->check({key("down", r)});
        } catch (const std::exception&) {
          lost = {0};
          break;
        }
        if (reported) {
          const std::string v = text(store->get(key("error", r)));
          const size_t tab = v.find('\t');
          const int code = std::atoi(v.substr(0, tab).c_str());
          throw Error(ExitCode(code ? code : int(ExitCode::kRuntime)), "",
                      fmt::format("rank {} of {} failed: {}", r, world.world_size,
                                  tab == std::string::npos ? v : v.substr(tab + 1)));
        }
        if (!down) lost.push_back(r);
      }
      if (lost.empty() || std::chrono::steady_clock::now() > deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (lost.empty())
      throw Error(ExitCode::kRuntime, "", fmt::format("{} failed on every rank: {}", what, gloo),
                  "raise --dist-timeout if the ranks are merely slow");
    throw Error(ExitCode::kRuntime, "",
                fmt::format("lost rank {} of {} during {}: it stopped answering ({})",
                            ranks_list(lost), world.world_size, what, gloo),
                "check that rank's log (killed, out of memory, or its host is down); --resume "
                "continues from the last checkpoint");
  }

  void wait_all(std::vector<c10::intrusive_ptr<c10d::Work>>& works, const std::string& what) {
    try {
      for (auto& w : works) w->wait();
    } catch (const std::exception& e) {
      fail(what, e);
    }
  }
};

Communicator::Communicator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Communicator::~Communicator() = default;
int Communicator::rank() const { return impl_->world.rank; }
int Communicator::size() const { return impl_->world.world_size; }
int Communicator::local_rank() const { return impl_->world.local_rank; }

std::unique_ptr<Communicator> Communicator::connect(const WorldConfig& world,
                                                    const std::string& config_hash,
                                                    std::chrono::milliseconds timeout) {
  // A peer that dies closes its sockets; writing to them must be an error, not a fatal SIGPIPE
  // (Python, hence torchrun's usual workers, ignores SIGPIPE the same way).
  std::signal(SIGPIPE, SIG_IGN);
  // c10d logs every failed bind and connect attempt through glog; the error we throw says it in
  // one line. GLOG_minloglevel=0 brings them back for debugging.
  if (!std::getenv("GLOG_minloglevel")) FLAGS_minloglevel = google::GLOG_FATAL;
  auto impl = std::make_unique<Impl>();
  impl->world = world;
  impl->timeout = timeout;
  const double seconds = double(timeout.count()) / 1000;
  c10d::TCPStoreOptions o;
  o.port = uint16_t(world.master_port);
  o.isServer = !world.agent_store && world.rank == 0;
  o.numWorkers = size_t(world.world_size);
  o.waitWorkers = false;  // we check in ourselves, with the options hash
  o.timeout = timeout;
  c10::intrusive_ptr<c10d::Store> base;
  try {
    base = c10::make_intrusive<c10d::TCPStore>(world.master_addr, o);
  } catch (const std::exception& e) {
    if (o.isServer)
      throw_bad_input("",
                      fmt::format("rank 0 cannot host the rendezvous store on port {}: {}",
                                  world.master_port, socket_cause(e.what())),
                      "the port is busy: pick a free MASTER_PORT, or stop the run that holds it");
    throw_bad_input("",
                    fmt::format("rank {} cannot reach the rendezvous store at {} within {:g} s: {}",
                                world.rank, impl->where(), seconds, first_line(e.what())),
                    "start rank 0 (it hosts the store) and check MASTER_ADDR and MASTER_PORT");
  }
  if (world.agent_store) base = c10::make_intrusive<c10d::PrefixStore>(world.store_prefix, base);
  impl->base = base;
  impl->store = c10::make_intrusive<c10d::PrefixStore>("gg", base);
  auto& store = *impl->store;

  if (store.add(key("joined", world.rank), 1) != 1)
    throw_bad_input("", fmt::format("two processes were started as rank {}", world.rank),
                    "give every process its own RANK in 0..WORLD_SIZE-1");
  store.set(key("config", world.rank), bytes(config_hash));
  std::vector<std::string> keys;
  for (int r = 0; r < world.world_size; ++r) keys.push_back(key("config", r));
  try {
    store.wait(keys, timeout);
  } catch (const std::exception&) {
    std::vector<int> missing;
    for (int r = 0; r < world.world_size; ++r)
      if (!store.check({keys[size_t(r)]})) missing.push_back(r);
    throw_bad_input("",
                    fmt::format("rank {} of {} did not join the rendezvous at {} within {:g} s",
                                ranks_list(missing), world.world_size, impl->where(), seconds),
                    "start all WORLD_SIZE ranks with the same MASTER_ADDR and MASTER_PORT, or "
                    "raise --dist-timeout");
  }
  std::string mismatch;
  try {
    for (int r = 0; r < world.world_size && mismatch.empty(); ++r) {
      const std::string theirs = text(store.get(keys[size_t(r)]));
      if (theirs != config_hash)
        mismatch = fmt::format(
            "rank {} was started with other options than rank {} (options "
            "hash {} vs {})",
            r, world.rank, theirs.substr(0, 12), config_hash.substr(0, 12));
    }
    // Rank 0 hosts the store: it leaves (on a mismatch, say) only once every rank has read the
    // options, else they would lose the store mid-read ("Broken pipe").
    store.add("checked", 1);
    if (o.isServer) {
      const auto deadline = std::chrono::steady_clock::now() + timeout;
      while (store.add("checked", 0) < world.world_size &&
             std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  } catch (const std::exception& e) {
    throw_bad_input("",
                    fmt::format("rank {} lost the rendezvous store at {}: {}", world.rank,
                                impl->where(), first_line(e.what())),
                    "rank 0, which hosts it, stopped: see its error");
  }
  if (!mismatch.empty())
    throw_bad_input("", mismatch, "start every rank with the same command line and files");
  try {
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    options->devices.push_back(gloo_device(world.master_addr));
    impl->group = c10::make_intrusive<c10d::ProcessGroupGloo>(
        c10::make_intrusive<c10d::PrefixStore>("gloo", base), world.rank, world.world_size,
        options);
  } catch (const std::exception& e) {
    throw_bad_input("",
                    fmt::format("rank {} cannot connect the Gloo process group: {}", world.rank,
                                first_line(e.what())),
                    "set GLOO_SOCKET_IFNAME to the network interface the nodes share");
  }
  return std::unique_ptr<Communicator>(new Communicator(std::move(impl)));
}

void Communicator::barrier(const std::string& what) {
  if (!impl_->group) throw Error(ExitCode::kRuntime, "", what + ": the process group is closed");
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  try {
    works.push_back(impl_->group->barrier());
  } catch (const std::exception& e) {
    impl_->fail(what, e);
  }
  impl_->wait_all(works, what);
}

void Communicator::report_failure(const Error& error) noexcept {
  Impl& m = *impl_;
  if (m.failed) return;
  m.failed = true;
  try {
    const std::string line =
        error.file().empty() ? error.problem() : error.file() + ": " + error.problem();
    m.store->set(key("error", m.world.rank),
                 bytes(std::to_string(int(error.code())) + "\t" + line));
    m.store->set(key("down", m.world.rank), bytes("1"));
    m.group.reset();
    m.nccl.reset();
    if (m.world.rank != 0 || m.world.agent_store) return;
    // This process holds the store: keep it up until the others have read the error.
    const auto deadline = std::chrono::steady_clock::now() + kGrace;
    for (int r = 1; r < m.world.world_size; ++r) {
      while (!m.store->check({key("down", r)}) && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  } catch (...) {
    // Best effort: the others still stop, by the Gloo timeout, naming this rank as lost.
  }
}

namespace {

// Consecutive tensors of one dtype and device, up to kBucketBytes each (a larger tensor is a bucket
// alone).
std::vector<std::vector<torch::Tensor>> buckets(const std::vector<torch::Tensor>& tensors) {
  std::vector<std::vector<torch::Tensor>> out;
  int64_t bytes_in_last = 0;
  for (const auto& t : tensors) {
    const int64_t b = t.numel() * int64_t(t.element_size());
    if (out.empty() || out.back().front().scalar_type() != t.scalar_type() ||
        out.back().front().device() != t.device() || bytes_in_last + b > kBucketBytes) {
      out.emplace_back();
      bytes_in_last = 0;
    }
    out.back().push_back(t);
    bytes_in_last += b;
  }
  return out;
}

torch::Tensor flatten(const std::vector<torch::Tensor>& ts) {
  std::vector<torch::Tensor> flat;
  for (const auto& t : ts) flat.push_back(t.reshape({-1}));
  return torch::cat(flat);
}

void unflatten(const torch::Tensor& flat, const std::vector<torch::Tensor>& ts) {
  int64_t offset = 0;
  for (const auto& t : ts) {
    t.copy_(flat.narrow(0, offset, t.numel()).view(t.sizes()));
    offset += t.numel();
  }
}

}  // namespace

namespace {

// The process group for a bucket on `device`, and the device its flattened copy goes to: NCCL for
// CUDA tensors where libtorch has it, else Gloo on a host copy (Gloo's CUDA support depends on how
// libtorch was built; a copy works with every build).
c10d::ProcessGroup& group_for(Communicator::Impl& m, const torch::Device& device,
                              torch::Device* through) {
  *through = torch::kCPU;
#ifdef USE_C10D_NCCL
  if (device.is_cuda()) {
    if (!m.nccl) {
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = m.timeout;
      m.nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(
          c10::make_intrusive<c10d::PrefixStore>("nccl", m.base), m.world.rank, m.world.world_size,
          options);
    }
    *through = device;
    return *m.nccl;
  }
#else
  (void)device;
#endif
  return *m.group;
}

// Runs `collective` on the tensors flattened into ~25 MB buckets, then copies the results back.
template <typename Collective>
void bucketed(Communicator& comm, const std::vector<torch::Tensor>& tensors,
              const std::string& what, Collective collective) {
  auto& m = comm.impl();
  if (!m.group) throw Error(ExitCode::kRuntime, "", what + ": the process group is closed");
  torch::NoGradGuard no_grad;  // parameters are leaves that require grad: copy into them quietly
  const auto groups = buckets(tensors);
  std::vector<torch::Tensor> flats;
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  try {
    for (const auto& g : groups) {
      torch::Device through = torch::kCPU;
      c10d::ProcessGroup& pg = group_for(m, g.front().device(), &through);
      flats.push_back(flatten(g).to(through));
      std::vector<torch::Tensor> one{flats.back()};
      works.push_back(collective(pg, one));
    }
  } catch (const std::exception& e) {
    m.fail(what, e);
  }
  m.wait_all(works, what);
  for (size_t i = 0; i < groups.size(); ++i) unflatten(flats[i], groups[i]);
}

}  // namespace

void all_reduce_sum(Communicator& comm, const std::vector<torch::Tensor>& tensors,
                    const std::string& what) {
  bucketed(comm, tensors, what,
           [](c10d::ProcessGroup& g, std::vector<torch::Tensor>& t) { return g.allreduce(t); });
}

void broadcast_from_rank0(Communicator& comm, const std::vector<torch::Tensor>& tensors,
                          const std::string& what) {
  bucketed(comm, tensors, what,
           [](c10d::ProcessGroup& g, std::vector<torch::Tensor>& t) { return g.broadcast(t); });
}

}  // namespace gg::dist
