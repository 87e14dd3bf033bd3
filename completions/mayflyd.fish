complete -c mayflyd -l socket -d 'The Unix socket to listen on [default: $XDG_RUNTIME_DIR/mayfly/mayfly.sock, else /tmp/mayfly-$UID/mayfly.sock]' -r -F
complete -c mayflyd -l allow-uid -d 'Also serve this user (a uid), besides the daemon\'s own and root; give it once per uid. Whoever may submit runs commands as the daemon\'s user. With any, the socket is made 0666 (its folder must let them reach it): each connection\'s peer credentials decide who is served' -r
complete -c mayflyd -l state-dir -d 'Where the write-ahead log, snapshots and job output are kept [default: $XDG_STATE_HOME/mayfly, else ~/.local/state/mayfly]' -r -F
complete -c mayflyd -l concurrency -d 'How many jobs may run at once, over all queues [default: number of CPUs]' -r
complete -c mayflyd -l quantum -d 'The scheduler\'s time slice: the longest it works on one batch of client requests before it turns to timers and job exits' -r
complete -c mayflyd -l shutdown-timeout -d 'How long running jobs get after SIGTERM at shutdown before SIGKILL' -r
complete -c mayflyd -l shutdown-step-timeout -d 'How long each of a shutdown\'s last steps may take (the log\'s last writes, system tasks, open connections) before it goes on without them; also how long after SIGKILL it waits for jobs to be reaped' -r
complete -c mayflyd -l kill-grace -d 'How long a cancelled job gets after SIGTERM before SIGKILL' -r
complete -c mayflyd -l wal-flush-interval -d 'How often the daemon\'s own records (job started, job exited) are made durable. Client changes (submit, cancel) are always fsynced before they are acknowledged' -r
complete -c mayflyd -l snapshot-bytes -d 'Write a snapshot of the state once the write-ahead log has grown this many bytes past the last one, so restarts stay fast' -r
complete -c mayflyd -l http-addr -d 'Where to serve HTTP (`GET /metrics` in the Prometheus text format, `GET /__health`), as IP:PORT; `off` serves no HTTP' -r
complete -c mayflyd -l a2a-addr -d 'Serve the A2A front door (Agent2Agent 1.0, JSON-RPC; docs/a2a.md) on HOST:PORT, on loopback when HOST is left out (:9480); every call but the agent card needs the bearer token kept in STATE_DIR/token. `off` serves none. Only a mayflyd built with the a2a feature takes an address' -r
complete -c mayflyd -l a2a-max-connections -d 'The most A2A connections open at once (streams and SendMessage calls that wait for their job included); past it, the oldest idle one is closed, or the new one waits' -r
complete -c mayflyd -l a2a-push-queue -d 'The most A2A push notifications waiting to be delivered, over all webhooks; past it, new ones are dropped (and counted), so a dead webhook never holds the daemon' -r
complete -c mayflyd -l a2a-poll-interval -d 'How often the a2a executor asks a remote agent how each job it cannot follow on a stream stands (one GetTask per such job per tick, for all of a queue\'s jobs at once; docs/a2a.md)' -r
complete -c mayflyd -l a2a-retry-for -d 'How long the a2a executor keeps trying a remote agent it cannot reach (waiting 1 s, then twice as long each time, at most 30 s) before it fails the job, saying why' -r
complete -c mayflyd -l grpc-addr -d 'Where to serve gRPC (docs/grpc.md), once per listener: unix:PATH for a Unix socket, HOST:PORT for TCP (loopback when HOST is left out, as in :50051; every call must then carry the bearer token kept in STATE_DIR/token), or off for none. Unless a unix: one is given, the Unix socket is grpc.sock beside --socket, with the same access rules. Only a mayflyd built with the grpc feature takes anything but off' -r
complete -c mayflyd -l push-gateway -d 'Also push the metrics to this Prometheus Pushgateway (an http:// URL) every --metrics-interval, as job "mayflyd", instance = host name' -r
complete -c mayflyd -l metrics-interval -d 'How often the metrics task refreshes the sampled gauges and pushes to --push-gateway' -r
complete -c mayflyd -l log-format -d 'Log line format on stderr' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line'"
complete -c mayflyd -l max-jobs -d 'The most jobs the daemon holds at once: waiting, queued, running, and finished ones not yet forgotten. A submit past it is refused; `mayflyctl clean` forgets finished jobs' -r
complete -c mayflyd -l max-job-bytes -d 'The most bytes one job\'s command and environment may take (64K, 1M); a bigger one is refused at submit. Linux starts no program given more than about 2M' -r
complete -c mayflyd -l max-output -d 'Keep at most SIZE bytes of each output stream of a job that sets no limit of its own (mayflyctl submit --max-output); the rest is dropped and the cut noted at the end of the file [default: no limit]' -r
complete -c mayflyd -l on-finish -d 'Run this shell line (sh -c) when a job ends, for every job that sets no --on-finish of its own: in the job\'s directory and environment, plus MAYFLY_JOB_ID, MAYFLY_JOB_STATE, MAYFLY_EXIT_CODE, MAYFLY_SIGNAL, MAYFLY_QUEUE, MAYFLY_JOB_STDOUT, MAYFLY_JOB_STDERR, MAYFLY_DURATION_MS and MAYFLY_SOCKET. It never changes the job\'s state; one owed when the daemon stopped runs after its restart (at least once)' -r
complete -c mayflyd -l on-finish-timeout -d 'Stop a finish callback (SIGKILL to its process group) that runs longer than this' -r
complete -c mayflyd -l on-finish-concurrency -d 'How many finish callbacks may run at once; the others wait their turn' -r
complete -c mayflyd -l max-connections -d 'The most client connections open at once, those still in their handshake included. A client past it is told "too many connections" at once instead of waiting' -r
complete -c mayflyd -l handshake-timeout -d 'How long a new connection has to send its handshake before it is closed' -r
complete -c mayflyd -l idle-timeout -d 'Close a connection that has sent nothing for this long while none of its requests is in flight (a `wait`, `logs --follow` or `events --follow` that is open counts as one)' -r
complete -c mayflyd -l frame-timeout -d 'How long a request may take to arrive whole once its first byte has (waiting for --request-buffer-bytes included); a client that stops in the middle of one is closed' -r
complete -c mayflyd -l max-in-flight -d 'How many requests of one connection may be in flight (read, not yet fully answered) at once; past it the daemon reads no further requests from that connection until one is answered' -r
complete -c mayflyd -l request-buffer-bytes -d 'Bytes of partly received requests larger than 64K held at once, over all connections: such a request waits (within --frame-timeout) until its announced size fits. At least 16M, the largest request' -r
complete -c mayflyd -l reply-buffer-bytes -d 'Bytes of answers one connection may leave unread. Past it the daemon reads no further requests from that connection; a client that then reads nothing for a second (a `wait` or `--follow` that stopped reading) is dropped, and told why if it reads again' -r
complete -c mayflyd -l slurm-poll-interval -d 'How often a queue with --executor slurm asks Slurm about its jobs: one squeue call per tick for all of them, however many. A job\'s end is seen at most this long after Slurm\'s' -r
complete -c mayflyd -l config -d 'Read settings from this TOML file instead of the default $XDG_CONFIG_HOME/mayfly/mayflyd.toml (else ~/.config/mayfly/mayflyd.toml). Keys are the flags\' names in snake_case (concurrency = 4, quantum = "10ms"). Flags and environment variables win over the file, the file wins over the defaults. The default file may be missing; this one must exist' -r -F
complete -c mayflyd -l repair-wal -d 'Start even though the write-ahead log is damaged: copy the damaged files to a backup folder under STATE_DIR/wal/, then cut the log at the first bad record (the jobs after it are lost)'
complete -c mayflyd -l dump-state -d 'On shutdown, print a JSON snapshot of every task and queue to stdout (the same shape as `mayflyctl dump-state`). SIGUSR1 writes one to the log at any time without stopping anything'
complete -c mayflyd -l print-config -d 'Print the effective settings, each with where it came from (flag, env, config file or default), as TOML, and exit without starting the daemon'
complete -c mayflyd -s v -l verbose -d 'More log output (-v debug, -vv trace). RUST_LOG, when set, wins'
complete -c mayflyd -s q -l quiet -d 'Less log output (-q warnings only, -qq errors only)'
complete -c mayflyd -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mayflyd -s V -l version -d 'Print version'
