//! The web page under `dlog serve --http`: the same pages as `dlog site`
//! (`crate::web`), at the same relative paths, rendered per request and
//! live (they subscribe to the API's event stream).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use serde_json::Value;

use super::AppState;
use super::problem::Problem;
use super::routes::blocking;
use crate::error::Error;
use crate::web::{self, SpaceSummary};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/spaces/{space}", get(to_space))
        .route("/spaces/{space}/", get(space))
        .route("/spaces/{space}/index.html", get(space))
        .route("/spaces/{space}/decisions/{file}", get(decision))
        .route("/assets/{name}", get(asset))
}

/// A failure as a page a person can read (the API answers problem+json).
fn error_page(problem: Problem) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{status}</title></head>\
<body><main><h1>{status}</h1><p>{detail}</p><p><a href=\"/\">All spaces</a></p></main></body></html>",
        status = problem.status,
        detail = web::escape(&problem.detail)
    );
    (problem.status, Html(body)).into_response()
}

async fn index(State(state): State<AppState>) -> Response {
    let log = state.log.clone();
    let summaries = blocking(move || {
        let mut out = Vec::new();
        for name in log.spaces()? {
            let fold: Value = serde_json::from_str(&log.space(&name).fold()?)
                .map_err(|e| Error::Guest(format!("the fold is not JSON: {e}")))?;
            out.push(SpaceSummary {
                events: fold["seq"].as_u64().unwrap_or(0),
                decisions: fold["decisions"].as_object().map_or(0, serde_json::Map::len),
                space: name,
            });
        }
        Ok(out)
    })
    .await;
    match summaries {
        Ok(s) => Html(web::index_page(&s, true)).into_response(),
        Err(p) => error_page(p),
    }
}

async fn to_space(Path(space): Path<String>) -> Response {
    match crate::lease::check_space(&space) {
        Ok(()) => Redirect::permanent(&format!("/spaces/{space}/")).into_response(),
        Err(e) => error_page(e.into()),
    }
}

async fn space(State(state): State<AppState>, Path(space): Path<String>) -> Response {
    if let Err(e) = crate::lease::check_space(&space) {
        return error_page(e.into());
    }
    let handle = state.log.space(&space);
    let fold = blocking(move || handle.fold()).await;
    match fold.and_then(|f| {
        serde_json::from_str::<Value>(&f)
            .map_err(|e| Error::Guest(format!("the fold is not JSON: {e}")).into())
    }) {
        Ok(fold) if fold["seq"].as_u64().unwrap_or(0) > 0 => {
            Html(web::space_page(&space, &fold, true)).into_response()
        }
        Ok(_) => error_page(Error::NotFound(format!("space {space:?} has no events")).into()),
        Err(p) => error_page(p),
    }
}

async fn decision(State(state): State<AppState>, Path((space, file)): Path<(String, String)>) -> Response {
    let Some(key) = web::key_from_file(&file) else {
        return error_page(Error::NotFound(format!("{file:?} is not a decision page")).into());
    };
    let handle = state.log.space(&space);
    match blocking(move || handle.show(&key)).await {
        Ok(shown) => Html(web::decision_page(&shown, true)).into_response(),
        Err(p) => error_page(p),
    }
}

async fn asset(Path(name): Path<String>) -> Response {
    match web::ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, kind, text)) => {
            ([(header::CONTENT_TYPE, *kind), (header::CACHE_CONTROL, "no-cache")], *text).into_response()
        }
        None => error_page(Problem::new(StatusCode::NOT_FOUND, "not-found", format!("no asset {name:?}"))),
    }
}
