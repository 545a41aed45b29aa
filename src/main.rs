//! `promote`: parses the command line (or the action's inputs) and dispatches; nothing else.

use std::process::ExitCode;

use promote_action::actions::{self, Console, Context, OutputFormat, Outputs};
use promote_action::outcome::{self, Outcome};
use promote_action::{cli, pipeline};

fn main() -> ExitCode {
    // kube's client panics at creation when more than one rustls provider is compiled in and
    // none is installed; install ours (aws-lc-rs) before anything can build a client.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();

    let ctx = Context::from_env();
    let console = Console::new(ctx.in_actions);
    let mut outputs = Outputs::default();

    // A `run:` step on GitHub also has GITHUB_ACTIONS=true: only a bare `promote` in Actions is
    // the action itself, reading its inputs.
    let from_inputs = ctx.in_actions && std::env::args_os().len() <= 1;
    let argv = if from_inputs {
        match actions::inputs::argv_from_inputs(
            |k| std::env::var(k).ok(),
            |s| actions::mask(s, &console),
            cli::accepts,
        ) {
            Ok(args) => {
                for name in &args.ignored {
                    console.annotate(&actions::Annotation::warning(format!(
                        "input `{name}` is not used by this command; ignored"
                    )));
                }
                args.argv
            }
            Err(e) => {
                return finish(
                    &ctx,
                    &console,
                    &mut outputs,
                    Err(outcome::Classified::invalid(e)),
                    false,
                );
            }
        }
    } else {
        std::env::args_os().collect()
    };
    let cli = match cli::parse_from(argv) {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let message = cli::usage_error(&e, from_inputs);
            return finish(
                &ctx,
                &console,
                &mut outputs,
                Err(outcome::Classified::invalid(anyhow::anyhow!(message))),
                false,
            );
        }
    };
    if let Some(token) = &cli.global.github_token {
        actions::mask(token.expose(), &console);
    }
    for secret in [
        &cli.global.auth.registry_password,
        &cli.global.auth.azure_client_secret,
    ]
    .into_iter()
    .flatten()
    {
        actions::mask(secret.expose(), &console);
    }
    actions::init_logging(ctx.in_actions, cli.global.verbose || ctx.debug);

    let mut rt = pipeline::Runtime {
        ctx: &ctx,
        console: &console,
        outputs: &mut outputs,
    };
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|tokio| tokio.block_on(dispatch(&mut rt, &cli)));
    finish(&ctx, &console, &mut outputs, result, cli.global.json)
}

/// One function per subcommand.
async fn dispatch(rt: &mut pipeline::Runtime<'_>, cli: &cli::Cli) -> anyhow::Result<Outcome> {
    match &cli.command {
        cli::Command::Plan(args) => pipeline::run_plan(rt, &cli.global, args).await,
        cli::Command::Push(args) => pipeline::run_push(rt, &cli.global, args).await,
        cli::Command::Copy(args) => pipeline::run_copy(rt, &cli.global, args).await,
        cli::Command::Deploy(args) => pipeline::run_deploy(rt, &cli.global, args).await,
        cli::Command::Rollback(args) => pipeline::run_rollback(rt, &cli.global, args).await,
        cli::Command::Retire(args) => pipeline::run_retire(rt, &cli.global, args).await,
        cli::Command::History(args) => pipeline::run_history(rt, &cli.global, args).await,
        cli::Command::Verify(args) => pipeline::run_verify(rt, &cli.global, args).await,
        cli::Command::Run(args) => pipeline::run_promotion(rt, &cli.global, args).await,
        cli::Command::Status(args) => pipeline::run_status(rt, &cli.global, args).await,
        cli::Command::Drift(args) => pipeline::run_drift(rt, &cli.global, args).await,
        cli::Command::Environments(command) => {
            pipeline::run_environments(rt, &cli.global, command).await
        }
        cli::Command::Metrics(args) => pipeline::run_metrics(rt, &cli.global, args).await,
    }
}

/// Reports the error (if any), sets the `outcome` output, flushes outputs and maps to the exit code.
fn finish(
    ctx: &Context,
    console: &Console,
    outputs: &mut Outputs,
    result: anyhow::Result<Outcome>,
    json: bool,
) -> ExitCode {
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(err) => pipeline::report_failure(console, &err),
    };
    outputs.set("outcome", outcome.word());
    let format = if json {
        OutputFormat::Json
    } else {
        OutputFormat::Lines
    };
    if let Err(e) = outputs.flush(ctx, format) {
        eprintln!("error: {e}");
        return Outcome::Failed.exit_code();
    }
    outcome.exit_code()
}
