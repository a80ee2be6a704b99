//! The commands of `palisade`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use palisade_core::audit::{AuditEvent, AuditKind, Outcome};
use palisade_core::clock::{Clock, SystemClock};
use palisade_server::config::{Config, SettingFlags};
use secrecy::ExposeSecret as _;

/// Palisade: authentication, tokens, sessions, encryption and audit for your applications.
#[derive(Debug, Parser)]
#[command(name = "palisade", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server.
    Serve(ServeArgs),
    /// Create or upgrade the schema of the configured database, then exit.
    Migrate(SettingsArgs),
    /// Run the security diagnostics (stores, encryption, audit chain); exit 1 on any failure. With
    /// `--totp USER`, check that user's authenticator app instead.
    Diagnose(DiagnoseArgs),
    /// Query a running server's /ready and print it; exit 1 unless HEALTHY.
    Health(HealthArgs),
    /// The tamper-evident audit chain.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Administer users.
    #[command(subcommand)]
    User(UserCommand),
    /// Administer API keys.
    #[command(subcommand)]
    Apikey(ApiKeyCommand),
    /// Administer OAuth clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Signing and encryption keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The PKCS#11 HSM that holds the master key (hsm_module, hsm_slot, hsm_pin).
    #[command(subcommand)]
    Hsm(HsmCommand),
    /// Compliance: reports of technical control checks per standard.
    #[command(subcommand)]
    Compliance(ComplianceCommand),
}

#[derive(Debug, Subcommand)]
enum ComplianceCommand {
    /// Print a report of technical control checks for one standard to standard output: each control
    /// Palisade measures on itself (password policy, MFA of administrators, encryption at rest, key
    /// ages, the audit chain, retention, consent coverage, lockout, session lifetimes, transport
    /// settings) with its status, evidence and a recommendation, and the score met/total. Evidence
    /// for an assessment, never a certification. The run is audited as `compliance.report`; exit 1
    /// when the standard is turned off (compliance_*_enabled) or the range is out of bounds.
    Report(ComplianceReportArgs),
}

#[derive(Debug, Args)]
struct ComplianceReportArgs {
    /// The standard: GDPR, HIPAA, PCI_DSS, SOX or ISO27001 (any letter case).
    #[arg(long, value_name = "STANDARD", value_parser = parse_standard)]
    standard: palisade_core::compliance::Standard,
    /// `json`, or `html` for a printable page (its style inline, so the file opens anywhere).
    #[arg(long, value_name = "FORMAT", default_value = "json", value_parser = parse_report_format)]
    format: palisade_server::ReportFormat,
    /// The range of the audit queries in seconds, ending now (300 to 31622400; 30 days by default).
    #[arg(long, value_name = "SECONDS", default_value_t = 2_592_000)]
    range: i64,
    #[command(flatten)]
    settings: SettingFlags,
}

fn parse_standard(text: &str) -> Result<palisade_core::compliance::Standard, String> {
    use palisade_core::compliance::Standard;
    Standard::parse(text).ok_or_else(|| {
        let names: Vec<&str> = Standard::ALL.iter().map(|s| s.as_str()).collect();
        format!("`{text}` is not a standard (one of {})", names.join(", "))
    })
}

fn parse_report_format(text: &str) -> Result<palisade_server::ReportFormat, String> {
    palisade_server::ReportFormat::parse(text).ok_or_else(|| format!("`{text}` is not json or html"))
}

#[derive(Debug, Subcommand)]
enum HsmCommand {
    /// Generate the master key (a non-extractable AES-256 key labelled `palisade-master`) in the
    /// configured token if it is not there yet, and print the provider id. Safe to run again.
    Init(SettingsArgs),
    /// Show the module, slot, token and master key, and try a wrap/unwrap round trip; exit 1 on
    /// any failure.
    Status(SettingsArgs),
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Show every signing key and data key and what each does now.
    Status(SettingsArgs),
    /// Make a new key. The signing key is published at once and signs after two minutes on every
    /// instance; older keys keep verifying and decrypting what they made.
    Rotate(KeysRotateArgs),
}

#[derive(Debug, Args)]
struct KeysRotateArgs {
    /// Which key: the JWT signing key, the data-encryption key or the audit MAC key.
    #[arg(long, value_enum, default_value = "signing")]
    key: RotatedKey,
    /// With `--key data`: rotate the encryption service's key of this data classification
    /// (PUBLIC, INTERNAL, CONFIDENTIAL, PII, RESTRICTED, TOP_SECRET) instead of Palisade's own.
    #[arg(long, value_name = "CLASS", value_parser = parse_class)]
    class: Option<palisade_core::crypto::DataClassification>,
    /// With `--key data` (no `--class`): then re-encrypt Palisade's own sealed data (second
    /// factors, signing keys) under the new key, showing progress, and wait for the end. A job
    /// already running (after a restart, say) is resumed or followed instead of a second one.
    #[arg(long)]
    reencrypt: bool,
    #[command(flatten)]
    settings: SettingFlags,
}

fn parse_class(text: &str) -> Result<palisade_core::crypto::DataClassification, String> {
    use palisade_core::crypto::DataClassification;
    DataClassification::parse(text).ok_or_else(|| {
        let names: Vec<&str> = DataClassification::ALL.iter().map(|c| c.as_str()).collect();
        format!("`{text}` is not a classification (one of {})", names.join(", "))
    })
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum RotatedKey {
    Signing,
    Data,
    Audit,
}

#[derive(Debug, Subcommand)]
enum ClientCommand {
    /// Register an OAuth client; prints it as JSON with its secret, which is shown only this once.
    Create(ClientCreateArgs),
    /// List OAuth clients as JSON lines (never a secret).
    List(SettingFlagsOnly),
    /// Delete an OAuth client by id.
    Delete(ClientDeleteArgs),
}

#[derive(Debug, Args)]
struct ClientCreateArgs {
    /// A name for people (shown on the consent page).
    #[arg(long)]
    name: String,
    /// `confidential` (a server-side application) or `public` (a browser or native app).
    #[arg(long = "type", default_value = "confidential")]
    client_type: String,
    /// A redirect URI, matched exactly (repeat for several).
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    /// A post-logout redirect URI, matched exactly (repeat for several).
    #[arg(long = "post-logout-redirect-uri")]
    post_logout_redirect_uris: Vec<String>,
    /// A grant type: authorization_code, refresh_token, client_credentials (repeat; default the
    /// first two).
    #[arg(long = "grant")]
    grant_types: Vec<String>,
    /// A scope it may be given (repeat; default openid profile email).
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// client_secret_basic (default for confidential), client_secret_post, private_key_jwt or none.
    #[arg(long)]
    auth_method: Option<String>,
    /// A file holding its public JWK Set, for private_key_jwt.
    #[arg(long, value_name = "FILE")]
    jwks_file: Option<std::path::PathBuf>,
    /// The URL of its public JWK Set, for private_key_jwt.
    #[arg(long)]
    jwks_uri: Option<String>,
    #[command(flatten)]
    settings: SettingFlags,
}

#[derive(Debug, Args)]
struct SettingFlagsOnly {
    #[command(flatten)]
    settings: SettingFlags,
}

#[derive(Debug, Args)]
struct ClientDeleteArgs {
    /// The client's id.
    id: String,
    #[command(flatten)]
    settings: SettingFlags,
}

#[derive(Debug, Subcommand)]
enum ApiKeyCommand {
    /// Make an API key for a user; the key is printed once.
    Create(ApiKeyCreateArgs),
    /// List API keys (never their secrets).
    List(ApiKeyListArgs),
    /// Revoke an API key by id.
    Revoke(ApiKeyRevokeArgs),
}

#[derive(Debug, Args)]
struct ApiKeyCreateArgs {
    /// The owner (username or user id).
    #[arg(long)]
    user: String,
    /// A name for the key.
    #[arg(long)]
    name: String,
    /// A scope it grants (repeat for several).
    #[arg(long = "scope", required = true)]
    scopes: Vec<String>,
    /// Lifetime in seconds (default: until revoked).
    #[arg(long)]
    expires_in: Option<u32>,
    /// Requests per minute.
    #[arg(long)]
    per_minute: Option<u32>,
    /// Requests per hour.
    #[arg(long)]
    per_hour: Option<u32>,
    /// Requests per day.
    #[arg(long)]
    per_day: Option<u32>,
    /// An address or CIDR network it may be used from (repeat for several).
    #[arg(long = "ip")]
    ip_allow: Vec<String>,
    #[command(flatten)]
    settings: SettingFlags,
}

#[derive(Debug, Args)]
struct ApiKeyListArgs {
    /// Only this user's keys (username or user id).
    #[arg(long)]
    user: Option<String>,
    #[command(flatten)]
    settings: SettingFlags,
}

#[derive(Debug, Args)]
struct ApiKeyRevokeArgs {
    /// The key's id.
    id: String,
    #[command(flatten)]
    settings: SettingFlags,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user. The password is read from standard input (one line), never from the command
    /// line, where other local users could read it.
    Create(UserCreateArgs),
    /// List users.
    List(UserListArgs),
    /// Lock a user: their sessions end and they cannot log in until unlocked.
    Lock(UserRefArgs),
    /// Unlock a user.
    Unlock(UserRefArgs),
    /// Make a user an administrator (their next login carries the `admin` scope). This is how the
    /// first administrator is made.
    GrantAdmin(UserRefArgs),
    /// Withdraw a user's administrator role.
    RevokeAdmin(UserRefArgs),
    /// Remove every second factor and backup code of a user (who lost their device); their next
    /// login asks for the password only, or to enrol a factor where MFA is required.
    MfaReset(UserRefArgs),
}

#[derive(Debug, Args)]
struct UserCreateArgs {
    /// The username.
    username: String,
    /// An e-mail address.
    #[arg(long)]
    email: Option<String>,
    #[command(flatten)]
    settings: SettingFlags,
}

#[derive(Debug, Args)]
struct UserListArgs {
    /// At most this many users.
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    settings: SettingFlags,
}

#[derive(Debug, Args)]
struct UserRefArgs {
    /// The username (or user id).
    user: String,
    #[command(flatten)]
    settings: SettingFlags,
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    settings: SettingFlags,
    /// Print the effective configuration (secrets masked) and exit.
    #[arg(long)]
    print_config: bool,
}

#[derive(Debug, Args)]
struct SettingsArgs {
    #[command(flatten)]
    settings: SettingFlags,
}

#[derive(Debug, Args)]
struct DiagnoseArgs {
    /// Check USER's TOTP factor instead ("code always invalid"): prints the server's time and TOTP
    /// step, then reads a code from the app on standard input and says whether the stored secret
    /// gives it, and for which step — revealing a clock that drifts. Changes nothing.
    #[arg(long, value_name = "USER")]
    totp: Option<String>,
    #[command(flatten)]
    settings: SettingFlags,
}

#[derive(Debug, Args)]
struct HealthArgs {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Walk the whole chain and name the first broken link; exit 1 if there is one.
    Verify(SettingsArgs),
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Migrate(args) => migrate(args).await,
        Command::Diagnose(args) => diagnose(args).await,
        Command::Health(args) => health(args).await,
        Command::Audit(AuditCommand::Verify(args)) => audit_verify(args).await,
        Command::User(UserCommand::Create(args)) => user_create(args).await,
        Command::User(UserCommand::List(args)) => user_list(args).await,
        Command::User(UserCommand::Lock(args)) => user_lock(args, true).await,
        Command::User(UserCommand::Unlock(args)) => user_lock(args, false).await,
        Command::User(UserCommand::GrantAdmin(args)) => user_admin(args, true).await,
        Command::User(UserCommand::RevokeAdmin(args)) => user_admin(args, false).await,
        Command::User(UserCommand::MfaReset(args)) => user_mfa_reset(args).await,
        Command::Apikey(ApiKeyCommand::Create(args)) => apikey_create(args).await,
        Command::Apikey(ApiKeyCommand::List(args)) => apikey_list(args).await,
        Command::Apikey(ApiKeyCommand::Revoke(args)) => apikey_revoke(args).await,
        Command::Client(ClientCommand::Create(args)) => client_create(args).await,
        Command::Client(ClientCommand::List(args)) => client_list(args).await,
        Command::Client(ClientCommand::Delete(args)) => client_delete(args).await,
        Command::Keys(KeysCommand::Status(args)) => keys_status(args).await,
        Command::Keys(KeysCommand::Rotate(args)) => keys_rotate(args).await,
        Command::Hsm(HsmCommand::Init(args)) => hsm_init(args).await,
        Command::Hsm(HsmCommand::Status(args)) => hsm_status(args).await,
        Command::Compliance(ComplianceCommand::Report(args)) => compliance_report(args).await,
    }
}

fn load(settings: &SettingFlags) -> anyhow::Result<Config> {
    let config = Config::load(settings)?;
    palisade_server::telemetry::init(&config);
    Ok(config)
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = load(&args.settings)?;
    if args.print_config {
        for (name, value) in config.describe() {
            println!("{name} = {value}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let app = palisade_server::Application::build(config).await?;
    app.run_until_stopped(palisade_server::shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

async fn migrate(args: SettingsArgs) -> anyhow::Result<ExitCode> {
    let config = load(&args.settings)?;
    let applied = palisade_store::migrate(config.database_url.expose_secret()).await.context("migrating")?;
    if applied.is_empty() {
        println!("the schema is up to date");
    }
    for migration in applied {
        println!("applied {migration}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn open(config: &Config) -> anyhow::Result<Arc<palisade_core::Palisade>> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    palisade_server::bootstrap(config, clock).await
}

async fn diagnose(args: DiagnoseArgs) -> anyhow::Result<ExitCode> {
    let config = load(&args.settings)?;
    if let Some(user) = &args.totp {
        return diagnose_totp(&config, user).await;
    }
    let checks = match open(&config).await {
        Ok(palisade) => palisade.diagnose().await,
        Err(e) => vec![palisade_core::Check { name: "startup", ok: false, detail: format!("{e:#}"), millis: 0 }],
    };
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(5).max(5);
    println!("{:<width$}  {:<6}  {:>7}  detail", "check", "result", "ms");
    for check in &checks {
        let result = if check.ok { "OK" } else { "FAIL" };
        println!("{:<width$}  {:<6}  {:>7}  {}", check.name, result, check.millis, check.detail);
    }
    Ok(if checks.iter().all(|c| c.ok) { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Steps either side of now that `diagnose --totp` searches, to measure a drifting clock (±5 min).
const TOTP_DIAGNOSE_WINDOW: u8 = 10;

async fn diagnose_totp(config: &Config, user: &str) -> anyhow::Result<ExitCode> {
    let palisade = open(config).await?;
    let Some(id) = find_user_id(&palisade, user).await? else {
        eprintln!("no such user: {user}");
        return Ok(ExitCode::FAILURE);
    };
    let Some(first) = palisade.mfa().diagnose_totp(id, None, 0).await? else {
        println!("{user} has no TOTP factor: set one up with POST /auth/mfa/totp/setup");
        return Ok(ExitCode::FAILURE);
    };
    let now = first.now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    println!("server time  {now} (unix {})", first.now.unix_timestamp());
    println!("TOTP step    {} (30-second steps; codes of the steps either side are accepted)", first.step);
    println!(
        "factor       {}",
        if first.confirmed { "confirmed" } else { "set up, NOT confirmed (logins do not use it)" }
    );
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        eprint!("code from the app: ");
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let code = zeroize::Zeroizing::new(line.trim().to_owned());
    let report = match palisade.mfa().diagnose_totp(id, Some(&code), TOTP_DIAGNOSE_WINDOW).await {
        Ok(Some(report)) => report,
        Ok(None) => anyhow::bail!("the TOTP factor went away meanwhile"),
        Err(palisade_core::auth::AuthError::Invalid(e)) => {
            println!("result       not a code: {e}");
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(e.into()),
    };
    let seconds = |offset: i64| offset * 30;
    match report.matched {
        Some(0) => println!("result       OK: the code is right for the current step"),
        Some(offset) if offset.abs() <= 1 => {
            println!("result       OK: the code is right for step {offset:+} (within the accepted skew)")
        }
        Some(offset) => {
            let ahead = if offset > 0 { "ahead of" } else { "behind" };
            println!(
                "result       WRONG CLOCK: the code is right for step {offset:+}: the device is about {} s {ahead} \
                 the server (outside the accepted ±1 step); set the device's or the server's time automatically",
                seconds(offset).abs()
            );
            return Ok(ExitCode::FAILURE);
        }
        None => {
            println!(
                "result       NO MATCH within ±{} steps: the app holds another secret (set TOTP up again), or \
                 a clock is off by more than {} s",
                TOTP_DIAGNOSE_WINDOW,
                seconds(i64::from(TOTP_DIAGNOSE_WINDOW))
            );
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn user_mfa_reset(args: UserRefArgs) -> anyhow::Result<ExitCode> {
    let config = load(&args.settings)?;
    let palisade = open(&config).await?;
    let Some(id) = find_user_id(&palisade, &args.user).await? else {
        eprintln!("no such user: {}", args.user);
        return Ok(ExitCode::FAILURE);
    };
    let removed = palisade.mfa().reset(id, "cli", &cli_meta()).await?;
    println!("removed {removed} second factor(s) and every backup code of {id}");
    Ok(ExitCode::SUCCESS)
}

async fn health(args: HealthArgs) -> anyhow::Result<ExitCode> {
    let client = palisade_client::Client::new(&args.url)?;
    let answer = client.ready().await?;
    println!("{}", serde_json::to_string_pretty(&answer.ready)?);
    let healthy = answer.ready.overall == palisade_types::health::HealthStatus::Healthy;
    Ok(if healthy { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn audit_verify(args: SettingsArgs) -> anyhow::Result<ExitCode> {
    let config = load(&args.settings)?;
    let palisade = open(&config).await?;
    let report = palisade.audit().verify().await?;
    let (outcome, code) = match &report.broken {
        None => {
            println!("audit chain intact: {} records verified", report.verified);
            if let Some(seq) = report.checkpoint {
                println!("  from the sealed checkpoint after record {seq} (the records up to it were archived)");
            }
            if report.redacted > 0 {
                println!("  {} of them redacted by erasures (links and MACs verified)", report.redacted);
            }
            (Outcome::Success, ExitCode::SUCCESS)
        }
        Some(link) => {
            println!(
                "audit chain BROKEN at record {}: {} ({} records before it verified)",
                link.seq, link.reason, report.verified
            );
            (Outcome::Failure, ExitCode::FAILURE)
        }
    };
    let event = AuditEvent::new(AuditKind::AuditVerified, outcome).detail("verified", report.verified);
    palisade.audit().append(event).await.context("auditing the verification")?;
    Ok(code)
}

fn cli_meta() -> palisade_core::audit::RequestMeta {
    palisade_core::audit::RequestMeta {
        ip: None,
        user_agent: Some("palisade-cli".into()),
        request_id: None,
        accept_language: None,
    }
}

fn read_new_password() -> anyhow::Result<secrecy::SecretString> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    anyhow::ensure!(!password.is_empty(), "no password given: type it, or pipe it on standard input");
    Ok(secrecy::SecretString::from(password))
}

async fn user_create(args: UserCreateArgs) -> anyhow::Result<ExitCode> {
    let config = load(&args.settings)?;
    let password = read_new_password()?;
    let palisade = open(&config).await?;
    let input = palisade_core::auth::RegisterInput { username: args.username, password, email: args.email };
    match palisade.auth().register(input, "cli", &cli_meta()).await {
        Ok(id) => {
            println!("created user {id}");
            Ok(ExitCode::SUCCESS)
        }
        Err(palisade_core::auth::AuthError::PasswordPolicy(violations)) => {
            eprintln!("the password does not meet the policy:");
            for v in violations {
                eprintln!("  - {} ({})", v.message, v.rule);
            }
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

async fn user_list(args: UserListArgs) -> anyhow::Result<ExitCode> {
    let config = load(&args.settings)?;
    let palisade = open(&config).await?;
    let users = palisade.auth().list_users(None, args.limit).await?;
    if !args.json {
        println!("{:<36}  {:<24}  {:<28}  {:<6}  created", "id", "username", "email", "locked");
    }
    for user in users {
        let created = user.created_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        let email = user.email.as_ref().map(ToString::to_string).unwrap_or_default();
        if args.json {
            let line = serde_json::json!({
                "user_id": user.id.to_string(), "username": user.username.to_string(),
                "email": user.email.map(|e| e.to_string()), "locked": user.locked, "admin": user.admin,
                "created_at": created,
            });
            println!("{line}");
        } else {
            println!("{:<36}  {:<24}  {:<28}  {:<6}  {created}", user.id, user.username, email, user.locked);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn user_lock(args: UserRefArgs, locked: bool) -> anyhow::Result<ExitCode> {
    let config = load(&args.settings)?;
    let palisade = open(&config).await?;
    let auth = palisade.auth();
    let id = match palisade_core::user::UserId::parse(&args.user) {
        Ok(id) => id,
        Err(_) => match auth.find_user(&args.user).await? {
            Some(user) => user.id,
            None => {
                eprintln!("no such user: {}", args.user);
                return Ok(ExitCode::FAILURE);
            }
        },
    };
    match auth.set_locked(id, locked, "cli", &cli_meta()).await {
        Ok(()) => {
            println!("{} {id}", if locked { "locked" } else { "unlocked" });
            Ok(ExitCode::SUCCESS)
        }
        Err(palisade_core::auth::AuthError::NotFound) => {
            eprintln!("no such user: {}", args.user);
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

async fn find_user_id(
    palisade: &palisade_core::Palisade,
    user: &str,
) -> anyhow::Result<Option<palisade_core::user::UserId>> {
    if let Ok(id) = palisade_core::user::UserId::parse(user) {
        return Ok(Some(id));
    }
    Ok(palisade.auth().find_user(user).await?.map(|u| u.id))
}

async fn apikey_create(args: ApiKeyCreateArgs) -> anyhow::Result<ExitCode> {
    let config = load(&args.settings)?;
    let palisade = open(&config).await?;
    let Some(owner) = find_user_id(&palisade, &args.user).await? else {
        eprintln!("no such user: {}", args.user);
        return Ok(ExitCode::FAILURE);
    };
    let input = palisade_core::api_key::NewApiKey {
        name: args.name,
        scopes: args.scopes,
        expires_in: args.expires_in.map(|s| time::Duration::seconds(i64::from(s))),
        limits: palisade_core::api_key::RateLimits {
            per_minute: args.per_minute,
            per_hour: args.per_hour,
            per_day: args.per_day,
        },
        ip_allow: args.ip_allow,
    };
    // The CLI acts as the operator: it may grant any scope, `admin` included.
    let operator = ["admin".to_owned()];
    match palisade.api_keys().create(owner, &operator, input, &cli_meta()).await {
        Ok(created) => {
            use secrecy::ExposeSecret as _;
            println!("{}", created.key.expose_secret());
            eprintln!("api key {} created; it is shown only this once", created.record.id);
            Ok(ExitCode::SUCCESS)
        }
        Err(palisade_core::api_key::ApiKeyError::BadInput { field, problem }) => {
            eprintln!("{field}: {problem}");
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

async fn apikey_list(args: ApiKeyListArgs) -> anyhow::Result<ExitCode> {
    let config = load(&args.settings)?;
    let palisade = open(&config).await?;
    let owner = match &args.user {
        Some(user) => match find_user_id(&palisade, user).await? {
            Some(id) => Some(id),
            None => {
                eprintln!("no such user: {user}");
                return Ok(ExitCode::FAILURE);
            }
        },
        None => None,
    };
    let rfc = |at: time::OffsetDateTime| at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    for key in palisade.api_keys().list(owner, 10_000).await? {
        let line = serde_json::json!({
            "api_key_id": key.id.to_string(), "user_id": key.owner.to_string(), "name": key.name,
            "scopes": key.scopes, "ip_whitelist": key.ip_allow,
            "rate_limits": {"requests_per_minute": key.per_minute, "requests_per_hour": key.per_hour, "requests_per_day": key.per_day},
            "created_at": rfc(key.created_at), "expires_at": key.expires_at.map(rfc),
            "last_used_at": key.last_used_at.map(rfc), "revoked_at": key.revoked_at.map(rfc),
        });
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn apikey_revoke(args: ApiKeyRevokeArgs) -> anyhow::Result<ExitCode> {
    let config = load(&args.settings)?;
    let palisade = open(&config).await?;
    let Ok(id) = uuid::Uuid::try_parse(&args.id) else {
        eprintln!("not an API key id: {}", args.id);
        return Ok(ExitCode::FAILURE);
    };
    match palisade.api_keys().revoke(id, None, "cli", &cli_meta()).await {
        Ok(()) => {
            println!("revoked {id}");
            Ok(ExitCode::SUCCESS)
        }
        Err(palisade_core::api_key::ApiKeyError::NotFound) => {
            eprintln!("no live API key with id {id}");
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

async fn client_create(args: ClientCreateArgs) -> anyhow::Result<ExitCode> {
    use palisade_core::oauth::{ClientKind, ClientRegistration, OAuthClientError};
    let kind = match args.client_type.as_str() {
        "confidential" => ClientKind::Confidential,
        "public" => ClientKind::Public,
        other => {
            eprintln!("--type: `{other}` is not confidential or public");
            return Ok(ExitCode::FAILURE);
        }
    };
    let jwks = match &args.jwks_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            match serde_json::from_str(&text) {
                Ok(jwks) => Some(jwks),
                Err(e) => {
                    eprintln!("--jwks-file: {} is not JSON ({e})", path.display());
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        None => None,
    };
    let config = load(&args.settings)?;
    let palisade = open(&config).await?;
    let registration = ClientRegistration {
        name: args.name,
        kind,
        redirect_uris: args.redirect_uris,
        post_logout_redirect_uris: args.post_logout_redirect_uris,
        grant_types: args.grant_types,
        scopes: args.scopes,
        auth_method: args.auth_method,
        jwks,
        jwks_uri: args.jwks_uri,
    };
    match palisade.oauth_clients().register_as(None, "cli", &registration, &cli_meta()).await {
        Ok(created) => {
            use secrecy::ExposeSecret as _;
            let view = palisade_types::clients::ClientCreated {
                client: palisade_server::client_view(created.client),
                client_secret: created.secret.map(|s| s.expose_secret().to_owned()),
            };
            println!("{}", serde_json::to_string_pretty(&view)?);
            if view.client_secret.is_some() {
                eprintln!("client {} registered; its secret is shown only this once", view.client.client_id);
            } else {
                eprintln!("client {} registered", view.client.client_id);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ OAuthClientError::Invalid { .. }) => {
            eprintln!("{e}");
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

async fn client_list(args: SettingFlagsOnly) -> anyhow::Result<ExitCode> {
    let config = load(&args.settings)?;
    let palisade = open(&config).await?;
    let mut after: Option<String> = None;
    loop {
        let page = palisade.oauth_clients().list_all(after.as_deref(), 500).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.client_id.clone());
        for client in page {
            println!("{}", serde_json::to_string(&palisade_server::client_view(client))?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn client_delete(args: ClientDeleteArgs) -> anyhow::Result<ExitCode> {
    let config = load(&args.settings)?;
    let palisade = open(&config).await?;
    match palisade.oauth_clients().delete_as("cli", &args.id, &cli_meta()).await {
        Ok(()) => {
            println!("deleted {}", args.id);
            Ok(ExitCode::SUCCESS)
        }
        Err(palisade_core::oauth::OAuthClientError::NotFound) => {
            eprintln!("no client with id {}", args.id);
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

async fn user_admin(args: UserRefArgs, admin: bool) -> anyhow::Result<ExitCode> {
    let config = load(&args.settings)?;
    let palisade = open(&config).await?;
    let Some(id) = find_user_id(&palisade, &args.user).await? else {
        eprintln!("no such user: {}", args.user);
        return Ok(ExitCode::FAILURE);
    };
    match palisade.auth().set_admin(id, admin, "cli", &cli_meta()).await {
        Ok(()) => {
            println!("{} {id}", if admin { "granted admin to" } else { "withdrew admin from" });
            Ok(ExitCode::SUCCESS)
        }
        Err(palisade_core::auth::AuthError::NotFound) => {
            eprintln!("no such user: {}", args.user);
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

async fn keys_status(args: SettingsArgs) -> anyhow::Result<ExitCode> {
    let config = load(&args.settings)?;
    let palisade = open(&config).await?;
    let rfc = |at: time::OffsetDateTime| at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    println!("{:<18}  {:<45}  {:<6}  {:>7}  {:<10}  created", "kind", "id", "alg", "version", "state");
    for key in palisade.signing_keys().status().await? {
        println!(
            "{:<18}  {:<45}  {:<6}  {:>7}  {:<10}  {}",
            "signing",
            key.kid,
            key.algorithm,
            key.version,
            key.state,
            rfc(key.created_at)
        );
    }
    for key in palisade.keyring().status().await? {
        let state = if key.active { "active" } else { "decrypting" };
        let algorithm = match key.purpose {
            palisade_core::crypto::KeyPurpose::Audit => "HS256",
            palisade_core::crypto::KeyPurpose::Data | palisade_core::crypto::KeyPurpose::Owner(_) => "A256GCM",
            palisade_core::crypto::KeyPurpose::Class(class) => match palisade.crypto().policies().of(class).algorithm {
                palisade_core::crypto::Algorithm::Aes256Gcm => "A256GCM",
                palisade_core::crypto::Algorithm::XChaCha20Poly1305 => "XC20P",
            },
        };
        println!(
            "{:<18}  {:<45}  {:<6}  {:>7}  {:<10}  {}",
            key.purpose.name(),
            key.id,
            algorithm,
            key.version,
            state,
            rfc(key.created_at)
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn keys_rotate(args: KeysRotateArgs) -> anyhow::Result<ExitCode> {
    use palisade_core::crypto::KeyPurpose;
    let config = load(&args.settings)?;
    let palisade = open(&config).await?;
    if args.class.is_some() && !matches!(args.key, RotatedKey::Data) {
        anyhow::bail!("--class goes with --key data: it names which classification's data key to rotate");
    }
    if args.reencrypt && (args.class.is_some() || !matches!(args.key, RotatedKey::Data)) {
        anyhow::bail!(
            "--reencrypt goes with --key data and no --class: Palisade re-encrypts only its own sealed data; \
             applications move a classification's envelopes with POST /crypto/rewrap"
        );
    }
    if args.reencrypt {
        return rotate_and_reencrypt(&palisade).await;
    }
    let (what, new) = match args.key {
        RotatedKey::Signing => {
            let key = palisade.signing_keys().rotate().await?;
            ("signing key", format!("{} (version {}), signing in 2 minutes", key.kid, key.version.unwrap_or(0)))
        }
        RotatedKey::Data => match args.class {
            Some(class) => {
                let version = palisade.keyring().rotate(KeyPurpose::Class(class)).await?;
                (class.as_str(), format!("{class} data key version {version}"))
            }
            None => ("data key", format!("version {}", palisade.keyring().rotate(KeyPurpose::Data).await?)),
        },
        RotatedKey::Audit => ("audit key", format!("version {}", palisade.keyring().rotate(KeyPurpose::Audit).await?)),
    };
    let event = AuditEvent::new(AuditKind::KeyRotated, Outcome::Success)
        .actor("cli")
        .detail("key", what)
        .detail("new", new.clone());
    palisade.audit().append(event).await.context("auditing the rotation")?;
    println!("rotated the {what}: {new}");
    Ok(ExitCode::SUCCESS)
}

/// `keys rotate --key data --reencrypt`: a new data key, then the re-encryption run here with a
/// progress bar (plain lines when not on a terminal). When another instance holds the job's lease,
/// its progress is followed from the store instead.
async fn rotate_and_reencrypt(palisade: &palisade_core::Palisade) -> anyhow::Result<ExitCode> {
    use palisade_core::crypto::reencrypt::{JobState, RunOutcome};
    let reencryptor = palisade.reencryptor();
    let running = reencryptor.latest().await?.filter(|job| job.state == JobState::Running);
    let job = match running {
        Some(job) => {
            println!("a re-encryption toward data key version {} is already running: resuming it", job.target_version);
            job
        }
        None => {
            let (version, job) = reencryptor.rotate().await?;
            let event = AuditEvent::new(AuditKind::KeyRotated, Outcome::Success)
                .actor("cli")
                .detail("key", "data key")
                .detail("new", version);
            palisade.audit().append(event).await.context("auditing the rotation")?;
            println!("rotated the data key: version {version}; re-encrypting {} rows", job.total);
            job
        }
    };
    let display = Progress::new(job.total);
    display.show(&job);
    // Run the job here; while another instance (or a run killed a moment ago, until its lease
    // lapses) holds it, follow its progress and take it over as soon as the lease is free.
    let mut following = false;
    let (finished, ran_here) = loop {
        match reencryptor.run(&|job| display.show(job)).await? {
            RunOutcome::Finished(job) => break (job, true),
            RunOutcome::Busy | RunOutcome::Stopped(_) => {
                if !following {
                    display.note("another instance is working on it; following its progress");
                    following = true;
                }
            }
            RunOutcome::Idle => {}
        }
        let Some(latest) = reencryptor.latest().await? else { anyhow::bail!("the re-encryption job is gone") };
        display.show(&latest);
        if latest.id != job.id || latest.state != JobState::Running {
            break (latest, false);
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    display.finish();
    // The run that ended the job audits it (a server that finished it has).
    if ran_here {
        let event = AuditEvent::new(
            AuditKind::KeyReencrypted,
            if finished.error.is_none() { Outcome::Success } else { Outcome::Failure },
        )
        .actor("cli")
        .detail("job", finished.id.to_string())
        .detail("state", finished.state.as_str())
        .detail("target_version", finished.target_version)
        .detail("scanned", finished.scanned)
        .detail("rewritten", finished.rewritten);
        palisade.audit().append(event).await.context("auditing the re-encryption")?;
    }
    let rate = finished.rows_per_second().map(|r| format!(", {r:.0} rows/s")).unwrap_or_default();
    match finished.state {
        JobState::Completed => {
            println!(
                "re-encrypted under data key version {}: {} rows visited, {} rewritten{rate}",
                finished.target_version, finished.scanned, finished.rewritten
            );
            Ok(ExitCode::SUCCESS)
        }
        JobState::Failed => {
            eprintln!("re-encryption failed: {}", finished.error.as_deref().unwrap_or("no reason recorded"));
            Ok(ExitCode::FAILURE)
        }
        JobState::Running => {
            println!("the re-encryption goes on in another instance ({} of {} rows)", finished.scanned, finished.total);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Progress of a long job: a bar on a terminal, otherwise a plain line at most every second.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    last_line: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Progress {
    fn new(total: u64) -> Self {
        use std::io::IsTerminal as _;
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} rows ({per_sec}, ETA {eta}) {msg}",
            ) {
                bar.set_style(style);
            }
            bar
        });
        Self { bar, last_line: std::sync::Mutex::new(None) }
    }

    fn show(&self, job: &palisade_core::crypto::reencrypt::ReencryptionJob) {
        if let Some(bar) = &self.bar {
            bar.set_length(job.total.max(job.scanned));
            bar.set_position(job.scanned);
            bar.set_message(format!("{} rewritten, {}", job.rewritten, job.phase.as_str()));
            return;
        }
        let mut last = self.last_line.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let due = last.is_none_or(|at| at.elapsed() >= std::time::Duration::from_secs(1));
        if due || job.state != palisade_core::crypto::reencrypt::JobState::Running {
            *last = Some(std::time::Instant::now());
            println!(
                "re-encryption {}: {}/{} rows visited, {} rewritten ({:.0} %)",
                job.state.as_str(),
                job.scanned,
                job.total,
                job.rewritten,
                job.progress() * 100.0
            );
        }
    }

    fn note(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => println!("{text}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}

fn hsm_settings(config: &Config) -> anyhow::Result<palisade_server::hsm::HsmSettings> {
    palisade_server::hsm::HsmSettings::from_config(config).ok_or_else(|| {
        anyhow::anyhow!(
            "no HSM is configured: set hsm_module (PALISADE_HSM_MODULE, the PKCS#11 library such as \
             /usr/lib/softhsm/libsofthsm2.so) and hsm_pin (PALISADE_HSM_PIN or HSM_PIN)"
        )
    })
}

async fn hsm_init(args: SettingsArgs) -> anyhow::Result<ExitCode> {
    let config = load(&args.settings)?;
    let settings = hsm_settings(&config)?;
    let label = settings.key_label.clone();
    let (provider, created) = palisade_server::hsm::Pkcs11KeyProvider::init(settings).await?;
    let report = provider.report().await;
    if created {
        println!("generated the master key `{label}` in token `{}` (slot {})", report.token_label, report.slot);
    } else {
        println!("the master key `{label}` is already in token `{}` (slot {})", report.token_label, report.slot);
    }
    println!("provider id: {}", palisade_core::crypto::KeyProvider::id(&provider));
    Ok(ExitCode::SUCCESS)
}

async fn hsm_status(args: SettingsArgs) -> anyhow::Result<ExitCode> {
    let config = load(&args.settings)?;
    let settings = hsm_settings(&config)?;
    println!("{:<12}  {}", "module", settings.module.display());
    let provider = match palisade_server::hsm::Pkcs11KeyProvider::open(settings).await {
        Ok(provider) => provider,
        Err(e) => {
            println!("{:<12}  FAIL  {e}", "master key");
            return Ok(ExitCode::FAILURE);
        }
    };
    let report = provider.report().await;
    println!("{:<12}  {}", "library", report.library);
    println!("{:<12}  {}", "slot", report.slot);
    println!("{:<12}  {}", "token", report.token_label);
    println!("{:<12}  {}", "provider id", report.provider_id);
    let key = match report.key_protected {
        Some(true) => "present, sensitive and non-extractable (the token refuses to read CKA_VALUE)".to_owned(),
        Some(false) => "present, but EXTRACTABLE or not sensitive: generate a new one with `palisade hsm init` \
                        after removing it"
            .to_owned(),
        None => "absent".to_owned(),
    };
    println!("{:<12}  {key}", "master key");
    let ok = report.key_present && report.key_protected == Some(true) && report.round_trip.is_ok();
    match &report.round_trip {
        Ok(()) => println!("{:<12}  OK  wrap and unwrap of a test key", "round trip"),
        Err(e) => println!("{:<12}  FAIL  {e}", "round trip"),
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn compliance_report(args: ComplianceReportArgs) -> anyhow::Result<ExitCode> {
    use palisade_core::compliance::report::ReportError;
    let config = load(&args.settings)?;
    let palisade = open(&config).await?;
    let range = time::Duration::seconds(args.range);
    let report = match palisade.compliance_reports().report_for_operator(args.standard, range).await {
        Ok(report) => report,
        Err(e @ (ReportError::Disabled { .. } | ReportError::Invalid(_))) => {
            eprintln!("{e}");
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(e.into()),
    };
    let view = palisade_server::report_view(&report);
    match args.format {
        palisade_server::ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&view)?),
        palisade_server::ReportFormat::Html => {
            print!("{}", palisade_server::render_html(&view, palisade_server::Styles::Inline));
        }
    }
    Ok(ExitCode::SUCCESS)
}
