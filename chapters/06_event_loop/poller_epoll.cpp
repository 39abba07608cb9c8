// poller_epoll.cpp - the Poller on Linux: epoll (poller.h, man 7 epoll).
//
//   epoll_create1  makes the list, in the kernel: one descriptor for all of it
//   epoll_ctl      ADD a socket once, MOD when what it waits for changes
//                  (DEL is not needed before close: see forget)
//   epoll_wait     sleeps until some are ready, and hands back only those
//
// The kernel hooks each registered socket: when bytes arrive on one, it goes
// on the list's ready queue. A wait looks at that queue alone, so it costs
// what is ready, however many sockets are open. Python's
// selectors.EpollSelector makes exactly these calls (the README shows them,
// seen with strace).
#include "poller.h"

#include "text.h"
#include "trace.h"

#include <sys/epoll.h>

#include <string>

namespace poller {

struct Poller::State {
    int epoll_fd = -1;
    bool edge = false;
    std::vector<epoll_event> events = std::vector<epoll_event>(1024);  // filled by epoll_wait
};

namespace {

// Level-triggered (the default): a socket is reported on every wait for as
// long as it is ready: while bytes wait unread
// [claim:epoll-level-reports-again-while-bytes-wait]. EPOLLET (edge): it is
// reported when bytes arrive, once; bytes left unread are not reported again
// until more arrive [claim:epoll-edge-reports-once-until-new-bytes], so the
// reader must read until EAGAIN. (EPOLLONESHOT, the third mode, reports once
// and then nothing until a MOD re-arms it
// [claim:epoll-oneshot-reports-once-until-rearmed]: for many threads sharing
// one list; this loop has one thread.) EPOLLRDHUP asks to be told of the
// peer's FIN apart from its bytes [claim:epoll-rdhup-on-half-close].
std::uint32_t to_epoll(unsigned events, bool edge) {
    return (events & readable ? EPOLLIN | EPOLLRDHUP : 0u) | (events & writable ? EPOLLOUT : 0u) |
           (edge ? EPOLLET : 0u);
}

std::string epoll_text(std::uint32_t events) {
    std::string text;
    for (auto [bit, name] : {std::pair<std::uint32_t, const char*>{EPOLLIN, "EPOLLIN"},
                             {EPOLLOUT, "EPOLLOUT"},
                             {EPOLLRDHUP, "EPOLLRDHUP"},
                             {EPOLLERR, "EPOLLERR"},
                             {EPOLLHUP, "EPOLLHUP"},
                             {EPOLLET, "EPOLLET"}})
        if (events & bit) text += (text.empty() ? "" : "|") + std::string(name);
    return text.empty() ? "0" : text;
}

// EPOLLERR and EPOLLHUP come whether asked for or not.
unsigned from_epoll(std::uint32_t events) {
    return (events & EPOLLIN ? readable : 0u) | (events & EPOLLOUT ? writable : 0u) |
           (events & (EPOLLERR | EPOLLHUP) ? failed : 0u) | (events & EPOLLRDHUP ? peer_shut : 0u);
}

int control(int epoll_fd, bool edge, int operation, const char* name, net::socket_t fd,
            std::size_t key, unsigned events) {
    epoll_event e{};
    e.events = to_epoll(events, edge);
    e.data.u64 = key;  // what epoll_wait hands back: the connection's number
    return traced(::epoll_ctl(epoll_fd, operation, fd, &e), "epoll_ctl", epoll_fd, name, fd,
                  epoll_text(e.events));
}

}  // namespace

Poller::Poller(bool edge) : state_(new State) {
    state_->edge = edge;
    state_->epoll_fd = traced(::epoll_create1(EPOLL_CLOEXEC), "epoll_create1", "EPOLL_CLOEXEC");
    if (state_->epoll_fd < 0) throw text::Failure("epoll_create1", net::last_error());
}

Poller::~Poller() {
    ::close(state_->epoll_fd);
}

bool Poller::has_edge_mode() {
    return true;
}

const char* Poller::name() const {
    return "epoll";
}

int Poller::add(net::socket_t fd, std::size_t key, unsigned events) {
    return control(state_->epoll_fd, state_->edge, EPOLL_CTL_ADD, "EPOLL_CTL_ADD", fd, key, events);
}

int Poller::modify(net::socket_t fd, std::size_t key, unsigned events) {
    return control(state_->epoll_fd, state_->edge, EPOLL_CTL_MOD, "EPOLL_CTL_MOD", fd, key, events);
}

// Closing a descriptor takes it out of the list by itself
// [claim:epoll-forgets-closed-descriptor], when it is the last descriptor of
// its socket. A dup() of it (or a child process's copy) keeps the socket
// open and registered: the list then reports a descriptor the program has
// closed, and EPOLL_CTL_DEL on its number fails with EBADF
// [claim:epoll-dup-keeps-closed-descriptor-registered]. This loop never
// duplicates one, so close alone is enough.
void Poller::forget(net::socket_t) {}

int Poller::wait(int timeout_ms, std::vector<Ready>& ready) {
    ready.clear();
    std::vector<epoll_event>& events = state_->events;
    int n = traced(
        ::epoll_wait(state_->epoll_fd, events.data(), static_cast<int>(events.size()), timeout_ms),
        "epoll_wait", state_->epoll_fd, events.size(), std::to_string(timeout_ms) + " ms");
    for (int i = 0; i < n; ++i)
        ready.push_back(
            {static_cast<std::size_t>(events[i].data.u64), from_epoll(events[i].events)});
    return n;
}

std::size_t Poller::handed_last_wait() const {
    return 0;
}

}  // namespace poller
