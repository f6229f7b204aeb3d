// launch_local: N processes of one distributed run on this machine, as torchrun starts them.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "neurobolt/distributed.hpp"
#include "neurobolt/error.hpp"

namespace neurobolt {
namespace {

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw IoError(fmt::format("launch: cannot open a socket: {}", std::strerror(errno)));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  ::close(fd);
  if (port <= 0) throw IoError("launch: no free TCP port on 127.0.0.1 for the rendezvous");
  return port;
}

struct Child {
  pid_t pid = -1;
  int out = -1;        // read end of the child's stdout + stderr
  std::string buffer;  // an unfinished line
  bool running = true;
  int status = 0;
};

void forward_lines(Child& c, int rank, bool flush_all) {
  std::size_t start = 0, end;
  while ((end = c.buffer.find('\n', start)) != std::string::npos) {
    std::cerr << "[rank " << rank << "] " << c.buffer.substr(start, end - start) << '\n';
    start = end + 1;
  }
  c.buffer.erase(0, start);
  if (flush_all && !c.buffer.empty()) {
    std::cerr << "[rank " << rank << "] " << c.buffer << '\n';
    c.buffer.clear();
  }
  std::cerr.flush();
}

}  // namespace

int launch_local(int nproc, const std::string& program, const std::vector<std::string>& args, int port, double grace_s) {
  if (nproc < 1 || nproc > 1024) throw UsageError(fmt::format("--nproc: expected 1 to 1024 processes, found {}", nproc));
  if (port == 0) port = free_port();
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const std::string threads = std::to_string(std::max(1u, cores / static_cast<unsigned>(nproc)));
  std::vector<Child> children(static_cast<std::size_t>(nproc));
  for (int rank = 0; rank < nproc; ++rank) {
    int fds[2];
    if (::pipe(fds) != 0) throw IoError(fmt::format("launch: cannot create a pipe: {}", std::strerror(errno)));
    const pid_t pid = ::fork();
    if (pid < 0) throw IoError(fmt::format("launch: cannot start process {}: {}", rank, std::strerror(errno)));
    if (pid == 0) {
      ::dup2(fds[1], STDOUT_FILENO);
      ::dup2(fds[1], STDERR_FILENO);
      ::close(fds[0]);
      ::close(fds[1]);
      ::setenv("RANK", std::to_string(rank).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      ::setenv("OMP_NUM_THREADS", threads.c_str(), 0);
      std::vector<char*> argv;
      argv.push_back(const_cast<char*>(program.c_str()));
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(program.c_str(), argv.data());
      std::fprintf(stderr, "launch: cannot run '%s': %s\n", program.c_str(), std::strerror(errno));
      ::_exit(127);
    }
    ::close(fds[1]);
    children[static_cast<std::size_t>(rank)].pid = pid;
    children[static_cast<std::size_t>(rank)].out = fds[0];
  }

  int first_failure = 0;
  bool stopping = false;
  auto stop_started = std::chrono::steady_clock::now();
  auto stop_others = [&](int signal) {
    for (auto& c : children)
      if (c.running) ::kill(c.pid, signal);
  };
  for (;;) {
    std::vector<pollfd> fds;
    std::vector<int> ranks;
    for (int rank = 0; rank < nproc; ++rank) {
      if (children[static_cast<std::size_t>(rank)].out >= 0) {
        fds.push_back({children[static_cast<std::size_t>(rank)].out, POLLIN, 0});
        ranks.push_back(rank);
      }
    }
    if (!fds.empty()) ::poll(fds.data(), fds.size(), 200);
    for (std::size_t k = 0; k < fds.size(); ++k) {
      if ((fds[k].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      auto& c = children[static_cast<std::size_t>(ranks[k])];
      char chunk[4096];
      const ssize_t n = ::read(c.out, chunk, sizeof chunk);
      if (n > 0) {
        c.buffer.append(chunk, static_cast<std::size_t>(n));
        forward_lines(c, ranks[k], false);
      } else {
        forward_lines(c, ranks[k], true);
        ::close(c.out);
        c.out = -1;
      }
    }
    bool any_running = false;
    for (int rank = 0; rank < nproc; ++rank) {
      auto& c = children[static_cast<std::size_t>(rank)];
      if (!c.running) continue;
      int status = 0;
      if (::waitpid(c.pid, &status, WNOHANG) == c.pid) {
        c.running = false;
        c.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (c.status != 0 && first_failure == 0) {
          first_failure = c.status;
          std::cerr << fmt::format("launch: rank {} exited with status {}; stopping the others", rank, c.status)
                    << std::endl;
        }
      } else {
        any_running = true;
      }
    }
    if (first_failure != 0 && !stopping) {
      stopping = true;
      stop_started = std::chrono::steady_clock::now();
      stop_others(SIGTERM);
    }
    if (stopping && std::chrono::duration<double>(std::chrono::steady_clock::now() - stop_started).count() > grace_s) {
      stop_others(SIGKILL);
    }
    bool any_open = false;
    for (const auto& c : children) any_open |= c.out >= 0;
    if (!any_running && !any_open) break;
  }
  return first_failure;
}

}  // namespace neurobolt
