//! The `tlsbench` binary: parses the command line and hands each subcommand to the library
//! that owns it. Nothing else lives here.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use common::certs::{self, KeyType};

/// HTTPS benchmark server and load generator: what a full handshake, a resumed handshake and
/// an encrypted record cost on this machine.
#[derive(Parser, Debug)]
#[command(name = "tlsbench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the whole benchmark matrix on loopback: server and generator pinned apart, CPU per
    /// operation on both sides, results directory with JSON, table and charts.
    Run(Box<runner::RunArgs>),
    /// Compare two `tlsbench run` results (results.json); exit 1 when a cost regressed, 2 when
    /// the runs are not like with like (see the exit codes below).
    Compare(runner::compare::CompareArgs),
    /// Soak: minutes of mixed load (full, resumed, keep-alive, bulk, broken clients) with the
    /// server's RSS, descriptors and threads sampled every second; exit 1 when one grew past
    /// its bound after warm-up or a good client failed.
    Soak(Box<runner::soak::SoakArgs>),
    /// Run the HTTPS benchmark server (hello page, /bytes/N, /sink; counters on --admin).
    Server(Box<server::cli::ServerArgs>),
    /// Load-test an HTTPS server: full vs resumed handshakes, keep-alive requests, throughput.
    Load(Box<loadgen::cli::LoadArgs>),
    /// Merge `tlsbench load --json` documents of the parts of one load (--segment, several
    /// machines) into one, losslessly: counts summed, histograms added (percentiles never
    /// averaged), rates over the union of the windows; parts run differently are refused.
    Merge(loadgen::merge::MergeArgs),
    /// Generate certificate chains (Model CA → intermediate → bank32.com) for every key type.
    Certs(CertsArgs),
    /// List the crypto providers and what each supports: cipher suites with their TLS
    /// versions, key-exchange groups, certificate key types and signature schemes, by the
    /// names --cipher-suites, --kx-groups and --cert-type accept.
    List(ListArgs),
    /// Summarise `cargo bench -p benches` (criterion's output) into Markdown and CSV tables:
    /// handshakes/s, record GB/s, ratios to the crypto floor, HTTP per-request overhead. Only
    /// the last run's results count: older ones or another profile's are left out and listed.
    BenchReport(BenchReportArgs),
    /// Count instructions under valgrind (callgrind) per handshake side and per 16 KiB record
    /// of the standard matrix; writes instructions.json into --out for `compare --metric
    /// instructions`. Needs valgrind.
    Icount(icount::IcountArgs),
}

#[derive(clap::Args, Debug)]
struct BenchReportArgs {
    /// Criterion's output directory, as `cargo bench` left it [default: $CRITERION_HOME, else
    /// $CARGO_TARGET_DIR/criterion, else target/criterion: where the benches write].
    #[arg(long)]
    criterion_dir: Option<PathBuf>,
    /// Output directory for bench-TIME.{md,csv} (TIME in UTC) and bench-latest.{md,csv}.
    #[arg(long, default_value = "results")]
    out: PathBuf,
}

#[derive(clap::Args, Debug)]
struct ListArgs {
    /// JSON instead of aligned text (providers, cipher_suites, kx_groups, cert_types,
    /// signature_schemes; each name with the providers supporting it).
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct CertsArgs {
    /// Output directory; each key type gets DIR/TYPE/{chain.pem,key.pem,ca.pem}.
    #[arg(long, default_value = "certs")]
    out: PathBuf,
    /// Key types to generate (rsa2048, rsa3072, rsa4096, ecdsa-p256, ecdsa-p384, ed25519) [default: all].
    #[arg(long = "key-type", value_delimiter = ',')]
    key_types: Vec<String>,
    /// Regenerate even when the files exist.
    #[arg(long)]
    force: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("tlsbench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Run(args) => {
            let code = runner::run(&args).context("run")?;
            return Ok(u8::try_from(code).unwrap_or(1));
        }
        Command::Compare(args) => {
            // An unreadable input is "cannot compare" (2), never a regression (1).
            let code = runner::compare::run(&args).unwrap_or_else(|e| {
                eprintln!("tlsbench: error: compare: {e}");
                runner::compare::EXIT_NOT_COMPARABLE
            });
            return Ok(u8::try_from(code).unwrap_or(1));
        }
        Command::Soak(args) => {
            let code = runner::soak::run(&args).context("soak")?;
            return Ok(u8::try_from(code).unwrap_or(1));
        }
        Command::Server(args) => {
            server::cli::run(*args).context("server")?;
        }
        Command::Load(args) => {
            let exit = loadgen::cli::run(&args, std::env::args().collect()).context("load")?;
            return Ok(exit.code());
        }
        Command::Merge(args) => {
            let exit = loadgen::merge::run(&args, std::env::args().collect()).context("merge")?;
            return Ok(exit.code());
        }
        Command::Certs(args) => certs_command(&args)?,
        Command::List(args) => {
            let catalogue = common::tls::catalogue::Catalogue::build();
            if args.json {
                println!("{}", serde_json::to_string_pretty(&catalogue)?);
            } else {
                print!("{}", catalogue.text());
            }
        }
        Command::BenchReport(args) => bench_report_command(&args)?,
        Command::Icount(args) => {
            if let Some(path) = icount::run(&args).context("icount")? {
                println!("wrote {}", path.display());
            }
        }
    }
    Ok(0)
}

fn certs_command(args: &CertsArgs) -> anyhow::Result<()> {
    let types: Vec<KeyType> = if args.key_types.is_empty() {
        KeyType::ALL.to_vec()
    } else {
        args.key_types
            .iter()
            .map(|s| s.parse())
            .collect::<Result<_, _>>()?
    };
    for kt in types {
        let p = certs::paths(&args.out, kt);
        let c = certs::client_paths(&args.out, kt);
        if !args.force
            && [&p.chain, &p.key, &p.ca, &c.ca, &c.cert, &c.key]
                .iter()
                .all(|f| f.exists())
        {
            println!("{kt:<10} kept       {}", p.dir.display());
            continue;
        }
        let client = certs::generate_client(kt, &certs::ChainOptions::default())
            .with_context(|| format!("generating the {kt} client certificate"))?;
        certs::write_client(&args.out, &client)
            .with_context(|| format!("writing the {kt} client certificate"))?;
        let chain = certs::generate(kt, &certs::ChainOptions::default())
            .with_context(|| format!("generating the {kt} chain"))?;
        let p =
            certs::write(&args.out, &chain).with_context(|| format!("writing the {kt} chain"))?;
        println!(
            "{kt:<10} generated  {} (chain.pem: leaf+intermediate, key.pem: 0600, ca.pem: trust this; client.pem with client-key.pem: 0600 for --cert/--key, client-ca.pem: what --client-auth trusts)",
            p.dir.display()
        );
    }
    Ok(())
}

fn bench_report_command(args: &BenchReportArgs) -> anyhow::Result<()> {
    let criterion_dir = args
        .criterion_dir
        .clone()
        .or_else(bench_report::criterion_dir_from_env)
        .unwrap_or_else(|| PathBuf::from("target/criterion"));
    let summary = bench_report::run(&criterion_dir, &args.out).context("bench-report")?;
    println!(
        "{} benchmarks of the {} run started {} read from {}",
        summary.measurements,
        summary.run.profile.name(),
        common::env::utc_rfc3339(summary.run.started()),
        criterion_dir.display()
    );
    if !summary.left_out.is_empty() {
        eprintln!(
            "warning: {} result(s) from another run or profile left out (listed in the report):",
            summary.left_out.len()
        );
        for l in &summary.left_out {
            eprintln!("  {}: {}", l.id, l.reason);
        }
    }
    for ratio in &summary.ratios {
        let value = ratio
            .value
            .map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
        println!("{:<70} {value:>6}  {}", ratio.subject, ratio.status());
    }
    println!(
        "wrote {} and {} (also {} and {})",
        summary.markdown.display(),
        summary.csv.display(),
        summary.latest_markdown.display(),
        summary.latest_csv.display()
    );
    Ok(())
}
