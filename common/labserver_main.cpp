// labserver_main.cpp - the lab server as a program of its own, for a class:
//
//     ./labserver --bind 0.0.0.0 --port 8080 --scenario drip
//
// prints "listening on ADDR:PORT" as its first line on stdout, then one line
// per event on stderr, and serves until killed (or until --count connections
// are done).
#include "labserver.h"
#include "platform.h"

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

namespace {

void usage(FILE* out) {
    std::fprintf(out,
                 "usage: labserver [--bind ADDR] [--port PORT] [--scenario NAME[:ARG]] [--count N] "
                 "[--quiet]\n"
                 "  --bind ADDR      IPv4 or IPv6 address to listen on (default 127.0.0.1;\n"
                 "                   0.0.0.0 or :: for every interface, e.g. for a classroom)\n"
                 "  --port PORT      0 to 65535 (default 0: any free port)\n"
                 "  --scenario NAME  how to answer (default hello)\n"
                 "  --count N        serve N connections, then exit (default: serve until killed)\n"
                 "  --quiet          no event lines on stderr\n"
                 "scenarios:\n%s",
                 lab::scenario_help);
}

int usage_error(const std::string& message) {
    std::fprintf(stderr, "labserver: %s\n", message.c_str());
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

}  // namespace

int main(int argc, char** argv) {
    net::Startup startup;
    std::string bind_address = "127.0.0.1", scenario_text = "hello";
    unsigned long long port = 0, count = 0;
    bool quiet = false;
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
        if (arg != "--bind" && arg != "--port" && arg != "--scenario" && arg != "--count")
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
    }
    lab::Scenario scenario;
    std::string error;
    if (!lab::parse_scenario(scenario_text, scenario, error))
        return usage_error("--scenario: " + error);

    std::mutex log_mutex;
    std::function<void(const std::string&)> log;
    if (!quiet)
        log = [&log_mutex](const std::string& text) {
            std::lock_guard<std::mutex> lock(log_mutex);
            std::fprintf(stderr, "%s\n", text.c_str());
        };
    lab::Server server(scenario, log);
    if (!server.start(bind_address, static_cast<std::uint16_t>(port), error, count)) {
        std::fprintf(stderr, "labserver: %s\n", error.c_str());
        return 1;
    }
    std::printf("listening on %s\n", server.address().c_str());
    std::fflush(stdout);
    server.wait();
    return 0;
}
