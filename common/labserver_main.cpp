// labserver_main.cpp - the lab server as a program of its own, for a class:
//
//     ./labserver --bind 0.0.0.0 --port 8080 --scenario drip
//
// prints "listening on ADDR:PORT" as its first line on stdout, then the limits
// in force and one line per event on stderr, and serves until killed (or until
// --count connections are done).
#include "labserver.h"
#include "platform.h"
#include "text.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>

namespace {

using Clock = std::chrono::steady_clock;

void usage(FILE* out) {
    std::fprintf(
        out,
        "usage: labserver [--bind ADDR] [--port PORT] [--scenario NAME[:ARG]] [--count N]\n"
        "                 [--max-connections N] [--per-client N] [--header-timeout S]\n"
        "                 [--send-timeout S] [--drain-timeout S] [--silent-hold S] [--loops N]\n"
        "                 [--quiet]\n"
        "  --bind ADDR         IPv4 or IPv6 address to listen on (default 127.0.0.1);\n"
        "                      0.0.0.0 or :: for every interface, e.g. for a classroom\n"
        "  --port PORT         0 to 65535 (default 0: any free port)\n"
        "  --scenario NAME     how to answer (default hello)\n"
        "  --count N           serve N connections, then exit (default: until killed)\n"
        "  --max-connections N connections open at once; over it, a 503 (default: what the\n"
        "                      descriptor limit allows, at most 16384)\n"
        "  --per-client N      connections open at once from one address (default: all of\n"
        "                      them on a loopback address, 256 on any other)\n"
        "  --header-timeout S  the request head must arrive within S seconds (default 10)\n"
        "  --send-timeout S    drop a client that takes none of our bytes for S seconds\n"
        "                      (default 10)\n"
        "  --drain-timeout S   after answering, wait S seconds at most for the client's FIN,\n"
        "                      reading at most 64 KiB meanwhile (default 2)\n"
        "  --silent-hold S     how long the silent scenario holds a connection (default 60)\n"
        "  --loops N           threads running an event loop, each accepting and serving\n"
        "                      its own connections (default 1: see docs/benchmarks.md)\n"
        "  --quiet             no limits or event lines on stderr\n"
        "scenarios:\n%s",
        lab::scenario_help);
}

int usage_error(const std::string& message) {
    std::fprintf(stderr, "labserver: %s\n", text::terminal_safe(message.substr(0, 300)).c_str());
    usage(stderr);
    return 2;
}

bool parse_whole(const std::string& text, unsigned long long max, unsigned long long& value) {
    if (text.empty() || text.size() > 19 ||
        text.find_first_not_of("0123456789") != std::string::npos)
        return false;
    value = std::strtoull(text.c_str(), nullptr, 10);
    return value <= max;
}

// Nothing a terminal would act on: no control bytes, nothing above 0x7e.
bool is_safe(const std::string& line) {
    for (unsigned char c : line)
        if (c < 0x20 || c >= 0x7f) return false;
    return true;
}

// The teacher's terminal must never slow the class down. Connection threads
// only put lines in a bounded queue; one writer thread prints them. When
// stderr does not keep up (a pipe nobody reads, Ctrl-S), lines are dropped
// and counted, never waited for. Each kind of event prints at most
// per_second lines a second; the rest are summed up in one line, such as
// "... 512 more resets in the last second". Control bytes from a client are
// shown escaped (\x1b), never sent to the terminal.
class EventLog {
public:
    void start() {
        std::thread([this] { write_loop(); }).detach();
    }

    void add(const char* kind, const std::string& line) {
        std::lock_guard<std::mutex> lock(mutex_);
        Kind& k = kinds_[kind];
        Clock::time_point now = Clock::now();
        if (now - k.since >= std::chrono::seconds(1)) roll(kind, k, now);
        if (k.shown < per_second) {
            ++k.shown;
            queue(is_safe(line) ? line : text::printable(line, 1000));
        } else {
            ++k.held;
        }
    }

    // Before exit: give the writer up to `seconds` to empty the queue.
    void drain(double seconds) {
        std::unique_lock<std::mutex> lock(mutex_);
        for (auto& [kind, k] : kinds_)
            roll(kind, k, Clock::now());
        wake_.notify_all();
        idle_.wait_for(lock, std::chrono::duration<double>(seconds),
                       [this] { return lines_.empty() && !writing_; });
    }

private:
    struct Kind {
        Clock::time_point since;  // the start of this kind's current second
        std::uint64_t shown = 0, held = 0;
    };
    static constexpr std::uint64_t per_second = 20;
    static constexpr std::size_t max_queued = 32 * 1024;  // bytes waiting for stderr

    // A kind's second is over: say how many of its lines were held back.
    void roll(const std::string& kind, Kind& k, Clock::time_point now) {
        if (k.held > 0)
            queue("... " + std::to_string(k.held) + " more " + kind + " in the last second");
        k = Kind{now, 0, 0};
    }

    void queue(const std::string& line) {
        if (queued_ + line.size() + 1 > max_queued) {
            ++dropped_;
            return;
        }
        lines_.push_back(line + "\n");
        queued_ += line.size() + 1;
        wake_.notify_one();
    }

    void write_loop() {
        std::unique_lock<std::mutex> lock(mutex_);
        for (;;) {
            wake_.wait_for(lock, std::chrono::seconds(1), [this] { return !lines_.empty(); });
            Clock::time_point now = Clock::now();
            for (auto& [kind, k] : kinds_)
                if (k.held > 0 && now - k.since >= std::chrono::seconds(1)) roll(kind, k, now);
            std::string text;
            for (const std::string& line : lines_)
                text += line;
            lines_.clear();
            queued_ = 0;
            if (dropped_ > 0)
                text += "... " + std::to_string(dropped_) +
                        " log lines dropped: stderr was not keeping up\n";
            dropped_ = 0;
            if (text.empty()) continue;
            writing_ = true;
            lock.unlock();
            net::write_stderr(text.data(),
                              text.size());  // may block; the queue fills and drops meanwhile
            lock.lock();
            writing_ = false;
            if (lines_.empty()) idle_.notify_all();
        }
    }

    std::mutex mutex_;
    std::condition_variable wake_, idle_;
    std::deque<std::string> lines_;
    std::map<std::string, Kind> kinds_;
    std::size_t queued_ = 0;  // bytes in lines_
    std::uint64_t dropped_ = 0;
    bool writing_ = false;
};

bool is_loopback(const std::string& address) {
    return address.rfind("127.", 0) == 0 || address == "::1";
}

}  // namespace

int main(int argc, char** argv) {
    net::Startup startup;
    std::string bind_address = "127.0.0.1", scenario_text = "hello";
    unsigned long long port = 0, count = 0, max_connections = 0, per_client = 0, loops = 1;
    bool quiet = false;
    lab::Limits limits;
    struct Timeout {
        const char* name;
        double* seconds;
    } timeouts[] = {{"--header-timeout", &limits.header_timeout},
                    {"--send-timeout", &limits.send_timeout},
                    {"--drain-timeout", &limits.drain_timeout},
                    {"--silent-hold", &limits.silent_hold}};
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--help") {
            usage(stdout);
            return 0;
        }
        if (arg == "--quiet") {
            quiet = true;
            continue;
        }
        const Timeout* timeout = nullptr;
        for (const Timeout& t : timeouts)
            if (arg == t.name) timeout = &t;
        if (!timeout && arg != "--bind" && arg != "--port" && arg != "--scenario" &&
            arg != "--count" && arg != "--max-connections" && arg != "--per-client" &&
            arg != "--loops")
            return usage_error(arg.rfind("--", 0) == 0 ? "unknown option '" + arg + "'"
                                                       : "unexpected argument '" + arg + "'");
        if (i + 1 >= argc) return usage_error("option " + arg + " needs a value");
        std::string value = argv[++i];
        if (arg == "--bind") bind_address = value;
        if (arg == "--scenario") scenario_text = value;
        if (arg == "--port" && !parse_whole(value, 65535, port))
            return usage_error("--port: '" + value + "' is not a number from 0 to 65535");
        if (arg == "--count" && (!parse_whole(value, 1000000000000ULL, count) || count == 0))
            return usage_error("--count: '" + value + "' is not a number of connections");
        if (arg == "--loops" && (!parse_whole(value, 64, loops) || loops == 0))
            return usage_error("--loops: '" + value + "' is not a number from 1 to 64");
        if ((arg == "--max-connections" &&
             (!parse_whole(value, 1000000, max_connections) || max_connections == 0)) ||
            (arg == "--per-client" &&
             (!parse_whole(value, 1000000, per_client) || per_client == 0)))
            return usage_error(arg + ": '" + value + "' is not a number from 1 to 1000000");
        if (timeout && (!lab::parse_decimal(value, *timeout->seconds) || *timeout->seconds <= 0 ||
                        *timeout->seconds > 86400))
            return usage_error(arg + ": '" + value +
                               "' is not a number of seconds above 0, up to 86400");
    }
    if (!lab::is_address(bind_address))
        return usage_error("--bind: '" + bind_address +
                           "' is not an IPv4 or IPv6 address (for every interface: 0.0.0.0 or ::)");
    lab::Scenario scenario;
    std::string error;
    if (!lab::parse_scenario(scenario_text, scenario, error))
        return usage_error("--scenario: " + error);

    // Each connection is a descriptor: take all the hard limit allows, keep
    // 64 for the rest of the program.
    net::DescriptorLimit descriptors = net::raise_descriptor_limit();
    limits.max_connections = max_connections ? max_connections : 16384;
    if (!max_connections && descriptors.now > 0)
        limits.max_connections = std::min<std::uint64_t>(
            limits.max_connections, descriptors.now > 128 ? descriptors.now - 64 : 64);
    // On loopback the only client is you; on a network, a class.
    limits.per_client = per_client                  ? per_client
                        : is_loopback(bind_address) ? limits.max_connections
                                                    : 256;

    // The limits in force, first in the log: queued now, printed once the
    // server listens (the writer starts then).
    static EventLog& log = *new EventLog;  // outlives every thread that writes to it
    log.add("limits", "labserver: scenario " + scenario_text + "; " + std::to_string(loops) +
                          " event loop" + (loops == 1 ? "" : "s") + "; at most " +
                          std::to_string(limits.max_connections) + " connections open, " +
                          std::to_string(limits.per_client) + " per client address");
    log.add("limits", "labserver: timeouts: request head " +
                          text::seconds_text(limits.header_timeout) + ", send " +
                          text::seconds_text(limits.send_timeout) + ", after the answer " +
                          text::seconds_text(limits.drain_timeout) + " or " +
                          std::to_string(limits.drain_bytes) + " bytes, silent " +
                          text::seconds_text(limits.silent_hold));
    if (descriptors.now > 0)
        log.add("limits", "labserver: descriptor limit " + std::to_string(descriptors.now) +
                              (descriptors.now > descriptors.before
                                   ? " (raised from " + std::to_string(descriptors.before) + ")"
                                   : ""));
    lab::EventSink on_event;
    if (!quiet) on_event = [](const char* kind, const std::string& line) { log.add(kind, line); };
    lab::Server server(scenario, on_event, limits, static_cast<unsigned>(loops));
    if (!server.start(bind_address, static_cast<std::uint16_t>(port), error, count)) {
        std::fprintf(stderr, "labserver: %s\n", text::terminal_safe(error).c_str());
        return 1;
    }
    std::printf("listening on %s\n", server.address().c_str());
    std::fflush(stdout);
    if (!quiet) log.start();
    server.wait();
    if (!quiet) log.drain(1.0);
    return 0;
}
