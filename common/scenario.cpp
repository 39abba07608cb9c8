// scenario.cpp - the lab server's scenarios, read from text and written back.
#include "scenario.h"

#include "platform.h"  // inet_pton
#include "text.h"      // printable

#include <cstdio>
#include <cstdlib>

namespace lab {

const char* const scenario_help =
    "  hello          a small HTTP/1.1 response, then close\n"
    "  slow[:SECS]    wait SECS (default 2) before the hello response\n"
    "  drip[:BYTES]   send the hello response BYTES (default 8) at a time, 50 ms apart\n"
    "  big[:MIB]      a response of MIB MiB (default 64) of a checkable pattern, at full speed\n"
    "  silent         read the request and never answer (the connection is held\n"
    "                 open 60 s; labserver --silent-hold changes it)\n"
    "  reset          read the request and abort the connection (RST)\n"
    "  close          read the request and close without answering\n"
    "  echo[:SECS]    echo every byte until the client half-closes, then close; each\n"
    "                 piece read goes back SECS (default 0) after it came\n"
    "  truncate[:BYTES]  promise a 1 MiB body (Content-Length), send BYTES of it\n"
    "                 (default 1000), close\n"
    "  stall[:BYTES]  promise a 1 MiB body, send BYTES of it (default 200000), then\n"
    "                 go silent with the connection open (held as silent holds it)\n"
    "  chunked[:BYTES]   the hello body in chunks (Transfer-Encoding: chunked);\n"
    "                 with BYTES, close after BYTES of the body, before the last chunk\n"
    "  binary[:KIB]   a body of KIB KiB (default 64, up to 1024) holding every byte value,\n"
    "                 a zero in every 7 bytes (the first is byte 3), then close\n"
    "  keep-open      the hello response with Connection: keep-alive, then the connection\n"
    "                 held open (as silent holds it) until the client closes\n"
    "  mix[:LIST]     a different scenario per connection: connection k gets item k of\n"
    "                 LIST (comma-separated, repeated), e.g. mix:hello,slow:1,silent,reset;\n"
    "                 default slow:1,hello,silent,hello,reset,hello,slow:2,hello\n";

const char* const default_mix = "slow:1,hello,silent,hello,reset,hello,slow:2,hello";

namespace {

// In the order of Scenario::Kind.
const char* const kind_names[] = {"hello",   "slow",   "drip",      "big",      "silent",
                                  "reset",   "close",  "echo",      "truncate", "stall",
                                  "chunked", "binary", "keep-open", "mix"};
constexpr int kind_count = sizeof kind_names / sizeof kind_names[0];

constexpr std::size_t most_mix_items = 64;
constexpr double largest_argument = 1e9;  // from here on, "not a number"
constexpr std::uint64_t most_bytes = 1024 * 1024;

bool takes_argument(Scenario::Kind kind) {
    return kind == Scenario::slow || kind == Scenario::drip || kind == Scenario::big ||
           kind == Scenario::truncate || kind == Scenario::stall || kind == Scenario::chunked ||
           kind == Scenario::binary || kind == Scenario::echo;
}

// The argument `value` (a number parse_decimal read) put in its place. False
// if the kind's rule refuses it: slow and echo take any number of seconds,
// the others a whole number, drip at least 1, big and chunked up to 1048576,
// truncate and stall below the 1048576 bytes they promise, binary from 1 to
// binary_most.
bool set_argument(Scenario& scenario, double value) {
    bool whole = value == static_cast<double>(static_cast<std::uint64_t>(value));
    std::uint64_t number = static_cast<std::uint64_t>(value);
    switch (scenario.kind) {
        case Scenario::slow:
        case Scenario::echo:
            scenario.seconds = value;
            return true;
        case Scenario::drip:
            if (!whole || number < 1) return false;
            scenario.count = number;
            return true;
        case Scenario::big:
            if (!whole || number > most_bytes) return false;
            scenario.mebibytes = number;
            return true;
        case Scenario::truncate:
        case Scenario::stall:
            if (!whole || number >= truncate_promise) return false;
            scenario.cut = number;
            return true;
        case Scenario::chunked:
            if (!whole || number > most_bytes) return false;
            scenario.cut = number;
            return true;
        case Scenario::binary:
            if (!whole || number < 1 || number > binary_most) return false;
            scenario.kibibytes = number;
            return true;
        default:
            return false;
    }
}

// The rule set_argument applied, for the error message.
const char* argument_rule(Scenario::Kind kind) {
    switch (kind) {
        case Scenario::drip:
            return " of at least 1";
        case Scenario::truncate:
        case Scenario::stall:
            return " below 1048576";
        case Scenario::binary:
            return " from 1 to 1024";
        default:
            return " up to 1048576";
    }
}

// mix's LIST: scenarios separated by commas, each as --scenario takes it
// (not mix itself), at most most_mix_items of them.
bool parse_mix(const std::string& list, Scenario& scenario, std::string& error) {
    std::size_t at = 0;
    for (;;) {
        std::size_t comma = list.find(',', at);
        std::string item =
            list.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
        Scenario one;
        if (item.empty()) {
            error = "scenario mix: '" + text::printable(list) + "' has an empty item";
            return false;
        }
        if (item.compare(0, 3, "mix") == 0 && (item.size() == 3 || item[3] == ':')) {
            error = "scenario mix: a mix cannot contain a mix";
            return false;
        }
        if (!parse_scenario(item, one, error)) {
            error = "scenario mix: " + error;
            return false;
        }
        scenario.items.push_back(one);
        if (scenario.items.size() > most_mix_items) {
            error = "scenario mix: more than " + std::to_string(most_mix_items) + " items";
            return false;
        }
        if (comma == std::string::npos) return true;
        at = comma + 1;
    }
}

// Seconds as they were written: "0.25", "9919999" (not %g's "9.92e+06").
std::string seconds_argument(double seconds) {
    char text[48];
    std::snprintf(text, sizeof text, "%.6f", seconds);
    std::string written = text;
    written.erase(written.find_last_not_of('0') + 1);
    if (written.back() == '.') written.pop_back();
    return written;
}

}  // namespace

bool parse_scenario(const std::string& text, Scenario& scenario, std::string& error) {
    std::size_t colon = text.find(':');
    std::string name = text.substr(0, colon);
    bool has_argument = colon != std::string::npos;
    std::string argument = has_argument ? text.substr(colon + 1) : "";

    int kind = -1;
    for (int i = 0; i < kind_count; ++i)
        if (name == kind_names[i]) kind = i;
    if (kind < 0) {
        error = "unknown scenario '" + text::printable(name) + "' (see --help)";
        return false;
    }
    scenario = Scenario{};
    scenario.kind = static_cast<Scenario::Kind>(kind);
    if (scenario.kind == Scenario::mix)
        return parse_mix(has_argument ? argument : default_mix, scenario, error);
    if (scenario.kind == Scenario::truncate) scenario.cut = truncate_default;
    if (scenario.kind == Scenario::stall) scenario.cut = stall_default;
    if (scenario.kind == Scenario::echo) scenario.seconds = 0;  // at once
    if (!has_argument) return true;

    if (!takes_argument(scenario.kind)) {
        error = "scenario '" + name + "' takes no argument";
        return false;
    }
    double value = 0;
    if (!parse_decimal(argument, value) || value >= largest_argument) {
        error = "scenario " + name + ": '" + text::printable(argument) +
                "' is not a number (digits, with at most one decimal point)";
        return false;
    }
    if (set_argument(scenario, value)) return true;
    error = "scenario " + name + ": '" + argument + "' must be a whole number" +
            argument_rule(scenario.kind);
    return false;
}

const char* scenario_name(Scenario::Kind kind) {
    return kind_names[kind];
}

std::string describe_scenario(const Scenario& scenario) {
    std::string name = scenario_name(scenario.kind);
    switch (scenario.kind) {
        case Scenario::slow:
            return name + ":" + seconds_argument(scenario.seconds);
        case Scenario::echo:  // at once: as today's plain "echo"
            return scenario.seconds == 0 ? name : name + ":" + seconds_argument(scenario.seconds);
        case Scenario::binary:
            return name + ":" + std::to_string(scenario.kibibytes);
        case Scenario::drip:
            return name + ":" + std::to_string(scenario.count);
        case Scenario::big:
            return name + ":" + std::to_string(scenario.mebibytes);
        case Scenario::truncate:
        case Scenario::stall:
        case Scenario::chunked:
            return scenario.cut == Scenario::no_cut ? name
                                                    : name + ":" + std::to_string(scenario.cut);
        case Scenario::mix: {
            std::string list;
            for (const Scenario& item : scenario.items)
                list += (list.empty() ? "" : ",") + describe_scenario(item);
            return name + ":" + list;
        }
        default:
            return name;
    }
}

bool parse_decimal(const std::string& text, double& value) {
    if (text.empty() || text == "." || text.size() > 30 ||
        text.find_first_not_of("0123456789.") != std::string::npos ||
        text.find('.') != text.rfind('.'))
        return false;
    value = std::strtod(text.c_str(), nullptr);
    return true;
}

bool is_address(const std::string& text) {
    in6_addr address{};  // room for either
    return ::inet_pton(AF_INET, text.c_str(), &address) == 1 ||
           ::inet_pton(AF_INET6, text.c_str(), &address) == 1;
}

}  // namespace lab
