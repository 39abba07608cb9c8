#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image
# (Ubuntu): the compiler, make and Python 3 are all a lab needs.
set -e
apt-get update
apt-get install -y --no-install-recommends g++ make python3
