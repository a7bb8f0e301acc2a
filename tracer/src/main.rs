//! `oltrace`: the command line. Arguments become plain configs; the work
//! is in the `tracer` library.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use format::view::{parse_ns as parse_duration, Filter};
use tracer::Outcome;

const EXIT_CODES: &str = "\
Exit codes:
  0  done, nothing wrong
  1  done, but damaged parts of an input trace were skipped (reported on stderr)
  2  error: bad arguments, unreadable or newer-version trace, failed write";

#[derive(Parser)]
#[command(name = "oltrace", version, about = "Record, inspect and merge serverless traffic traces (*.mp)", after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print records as JSON lines, one per record
    #[command(after_help = EXIT_CODES)]
    Cat(CatArgs),
    /// Summarise a trace: header, record counts, duration, size, damage
    #[command(after_help = EXIT_CODES)]
    Info(InfoArgs),
    /// Merge traces from several workers into one, ordered by time
    #[command(after_help = EXIT_CODES)]
    Merge(MergeArgs),
    /// Write a synthetic trace of realistic serverless traffic
    #[command(after_help = EXIT_CODES)]
    Generate(GenerateArgs),
    /// Run a worker behind recording proxies: its database traffic and its
    /// output lines go into the trace
    #[command(after_help = WRAP_HELP)]
    Wrap(WrapArgs),
    /// Record traffic: listen on each route, forward to its upstream
    /// byte for byte, and write what crosses into a trace
    #[command(after_help = PROXY_HELP)]
    Proxy(ProxyArgs),
    #[command(after_help = RECOVER_HELP)]
    Recover(RecoverArgs),
    /// Rewrite a trace with secrets blanked (before sharing it)
    #[command(after_help = REDACT_HELP)]
    Redact(RedactArgs),
    /// Import a packet capture (.pcap or .pcapng, from tcpdump or
    /// Wireshark) into a trace, decoded as the proxy decodes
    #[command(after_help = IMPORT_HELP)]
    Import(ImportArgs),
    /// Capture live from a network interface (libpcap) into a trace,
    /// decoded as the proxy decodes: for traffic no proxy can be put in front of
    #[command(after_help = CAPTURE_HELP)]
    Capture(CaptureArgs),
    /// Convert traces for other tools: Perfetto, OpenTelemetry (OTLP),
    /// HAR, Parquet (DuckDB, Spark), JSON lines or pcap (Wireshark)
    #[command(after_help = EXPORT_HELP)]
    Export(ExportArgs),
    /// Every worker's log lines on one timeline, tagged with source,
    /// stream, lambda and invocation
    #[command(after_help = LOGS_HELP)]
    Logs(LogsArgs),
    /// The CA that `--tls-intercept` signs per-host certificates with:
    /// make it, or find it
    #[command(subcommand)]
    Ca(CaArgs),
}

const CA_HELP: &str = "\
DIR defaults to $OLTRACE_CA_DIR, else $XDG_CONFIG_HOME/oltrace/ca, else ~/.config/oltrace/ca
(what --tls-intercept uses without --ca-dir). See docs/recording.md, \"Intercepting HTTPS\".

Exit codes:
  0  done
  2  error: a CA exists already (init without --force), no CA (path, show), unreadable or
     unwritable files, a key others can read";

#[derive(Subcommand)]
enum CaArgs {
    /// Make a CA: DIR/ca.pem (the certificate clients trust) and DIR/ca.key
    /// (mode 0600, in a directory made 0700); prints how to trust it
    #[command(after_help = CA_HELP)]
    Init {
        /// Where to put it
        dir: Option<PathBuf>,
        /// Replace a CA that exists (clients that trusted it must be told
        /// to trust the new one)
        #[arg(long)]
        force: bool,
    },
    /// Print the path of the CA certificate (e.g. curl --cacert \"$(oltrace ca path)\")
    #[command(after_help = CA_HELP)]
    Path {
        /// Where the CA is
        dir: Option<PathBuf>,
    },
    /// Print the CA certificate (PEM)
    #[command(after_help = CA_HELP)]
    Show {
        /// Where the CA is
        dir: Option<PathBuf>,
    },
}

const REDACT_HELP: &str = "\
Examples:
  oltrace redact raw.mp -o shared.mp
  oltrace redact raw.mp -o shared.mp --field session_id --header X-Tenant-Key --keep-field key

Blanks, keeping every byte length, what recording blanks by default (PostgreSQL passwords and
SASL, SQL password literals, HTTP credentials headers, URL userinfo, query/form/JSON fields named
password, token, key, secret..., Redis AUTH and friends), the names the trace's header says its
recording blanked, and the names given here. Every record is kept. A message whose bytes no longer
parse is blanked whole; opaque bytes (TLS, tcp routes) are left and counted. A replay of the
result re-sends the blanked values (olreplay warns). See docs/recording.md, \"Redaction\".

Exit codes:
  0  done
  1  done, but damaged parts of the input were skipped (reported on stderr)
  2  error: bad arguments, unreadable input, output not writable";

/// Rewrite a trace with secrets blanked
#[derive(Args)]
struct RedactArgs {
    /// The trace to redact
    input: PathBuf,
    /// The redacted trace to write (not the input)
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Also blank this query, form or JSON field (repeatable)
    #[arg(long = "field", value_name = "NAME")]
    fields: Vec<String>,
    /// Also blank this HTTP header (repeatable)
    #[arg(long = "header", value_name = "NAME")]
    headers: Vec<String>,
    /// Do not blank this default field name (repeatable; what the recording
    /// blanked stays blank)
    #[arg(long = "keep-field", value_name = "NAME")]
    keep_fields: Vec<String>,
    /// Print the counts as JSON on stdout
    #[arg(long)]
    json: bool,
}


const LOGS_HELP: &str = "\
Examples:
  oltrace logs w1.mp w2.mp                       # every worker's lines, interleaved by time
  oltrace logs fleet.mp --lambda blog --grep 'timeout|error'
  oltrace logs fleet.mp --invocation 17          # one invocation: request, calls and lines, in order
  oltrace logs fleet.mp --invocation w2:17       # ... of source w2 (name or index)
  oltrace logs fleet.mp --invocation req-5f2c    # ... by its request id (x-request-id)
  oltrace logs trace.mp --follow                 # tail a trace that is being recorded

Each line: time (UTC), source, stream, LAMBDA#INVOCATION (or -) | text. A line belongs to an
invocation when it holds the invocation's request id (as a word, or where --request-id-regex
says), else when it was written while that invocation was the only one in flight on its worker;
otherwise to none (never a guess). Colour by source on a terminal; NO_COLOR turns it off
(--color always|never overrides both).

Exit codes:
  0  done
  1  done, but damaged parts of an input trace were skipped (reported on stderr)
  2  error: bad arguments, unreadable trace";

// How log lines are tied to invocations (`oltrace logs`, and the `logs`
// table of `oltrace export`): one option, shared. (A plain comment: a doc
// comment on a flattened struct would become the command's about text.)
#[derive(Args)]
struct LogJoinArgs {
    /// Where a log line holds its request id: capture group 1 of this regex,
    /// else its whole match (default: any in-flight invocation's request id,
    /// as a word)
    #[arg(long, value_name = "RE")]
    request_id_regex: Option<regex::Regex>,
}

#[derive(Args)]
struct LogsArgs {
    /// Trace files (several are interleaved by time)
    #[arg(required = true)]
    traces: Vec<PathBuf>,
    /// Only lines of invocations of this lambda (repeatable)
    #[arg(long = "lambda", value_name = "NAME")]
    lambdas: Vec<String>,
    /// One invocation: ID, SOURCE:ID or its request id; shows its request
    /// and downstream calls too
    #[arg(long, value_name = "ID")]
    invocation: Option<tracer::logs::InvocationSel>,
    /// Only lines of this source (worker name or index; repeatable)
    #[arg(long = "source", value_name = "S")]
    sources: Vec<String>,
    /// Only lines matching this regular expression
    #[arg(long, value_name = "RE")]
    grep: Option<regex::Regex>,
    #[command(flatten)]
    log_join: LogJoinArgs,
    /// Colour by source: auto (on a terminal, unless NO_COLOR is set),
    /// always, never
    #[arg(long, value_enum, value_name = "WHEN", default_value_t)]
    color: tracer::logs::ColorWhen,
    /// Keep reading a trace that is still being recorded (Ctrl-C stops)
    #[arg(long)]
    follow: bool,
    /// Print JSON lines instead of text
    #[arg(long)]
    json: bool,
}

const IMPORT_HELP: &str = "\
Examples:
  tcpdump -i any -s 0 -w cap.pcap 'port 5432 or port 6379 or port 8080'
  oltrace import cap.pcap -o trace.mp
  oltrace import cap.pcapng -o trace.mp --port postgres=15432 --port http=9000
  oltrace import cap.pcap -o trace.mp --invocations openlambda --front 8080

A connection's protocol comes from its server's port: 5432 postgres, 6379 redis, 80 and 8080
http, 3306 mysql (opaque), and --port PROTO=PORT; on other ports it is guessed from its first
bytes, else recorded as opaque TCP. Link types: Ethernet (VLAN tags too), Linux cooked
capture v1 and v2 (tcpdump -i any), loopback, raw IP; IPv4 and IPv6. TCP is reassembled:
out-of-order and retransmitted segments are put right; segments the capture missed, and bytes
its snap length cut, become gap records with their byte counts, and decoding picks up again
where the protocol allows. Connections already open when the capture started are picked up
mid-stream. Secrets are redacted as the proxy redacts them (--redact-field, --redact-header
and --keep-field adjust the names, --no-redact keeps them all). Reading is pure Rust: no
libpcap needed. See docs/capture.md.

Exit codes:
  0  imported, nothing missing
  1  imported, but bytes were missing (gaps, snap length) or the file was cut short or
     damaged part way (what came before is imported)
  2  error: not a capture file, unreadable input, trace not writable";

/// Import a packet capture into a trace
#[derive(Args)]
struct ImportArgs {
    /// The capture (.pcap or .pcapng; told apart by content)
    capture: PathBuf,
    /// The trace to write
    #[arg(short, long)]
    output: PathBuf,
    #[command(flatten)]
    packets: PacketArgs,
    /// The trace's source name [default: the capture's file name]
    #[arg(long)]
    source: Option<String>,
    /// Also print the summary as one JSON object on stdout
    #[arg(long)]
    json: bool,
}

const CAPTURE_HELP: &str = "\
Examples:
  oltrace capture -i lo -o trace.mp 'tcp port 5432 or tcp port 6379'
  oltrace capture -i any -o trace.mp --port http=9000 'tcp port 9000'
  oltrace capture -i eth0 -o trace.mp --duration 30s

Needs CAP_NET_RAW (run as root, or `setcap cap_net_raw,cap_net_admin+eip $(command -v oltrace)`)
and libpcap at run time (loaded when this command starts; nothing else in oltrace needs it:
without it, capture with tcpdump -w and use `oltrace import`). The filter is tcpdump's.
Protocols, reassembly, gaps and mid-stream pickup are as for `oltrace import`; packets the
kernel dropped are counted (pcap_stats) and recorded as gaps. Ctrl-C (or SIGTERM, or
--duration) stops: what libpcap holds is drained, open connections are closed, the trace flushed.

Exit codes:
  0  stopped, nothing missing
  1  stopped, but bytes were missing (kernel drops, gaps)
  2  error: no libpcap, no permission (CAP_NET_RAW), no such interface, bad filter,
     trace not writable";

/// Capture live from a network interface into a trace
#[derive(Args)]
struct CaptureArgs {
    /// The interface (lo, eth0, any...)
    #[arg(short, long)]
    interface: String,
    /// A filter in tcpdump's syntax, e.g. 'tcp port 5432' (words are joined)
    filter: Vec<String>,
    /// The trace to write
    #[arg(short, long)]
    output: PathBuf,
    #[command(flatten)]
    packets: PacketArgs,
    /// Stop after this long (e.g. 30s), as at Ctrl-C
    #[arg(long, value_parser = parse_duration)]
    duration: Option<u64>,
    /// Load libpcap from this file instead of the usual names
    #[arg(long, value_name = "FILE")]
    libpcap: Option<PathBuf>,
    /// The trace's source name [default: the interface's name]
    #[arg(long)]
    source: Option<String>,
    /// Also print the summary as one JSON object on stdout
    #[arg(long)]
    json: bool,
}

/// How recordings made from packets are decoded (import, capture).
#[derive(Args)]
struct PacketArgs {
    /// Connections to PORT are PROTO (http, postgres, redis, mysql, tcp),
    /// besides the well-known ports (repeatable)
    #[arg(long = "port", value_name = "PROTO=PORT", value_parser = tracer::packets::parse_port)]
    ports: Vec<(wire::Protocol, u16)>,
    #[command(flatten)]
    redact: tracer::config::RedactFlags,
    /// Requests to HTTP servers are invocations named by this platform
    /// profile: openlambda, openwhisk, aws, azure, auto, NAME=REGEX
    #[arg(long, value_name = "PROFILE", value_parser = parse_profile)]
    invocations: Option<OptionalProfile>,
    /// Only HTTP servers on PORT front a worker (repeatable; default: every
    /// HTTP port)
    #[arg(long = "front", value_name = "PORT")]
    fronts: Vec<u16>,
    /// A connection with no packet for this long is taken as closed (its
    /// FIN or RST may never come); a later packet starts a new one
    #[arg(long, value_name = "TIME", default_value = "5m", value_parser = parse_duration)]
    idle_timeout: u64,
}

impl PacketArgs {
    fn options(self) -> anyhow::Result<tracer::packets::PacketOptions> {
        Ok(tracer::packets::PacketOptions {
            ports: tracer::packets::PortMap::well_known(&self.ports),
            redact: self.redact.rules(&tracer::config::FileConfig::default())?,
            invocations: self.invocations.and_then(|p| p.0),
            fronts: self.fronts,
            limits: wire::Limits::default(),
            reassembly: capture::Limits { idle_ns: self.idle_timeout.max(1), ..capture::Limits::default() },
        })
    }
}

const EXPORT_HELP: &str = "\
Examples:
  oltrace export --format perfetto trace.mp -o trace.json     # open in ui.perfetto.dev
  oltrace export --format otlp trace.mp -o spans.json
  oltrace export --format otlp trace.mp --otlp-endpoint http://127.0.0.1:4318   # Jaeger, Tempo
  oltrace export --format har trace.mp -o trace.har
  oltrace export --format parquet w1.mp w2.mp -o fleet/       # then: duckdb -c \"from 'fleet/exchanges.parquet'\"
  oltrace export --format jsonl trace.mp -o - | gzip > trace.jsonl.gz
  oltrace export --format pcap trace.mp -o trace.pcap        # then: tshark -r trace.pcap -Y pgsql.query

Several traces are read as one, ordered by time (as `oltrace merge` would); each record keeps
its source (worker). Output streams in bounded memory. Formats and the Parquet schema are in
docs/export.md; SQL for many workers' traces in docs/at-scale.md.

Exit codes:
  0  exported
  1  exported, but damaged parts of an input trace were skipped (reported on stderr)
  2  error: unknown format, unreadable trace, unwritable output, collector refused";

#[derive(Args)]
struct ExportArgs {
    /// The format to write
    #[arg(long, short = 'f', value_enum, value_name = "FORMAT")]
    format: tracer::export::ExportFormat,
    /// Trace files (several are interleaved by time)
    #[arg(required = true)]
    traces: Vec<PathBuf>,
    /// The file to write (`-` for stdout); a folder for parquet
    #[arg(short, long, value_name = "OUT")]
    output: Option<PathBuf>,
    /// Also (or only) send the spans to this OTLP/HTTP receiver (--format
    /// otlp), e.g. http://127.0.0.1:4318 (the path /v1/traces is added)
    #[arg(long, value_name = "URL")]
    otlp_endpoint: Option<String>,
    #[command(flatten)]
    log_join: LogJoinArgs,
}

const RECOVER_HELP: &str = "\
Example:
  oltrace recover trace.mp   # after `oltrace proxy -o trace.mp` was killed

A recording writes what it has not decoded yet to TRACE.spool beside the trace. A proxy
killed (SIGKILL, OOM) or stopped with a second Ctrl-C leaves it there; this decodes it into
the trace (redacted as the recording was), marks the trace with a log record from origin
`oltrace recover`, reports damaged parts of the spool as gaps, and removes the spool.

Exit codes:
  0  recovered (a frame cut short at the spool's end, being written at the kill, is a gap too)
  1  recovered, but damaged parts of the spool were lost (recorded as gaps)
  2  error: no spool, a spool of another trace, unreadable or unwritable files";

/// Decode the spool a killed recording left (TRACE.spool) into its trace
#[derive(Args)]
struct RecoverArgs {
    /// The trace whose spool to decode (the spool is TRACE.spool)
    trace: PathBuf,
}

const WRAP_HELP: &str = "\
Example:
  oltrace wrap -o trace.mp --route postgres:0=127.0.0.1:5432 --route redis:0=127.0.0.1:6379 -- ./worker --port 8080

The command runs with PGHOST/PGPORT (and DATABASE_URL, if set) pointing at the first postgres
route, REDIS_URL at the first redis route, and OLTRACE_ROUTES listing every route. Its stdout
and stderr pass through and are recorded line by line. SIGINT, SIGTERM and SIGHUP are
forwarded to it. PostgreSQL clients that ask for TLS (libpq's default sslmode=prefer) are
answered no (N) by the proxy and go on in plaintext on the loopback hop, so their statements are
recorded (route option tls=decline, the default; tls=terminate accepts TLS for clients that
insist; tls=passthrough forwards TLS as opaque bytes; see oltrace proxy --help).

With an http route (the gateway's way in), each request the platform profile names
(--invocations, default auto: /run/NAME, OpenWhisk, AWS, Azure paths) is an invocation, and
the worker's queries and calls are attributed to it (traceparent, sqlcommenter, or the only
invocation in flight). --forward-proxy 0 also records outbound HTTP: HTTP_PROXY and
HTTPS_PROXY (and lower-case) point at it. With --tls-intercept, HTTPS through it is decrypted
and recorded too: SSL_CERT_FILE, REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE name a bundle of what
each named before (else the system's CAs) plus oltrace's CA, NODE_EXTRA_CA_CERTS the CA (plus
the file it named). See docs/recording.md.

Exit codes: the command's own (128+N if signal N ended it); 2 if oltrace itself failed.";

const PROXY_HELP: &str = "\
Examples:
  oltrace proxy -o trace.mp --route postgres:15432=127.0.0.1:5432 --route redis:16379=127.0.0.1:6379
  psql -h 127.0.0.1 -p 15432 ...   # then Ctrl-C the proxy: it drains, flushes and prints a summary
  oltrace proxy -o trace.mp --route http:18080=127.0.0.1:8080 --invocations openlambda --inject-traceparent
  oltrace proxy -o trace.mp --forward-proxy 3128   # curl -x http://127.0.0.1:3128 http://...
  oltrace proxy -o trace.mp --forward-proxy 3128 --tls-intercept --tls-passthrough pinned.example
  curl --cacert \"$(oltrace ca path)\" -x http://127.0.0.1:3128 https://api.example/   # decrypted, recorded as HTTP

LISTEN is a port (bound on 127.0.0.1) or ip:port; port 0 picks a free one (printed on stderr).
Route options follow the upstream, comma separated (postgres routes):
  tls=decline       the default: the proxy answers clients' SSLRequest and GSSENCRequest with N,
                    so they go on in plaintext to it and every statement is recorded (loopback
                    listeners only, unless --allow-plaintext-listen)
  tls=terminate     accept TLS with cert=FILE,key=FILE (or a self-signed certificate made at
                    start), for clients with sslmode=require; the plaintext is recorded
  tls=passthrough   TLS forwarded untouched, recorded as opaque bytes
  upstream-tls=disable|require|verify-full   the proxy's own connection to the server
                    (verify-full: against upstream-ca=FILE, else the system's CAs, and the host name)
  e.g. --route postgres:15432=db:5432,tls=terminate,upstream-tls=verify-full,upstream-ca=ca.pem
rediss:LISTEN=UPSTREAM routes take TLS from the first byte (redis-cli --tls), terminated with
cert=/key= or a self-signed certificate; upstream-tls= and upstream-ca= as above.
Secrets are blanked in the trace, never in the traffic, keeping their length: PostgreSQL passwords
and SASL, SQL password literals (PASSWORD '...', IDENTIFIED BY '...', crypt/pgp_sym_* arguments),
Bind parameters of secret columns (SET password = $1, INSERT ... (name, token) VALUES ($1, $2)), HTTP Authorization/Cookie/Set-Cookie/X-Api-Key/X-Auth-Token, URL userinfo, query, form and JSON
fields named password, token, key, secret... (--redact-field/--redact-header add names,
--keep-field exempts one), Redis AUTH, CONFIG SET requirepass, ACL SETUSER >pw, and in log lines
password=..., JSON token fields, Authorization: ..., Bearer ..., URL passwords; --no-redact keeps
them all. `oltrace redact` blanks a trace already written. The trace is readable by its
owner only. If the recorder falls behind, forwarding goes on and the lost data is recorded as gaps
(with --block, forwarding waits for the recorder instead). --config FILE reads the options from
TOML (keys in docs/recording.md); flags override it.

Exit codes:
  0  stopped by SIGINT/SIGTERM, trace complete
  2  error: bad route, port in use, trace not writable, or recording stopped early (disk full)";

#[derive(Args)]
struct CatArgs {
    /// Trace files, read one after another
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Only records of this connection id (repeatable)
    #[arg(long = "conn", value_name = "ID")]
    conns: Vec<u64>,
    /// Only records on connections of this protocol (repeatable)
    #[arg(long = "proto", value_name = "PROTO")]
    protocols: Vec<format::Protocol>,
    /// Only messages (and gaps, fallbacks) travelling this way
    #[arg(long = "dir", value_name = "DIR")]
    direction: Option<format::Direction>,
    /// Only records of this kind (repeatable): conn_open, conn_close,
    /// message, exchange, invocation, log, gap, fallback
    #[arg(long = "kind", value_name = "KIND", value_parser = clap::builder::PossibleValuesParser::new(format::Body::KINDS))]
    kinds: Vec<String>,
    /// Only records at or after this time since the trace's start
    /// (seconds, or with a unit: 1.5s, 250ms, 40us, 2m)
    #[arg(long, value_name = "TIME", value_parser = parse_duration)]
    from: Option<u64>,
    /// Only records before this time since the trace's start
    #[arg(long, value_name = "TIME", value_parser = parse_duration)]
    to: Option<u64>,
    /// Only records on connections of this route (repeatable)
    #[arg(long = "route", value_name = "ROUTE")]
    routes: Vec<String>,
    /// Only invocations of this lambda, their exchanges and the calls
    /// attributed to them (repeatable)
    #[arg(long = "lambda", value_name = "NAME")]
    lambdas: Vec<String>,
    /// Stop after printing this many records
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
}

#[derive(Args)]
struct InfoArgs {
    /// The trace file
    file: PathBuf,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct MergeArgs {
    /// Traces to merge
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// The merged trace to write
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// How far out of time order an input may be and still come out sorted
    #[arg(long, value_name = "TIME", default_value = "5s", value_parser = parse_duration)]
    window: u64,
}

#[derive(Args)]
struct GenerateArgs {
    /// The trace to write
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// How many records to write
    #[arg(long, default_value_t = 10_000)]
    records: u64,
    /// The kind of traffic: lambdas calling PostgreSQL and Redis, or small
    /// keep-alive HTTP exchanges
    #[arg(long, value_enum, default_value_t = MixArg::Serverless)]
    mix: MixArg,
    /// Seed for the generator: the same seed gives the same records
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write at this many records per second of wall-clock time (default:
    /// as fast as possible)
    #[arg(long, value_name = "N")]
    rate: Option<f64>,
    /// Flush to disk at least this often
    #[arg(long, value_name = "TIME", default_value = "100ms", value_parser = parse_duration)]
    flush_interval: u64,
    /// Print "flushed N" on stdout after each flush
    #[arg(long)]
    report_flushes: bool,
    /// The source name in the header (default: the host name)
    #[arg(long, default_value = "")]
    source: String,
    /// zstd level, 1 (fast) to 19 (small); 0 stores blocks uncompressed
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(0..=19))]
    zstd_level: i32,
}

#[derive(Args)]
struct ProxyArgs {
    /// A route PROTO:LISTEN=UPSTREAM[,OPTION=VALUE...] (repeatable); PROTO:
    /// http, postgres, redis, rediss, tcp; options (postgres; rediss but tls=):
    /// tls=decline|terminate|passthrough, upstream-tls=disable|require|verify-full,
    /// cert=FILE, key=FILE, upstream-ca=FILE
    #[arg(long = "route", value_name = "PROTO:LISTEN=UPSTREAM")]
    routes: Vec<tracer::proxy::route::Route>,
    #[command(flatten)]
    record: RecordArgs,
    #[command(flatten)]
    invocations: InvocationArgs,
}

#[derive(Args)]
struct WrapArgs {
    /// A route PROTO:LISTEN=UPSTREAM (repeatable); LISTEN 0 picks a free port
    #[arg(long = "route", value_name = "PROTO:LISTEN=UPSTREAM")]
    routes: Vec<tracer::proxy::route::Route>,
    #[command(flatten)]
    record: RecordArgs,
    #[command(flatten)]
    invocations: InvocationArgs,
    /// The worker command and its arguments (after --)
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

#[derive(Args)]
struct RecordArgs {
    /// The trace to write
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Options from a TOML file (keys in docs/recording.md); flags override
    /// it, and --route/--log given here replace its lists
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    redact: tracer::config::RedactFlags,
    /// Keep what is not decoded yet in an unnamed file instead of
    /// TRACE.spool. The spool holds the traffic unredacted (mode 0600); without
    /// it nothing unredacted is left on disk, but a proxy killed (SIGKILL,
    /// OOM, power) loses everything not yet decoded, up to --defer MiB or 30 s
    /// of busy traffic, and `oltrace recover` has nothing to work with
    #[arg(long)]
    no_spool: bool,
    /// How long connecting to an upstream may take before the client's
    /// connection is closed [default: 5s]
    #[arg(long, value_name = "TIME", value_parser = parse_duration)]
    connect_timeout: Option<u64>,
    /// Chunks the recorder queue holds before further data is dropped (and
    /// recorded as a gap) rather than slowing the traffic [default: 65536]
    #[arg(long, value_name = "N")]
    queue: Option<usize>,
    /// Forwarding threads; each owns the connections it is given
    /// [default: one per core, at most 16]
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// When the recorder queue is full, make forwarding wait for room
    /// instead of dropping: nothing is lost, but a slow recorder slows the
    /// traffic
    #[arg(long)]
    block: bool,
    /// While traffic is busy, decoding waits for it to pause, until this
    /// many MiB are waiting or 30 s have passed; 0 decodes as the traffic
    /// comes (a fresher trace, more CPU taken from the traffic) [default:
    /// 256, at most 512]
    #[arg(long, value_name = "MIB")]
    defer: Option<u64>,
    /// Fold this log file into the trace as it grows, one record per line
    /// (repeatable; read from its start, follows appends, truncation and
    /// rotation)
    #[arg(long = "log", value_name = "FILE")]
    logs: Vec<PathBuf>,
    /// How long open connections may go on after SIGINT/SIGTERM [default: 5s]
    #[arg(long, value_name = "TIME", value_parser = parse_duration)]
    drain_timeout: Option<u64>,
    /// The source name in the header (default: the host name)
    #[arg(long)]
    source: Option<String>,
    /// Let postgres routes that decline TLS (tls=decline, the default)
    /// listen on addresses other hosts can reach: their clients then send
    /// passwords and queries in plaintext over the network
    #[arg(long)]
    allow_plaintext_listen: bool,
    /// Keep each client message whole up to this size (bytes, or KiB/MiB/
    /// GiB): replay re-sends them. A larger one is recorded truncated and
    /// olreplay skips it. Server messages keep 64 KiB, their full length
    /// and a hash [default: 64MiB]
    #[arg(long, value_name = "SIZE", value_parser = tracer::config::parse_size)]
    max_request: Option<usize>,
}

/// Forward proxy, invocations and attribution (docs/recording.md).
#[derive(Args)]
struct InvocationArgs {
    /// Also run an HTTP forward proxy on LISTEN (port or ip:port; 0 picks
    /// one) for outbound calls: absolute-form requests are recorded as HTTP
    /// exchanges, CONNECT tunnels as opaque. `wrap` sets HTTP_PROXY and
    /// HTTPS_PROXY (and lower-case) for the command
    #[arg(long, value_name = "LISTEN", value_parser = tracer::config::parse_listen)]
    forward_proxy: Option<std::net::SocketAddr>,
    /// Decrypt the forward proxy's CONNECT tunnels (HTTPS) with per-host
    /// certificates from oltrace's CA, and record the HTTP inside (the CA
    /// is made at first use, see `oltrace ca init`). `wrap` points
    /// SSL_CERT_FILE, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE and
    /// NODE_EXTRA_CA_CERTS at it for the command
    #[arg(long)]
    tls_intercept: bool,
    /// The CA's directory [default: $OLTRACE_CA_DIR, else
    /// $XDG_CONFIG_HOME/oltrace/ca, else ~/.config/oltrace/ca]
    #[arg(long, value_name = "DIR")]
    ca_dir: Option<PathBuf>,
    /// Leave tunnels to HOST opaque, e.g. hosts whose clients pin their
    /// certificates (repeatable; *.example.com: every name under it)
    #[arg(long = "tls-passthrough", value_name = "HOST")]
    tls_passthrough: Vec<String>,
    /// Also trust the CA certificates in FILE (PEM) when verifying
    /// intercepted upstreams, besides the system's (repeatable)
    #[arg(long = "upstream-ca", value_name = "FILE")]
    upstream_ca: Vec<PathBuf>,
    /// Do not verify intercepted upstreams' certificates at all (anyone on
    /// the path can then read and change the traffic; for tests only)
    #[arg(long)]
    upstream_insecure: bool,
    /// The http routes front a worker: record each request as an invocation
    /// named by this platform profile: openlambda (/run/NAME), openwhisk,
    /// aws, azure, auto (the first that matches), NAME=REGEX (a capture
    /// group holds the lambda's name), or none. Downstream calls are then
    /// attributed to invocations. Default: auto for wrap, none for proxy
    #[arg(long, value_name = "PROFILE", value_parser = parse_profile)]
    invocations: Option<OptionalProfile>,
    /// Only the http route listening on LISTEN (a port, or ip:port, as in
    /// its --route) fronts the worker (repeatable); the other http routes
    /// are downstream calls. Default: every http route fronts the worker
    #[arg(long = "front", value_name = "LISTEN", value_parser = tracer::config::parse_listen)]
    fronts: Vec<std::net::SocketAddr>,
    /// Add a W3C traceparent header to invocation requests that have none,
    /// as they are forwarded (this changes the traffic; off by default), so
    /// that lambdas propagating it are attributed exactly
    #[arg(long)]
    inject_traceparent: bool,
}

#[derive(Clone)]
struct OptionalProfile(Option<tracer::proxy::profiles::Profile>);

fn parse_profile(text: &str) -> Result<OptionalProfile, String> {
    tracer::config::parse_profile(text).map(OptionalProfile)
}

#[derive(Clone, Copy, ValueEnum)]
enum MixArg {
    Serverless,
    SmallHttp,
}

/// Flags over `--config` over defaults, merged and checked in
/// `tracer::config`. `wrap` defaults to the `auto` profile when it has an
/// http route: that route is how a wrapped worker's invocations arrive.
fn proxy_config(routes: Vec<tracer::proxy::route::Route>, r: RecordArgs, i: InvocationArgs, wrap: bool) -> anyhow::Result<tracer::proxy::ProxyConfig> {
    tracer::config::resolve(tracer::config::Flags {
        config: r.config,
        routes,
        output: r.output,
        redact: r.redact,
        no_spool: r.no_spool,
        connect_timeout: r.connect_timeout,
        queue: r.queue,
        threads: r.threads,
        block: r.block,
        defer: r.defer,
        drain_timeout: r.drain_timeout,
        source: r.source,
        logs: r.logs,
        allow_plaintext_listen: r.allow_plaintext_listen,
        max_request: r.max_request,
        wrap,
        invocations: i.invocations.map(|p| p.0),
        fronts: i.fronts,
        inject_traceparent: i.inject_traceparent,
        forward_proxy: i.forward_proxy,
        tls_intercept: i.tls_intercept,
        ca_dir: i.ca_dir,
        tls_passthrough: i.tls_passthrough,
        upstream_ca: i.upstream_ca,
        upstream_insecure: i.upstream_insecure,
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Cat(a) => {
            let filter = Filter {
                conns: a.conns,
                protocols: a.protocols,
                direction: a.direction,
                kinds: a.kinds,
                routes: a.routes,
                lambdas: a.lambdas,
                from_ns: a.from,
                to_ns: a.to,
            };
            let config = tracer::cat::CatConfig { files: a.files, filter, limit: a.limit };
            tracer::cat::run(&config, &mut std::io::BufWriter::new(std::io::stdout().lock()))
        }
        Command::Info(a) => tracer::info::run(&tracer::info::InfoConfig { file: a.file, json: a.json }, &mut std::io::stdout()),
        Command::Merge(a) => {
            tracer::merge_cmd::run(&tracer::merge_cmd::MergeConfig { inputs: a.inputs, output: a.output, window_ns: a.window })
        }
        Command::Generate(a) => tracer::generate::run(&tracer::generate::GenerateConfig {
            output: a.output,
            records: a.records,
            mix: match a.mix {
                MixArg::Serverless => format::synth::Mix::Serverless,
                MixArg::SmallHttp => format::synth::Mix::SmallHttp,
            },
            seed: a.seed,
            rate: a.rate,
            flush_interval: std::time::Duration::from_nanos(a.flush_interval),
            report_flushes: a.report_flushes,
            source_name: a.source,
            zstd_level: a.zstd_level,
        }),
        Command::Export(a) => tracer::export::run(&tracer::export::ExportConfig {
            format: a.format,
            traces: a.traces,
            output: a.output,
            otlp_endpoint: a.otlp_endpoint,
            request_id: a.log_join.request_id_regex,
            progress: true,
        }),
        Command::Logs(a) => {
            let config = tracer::logs::LogsConfig {
                traces: a.traces,
                lambdas: a.lambdas,
                invocation: a.invocation,
                sources: a.sources,
                grep: a.grep,
                request_id: a.log_join.request_id_regex,
                follow: a.follow,
                json: a.json,
                color: !a.json && a.color.for_stdout(),
            };
            tracer::logs::run(&config, &mut std::io::BufWriter::new(std::io::stdout().lock()))
        }
        Command::Ca(a) => {
            let command = match a {
                CaArgs::Init { dir, force } => tracer::ca_cmd::CaCommand::Init { dir, force },
                CaArgs::Path { dir } => tracer::ca_cmd::CaCommand::Path { dir },
                CaArgs::Show { dir } => tracer::ca_cmd::CaCommand::Show { dir },
            };
            tracer::ca_cmd::run(&command, &mut std::io::stdout())
        }
        Command::Recover(a) => tracer::recover::run(&tracer::recover::RecoverConfig { trace: a.trace }),
        Command::Redact(a) => tracer::redact_cmd::run(&tracer::redact_cmd::RedactConfig {
            input: a.input,
            output: a.output,
            fields: a.fields,
            headers: a.headers,
            keep_fields: a.keep_fields,
            json: a.json,
        }),
        Command::Import(a) => a.packets.options().and_then(|options| {
            tracer::import::run(&tracer::import::ImportConfig { input: a.capture, output: a.output, options, source_name: a.source, json: a.json })
        }),
        Command::Capture(a) => a.packets.options().and_then(|options| {
            tracer::live::run(&tracer::live::CaptureConfig {
                interface: a.interface,
                filter: a.filter.join(" "),
                output: a.output,
                options,
                libpcap: a.libpcap,
                duration: a.duration.map(std::time::Duration::from_nanos),
                source_name: a.source,
                json: a.json,
            })
        }),
        Command::Proxy(a) => proxy_config(a.routes, a.record, a.invocations, false).and_then(|c| tracer::proxy::run(&c)),
        Command::Wrap(a) => proxy_config(a.routes, a.record, a.invocations, true)
            .and_then(|proxy| tracer::wrap::run(&tracer::wrap::WrapConfig { proxy, command: a.command })),
    };
    match result {
        Ok(Outcome::Clean) => ExitCode::SUCCESS,
        Ok(Outcome::Damaged) => ExitCode::from(1),
        Ok(Outcome::Exit(code)) => ExitCode::from(code),
        Err(e) => {
            eprintln!("oltrace: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
