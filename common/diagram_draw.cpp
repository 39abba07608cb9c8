// diagram_draw.cpp - the chart of what diagram.cpp recorded: text for
// --diagram (80 columns), Mermaid for --mermaid.
#include "diagram_events.h"
#include "text.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace diagram {

namespace {

std::string bytes_text(std::uint64_t n) {
    std::string digits = std::to_string(n), out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out + " B";
}

std::string times(std::uint64_t calls) {
    return calls > 1 ? " x" + std::to_string(calls) : "";
}

// An arrow's label, a note's text.
std::string label(const Event& e) {
    switch (e.wire) {
        case Wire::syn:
            return "SYN";
        case Wire::syn_ack:
            return "SYN-ACK";
        case Wire::ack:
            return "ACK";
        case Wire::fin:
            return "FIN";
        case Wire::rst:
            return "RST";
        case Wire::data:
            return bytes_text(e.bytes);
        case Wire::none:
            break;
    }
    if (e.merge == Merge::read)
        return (e.side == client ? "recv" : "read") + times(e.calls) + ": " + bytes_text(e.bytes);
    if (e.merge == Merge::empty) return e.text + times(e.calls);
    return e.text;
}

// Two arrows of one connection, from the two sides, drawn one after the
// other, whose calls overlapped in time (the second began before the first
// was recorded): the wire may have either first. They are drawn as a group,
// "at the same time" (Mermaid's par block).
void mark_crossings(std::vector<Event>& events) {
    int groups = 0;
    std::map<int, std::size_t> last_arrow;  // conn -> index of its last arrow
    for (std::size_t i = 0; i < events.size(); ++i) {
        Event& e = events[i];
        if (e.wire == Wire::none) continue;
        auto found = last_arrow.find(e.conn);
        if (found != last_arrow.end()) {
            Event& before = events[found->second];
            bool handshake = e.wire == Wire::syn_ack || e.wire == Wire::ack;  // in order
            if (before.side != e.side && e.begin < before.end && !handshake) {
                if (before.group == 0) before.group = ++groups;
                e.group = before.group;
            }
        }
        last_arrow[e.conn] = i;
    }
}

// What the sender did to send it: "close", "send x17" for a run of sends.
std::string sender_text(const Event& e) {
    return e.text + (e.merge == Merge::sent && !e.text.empty() ? times(e.calls) : "");
}

// The events in drawing order, runs of data added up: the sends of one side
// in a row are one arrow (the other side's recvs between them do not break
// the run), and so are one side's recvs.
std::vector<Event> merged(std::vector<Event> events) {
    std::stable_sort(events.begin(), events.end(),
                     [](const Event& a, const Event& b) { return a.order < b.order; });
    std::vector<Event> out;
    std::map<std::pair<int, int>, std::size_t> open;  // (conn, side * 4 + merge) -> index in out
    auto key = [](const Event& e, Side side, Merge merge) {
        return std::make_pair(e.conn, static_cast<int>(side) * 4 + static_cast<int>(merge));
    };
    for (const Event& e : events) {
        if (e.merge == Merge::none) {  // an arrow ends every run; a note, its side's
            for (auto it = open.begin(); it != open.end();)
                it = it->first.first == e.conn &&
                             (e.wire != Wire::none || it->first.second / 4 == e.side)
                         ? open.erase(it)
                         : std::next(it);
            out.push_back(e);
            continue;
        }
        if (e.merge == Merge::sent) open.erase(key(e, other(e.side), Merge::sent));
        auto found = open.find(key(e, e.side, e.merge));
        if (found != open.end()) {
            out[found->second].bytes += e.bytes;
            out[found->second].calls += e.calls;
            out[found->second].end = e.end;
            continue;
        }
        open[key(e, e.side, e.merge)] = out.size();
        out.push_back(e);
    }
    mark_crossings(out);
    return out;
}

// Who waits in TIME_WAIT: the side whose FIN went first, when both FINs were
// exchanged and no RST cut the connection short.
std::string ending(const Connection& c) {
    if (c.reset) return "reset: no TIME_WAIT on either side";
    if (c.first_fin >= 0 && c.fin[0] && c.fin[1] && c.closed[0] && c.closed[1])
        return std::string(c.first_fin == client ? "client" : "server") +
               " in TIME_WAIT (its FIN went first)";
    return "";
}

// Up to `lines` lines of at most `width` characters, cut at spaces.
std::vector<std::string> wrapped(const std::string& text, std::size_t width, std::size_t lines) {
    std::vector<std::string> out;
    std::string rest = text;
    while (!rest.empty()) {
        if (out.size() + 1 == lines && rest.size() > width) {
            out.push_back(rest.substr(0, width - 3) + "...");
            break;
        }
        std::size_t cut = rest.size() <= width ? rest.size() : rest.rfind(' ', width);
        if (cut == std::string::npos || cut == 0) cut = std::min(width, rest.size());
        out.push_back(rest.substr(0, cut));
        rest = rest.substr(std::min(rest.size(), cut + (cut < rest.size() && rest[cut] == ' ')));
    }
    return out;
}

std::string arrow(Wire wire, Side from, const std::string& what, std::size_t width) {
    char fill = wire == Wire::data ? '=' : '-';
    std::string middle = " " + what + " ";
    if (middle.size() > width - 4) middle = middle.substr(0, width - 4);
    std::size_t left = (width - middle.size()) / 2;
    std::string line = std::string(left, fill) + middle;
    line += std::string(width - line.size(), fill);
    char head = wire == Wire::rst ? 'x' : '>';
    if (from == client)
        line.back() = head;
    else
        line.front() = head == '>' ? '<' : 'x';
    return line;
}

std::string time_text(double at) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%7.3f", at);
    return buffer;
}

std::string padded(const std::string& text, std::size_t width) {
    return text.size() >= width ? text.substr(0, width)
                                : text + std::string(width - text.size(), ' ');
}

// One connection: client and server lanes and the wire between, 80 columns.
// An event with `wide` set (the ending, the error) spans the lanes.
void draw_two_lanes(const Recorder& r, const std::vector<Event>& events, FILE* out) {
    const std::size_t time_w = 7, client_w = 20, wire_w = 25, server_w = 23;
    bool offline = !r.server_address.empty(), crossed = false;
    std::fprintf(out, "%s  %s %s %s\n", padded("   time", time_w).c_str(),
                 padded("client", client_w).c_str(), padded("", wire_w).c_str(),
                 offline ? "server (built-in)" : "server (as seen)");
    for (const Event& e : events) {
        std::string what = label(e);
        bool is_arrow = e.wire != Wire::none;
        std::string text = is_arrow ? sender_text(e) : what;
        std::vector<std::string> left, right;
        if (e.wide)
            left = wrapped(text, 80 - time_w - 2, 3);
        else if (e.side == client)
            left = wrapped(text, client_w, 3);
        else
            right = wrapped(text, server_w, 3);
        std::string when = time_text(e.at);
        if (e.group != 0) when[0] = '*';
        crossed = crossed || e.group != 0;
        std::size_t rows = std::max<std::size_t>({1, left.size(), right.size()});
        for (std::size_t i = 0; i < rows; ++i) {
            std::string line =
                (i == 0 ? when : std::string(time_w, ' ')) + "  " +
                (e.wide ? left[i]
                        : padded(i < left.size() ? left[i] : "", client_w) + " " +
                              (i == 0 && is_arrow ? arrow(e.wire, e.side, what, wire_w)
                                                  : std::string(wire_w, ' ')) +
                              " " + (i < right.size() ? right[i] : ""));
            while (!line.empty() && line.back() == ' ')
                line.pop_back();
            std::fprintf(out, "%s\n", text::terminal_safe(line).c_str());
        }
    }
    if (crossed)
        std::fprintf(
            out, "(* crossed: sent at once from both sides; either may be first on the wire)\n");
}

// Many connections (chapter 5): one lane each for the first eight, a short
// mark per event: "SYN>" the client sent a SYN, "<140B" the server sent data.
void draw_lanes(const Recorder& r, const std::vector<Event>& events, int lanes, FILE* out) {
    const std::size_t lane_w = 9;  // 7 + 1 + 8 * 9 = 80 columns
    std::string head = "   time ";
    for (int lane = 1; lane <= lanes; ++lane)
        head += padded(" conn " + std::to_string(lane), lane_w);
    while (head.back() == ' ')
        head.pop_back();
    std::fprintf(out, "%s\n", head.c_str());
    for (const Event& e : events) {
        int lane = r.conns[e.conn].lane;
        if (lane < 1 || lane > lanes) continue;
        std::string mark;
        if (e.wire == Wire::data) {
            std::uint64_t n = e.bytes;
            std::string size = n < 10000      ? std::to_string(n) + "B"
                               : n < 10000000 ? std::to_string(n / 1024) + "K"
                                              : std::to_string(n / (1024 * 1024)) + "M";
            mark = e.side == client ? size + ">" : "<" + size;
        } else if (e.wire != Wire::none) {
            std::string what = label(e);
            mark = e.side == client ? what + ">" : (e.wire == Wire::rst ? "x" : "<") + what;
        } else if (e.text.find("TIME_WAIT") != std::string::npos) {
            mark = e.text.compare(0, 6, "client") == 0 ? "TW:client" : "TW:server";
        } else if (e.side == server || e.merge != Merge::none ||
                   e.text.compare(0, 7, "connect") == 0) {
            continue;  // the server's notes, the recv counts, connect's own note
        } else {
            mark = e.text.substr(0, e.text.find_first_of(" :"));  // "close", "recv", "error"
        }
        std::string line = time_text(e.at) + " " + std::string((lane - 1) * lane_w, ' ') + mark;
        std::fprintf(out, "%s\n", text::terminal_safe(line).c_str());
    }
    std::fprintf(out, "(X> sent by the client, <X by the server, x: an RST; TW: in TIME_WAIT)\n");
}

// Mermaid: each participant, each arrow, each note; arrows that crossed in
// a par block. A label is Mermaid source: ';' would end the statement and
// '<' '>' '&' would be read as markup, so these and '#' (which starts
// Mermaid's own escapes) are written as its numeric escapes, "#60;" for '<'.
// The picture then shows a request's bytes as they were sent.
std::string mermaid_text(const std::string& text) {
    std::string out;
    for (char ch : text) {
        if (ch == ';' || ch == '#' || ch == '<' || ch == '>' || ch == '&')
            out += "#" + std::to_string(static_cast<int>(ch)) + ";";
        else
            out += ch;
    }
    return text::terminal_safe(out);
}

void write_mermaid(const Recorder& r, const std::vector<Event>& events, int lanes, FILE* out) {
    bool offline = !r.server_address.empty();
    std::fprintf(out, "sequenceDiagram\n");
    auto name = [&](const Event& e, Side side) {
        if (side == server) return std::string("S");
        return lanes > 1 ? "C" + std::to_string(r.conns[e.conn].lane) : std::string("C");
    };
    if (lanes > 1) {
        for (int lane = 1; lane <= lanes; ++lane)
            std::fprintf(out, "    participant C%d as connection %d\n", lane, lane);
    } else {
        std::fprintf(out, "    participant C as client (%s)\n", r.program.c_str());
    }
    std::fprintf(out, "    participant S as %s\n",
                 offline ? ("server (built-in, " + r.server_address + ")").c_str()
                         : "server (as the client saw it)");
    int open_group = 0;
    for (std::size_t i = 0; i < events.size(); ++i) {
        const Event& e = events[i];
        int lane = r.conns[e.conn].lane;
        if (lane < 1 || lane > lanes) continue;
        if (open_group == 0 && e.group != 0) {
            open_group = e.group;
            std::fprintf(out, "    par at the same moment\n");
        } else if (open_group != 0 && e.group == open_group && e.wire != Wire::none) {
            std::fprintf(out, "    and\n");
        }
        std::string when = time_text(e.at);
        when.erase(0, when.find_first_not_of(' '));
        std::string what = mermaid_text(label(e));
        if (e.wire != Wire::none) {
            std::string why = e.text.empty() ? "" : ", " + mermaid_text(sender_text(e));
            std::fprintf(out, "    %s-%s%s: %s (%s s%s)\n", name(e, e.side).c_str(),
                         e.wire == Wire::rst ? "x" : ">>", name(e, other(e.side)).c_str(),
                         what.c_str(), when.c_str(), why.c_str());
        } else if (e.wide) {
            std::fprintf(out, "    Note over %s,S: %s s %s\n", name(e, client).c_str(),
                         when.c_str(), what.c_str());
        } else {
            std::fprintf(out, "    Note %s of %s: %s s %s\n", e.side == client ? "left" : "right",
                         name(e, e.side).c_str(), when.c_str(), what.c_str());
        }
        // The group ends after its last arrow.
        bool more = false;
        for (std::size_t j = i + 1; j < events.size() && open_group != 0 && !more; ++j)
            more = events[j].group == open_group;
        if (open_group != 0 && !more) {
            std::fprintf(out, "    end\n");
            open_group = 0;
        }
    }
}

}  // namespace

void draw() {
    Recorder& r = recorder();
    std::lock_guard<std::mutex> lock(r.mutex);
    std::vector<Event> events = merged(r.events);
    int lanes = std::min(r.lanes, 8);
    // The endings: who is left in TIME_WAIT, and the run's error.
    double end = now(r);
    auto wide = [&](int conn, const std::string& text) {
        Event e{0, end, conn, client, Wire::none, text};
        e.wide = true;
        events.push_back(e);
    };
    for (std::size_t conn = 0; conn < r.conns.size(); ++conn) {
        std::string how = ending(r.conns[conn]);
        int fin_groups[2] = {-1, -1}, first_fin = -1;  // in drawing order, not recording order
        for (const Event& e : events)
            if (e.conn == static_cast<int>(conn) && e.wire == Wire::fin) {
                fin_groups[e.side] = e.group;
                if (first_fin < 0) first_fin = e.side;
            }
        if (first_fin >= 0 && how.find("TIME_WAIT (its FIN") != std::string::npos)
            how = std::string(first_fin == client ? "client" : "server") +
                  " in TIME_WAIT (its FIN went first)";
        if (!how.empty() && fin_groups[0] > 0 && fin_groups[0] == fin_groups[1])
            how =
                "the FINs crossed: the side whose FIN went first is in TIME_WAIT (both, if "
                "they met on the wire)";
        if (!how.empty()) wide(static_cast<int>(conn), how);
    }
    if (!r.error.empty() && r.last_client_conn >= 0) wide(r.last_client_conn, "error: " + r.error);
    if (r.text) {
        std::fflush(stdout);
        std::fprintf(stderr, "--diagram: %s, %s\n", r.program.c_str(),
                     r.server_address.empty()
                         ? "the server lane is what the client could see of it"
                         : ("offline, built-in server " + r.server_address).c_str());
        if (r.lanes <= 1)
            draw_two_lanes(r, events, stderr);
        else
            draw_lanes(r, events, lanes, stderr);
        if (r.lanes > lanes)
            std::fprintf(stderr, "(connections %d to %d are not drawn: at most 8 lanes)\n",
                         lanes + 1, r.lanes);
    }
    if (!r.mermaid_file.empty()) {
        FILE* out = std::fopen(r.mermaid_file.c_str(), "w");
        if (!out) {
            std::fprintf(stderr, "%s: --mermaid %s: cannot write it\n", r.program.c_str(),
                         text::terminal_safe(r.mermaid_file).c_str());
            return;
        }
        write_mermaid(r, events, std::max(lanes, 1), out);
        std::fclose(out);
    }
}

}  // namespace diagram
