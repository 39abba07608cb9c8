// waiter_poll.cpp - the Waiter everywhere but Linux: poll(), WSAPoll() on
// Windows (waiter.h).
//
// poll has no list in the kernel: the program keeps an array of pollfd
// (descriptor, events wanted, events found) and hands all of it over on every
// call; the kernel checks each socket, fills in `revents`, and the program
// looks through the array for what is ready. net::poll_many is poll() or
// WSAPoll(), whose structures have the same fields.
#include "waiter.h"

#include <chrono>
#include <thread>
#include <unordered_map>

namespace lab {

struct Waiter::State {
    std::vector<net::pollfd_t> fds;                       // what poll is handed
    std::unordered_map<net::socket_t, std::size_t> slot;  // where each descriptor is in fds
};

namespace {

// Only POLLIN and POLLOUT are asked for: WSAPoll refuses a request for
// POLLERR or POLLHUP (they come anyway, as on POSIX).
short to_poll(unsigned events) {
    return static_cast<short>((events & Waiter::readable ? POLLIN : 0) |
                              (events & Waiter::writable ? POLLOUT : 0));
}

unsigned from_poll(short revents) {
    return (revents & POLLIN ? Waiter::readable : 0u) |
           (revents & POLLOUT ? Waiter::writable : 0u) |
           (revents & (POLLERR | POLLHUP | POLLNVAL) ? Waiter::failed : 0u);
}

}  // namespace

Waiter::Waiter() : state_(new State) {}

Waiter::~Waiter() = default;

bool Waiter::ok() const {
    return true;
}

const char* Waiter::name() const {
    return "poll";
}

int Waiter::add(net::socket_t fd, unsigned events) {
    state_->slot[fd] = state_->fds.size();
    net::pollfd_t entry{};
    entry.fd = fd;
    entry.events = to_poll(events);
    state_->fds.push_back(entry);
    return 0;
}

int Waiter::modify(net::socket_t fd, unsigned events) {
    state_->fds[state_->slot.at(fd)].events = to_poll(events);
    return 0;
}

// The last entry moves into the hole: no array is shifted.
int Waiter::remove(net::socket_t fd) {
    auto found = state_->slot.find(fd);
    if (found == state_->slot.end()) return 0;
    std::size_t hole = found->second;
    state_->slot.erase(found);
    if (hole + 1 < state_->fds.size()) {
        state_->fds[hole] = state_->fds.back();
        state_->slot[state_->fds[hole].fd] = hole;
    }
    state_->fds.pop_back();
    return 0;
}

// A closed descriptor left in the array would come back as POLLNVAL on every
// call (or, reused by the next accept, as somebody else's socket).
void Waiter::closing(net::socket_t fd) {
    remove(fd);
}

int Waiter::wait(int timeout_ms, std::vector<Ready>& ready) {
    ready.clear();
    std::vector<net::pollfd_t>& fds = state_->fds;
    if (fds.empty()) {  // WSAPoll refuses an empty list (WSAEINVAL): sleep out the timeout
        if (timeout_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms));
        return 0;
    }
    int n = net::poll_many(fds.data(), fds.size(), timeout_ms);
    for (std::size_t i = 0; n > 0 && i < fds.size(); ++i)
        if (fds[i].revents != 0) ready.push_back({fds[i].fd, from_poll(fds[i].revents)});
    return n < 0 ? n : static_cast<int>(ready.size());
}

}  // namespace lab
