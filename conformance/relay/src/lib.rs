//! An example NIP-01 relay on tokio whose parent side is broadcast-wire's
//! [`AsyncBroadcaster`](broadcast_process::async_broadcaster::AsyncBroadcaster)
//! and whose worker is the reference `broadcast-worker`. Run it with
//! `cargo run --release --example relay -- --listen 127.0.0.1:7447`;
//! `docs/ASYNC.md` describes what it does and why.
//!
//! - [`server`]: the listener, one task per WebSocket, and the start-up.
//! - [`hub`]: the task that owns the workers (one, or K shards with
//!   `--shards K`; supervised unless `--no-supervise`) and routes their
//!   frames.
//! - `connection`: one client's messages and answers.
//! - [`http`]: plain HTTP on the same port (NIP-11, CORS preflight).
//! - [`nats`]: `--nats`, sharing events with relay nodes on other machines.
//! - [`client_message`], [`event`], [`auth`]: parsing and checking what
//!   clients send (NIP-01 events, NIP-42 AUTH).
#![forbid(unsafe_code)]

pub mod auth;
pub mod client_message;
mod connection;
pub mod event;
pub mod http;
pub mod hub;
pub mod nats;
pub mod server;

pub use server::{Config, Relay};
