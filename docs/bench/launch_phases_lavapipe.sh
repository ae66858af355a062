#!/usr/bin/env bash
# A step's kernel launches phase by phase on lavapipe: docs/bench/launches_lavapipe.sh's `phases`
# mode (its header says what is counted); writes docs/bench/launch_phases_lavapipe.txt.
exec bash "$(dirname "$0")/launches_lavapipe.sh" phases
