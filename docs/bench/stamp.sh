# Shared header for every raw output under docs/bench/ and docs/reliability/.
# Source it (`. docs/bench/stamp.sh`), then:
#
#   stamp_header "exact command" ["note" ...]   # prints the header lines
#   stamp_run FILE "note" -- CMD ARGS...        # header, then CMD's stdout and
#                                               # stderr, then a footer with the
#                                               # wall time, all into FILE
#
# The header names the date (UTC), the machine (cores, CPU model, memory,
# kernel), the commit (`git rev-parse --short HEAD`, `-dirty` when the
# code differs from it: see stamp_commit), the build (BUILD_NOTE, set by record.sh), the load
# (`uptime`: other work on the same cores inflates wall times) and the exact
# command. Every line of it starts with `# `.

# The commit, `-dirty` when tracked files outside docs/ and the Markdown
# files differ from it (what is measured is built from those); a change in
# the documents alone is named but does not make the build dirty.
stamp_commit() {
    local commit
    commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
    if ! git diff --quiet HEAD -- . ':(exclude)docs' ':(exclude)*.md' 2>/dev/null; then
        echo "$commit-dirty"
    elif ! git diff --quiet HEAD -- 2>/dev/null; then
        echo "$commit (only docs/ or *.md differ in the work tree)"
    else
        echo "$commit"
    fi
}

stamp_machine() {
    local cpu mem
    cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
    mem=$(awk '/MemTotal/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo)
    echo "$(nproc) cores, $cpu, $mem, Linux $(uname -r) $(uname -m)"
}

stamp_load() {
    # `uptime` without the clock and user count: "up 1:02, load average: ...".
    uptime | sed 's/^ *[0-9:]* *//; s/ *[0-9]* users\{0,1\},//'
}

stamp_header() {
    local command=$1
    shift
    echo "# date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "# machine: $(stamp_machine)"
    echo "# commit: $(stamp_commit)"
    echo "# build: ${BUILD_NOTE:-not stated}"
    echo "# load at start: $(stamp_load)"
    echo "# command: $command"
    local note
    for note in "$@"; do
        [ -n "$note" ] && echo "# note: $note"
    done
    return 0
}

# stamp_run FILE NOTE -- CMD ARGS...: CMD's output (stdout and stderr) lands
# in FILE below the header; progress goes to the terminal. The command string
# in the header is CMD ARGS as given (environment variables that matter are
# passed through `env VAR=value` so that they show).
stamp_run() {
    local file=$1 note=$2
    shift 2
    [ "$1" = "--" ] && shift
    mkdir -p "$(dirname "$file")"
    local start end status
    start=$(date +%s)
    echo ">> $(date -u +%H:%M:%S) $file: $*" >&2
    {
        if declare -F "$1" > /dev/null; then
            stamp_header "docs/bench/record.sh: shell function $*, printed here:" "$note"
            declare -f "$1" | sed 's/^/#   | /'
        else
            stamp_header "$*" "$note"
        fi
        "$@" 2>&1
        status=$?
        end=$(date +%s)
        echo "# finished: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), exit status $status, wall $((end - start)) s; load at end: $(stamp_load)"
    } > "$file"
    echo "<< $(date -u +%H:%M:%S) $file: $(( $(date +%s) - start )) s" >&2
}
