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
// Run it:  make chapter2 && ./chapter2                      (every mode; the answer comes after 0.5
// s)
//          ./chapter2 --mode nonblocking --scenario slow:2  (count the failed recv calls)
//          ./chapter2 --mode timeout --scenario silent --timeout 1

#include "chapter.h"
#include "platform.h"
#include "response.h"
#include "trace.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using chapter::Failure;
using chapter::narrate;
using chapter::Options;
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
    std::optional<Failure> failure;
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
// arm() and disarm() run around every recv, so they must cost next to
// nothing: they only store the deadline and a flag (atomics: no lock, no
// system call). The watchdog thread sleeps until the deadline it last saw;
// when it wakes, it looks at the newest one and sleeps again, or fires if the
// call is still under way. About one wake-up per --timeout, however many
// calls. It is woken early only for a deadline sooner than the one it sleeps
// toward (the first arm, or near --max-time).
class Watchdog {
public:
    explicit Watchdog(net::socket_t fd) : fd_(fd), thread_([this] { run(); }) {}
    ~Watchdog() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            quit_ = true;
        }
        changed_.notify_all();
        thread_.join();
    }
    // Wake the socket's blocked call if it is still in it `seconds` from now.
    void arm(double seconds) {
        Clock::rep deadline = deadline_after(seconds).time_since_epoch().count();
        deadline_ = deadline;
        armed_ = true;
        if (deadline < sleeping_until_) {  // it would wake too late: wake it now
            std::lock_guard<std::mutex> lock(mutex_);
            changed_.notify_all();
        }
    }
    void disarm() { armed_ = false; }
    // True once the watchdog has fired. It sets fired_ before it wakes the
    // call, and holds its lock until the waking is done, so a caller that
    // sees fired_ waits here for that, and closed_socket() is then final.
    bool fired() {
        if (!fired_) return false;
        std::lock_guard<std::mutex> lock(mutex_);
        return true;
    }
    bool closed_socket() {  // on Windows after firing: do not close it again
        return fired() && closed_;
    }

private:
    void run() {
        std::unique_lock<std::mutex> lock(mutex_);
        while (!quit_) {
            Clock::rep deadline = deadline_, now = Clock::now().time_since_epoch().count();
            if (armed_ && !fired_ && now >= deadline) {
                fired_ = true;  // before the wake: the woken call must see it
                closed_ = net::wake_blocked_calls(fd_);
                continue;
            }
            // Publish how long we sleep, then check that no arm() came in
            // between; either we see its deadline, or it sees our sleep and
            // wakes us (both sides use sequentially consistent atomics).
            sleeping_until_ = deadline > now ? deadline : never;
            if (deadline_ != deadline) continue;
            if (sleeping_until_ == never)
                changed_.wait(lock);
            else
                changed_.wait_until(lock, Clock::time_point(Clock::duration(deadline)));
        }
    }

    static constexpr Clock::rep never = std::numeric_limits<Clock::rep>::max();
    net::socket_t fd_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::atomic<Clock::rep> deadline_{0}, sleeping_until_{never};
    std::atomic<bool> armed_{false}, fired_{false}, closed_{false};
    bool quit_ = false;   // under mutex_
    std::thread thread_;  // last: starts after the members it uses
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
    // lab step 1: poll() until fd is ready or the deadline passes; retry on EINTR
    for (;;) {
        // Rounded up: poll counts whole milliseconds and must not wake before the deadline.
        auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left < 0) left = 0;
        short revents = 0;
        // poll() on POSIX, WSAPoll() on Windows: the same call, spelled
        // differently. Before Windows 10 version 2004, WSAPoll never reports a
        // failed connect, so a refused connect waits here until the deadline
        // (read, not run: docs/portability.md).
        int n = traced(net::poll_one(fd, events, static_cast<int>(left), &revents), "poll", fd,
                       events == POLLIN ? "POLLIN" : "POLLOUT", std::to_string(left) + " ms");
        if (n > 0) return true;
        if (n == 0) return false;
        if (!net::is_interrupted(net::last_error())) throw Failure("poll", net::last_error());
    }
}

// ---------------------------------------------------------------------------
// Step 1 - put the socket in the mode, and connect.

void set_mode(const Options& options, net::socket_t fd, Mode mode) {
    // lab step 2: O_NONBLOCK on or off for the mode; in timeout mode SO_RCVTIMEO, SO_SNDTIMEO
    // CPython's setblocking() and settimeout() switch O_NONBLOCK with one
    // ioctl(fd, FIONBIO, [1 or 0]) on Linux [claim:python-setblocking-is-fionbio]:
    // settimeout(0) and settimeout(t) switch it on, settimeout(None) off, and
    // no kernel timeout is ever set [claim:python-settimeout-modes]. We use
    // fcntl(F_GETFL), then F_SETFL with O_NONBLOCK added or removed: the
    // portable POSIX way, which keeps the other flags
    // [claim:nonblocking-keeps-other-flags]. On Windows both are
    // ioctlsocket(FIONBIO).
    bool nonblocking = mode == Mode::nonblocking || mode == Mode::deadline;
    if (net::set_nonblocking(fd, nonblocking) != 0)  // traced as fcntl (ioctlsocket)
        throw Failure(nonblocking ? "set O_NONBLOCK" : "clear O_NONBLOCK", net::last_error());
    if (mode == Mode::timeout) {
        // A timeval on POSIX, a DWORD of milliseconds on Windows; getsockopt
        // reads back what was set [claim:timeout-option-reads-back], and 0
        // means no timeout at all [claim:zero-rcvtimeo-means-no-timeout].
        double limit = chapter::wait_limit(options);  // --timeout, or less near --max-time
        for (int option : {SO_RCVTIMEO, SO_SNDTIMEO})
            if (traced(net::set_timeout_option(fd, option, limit), "setsockopt", fd,
                       option == SO_RCVTIMEO ? "SO_RCVTIMEO" : "SO_SNDTIMEO",
                       chapter::seconds_text(limit)) != 0)
                throw Failure("setsockopt", net::last_error());
    }
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
std::optional<Failure> connect_in_mode(const Options& options, net::socket_t fd, Mode mode,
                                       const addrinfo* address, Watchdog& watchdog) {
    std::string where = text::address_text(address->ai_addr);
    if (mode == Mode::blocking) watchdog.arm(chapter::wait_limit(options));
    int rc = traced(::connect(fd, address->ai_addr, static_cast<socklen_t>(address->ai_addrlen)),
                    "connect", fd, where);
    int err = net::last_error();
    watchdog.disarm();
    if (rc == 0) return std::nullopt;
    bool timed_out = watchdog.fired() || (mode == Mode::timeout && net::is_in_progress(err));
    if (timed_out) chapter::check_max_time(options);
    if (timed_out)
        return Failure("connect " + where,
                       "no answer within " + chapter::seconds_text(options.timeout));
    if (!net::is_in_progress(err)) return Failure("connect " + where, err);

    if (!poll_until(fd, POLLOUT, chapter::wait_deadline(options))) {
        chapter::check_max_time(options);
        return Failure("connect " + where,
                       "no answer within " + chapter::seconds_text(options.timeout));
    }
    int so_error = 0;
    socklen_t length = sizeof so_error;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, reinterpret_cast<char*>(&so_error), &length) != 0)
        return Failure("getsockopt SO_ERROR", net::last_error());
    if (so_error != 0) return Failure("connect " + where, so_error);
    return std::nullopt;
}

// ---------------------------------------------------------------------------
// Steps 2 and 3 - send the request, receive until EOF, in the mode.

// One send or recv, the way the mode does it. Returns what the call returned;
// -1 with err 0 when there was nothing to do in time. In deadline and
// nonblocking mode `deadline` ends the wait; in blocking and timeout mode each
// call may wait --timeout (less near --max-time: chapter::wait_limit).
struct CallResult {
    long n;
    int err;
};

template <class Call>
CallResult call_in_mode(const Options& options, Mode mode, net::socket_t fd, short events,
                        Clock::time_point deadline, Watchdog& watchdog, std::uint64_t& failed_tries,
                        Call call) {
    // lab step 3: make the call the mode's way: retry, poll first, or let it fail
    for (;;) {
        if (mode == Mode::deadline && !poll_until(fd, events, deadline))
            return {-1, 0};  // timed out: err 0
        if (mode == Mode::blocking) watchdog.arm(chapter::wait_limit(options));
        if (mode == Mode::timeout)
            chapter::set_wait_limit(options, fd, events == POLLIN ? SO_RCVTIMEO : SO_SNDTIMEO);
        long n = call();
        int err = net::last_error();
        if (mode == Mode::blocking) watchdog.disarm();
        if (n >= 0) return {n, 0};
        if (net::is_interrupted(err)) continue;
        if (mode == Mode::nonblocking && net::is_would_block(err)) {
            // The naive retry loop: try again at once. It works, and burns a
            // whole core while it waits; chapter 3 sleeps in select() instead.
            ++failed_tries;
            if (Clock::now() >= deadline) return {-1, 0};
            continue;
        }
        if (mode == Mode::deadline && net::is_would_block(err)) continue;  // poll again
        return {-1, err};
    }
}

Failure timeout_failure(const char* call, const Options& options, Mode mode, int err) {
    chapter::check_max_time(options);  // it was --max-time that ended the wait
    std::string how = mode == Mode::blocking      ? "the watchdog woke the call"
                      : mode == Mode::timeout     ? "SO_RCVTIMEO expired: " + net::error_name(err)
                      : mode == Mode::nonblocking ? "gave up retrying"
                                                  : "poll timed out";
    return Failure(call,
                   "no data for " + chapter::seconds_text(options.timeout) + " (" + how + ")");
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
        if (r.n < 0 && (r.err == 0 || net::is_timed_out(r.err))) chapter::check_max_time(options);
        if (r.n < 0 && (r.err == 0 || net::is_timed_out(r.err)))
            throw Failure("send",
                          "the server took nothing for " + chapter::seconds_text(options.timeout));
        if (r.n < 0) throw Failure("send", r.err);
        sent += static_cast<std::size_t>(r.n);
    }
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
// (chapter::ResponseReader: its Content-Length, its last chunk, or the FIN).
void receive_response(const Options& options, Mode mode, net::socket_t fd, Watchdog& watchdog,
                      Outcome& outcome, Clock::time_point request_sent) {
    static char buffer[64 * 1024];
    chapter::ResponseReader response;
    while (!response.complete()) {
        auto start = Clock::now();
        CallResult r = call_in_mode(options, mode, fd, POLLIN, chapter::wait_deadline(options),
                                    watchdog, outcome.failed_tries, [&] {
                                        return traced(::recv(fd, buffer, sizeof buffer, 0), "recv",
                                                      fd, sizeof buffer);
                                    });
        if (outcome.first_recv.empty()) {
            outcome.first_recv = r.n > 0
                                     ? "returned " + std::to_string(r.n) + " bytes after " +
                                           elapsed_text(chapter::seconds_since(start))
                                     : "ended after " + elapsed_text(chapter::seconds_since(start));
            if (mode == Mode::nonblocking)
                outcome.first_recv = std::to_string(outcome.failed_tries) +
                                     " failed tries (EWOULDBLOCK), then " + outcome.first_recv;
        }
        // Blocking mode: the watchdog's shutdown makes recv return 0, as at
        // EOF; only fired() tells the two apart.
        if (watchdog.fired() || (r.n < 0 && (r.err == 0 || net::is_timed_out(r.err))))
            throw timeout_failure("recv", options, mode, r.err);
        if (r.n < 0) throw Failure("recv", r.err);
        if (r.n == 0) {  // the server's FIN: complete only if the response ends there
            response.at_eof();
            break;
        }
        if (outcome.bytes == 0) outcome.first_data_after = chapter::seconds_since(request_sent);
        chapter::write_stdout(buffer, static_cast<std::size_t>(r.n));
        outcome.bytes += static_cast<std::uint64_t>(r.n);
        response.take(buffer, static_cast<std::size_t>(r.n));
    }
    outcome.ending = response.how_it_ended();
}

// ---------------------------------------------------------------------------
// One fetch in one mode: resolve, connect, send, receive, close.

Outcome fetch(const Options& options, const ModeInfo& info) {
    Outcome outcome;
    narrate(options, "--- mode %s (Python: %s)", info.name, info.python);
    try {
        chapter::AddressList addresses = chapter::resolve(options);
        std::optional<Failure> last_failure;
        for (const addrinfo* address = addresses.get(); address; address = address->ai_next) {
            net::Socket sock(
                traced(::socket(address->ai_family, SOCK_STREAM, IPPROTO_TCP), "socket",
                       address->ai_family == AF_INET6 ? "AF_INET6" : "AF_INET", "SOCK_STREAM"));
            if (!sock.valid()) throw Failure("socket", net::last_error());
            net::no_sigpipe(sock.get());
            set_mode(options, sock.get(), info.mode);
            Watchdog watchdog(sock.get());  // armed in blocking mode only
            try {
                last_failure = connect_in_mode(options, sock.get(), info.mode, address, watchdog);
                if (last_failure) {
                    narrate(options, "%s", last_failure->what());
                    if (watchdog.closed_socket()) sock.release();
                    continue;
                }
                narrate(options, "connected to %s", text::address_text(address->ai_addr).c_str());
                send_all(options, info.mode, sock.get(), chapter::http_request(options), watchdog);
                receive_response(options, info.mode, sock.get(), watchdog, outcome, Clock::now());
            } catch (const Failure&) {
                if (watchdog.closed_socket()) sock.release();
                throw;
            }
            narrate(options, "first recv: %s", outcome.first_recv.c_str());
            narrate(options, "%s; %llu bytes", outcome.ending.c_str(),
                    static_cast<unsigned long long>(outcome.bytes));
            net::socket_t fd = sock.release();
            traced(net::close_socket(fd), "close", fd);
            return outcome;
        }
        throw last_failure.value_or(Failure("connect " + options.host, "no address to try"));
    } catch (const Failure& failure) {
        if (!outcome.first_recv.empty())
            narrate(options, "first recv: %s", outcome.first_recv.c_str());
        narrate(options, "mode %s failed: %s", info.name, failure.what());
        outcome.failure = failure;
        return outcome;
    }
}

void print_table(const Options& options, const std::vector<std::pair<ModeInfo, Outcome>>& rows) {
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
    net::Startup startup;
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

    std::optional<Failure> first_failure;
    try {
        auto server = chapter::start_builtin_server(options);  // only without HOST
        std::vector<std::pair<ModeInfo, Outcome>> rows;
        for (const ModeInfo& info : modes) {
            rows.emplace_back(info, fetch(options, info));
            if (rows.back().second.failure && !first_failure)
                first_failure = rows.back().second.failure;
        }
        if (rows.size() > 1) print_table(options, rows);
    } catch (const Failure& failure) {
        first_failure = failure;
    }
    if (first_failure) return chapter::report(program, *first_failure);
    return 0;
}
