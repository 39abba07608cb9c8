// diagram_events.h - what --diagram records (diagram.cpp) and draws
// (diagram_draw.cpp): the events of each connection, from both sides.
// Inside the diagram only.
#pragma once

#include "platform.h"

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace diagram {

using Clock = std::chrono::steady_clock;

enum Side { client = 0, server = 1 };
inline Side other(Side side) {
    return side == client ? server : client;
}

// The segment an event put on the wire, if any.
enum class Wire { none, syn, syn_ack, ack, data, fin, rst };
// Events that add up: a run of sends, of recvs, of recvs that found nothing.
enum class Merge { none, sent, read, empty };

struct Event {
    double order;  // where it is drawn: the order recorded, or just before what it caused
    double at;     // seconds since the start
    int conn;
    Side side;  // who sent the segment, or whose lane the note is on
    Wire wire;
    std::string text;  // the call, or what was seen
    Merge merge = Merge::none;
    std::uint64_t bytes = 0, calls = 1;
    // The call that put it on the wire ran at some moment in (begin, end]:
    // after its thread's last event, before it was recorded.
    double begin = 0, end = 0;
    int group = 0;      // arrows that crossed on the wire share a group number (drawing)
    bool wide = false;  // a note across both lanes: the ending, the error (drawing)
};

// A receipt recorded before the other side's event that caused it (two
// threads record): that event, when it comes, is drawn before this one.
struct Waiting {
    double order, at;
    Wire needs;
    std::uint64_t bytes;  // data: how many must have been sent
};

struct Connection {
    std::string client;  // the client's address, as the server knows it
    int lane = 0;        // 1, 2...: in the order the client connected; 0 until then
    std::uint64_t sent[2] = {0, 0}, received[2] = {0, 0};
    bool fin[2] = {false, false}, closed[2] = {false, false};
    bool syn = false, established = false, accepted = false, reset = false;
    bool shut_rd = false;
    // Once the client has shut its reading side and sent its FIN (SHUT_RDWR),
    // Linux answers data that arrives with an RST: the bytes that reached its
    // socket before then (read or waiting), or -1 before the shutdown.
    long long reached_before_shut = -1;
    int first_fin = -1;
    std::vector<Waiting> waiting[2];  // receipts of side s waiting for the other's arrow
};

struct Recorder {
    std::mutex mutex;
    bool on = false, text = false;
    std::string mermaid_file, program, server_address, error;
    Clock::time_point start = Clock::now();
    std::vector<Event> events;
    std::vector<Connection> conns;
    std::map<net::socket_t, int> fds[2];  // open descriptors: each side's, to its connection
    std::map<std::string, int> by_client;
    int lanes = 0, last_client_conn = -1;
    double next_order = 1, nudge = 0;
};

Recorder& recorder();
double now(const Recorder& r);  // seconds since the start
// Draw the chart (--diagram) and write the Mermaid file (--mermaid): at exit.
void draw();

}  // namespace diagram
