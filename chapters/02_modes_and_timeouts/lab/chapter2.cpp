// Lab 2 starter: chapter 2 with its socket work taken out (see ../README.md).
//
// Write the TODO steps, in order, where they are; leave the rest of the file
// as it is. Build and grade from the repository's root folder:
//
//   make lab2 && ./lab2       runs, and stops at the first step not written
//   make check-lab2             numbered checks of your program, and a score
//
// A run stops at the first unwritten step it reaches, which is not always the
// lowest number. A run reaches step 2, then 3, then 1 (step 1's poll is
// reached in nonblocking and deadline modes only).
//
// (Made from ../chapter2.cpp by tests/lab_starters.py --write.)
//
// Chapter 2 - the three socket modes, and what settimeout() really does.
//
// Python has two knobs, setblocking() and settimeout(), and the tutorial's
// comments get them backwards. Underneath there are three modes:
//
// clang-format off
//   mode         Python                               underneath
//   -----------  -----------------------------------  ----------------------------------------
//   blocking     setblocking(True), settimeout(None)  O_NONBLOCK off: recv sleeps until data
//   nonblocking  setblocking(False), settimeout(0)    O_NONBLOCK on: recv fails at once, EAGAIN
//   timeout      settimeout(t), as people imagine it  SO_RCVTIMEO: recv sleeps at most t
//
// and a fourth, what CPython's settimeout(t) actually does (strace shows it:
// tests/python_claims.py):
//
//   deadline     settimeout(t), as CPython does it    O_NONBLOCK on, and poll() until a deadline
// clang-format on
//
// This program fetches the same response once in each mode (or in the one
// given with --mode) and narrates what the first recv did and how long it
// waited, ending with a comparison table. stdout gets the bytes of every
// fetch, in order.
//
// Run it:  make chapter2 && ./chapter2    (every mode; the answer comes after 0.5 s)
//          ./chapter2 --mode nonblocking --scenario slow:2  (count the failed recv calls)
//          ./chapter2 --mode timeout --scenario silent --timeout 1

#include "chapter.h"
#include "platform.h"
#include "response.h"
#include "trace.h"

#include <chrono>
#include <cinttypes>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using chapter::Failure;
using chapter::narrate;
using chapter::Options;
using chapter::seconds_text;
using Clock = std::chrono::steady_clock;

namespace {

enum class Mode { blocking, nonblocking, timeout, deadline };

struct ModeInfo {
    Mode mode;
    const char* name;
    const char* python;
};
const ModeInfo all_modes[] = {
    {Mode::blocking, "blocking", "setblocking(True)"},
    {Mode::nonblocking, "nonblocking", "setblocking(False)"},
    {Mode::timeout, "timeout", "settimeout(t), imagined"},
    {Mode::deadline, "deadline", "settimeout(t), CPython"},
};

std::string mode_text;  // --mode, checked in main

const chapter::Program program = {
    "chapter2",
    "Chapter 2: blocking, non-blocking and timeout modes, and how CPython's settimeout works.",
    "slow:0.5",
    {{"mode", "MODE", "blocking, nonblocking, timeout or deadline (default: each in turn)",
      &mode_text, nullptr}}};

// What one fetch did, for the narration and the final table.
struct Outcome {
    std::uint64_t bytes = 0;
    std::string first_recv;          // what the first recv call did
    double first_data_after = -1;    // seconds from the request to the first byte
    std::uint64_t failed_tries = 0;  // nonblocking: recv calls that found nothing
    std::string ending;              // how the response ended (ResponseReader)
    std::optional<Failure> failure;  // why the fetch failed, if it did
};

Clock::time_point deadline_after(double seconds) {  // for the watchdog
    return Clock::now() +
           std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

std::string elapsed_text(double seconds) {  // a measured time: "0.501 s"
    char text[32];
    std::snprintf(text, sizeof text, "%.3f s", seconds);
    return text;
}

// ---------------------------------------------------------------------------
// Blocking mode needs a watchdog.
//
// A blocking recv on a silent server waits forever; so does a blocking
// connect to a host that never answers. Something outside the call has to
// stop it: here a second thread that, when the time is up, wakes the blocked
// call with net::wake_blocked_calls(): shutdown(SHUT_RDWR) on POSIX, which
// makes the blocked recv return 0 [claim:shutdown-wakes-blocked-recv] and a
// blocked connect fail [claim:wake-aborts-blocking-connect]; closesocket() on
// Windows, whose shutdown wakes nobody [claim:windows-closesocket-wakes-blocked-recv].
//
// In Python this is a threading.Condition and a thread that waits on it with
// a timeout. One mutex guards everything the two threads share; the watchdog
// thread sleeps on the condition variable until the deadline, or until arm()
// wakes it. arm() and disarm() run around every recv, so they only take the
// lock and store the deadline, and arm() wakes the thread only when the new
// deadline is sooner than the one it sleeps toward (the first arm, or near
// --max-time). Otherwise the thread wakes at the old deadline, finds a later
// one and sleeps again: about one wake-up per --timeout, however many calls.
class Watchdog {
public:
    // Watches the calls on `sock`, which must outlive it.
    explicit Watchdog(net::Socket& sock)
        : sock_(sock), fd_(sock.get()), thread_([this] { watch(); }) {}
    ~Watchdog() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            quit_ = true;
        }
        changed_.notify_one();
        thread_.join();
        // On Windows the wake closed the socket: its owner must not close it again.
        if (closed_socket_) sock_.release();
    }
    // Wake the socket's blocked call if it is still in it `seconds` from now.
    void arm(double seconds) {
        std::lock_guard<std::mutex> lock(mutex_);
        deadline_ = deadline_after(seconds);
        armed_ = true;
        if (deadline_ < wakes_at_) changed_.notify_one();  // it would wake too late
    }
    void disarm() {
        std::lock_guard<std::mutex> lock(mutex_);
        armed_ = false;
    }
    // True once the watchdog has woken the call. It wakes it with the lock
    // held, so a call that returned because of it finds true here.
    bool fired() {
        std::lock_guard<std::mutex> lock(mutex_);
        return fired_;
    }

private:
    void watch() {  // the watchdog thread
        std::unique_lock<std::mutex> lock(mutex_);
        while (!quit_) {
            if (armed_ && !fired_ && Clock::now() >= deadline_) {
                fired_ = true;
                closed_socket_ = net::wake_blocked_calls(fd_);
            }
            wakes_at_ = armed_ && !fired_ ? deadline_ : never;
            if (wakes_at_ == never)
                changed_.wait(lock);  // until arm() or the destructor
            else
                changed_.wait_until(lock, wakes_at_);
        }
    }

    static constexpr Clock::time_point never = Clock::time_point::max();
    net::Socket& sock_;
    const net::socket_t fd_;
    std::mutex mutex_;                    // guards the members below it, but the thread
    std::condition_variable changed_;     // notified when the thread must look again
    Clock::time_point deadline_;          // when to wake the call, if armed_
    Clock::time_point wakes_at_ = never;  // when the watchdog thread looks next
    bool armed_ = false;                  // a call is under way
    bool fired_ = false;                  // the watchdog woke it
    bool closed_socket_ = false;          // and closed the socket to do so (Windows)
    bool quit_ = false;                   // the destructor asks the thread to end
    std::thread thread_;                  // last: starts after the members it uses
};

// ---------------------------------------------------------------------------
// Deadline mode: what CPython does for settimeout(t) (sock_call_ex() in its
// Modules/socketmodule.c; the traces in tests/python_claims.py show it).
//
// The socket is non-blocking. Before each call, poll() waits for the socket to
// be ready, with the time left until one deadline: t from the start of the
// Python call. For recv(), that is one recv [claim:python-recv-modes]; for
// sendall(), the whole sendall, however many sends it takes: each poll gets
// only what is left, and TimeoutError comes t after the start even while
// data is moving [claim:python-sendall-one-deadline]. On Windows CPython
// waits with select() instead of poll() (read in its internal_select(), not
// run). poll returns 0 when the time is up. A signal makes it return
// early with EINTR [claim:poll-eintr-returns-early]: we compute the time left
// and poll again, so however often it wakes, the total wait stays one
// deadline [claim:deadline-loop-total-wait-bounded].
bool poll_until(net::socket_t fd, short events, Clock::time_point deadline) {
    // TODO 1: poll() until fd is ready or the deadline passes; retry on EINTR.
    chapter::todo(1, "poll() until fd is ready or the deadline passes; retry on EINTR");
}

// ---------------------------------------------------------------------------
// Step 1 - put the socket in the mode, and connect.

void set_mode(const Options& options, net::socket_t fd, Mode mode) {
    // TODO 2: O_NONBLOCK on or off for the mode; in timeout mode SO_RCVTIMEO, SO_SNDTIMEO.
    chapter::todo(2, "O_NONBLOCK on or off for the mode; in timeout mode SO_RCVTIMEO, SO_SNDTIMEO");
}

// What bounds connect() in each mode:
//   blocking     nothing in the call itself: the watchdog;
//   timeout      SO_SNDTIMEO, on Linux [claim:linux-sndtimeo-bounds-connect];
//                Windows ignores it for connect
//                [claim:windows-sndtimeo-does-not-bound-connect];
//   nonblocking  connect returns at once with EINPROGRESS; we wait as in
//   deadline     deadline mode: poll for writability, then SO_ERROR. CPython
//                polls for POLLOUT|POLLERR, then reads SO_ERROR
//                [claim:python-connect-timeout-polls]. Chapter 3 does the
//                same with select(): the portable way.
void connect_in_mode(const Options& options, net::Socket& sock, Mode mode,
                     const addrinfo* address) {
    std::string where = text::address_text(address->ai_addr);
    Failure no_answer("connect " + where, "no answer within " + seconds_text(options.timeout));
    Watchdog watchdog(sock);  // armed in blocking mode only
    if (mode == Mode::blocking) watchdog.arm(chapter::wait_limit(options));
    int rc =
        traced(::connect(sock.get(), address->ai_addr, static_cast<socklen_t>(address->ai_addrlen)),
               "connect", sock.get(), where);
    int err = net::last_error();
    watchdog.disarm();
    if (rc == 0) return;
    if (watchdog.fired() || (mode == Mode::timeout && net::is_in_progress(err))) {
        chapter::check_max_time(options);  // it was --max-time that ended the wait
        throw no_answer;
    }
    if (!net::is_in_progress(err)) throw Failure("connect " + where, err);

    // Nonblocking and deadline mode: the handshake goes on without us.
    if (!poll_until(sock.get(), POLLOUT, chapter::wait_deadline(options))) {
        chapter::check_max_time(options);
        throw no_answer;
    }
    int so_error = 0;
    socklen_t length = sizeof so_error;
    if (::getsockopt(sock.get(), SOL_SOCKET, SO_ERROR, reinterpret_cast<char*>(&so_error),
                     &length) != 0)
        throw Failure("getsockopt SO_ERROR", net::last_error());
    if (so_error != 0) throw Failure("connect " + where, so_error);
}

// Every address in turn, as Python's socket.create_connection() does: a
// fresh socket for each, and when one fails, say why and try the next.
net::Socket connect_to_host(const Options& options, Mode mode) {
    chapter::AddressList addresses = chapter::resolve(options);
    Failure last_failure("connect " + options.host, "no address to try");
    for (const addrinfo* address = addresses.get(); address; address = address->ai_next) {
        net::Socket sock(traced(::socket(address->ai_family, SOCK_STREAM, IPPROTO_TCP), "socket",
                                address->ai_family == AF_INET6 ? "AF_INET6" : "AF_INET",
                                "SOCK_STREAM"));
        if (!sock.valid()) throw Failure("socket", net::last_error());
        net::no_sigpipe(sock.get());
        set_mode(options, sock.get(), mode);
        try {
            connect_in_mode(options, sock, mode, address);
            narrate(options, "connected to %s", text::address_text(address->ai_addr).c_str());
            return sock;
        } catch (const Failure& failure) {  // say why, close `sock`, try the next address
            narrate(options, "%s", failure.what());
            last_failure = failure;
        }
    }
    throw last_failure;
}

// ---------------------------------------------------------------------------
// Steps 2 and 3 - send the request, receive until EOF, in the mode.

// One send or recv, the way the mode does it: what the call returned (n), its
// error when n is -1, and whether the wait ran out first. In deadline and
// nonblocking mode `deadline` ends the wait; in blocking and timeout mode each
// call may wait --timeout (less near --max-time: chapter::wait_limit).
struct CallResult {
    long n;
    int err = 0;
    bool timed_out = false;
};

template <class Call>
CallResult call_in_mode(const Options& options, Mode mode, net::socket_t fd, short events,
                        Clock::time_point deadline, Watchdog& watchdog, std::uint64_t& failed_tries,
                        Call call) {
    // TODO 3: make the call the mode's way (retry, poll first, or fail); flag a timeout.
    chapter::todo(3, "make the call the mode's way (retry, poll first, or fail); flag a timeout");
}

void send_all(const Options& options, Mode mode, net::socket_t fd, const std::string& data,
              Watchdog& watchdog) {
    std::uint64_t failed_tries = 0;
    auto deadline = chapter::wait_deadline(options);  // one for the whole send_all, as sendall()
    for (std::size_t sent = 0; sent < data.size();) {
        CallResult r =
            call_in_mode(options, mode, fd, POLLOUT, deadline, watchdog, failed_tries, [&] {
                return traced(::send(fd, data.data() + sent, static_cast<int>(data.size() - sent),
                                     net::send_flags),
                              "send", fd, data.size() - sent);
            });
        if (r.timed_out) {
            chapter::check_max_time(options);  // it was --max-time that ended the wait
            throw Failure("send", "the server took nothing for " + seconds_text(options.timeout));
        }
        if (r.n < 0) throw Failure("send", r.err);
        sent += static_cast<std::size_t>(r.n);
    }
}

// "no data for 5 s (poll timed out)": the failure of a recv that waited
// --timeout, in the words of the mode that stopped it.
Failure timeout_failure(const Options& options, Mode mode, int err) {
    chapter::check_max_time(options);  // it was --max-time that ended the wait
    std::string how = mode == Mode::blocking      ? "the watchdog woke the call"
                      : mode == Mode::timeout     ? "SO_RCVTIMEO expired: " + net::error_name(err)
                      : mode == Mode::nonblocking ? "gave up retrying"
                                                  : "poll timed out";
    return Failure("recv", "no data for " + seconds_text(options.timeout) + " (" + how + ")");
}

// "returned 127 bytes after 0.501 s", or "ended after 1.001 s"; in
// nonblocking mode after how many tries.
std::string first_recv_text(const CallResult& r, Mode mode, std::uint64_t failed_tries,
                            Clock::time_point start) {
    std::string after = elapsed_text(chapter::seconds_since(start));
    std::string what = r.n > 0 ? "returned " + std::to_string(r.n) + " bytes after " + after
                               : "ended after " + after;
    if (mode != Mode::nonblocking) return what;
    return std::to_string(failed_tries) + " failed tries (EWOULDBLOCK), then " + what;
}

// In every mode the first recv is the interesting one: it is the one that
// meets a server that has not answered yet. A blocking recv sleeps until data
// comes, and then returns what is there, not a full buffer
// [claim:blocking-recv-returns-what-is-there]. A non-blocking recv fails at
// once with EWOULDBLOCK [claim:nonblocking-recv-would-block]. With SO_RCVTIMEO
// it fails after the timeout, with EAGAIN on POSIX and WSAETIMEDOUT on Windows
// [claim:rcvtimeo-bounds-recv] (Microsoft documents that after WSAETIMEDOUT
// the socket's state is indeterminate: do not reuse it).
//
// In every mode we read until the response is complete, as chapter 1 does
// (chapter::ResponseReader: its Content-Length, its last chunk, or the FIN),
// and every wait for the next piece is bounded by --timeout, however much
// came before it.
void receive_response(const Options& options, Mode mode, net::socket_t fd, Watchdog& watchdog,
                      Outcome& outcome) {
    static char buffer[64 * 1024];
    chapter::ResponseReader response;
    auto request_sent = Clock::now();
    while (!response.complete()) {
        auto start = Clock::now();
        CallResult r = call_in_mode(options, mode, fd, POLLIN, chapter::wait_deadline(options),
                                    watchdog, outcome.failed_tries, [&] {
                                        return traced(::recv(fd, buffer, sizeof buffer, 0), "recv",
                                                      fd, sizeof buffer);
                                    });
        if (outcome.first_recv.empty())
            outcome.first_recv = first_recv_text(r, mode, outcome.failed_tries, start);
        if (r.timed_out) throw timeout_failure(options, mode, r.err);
        if (r.n < 0) throw Failure("recv", r.err);
        if (r.n == 0) {  // the server's FIN: complete only if the response ends there
            response.at_eof();
            break;
        }
        auto received = static_cast<std::size_t>(r.n);
        if (outcome.bytes == 0) outcome.first_data_after = chapter::seconds_since(request_sent);
        chapter::write_stdout(buffer, received);
        outcome.bytes += received;
        response.take(buffer, received);
    }
    outcome.ending = response.how_it_ended();
}

// ---------------------------------------------------------------------------
// One fetch in one mode: resolve and connect, send, receive, close. A failure
// ends this mode's fetch, and is kept for the table.

Outcome fetch(const Options& options, const ModeInfo& info) {
    Outcome outcome;
    narrate(options, "--- mode %s (Python: %s)", info.name, info.python);
    try {
        net::Socket sock = connect_to_host(options, info.mode);
        Watchdog watchdog(sock);  // armed in blocking mode only
        send_all(options, info.mode, sock.get(), chapter::http_request(options), watchdog);
        receive_response(options, info.mode, sock.get(), watchdog, outcome);
        narrate(options, "first recv: %s", outcome.first_recv.c_str());
        narrate(options, "%s; %" PRIu64 " bytes", outcome.ending.c_str(), outcome.bytes);
        net::socket_t fd = sock.release();
        traced(net::close_socket(fd), "close", fd);
    } catch (const Failure& failure) {
        if (!outcome.first_recv.empty())
            narrate(options, "first recv: %s", outcome.first_recv.c_str());
        narrate(options, "mode %s failed: %s", info.name, failure.what());
        outcome.failure = failure;
    }
    return outcome;
}

using Row = std::pair<ModeInfo, Outcome>;

void print_table(const Options& options, const std::vector<Row>& rows) {
    if (options.quiet) return;
    chapter::print_line("");
    chapter::print_line(
        "mode         Python                   first byte after  failed recv tries  result");
    for (const auto& [info, outcome] : rows) {
        char line[512];
        std::string after =
            outcome.first_data_after < 0 ? "-" : elapsed_text(outcome.first_data_after);
        std::string result = outcome.failure ? "failed: " + std::string(outcome.failure->what())
                                             : "ok, " + std::to_string(outcome.bytes) + " bytes";
        std::snprintf(
            line, sizeof line, "%-12s %-24s %-17s %-18s %s", info.name, info.python, after.c_str(),
            info.mode == Mode::nonblocking ? std::to_string(outcome.failed_tries).c_str() : "-",
            result.c_str());
        chapter::print_line(line);
    }
}

}  // namespace

int main(int argc, char** argv) {
    net::Startup startup;  // WSAStartup on Windows, nothing on POSIX
    Options options;
    int status = chapter::parse_command_line(argc, argv, program, options);
    if (status >= 0) return status;
    std::vector<ModeInfo> modes;
    for (const ModeInfo& info : all_modes)
        if (mode_text.empty() || mode_text == info.name) modes.push_back(info);
    if (modes.empty())
        return chapter::usage_error(
            program,
            "--mode: '" + mode_text + "' is not blocking, nonblocking, timeout or deadline");

    try {
        auto server = chapter::start_builtin_server(options);  // only without HOST
        std::vector<Row> rows;
        for (const ModeInfo& info : modes)
            rows.emplace_back(info, fetch(options, info));
        if (rows.size() > 1) print_table(options, rows);
        for (const auto& [info, outcome] : rows)  // the first mode that failed, if any
            if (outcome.failure) throw *outcome.failure;
    } catch (const Failure& failure) {  // reported after the server has stopped and said its last
        return chapter::report(program, failure);
    }
    return 0;
}
