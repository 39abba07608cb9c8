// poller_poll.cpp - the Poller where there is no epoll: poll(), WSAPoll() on
// Windows (poller.h). CPython's selectors does the same: DefaultSelector is
// the best the system has, and PollSelector or SelectSelector otherwise.
//
// The calls are the same as poller_epoll.cpp's, but the list lives here: add
// appends an entry to poll's array, modify changes it, forget removes it, and
// every wait hands the whole array to the kernel, which checks every socket
// in it (chapter 5's cost, kept behind chapter 6's interface). poll has
// no edge-triggered mode.
#include "poller.h"

#include "text.h"
#include "trace.h"

#include <string>
#include <unordered_map>

namespace poller {

struct Poller::State {
    std::vector<net::pollfd_t> fds;                       // poll's array, handed over whole
    std::vector<std::size_t> keys;                        // keys[i] belongs to fds[i]
    std::unordered_map<net::socket_t, std::size_t> slot;  // where each socket's entry is
    std::size_t handed = 0;
};

namespace {

short to_poll(unsigned events) {
    return static_cast<short>((events & readable ? POLLIN : 0) | (events & writable ? POLLOUT : 0));
}

unsigned from_poll(short revents) {
    return (revents & POLLIN ? readable : 0u) | (revents & POLLOUT ? writable : 0u) |
           (revents & (POLLERR | POLLHUP | POLLNVAL) ? failed : 0u);
}

}  // namespace

Poller::Poller(bool edge) : state_(new State) {
    if (edge) throw text::Failure("--edge", "poll has no edge-triggered mode (epoll has: Linux)");
}

Poller::~Poller() = default;

bool Poller::has_edge_mode() {
    return false;
}

const char* Poller::name() const {
    return "poll";
}

int Poller::add(net::socket_t fd, std::size_t key, unsigned events) {
    state_->slot[fd] = state_->fds.size();
    state_->fds.push_back({fd, to_poll(events), 0});
    state_->keys.push_back(key);
    return 0;
}

int Poller::modify(net::socket_t fd, std::size_t key, unsigned events) {
    std::size_t i = state_->slot.at(fd);
    state_->fds[i].events = to_poll(events);
    state_->keys[i] = key;
    return 0;
}

// The last entry moves into the forgotten one's place: no gap for poll to scan.
void Poller::forget(net::socket_t fd) {
    State& s = *state_;
    auto found = s.slot.find(fd);
    if (found == s.slot.end()) return;
    std::size_t i = found->second, last = s.fds.size() - 1;
    s.slot.erase(found);
    if (i != last) {
        s.fds[i] = s.fds[last];
        s.keys[i] = s.keys[last];
        s.slot[s.fds[i].fd] = i;
    }
    s.fds.pop_back();
    s.keys.pop_back();
}

int Poller::wait(int timeout_ms, std::vector<Ready>& ready) {
    ready.clear();
    State& s = *state_;
    s.handed = s.fds.size();
    int n = traced(net::poll_many(s.fds.data(), s.fds.size(), timeout_ms), "poll",
                   std::to_string(s.fds.size()) + " fds", std::to_string(timeout_ms) + " ms");
    for (std::size_t i = 0; n > 0 && i < s.fds.size(); ++i)
        if (s.fds[i].revents != 0) ready.push_back({s.keys[i], from_poll(s.fds[i].revents)});
    return n;
}

std::size_t Poller::handed_last_wait() const {
    return state_->handed;
}

}  // namespace poller
