// chapter.cpp - command line, narration and failure reporting for the chapters.
#include "chapter.h"

#include "diagram.h"
#include "trace.h"

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdarg>
#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace chapter {

namespace {

void print_usage(const Program& program, FILE* out) {
    std::fprintf(
        out,
        "usage: %s [OPTIONS] [HOST [PORT]]\n"
        "%s\n"
        "\n"
        "Without HOST it starts the built-in lab server on 127.0.0.1 and talks to it.\n"
        "HOST is a name or an IPv4/IPv6 address; PORT defaults to 80.\n"
        "%s"
        "\n"
        "options:\n"
        "  --path PATH            request target (default /)\n"
        "  --timeout SECONDS      connect and idle timeout (default 5; fractions allowed)\n"
        "  --max-time SECONDS     a bound on the whole run (default none)\n"
        "  --scenario NAME[:ARG]  the built-in server's behaviour (default %s; not with HOST)\n"
        "  --trace                print every socket call and its result on stderr\n"
        "  --quiet                no narration (errors are still printed)\n"
        "  --diagram              after the run, a sequence chart of both sides on stderr\n"
        "  --mermaid FILE         the same events as a Mermaid sequenceDiagram in FILE\n"
        "  --help                 this text\n",
        program.name, program.summary,
        program.output_and_status
            ? program.output_and_status
            : "stdout gets exactly the bytes received; narration and errors go to stderr.\n"
              "Exit status: 0 response read to the end, 1 network failure, 2 usage error.\n",
        program.default_scenario);
    for (const ExtraOption& extra : program.extras) {
        std::string left = std::string("--") + extra.name;
        if (extra.value_name) left += std::string(" ") + extra.value_name;
        std::fprintf(out, "  %-22s %s\n", left.c_str(), extra.help);
    }
    std::fprintf(out, "\nscenarios:\n%s", lab::scenario_help);
}

bool parse_port(const std::string& text) {
    if (text.empty() || text.size() > 5) return false;
    for (char c : text)
        if (c < '0' || c > '9') return false;
    long port = std::strtol(text.c_str(), nullptr, 10);
    return port >= 1 && port <= 65535;
}

// "5", "0.5", ".25": plain decimal digits only (strtod alone would also take
// " 5", "1e3", "0x1p1", "inf").
bool parse_seconds(const std::string& text, double& seconds) {
    if (text.empty() || text.find_first_not_of("0123456789.") != std::string::npos ||
        text.find('.') != text.rfind('.') || text == ".")
        return false;
    char* end = nullptr;
    errno = 0;
    seconds = std::strtod(text.c_str(), &end);
    return errno == 0 && end == text.c_str() + text.size() && std::isfinite(seconds) &&
           seconds > 0 && seconds <= 86400;
}

// FILE could be created or replaced: its folder exists, and FILE is not a folder.
bool could_write(const std::string& file) {
    try {
        std::filesystem::path path(file);
        std::filesystem::path folder = path.has_parent_path() ? path.parent_path() : ".";
        std::error_code error;
        return std::filesystem::is_directory(folder, error) &&
               !std::filesystem::is_directory(path, error);
    } catch (const std::exception&) {  // a name the system cannot take
        return false;
    }
}

}  // namespace

int usage_error(const Program& program, const std::string& message) {
    // The message quotes what was typed: shown escaped, it stays one line.
    std::fprintf(stderr, "%s: %s\n", program.name,
                 text::terminal_safe(message.substr(0, 300)).c_str());
    print_usage(program, stderr);
    return 2;
}

int parse_command_line(int argc, char** argv, const Program& program, Options& options) {
    std::vector<std::string> positional;
    bool scenario_given = false;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg.size() < 2 || arg.compare(0, 2, "--") != 0 || arg == "--") {
            if (!arg.empty() && arg[0] == '-' && arg != "-")
                return usage_error(program, "unknown option '" + arg + "'");
            positional.push_back(arg);
            continue;
        }
        // "--name value" or "--name=value"
        std::string name = arg.substr(2), value;
        bool inline_value = false;
        if (std::size_t eq = name.find('='); eq != std::string::npos) {
            value = name.substr(eq + 1);
            name = name.substr(0, eq);
            inline_value = true;
        }
        auto take_value = [&]() -> bool {
            if (inline_value) return true;
            if (i + 1 >= argc) return false;
            value = argv[++i];
            return true;
        };
        auto is_flag = [&](bool& flag) {
            if (inline_value) return false;
            flag = true;
            return true;
        };

        if (name == "help") {
            if (inline_value) return usage_error(program, "option --help takes no value");
            print_usage(program, stdout);
            return 0;
        } else if (name == "trace" || name == "quiet" || name == "diagram") {
            bool& flag = name == "trace"   ? options.trace
                         : name == "quiet" ? options.quiet
                                           : options.diagram;
            if (!is_flag(flag)) return usage_error(program, "option --" + name + " takes no value");
        } else if (name == "mermaid") {
            if (!take_value() || value.empty())
                return usage_error(program, "option --mermaid needs a value");
            options.mermaid_file = value;
            // Written at the end of the run: a FILE that cannot be, in a folder
            // that does not exist or naming a folder, is said now, without
            // creating anything (a usage error must leave no file behind).
            if (!could_write(value))
                return usage_error(program, "--mermaid: cannot write '" + value + "'");
        } else if (name == "path") {
            if (!take_value()) return usage_error(program, "option --path needs a value");
            // The request target is visible ASCII (RFC 9112, 3.2): a space, a
            // control byte or a byte above 0x7e would break the request line.
            bool visible = !value.empty();
            for (unsigned char c : value)
                visible = visible && c > 0x20 && c < 0x7f;
            if (!visible)
                return usage_error(program, "--path: '" + value +
                                                "' must be non-empty visible ASCII: no spaces, "
                                                "control bytes or bytes above 0x7e (write %20 for "
                                                "a space)");
            options.path = value;
        } else if (name == "timeout") {
            if (!take_value()) return usage_error(program, "option --timeout needs a value");
            if (!parse_seconds(value, options.timeout))
                return usage_error(program, "--timeout: '" + value +
                                                "' is not a number of seconds greater than 0");
        } else if (name == "max-time") {
            if (!take_value()) return usage_error(program, "option --max-time needs a value");
            if (!parse_seconds(value, options.max_time))
                return usage_error(program, "--max-time: '" + value +
                                                "' is not a number of seconds greater than 0");
        } else if (name == "scenario") {
            if (!take_value()) return usage_error(program, "option --scenario needs a value");
            lab::Scenario scenario;
            std::string error;
            if (!lab::parse_scenario(value, scenario, error))
                return usage_error(program, "--scenario: " + error);
            options.scenario = value;
            scenario_given = true;
        } else {
            const ExtraOption* extra = nullptr;
            for (const ExtraOption& candidate : program.extras)
                if (name == candidate.name) extra = &candidate;
            if (!extra) return usage_error(program, "unknown option '--" + name + "'");
            if (extra->value_name) {
                if (!take_value() || value.empty())
                    return usage_error(program, "option --" + name + " needs a value");
                *extra->value = value;
            } else if (!is_flag(*extra->flag)) {
                return usage_error(program, "option --" + name + " takes no value");
            }
        }
    }

    if (positional.size() > 2)
        return usage_error(program, "unexpected argument '" + positional[2] + "'");
    if (!positional.empty()) {
        options.host = positional[0];
        if (options.host.empty()) return usage_error(program, "HOST must not be empty");
        // It goes into the Host: header: no line break may smuggle in another.
        for (unsigned char c : options.host)
            if (c <= ' ' || c == 0x7f)
                return usage_error(
                    program, "HOST '" + options.host + "' contains a space or a control byte");
    }
    if (positional.size() == 2) {
        if (!parse_port(positional[1]))
            return usage_error(program,
                               "PORT '" + positional[1] + "' is not a number from 1 to 65535");
        options.port = positional[1];
    }
    if (scenario_given && !options.host.empty())
        return usage_error(program,
                           "--scenario is for the built-in server; it cannot be used with HOST");
    if (!scenario_given) options.scenario = program.default_scenario;
    if (options.diagram || !options.mermaid_file.empty())
        diagram::start(program.name, options.diagram, options.mermaid_file);
    trace::enable(options.trace);
    return -1;
}

void show_status(const Options& options, const std::string& text) {
    if (!options.quiet && net::stderr_is_terminal()) text::show_status_line(text);
}

void narrate(const Options& options, const char* format, ...) {
    if (options.quiet) return;
    char text[1024];
    va_list args;
    va_start(args, format);
    std::vsnprintf(text, sizeof text, format, args);
    va_end(args);
    print_line(std::string("* ") + text);
}

int report(const Program& program, const Failure& failure) {
    if (diagram::recording()) diagram::client_failed(failure.what());
    std::fprintf(stderr, "%s: %s\n", program.name, text::terminal_safe(failure.what()).c_str());
    return 1;
}

void todo(int step, const char* what) {
    throw Failure("TODO " + std::to_string(step) + " is not done yet", what);
}

std::unique_ptr<lab::Server> start_builtin_server(Options& options, std::uint64_t connections) {
    if (!options.host.empty()) return nullptr;
    lab::Scenario scenario;
    std::string error;
    lab::parse_scenario(options.scenario, scenario, error);  // checked by parse_command_line

    lab::EventSink on_event;
    if (!options.quiet)
        on_event = [](const char*, const std::string& text) { print_line("  [server] " + text); };
    lab::Limits limits;
    limits.max_connections = std::max(limits.max_connections, connections);
    limits.per_client = std::max(limits.per_client, connections);
    auto server = std::make_unique<lab::Server>(scenario, on_event, limits);
    if (!server->start("127.0.0.1", 0, error)) throw Failure("built-in lab server", error);
    options.host = "127.0.0.1";
    options.port = std::to_string(server->port());
    if (diagram::recording()) diagram::server_started(server->address());
    narrate(options, "no HOST given: started the built-in lab server on %s (scenario %s)",
            server->address().c_str(), options.scenario.c_str());
    return server;
}

AddressList resolve(const Options& options) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;  // IPv4 or IPv6, whatever the name has
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    addrinfo* found = nullptr;
    narrate(options, "resolving %s port %s", options.host.c_str(), options.port.c_str());
    // A literal like "127.0.0.1" or "::1" comes back as itself, in its own
    // family [claim:getaddrinfo-literal-family]; a name with an empty label,
    // like "host..invalid", fails at once [claim:getaddrinfo-empty-label-fails].
    int rc = ::getaddrinfo(options.host.c_str(), options.port.c_str(), &hints, &found);
    trace::line("getaddrinfo(\"" + options.host + "\", \"" + options.port + "\", AF_UNSPEC) = " +
                std::to_string(rc) + (rc != 0 ? std::string(" (") + ::gai_strerror(rc) + ")" : ""));
    if (rc != 0)
        throw Failure("getaddrinfo " + options.host + " port " + options.port, ::gai_strerror(rc));
    return AddressList(found, ::freeaddrinfo);
}

std::string http_request(const Options& options) {
    std::string host = options.host;
    if (host.find(':') != std::string::npos) host = "[" + host + "]";  // an IPv6 literal
    if (options.port != "80") host += ":" + options.port;
    return "GET " + options.path + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n";
}

void write_stdout(const char* data, size_t size) {
    std::string error;
    if (net::write_stdout(data, size, error) != 0) throw Failure("write stdout", error);
}

double wait_limit(const Options& options) {
    if (options.max_time <= 0) return options.timeout;
    double left = options.max_time - seconds_since(options.started);
    if (left <= 0) check_max_time(options);
    return std::min(options.timeout, left);
}

std::chrono::steady_clock::time_point wait_deadline(const Options& options) {
    return std::chrono::steady_clock::now() +
           std::chrono::duration_cast<std::chrono::steady_clock::duration>(
               std::chrono::duration<double>(wait_limit(options)));
}

void check_max_time(const Options& options) {
    // Within 50 ms counts: kernel timers count in ticks (SO_RCVTIMEO in
    // jiffies on Linux, about 15.6 ms on Windows), so a wait cut to end at
    // --max-time can return a tick before it.
    if (options.max_time > 0 && seconds_since(options.started) >= options.max_time - 0.05)
        throw Failure("--max-time",
                      "no complete response within " + seconds_text(options.max_time));
}

void set_wait_limit(const Options& options, net::socket_t fd, int option, bool first) {
    double limit = wait_limit(options);
    if (!first && limit >= options.timeout) return;  // the socket keeps --timeout
    traced(net::set_timeout_option(fd, option, limit), "setsockopt", fd,
           option == SO_RCVTIMEO ? "SO_RCVTIMEO" : "SO_SNDTIMEO", seconds_text(limit));
}

bool parse_count(const std::string& text, std::size_t most, std::size_t& count) {
    if (text.empty() || text.size() > 6 ||
        text.find_first_not_of("0123456789") != std::string::npos)
        return false;
    count = std::strtoul(text.c_str(), nullptr, 10);
    return count >= 1 && count <= most;
}

std::string connection_line(std::size_t index, bool ok, std::uint64_t bytes, double seconds,
                            const std::string& error) {
    char line[128];
    std::snprintf(line, sizeof line, "%zu %s %" PRIu64 " bytes %.3f s", index, ok ? "ok" : "failed",
                  bytes, seconds);
    return std::string(line) + (ok ? "" : " " + text::terminal_safe(error)) + "\n";
}

void write_lines_out(const char* data, std::size_t size) {
    try {
        write_stdout(data, size);
    } catch (const Failure& failure) {
        throw StdoutFailed{failure};
    }
}

std::size_t make_room_for(const Options& options, std::size_t count, bool builtin_server,
                          bool output_files, const char* past_it) {
    const std::uint64_t each = 1 + (builtin_server ? 1 : 0) + (output_files ? 1 : 0);
    const std::uint64_t rest = 64;  // stdio, the listener, the poller, the resolver...
    const std::uint64_t needed = count * each + rest;
    net::DescriptorLimit limit = net::raise_descriptor_limit(needed);
    if (limit.now != 0 && needed > limit.before && limit.now > limit.before)
        narrate(options,
                "descriptor limit %" PRIu64 " (raised from %" PRIu64
                "): %zu connections need about %" PRIu64,
                limit.now, limit.before, count, needed);
    if (limit.now == 0 || needed <= limit.now) return count;
    std::size_t room = count;
    std::string share;
    if (builtin_server) {
        room = limit.now > rest + each ? static_cast<std::size_t>((limit.now - rest) / each) : 1;
        share = "; the built-in server's sockets come from it too, so at most " +
                std::to_string(room) + " of ours are open at once";
    }
    narrate(options,
            "descriptor limit %" PRIu64
            " (as far as it could be raised: ulimit -Hn, on macOS "
            "kern.maxfilesperproc): %zu connections need about %" PRIu64 "%s; those past it %s",
            limit.now, count, needed, share.c_str(), past_it);
    return room;
}

}  // namespace chapter
