//! The integration tests that can share a process, in one binary: one link
//! instead of one per file. Each file is a module named as it was before
//! (`cargo test --test it golden::` runs one of them).
//!
//! Kept apart, each its own binary: the end-to-end tests that capture live on
//! fixed loopback ports or signal the daemon (`e2e_*`, `daemon_signals`,
//! `capture_live`), the outage tests that stop their own servers
//! (`db_outage`, `s3_outage`), `sip_alloc` (it installs a counting global
//! allocator) and `systemd_unit` (it sets the process's notify environment).

// Shared helpers; each test module uses a part of them.
#[path = "../api_support/mod.rs"]
mod api_support;
#[path = "../db_support/mod.rs"]
mod db_support;
#[path = "../fixture_support/mod.rs"]
mod fixture_support;
#[allow(dead_code)]
#[path = "../../tools/loadgen/mod.rs"]
mod loadgen;
#[path = "../nats_support/mod.rs"]
mod nats_support;
#[path = "../store_support/mod.rs"]
mod store_support;

mod admin_http;
mod api_browser;
mod api_calls;
mod api_events;
mod api_keys;
mod api_readme;
mod api_recording;
mod api_roles;
mod api_schemathesis;
mod api_serve;
mod api_writes;
mod b2bua;
mod calls_list;
mod capture_folder;
mod check_config;
mod cli_help;
mod codec_audio;
mod config_files;
mod crm_matching;
mod crm_replay;
mod db_backends;
mod db_connect_errors;
mod db_recording_status;
mod db_replay;
mod golden;
mod hep;
mod loadgen_self;
mod nats_events;
mod nats_sensors;
mod ogg_recording;
mod phone_index;
mod replay_inputs;
mod rfc4475;
mod s3_replay_link;
mod s3_storage;
mod samples_replay;
mod samples_wire;
mod sdp;
mod sip_message;
mod srtp;
mod store_share;
mod tracker;
mod wav_audio;
mod webhooks;
