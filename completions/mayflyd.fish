complete -c mayflyd -l socket -d 'The Unix socket to listen on [default: $XDG_RUNTIME_DIR/mayfly/mayfly.sock, else /tmp/mayfly-$UID/mayfly.sock]' -r -F
complete -c mayflyd -l state-dir -d 'Where the write-ahead log, snapshots and job output are kept [default: $XDG_STATE_HOME/mayfly, else ~/.local/state/mayfly]' -r -F
complete -c mayflyd -l concurrency -d 'How many jobs may run at once, over all queues [default: number of CPUs]' -r
complete -c mayflyd -l quantum -d 'The scheduler\'s time slice: the longest it works on one batch of client requests before it turns to timers and job exits' -r
complete -c mayflyd -l shutdown-timeout -d 'How long running jobs get after SIGTERM at shutdown before SIGKILL' -r
complete -c mayflyd -l kill-grace -d 'How long a cancelled job gets after SIGTERM before SIGKILL' -r
complete -c mayflyd -l wal-flush-interval -d 'How often the daemon\'s own records (job started, job exited) are made durable. Client changes (submit, cancel) are always fsynced before they are acknowledged' -r
complete -c mayflyd -l snapshot-bytes -d 'Write a snapshot of the state once the write-ahead log has grown this many bytes past the last one, so restarts stay fast' -r
complete -c mayflyd -l http-addr -d 'Where to serve HTTP (`GET /metrics` in the Prometheus text format, `GET /__health`), as IP:PORT; `off` serves no HTTP' -r
complete -c mayflyd -l push-gateway -d 'Also push the metrics to this Prometheus Pushgateway (an http:// URL) every --metrics-interval, as job "mayflyd", instance = host name' -r
complete -c mayflyd -l metrics-interval -d 'How often the metrics task refreshes the sampled gauges and pushes to --push-gateway' -r
complete -c mayflyd -l log-format -d 'Log line format on stderr' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line'"
complete -c mayflyd -l config -d 'Read settings from this TOML file instead of the default $XDG_CONFIG_HOME/mayfly/mayflyd.toml (else ~/.config/mayfly/mayflyd.toml). Keys are the flags\' names in snake_case (concurrency = 4, quantum = "10ms"). Flags and environment variables win over the file, the file wins over the defaults. The default file may be missing; this one must exist' -r -F
complete -c mayflyd -l repair-wal -d 'Start even though the write-ahead log is damaged: copy the damaged files to a backup folder under STATE_DIR/wal/, then cut the log at the first bad record (the jobs after it are lost)'
complete -c mayflyd -l dump-state -d 'On shutdown, print a JSON snapshot of every task and queue to stdout (the same shape as `mayflyctl dump-state`). SIGUSR1 writes one to the log at any time without stopping anything'
complete -c mayflyd -l print-config -d 'Print the effective settings, each with where it came from (flag, env, config file or default), as TOML, and exit without starting the daemon'
complete -c mayflyd -s v -l verbose -d 'More log output (-v debug, -vv trace). RUST_LOG, when set, wins'
complete -c mayflyd -s q -l quiet -d 'Less log output (-q warnings only, -qq errors only)'
complete -c mayflyd -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mayflyd -s V -l version -d 'Print version'
