//! `dia-server` end to end: a real server process on a free local port with the tiny fixtures,
//! spoken to over HTTP.

mod auth;
mod common;
mod connections;
mod errors;
mod formats;
mod scheduling;
mod uploads;
