// waiter.h - how the lab server's event loop waits for many sockets at once.
//
// The loop tells a Waiter which descriptors to watch and for what, then waits
// for any of them to become ready. Two backends, one per file, the way redis
// splits ae.c from ae_epoll.c and ae_select.c; CMakeLists.txt (and the
// Makefile) link one of them into each program:
//
//   waiter_epoll.cpp  Linux: epoll. The kernel keeps the list between calls
//                     (epoll_ctl when a socket's wish changes) and epoll_wait
//                     hands back only the ready sockets.
//   waiter_poll.cpp   everywhere else: poll(), WSAPoll() on Windows. The
//                     program keeps the list and hands all of it to the kernel
//                     on every call, which checks each socket each time.
//
// Why two: with 1,000 connections open, poll's check of every socket on every
// wake-up was a quarter to a third of the server's CPU time
// (docs/benchmarks.md, "What made the difference"); epoll costs only what is
// ready. Windows has no epoll: WSAPoll is what it offers for this
// (chapter 5 explains poll itself). Both report readiness the same way
// (level-triggered: a socket with unread bytes is reported on every wait
// until they are read), so the loop cannot tell which one it runs on.
#pragma once

#include "platform.h"

#include <memory>
#include <vector>

namespace lab {

class Waiter {
public:
    // What a socket is watched for, and what it is found ready for (bits).
    static constexpr unsigned readable = 1;  // recv will not block: bytes, a FIN or an error
    static constexpr unsigned writable = 2;  // send will not block: room in the send buffer
    static constexpr unsigned failed = 4;    // an error or a hang-up; reported, never asked for

    struct Ready {
        net::socket_t fd;
        unsigned events;  // readable, writable, failed
    };

    Waiter();  // ok() says whether it could be made
    ~Waiter();
    Waiter(const Waiter&) = delete;
    Waiter& operator=(const Waiter&) = delete;

    bool ok() const;
    const char* name() const;  // its waiting call, for messages: "epoll_wait", "poll"

    // The four calls. add, modify and remove return 0, or -1 with the error in
    // net::last_error(); `events` is never 0 (remove a socket that waits for
    // nothing).
    int add(net::socket_t fd, unsigned events);     // start watching fd
    int modify(net::socket_t fd, unsigned events);  // watch fd for other events
    int remove(net::socket_t fd);                   // stop watching fd
    // Wait up to timeout_ms (-1: until something is ready) and put the ready
    // sockets in `ready`. Returns how many, or -1 (net::last_error(): EINTR
    // when a signal came). With nothing watched it sleeps out the timeout,
    // which must not be -1 then (the loop always watches its wake-up socket).
    int wait(int timeout_ms, std::vector<Ready>& ready);

    // fd, watched, is about to be closed. epoll forgets a closed descriptor
    // by itself [claim:epoll-forgets-closed-descriptor] (no epoll_ctl
    // needed: a call saved per connection); poll's list must lose it.
    void closing(net::socket_t fd);

private:
    struct State;  // the backend's: an epoll descriptor, or poll's list
    std::unique_ptr<State> state_;
};

}  // namespace lab
