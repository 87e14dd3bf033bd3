# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_mayflyctl_global_optspecs
    string join \n socket= json daemon-timeout= h/help V/version
end

function __fish_mayflyctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_mayflyctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_mayflyctl_using_subcommand
    set -l cmd (__fish_mayflyctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c mayflyctl -n "__fish_mayflyctl_needs_command" -l socket -d 'Path of the daemon\'s Unix socket' -r -F
complete -c mayflyctl -n "__fish_mayflyctl_needs_command" -l daemon-timeout -d 'How long to wait for the daemon: to take the connection, and then for each answer, e.g. 5s or 2m; \'off\' waits as long as it takes' -r
complete -c mayflyctl -n "__fish_mayflyctl_needs_command" -l json -d 'Print machine-readable JSON on stdout instead of text'
complete -c mayflyctl -n "__fish_mayflyctl_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mayflyctl -n "__fish_mayflyctl_needs_command" -s V -l version -d 'Print version'
complete -c mayflyctl -n "__fish_mayflyctl_needs_command" -f -a "submit" -d 'Queue a job (or, with --stdin, many); prints its id'
complete -c mayflyctl -n "__fish_mayflyctl_needs_command" -f -a "status" -d 'Show jobs as a table (all jobs, or the given ids)'
complete -c mayflyctl -n "__fish_mayflyctl_needs_command" -f -a "cancel" -d 'Cancel queued or running jobs'
complete -c mayflyctl -n "__fish_mayflyctl_needs_command" -f -a "wait" -d 'Block until jobs end'
complete -c mayflyctl -n "__fish_mayflyctl_needs_command" -f -a "logs" -d 'Print a job\'s output'
complete -c mayflyctl -n "__fish_mayflyctl_needs_command" -f -a "dump-state" -d 'Print a JSON snapshot of every task and queue'
complete -c mayflyctl -n "__fish_mayflyctl_needs_command" -f -a "shutdown" -d 'Shut the daemon down gracefully'
complete -c mayflyctl -n "__fish_mayflyctl_needs_command" -f -a "events" -d 'Show the daemon\'s activity log: scheduler, system task and job events'
complete -c mayflyctl -n "__fish_mayflyctl_needs_command" -f -a "queue" -d 'Create, change, remove or list queues'
complete -c mayflyctl -n "__fish_mayflyctl_needs_command" -f -a "pause" -d 'Stop starting jobs from queues (and, with --running, freeze running ones)'
complete -c mayflyctl -n "__fish_mayflyctl_needs_command" -f -a "resume" -d 'Start jobs from paused queues again (and, with --running, thaw frozen ones)'
complete -c mayflyctl -n "__fish_mayflyctl_needs_command" -f -a "restart" -d 'Queue a fresh copy of finished jobs; prints the new ids'
complete -c mayflyctl -n "__fish_mayflyctl_needs_command" -f -a "clean" -d 'Forget finished jobs and delete their output'
complete -c mayflyctl -n "__fish_mayflyctl_needs_command" -f -a "edit" -d 'Change the priority, queue or labels of a job that has not started'
complete -c mayflyctl -n "__fish_mayflyctl_needs_command" -f -a "progress" -d 'Report a running job\'s progress, shown by \'status\''
complete -c mayflyctl -n "__fish_mayflyctl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand submit" -s q -l queue -d 'The queue the job waits in' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand submit" -s p -l priority -d 'Priority from 1 (runs first) to 99 (runs last); equal priorities run in submission order' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand submit" -l cwd -d 'Run in DIR instead of the current directory (relative to the current directory)' -r -F
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand submit" -s e -l env -d 'Set an environment variable for the job, on top of the captured environment (repeatable)' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand submit" -s l -l label -d 'Attach a label to the job, shown by \'status\' and used by \'status --label\' (repeatable)' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand submit" -l after -d 'Start only after these jobs succeeded; if one does not, this job ends \'skipped\' without running (comma-separated or repeated)' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand submit" -l after-any -d 'Start only after these jobs ended, whatever their outcome (comma-separated or repeated)' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand submit" -l delay -d 'Do not start before this long from now, e.g. 30s or 5m' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand submit" -l at -d 'Do not start before TIME: RFC 3339, or HH:MM in local time (today, or tomorrow if that time has passed)' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand submit" -l timeout -d 'Stop an attempt that runs longer than this (SIGTERM, then SIGKILL); it ends \'timed_out\'' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand submit" -l retries -d 'Run a failed or timed-out job again, up to N more times' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand submit" -l retry-delay -d 'The wait before the first retry; it doubles for each further one (capped at 1h)' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand submit" -l max-output -d 'Keep at most SIZE bytes of each of the job\'s output streams (64K, 10M, 1G); the rest is dropped and the cut is noted at the end of the file [default: the daemon\'s --max-output, else no limit]' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand submit" -l on-finish -d 'When the job has ended (for good: after its last retry), run this shell line, in the job\'s directory and environment plus MAYFLY_JOB_ID, MAYFLY_JOB_STATE, MAYFLY_EXIT_CODE, MAYFLY_SIGNAL, MAYFLY_QUEUE, MAYFLY_JOB_STDOUT, MAYFLY_JOB_STDERR, MAYFLY_DURATION_MS and MAYFLY_SOCKET [default: the daemon\'s --on-finish]. E.g. \'notify-send "job $MAYFLY_JOB_ID $MAYFLY_JOB_STATE"\'' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand submit" -l socket -d 'Path of the daemon\'s Unix socket' -r -F
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand submit" -l daemon-timeout -d 'How long to wait for the daemon: to take the connection, and then for each answer, e.g. 5s or 2m; \'off\' waits as long as it takes' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand submit" -l shell -d 'Join the command\'s words with spaces and run the result with \'sh -c\''
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand submit" -s w -l wait -d 'After printing the id, wait for the job and exit with its exit code (with --stdin: wait for all, exit 0 if all succeeded, else 1)'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand submit" -l preemptible -d 'Let a more urgent job (a lower priority number) take this job\'s slot while it runs: it is then frozen (SIGSTOP) until a slot is free again (SIGCONT). Its timeout does not count the time frozen'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand submit" -l stdin -d 'Read one shell command per line from standard input and queue them all in one request; prints one id per line'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand submit" -l json-input -d 'Read one JSON job per line from standard input (format below) and queue them all in one request; prints one id per line'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand submit" -l json -d 'Print machine-readable JSON on stdout instead of text'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand submit" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand submit" -s V -l version -d 'Print version'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand status" -s q -l queue -d 'Only jobs in these queues (comma-separated or repeated)' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand status" -s s -l state -d 'Only jobs in these states: waiting, queued, running, succeeded, failed, cancelled, timed_out, skipped, interrupted (comma-separated or repeated)' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand status" -s l -l label -d 'Only jobs with this label (repeated: with all of them)' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand status" -l socket -d 'Path of the daemon\'s Unix socket' -r -F
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand status" -l daemon-timeout -d 'How long to wait for the daemon: to take the connection, and then for each answer, e.g. 5s or 2m; \'off\' waits as long as it takes' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand status" -s u -l usage -d 'Add what each job\'s last attempt used: CPU (user + system) and peak memory (RSS of its largest process). `--json` always has them (`cpu_user_ms`, `cpu_sys_ms`, `max_rss_kib`)'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand status" -l json -d 'Print machine-readable JSON on stdout instead of text'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand status" -s V -l version -d 'Print version'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand cancel" -l socket -d 'Path of the daemon\'s Unix socket' -r -F
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand cancel" -l daemon-timeout -d 'How long to wait for the daemon: to take the connection, and then for each answer, e.g. 5s or 2m; \'off\' waits as long as it takes' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand cancel" -l json -d 'Print machine-readable JSON on stdout instead of text'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand cancel" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand cancel" -s V -l version -d 'Print version'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand wait" -l socket -d 'Path of the daemon\'s Unix socket' -r -F
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand wait" -l daemon-timeout -d 'How long to wait for the daemon: to take the connection, and then for each answer, e.g. 5s or 2m; \'off\' waits as long as it takes' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand wait" -s q -l quiet -d 'Print no line per job; only the exit status (and, on a terminal, the progress bar on stderr) tells'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand wait" -l json -d 'Print machine-readable JSON on stdout instead of text'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand wait" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand wait" -s V -l version -d 'Print version'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand logs" -l socket -d 'Path of the daemon\'s Unix socket' -r -F
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand logs" -l daemon-timeout -d 'How long to wait for the daemon: to take the connection, and then for each answer, e.g. 5s or 2m; \'off\' waits as long as it takes' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand logs" -s f -l follow -d 'Keep printing new output until the job ends'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand logs" -l stderr -d 'Print the job\'s standard error instead of its standard output'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand logs" -l json -d 'Print machine-readable JSON on stdout instead of text'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand logs" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand logs" -s V -l version -d 'Print version'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand dump-state" -l socket -d 'Path of the daemon\'s Unix socket' -r -F
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand dump-state" -l daemon-timeout -d 'How long to wait for the daemon: to take the connection, and then for each answer, e.g. 5s or 2m; \'off\' waits as long as it takes' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand dump-state" -l json -d 'Print machine-readable JSON on stdout instead of text'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand dump-state" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand dump-state" -s V -l version -d 'Print version'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand shutdown" -l timeout -d 'How long running jobs get after SIGTERM before SIGKILL, e.g. 30s or 2m. [default: the daemon\'s --shutdown-timeout]' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand shutdown" -l socket -d 'Path of the daemon\'s Unix socket' -r -F
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand shutdown" -l daemon-timeout -d 'How long to wait for the daemon: to take the connection, and then for each answer, e.g. 5s or 2m; \'off\' waits as long as it takes' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand shutdown" -l json -d 'Print machine-readable JSON on stdout instead of text'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand shutdown" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand shutdown" -s V -l version -d 'Print version'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand events" -l socket -d 'Path of the daemon\'s Unix socket' -r -F
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand events" -l daemon-timeout -d 'How long to wait for the daemon: to take the connection, and then for each answer, e.g. 5s or 2m; \'off\' waits as long as it takes' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand events" -s f -l follow -d 'Keep printing new events until the daemon stops'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand events" -l json -d 'Print machine-readable JSON on stdout instead of text'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand events" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand events" -s V -l version -d 'Print version'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and not __fish_seen_subcommand_from add set rm remove list ls help" -l socket -d 'Path of the daemon\'s Unix socket' -r -F
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and not __fish_seen_subcommand_from add set rm remove list ls help" -l daemon-timeout -d 'How long to wait for the daemon: to take the connection, and then for each answer, e.g. 5s or 2m; \'off\' waits as long as it takes' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and not __fish_seen_subcommand_from add set rm remove list ls help" -l json -d 'Print machine-readable JSON on stdout instead of text'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and not __fish_seen_subcommand_from add set rm remove list ls help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and not __fish_seen_subcommand_from add set rm remove list ls help" -s V -l version -d 'Print version'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and not __fish_seen_subcommand_from add set rm remove list ls help" -f -a "add" -d 'Create a queue (refused if it exists)'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and not __fish_seen_subcommand_from add set rm remove list ls help" -f -a "set" -d 'Change a queue\'s concurrency limit or executor (refused if it does not exist)'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and not __fish_seen_subcommand_from add set rm remove list ls help" -f -a "rm" -d 'Remove a queue (refused while it holds unfinished jobs; never \'default\')'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and not __fish_seen_subcommand_from add set rm remove list ls help" -f -a "remove" -d 'Remove a queue (refused while it holds unfinished jobs; never \'default\')'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and not __fish_seen_subcommand_from add set rm remove list ls help" -f -a "list" -d 'List the queues: limit, paused, and jobs by state'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and not __fish_seen_subcommand_from add set rm remove list ls help" -f -a "ls" -d 'List the queues: limit, paused, and jobs by state'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and not __fish_seen_subcommand_from add set rm remove list ls help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from add" -s c -l concurrency -d 'How many of its jobs may run at once. [default: unlimited, i.e. only the daemon\'s global limit]' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from add" -l executor -d 'What runs the queue\'s jobs: local (a process group on this machine), slurm (sbatch on a Slurm cluster) or a2a (a remote A2A agent). The daemon\'s --concurrency bounds local jobs only; the queue\'s own limit bounds all of them. [default for a new queue: local]' -r -f -a "local\t''
slurm\t''
a2a\t''"
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from add" -l slurm-partition -d 'With --executor slurm: the partition to submit to' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from add" -l slurm-arg -d 'With --executor slurm: one more sbatch argument, as one word (--slurm-arg=--mem=2G); repeat for more' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from add" -l a2a-url -d 'With --executor a2a: the remote agent\'s JSON-RPC endpoint' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from add" -l a2a-token-file -d 'With --executor a2a: an absolute path to a file holding the bearer token to send to the agent' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from add" -l socket -d 'Path of the daemon\'s Unix socket' -r -F
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from add" -l daemon-timeout -d 'How long to wait for the daemon: to take the connection, and then for each answer, e.g. 5s or 2m; \'off\' waits as long as it takes' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from add" -l json -d 'Print machine-readable JSON on stdout instead of text'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from add" -s V -l version -d 'Print version'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from set" -s c -l concurrency -d 'How many of its jobs may run at once' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from set" -l executor -d 'What runs the queue\'s jobs: local (a process group on this machine), slurm (sbatch on a Slurm cluster) or a2a (a remote A2A agent). The daemon\'s --concurrency bounds local jobs only; the queue\'s own limit bounds all of them. [default for a new queue: local]' -r -f -a "local\t''
slurm\t''
a2a\t''"
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from set" -l slurm-partition -d 'With --executor slurm: the partition to submit to' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from set" -l slurm-arg -d 'With --executor slurm: one more sbatch argument, as one word (--slurm-arg=--mem=2G); repeat for more' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from set" -l a2a-url -d 'With --executor a2a: the remote agent\'s JSON-RPC endpoint' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from set" -l a2a-token-file -d 'With --executor a2a: an absolute path to a file holding the bearer token to send to the agent' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from set" -l socket -d 'Path of the daemon\'s Unix socket' -r -F
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from set" -l daemon-timeout -d 'How long to wait for the daemon: to take the connection, and then for each answer, e.g. 5s or 2m; \'off\' waits as long as it takes' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from set" -l unlimited -d 'Remove the queue\'s own limit (only the daemon\'s global limit applies)'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from set" -l json -d 'Print machine-readable JSON on stdout instead of text'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from set" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from set" -s V -l version -d 'Print version'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from rm" -l socket -d 'Path of the daemon\'s Unix socket' -r -F
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from rm" -l daemon-timeout -d 'How long to wait for the daemon: to take the connection, and then for each answer, e.g. 5s or 2m; \'off\' waits as long as it takes' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from rm" -l json -d 'Print machine-readable JSON on stdout instead of text'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from rm" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from rm" -s V -l version -d 'Print version'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from remove" -l socket -d 'Path of the daemon\'s Unix socket' -r -F
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from remove" -l daemon-timeout -d 'How long to wait for the daemon: to take the connection, and then for each answer, e.g. 5s or 2m; \'off\' waits as long as it takes' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from remove" -l json -d 'Print machine-readable JSON on stdout instead of text'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from remove" -s V -l version -d 'Print version'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from list" -l socket -d 'Path of the daemon\'s Unix socket' -r -F
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from list" -l daemon-timeout -d 'How long to wait for the daemon: to take the connection, and then for each answer, e.g. 5s or 2m; \'off\' waits as long as it takes' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from list" -l json -d 'Print machine-readable JSON on stdout instead of text'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from ls" -l socket -d 'Path of the daemon\'s Unix socket' -r -F
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from ls" -l daemon-timeout -d 'How long to wait for the daemon: to take the connection, and then for each answer, e.g. 5s or 2m; \'off\' waits as long as it takes' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from ls" -l json -d 'Print machine-readable JSON on stdout instead of text'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from ls" -s V -l version -d 'Print version'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from help" -f -a "add" -d 'Create a queue (refused if it exists)'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from help" -f -a "set" -d 'Change a queue\'s concurrency limit or executor (refused if it does not exist)'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from help" -f -a "rm" -d 'Remove a queue (refused while it holds unfinished jobs; never \'default\')'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the queues: limit, paused, and jobs by state'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand queue; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand pause" -l socket -d 'Path of the daemon\'s Unix socket' -r -F
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand pause" -l daemon-timeout -d 'How long to wait for the daemon: to take the connection, and then for each answer, e.g. 5s or 2m; \'off\' waits as long as it takes' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand pause" -l all -d 'Every queue'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand pause" -l running -d 'Also freeze (pause: SIGSTOP) or thaw (resume: SIGCONT) the jobs of those queues that are running now'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand pause" -l json -d 'Print machine-readable JSON on stdout instead of text'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand pause" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand pause" -s V -l version -d 'Print version'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand resume" -l socket -d 'Path of the daemon\'s Unix socket' -r -F
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand resume" -l daemon-timeout -d 'How long to wait for the daemon: to take the connection, and then for each answer, e.g. 5s or 2m; \'off\' waits as long as it takes' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand resume" -l all -d 'Every queue'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand resume" -l running -d 'Also freeze (pause: SIGSTOP) or thaw (resume: SIGCONT) the jobs of those queues that are running now'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand resume" -l json -d 'Print machine-readable JSON on stdout instead of text'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand resume" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand resume" -s V -l version -d 'Print version'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand restart" -l socket -d 'Path of the daemon\'s Unix socket' -r -F
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand restart" -l daemon-timeout -d 'How long to wait for the daemon: to take the connection, and then for each answer, e.g. 5s or 2m; \'off\' waits as long as it takes' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand restart" -l json -d 'Print machine-readable JSON on stdout instead of text'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand restart" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand restart" -s V -l version -d 'Print version'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand clean" -s s -l state -d 'Only jobs that ended in these states: succeeded, failed, cancelled, timed_out, skipped, interrupted (comma-separated or repeated). [default: all of them]' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand clean" -l older-than -d 'Only jobs that finished at least this long ago, e.g. 1h or 7d' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand clean" -l socket -d 'Path of the daemon\'s Unix socket' -r -F
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand clean" -l daemon-timeout -d 'How long to wait for the daemon: to take the connection, and then for each answer, e.g. 5s or 2m; \'off\' waits as long as it takes' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand clean" -l json -d 'Print machine-readable JSON on stdout instead of text'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand clean" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand clean" -s V -l version -d 'Print version'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand edit" -s p -l priority -d 'A new priority, 1 (runs first) to 99 (runs last)' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand edit" -s q -l queue -d 'Move the job to this queue' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand edit" -s l -l label -d 'Add or replace a label, keeping the others (repeatable)' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand edit" -l socket -d 'Path of the daemon\'s Unix socket' -r -F
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand edit" -l daemon-timeout -d 'How long to wait for the daemon: to take the connection, and then for each answer, e.g. 5s or 2m; \'off\' waits as long as it takes' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand edit" -l clear-labels -d 'Remove every label (before adding those of --label)'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand edit" -l json -d 'Print machine-readable JSON on stdout instead of text'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand edit" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand edit" -s V -l version -d 'Print version'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand progress" -l id -d 'The job. [default: $MAYFLY_JOB_ID, set inside a job]' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand progress" -l socket -d 'Path of the daemon\'s Unix socket' -r -F
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand progress" -l daemon-timeout -d 'How long to wait for the daemon: to take the connection, and then for each answer, e.g. 5s or 2m; \'off\' waits as long as it takes' -r
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand progress" -l json -d 'Print machine-readable JSON on stdout instead of text'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand progress" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand progress" -s V -l version -d 'Print version'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand help; and not __fish_seen_subcommand_from submit status cancel wait logs dump-state shutdown events queue pause resume restart clean edit progress help" -f -a "submit" -d 'Queue a job (or, with --stdin, many); prints its id'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand help; and not __fish_seen_subcommand_from submit status cancel wait logs dump-state shutdown events queue pause resume restart clean edit progress help" -f -a "status" -d 'Show jobs as a table (all jobs, or the given ids)'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand help; and not __fish_seen_subcommand_from submit status cancel wait logs dump-state shutdown events queue pause resume restart clean edit progress help" -f -a "cancel" -d 'Cancel queued or running jobs'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand help; and not __fish_seen_subcommand_from submit status cancel wait logs dump-state shutdown events queue pause resume restart clean edit progress help" -f -a "wait" -d 'Block until jobs end'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand help; and not __fish_seen_subcommand_from submit status cancel wait logs dump-state shutdown events queue pause resume restart clean edit progress help" -f -a "logs" -d 'Print a job\'s output'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand help; and not __fish_seen_subcommand_from submit status cancel wait logs dump-state shutdown events queue pause resume restart clean edit progress help" -f -a "dump-state" -d 'Print a JSON snapshot of every task and queue'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand help; and not __fish_seen_subcommand_from submit status cancel wait logs dump-state shutdown events queue pause resume restart clean edit progress help" -f -a "shutdown" -d 'Shut the daemon down gracefully'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand help; and not __fish_seen_subcommand_from submit status cancel wait logs dump-state shutdown events queue pause resume restart clean edit progress help" -f -a "events" -d 'Show the daemon\'s activity log: scheduler, system task and job events'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand help; and not __fish_seen_subcommand_from submit status cancel wait logs dump-state shutdown events queue pause resume restart clean edit progress help" -f -a "queue" -d 'Create, change, remove or list queues'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand help; and not __fish_seen_subcommand_from submit status cancel wait logs dump-state shutdown events queue pause resume restart clean edit progress help" -f -a "pause" -d 'Stop starting jobs from queues (and, with --running, freeze running ones)'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand help; and not __fish_seen_subcommand_from submit status cancel wait logs dump-state shutdown events queue pause resume restart clean edit progress help" -f -a "resume" -d 'Start jobs from paused queues again (and, with --running, thaw frozen ones)'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand help; and not __fish_seen_subcommand_from submit status cancel wait logs dump-state shutdown events queue pause resume restart clean edit progress help" -f -a "restart" -d 'Queue a fresh copy of finished jobs; prints the new ids'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand help; and not __fish_seen_subcommand_from submit status cancel wait logs dump-state shutdown events queue pause resume restart clean edit progress help" -f -a "clean" -d 'Forget finished jobs and delete their output'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand help; and not __fish_seen_subcommand_from submit status cancel wait logs dump-state shutdown events queue pause resume restart clean edit progress help" -f -a "edit" -d 'Change the priority, queue or labels of a job that has not started'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand help; and not __fish_seen_subcommand_from submit status cancel wait logs dump-state shutdown events queue pause resume restart clean edit progress help" -f -a "progress" -d 'Report a running job\'s progress, shown by \'status\''
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand help; and not __fish_seen_subcommand_from submit status cancel wait logs dump-state shutdown events queue pause resume restart clean edit progress help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand help; and __fish_seen_subcommand_from queue" -f -a "add" -d 'Create a queue (refused if it exists)'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand help; and __fish_seen_subcommand_from queue" -f -a "set" -d 'Change a queue\'s concurrency limit or executor (refused if it does not exist)'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand help; and __fish_seen_subcommand_from queue" -f -a "rm" -d 'Remove a queue (refused while it holds unfinished jobs; never \'default\')'
complete -c mayflyctl -n "__fish_mayflyctl_using_subcommand help; and __fish_seen_subcommand_from queue" -f -a "list" -d 'List the queues: limit, paused, and jobs by state'
