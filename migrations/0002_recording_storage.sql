-- Where each recording is kept and how far it got: recording_status is
-- pending (in the local spool, not yet in storage), stored (the object exists
-- and its size matched), failed, or expired (deleted by retention).
ALTER TABLE {calls} ADD COLUMN recording_backend VARCHAR(16);
ALTER TABLE {calls} ADD COLUMN recording_key VARCHAR(512);
ALTER TABLE {calls} ADD COLUMN recording_sha256 VARCHAR(64);
ALTER TABLE {calls} ADD COLUMN recording_stored_at {ts};
CREATE INDEX {p}calls_recording_key ON {calls} (recording_key);
CREATE INDEX {p}calls_recording_status ON {calls} (recording_status, started_at);
