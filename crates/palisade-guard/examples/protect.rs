//! An application protecting its routes with Palisade access tokens.
//!
//! Run a Palisade server (`cargo run --release -- serve`), then:
//! `cargo run -p palisade-guard --example protect` and call
//! `curl -H "Authorization: Bearer $ACCESS_TOKEN" http://127.0.0.1:3000/whoami`.

use axum::Extension;
use axum::routing::get;
use palisade_guard::{Claims, Guard};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = std::env::var("PALISADE_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    // The issuer and audience are the server's PALISADE_ISSUER and PALISADE_AUDIENCE.
    let guard = Guard::new(&server, &server, "palisade").await?;
    let needs_user: &'static [&'static str] = &["user"];
    let app = axum::Router::new().route(
        "/whoami",
        get(|Extension(claims): Extension<Claims>| async move { format!("hello {}\n", claims.sub) })
            .layer(axum::middleware::from_fn_with_state((guard, needs_user), Guard::require)),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("protected app on http://{}/whoami", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
