#!/usr/bin/env bash
# Many connections on one thread, on epoll: chapter 6 (level- and
# edge-triggered) and chapter 5's poll against curl's own event loop, at
# N = 1,000: tests/bench/chapter5_vs_curl.sh with chapter 6's programs.
#
#   tests/bench/chapter6_vs_curl.sh [ROUNDS]            (default 5)
#   NS="1000 5000" SIZES=small tests/bench/chapter6_vs_curl.sh 3
PROGRAMS=${PROGRAMS:-"chapter6 chapter6-edge chapter5-poll curl"} NS=${NS:-1000} \
  exec bash "$(dirname "$0")/chapter5_vs_curl.sh" "$@"
