// trace.cpp - where --trace lines go.
#include "trace.h"

#include "chapter.h"

namespace trace {
namespace {
bool tracing = false;
}
void enable(bool on) {
    tracing = on;
}
bool enabled() {
    return tracing;
}
void line(const std::string& text) {
    if (tracing) chapter::print_line("  " + text);
}
}  // namespace trace
